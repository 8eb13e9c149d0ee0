/**
 * Options of the transport layer, their defaults and their validation.
 */
import { DEFAULT_MAX_HEADERS, DEFAULT_MAX_MESSAGE_SIZE } from '@sipd/sip-parser'
import { parseListenAddress } from './transport-address.js'
import type { ListenAddress } from './transport-address.js'
import { InvalidTransportOptionError } from './transport-errors.js'
import type { Resolver } from './resolver.js'

/** Options of `TransportLayer`. Durations are milliseconds, sizes bytes. */
export interface TransportOptions {
  /**
   * Listen addresses, `udp:HOST:PORT` / `tcp:HOST:PORT`; IPv6 in brackets
   * (`tcp:[::1]:5060`); port 0 lets the OS choose. IPv6 sockets are
   * IPv6-only: list `0.0.0.0` and `[::]` both for a dual-stack listener.
   * @default ['udp:0.0.0.0:5060', 'tcp:0.0.0.0:5060']
   */
  listen: readonly string[]
  /**
   * UDP socket receive buffer (SO_RCVBUF), applied where the OS allows
   * (Linux caps it at net.core.rmem_max).
   * @default 4194304
   */
  udpRecvBufferSize: number
  /**
   * UDP socket send buffer (SO_SNDBUF), applied where the OS allows.
   * @default 4194304
   */
  udpSendBufferSize: number
  /**
   * A request larger than this goes over TCP instead of UDP when the sender
   * allows the switch (see `chooseTransport`).
   * @default 1300
   * @see RFC 3261 §18.1.1
   */
  udpMtuLimit: number
  /**
   * Answer a UDP datagram made only of CR/LF (a NAT keep-alive some phones
   * send) with one CRLF. RFC 5626 defines the CRLF ping/pong for connection-
   * oriented transports only (§3.5.1, §4.4.1); its UDP keep-alive is STUN
   * (§4.4.2), which the UDP transport always answers. Off: CR/LF datagrams
   * are counted and ignored.
   * @default false
   */
  udpKeepAliveReply: boolean
  /**
   * Close an inbound TCP connection after this long without traffic in
   * either direction (keep-alives count as traffic).
   * @default 300000
   */
  tcpIdleTimeout: number
  /**
   * The same for connections sipd opened.
   * @default 300000
   */
  tcpOutboundIdleTimeout: number
  /**
   * A TCP message must arrive whole within this long of its first byte, on
   * any connection; a peer that trickles a message (each byte would reset the
   * idle timeout) or stops half-way is closed. Kamailio's
   * `tcp_msg_read_timeout`, 20 s there too.
   * @default 20000
   */
  tcpMessageTimeout: number
  /**
   * Give up an outbound TCP connect after this long.
   * @default 10000
   */
  tcpConnectTimeout: number
  /**
   * Most TCP connections open at once, inbound and outbound. Inbound
   * connections beyond it are destroyed on accept and counted as refused.
   * @default 8192
   */
  maxTcpConnections: number
  /**
   * Most inbound TCP connections from one source IP address.
   * @default 256
   */
  maxTcpConnectionsPerAddress: number
  /**
   * Most bytes queued for writing on one TCP connection; a peer that does
   * not read is dropped rather than buffered for without bound.
   * @default 1048576
   */
  tcpMaxWriteBuffer: number
  /**
   * After a framing error or exceeded limit, how long a TCP connection may
   * take to flush a final response (400/513) before it is destroyed.
   * @default 2000
   */
  tcpCloseGrace: number
  /**
   * Largest message accepted, on either transport.
   * @default 65535
   */
  maxMessageSize: number
  /**
   * Most header lines in one message.
   * @default 256
   */
  maxHeaders: number
  /**
   * Resolver for a response whose Via sent-by is a name (RFC 3263 §5).
   * @default a `Resolver` with its default options, made on first use
   */
  resolver: Resolver | undefined
}

/** Defaults of `TransportOptions`. */
export const DEFAULT_TRANSPORT_OPTIONS: Readonly<TransportOptions> = Object.freeze({
  listen: Object.freeze(['udp:0.0.0.0:5060', 'tcp:0.0.0.0:5060']),
  udpRecvBufferSize: 4 * 1024 * 1024,
  udpSendBufferSize: 4 * 1024 * 1024,
  udpMtuLimit: 1300,
  udpKeepAliveReply: false,
  tcpIdleTimeout: 300_000,
  tcpOutboundIdleTimeout: 300_000,
  tcpMessageTimeout: 20_000,
  tcpConnectTimeout: 10_000,
  maxTcpConnections: 8192,
  maxTcpConnectionsPerAddress: 256,
  tcpMaxWriteBuffer: 1024 * 1024,
  tcpCloseGrace: 2000,
  maxMessageSize: DEFAULT_MAX_MESSAGE_SIZE,
  maxHeaders: DEFAULT_MAX_HEADERS,
  resolver: undefined
})

/** Options after validation, with the listen addresses parsed. */
export interface ResolvedTransportOptions extends TransportOptions {
  listenAddresses: ListenAddress[]
}

const INTEGER_OPTIONS: ReadonlyArray<[keyof TransportOptions, number, string]> = [
  ['udpRecvBufferSize', 0, 'an integer number of bytes >= 0 (0 keeps the OS default)'],
  ['udpSendBufferSize', 0, 'an integer number of bytes >= 0 (0 keeps the OS default)'],
  ['udpMtuLimit', 200, 'an integer number of bytes >= 200'],
  ['tcpIdleTimeout', 1, 'an integer number of milliseconds >= 1'],
  ['tcpOutboundIdleTimeout', 1, 'an integer number of milliseconds >= 1'],
  ['tcpMessageTimeout', 1, 'an integer number of milliseconds >= 1'],
  ['tcpConnectTimeout', 1, 'an integer number of milliseconds >= 1'],
  ['maxTcpConnections', 1, 'an integer >= 1'],
  ['maxTcpConnectionsPerAddress', 1, 'an integer >= 1'],
  ['tcpMaxWriteBuffer', 1024, 'an integer number of bytes >= 1024'],
  ['tcpCloseGrace', 0, 'an integer number of milliseconds >= 0'],
  ['maxMessageSize', 256, 'an integer number of bytes >= 256'],
  ['maxHeaders', 1, 'an integer >= 1']
]

/** Merge `options` over the defaults and validate; throws InvalidTransportOptionError. */
export function resolveTransportOptions (options: Partial<TransportOptions>): ResolvedTransportOptions {
  const o = { ...DEFAULT_TRANSPORT_OPTIONS } as TransportOptions
  for (const [k, v] of Object.entries(options)) {
    if (v !== undefined) (o as unknown as Record<string, unknown>)[k] = v
  }
  if (!Array.isArray(o.listen)) throw new InvalidTransportOptionError('listen', o.listen, 'a list of "udp:HOST:PORT" / "tcp:HOST:PORT"')
  const listenAddresses = o.listen.map(parseListenAddress)
  for (const [k, min, allowed] of INTEGER_OPTIONS) {
    const v = o[k]
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new InvalidTransportOptionError(k, v, allowed)
  }
  if (typeof o.udpKeepAliveReply !== 'boolean') throw new InvalidTransportOptionError('udpKeepAliveReply', o.udpKeepAliveReply, 'true or false')
  if (o.maxTcpConnectionsPerAddress > o.maxTcpConnections) {
    throw new InvalidTransportOptionError('maxTcpConnectionsPerAddress', o.maxTcpConnectionsPerAddress, `at most maxTcpConnections (${o.maxTcpConnections})`)
  }
  if (o.resolver !== undefined && (o.resolver === null || typeof (o.resolver as { resolveHost?: unknown }).resolveHost !== 'function')) {
    throw new InvalidTransportOptionError('resolver', typeof o.resolver, 'a Resolver')
  }
  return { ...o, listenAddresses }
}
