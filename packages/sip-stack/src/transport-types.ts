/**
 * Plain data types shared by the transports, the layer that composes them and
 * the elements above (transactions, registrar, proxy).
 */
import type { SipParseError, SipRequest, SipResponse } from '@sipd/sip-parser'

/** The transports sipd listens on and sends over. */
export type TransportName = 'udp' | 'tcp'

/** A local or remote socket address; IPv6 without brackets. */
export interface SocketAddr {
  address: string
  port: number
}

/**
 * Where an inbound message came from. One object per TCP connection (shared
 * by all its messages), one per UDP datagram; never mutate it.
 */
export interface Source {
  readonly transport: TransportName
  /** Remote address as seen on the socket (IPv4-mapped IPv6 unmapped). */
  readonly address: string
  /** Remote port as seen on the socket. */
  readonly port: number
  /** The local address and port the message arrived on. */
  readonly local: Readonly<SocketAddr>
  /**
   * The flow (RFC 5626 §3) the message arrived on: a TCP connection
   * (`tcp/<n>`) or a UDP 5-tuple (`udp/<socket>/<address>/<port>`). Pass it
   * back as `SendTarget.flowId` to send over the same flow.
   */
  readonly flowId: string
}

/** One bound listener, as reported by `TransportLayer.listen()`. */
export interface ListenerInfo {
  transport: TransportName
  /** The address bound (may be a wildcard, `0.0.0.0` or `::`). */
  address: string
  /** The port actually bound (the OS's choice when 0 was asked for). */
  port: number
  family: 4 | 6
  /** UDP: the receive buffer size the OS granted (SO_RCVBUF). */
  recvBufferSize?: number
  /** UDP: the send buffer size the OS granted (SO_SNDBUF). */
  sendBufferSize?: number
}

/** Where `TransportLayer.send()` delivers a message. */
export interface SendTarget {
  transport: TransportName
  /** IP address (IPv6 with or without brackets). Names must be resolved first (see `Resolver`). */
  address: string
  port: number
  /**
   * Send over this flow when it is still open (a TCP connection, or the UDP
   * socket a registration came in on); otherwise address/port are used.
   */
  flowId?: string
}

/** Outcome of a send: a value, never a rejected promise. */
export type SendResult =
  | { ok: true, flowId: string, local: Readonly<SocketAddr> }
  | { ok: false, error: Error & { code: string } }

/**
 * The fields of a parsed Via the transport reads (a structural subset of the
 * parser's `Via`, so a hand-written object serves too).
 */
export interface ViaFields {
  /** `UDP`, `TCP`, ... (upper case). */
  transport: string
  /** sent-by host, IPv6 with brackets. */
  host: string
  port: number | undefined
  received: string | undefined
  /** undefined: absent; null: present without a value; number: filled in. */
  rport: number | null | undefined
  /** All parameters, names lower-cased (read for `maddr`). */
  params: Map<string, string | null>
  /**
   * The Via element as received: when given, a Via whose text has no
   * `maddr` in it is not asked for its parameters (a map built per message).
   */
  raw?: string
}

/** Why a TCP connection was closed; each has a counter. */
export type CloseReason =
  | 'peer'
  | 'idle'
  | 'error'
  | 'connect-failed'
  | 'message-too-large'
  | 'too-many-headers'
  | 'parse-error'
  | 'write-overflow'
  | 'shutdown'

/**
 * What a transport hands inbound traffic to (the TransportLayer). Internal:
 * not exported from the package.
 */
export interface InboundSink {
  /** A parsed message; counted and passed to the handler. */
  deliver: (msg: SipRequest | SipResponse, source: Source) => void
  /** A message that did not parse, or exceeded a limit. */
  parseError: (err: SipParseError, source: Source, raw: Buffer | undefined) => void
  /** A TCP flow has closed. */
  flowClosed: (flowId: string, reason: CloseReason) => void
}
