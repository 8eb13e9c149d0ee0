/**
 * Via processing at the transport boundary: what `received`/`rport` a server
 * adds to the top Via of a request (RFC 3261 §18.2.1, RFC 3581 §4) and where
 * a response goes (RFC 3261 §18.2.2, RFC 3581 §4).
 */
import { addressFamily, canonicalAddress, SIP_PORT, stripBrackets } from './transport-address.js'
import type { Source, TransportName, ViaFields } from './transport-types.js'

/** The parameters to set on a request's top Via; pass to `forwardRequest(..., { topViaParams })` or `createResponse`. */
export interface ViaReceivedParams {
  received?: string
  rport?: number
}

/**
 * What to add to the top Via of a request that arrived from `source`, or
 * undefined when nothing is due.
 *
 * - RFC 3261 §18.2.1: `received` when the sent-by host is a name or an IP
 *   address other than the packet's source address.
 * - RFC 3581 §4: an `rport` without a value is set to the source port, and
 *   then `received` is added even when the address is the same.
 */
export function viaReceivedParams (via: ViaFields, source: Source): ViaReceivedParams | undefined {
  if (via.rport === null) return { received: source.address, rport: source.port }
  const host = via.host
  // Fast path: the usual IPv4 sent-by equal to the source address.
  if (host === source.address) return undefined
  if (addressFamily(host) !== 0 && canonicalAddress(host) === source.address) return undefined
  return { received: source.address }
}

/** Where a response is sent; `host` may be a name that must be resolved (RFC 3263 §5). */
export interface ResponseDestination {
  transport: TransportName
  /** An IP address (no brackets) or a DNS name. */
  host: string
  /**
   * The port; undefined only when `host` is a name and the sent-by had no
   * port, in which case RFC 3263 §5 asks for an SRV lookup.
   */
  port: number | undefined
  /**
   * Try this flow first: the connection the request came in on (RFC 3261
   * §18.2.2), or for UDP the socket it arrived on (RFC 3581 §4: the response
   * is sent from the address and port the request was received on).
   */
  flowId: string | undefined
}

/**
 * RFC 3261 §18.2.2 with RFC 3581 §4: where to send a response whose top Via
 * is `via`, for a request that arrived from `source` (omit `source` when it is
 * not known, e.g. a response relayed statelessly). `received`/`rport` are
 * taken from the Via when present, else derived from `source` as
 * `viaReceivedParams` would, so the request's own Via works as well as the
 * response's. Returns undefined for a sent-protocol sipd does not speak.
 */
export function responseDestination (via: ViaFields, source?: Source): ResponseDestination | undefined {
  const transport: TransportName | undefined = source !== undefined ? source.transport : viaTransport(via.transport)
  if (transport === undefined) return undefined

  let received = via.received !== undefined ? canonicalAddress(via.received) : undefined
  let rport = typeof via.rport === 'number' ? via.rport : undefined
  if (source !== undefined) {
    const add = viaReceivedParams(via, source)
    // What the request's source says wins over a received/rport the Via
    // already carried: the response's Via is rewritten with these values
    // (RFC 3261 §18.2.1), and the sender is where the answer must go.
    if (add !== undefined) {
      if (add.received !== undefined) received = add.received
      if (add.rport !== undefined) rport = add.rport
    }
  }
  const sentByPort = via.port

  if (transport === 'tcp') {
    // §18.2.2: the connection the request came in on if still open, else a
    // new connection to `received` (port from sent-by), else RFC 3263 §5.
    const flowId = source?.flowId
    if (received !== undefined) return { transport, host: received, port: sentByPort ?? SIP_PORT, flowId }
    return sentBy(transport, via, flowId)
  }

  const flowId = source !== undefined ? source.flowId : undefined
  // §18.2.2: maddr first (multicast or not), with the sent-by port.
  const maddr = mayHaveMaddr(via) ? via.params.get('maddr') : undefined
  if (maddr !== undefined && maddr !== null && maddr.length > 0) {
    const host = canonicalAddress(maddr)
    return { transport, host, port: sentByPort ?? (addressFamily(host) !== 0 ? SIP_PORT : undefined), flowId }
  }
  // RFC 3581 §4: received + rport; else §18.2.2: received + sent-by port.
  if (received !== undefined) return { transport, host: received, port: rport ?? sentByPort ?? SIP_PORT, flowId }
  return sentBy(transport, via, flowId)
}

/**
 * False when the Via cannot carry a `maddr` parameter: its text (when known)
 * does not hold those five letters in any case. A parameter name is a token
 * written out in full, so a Via with one always matches; a match inside some
 * other value only costs the parameter map. Spares the map (built from the
 * parameter list on first read) for nearly every Via.
 */
export function mayHaveMaddr (via: ViaFields): boolean {
  const raw = via.raw
  if (raw === undefined) return true
  for (let i = raw.indexOf(';'); i !== -1 && i + 5 <= raw.length; i++) {
    if ((raw.charCodeAt(i) | 0x20) === 0x6d && (raw.charCodeAt(i + 1) | 0x20) === 0x61 && (raw.charCodeAt(i + 2) | 0x20) === 0x64 &&
      (raw.charCodeAt(i + 3) | 0x20) === 0x64 && (raw.charCodeAt(i + 4) | 0x20) === 0x72) return true
  }
  return false
}

function sentBy (transport: TransportName, via: ViaFields, flowId: string | undefined): ResponseDestination {
  const host = canonicalAddress(stripBrackets(via.host))
  const numeric = addressFamily(host) !== 0
  return { transport, host, port: via.port ?? (numeric ? SIP_PORT : undefined), flowId }
}

function viaTransport (t: string): TransportName | undefined {
  if (t.length !== 3) return undefined
  const u = t.toUpperCase()
  return u === 'UDP' ? 'udp' : u === 'TCP' ? 'tcp' : undefined
}
