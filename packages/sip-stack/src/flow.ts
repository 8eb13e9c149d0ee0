/**
 * A TCP connection as a SIP flow (RFC 5626 §3): one StreamParser, the
 * connection's Source, its idle timeout, a bounded write queue and a close
 * reason that ends up in the counters.
 */
import type { Socket } from 'node:net'
import { StreamParser } from '@sipd/sip-parser'
import type { SipParseError } from '@sipd/sip-parser'
import { unmapAddress } from './transport-address.js'
import { countParseError } from './transport-counters.js'
import type { TransportCounters } from './transport-counters.js'
import { TransportSendError } from './transport-errors.js'
import type { ResolvedTransportOptions } from './transport-options.js'
import type { CloseReason, InboundSink, SendResult, SocketAddr, Source } from './transport-types.js'

const CRLF = Buffer.from('\r\n')
/** Most chunks kept for the bytes of an unfinished message (see #hold). */
const MAX_HELD_CHUNKS = 32
const NO_LOCAL: Readonly<SocketAddr> = Object.freeze({ address: '', port: 0 })

/** Lifecycle of a flow. */
export type FlowState = 'connecting' | 'open' | 'closing' | 'closed'

/** One TCP connection. Internal to the package; used through TransportLayer. */
export class TcpFlow {
  /** `tcp/<n>`, unique within the layer. */
  readonly id: string
  /** Accepted from a peer (true) or opened by sipd (false). */
  readonly inbound: boolean
  /** The remote end, address in normal form. */
  readonly remote: Readonly<SocketAddr>
  /** `address|port` of the remote end: the key for connection reuse. */
  readonly peerKey: string
  readonly #socket: Socket
  readonly #parser: StreamParser
  readonly #opts: ResolvedTransportOptions
  readonly #sink: InboundSink
  readonly #counters: TransportCounters
  readonly #onClosed: (flow: TcpFlow, reason: CloseReason) => void
  #state: FlowState
  #reason: CloseReason | undefined
  #source: Source | undefined
  #graceTimer: NodeJS.Timeout | undefined
  // Where a message that fails to parse begins, so that its bytes can go to
  // the parse-error handler (which may still answer 400, RFC 3261 §8.2):
  // stream offsets of the parser's buffer and of the last message's end, and
  // the chunks holding the parser's unfinished bytes (references, kept only
  // while a message spans chunks).
  #pushed = 0
  #bufBase = 0
  #lastEnd = 0
  #held: Buffer[] = []
  #heldLen = 0
  #chunk: Buffer | undefined
  // Slowloris bound: each byte resets the socket's idle timer, so a message
  // must also be whole within tcpMessageTimeout of its first byte (as
  // Kamailio's tcp_msg_read_timeout). When the unfinished message began
  // (0: none), and messages delivered so far, to see a new one begin. While
  // one is unfinished the socket's timeout is the message timeout, so a peer
  // that stops half-way is closed then too, not at the idle timeout.
  #partialSince = 0
  #delivered = 0
  readonly #messageTimeout: number
  readonly #idleTimeout: number
  /** The peer sent bytes that cannot start a SIP message: the rest is ignored while the flow closes. */

  constructor (
    id: string,
    socket: Socket,
    inbound: boolean,
    remote: SocketAddr,
    opts: ResolvedTransportOptions,
    sink: InboundSink,
    counters: TransportCounters,
    onClosed: (flow: TcpFlow, reason: CloseReason) => void
  ) {
    this.id = id
    this.inbound = inbound
    this.remote = Object.freeze({ address: remote.address, port: remote.port })
    this.peerKey = remote.address + '|' + String(remote.port)
    this.#socket = socket
    this.#opts = opts
    this.#sink = sink
    this.#counters = counters
    this.#onClosed = onClosed
    this.#parser = new StreamParser({
      onMessage: msg => {
        this.#lastEnd = this.#bufBase + msg.end
        this.#delivered++
        this.#counters.messagesIn.tcp++
        this.#sink.deliver(msg, this.#source as Source)
      },
      onKeepAlive: () => { this.#onKeepAlive() },
      onError: err => { this.#onParseError(err) },
      maxMessageSize: opts.maxMessageSize,
      maxHeaders: opts.maxHeaders
    })
    socket.setNoDelay(true)
    this.#messageTimeout = opts.tcpMessageTimeout
    this.#idleTimeout = inbound ? opts.tcpIdleTimeout : opts.tcpOutboundIdleTimeout
    if (inbound) {
      this.#state = 'open'
      this.#makeSource()
      socket.setTimeout(opts.tcpIdleTimeout)
    } else {
      this.#state = 'connecting'
      socket.setTimeout(opts.tcpConnectTimeout)
      socket.once('connect', () => {
        if (this.#state !== 'connecting') return
        this.#state = 'open'
        this.#makeSource()
        this.#counters.tcp.connected++
        socket.setTimeout(opts.tcpOutboundIdleTimeout)
      })
    }
    socket.on('data', (chunk: Buffer) => {
      this.#counters.bytesIn.tcp += chunk.length
      const parser = this.#parser
      this.#chunk = chunk
      this.#bufBase = this.#pushed - parser.bufferedBytes
      const delivered = this.#delivered
      parser.push(chunk)
      this.#pushed += chunk.length
      const buffered = parser.bufferedBytes
      if (buffered === 0) {
        if (this.#heldLen > 0) { this.#held.length = 0; this.#heldLen = 0 }
        if (this.#partialSince !== 0) {
          this.#partialSince = 0
          if (this.#messageTimeout < this.#idleTimeout) socket.setTimeout(this.#idleTimeout)
        }
        return
      }
      const now = Date.now()
      if (this.#partialSince === 0 || this.#delivered !== delivered) {
        if (this.#partialSince === 0 && this.#messageTimeout < this.#idleTimeout) socket.setTimeout(this.#messageTimeout)
        this.#partialSince = now
      } else if (now - this.#partialSince >= this.#messageTimeout) {
        this.close('idle')
        return
      }
      this.#hold(chunk, buffered)
    })
    socket.on('timeout', () => { this.close(this.#state === 'connecting' ? 'connect-failed' : 'idle') })
    socket.on('end', () => { this.#reason ??= 'peer' })
    socket.on('error', () => { this.#reason ??= this.#state === 'connecting' ? 'connect-failed' : 'error' })
    socket.on('close', () => {
      this.#state = 'closed'
      if (this.#graceTimer !== undefined) clearTimeout(this.#graceTimer)
      this.#onClosed(this, this.#reason ?? 'peer')
    })
  }

  /** Current state. */
  get state (): FlowState {
    return this.#state
  }

  /** True while messages can be written (connecting writes are queued by the socket). */
  get writable (): boolean {
    return this.#state === 'open' || this.#state === 'connecting'
  }

  /** The Source of messages on this flow (undefined until an outbound flow connects). */
  get source (): Source | undefined {
    return this.#source
  }

  /** Write one message. Never rejects. */
  async write (bytes: Buffer): Promise<SendResult> {
    const counters = this.#counters
    if (!this.writable) {
      counters.sendErrors.tcp++
      return { ok: false, error: new TransportSendError('TCP connection is closed', 'SIP_ERR_FLOW_CLOSED', this.id) }
    }
    const socket = this.#socket
    // Back-pressure: a peer that stops reading is cut off, not buffered for.
    if (socket.writableLength + bytes.length > this.#opts.tcpMaxWriteBuffer) {
      counters.sendErrors.tcp++
      this.close('write-overflow')
      return {
        ok: false,
        error: new TransportSendError(`more than ${this.#opts.tcpMaxWriteBuffer} bytes queued on the connection (option tcpMaxWriteBuffer)`, 'SIP_ERR_WRITE_OVERFLOW', this.id)
      }
    }
    counters.messagesOut.tcp++
    counters.bytesOut.tcp += bytes.length
    return await new Promise<SendResult>(resolve => {
      socket.write(bytes, err => {
        if (err === null || err === undefined) {
          resolve({ ok: true, flowId: this.id, local: this.#source?.local ?? NO_LOCAL })
        } else {
          counters.sendErrors.tcp++
          resolve({ ok: false, error: new TransportSendError(`TCP write failed: ${err.message}`, 'SIP_ERR_SEND_FAILED', this.id, { cause: err }) })
        }
      })
    })
  }

  /**
   * Close the flow. `graceful` lets queued bytes (a final 400/513) drain for
   * up to `tcpCloseGrace` ms; otherwise the socket is destroyed at once.
   */
  close (reason: CloseReason, graceful = false): void {
    if (this.#state === 'closing' || this.#state === 'closed') return
    this.#reason ??= reason
    this.#state = 'closing'
    if (graceful && this.#opts.tcpCloseGrace > 0) {
      this.#socket.end()
      this.#graceTimer = setTimeout(() => { this.#socket.destroy() }, this.#opts.tcpCloseGrace)
      this.#graceTimer.unref()
    } else {
      this.#socket.destroy()
    }
  }

  #makeSource (): void {
    const s = this.#socket
    this.#source = Object.freeze({
      transport: 'tcp',
      address: this.remote.address,
      port: this.remote.port,
      local: Object.freeze({ address: unmapAddress(s.localAddress ?? ''), port: s.localPort ?? 0 }),
      flowId: this.id
    })
  }

  #onKeepAlive (): void {
    const counters = this.#counters
    counters.keepAlivesIn.tcp++
    // RFC 5626 §3.5.1: a double-CRLF ping is answered with a single CRLF pong.
    if (this.#state === 'open' && this.#socket.writableLength + 2 <= this.#opts.tcpMaxWriteBuffer) {
      counters.keepAlivesOut.tcp++
      this.#socket.write(CRLF)
    }
  }

  /** Keep the chunks that hold the last `buffered` bytes of the stream. */
  #hold (chunk: Buffer, buffered: number): void {
    const held = this.#held
    held.push(chunk)
    this.#heldLen += chunk.length
    let drop = 0
    while (this.#heldLen - held[drop]!.length >= buffered) this.#heldLen -= held[drop++]!.length
    // Bounded: a peer trickling a message in tiny segments must not make us
    // hold an object per byte. Past the bound the message's start is let go
    // (its parse error then comes without bytes, and is not answered).
    while (held.length - drop > MAX_HELD_CHUNKS) this.#heldLen -= held[drop++]!.length
    if (drop > 0) held.splice(0, drop)
  }

  /** The bytes of the stream from the start of the message being parsed to the end of the current chunk. */
  #failedBytes (): Buffer | undefined {
    const chunk = this.#chunk
    if (chunk === undefined) return undefined
    const start = Math.max(this.#bufBase, this.#lastEnd)
    const heldStart = this.#pushed - this.#heldLen
    if (start < heldStart) return undefined
    const bytes = this.#heldLen === 0 ? chunk : Buffer.concat([...this.#held, chunk])
    return bytes.subarray(start - heldStart)
  }

  /** An error of the parser, raised during a push (the offsets #failedBytes reads are those of that push). */
  #onParseError (err: SipParseError): void {
    countParseError(this.#counters, err.code)
    this.#sink.parseError(err, this.#source as Source, this.#failedBytes())
    this.#held.length = 0
    this.#heldLen = 0
    // Framing is lost (RFC 3261 §18.3): the parser ignores the rest of the
    // stream and the connection closes. A later tick, so that a 400/513 the
    // handler sends (even after an await) is still written first.
    const reason: CloseReason = err.code === 'SIP_ERR_MESSAGE_TOO_LARGE'
      ? 'message-too-large'
      : err.code === 'SIP_ERR_TOO_MANY_HEADERS' ? 'too-many-headers' : 'parse-error'
    this.#reason ??= reason
    setImmediate(() => { this.close(reason, true) })
  }
}
