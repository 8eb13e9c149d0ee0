/**
 * Plain-number counters of the transport layer. The hot path only does
 * `counters.x.udp++`; the proxy reads them in its prom-client `collect()`.
 */
import type { CloseReason } from './transport-types.js'

/** Per-transport pair of counters. */
export interface PerTransport {
  udp: number
  tcp: number
}

/** TCP connection counters. */
export interface TcpCounters {
  /** Connections open now (a gauge). */
  open: number
  /** Inbound connections accepted. */
  accepted: number
  /** Outbound connections established. */
  connected: number
  /** Inbound connections destroyed at once for exceeding a connection limit. */
  refused: number
  /** Closed connections by reason. */
  closed: Record<CloseReason, number>
}

/** Every counter of a `TransportLayer`. */
export interface TransportCounters {
  /** SIP messages received (parsed and delivered). */
  messagesIn: PerTransport
  /** SIP messages handed to a socket. */
  messagesOut: PerTransport
  /** Bytes received, keep-alives and garbage included. */
  bytesIn: PerTransport
  /** Bytes handed to sockets. */
  bytesOut: PerTransport
  /** CRLF keep-alives received (RFC 5626 §3.5.1; on UDP, NAT keep-alives). */
  keepAlivesIn: PerTransport
  /** Keep-alive answers sent. */
  keepAlivesOut: PerTransport
  /** Sends that failed (no socket, connect failure, socket error, overflow). */
  sendErrors: PerTransport
  /** Inbound messages that failed to parse, by `SipParseError.code`. */
  parseErrors: Record<string, number>
  /** Requests `chooseTransport` moved from UDP to TCP for their size (RFC 3261 §18.1.1). */
  udpToTcp: number
  /** Exceptions thrown by the `onMessage`/`onParseError` handlers (caught). */
  handlerErrors: number
  tcp: TcpCounters
}

/** Fresh counters, all zero. */
export function createTransportCounters (): TransportCounters {
  return {
    messagesIn: { udp: 0, tcp: 0 },
    messagesOut: { udp: 0, tcp: 0 },
    bytesIn: { udp: 0, tcp: 0 },
    bytesOut: { udp: 0, tcp: 0 },
    keepAlivesIn: { udp: 0, tcp: 0 },
    keepAlivesOut: { udp: 0, tcp: 0 },
    sendErrors: { udp: 0, tcp: 0 },
    parseErrors: Object.create(null) as Record<string, number>,
    udpToTcp: 0,
    handlerErrors: 0,
    tcp: {
      open: 0,
      accepted: 0,
      connected: 0,
      refused: 0,
      closed: {
        peer: 0,
        idle: 0,
        error: 0,
        'connect-failed': 0,
        'message-too-large': 0,
        'too-many-headers': 0,
        'parse-error': 0,
        'write-overflow': 0,
        shutdown: 0
      }
    }
  }
}

/** Count one parse error under its code. */
export function countParseError (counters: TransportCounters, code: string): void {
  counters.parseErrors[code] = (counters.parseErrors[code] ?? 0) + 1
}
