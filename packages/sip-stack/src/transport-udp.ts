/**
 * One UDP listening socket (RFC 3261 §18: one datagram carries exactly one
 * message). Responses and requests to UDP destinations leave through it too,
 * so a NAT binding a phone opened towards this socket keeps working.
 */
import { createSocket } from 'node:dgram'
import type { Socket } from 'node:dgram'
import { parseMessage, SipLimitError, SipParseError } from '@sipd/sip-parser'
import { unmapAddress } from './transport-address.js'
import type { ListenAddress } from './transport-address.js'
import { countParseError } from './transport-counters.js'
import type { TransportCounters } from './transport-counters.js'
import { TransportSendError } from './transport-errors.js'
import type { ResolvedTransportOptions } from './transport-options.js'
import type { InboundSink, ListenerInfo, SendResult, SocketAddr, Source } from './transport-types.js'
import { isStunMessage, stunBindingResponse } from './stun.js'

const CR = 0x0d
const LF = 0x0a
const CRLF = Buffer.from('\r\n')

/** A bound UDP listener, with the socket buffer sizes the OS granted. */
export interface UdpListenerInfo extends ListenerInfo {
  transport: 'udp'
  recvBufferSize: number
  sendBufferSize: number
}

/** One UDP socket. Internal to the package; used through TransportLayer. */
/** Senders whose Source a UDP socket keeps for reuse (a handful of trunks and media nodes send most datagrams). */
const RECENT_SOURCES = 8

export class UdpTransport {
  /** Position among the layer's UDP sockets; part of the flow ids. */
  readonly index: number
  readonly listenAddress: ListenAddress
  readonly #opts: ResolvedTransportOptions
  readonly #sink: InboundSink
  readonly #counters: TransportCounters
  readonly #socket: Socket
  #local: Readonly<SocketAddr> = Object.freeze({ address: '', port: 0 })
  readonly #flowPrefix: string
  #info: UdpListenerInfo | undefined
  #closed = false
  /**
   * The last few senders' Sources, reused for their next datagrams: a trunk
   * or a media node sends from one address and port, and each transaction
   * holds its Source (with its flowId text) for Timer J or L, 32 s; a new
   * object and string per datagram were garbage or held memory. Sources are
   * read-only, so sharing one is safe.
   */
  readonly #recent: Source[] = []
  #recentNext = 0

  constructor (index: number, listen: ListenAddress, opts: ResolvedTransportOptions, sink: InboundSink, counters: TransportCounters) {
    this.index = index
    this.listenAddress = listen
    this.#opts = opts
    this.#sink = sink
    this.#counters = counters
    this.#flowPrefix = `udp/${index}/`
    // IPv6 sockets are IPv6-only so that `0.0.0.0` and `[::]` can share a port.
    this.#socket = createSocket({ type: listen.family === 6 ? 'udp6' : 'udp4', ipv6Only: listen.family === 6, lookup: passThroughLookup })
    this.#socket.on('message', (buf, rinfo) => { this.#onDatagram(buf, rinfo.address, rinfo.port) })
    // Unconnected UDP sockets report almost nothing asynchronously; keep the
    // process alive if they do.
    this.#socket.on('error', () => { this.#counters.sendErrors.udp++ })
  }

  /** The bound listener, once `bind()` resolved. */
  get info (): UdpListenerInfo | undefined {
    return this.#info
  }

  /** The local address and port, once bound. */
  get local (): Readonly<SocketAddr> {
    return this.#local
  }

  /** Bind the socket; resolves with the bound address and port. */
  async bind (): Promise<UdpListenerInfo> {
    const s = this.#socket
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => { reject(err) }
      s.once('error', onError)
      s.bind({ address: this.listenAddress.address, port: this.listenAddress.port, exclusive: true }, () => {
        s.off('error', onError)
        resolve()
      })
    })
    // "Where allowed": Linux silently caps at rmem_max/wmem_max; other
    // systems may refuse, which leaves the OS default in place.
    if (this.#opts.udpRecvBufferSize > 0) { try { s.setRecvBufferSize(this.#opts.udpRecvBufferSize) } catch {} }
    if (this.#opts.udpSendBufferSize > 0) { try { s.setSendBufferSize(this.#opts.udpSendBufferSize) } catch {} }
    const a = s.address()
    this.#local = Object.freeze({ address: unmapAddress(a.address), port: a.port })
    this.#recent.length = 0
    this.#info = {
      transport: 'udp',
      address: this.#local.address,
      port: a.port,
      family: this.listenAddress.family,
      recvBufferSize: s.getRecvBufferSize(),
      sendBufferSize: s.getSendBufferSize()
    }
    return this.#info
  }

  /**
   * Send one datagram, synchronously: the result says whether the kernel
   * took it. Fire and forget, as UDP is: `socket.send` gets no callback (a
   * callback costs a completion object and a tick per datagram) and the
   * destination is an IP literal that the socket's `lookup` passes through
   * without the DNS module's extra tick (see {@link passThroughLookup}).
   * Errors the kernel reports later (ICMP unreachable on an unconnected
   * socket is not reported at all) are not tied to this send.
   */
  send (bytes: Buffer, address: string, port: number): SendResult {
    const counters = this.#counters
    if (this.#closed) {
      counters.sendErrors.udp++
      return { ok: false, error: new TransportSendError('UDP socket is closed', 'SIP_ERR_TRANSPORT_CLOSED', `udp:${address}:${port}`) }
    }
    try {
      this.#socket.send(bytes, port, address)
    } catch (err) {
      counters.sendErrors.udp++
      return { ok: false, error: new TransportSendError(`UDP send failed: ${(err as Error).message}`, 'SIP_ERR_SEND_FAILED', `udp:${address}:${port}`, { cause: err }) }
    }
    counters.messagesOut.udp++
    counters.bytesOut.udp += bytes.length
    return { ok: true, flowId: this.#flowPrefix + address + '/' + String(port), local: this.#local }
  }

  /** Close the socket. */
  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await new Promise<void>(resolve => {
      try {
        this.#socket.close(() => { resolve() })
      } catch {
        // Never bound: nothing to close.
        resolve()
      }
    })
  }

  /** The Source of a datagram from `address`:`port` (see #recent). */
  #sourceOf (address: string, port: number): Source {
    const recent = this.#recent
    for (let i = 0; i < recent.length; i++) {
      const s = recent[i]!
      if (s.port === port && s.address === address) return s
    }
    const source: Source = {
      transport: 'udp',
      address,
      port,
      local: this.#local,
      flowId: this.#flowPrefix + address + '/' + String(port)
    }
    if (recent.length < RECENT_SOURCES) {
      recent.push(source)
    } else {
      recent[this.#recentNext] = source
      this.#recentNext = (this.#recentNext + 1) % RECENT_SOURCES
    }
    return source
  }

  #onDatagram (buf: Buffer, rawAddress: string, port: number): void {
    const counters = this.#counters
    counters.bytesIn.udp += buf.length
    if (isKeepAlive(buf)) {
      counters.keepAlivesIn.udp++
      if (this.#opts.udpKeepAliveReply) {
        counters.keepAlivesOut.udp++
        this.#socket.send(CRLF, port, rawAddress)
      }
      return
    }
    // RFC 5626 §4.4.2, §8: a STUN Binding request is the keep-alive of a UDP
    // flow; answered with the sender's address. The first byte is checked
    // first so that SIP (a letter) costs one comparison.
    if (buf[0]! < 0x04 && isStunMessage(buf)) {
      counters.keepAlivesIn.udp++
      const response = stunBindingResponse(buf, unmapAddress(rawAddress), port)
      if (response !== undefined) {
        counters.keepAlivesOut.udp++
        this.#socket.send(response, port, rawAddress)
      }
      return
    }
    const source = this.#sourceOf(unmapAddress(rawAddress), port)
    let msg
    try {
      msg = parseMessage(buf, { maxHeaders: this.#opts.maxHeaders })
    } catch (err) {
      const e = err instanceof SipParseError ? err : new SipParseError(String(err), 0)
      countParseError(counters, e.code)
      this.#sink.parseError(e, source, buf)
      return
    }
    if (buf.length > this.#opts.maxMessageSize) {
      // Parsed anyway so that the server can answer 513 (RFC 3261 §21.5.14).
      const e = new SipLimitError(`message of ${buf.length} bytes is larger than ${this.#opts.maxMessageSize} (option maxMessageSize)`, 0, 'SIP_ERR_MESSAGE_TOO_LARGE')
      if (msg.isRequest) e.partial = msg
      countParseError(counters, e.code)
      this.#sink.parseError(e, source, buf)
      return
    }
    counters.messagesIn.udp++
    this.#sink.deliver(msg, source)
  }
}

/**
 * The socket's address lookup. The layer sends only to IP literals (names
 * are resolved per RFC 3263 before, and refused by `TransportLayer.send`),
 * so the address is handed back at once; `dns.lookup`, the default, answers
 * even an IP literal one tick later, which costs a closure and a tick per
 * datagram. Errors on the socket (e.g. a send after close) are counted by
 * its 'error' listener.
 */
function passThroughLookup (address: string, family: unknown, callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void): void {
  callback(null, address, family === 6 || address.indexOf(':') >= 0 ? 6 : 4)
}

/**
 * A datagram of CR/LF only: a NAT keep-alive, never a SIP message. Some
 * phones send `\r\n\r\n` (the RFC 5626 §3.5.1 ping) over UDP as well.
 */
function isKeepAlive (buf: Buffer): boolean {
  if (buf.length === 0 || buf.length > 8) return buf.length === 0
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i]
    if (c !== CR && c !== LF) return false
  }
  return true
}
