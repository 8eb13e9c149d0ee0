/**
 * Typed views of parsed SIP header values. Each view is built the first time
 * a message accessor is read and cached on the message.
 */

/** A generic `;name=value` parameter list; a flag parameter maps to `null`. */
export type Params = Map<string, string | null>

/** A parsed sip:, sips: or tel: URI (RFC 3261 §19.1, RFC 3966). */
export interface SipUri {
  /** `sip`, `sips`, `tel`, or another scheme in lower case (absoluteURI). */
  scheme: string
  /** User part with percent-escapes decoded; for tel: the number. */
  user: string | undefined
  /** Password with percent-escapes decoded. */
  password: string | undefined
  /** Host as written, lower-cased; IPv6 references keep their brackets. */
  host: string
  /** Kind of host: a DNS name, an IPv4 address or an IPv6 reference. */
  hostType: 'name' | 'ipv4' | 'ipv6'
  /** Port, or undefined when absent. */
  port: number | undefined
  /** URI parameters; names lower-cased, values as written (escapes decoded). */
  params: Params
  /** URI headers (`?a=b&c=d`), escapes decoded. */
  headers: Map<string, string>
  /** The URI text exactly as received. */
  raw: string
}

/** name-addr or addr-spec with header parameters (From, To, Contact, Route...). */
export interface NameAddr {
  /** Display name without quotes and with `\` escapes resolved; undefined when absent. */
  displayName: string | undefined
  /** The URI text (without angle brackets). */
  uri: string
  /** Header parameters after the URI (`;tag=`, `;expires=`, `;q=`, `;lr` for Route...). */
  params: Params
  /** The whole header element as received (trimmed). */
  raw: string
}

/** From / To: a NameAddr plus its tag. */
export interface AddressHeader extends NameAddr {
  tag: string | undefined
}

/** One Contact element. */
export interface Contact extends NameAddr {
  /** `expires` parameter when present: seconds, up to 2**32-1; a malformed value reads as 3600 (RFC 3261 §20.10). */
  expires: number | undefined
  /** `q` parameter (0..1) when present. */
  q: number | undefined
}

/** One Via element (RFC 3261 §20.42, RFC 3581). */
export interface Via {
  /** Protocol name and version, e.g. `SIP/2.0`. */
  protocol: string
  /** Transport upper-cased: `UDP`, `TCP`, `TLS`, `SCTP`, `WS`... */
  transport: string
  /** sent-by host, lower-cased; IPv6 with brackets. */
  host: string
  /** sent-by port or undefined. */
  port: number | undefined
  /** branch parameter as written, or undefined. */
  branch: string | undefined
  /** received parameter or undefined. */
  received: string | undefined
  /** rport: undefined when absent, `null` when present without value, else the number. */
  rport: number | null | undefined
  /** All parameters (names lower-cased), including branch/received/rport. */
  params: Params
  /** The Via element as received. */
  raw: string
}

/** CSeq (RFC 3261 §20.16). */
export interface CSeq {
  seq: number
  method: string
}

/** Digest credentials from Authorization / Proxy-Authorization (RFC 7616). */
export interface DigestCredentials {
  scheme: string
  username: string | undefined
  realm: string | undefined
  nonce: string | undefined
  uri: string | undefined
  response: string | undefined
  algorithm: string | undefined
  cnonce: string | undefined
  opaque: string | undefined
  qop: string | undefined
  nc: string | undefined
  /** Every parameter, names lower-cased, quotes removed. */
  params: Map<string, string>
}

/** What `validateRequest` says a server must answer to a request that parses but is not sound. */
export interface ValidationFailure {
  status: number
  reason: string
  /** Extra headers to put on the response (e.g. `Unsupported`). */
  headers?: Array<[string, string]>
}
