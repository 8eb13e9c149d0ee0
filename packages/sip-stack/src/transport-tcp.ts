/**
 * TCP: listening servers, the table of flows (inbound and outbound
 * connections) and the connection limits.
 *
 * RFC 3261 §18.2.2: a response goes back on the connection its request came
 * in on. §18.1 / RFC 5626: a connection is kept and reused for later messages
 * to the same peer (address and port), so a request to a phone that
 * registered over TCP travels back down the connection the phone opened.
 */
import { connect, createServer, isIP } from 'node:net'
import type { Server, Socket } from 'node:net'
import { TcpFlow } from './flow.js'
import { canonicalAddress, unmapAddress } from './transport-address.js'
import type { ListenAddress } from './transport-address.js'
import type { TransportCounters } from './transport-counters.js'
import { TransportSendError } from './transport-errors.js'
import type { ResolvedTransportOptions } from './transport-options.js'
import type { CloseReason, InboundSink, ListenerInfo, SendResult } from './transport-types.js'

interface TcpListener {
  server: Server
  listen: ListenAddress
  info: ListenerInfo | undefined
}

/** All TCP listeners and connections of a layer. Internal to the package. */
export class TcpTransport {
  readonly #opts: ResolvedTransportOptions
  readonly #sink: InboundSink
  readonly #counters: TransportCounters
  readonly #listeners: TcpListener[] = []
  readonly #flows = new Map<string, TcpFlow>()
  readonly #byPeer = new Map<string, TcpFlow>()
  readonly #perAddress = new Map<string, number>()
  #nextId = 1
  #closing = false
  #drained: Array<() => void> = []

  constructor (listens: ListenAddress[], opts: ResolvedTransportOptions, sink: InboundSink, counters: TransportCounters) {
    this.#opts = opts
    this.#sink = sink
    this.#counters = counters
    for (const l of listens) {
      const server = createServer({ noDelay: true }, socket => { this.#accept(socket) })
      // Accept errors (EMFILE...) must not take the process down.
      server.on('error', () => {})
      this.#listeners.push({ server, listen: l, info: undefined })
    }
  }

  /** True when at least one TCP listener is configured. */
  get hasListener (): boolean {
    return this.#listeners.length > 0
  }

  /** Number of open flows. */
  get size (): number {
    return this.#flows.size
  }

  /** Start listening on every configured address. */
  async listen (): Promise<ListenerInfo[]> {
    const out: ListenerInfo[] = []
    for (const l of this.#listeners) {
      await new Promise<void>((resolve, reject) => {
        const onError = (err: Error): void => { reject(err) }
        l.server.once('error', onError)
        l.server.listen({ host: l.listen.address, port: l.listen.port, ipv6Only: l.listen.family === 6, backlog: 511 }, () => {
          l.server.off('error', onError)
          resolve()
        })
      })
      const a = l.server.address()
      if (a === null || typeof a === 'string') throw new Error('TCP server has no address after listen')
      l.info = { transport: 'tcp', address: unmapAddress(a.address), port: a.port, family: l.listen.family }
      out.push(l.info)
    }
    return out
  }

  /** The flow with this id while it is not closed. */
  flow (id: string): TcpFlow | undefined {
    return this.#flows.get(id)
  }

  /**
   * Send over the flow `flowId` if it is still writable, else over an open
   * connection to address:port, else over a new connection. Never rejects.
   */
  async send (bytes: Buffer, address: string, port: number, flowId?: string): Promise<SendResult> {
    if (flowId !== undefined) {
      const f = this.#flows.get(flowId)
      if (f?.writable === true) return await f.write(bytes)
    }
    const addr = canonicalAddress(address)
    const existing = this.#byPeer.get(addr + '|' + String(port))
    if (existing?.writable === true) return await existing.write(bytes)
    const flow = this.#connect(addr, port)
    if (!(flow instanceof TcpFlow)) {
      this.#counters.sendErrors.tcp++
      return { ok: false, error: flow }
    }
    return await flow.write(bytes)
  }

  /** Stop listening and close every connection; resolves when all are closed. */
  async close (): Promise<void> {
    this.#closing = true
    const servers = this.#listeners.map(async l => {
      await new Promise<void>(resolve => {
        if (!l.server.listening) { resolve(); return }
        l.server.close(() => { resolve() })
      })
    })
    const drained = this.#flows.size === 0 ? Promise.resolve() : new Promise<void>(resolve => { this.#drained.push(resolve) })
    for (const f of this.#flows.values()) f.close('shutdown')
    await Promise.all([...servers, drained])
  }

  #accept (socket: Socket): void {
    const counters = this.#counters
    const address = unmapAddress(socket.remoteAddress ?? '')
    const port = socket.remotePort
    if (address.length === 0 || port === undefined || this.#closing) {
      // The peer is already gone (or we are shutting down).
      socket.destroy()
      return
    }
    const fromAddress = this.#perAddress.get(address) ?? 0
    if (this.#flows.size >= this.#opts.maxTcpConnections || fromAddress >= this.#opts.maxTcpConnectionsPerAddress) {
      counters.tcp.refused++
      socket.destroy()
      return
    }
    counters.tcp.accepted++
    this.#perAddress.set(address, fromAddress + 1)
    this.#register(new TcpFlow(this.#newId(), socket, true, { address, port }, this.#opts, this.#sink, counters, this.#closed))
  }

  #connect (address: string, port: number): TcpFlow | TransportSendError {
    const family = isIP(address)
    const where = `tcp:${family === 6 ? '[' + address + ']' : address}:${port}`
    if (this.#closing) return new TransportSendError('transport layer is closing', 'SIP_ERR_TRANSPORT_CLOSED', where)
    if (family === 0) return new TransportSendError('not an IP address; resolve names first', 'SIP_ERR_BAD_ADDRESS', where)
    if (!(port > 0 && port < 65536)) return new TransportSendError('port out of range', 'SIP_ERR_BAD_ADDRESS', where)
    if (this.#flows.size >= this.#opts.maxTcpConnections) {
      return new TransportSendError(`${this.#flows.size} TCP connections open (option maxTcpConnections)`, 'SIP_ERR_TOO_MANY_CONNECTIONS', where)
    }
    // Leave from the address we listen on, when it is a specific one, so the
    // peer sees the address our Via names.
    let localAddress: string | undefined
    for (const l of this.#listeners) {
      if (l.listen.family === family && l.listen.address !== '0.0.0.0' && l.listen.address !== '::') {
        localAddress = l.listen.address
        break
      }
    }
    const socket = connect({ host: address, port, family, localAddress, noDelay: true })
    const flow = new TcpFlow(this.#newId(), socket, false, { address, port }, this.#opts, this.#sink, this.#counters, this.#closed)
    this.#register(flow)
    return flow
  }

  #newId (): string {
    return 'tcp/' + String(this.#nextId++)
  }

  #register (flow: TcpFlow): void {
    this.#flows.set(flow.id, flow)
    this.#byPeer.set(flow.peerKey, flow)
    this.#counters.tcp.open++
  }

  readonly #closed = (flow: TcpFlow, reason: CloseReason): void => {
    if (this.#flows.get(flow.id) !== flow) return
    this.#flows.delete(flow.id)
    if (this.#byPeer.get(flow.peerKey) === flow) this.#byPeer.delete(flow.peerKey)
    if (flow.inbound) {
      const n = (this.#perAddress.get(flow.remote.address) ?? 1) - 1
      if (n <= 0) this.#perAddress.delete(flow.remote.address)
      else this.#perAddress.set(flow.remote.address, n)
    }
    const c = this.#counters.tcp
    c.open--
    c.closed[reason]++
    this.#sink.flowClosed(flow.id, reason)
    if (this.#flows.size === 0 && this.#drained.length > 0) {
      const waiters = this.#drained
      this.#drained = []
      for (const w of waiters) w()
    }
  }
}
