/**
 * The transport layer (RFC 3261 §18): every UDP socket and TCP listener of a
 * sipd node behind one object. Inbound messages reach one typed callback;
 * outbound messages go by destination, by flow, or (responses) by Via.
 */
import type { SipParseError, SipRequest, SipResponse } from '@sipd/sip-parser'
import { addressFamily, stripBrackets } from './transport-address.js'
import { createTransportCounters } from './transport-counters.js'
import type { TransportCounters } from './transport-counters.js'
import { TransportSendError } from './transport-errors.js'
import { resolveTransportOptions } from './transport-options.js'
import type { ResolvedTransportOptions, TransportOptions } from './transport-options.js'
import { TcpTransport } from './transport-tcp.js'
import { UdpTransport } from './transport-udp.js'
import { responseDestination } from './transport-via.js'
import type { ResponseDestination } from './transport-via.js'
import { Resolver } from './resolver.js'
import type { TargetTransport } from './resolver.js'
import type { CloseReason, InboundSink, ListenerInfo, SendResult, SendTarget, Source, TransportName, ViaFields } from './transport-types.js'

/** What the element above the transports (the transaction layer) implements. */
export interface TransportHandler {
  /** A parsed message from `source`. Runs synchronously on the socket's read path. */
  onMessage: (msg: SipRequest | SipResponse, source: Source) => void
  /**
   * A message that did not parse or broke a limit (`err.code`). For a
   * request whose headers were indexed, `err.partial` is enough to answer
   * 400/513; `raw` is the datagram (UDP), or over TCP the stream's bytes
   * from the start of the failed message to the end of the chunk that broke
   * it (undefined when not known). Answer before returning (or
   * within the same tick): a TCP connection closes after a framing error.
   */
  onParseError?: (err: SipParseError, source: Source, raw: Buffer | undefined) => void
  /** A TCP flow closed (RFC 5626 flow failure; §17.1.4 transport error for transactions using it). */
  onFlowClosed?: (flowId: string, reason: CloseReason) => void
  /** A handler above threw; the exception was caught and counted (`counters.handlerErrors`). */
  onHandlerError?: (err: unknown, source: Source) => void
}

/** Lifecycle of the layer. */
export type TransportStatus = 'idle' | 'listening' | 'closing' | 'closed'

/** Size and switch permission for `chooseTransport`. */
export interface TransportChoiceTarget {
  /** The transport the target asks for (from RFC 3263 resolution). */
  transport: TargetTransport | TransportName
  /**
   * Whether the sender may switch a UDP target to TCP. Say false when the
   * transport was fixed (e.g. a `;transport=udp` the peer insists on, or a
   * UDP flow to a phone behind NAT that cannot accept connections).
   * @default true
   */
  maySwitch?: boolean
}

/**
 * UDP and TCP on any number of listen addresses.
 *
 * ```ts
 * const layer = new TransportLayer({ onMessage (msg, source) { ... } }, { listen: ['udp:127.0.0.1:0', 'tcp:127.0.0.1:0'] })
 * const bound = await layer.listen()
 * await layer.send(bytes, { transport: 'udp', address: '127.0.0.1', port: 5060 })
 * await layer.close()
 * ```
 */
export class TransportLayer {
  /** Counters for metrics; read them, do not write them. */
  readonly counters: TransportCounters = createTransportCounters()
  readonly #opts: ResolvedTransportOptions
  readonly #handler: TransportHandler
  readonly #udp: UdpTransport[] = []
  readonly #tcp: TcpTransport
  #status: TransportStatus = 'idle'
  #listeners: ListenerInfo[] = []
  #resolver: Resolver | undefined

  constructor (handler: TransportHandler, options: Partial<TransportOptions> = {}) {
    if (handler === null || typeof handler !== 'object' || typeof handler.onMessage !== 'function') {
      throw new TypeError('TransportLayer needs a handler with an onMessage function')
    }
    this.#opts = resolveTransportOptions(options)
    this.#handler = handler
    this.#resolver = this.#opts.resolver
    const sink = this.#makeSink()
    const tcpListens = []
    for (const l of this.#opts.listenAddresses) {
      if (l.transport === 'udp') this.#udp.push(new UdpTransport(this.#udp.length, l, this.#opts, sink, this.counters))
      else tcpListens.push(l)
    }
    this.#tcp = new TcpTransport(tcpListens, this.#opts, sink, this.counters)
  }

  /** Current lifecycle status. */
  get status (): TransportStatus {
    return this.#status
  }

  /** The bound listeners (after `listen()`), with the ports the OS chose for port 0. */
  get listeners (): readonly ListenerInfo[] {
    return this.#listeners
  }

  /** The validated options. */
  get options (): Readonly<TransportOptions> {
    return this.#opts
  }

  /** Bind every listen address. Rejects (and closes what was bound) if one fails. */
  async listen (): Promise<ListenerInfo[]> {
    if (this.#status !== 'idle') throw new Error(`TransportLayer.listen() called while ${this.#status}`)
    this.#status = 'listening'
    try {
      const out: ListenerInfo[] = []
      for (const u of this.#udp) out.push(await u.bind())
      out.push(...await this.#tcp.listen())
      this.#listeners = out
      return out.slice()
    } catch (err) {
      await this.close()
      throw err
    }
  }

  /** Stop listening, close every connection and socket; resolves when done. */
  async close (): Promise<void> {
    if (this.#status === 'closing' || this.#status === 'closed') return
    this.#status = 'closing'
    await Promise.all([this.#tcp.close(), ...this.#udp.map(async u => { await u.close() })])
    this.#status = 'closed'
  }

  /**
   * Send a message to an IP destination. TCP: over the flow `flowId` if
   * still open, else an open connection to address:port, else a new one.
   * UDP: `flowId` (from a `Source`) picks the local socket to send from;
   * otherwise the first UDP socket of the destination's address family.
   * Never throws or rejects: failures come back as `{ ok: false, error }`.
   * UDP answers synchronously (the kernel took the datagram or not), TCP
   * with a promise (connecting and writing take a round trip); `await`
   * works for both.
   */
  send (bytes: Buffer, target: SendTarget): SendResult | Promise<SendResult> {
    const address = stripBrackets(target.address)
    if (target.transport === 'udp') {
      const sock = this.#udpSocket(address, target.flowId)
      if (sock === undefined) return this.#fail('udp', 'no UDP socket for this address family', 'SIP_ERR_NO_TRANSPORT', address, target.port)
      return sock.send(bytes, address, target.port)
    }
    if (target.transport === 'tcp') return this.#tcp.send(bytes, address, target.port, target.flowId)
    return this.#fail('udp', `transport "${String(target.transport)}" is not supported`, 'SIP_ERR_NO_TRANSPORT', address, target.port)
  }

  /**
   * Send a response per RFC 3261 §18.2.2 and RFC 3581 §4, given the top Via
   * (of the request or of the response) and, when known, the Source of the
   * request. TCP: the request's connection if still open, else a connection
   * to `received` (or the sent-by) at the sent-by port. UDP: `maddr`, else
   * `received` with `rport` (sent from the socket the request came in on),
   * else `received` with the sent-by port, else the sent-by resolved per
   * RFC 3263 §5. Never throws or rejects; synchronous like {@link send}
   * unless a sent-by name must be resolved.
   */
  sendResponse (bytes: Buffer, topVia: ViaFields, source?: Source): SendResult | Promise<SendResult> {
    const dest = responseDestination(topVia, source)
    if (dest === undefined) {
      return this.#fail('udp', `Via transport "${topVia.transport}" is not supported`, 'SIP_ERR_NO_TRANSPORT', topVia.host, topVia.port ?? 0)
    }
    if (dest.port !== undefined && addressFamily(dest.host) !== 0) {
      return this.send(bytes, { transport: dest.transport, address: dest.host, port: dest.port, flowId: dest.flowId })
    }
    return this.#sendResolved(bytes, dest)
  }

  /** RFC 3263 §5: a sent-by (or maddr) name: A/AAAA with its port, else SRV. */
  async #sendResolved (bytes: Buffer, dest: ResponseDestination): Promise<SendResult> {
    const resolver = this.#resolver ??= new Resolver()
    const targets = await resolver.resolveHost(dest.host, dest.port, dest.transport)
    let last: SendResult | undefined
    for (const t of targets) {
      if (t.transport !== dest.transport) continue
      last = await this.send(bytes, { transport: dest.transport, address: t.address, port: t.port, flowId: dest.flowId })
      if (last.ok) return last
    }
    return last ?? this.#fail(dest.transport, 'sent-by name did not resolve', 'SIP_ERR_UNRESOLVED', dest.host, dest.port ?? 0)
  }

  /**
   * RFC 3261 §18.1.1: the transport to send a request of `size` bytes over.
   * A UDP target becomes TCP when the request is larger than `udpMtuLimit`
   * (1300) and the sender allows the switch and a TCP listener exists. Call
   * it before building the Via: the Via's transport must name the result.
   * ("UDP" and "TCP" have the same length, so a message built with either
   * has the same size.)
   */
  chooseTransport (target: TransportChoiceTarget, size: number): TargetTransport | TransportName {
    if (target.transport !== 'udp') return target.transport
    if (size > this.#opts.udpMtuLimit && target.maySwitch !== false && this.#tcp.hasListener) {
      this.counters.udpToTcp++
      return 'tcp'
    }
    return 'udp'
  }

  /** True while the flow can carry messages (a TCP connection still open, or any UDP flow of a bound socket). */
  isFlowOpen (flowId: string): boolean {
    if (flowId.startsWith('tcp/')) return this.#tcp.flow(flowId)?.writable === true
    return this.#udpSocketByFlow(flowId) !== undefined && this.#status === 'listening'
  }

  /** Close one TCP flow (e.g. when its registration is removed). */
  closeFlow (flowId: string): void {
    this.#tcp.flow(flowId)?.close('shutdown')
  }

  /** Number of open TCP connections. */
  get tcpConnections (): number {
    return this.#tcp.size
  }

  #udpSocket (address: string, flowId: string | undefined): UdpTransport | undefined {
    if (flowId !== undefined) {
      const byFlow = this.#udpSocketByFlow(flowId)
      if (byFlow !== undefined) return byFlow
    }
    const family = addressFamily(address)
    for (const u of this.#udp) if (u.listenAddress.family === family) return u
    return undefined
  }

  /** `udp/<socket>/<address>/<port>` → the socket. */
  #udpSocketByFlow (flowId: string): UdpTransport | undefined {
    if (!flowId.startsWith('udp/')) return undefined
    let n = 0
    let i = 4
    for (; i < flowId.length; i++) {
      const c = flowId.charCodeAt(i) - 0x30
      if (c < 0 || c > 9) break
      n = n * 10 + c
    }
    if (i === 4 || flowId.charCodeAt(i) !== 0x2f /* / */) return undefined
    return this.#udp[n]
  }

  #fail (transport: TransportName, message: string, code: string, address: string, port: number): SendResult {
    this.counters.sendErrors[transport]++
    const where = `${transport}:${address.includes(':') ? '[' + address + ']' : address}:${port}`
    return { ok: false, error: new TransportSendError(message, code, where) }
  }

  #makeSink (): InboundSink {
    const handler = this.#handler
    const counters = this.counters
    // Exceptions from the element must not break the read loop of a socket
    // or leave a StreamParser half-way through a chunk.
    const caught = (err: unknown, source: Source): void => {
      counters.handlerErrors++
      try { handler.onHandlerError?.(err, source) } catch {}
    }
    return {
      deliver (msg, source) {
        try { handler.onMessage(msg, source) } catch (err) { caught(err, source) }
      },
      parseError (err, source, raw) {
        if (handler.onParseError === undefined) return
        try { handler.onParseError(err, source, raw) } catch (e) { caught(e, source) }
      },
      flowClosed (flowId, reason) {
        if (handler.onFlowClosed === undefined) return
        try { handler.onFlowClosed(flowId, reason) } catch (e) { counters.handlerErrors++ }
      }
    }
  }
}
