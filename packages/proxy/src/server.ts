/**
 * The sipd process: transports → sanity stage → transaction layer →
 * elements (OPTIONS to us, registrar, routing), plus HTTP, metrics, logs and
 * graceful shutdown.
 */
import type { Server as HttpServer } from 'node:http'
import { register } from 'node:module'
import { pathToFileURL } from 'node:url'
import { createResponse, parseMessage, SipParseError, validateResponse } from '@sipd/sip-parser'
import type { SipRequest, SipResponse } from '@sipd/sip-parser'
import { TransactionLayer, TransportLayer, viaReceivedParams } from '@sipd/sip-stack'
import type { AnyServerTransaction, ListenerInfo, SendTarget, Source } from '@sipd/sip-stack'
import type { Logger } from 'pino'
import type { SipdConfig } from './config.js'
import { startHttpServer } from './http-server.js'
import type { RouteHandler } from './http-server.js'
import { SipdMetrics } from './metrics.js'
import { ALLOW, checkRequest, copiedFieldsClean, reasonFrom, SUPPORTED_EXTENSIONS } from './sanity.js'
import { ProxyCore } from './proxy-core.js'
import { salvageRequest } from './salvage.js'
import { DefaultRouting, registrarLocate } from './routing-default.js'
import { flowRouting, LocationService } from './location-service.js'
import { MediaAdmin, xmlCurlRoutes } from './media-admin.js'
import type { Binding } from '@sipd/registrar'

/** Unparseable messages that cannot be answered are logged at warn at most this often (a flood must not flood the log). */
const DROP_WARN_INTERVAL_MS = 60_000

/** What sipd serves at its own URI when it only registers (no routing module, no default policy). */
const REGISTRAR_ALLOW = 'OPTIONS, REGISTER'

/** The headers of sipd's 200 to an OPTIONS addressed to it, for the methods it serves (`allow`). */
function optionsHeaders (allow: string): ReadonlyArray<readonly [string, string]> {
  return [['Allow', allow], ['Accept', 'application/sdp'], ['Supported', SUPPORTED_EXTENSIONS.join(', ')]]
}

/** One target of a `forward` decision. */
export interface RouteTarget {
  /** New Request-URI (retargeting); the request's own when absent. */
  requestUri?: string
  /** Next hop overriding the Route set and Request-URI (an outbound proxy, Kamailio's `$du`). */
  destination?: string
}

/**
 * What a routing module decides for a request. sipd stays the stateful
 * proxy whatever is chosen: transactions, Record-Route, Via, Max-Forwards,
 * CANCEL and best-response selection are its job, not the module's.
 */
export type RouteDecision =
  /** Answer the request with `status`. */
  | { action: 'reply', status: number, reason?: string, headers?: Array<[string, string]>, body?: string, contentType?: string }
  /** Say nothing (the client retransmits, then times out). */
  | { action: 'drop' }
  /** Forward to the targets in parallel (first 2xx wins); without targets, by the Route set or Request-URI. */
  | { action: 'forward', targets?: RouteTarget[] }
  /** Fork to the registered contacts of `aor` (default: the Request-URI's user@host); 404 unknown, 480 no contacts. */
  | { action: 'fork', aor?: string }
  /** To a node of media set `set` (default: `media.did_sets` / `media.default_set`), with failover. */
  | { action: 'media', set?: number | string }
  /** To the gateways of the trunk route matching `number` (default: the Request-URI user), with failover. */
  | { action: 'trunk', number?: string }
  /** What sipd would do without a routing module (the default policy). */
  | { action: 'default' }

/** What a routing module gets besides the request. */
export interface RouteContext {
  /** Where the request came from. */
  source: Source
  /** sipd's logger for the module's own notable events. */
  logger: Logger
  /** Current bindings of an AOR (`sip:user@domain`), best first. */
  lookup: (aor: string) => Promise<Binding[]>
}

/** A routing module (`routing:` in the config): `export function route(request, ctx)`. */
export interface RoutingModule {
  route: (request: SipRequest, ctx: RouteContext) => RouteDecision | Promise<RouteDecision>
}

/** Lifecycle of a Sipd instance. */
export type SipdStatus = 'starting' | 'running' | 'stopping' | 'stopped'

/** The sipd server. */
export class Sipd {
  readonly config: SipdConfig
  readonly logger: Logger
  readonly metrics: SipdMetrics
  readonly transport: TransportLayer
  readonly transactions: TransactionLayer
  #http: HttpServer | undefined
  #status: SipdStatus = 'starting'
  #listeners: ListenerInfo[] = []
  #routing: RoutingModule | undefined
  /** The methods sipd serves at its own URI (Allow of its OPTIONS 200, 405 and 501): all it proxies once it routes, else a registrar's. */
  #allow = REGISTRAR_ALLOW
  #optionsHeaders = optionsHeaders(REGISTRAR_ALLOW)
  /** The RFC 3261 §16 stateful proxy core (forwarding, response contexts, CANCEL). */
  readonly proxy: ProxyCore
  /** Registrar, location and subscriber stores (issue 7). */
  readonly locationService: LocationService
  /** The default routing policy, when no routing module replaces it. */
  #policy: DefaultRouting | undefined
  /** Media sets' source, reload and admin API (with the default policy's dispatcher). */
  media: MediaAdmin | undefined
  /** Host names and addresses that mean "sipd itself" in a Request-URI. */
  readonly #localHosts = new Set<string>()
  readonly #routes = new Map<string, RouteHandler>()
  /** 2xx responses of ours awaiting their ACK, by Call-ID, CSeq and To tag. */
  readonly #pending2xx = new Map<string, NodeJS.Timeout>()
  /** Unanswerable messages since the last warning, and when that was. */
  #drops = 0
  #dropsWarnedAt = -Infinity

  constructor (config: SipdConfig, logger: Logger, metrics = new SipdMetrics()) {
    this.config = config
    this.logger = logger
    this.metrics = metrics
    this.transport = new TransportLayer({
      onMessage: (msg, source) => { this.#onMessage(msg, source) },
      onParseError: (err, source, raw) => { this.#onParseError(err, source, raw) },
      onHandlerError: (err, source) => { this.logger.error({ err, remote: `${source.address}:${source.port}` }, 'message handler failed') }
    }, {
      listen: config.listen,
      maxMessageSize: config.limits.maxMessageSize,
      maxHeaders: config.limits.maxHeaders,
      maxTcpConnections: config.limits.tcpMaxConnections,
      maxTcpConnectionsPerAddress: config.limits.tcpMaxPerAddress,
      tcpIdleTimeout: config.limits.tcpIdleMs,
      tcpMessageTimeout: config.limits.tcpMessageTimeoutMs
    })
    this.transactions = new TransactionLayer({
      send: (bytes: Buffer, target: SendTarget) => this.transport.send(bytes, target),
      onRequest: tx => { this.#onRequest(tx) },
      onStrayAck: (ack, source) => { this.#onAck(ack, source) },
      onStrayResponse: resp => { if (!this.proxy.relayStray(resp)) this.metrics.droppedResponses++ },
      timers: { t1: config.timers.t1, t2: config.timers.t2, t4: config.timers.t4, timerD: config.timers.timerD },
      // A proxy tells loops from spirals by the §16.3 branch hash (ProxyCore):
      // §8.2.2.2 merged-request detection is a UAS rule, and in a proxy it
      // would answer 482 to a legal spiral (the same request back through
      // sipd with a new Request-URI), besides costing four map operations
      // per initial request.
      detectMergedRequests: false
    })
    this.proxy = new ProxyCore({
      transactions: this.transactions,
      listeners: () => this.#listeners,
      advertise: config.advertise,
      timerC: config.timers.timerC,
      t1: config.timers.t1,
      sendResponse: (bytes, via) => this.transport.sendResponse(bytes, via),
      onResponseOut: status => { this.metrics.responseOut(status) },
      flows: flowRouting(flowId => this.transport.isFlowOpen(flowId))
    })
    this.locationService = new LocationService(config, logger, metrics)
    for (const [key, handler] of this.locationService.routes()) this.#routes.set(key, handler)
    this.metrics.bind({
      transactions: () => ({ ...this.transactions.counters.active }),
      tcpConnections: () => this.transport.tcpConnections,
      retransmissions: () => ({ in: this.transactions.counters.retransmissionsReceived, out: this.transactions.counters.retransmissionsSent }),
      tcpEvents: () => {
        const tcp = this.transport.counters.tcp
        const events: Record<string, number> = { accepted: tcp.accepted, connected: tcp.connected, refused: tcp.refused }
        for (const [reason, n] of Object.entries(tcp.closed)) events[`closed_${reason}`] = n
        return events
      },
      registrations: async () => await this.locationService.locations.count()
    })
  }

  /** Lifecycle state. */
  get status (): SipdStatus {
    return this.#status
  }

  /** The bound SIP listeners (ports resolved when 0 was asked for). */
  get listeners (): readonly ListenerInfo[] {
    return this.#listeners
  }

  /** The HTTP port actually bound. */
  get httpPort (): number {
    const a = this.#http?.address()
    return typeof a === 'object' && a !== null ? a.port : 0
  }

  /** Add an admin HTTP route (`GET /api/x`, or `GET /api/x/*` for a prefix). */
  route (key: string, handler: RouteHandler): void {
    this.#routes.set(key, handler)
  }

  /** Bind sockets and HTTP, load the routing module. */
  async start (): Promise<void> {
    if (this.config.routing !== undefined) {
      if (/\.m?ts$/.test(this.config.routing)) registerTypeScriptLoader()
      const mod = await import(pathToFileURL(this.config.routing).href) as Partial<RoutingModule>
      if (typeof mod.route !== 'function') throw new Error(`routing module ${this.config.routing} does not export a route(request, ctx) function`)
      this.#routing = mod as RoutingModule
    }
    await this.locationService.start()
    this.#listeners = await this.transport.listen()
    for (const l of this.#listeners) this.#localHosts.add(l.address)
    for (const d of this.config.domains) this.#localHosts.add(d)
    if (this.config.advertise !== undefined) this.#localHosts.add(this.config.advertise.replace(/:\d+$/, '').toLowerCase())
    // The default policy routes once the config names something to route to or from.
    // A routing module may hand requests to the policy's media sets, trunks and forking.
    if (this.#routing !== undefined || DefaultRouting.applies(this.config)) {
      this.#policy = new DefaultRouting({
        config: this.config,
        core: this.proxy,
        transactions: this.transactions,
        logger: this.logger,
        servedHosts: this.#localHosts,
        locate: registrarLocate(async aor => await this.lookup(aor), this.locationService.subscribers, this.config.nodeId, this.locationService.authExempt),
        auth: { subscribers: this.locationService.subscribers }
      })
      this.media = new MediaAdmin({ config: this.config, policy: this.#policy, logger: this.logger, registry: this.metrics.registry })
      await this.media.start()
      for (const [key, handler] of this.media.routes()) this.#routes.set(key, handler)
      this.#policy.start()
      this.#allow = ALLOW
      this.#optionsHeaders = optionsHeaders(ALLOW)
    }
    const c = this.config.http.lastIndexOf(':')
    this.#http = await startHttpServer({
      host: this.config.http.slice(0, c),
      port: Number(this.config.http.slice(c + 1)),
      registry: this.metrics.registry,
      healthy: () => this.#status === 'running',
      routes: this.#routes,
      raw: xmlCurlRoutes(this.config, this.locationService.subscribers, this.logger),
      onError: err => { this.logger.error({ err }, 'http handler failed') }
    })
    this.#status = 'running'
    this.logger.info({ listen: this.#listeners.map(l => `${l.transport}:${l.address.includes(':') ? `[${l.address}]` : l.address}:${l.port}`), http: `${this.config.http.slice(0, c)}:${this.httpPort}` }, 'sipd listening')
  }

  /**
   * Stop accepting, let transactions finish for at most `graceMs`, then
   * close everything.
   */
  async stop (graceMs = 5000): Promise<void> {
    if (this.#status === 'stopping' || this.#status === 'stopped') return
    this.#status = 'stopping'
    this.#policy?.stop()
    const deadline = Date.now() + graceMs
    while (this.transactions.size > 0 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 50))
    for (const timer of this.#pending2xx.values()) clearTimeout(timer)
    this.#pending2xx.clear()
    this.transactions.close()
    await this.transport.close()
    await this.locationService.close()
    await this.media?.close()
    if (this.#http !== undefined) {
      this.#http.closeAllConnections()
      await new Promise<void>(resolve => this.#http!.close(() => resolve()))
    }
    this.#status = 'stopped'
  }

  /** Current bindings of an AOR (`sip:user@domain`), best first; rejects with StoreUnavailableError when the store is down. */
  async lookup (aor: string): Promise<Binding[]> {
    return await this.locationService.lookup(aor)
  }

  #register (tx: AnyServerTransaction): void {
    const s = tx.source
    // The flow URI only when a binding is written (a function: minting its token is an HMAC).
    this.locationService.registrar.handleRegister(tx.request, { transport: s.transport, address: s.address, port: s.port, flowId: s.flowId, flowUri: () => this.proxy.flowUri(s) }).then(
      r => { this.#respond(tx, r.status, r.reason, r.headers) },
      err => {
        // handleRegister answers every failure itself; this is a last guard.
        this.logger.error({ err }, 'REGISTER handling failed')
        this.#respond(tx, 500, 'Server Internal Error')
      })
  }

  /** True when a Request-URI names sipd itself (no user part, our host). */
  isToUs (req: SipRequest): boolean {
    try {
      const uri = req.requestUri
      if (uri.user !== undefined && uri.user !== '') return false
      const host = uri.host.startsWith('[') ? uri.host.slice(1, -1) : uri.host
      if (this.#localHosts.has(host)) return true
      // A wildcard listener answers to any of the host's addresses.
      return this.#listeners.some(l => (l.address === '0.0.0.0' || l.address === '::') && (uri.port === undefined || uri.port === l.port))
    } catch {
      return false
    }
  }

  #onParseError (err: SipParseError, source: Source, raw: Buffer | undefined): void {
    this.metrics.parseErrors.labels(err.code).inc()
    if (this.#status === 'running') {
      const partial = err.partial
      if (partial !== undefined) {
        if (partial.method === 'ACK') return this.#dropped(err, source, raw)
        // Enough parsed to answer: RFC 3261 §16.3 / RFC 4475 — a clear 400 naming the defect.
        try {
          if (partial.topVia !== undefined) {
            const status = parseErrorStatus(err)
            this.transactions.replyStateless(partial, source, status, status === 513 ? 'Message Too Large' : reasonFrom(err.message))
            this.metrics.sanity.labels(String(status)).inc()
            this.metrics.responseOut(status)
            return
          }
        } catch {
          // Headers too broken to answer: try the raw bytes, else a counted drop.
        }
      }
      // The headers did not index (a line without a colon, no request line):
      // still a 400 when the raw bytes hold what a response copies (§8.2.6.2).
      if (raw !== undefined && this.#answerSalvaged(err, source, raw)) return
    }
    this.#dropped(err, source, raw)
  }

  /** A 400 built from the Via, From, To, Call-ID and CSeq lines of a request that did not parse; false when there is none to build. */
  #answerSalvaged (err: SipParseError, source: Source, raw: Buffer): boolean {
    const synthetic = salvageRequest(raw)
    if (synthetic === undefined) return false
    let status: number
    try {
      const req = parseMessage(synthetic)
      if (!req.isRequest || req.cseq.method === 'ACK' || !copiedFieldsClean(req)) return false
      void req.callId // throws for a Call-ID the grammar refuses (§25.1): nothing to copy then
      status = parseErrorStatus(err)
      const reason = status === 513 ? 'Message Too Large' : reasonFrom(err.message)
      let via
      try {
        via = req.topVia
      } catch {
        // A Via too broken to route by as well (sipsak -R trashes several
        // bytes at once): back to the packet's source with the Via lines as
        // they came, as a request whose only defect is its Via gets (RFC 4475 §3.1.2.1).
        this.metrics.sanity.labels(String(status)).inc()
        this.#replyToSource(req, source, status, reason)
        return true
      }
      if (via === undefined) return false
      this.transactions.replyStateless(req, source, status, reason)
    } catch {
      return false
    }
    this.metrics.sanity.labels(String(status)).inc()
    this.metrics.responseOut(status)
    return true
  }

  /**
   * A message nobody can be answered for: counted (parseErrors), logged at
   * debug each, and at warn at most once a minute with how many there were.
   */
  #dropped (err: SipParseError, source: Source, raw: Buffer | undefined): void {
    this.#drops++
    const now = Date.now()
    if (now - this.#dropsWarnedAt >= DROP_WARN_INTERVAL_MS) {
      this.logger.warn({ dropped: this.#drops, code: err.code, remote: `${source.address}:${source.port}`, transport: source.transport }, `dropped ${this.#drops} unanswerable message(s) since the last warning; last: ${err.message}`)
      this.#drops = 0
      this.#dropsWarnedAt = now
    } else if (this.logger.isLevelEnabled('debug')) {
      this.logger.debug({ code: err.code, offset: err.offset, remote: `${source.address}:${source.port}`, transport: source.transport, bytes: raw?.length }, `dropped: ${err.message}`)
    }
  }

  #onMessage (msg: SipRequest | SipResponse, source: Source): void {
    if (!msg.isRequest) {
      this.metrics.responseIn(msg.status)
      // A response whose Via, From, To, Call-ID or CSeq does not parse cannot
      // be matched or relayed: a counted drop (RFC 3261 §18.1.2, §16.7), not
      // an exception half-way through a client transaction.
      const bad = validateResponse(msg) ?? (copiedFieldsClean(msg) ? undefined : 'CR or LF in From or To')
      if (bad !== undefined) {
        this.metrics.parseErrors.labels('SIP_ERR_BAD_RESPONSE').inc()
        if (this.logger.isLevelEnabled('debug')) this.logger.debug({ remote: `${source.address}:${source.port}`, transport: source.transport }, `dropped response: ${bad}`)
        return
      }
      this.transactions.receive(msg, source)
      return
    }
    this.metrics.requestIn(msg.method)
    const toUs = this.isToUs(msg)
    // A REGISTER the registrar answers has sipd as its UAS whatever its Request-URI (§10.3).
    const verdict = checkRequest(msg, toUs || (msg.method === 'REGISTER' && this.#registrarTakes(msg)), this.#allow)
    if (verdict !== undefined) {
      this.metrics.sanity.labels(String(verdict.status)).inc()
      if (msg.method !== 'ACK') {
        try {
          this.transactions.replyStateless(msg, source, verdict.status, verdict.reason, { headers: verdict.headers })
          this.metrics.responseOut(verdict.status)
        } catch {
          this.#replyToSource(msg, source, verdict.status, verdict.reason, verdict.headers)
        }
      }
      return
    }
    if (msg.method === 'OPTIONS' && toUs) {
      // Keep-alive pings and probes: answered statelessly (RFC 3261 §8.2.7),
      // as Kamailio's sl module does, so they hold no transaction for Timer J.
      this.transactions.replyStateless(msg, source, 200, 'OK', { headers: this.#optionsHeaders })
      this.metrics.responseOut(200)
      return
    }
    if (this.#status !== 'running' && msg.method !== 'ACK' && msg.method !== 'CANCEL' && msg.method !== 'BYE') {
      // Shutting down: refuse new work, finish what is in flight (RFC 3261 §21.5.4).
      this.transactions.replyStateless(msg, source, 503, 'Service Unavailable', { headers: [['Retry-After', '5']] })
      this.metrics.responseOut(503)
      return
    }
    if (msg.method === 'REGISTER' && this.#registerStateless(msg, source)) return
    this.transactions.receive(msg, source)
  }

  /**
   * A REGISTER without credentials can only be challenged or refused: the
   * registrar answers it without a transaction (RFC 3261 §8.2.7, stateless
   * UAS for challenges), so a REGISTER costs one transaction held for
   * Timer J instead of two. False when it must go through a transaction.
   */
  #registerStateless (req: SipRequest, source: Source): boolean {
    if (!this.#registrarTakes(req)) return false
    const r = this.locationService.registrar.answerStateless(req, source)
    if (r === undefined) return false
    this.transactions.replyStateless(req, source, r.status, r.reason, { headers: r.headers })
    this.metrics.responseOut(r.status)
    return true
  }

  /**
   * Answer a request whose Via is too broken to route a response by
   * (RFC 4475 §3.1.2.1): the received Via lines are copied as they are and
   * the response goes back to the packet's source over its transport.
   */
  #replyToSource (req: SipRequest, source: Source, status: number, reason: string, headers?: Array<[string, string]>): void {
    try {
      const bytes = createResponse(req, status, reason, { headers })
      void this.transport.send(bytes, { transport: source.transport, address: source.address, port: source.port, flowId: source.flowId })
      this.metrics.responseOut(status)
    } catch (err) {
      this.metrics.parseErrors.labels(err instanceof SipParseError ? err.code : 'SIP_ERR_UNANSWERABLE').inc()
    }
  }

  /** Whether the registrar answers this REGISTER: every one without a routing module, else those for a served domain. */
  #registrarTakes (req: SipRequest): boolean {
    return this.#routing === undefined || this.locationService.servesRegister(req)
  }

  #onRequest (tx: AnyServerTransaction): void {
    const req = tx.request
    // REGISTER for a served domain: the registrar (RFC 3261 §10.3); without a
    // routing module it answers every REGISTER (403 for foreign domains).
    if (req.method === 'REGISTER' && this.#registrarTakes(req)) {
      this.#register(tx)
      return
    }
    if (this.#routing !== undefined) {
      this.#runRouting(tx)
      return
    }
    if (this.#policy !== undefined && req.method !== 'REGISTER') {
      this.#policy.route(tx)
      return
    }
    if (req.method === 'CANCEL') {
      // No transaction of ours to cancel (the layer matched none).
      this.#respond(tx, 481, 'Call/Transaction Does Not Exist')
      return
    }
    if (req.method !== 'REGISTER' && this.isToUs(req)) {
      // RFC 3261 §8.2.1, §21.4.6: sipd itself, without a routing policy, is
      // only a registrar; the method is known (unknown ones got 501) but not
      // served at this URI.
      this.#respond(tx, 405, 'Method Not Allowed', [['Allow', REGISTRAR_ALLOW]])
      return
    }
    this.#respond(tx, req.method === 'REGISTER' ? 403 : 404, req.method === 'REGISTER' ? 'Domain Not Served' : 'Not Found')
  }

  #runRouting (tx: AnyServerTransaction): void {
    const req = tx.request
    if (req.method === 'CANCEL') {
      // Hop by hop (RFC 3261 §9.2, §16.10): sipd's, not the module's.
      this.proxy.cancel(tx)
      return
    }
    let pending: RouteDecision | Promise<RouteDecision>
    try {
      pending = this.#routing!.route(req, this.#routeContext(tx))
    } catch (err) {
      this.#routingFailed(tx, err)
      return
    }
    if (pending instanceof Promise) {
      pending.then(d => { this.#apply(tx, d) }, err => { this.#routingFailed(tx, err) })
    } else {
      this.#apply(tx, pending)
    }
  }

  #routeContext (tx: AnyServerTransaction): RouteContext {
    return { source: tx.source, logger: this.logger, lookup: async aor => await this.lookup(aor) }
  }

  #apply (tx: AnyServerTransaction, d: RouteDecision): void {
    if (tx.lastStatus >= 200) return // answered meanwhile (a CANCEL while the module was deciding)
    const policy = this.#policy!
    switch (d?.action) {
      case 'reply':
        this.#respond(tx, d.status, d.reason, d.headers, d.body, d.contentType)
        break
      case 'drop':
        break
      case 'forward':
        this.proxy.forward(tx, d.targets === undefined || d.targets.length === 0 ? [{}] : d.targets.map(t => ({ requestUri: t.requestUri, destination: t.destination })))
        break
      case 'fork': {
        const aor = d.aor ?? requestAor(tx.request)
        if (aor === undefined) this.proxy.reply(tx, 404, 'Not Found')
        else policy.toAor(tx, aor)
        break
      }
      case 'media':
        policy.toMedia(tx, d.set)
        break
      case 'trunk': {
        const number = d.number ?? requestAor(tx.request, true)
        if (number === undefined) this.proxy.reply(tx, 404, 'Not Found')
        else policy.toTrunk(tx, number)
        break
      }
      case 'default':
        policy.route(tx)
        break
      default:
        this.#routingFailed(tx, new Error(`routing module returned an unknown decision ${JSON.stringify(d)}`))
        return
    }
    this.metrics.routing.labels(d.action).inc()
  }

  #routingFailed (tx: AnyServerTransaction, err: unknown): void {
    this.logger.error({ err, callId: safeCallId(tx) }, 'routing module failed')
    this.metrics.routing.labels('error').inc()
    // 500 without the stack: the details are in the log.
    this.#respond(tx, 500, 'Server Internal Error')
  }

  #respond (tx: AnyServerTransaction, status: number, reason?: string, headers?: Array<[string, string]>, body?: string, contentType?: string): void {
    if (tx.method === 'INVITE' && status >= 200 && status < 300) {
      this.#answer2xx(tx, status, reason, headers, body, contentType)
      return
    }
    try {
      if (tx.respond(status, reason, { headers, body, contentType })) this.metrics.responseOut(status)
    } catch (err) {
      // A header value the builder refuses (CR/LF from a request's bytes)
      // must not leave the request unanswered or throw out of a promise
      // continuation (an unhandled rejection ends the process): 500 without it.
      this.logger.error({ err, status }, 'building a response failed')
      if (tx.respond(500, 'Server Internal Error')) this.metrics.responseOut(500)
    }
  }

  /**
   * A 2xx to an INVITE answered by sipd itself (a routing module acting as
   * UAS): the transaction sends it once (RFC 6026), and the UAS core
   * retransmits it from T1 doubling to T2 until the ACK comes, for at most
   * 64*T1 (RFC 3261 §13.3.1.4).
   */
  #answer2xx (tx: AnyServerTransaction, status: number, reason: string | undefined, headers: Array<[string, string]> | undefined, body: string | undefined, contentType: string | undefined): void {
    const req = tx.request
    const toTag = req.to.tag ?? tx.toTag
    const bytes = createResponse(req, status, reason, {
      toTag,
      headers,
      body,
      contentType,
      copyRecordRoute: true,
      topViaParams: viaReceivedParams(req.topVia!, tx.source)
    })
    if (!tx.sendResponse(bytes, status, toTag)) return
    this.metrics.responseOut(status)
    const key = `${req.callId} ${req.cseq.seq} ${toTag}`
    const target = this.transactions.responseTarget(req, tx.source)
    const t1 = this.config.timers.t1
    const t2 = this.config.timers.t2
    const started = Date.now()
    let interval = t1
    const tick = (): void => {
      if (Date.now() - started >= 64 * t1 || this.#status === 'stopped') {
        this.#pending2xx.delete(key)
        return
      }
      this.transactions.sendStateless(bytes, target)
      this.metrics.ownRetransmissionsOut++
      interval = Math.min(interval * 2, t2)
      this.#pending2xx.set(key, setTimeout(tick, interval).unref())
    }
    this.#pending2xx.set(key, setTimeout(tick, interval).unref())
  }

  #onAck (ack: SipRequest, source: Source): void {
    // The ACK of a 2xx we sent ends its retransmissions (RFC 3261 §13.3.1.4).
    try {
      // Only a routing module answering as UAS has 2xx of its own pending: a proxy's ACKs skip the key.
      if (this.#pending2xx.size > 0) {
        const key = `${ack.callId} ${ack.cseq.seq} ${ack.to.tag}`
        const timer = this.#pending2xx.get(key)
        if (timer !== undefined) {
          clearTimeout(timer)
          this.#pending2xx.delete(key)
          return
        }
      }
      // An ACK for a 2xx we relayed: forwarded statelessly by its Route set (RFC 3261 §16.11).
      // One with no next hop but sipd (sipp's built-in uac sends its ACK to the proxy's
      // address without a Route) ends here, counted.
      if (this.#policy === undefined || !this.proxy.forwardStateless(ack, source)) this.metrics.droppedAcks++
    } catch {
      // A malformed ACK has nothing to stop.
      this.metrics.droppedAcks++
    }
  }
}

/** RFC 3261 §21.4.11 513 for a message over our size limit, §21.5.6 505 for another version, else 400. */
function parseErrorStatus (err: SipParseError): number {
  return err.code === 'SIP_ERR_MESSAGE_TOO_LARGE' ? 513 : err.code === 'SIP_ERR_BAD_VERSION' ? 505 : 400
}

function safeCallId (tx: AnyServerTransaction): string | undefined {
  try {
    // tx.request too may throw: an INVITE answered 2xx has let go of its request.
    return tx.request.callId
  } catch {
    return undefined
  }
}

/** `sip:user@host` of a request's Request-URI (or just the user), undefined without a user. */
function requestAor (req: SipRequest, userOnly = false): string | undefined {
  try {
    const u = req.requestUri
    if (u.user === undefined || u.user === '') return undefined
    return userOnly ? u.user : `sip:${u.user}@${u.host.toLowerCase()}`
  } catch {
    return undefined
  }
}

let tsLoaderRegistered = false
/** Lets `import()` load a TypeScript routing module (see ts-loader.ts); once per process. */
function registerTypeScriptLoader (): void {
  if (tsLoaderRegistered) return
  register('./ts-loader.js', import.meta.url)
  tsLoaderRegistered = true
}
