/**
 * The RFC 3261 §16 stateful proxy core: route preprocessing (§16.4),
 * loop detection (§16.3 step 4 with the §16.6 step 8 branch), forwarding
 * by splicing the received bytes (§16.6), the response context (§16.7),
 * Timer C (§16.8), CANCEL (§16.10), stateless forwarding of ACKs for 2xx
 * and of stray responses (§16.11, §16.7 step 3).
 *
 * The core decides nothing about where a request goes: a policy hands it
 * targets (`forward`) and, optionally, a failover function for serial
 * attempts (media nodes, trunk gateways).
 */
import { networkInterfaces } from 'node:os'
import { forwardRequest, parseUri, reasonPhrase, stripTopVia } from '@sipd/sip-parser'
import type { NameAddr, SipRequest, SipResponse, SipUri, Via } from '@sipd/sip-parser'
import { buildCancel, ClientInviteTransaction, hasMagicCookie, newTag, ownString, ServerInviteTransaction, viaReceivedParams } from '@sipd/sip-stack'
import type { AnyServerTransaction, ClientTransaction, ClientTransactionHandler, ListenerInfo, SendResult, SendTarget, ServerTransactionHandler, Source, TimerWheel, TransactionLayer, TransportName, WheelTimer } from '@sipd/sip-stack'

/** The prefix of branches sipd writes: the magic cookie and `sd` (RFC 3261 §16.6 step 8). */
const BRANCH_PREFIX = 'z9hG4bKsd'
/** Length of the loop-detection hash in a branch (hex digits). */
const HASH_LEN = 16

/** What the core needs from the server around it. */
export interface ProxyCoreOptions {
  /** The transaction layer requests are forwarded through. */
  transactions: TransactionLayer
  /** The bound listeners (read at each use: they are known after start). */
  listeners: () => readonly ListenerInfo[]
  /** Host, optionally `host:port`, written in Via and Record-Route instead of the listener address. @default undefined */
  advertise?: string | undefined
  /** Proxy Timer C in ms (RFC 3261 §16.8, more than 3 minutes in production). @default 180000 */
  timerC?: number
  /** T1 in ms: how long to wait for the 487 after CANCELling a branch is 64·T1. @default 500 */
  t1?: number
  /** Sends a response statelessly by its top Via (`TransportLayer.sendResponse`). */
  sendResponse: (bytes: Buffer, via: Via) => Promise<SendResult> | SendResult
  /** Called for every response sent upstream (metrics). @default none */
  onResponseOut?: ((status: number) => void) | undefined
  /**
   * Flow tokens of this node (RFC 5626 §5.2): a Route entry of ours whose
   * user part is a token sends the request down the flow it names.
   * @default undefined (a Route URI with a user part is never ours)
   */
  flows?: FlowRouting | undefined
}

/** How the core mints and reads flow tokens (the registrar's `FlowTokens`, typed for sending). */
export interface FlowRouting {
  /** The token naming a flow: a phone's transport, address and port as this node sees them. */
  encode: (flow: SendTarget) => string
  /** The flow a token names; undefined when it is not a token of ours. */
  decode: (token: string) => SendTarget | undefined
  /** Whether the flow can still carry a request (its TCP connection is open). @default always */
  isOpen?: (flow: SendTarget) => boolean
}

/** Defaults of the optional {@link ProxyCoreOptions}. */
export const DEFAULT_PROXY_CORE_OPTIONS = Object.freeze({ timerC: 180_000, t1: 500 })

/** Where one branch goes. */
export interface ForwardTarget {
  /** New Request-URI (retargeting, §16.5); the request's own when absent. */
  requestUri?: string
  /**
   * The next hop, overriding the Route set and the Request-URI (an
   * outbound proxy, Kamailio's `$du`): a media node or a gateway.
   */
  destination?: string
  /**
   * Route values (name-addr) put on top of the Route set, the next hop
   * being the first: a registered contact's Path (RFC 3327 §5.3), or the
   * holding node's flow URI.
   */
  route?: readonly string[]
  /**
   * The destination is a flow a phone registered on: our Record-Route
   * carries its token so that in-dialog requests come down the same flow
   * (RFC 5626 §5.3).
   */
  flow?: boolean
}

/** How a branch ended, for a policy's failover and bookkeeping. */
export interface BranchOutcome {
  target: ForwardTarget
  /** Final status; 408 for a timeout, 503 for a transport error (RFC 3261 §16.7, §16.9). */
  status: number
  /** True when the response came from the network, false when the proxy synthesized it. */
  received: boolean
  /** Whether the branch had a provisional response before its final one. */
  provisional: boolean
}

/** Options of {@link ProxyCore.forward}. */
export interface ForwardOptions {
  /**
   * A branch failed with a non-2xx, non-6xx final, a timeout or a transport
   * error: return another target to try in its place (serial failover),
   * several to fork to in parallel (the next q group of a serial search,
   * RFC 3261 §16.6), or undefined to let the failure count.
   */
  failover?: (outcome: BranchOutcome) => ForwardTarget | readonly ForwardTarget[] | undefined
  /**
   * Called once with the final status sent upstream, and the target of the
   * branch that produced it. Both callbacks are called as methods of the
   * options object, so they may be methods of a class that holds their state.
   */
  onFinal?: (status: number, target: ForwardTarget | undefined) => void
  /**
   * Header names to drop from the forwarded request, e.g. the
   * Proxy-Authorization this proxy consumed (RFC 3261 §22.3).
   * @default none
   */
  removeHeaders?: readonly string[]
  /**
   * Add our Record-Route (RFC 3261 §16.6 step 4).
   * @default true for requests without a To tag, other than REGISTER
   */
  recordRoute?: boolean
  /**
   * An INVITE branch with no response at all (not even 100) after this long
   * ends as a 408 and goes to `failover`, rather than waiting for Timer B
   * (64·T1): a dead media node is left after a moment (Kamailio's
   * `fr_timer`). Any response re-arms Timer C as usual.
   * @default Timer C
   */
  responseTimeoutMs?: number | undefined
  /**
   * The request's route preprocessing (§16.4), when the caller did it
   * already with {@link ProxyCore.preprocess}: not done a second time.
   * @default done by `forward`
   */
  preprocessed?: Preprocessed | undefined
}

/** The outcome of route preprocessing (§16.4). */
export interface Preprocessed {
  /** The Request-URI to forward with (changed when a strict router sent us our own Record-Route). */
  requestUri: string
  /** True when the Request-URI was replaced (strict router). */
  uriChanged: boolean
  /** The Route set left after removing our own entries. */
  routes: NameAddr[]
  /** True when an entry of ours was removed (or the Request-URI was our Record-Route). */
  ours: boolean
  /** The flow named by a token in a removed entry of ours (RFC 5626 §5.3). @default undefined */
  flow?: SendTarget
  /** A second flow, when our two entries name one each (the caller's and the callee's): the one the request did not come from is its next hop. @default undefined */
  otherFlow?: SendTarget
  /** An entry of ours named a flow that is gone (closed, or a token of an earlier process): 430 when it is the next hop. @default false */
  flowFailed?: boolean
}

/** A request the core refuses before forwarding: answer it with this status. */
export interface Refusal {
  status: number
  reason: string
}

/** A parsed URI with what the core asks of it (see ProxyCore#uriInfo). */
interface UriInfo {
  /** The text it was parsed from (a copy, also its key in the cache). */
  readonly key: string
  readonly uri: SipUri
  /** isOurUri(uri) */
  readonly ours: boolean
  /** The next hop is one of our own sockets (whatever the user part): sending there comes straight back. */
  readonly self: boolean
  /** The next hop it names; undefined for a host name (DNS). */
  readonly target: SendTarget | undefined
}

/**
 * FNV-1a in two 32-bit lanes over a sequence of strings, each followed by
 * LF: the hash of their LF-joined text without building it.
 */
class Hash64 {
  a = 0x811c9dc5
  b = 0x01000193 ^ 0x5bd1e995

  add (text: string): this {
    let a = this.a
    let b = this.b
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i)
      a = Math.imul(a ^ c, 0x01000193)
      b = Math.imul(b ^ c, 0x01000193) ^ (b >>> 15)
    }
    this.a = a
    this.b = b
    return this
  }

  /** `add(text)` then the separator. */
  field (text: string): this {
    this.add(text)
    this.a = Math.imul(this.a ^ 0x0a, 0x01000193)
    this.b = Math.imul(this.b ^ 0x0a, 0x01000193) ^ (this.b >>> 15)
    return this
  }

  hex (): string {
    // One flat string from char codes: Number#toString(16) and padStart cost more than the
    // hashing, and joined pieces stay a tree of eight strings for as long as the hash is held
    // (a response context's, 32 s after a 2xx).
    const a = this.a
    const b = this.b
    // A table lookup per nibble: about half the time of a compare-and-add (micro: 60 -> 30 ns).
    const h = HEX_CODES
    return String.fromCharCode(
      h[a >>> 28]!, h[(a >>> 24) & 15]!, h[(a >>> 20) & 15]!, h[(a >>> 16) & 15]!,
      h[(a >>> 12) & 15]!, h[(a >>> 8) & 15]!, h[(a >>> 4) & 15]!, h[a & 15]!,
      h[b >>> 28]!, h[(b >>> 24) & 15]!, h[(b >>> 20) & 15]!, h[(b >>> 16) & 15]!,
      h[(b >>> 12) & 15]!, h[(b >>> 8) & 15]!, h[(b >>> 4) & 15]!, h[b & 15]!)
  }
}

/** Route edits of the forwarded request (see #routeEdits). */
interface RouteEdits { removeHeaders?: string[], pushRoute?: string[], popRoute?: boolean }

/** Route edits of a request forwarded as it came (the usual case). */
const NO_ROUTE_EDITS: RouteEdits = Object.freeze({})
/** Route edits of a request whose top Route entry, and only it, was ours (an in-dialog request through our Record-Route). */
const POP_ROUTE_EDITS: RouteEdits = Object.freeze({ popRoute: true })

/** Char codes of the lower-case hex digits, by nibble. */
const HEX_CODES = Uint8Array.from('0123456789abcdef', c => c.charCodeAt(0))

/**
 * The hash in the branch of a request forwarded statelessly (RFC 3261
 * §16.11): the same for a retransmission, another for another transaction.
 * A received branch with the magic cookie is unique per transaction
 * already, so it and the method are all that is hashed (Call-ID and CSeq
 * cost a string and ~15% of the hashing, and add nothing); without the
 * cookie, the fields §16.11 lists: top Via, To and From tags, Call-ID, CSeq
 * number and Request-URI.
 */
export function statelessBranchHash (req: SipRequest): string {
  const via = req.topVia
  const branch = via?.branch
  if (hasMagicCookie(branch)) return new Hash64().field(branch).add(req.method).hex()
  return new Hash64().field(via?.raw ?? '').field(req.to.tag ?? '').field(req.from.tag ?? '').field(req.callId)
    .field(String(req.cseq.seq)).field(req.method).add(req.uri).hex()
}

/**
 * The loop-detection hash of a request (RFC 3261 §16.6 step 8): the fields a
 * looping request keeps (Request-URI as received, Call-ID, From and To tags,
 * CSeq number, Proxy-Require, Proxy-Authorization). The top Via is left out
 * on purpose: it changes on every hop, so a loop could never match (RFC 5393 §4.2).
 */
export function loopHash (req: SipRequest): string {
  return new Hash64().field(req.uri).field(req.callId).field(req.from.tag ?? '').field(req.to.tag ?? '')
    .field(String(req.cseq.seq)).field(req.header('proxy-require') ?? '').add(req.header('proxy-authorization') ?? '').hex()
}

function bracket (host: string): string {
  return host.indexOf(':') >= 0 && !host.startsWith('[') ? '[' + host + ']' : host
}

function unbracket (host: string): string {
  return host.startsWith('[') ? host.slice(1, -1) : host
}

/** Transport named by a URI's `transport` parameter; UDP by default (RFC 3263 §4.1 for a numeric host). */
function uriTransport (uri: SipUri): TransportName {
  const t = uri.params.get('transport')
  return typeof t === 'string' && t.toLowerCase() === 'tcp' ? 'tcp' : 'udp'
}

/** The §16.7 step 6 choice between two final responses: 6xx first, else the lowest class. */
function better (a: number, b: number): boolean {
  if (b >= 600) return false
  if (a >= 600) return true
  return Math.floor(a / 100) < Math.floor(b / 100)
}

/** An error in forwarding that the caller treats as a failed send. */
export class ProxyError extends Error {
  readonly code: string
  constructor (code: string, message: string) {
    super(message)
    this.name = 'ProxyError'
    this.code = code
  }
}

/** The stateful proxy core. */
export class ProxyCore {
  readonly #tl: TransactionLayer
  readonly #listeners: () => readonly ListenerInfo[]
  readonly #advertiseHost: string | undefined
  readonly #advertisePort: number | undefined
  readonly #timerC: number
  readonly #t1: number
  readonly #sendResponse: ProxyCoreOptions['sendResponse']
  readonly #onResponseOut: ((status: number) => void) | undefined
  readonly #flows: FlowRouting | undefined
  /** The `host:port` values we wrote as Via sent-by (§16.3 step 4 compares against them). */
  readonly #sentBys = new Set<string>()
  /** `transport|address|port` of our own sockets (see #isSelf), once the listeners are bound. */
  #selfKeys: Set<string> | undefined = undefined
  /** URIs by text, parsed once (see #uriInfo). */
  readonly #uris = new Map<string, UriInfo>()
  /** The text #uriInfo answered last (its entry's own copy) and its entry. */
  #lastUriText: string | undefined = undefined
  #lastUriInfo: UriInfo | undefined = undefined
  /** The one before the last: an in-dialog request asks for two (its Route, ours, then its Request-URI). */
  #prevUriText: string | undefined = undefined
  #prevUriInfo: UriInfo | undefined = undefined
  /** Via text up to the branch value, by transport, listener and local address. */
  readonly #viaPrefixes = new Map<string, string>()
  /** Record-Route entries without flow token, by transport, address and port. */
  readonly #recordRoutes = new Map<string, string>()
  /** The Via prefix a bound listener writes. */
  readonly #viaByListener = new WeakMap<ListenerInfo, string>()
  /** Our Record-Route for requests that arrived on a local socket address (one object per socket). */
  readonly #rrByLocal = new WeakMap<object, readonly string[]>()
  /**
   * Branch ids: RFC 3261 §8.1.1.7 wants them unique across space and time.
   * 64 random bits drawn once per core and a counter make them so without a
   * random draw per branch.
   */
  readonly #branchStem = newTag() + '.'
  #branchSeq = 0
  /** INVITE response contexts alive: each is its server transaction's handler, so no map from one to the other is held per call. */
  #contexts = 0

  constructor (options: ProxyCoreOptions) {
    this.#tl = options.transactions
    this.#listeners = options.listeners
    this.#timerC = options.timerC ?? DEFAULT_PROXY_CORE_OPTIONS.timerC
    this.#t1 = options.t1 ?? DEFAULT_PROXY_CORE_OPTIONS.t1
    if (!(Number.isInteger(this.#timerC) && this.#timerC > 0)) throw new RangeError(`ProxyCore timerC must be a positive integer (ms), got ${String(options.timerC)}`)
    this.#sendResponse = options.sendResponse
    this.#onResponseOut = options.onResponseOut
    this.#flows = options.flows
    const adv = options.advertise
    if (adv !== undefined) {
      // host, host:port, [v6] or [v6]:port
      const close = adv.lastIndexOf(']')
      const colon = adv.lastIndexOf(':')
      if (colon > close && (close >= 0 || adv.indexOf(':') === colon)) {
        this.#advertiseHost = adv.slice(0, colon)
        this.#advertisePort = Number(adv.slice(colon + 1))
      } else {
        this.#advertiseHost = adv
      }
    }
  }

  /** Number of INVITE response contexts alive. */
  get activeContexts (): number {
    return this.#contexts
  }

  /** True when `uri` names this proxy: one of our listener or advertised addresses, with our port. */
  isOurUri (uri: SipUri): boolean {
    if (uri.user !== undefined && uri.user !== '') return false
    return this.#isOurHost(uri)
  }

  /**
   * A URI of ours carrying a flow token as its user part (our Path or
   * Record-Route for a registered flow): the flow, else undefined.
   */
  ourFlow (uri: SipUri): SendTarget | undefined {
    if (!this.isFlowUri(uri)) return undefined
    return this.#flows!.decode(uri.user!)
  }

  /** True for a URI of ours with a user part: one of our flow URIs, its flow alive or not (we write no other). */
  isFlowUri (uri: SipUri): boolean {
    return this.#flows !== undefined && uri.user !== undefined && uri.user !== '' && this.#isOurHost(uri)
  }

  /**
   * The URI at which this node takes requests for the flow a message came
   * in on (RFC 5626 §5.1: an edge proxy's Path with a flow token): our
   * address for that transport with the flow's token as user part.
   * Undefined without flow tokens, or on a wildcard listener without
   * `advertise` (no address other nodes could use).
   */
  flowUri (source: Source): string | undefined {
    if (this.#flows === undefined) return undefined
    const local = source.local.address
    if (this.#advertiseHost === undefined && (local === '0.0.0.0' || local === '::' || local === '')) return undefined
    const token = this.#flows.encode({ transport: source.transport, address: source.address, port: source.port, flowId: source.flowId })
    const rr = this.#recordRoute(source.transport, source.local.address, source.local.port, token)
    return rr.slice(1, -1)
  }

  #isOurHost (uri: SipUri): boolean {
    const host = unbracket(uri.host).toLowerCase()
    const port = uri.port ?? 5060
    if (this.#advertiseHost !== undefined && unbracket(this.#advertiseHost).toLowerCase() === host) {
      if (this.#advertisePort === undefined || this.#advertisePort === port) return true
    }
    for (const l of this.#listeners()) {
      if (l.port !== port) continue
      if (l.address === host || l.address === '0.0.0.0' || l.address === '::') return true
    }
    return false
  }

  /**
   * RFC 3261 §16.3 step 4: a request carrying a Via of ours whose branch
   * hash equals the request's own is looping (a spiral changes the hash).
   */
  isLooping (req: SipRequest): boolean {
    // Branches are compared byte for byte: a message without our prefix
    // anywhere has no Via of ours, and its Vias need not be parsed.
    const at = req.buf.indexOf(BRANCH_PREFIX, req.start, 'latin1')
    if (at < 0 || at >= req.headersEnd) return false
    let h: string | undefined
    for (const via of req.via) {
      const b = via.branch
      if (b === undefined || !b.startsWith(BRANCH_PREFIX)) continue
      if (!this.#sentBys.has(unbracket(via.host).toLowerCase() + ':' + String(via.port ?? 5060))) continue
      h ??= loopHash(req)
      if (b.slice(BRANCH_PREFIX.length, BRANCH_PREFIX.length + HASH_LEN) === h) return true
    }
    return false
  }

  /**
   * RFC 3261 §16.4: a Request-URI that is our own Record-Route (a strict
   * router before us) is replaced by the last Route; Route entries naming us
   * on top are removed (two when we record-routed twice, RFC 5658).
   */
  preprocess (req: SipRequest): Preprocessed {
    let routes = req.route
    let requestUri = req.uri
    let uriChanged = false
    let ours = false
    let ruri: SipUri | undefined
    try {
      ruri = req.requestUri
    } catch {
      ruri = undefined
    }
    // Ours first: the usual Request-URI (a remote target) is not, and its parameter map is then never built.
    if (ruri !== undefined && routes.length > 0 && this.isOurUri(ruri) && ruri.params.has('lr')) {
      const last = routes[routes.length - 1]!
      requestUri = last.uri
      routes = routes.slice(0, -1)
      uriChanged = true
      ours = true
    }
    let popped = 0
    let flow: SendTarget | undefined
    let otherFlow: SendTarget | undefined
    let flowFailed = false
    while (popped < 2 && routes.length > popped) {
      const info = this.#uriInfo(routes[popped]!.uri)
      if (info === undefined) break
      const u = info.uri
      if (!info.ours) {
        // RFC 5626 §5.3: our own Path / Record-Route with a flow token.
        if (!this.isFlowUri(u)) break
        const f = this.#flows!.decode(u.user!)
        if (f === undefined || this.#flows!.isOpen?.(f) === false) {
          // A caller's flow (`nat`, see startBranch) that is gone: its Contact may still be
          // reachable (a trunk or media node that closed its connection), so routing goes on by it.
          if (!u.params.has('nat')) flowFailed = true
        } else if (flow === undefined) flow = f
        else otherFlow ??= f
      }
      popped++
    }
    if (popped > 0) {
      routes = routes.slice(popped)
      ours = true
    }
    if (otherFlow !== undefined) return { requestUri, uriChanged, routes, ours, flow, otherFlow }
    if (flow !== undefined) return { requestUri, uriChanged, routes, ours, flow }
    return flowFailed ? { requestUri, uriChanged, routes, ours, flowFailed } : { requestUri, uriChanged, routes, ours }
  }

  /**
   * Forward a request statefully to each target in parallel (one client
   * transaction per target) and relay the responses per §16.7. The server
   * transaction's final response is sent by the core; the caller must not
   * answer it afterwards.
   */
  forward (tx: AnyServerTransaction, targets: readonly ForwardTarget[], options: ForwardOptions = {}): void {
    // A policy that decided asynchronously (authentication, location) may
    // find the request already answered: CANCELled meanwhile (487), or ended.
    // Checked before the request is read: an INVITE answered 2xx has let go of it.
    if (tx.terminated || (tx instanceof ServerInviteTransaction && tx.lastStatus >= 200)) {
      options.onFinal?.(tx instanceof ServerInviteTransaction ? tx.lastStatus : 0, undefined)
      return
    }
    const req = tx.request
    if (this.isLooping(req)) {
      this.#reply(tx, 482, 'Loop Detected')
      options.onFinal?.(482, undefined)
      return
    }
    const pre = options.preprocessed ?? this.preprocess(req)
    const ctx = new ResponseContext(this, tx, pre, options)
    if (tx instanceof ServerInviteTransaction) {
      // The context is the transaction's handler: no closure per call, and how cancel() finds it.
      const prev = liveContext(tx)
      if (prev !== undefined) prev.live = false
      else this.#contexts++
      ctx.live = true
      tx.handler = ctx
    }
    if (targets.length === 0) ctx.finish(480, 'Temporarily Unavailable')
    else ctx.addBranches(targets)
  }

  /**
   * CANCEL from upstream (RFC 3261 §16.10): 200 to the CANCEL at once, then
   * CANCEL every pending branch of the INVITE it matched; their 487 comes
   * back as the INVITE's answer. 481 when it matches no INVITE.
   */
  cancel (tx: AnyServerTransaction): void {
    const invite = 'cancelTarget' in tx ? tx.cancelTarget : undefined
    if (invite === undefined) {
      this.#reply(tx, 481, 'Call/Transaction Does Not Exist')
      return
    }
    this.#reply(tx, 200, 'OK')
    const ctx = liveContext(invite)
    if (ctx !== undefined) ctx.cancelAll(true)
    else if (invite.lastStatus < 200) {
      // No branch of ours (answered locally): end the INVITE with 487 (§9.2).
      if (invite.respond(487, 'Request Terminated')) this.#onResponseOut?.(487)
    }
  }

  /**
   * An ACK for a 2xx, or another request forwarded without a transaction
   * (RFC 3261 §16.11): route preprocessing, then to the next hop of its
   * Route set or its Request-URI. The branch is derived from the request's
   * own so a retransmission gets the same one. Returns false when there is
   * no next hop other than ourselves.
   */
  forwardStateless (req: SipRequest, source: Source): boolean {
    const pre = this.preprocess(req)
    let send = flowHop(pre, source)
    if (send === undefined) {
      if (pre.flowFailed === true && pre.routes.length === 0) return false
      const next = pre.routes.length > 0 ? pre.routes[0]!.uri : pre.requestUri
      const hop = this.#uriInfo(next)
      // To one of our own sockets (a Request-URI of ours with a user part, as
      // sipp's built-in uac sends its ACK): it would come back unchanged but
      // for a Via, hop after hop until Max-Forwards ran out. Nothing to do.
      if (hop === undefined || hop.ours || hop.self || hop.target === undefined) return false
      send = hop.target
    }
    const branch = BRANCH_PREFIX + statelessBranchHash(req) + '.s'
    const via = this.#via(send.transport, source, branch, this.#listenerFor(send.transport, source, send))
    const mf = req.maxForwards
    if (mf !== undefined && mf <= 0) return false
    const edits = this.#routeEdits(pre, req)
    const bytes = forwardRequest(req, {
      via,
      maxForwards: (mf ?? 70) - 1,
      topViaParams: viaReceivedParams(req.topVia!, source),
      removeHeaders: edits.removeHeaders,
      pushRoute: edits.pushRoute,
      popRoute: edits.popRoute
    })
    void this.#tl.sendStateless(bytes, send)
    return true
  }

  /**
   * A response that matched no client transaction (§16.7 step 3, §16.11):
   * when its top Via is ours, remove it and send the response to the next
   * Via. Others are dropped. Returns true when relayed.
   */
  relayStray (resp: SipResponse): boolean {
    const vias = resp.via
    const top = vias[0]
    if (top === undefined || vias.length < 2) return false
    if (top.branch === undefined || !top.branch.startsWith(BRANCH_PREFIX)) return false
    if (!this.#sentBys.has(unbracket(top.host).toLowerCase() + ':' + String(top.port ?? 5060))) return false
    void this.#sendResponse(stripTopVia(resp), vias[1]!)
    this.#onResponseOut?.(resp.status)
    return true
  }

  /**
   * Where a request of sipd's own to `uri` goes and the Via (without branch)
   * it carries: for the media prober's OPTIONS. Undefined for a URI that is
   * not a SIP URI with a numeric host.
   */
  probeTarget (uri: string): { target: SendTarget, via: string, sentBy: string } | undefined {
    let u: SipUri
    try {
      u = parseUri(uri)
    } catch {
      return undefined
    }
    const target = this.#sendTarget(u)
    if (target === undefined) return undefined
    // A listener of the node's address family, where it can answer (an IPv6 node, an IPv4 listener first).
    const l = this.#listenerFor(target.transport, undefined, target)
    let host = this.#advertiseHost ?? l?.address ?? '127.0.0.1'
    // A wildcard listener: the address the node sees us from is the one it can answer (rport does the rest).
    if (host === '0.0.0.0' || host === '::') host = target.address
    const port = this.#advertisePort ?? l?.port ?? 5060
    const sentBy = bracket(host) + ':' + String(port)
    return { target, via: 'SIP/2.0/' + target.transport.toUpperCase() + ' ' + sentBy + ';rport', sentBy }
  }

  /** @internal Start one client transaction for a branch; returns the branch with `tx` set or a failure status. */
  startBranch (ctx: ResponseContext, b: Branch): number {
    const req = ctx.tx.request
    const pre = ctx.pre
    const source = ctx.tx.source
    const requestUri = b.target.requestUri ?? pre.requestUri
    const pushed = b.target.route
    // RFC 5626 §5.3: a request that came to our flow URI goes down the flow (unless it came from it).
    const flow = b.target.destination === undefined && pushed === undefined ? flowHop(pre, source) : undefined
    let send: SendTarget | undefined = flow
    if (send === undefined) {
      // RFC 5626 §5.3: the flow the request was routed to is gone.
      if (pre.flowFailed === true && pre.routes.length === 0 && b.target.destination === undefined && pushed === undefined) return 430
      const next = b.target.destination ?? (pushed !== undefined && pushed.length > 0 ? nameAddrUri(pushed[0]!) : pre.routes.length > 0 ? pre.routes[0]!.uri : requestUri)
      const hop = this.#uriInfo(next)
      if (hop === undefined) return 400
      if (hop.target === undefined) return 503
      send = hop.target
    }
    b.send = send
    const branch = BRANCH_PREFIX + ctx.hash + '.' + this.#branchStem + (this.#branchSeq++).toString(36)
    const recordRoute = ctx.options.recordRoute ?? (req.to.tag === undefined && req.method !== 'REGISTER')
    const out = this.#listenerFor(send.transport, source, send)
    let rr: readonly string[] | undefined
    if (recordRoute) {
      // RFC 5626 §5.3: toward a registered flow our Record-Route names it, so in-dialog requests come down it too.
      const token = (flow !== undefined || b.target.flow === true) ? this.#flows?.encode(send) : undefined
      // And from a UA behind NAT or on a connection of its own (its sent-by is not where the request came
      // from, and no proxy in between): the entry facing it names the flow it came on, so the callee's
      // requests reach it there and not at a private or unlistened Contact (RFC 5626 §5.3; Kamailio's
      // fix_nated_contact / alias on the first hop).
      const callerToken = this.#flows !== undefined && !sentFromSentBy(req.topVia!, source) && firstHop(req) ? this.#flows.encode(source) : undefined
      // RFC 3261 §16.6 step 4; two entries when the request changes transport or interface (RFC 5658),
      // or when each side has a flow of its own.
      let inbound: string
      // The one-entry list of the socket's own Record-Route, shared by every call through it (an
      // array pushed to per call had room for 17 entries: ~180 B of garbage a call).
      let only: readonly string[] | undefined
      if (callerToken !== undefined) {
        inbound = this.#recordRoute(source.transport, source.local.address, source.local.port, callerToken, true)
      } else if (token === undefined) {
        only = this.#rrByLocal.get(source.local)
        if (only === undefined) {
          only = Object.freeze([this.#recordRoute(source.transport, source.local.address, source.local.port)])
          this.#rrByLocal.set(source.local, only)
        }
        inbound = only[0]!
      } else {
        inbound = this.#recordRoute(source.transport, source.local.address, source.local.port, token)
      }
      // Leaving by the socket it came in on (the usual case): one entry.
      const same = out !== undefined && out.transport === source.transport && out.port === source.local.port &&
        (out.address === source.local.address || out.address === '0.0.0.0' || out.address === '::')
      const outbound = (out === undefined || same) && (callerToken === undefined || token === undefined)
        ? inbound
        : this.#recordRoute(send.transport, out === undefined || out.address === '0.0.0.0' || out.address === '::' ? source.local.address : out.address, out?.port ?? source.local.port, token ?? callerToken, token === undefined)
      rr = outbound !== inbound ? [outbound, inbound] : only ?? [inbound]
    }
    // One object shape for every forward (no spread): absent edits are undefined.
    const edits = this.#routeEdits(pre, req, ctx.options.removeHeaders, pushed)
    const bytes = forwardRequest(req, {
      via: this.#via(send.transport, source, branch, out),
      maxForwards: (req.maxForwards ?? 70) - 1,
      recordRoute: rr,
      requestUri: requestUri !== req.uri ? requestUri : undefined,
      topViaParams: viaReceivedParams(req.topVia!, source),
      removeHeaders: edits.removeHeaders,
      pushRoute: edits.pushRoute,
      popRoute: edits.popRoute
    })
    try {
      // The core wrote the branch and keeps method and CSeq: the bytes need no parsing again.
      b.tx = this.#tl.createClient(bytes, send, b, { method: req.method, branch, cseqMethod: req.cseq.method })
    } catch {
      return 500
    }
    return 0
  }

  /** @internal send CANCEL for a branch whose INVITE had a provisional response. */
  sendCancel (b: Branch): void {
    const tx = b.tx
    if (!(tx instanceof ClientInviteTransaction)) return
    const noop = (): void => {}
    try {
      this.#tl.createClient(buildCancel(tx.request, [['Reason', 'SIP;cause=487;text="Request Terminated"']]), b.send, { onFinal: noop, onTimeout: noop, onTransportError: noop })
    } catch {
      // A CANCEL for this branch is already in flight.
    }
  }

  /**
   * @internal relay a response upstream through the server transaction, or
   * statelessly once it has ended; `extra` header lines are added (the
   * challenges of other branches, §16.7 step 7).
   */
  relay (tx: AnyServerTransaction, resp: SipResponse, extra?: ReadonlyArray<readonly [string, string]>): void {
    if (resp.via.length < 2) {
      // A downstream element that dropped the upstream Vias (§8.2.6.2 says copy them all): answer with our own response.
      if (resp.status > 100) this.#reply(tx, resp.status, resp.reason, extra)
      return
    }
    let bytes = stripTopVia(resp)
    if (extra !== undefined && extra.length > 0) bytes = insertHeaders(bytes, extra)
    // The To tag only matters for matching an RFC 2543 ACK (§17.2.3): not parsed otherwise.
    if (tx.sendResponse(bytes, resp.status, tx.rfc2543 ? resp.to.tag : undefined)) {
      this.#onResponseOut?.(resp.status)
      return
    }
    // A 2xx retransmission after the server transaction ended (RFC 6026 §8.4): by the next Via.
    const next = resp.via[1]
    if (resp.status >= 200 && resp.status < 300 && next !== undefined) {
      void this.#sendResponse(bytes, next)
      this.#onResponseOut?.(resp.status)
    }
  }

  /** A response of the proxy's own to a server transaction (a policy's refusal, a challenge). */
  reply (tx: AnyServerTransaction, status: number, reason: string, headers?: ReadonlyArray<readonly [string, string]>): void {
    this.#reply(tx, status, reason, headers)
  }

  /** @internal The INVITE server transaction ended: its context goes (its client transactions have ended or are ending). */
  forgetContext (tx: ServerInviteTransaction): void {
    const ctx = liveContext(tx)
    if (ctx === undefined) return
    ctx.live = false
    this.#contexts--
  }

  /** @internal Timer C (ms) and T1. */
  get timerC (): number { return this.#timerC }
  /** @internal The wheel Timer C runs on: the transaction layer's. */
  get wheel (): TimerWheel { return this.#tl.wheel }
  get t1 (): number { return this.#t1 }

  #reply (tx: AnyServerTransaction, status: number, reason: string, headers?: ReadonlyArray<readonly [string, string]>): void {
    if (tx.respond(status, reason, headers === undefined ? undefined : { headers })) this.#onResponseOut?.(status)
  }

  #routeEdits (pre: Preprocessed, req: SipRequest, remove?: readonly string[], push?: readonly string[]): RouteEdits {
    if (!pre.ours) {
      if (push === undefined) return remove === undefined ? NO_ROUTE_EDITS : { removeHeaders: [...remove] }
      return remove === undefined ? { pushRoute: [...push] } : { removeHeaders: [...remove], pushRoute: [...push] }
    }
    // Only the top entry was ours (the usual in-dialog request): the writer drops that one value
    // and copies the rest of the Route set as it came, with no list of it made here.
    if (!pre.uriChanged && remove === undefined && pre.routes.length === req.route.length - 1) {
      return push === undefined ? POP_ROUTE_EDITS : { popRoute: true, pushRoute: [...push] }
    }
    // Rewrite the Route set without our entries (and without the one moved to the Request-URI).
    const rest = pre.routes.map(r => r.raw)
    return { removeHeaders: remove === undefined ? ['Route'] : ['Route', ...remove], pushRoute: push === undefined ? rest : [...push, ...rest] }
  }

  /**
   * A URI as the core uses it, parsed once per text (media nodes, gateways,
   * Route entries of our own repeat call after call): whether it names us,
   * and the next hop it names (undefined when that needs DNS). Undefined when
   * it does not parse. Entries are shared: never mutate them.
   */
  #uriInfo (text: string): UriInfo | undefined {
    // The same next hop comes again and again (our Record-Route in every
    // in-dialog request, a media node): comparing with the last two texts
    // is cheaper than hashing a new string for the map. Two: an in-dialog
    // request asks for its Route and then its Request-URI, and with one
    // entry each missed (the map's lookup was ~5% of a stateless ACK).
    if (text === this.#lastUriText) return this.#lastUriInfo
    if (text === this.#prevUriText) {
      const info = this.#prevUriInfo!
      this.#prevUriText = this.#lastUriText
      this.#prevUriInfo = this.#lastUriInfo
      this.#lastUriText = info.key
      this.#lastUriInfo = info
      return info
    }
    let info = this.#uris.get(text)
    if (info === undefined) {
      // Parsed from a copy and keyed by it: the text is a slice of a message's
      // header block, which the cached entry (its URI's raw text) would keep alive.
      const own = ownString(text)
      let uri: SipUri
      try {
        uri = parseUri(own)
      } catch {
        return undefined
      }
      const target = this.#sendTarget(uri)
      info = { key: own, uri, ours: this.isOurUri(uri), self: target !== undefined && this.#isSelf(target), target: target === undefined ? undefined : Object.freeze(target) }
      // Whether a URI is ours is known once the listeners are bound.
      if (this.#listeners().length === 0) return info
      // Bounded: Request-URIs of phones would otherwise grow it without end.
      if (this.#uris.size >= 4096) this.#uris.clear()
      this.#uris.set(own, info)
    }
    // Remembered by the entry's own copy of the text, not the message's slice.
    this.#prevUriText = this.#lastUriText
    this.#prevUriInfo = this.#lastUriInfo
    this.#lastUriText = info.key
    this.#lastUriInfo = info
    return info
  }

  /**
   * Whether `target` is a socket of ours: a listener's transport, port and
   * address, for a wildcard listener any address of this host's interfaces.
   * Not the looser #isOurHost (a wildcard on 5060 would make every phone on
   * port 5060 "ours").
   */
  #isSelf (target: SendTarget): boolean {
    let self = this.#selfKeys
    if (self === undefined) {
      const listeners = this.#listeners()
      self = new Set()
      let local: string[] | undefined
      for (const l of listeners) {
        if (l.address === '0.0.0.0' || l.address === '::') {
          local ??= Object.values(networkInterfaces()).flatMap(list => (list ?? []).map(i => i.address))
          for (const a of local) self.add(`${l.transport}|${a}|${l.port}`)
        } else {
          self.add(`${l.transport}|${l.address}|${l.port}`)
        }
      }
      // Known once the listeners are bound.
      if (listeners.length > 0) this.#selfKeys = self
    }
    return self.has(`${target.transport}|${target.address}|${target.port}`)
  }

  #sendTarget (uri: SipUri): SendTarget | undefined {
    if (uri.hostType === 'name') return undefined
    const transport = uriTransport(uri)
    return { transport, address: unbracket(uri.host), port: uri.port ?? 5060 }
  }

  /**
   * The listener a request to `to` leaves through: the one it arrived on
   * (`source`; none for sipd's own requests) when the transport and the
   * address family are the same, else the first of that transport and
   * family (an IPv4 caller's call to an IPv6 node leaves by the IPv6
   * listener, whose address goes in Via and in a second Record-Route,
   * RFC 5658), else the one it arrived on, else the first of the transport.
   */
  #listenerFor (transport: TransportName, source: Source | undefined, to?: SendTarget): ListenerInfo | undefined {
    const all = this.#listeners()
    const v6 = to !== undefined && to.address.indexOf(':') >= 0
    let arrived: ListenerInfo | undefined
    let fitting: ListenerInfo | undefined
    let first: ListenerInfo | undefined
    for (const l of all) {
      if (l.transport !== transport) continue
      // '::' takes both families (Node binds it dual-stack); any other address one.
      const fits = to === undefined || l.address === '::' || (l.address.indexOf(':') >= 0) === v6
      if (source?.transport === transport && (l.address === source.local.address || l.address === '0.0.0.0' || l.address === '::') && l.port === source.local.port) {
        if (fits) return l
        arrived = l
      }
      if (fits) fitting ??= l
      first ??= l
    }
    return fitting ?? arrived ?? first
  }

  #via (transport: TransportName, source: Source, branch: string, listener?: ListenerInfo): string {
    const l = listener ?? this.#listenerFor(transport, source)
    // A bound (not wildcard) listener always writes the same Via: found by identity, no key to build.
    const fixed = l !== undefined && l.transport === transport && l.address !== '0.0.0.0' && l.address !== '::'
    if (fixed) {
      const prefix = this.#viaByListener.get(l)
      if (prefix !== undefined) return prefix + branch + ';rport'
    }
    let host: string
    let port: number
    if (this.#advertiseHost !== undefined) {
      host = this.#advertiseHost
      port = this.#advertisePort ?? l?.port ?? 5060
    } else {
      host = l === undefined || l.address === '0.0.0.0' || l.address === '::' ? source.local.address : l.address
      port = l?.port ?? source.local.port
    }
    const key = transport + ' ' + host + ' ' + String(port)
    let prefix = this.#viaPrefixes.get(key)
    if (prefix === undefined) {
      this.#sentBys.add(unbracket(host).toLowerCase() + ':' + String(port))
      prefix = 'SIP/2.0/' + transport.toUpperCase() + ' ' + bracket(host) + ':' + String(port) + ';branch='
      if (this.#viaPrefixes.size >= 256) this.#viaPrefixes.clear()
      this.#viaPrefixes.set(key, prefix)
    }
    if (fixed) this.#viaByListener.set(l, prefix)
    return prefix + branch + ';rport'
  }

  /** Our Record-Route entry; with a flow token, `nat` marks a caller's flow (not a registered one: no 430 once it is gone). */
  #recordRoute (transport: TransportName, address: string, port: number, token?: string, nat = false): string {
    const host = this.#advertiseHost ?? address
    const p = this.#advertisePort ?? port
    if (token !== undefined) return '<sip:' + token + '@' + bracket(host) + ':' + String(p) + ';transport=' + transport + (nat ? ';lr;nat>' : ';lr>')
    const key = transport + ' ' + host + ' ' + String(p)
    let rr = this.#recordRoutes.get(key)
    if (rr === undefined) {
      rr = '<sip:' + bracket(host) + ':' + String(p) + ';transport=' + transport + ';lr>'
      if (this.#recordRoutes.size >= 256) this.#recordRoutes.clear()
      this.#recordRoutes.set(key, rr)
    }
    return rr
  }
}

/** The flow a preprocessed request goes down: its token's, unless the request came from that very flow. */
function flowHop (pre: Preprocessed, source: Source): SendTarget | undefined {
  const f = pre.flow
  if (f === undefined) return undefined
  if (!sameFlow(f, source)) return f
  const o = pre.otherFlow
  return o === undefined || sameFlow(o, source) ? undefined : o
}

function sameFlow (f: SendTarget, source: Source): boolean {
  return f.transport === source.transport && f.port === source.port && unbracket(f.address) === source.address
}

/** True when the request has one Via: it comes from the UA itself, not through a proxy. */
function firstHop (req: SipRequest): boolean {
  try {
    return req.via.length === 1
  } catch {
    return false
  }
}

/**
 * True when a request came from the address and port its top Via names
 * (RFC 3581's received / rport would not be needed): false for a UA behind
 * NAT, or one on TCP whose connection is not its sent-by port.
 */
function sentFromSentBy (via: Via, source: Source): boolean {
  if ((via.port ?? 5060) !== source.port) return false
  const host = via.host
  if (host === source.address) return true
  return unbracket(host).toLowerCase() === source.address.toLowerCase()
}

/** The URI of a name-addr (`<sip:p.example;lr>`, with or without a display name) or of a bare URI. */
function nameAddrUri (value: string): string {
  const open = value.indexOf('<')
  if (open < 0) return value.trim()
  const close = value.indexOf('>', open)
  return close < 0 ? value.slice(open + 1) : value.slice(open + 1, close)
}

/** Add header lines at the end of a message's header block (before the empty line); the body is unchanged. */
function insertHeaders (bytes: Buffer, lines: ReadonlyArray<readonly [string, string]>): Buffer {
  const end = bytes.indexOf('\r\n\r\n')
  if (end < 0) return bytes
  let text = ''
  for (const [name, value] of lines) text += '\r\n' + name + ': ' + value
  return Buffer.concat([bytes.subarray(0, end), Buffer.from(text, 'utf8'), bytes.subarray(end)])
}

function isTargetList (t: ForwardTarget | readonly ForwardTarget[]): t is readonly ForwardTarget[] {
  return Array.isArray(t)
}

/** What a response context holds of its request's preprocessing once the final response is sent. */
const RELEASED_PRE: Preprocessed = Object.freeze({ requestUri: '', uriChanged: false, routes: Object.freeze([]) as unknown as NameAddr[], ours: false })
/** What a response context holds of its forward options once the final response is sent. */
const RELEASED_OPTIONS: ForwardOptions = Object.freeze({})

/** Where a branch sends before its next hop is known. */
const NO_SEND: SendTarget = Object.freeze({ transport: 'udp', address: '', port: 0 })
/** The response context an INVITE server transaction's handler is, while it is registered. */
function liveContext (tx: ServerInviteTransaction): ResponseContext | undefined {
  const h = tx.handler
  return h instanceof ResponseContext && h.live ? h : undefined
}

/** A context's branches before its first (frozen: never pushed onto, see addBranch). */
const NO_BRANCHES = Object.freeze([]) as unknown as Branch[]

/**
 * One branch of a response context. It is its client transaction's handler
 * itself: four closures and a handler object per branch, kept as long as the
 * transaction (Timer M, 32 s after a 2xx), were a good part of a held call's heap.
 */
class Branch implements ClientTransactionHandler {
  readonly ctx: ResponseContext
  readonly target: ForwardTarget
  send: SendTarget = NO_SEND
  tx: ClientTransaction | undefined = undefined
  provisional = false
  done = false
  status = 0
  response: SipResponse | undefined = undefined
  cancelled = false
  /** A CANCEL is due once a provisional response arrives (RFC 3261 §9.1). */
  cancelPending = false
  /** Timer C CANCELled this branch (§16.8): its 487 is a timeout, not the caller's CANCEL. */
  timedOut = false
  /** Timer C on the transaction layer's wheel (a native timer per branch cost more than the rest of its bookkeeping); the wheel calls {@link onWheelTimer}, no closure. */
  timerC: WheelTimer | undefined = undefined

  constructor (ctx: ResponseContext, target: ForwardTarget) {
    this.ctx = ctx
    this.target = target
  }

  onProvisional (resp: SipResponse): void { this.ctx.branchProvisional(this, resp) }
  onFinal (resp: SipResponse): void { this.ctx.branchFinal(this, resp) }
  onTimeout (): void { this.ctx.branchFailed(this, 408) }
  // RFC 5626 §5.3: the registered flow (the phone's TCP connection) is gone and no new one is opened: 430, as
  // another node holding it answers; a 503 would reach the caller as 500, as if sipd had failed.
  onTransportError (): void { this.ctx.branchFailed(this, this.target.flow === true ? 430 : 503) }
  /** Timer C fired (WheelCallback). */
  onWheelTimer (): void { this.ctx.timerCFired(this) }
}

/**
 * The §16.7 response context of one forwarded request; for an INVITE also
 * its server transaction's handler (it leaves the core's table when the
 * transaction ends).
 */
class ResponseContext implements ServerTransactionHandler {
  readonly core: ProxyCore
  readonly tx: AnyServerTransaction
  /** Released (see #report) once the final response is sent: no branch is added after it. */
  pre: Preprocessed
  /** Released with `pre`: a policy's closures (failover, onFinal) are not held for Timer L/M. */
  options: ForwardOptions
  /** The loop-detection hash its branches carry; released with `pre` (a string of its own held for Timer L/M otherwise). */
  hash: string
  /** Made with its first branch: a literal of one (`push` onto `[]` reserves 17 slots, ~130 B held per call for Timer L). */
  branches: Branch[] = NO_BRANCHES
  readonly invite: boolean
  #finalSent = false
  #cancelled = false
  #best: Branch | undefined = undefined
  #reported = false
  /** Registered as its INVITE server transaction's context (ProxyCore#forgetContext clears it). */
  live = false
  /** Branches being added: a branch that fails at once must not end the context before its siblings exist. */
  #adding = 0

  constructor (core: ProxyCore, tx: AnyServerTransaction, pre: Preprocessed, options: ForwardOptions) {
    this.core = core
    this.tx = tx
    this.pre = pre
    this.options = options
    this.hash = loopHash(tx.request)
    this.invite = tx.method === 'INVITE'
  }

  /** Start a branch per target, in parallel; the best response is chosen once all of them are done. */
  addBranches (targets: readonly ForwardTarget[]): void {
    this.#adding++
    try {
      for (const t of targets) {
        if (this.#finalSent) break
        this.addBranch(t)
      }
    } finally {
      this.#adding--
    }
    if (this.#adding === 0 && !this.#finalSent && this.#allDone()) this.#sendBest()
  }

  /** The INVITE server transaction ended (ServerTransactionHandler). */
  onTerminated (): void {
    if (this.tx instanceof ServerInviteTransaction) this.core.forgetContext(this.tx)
  }

  #allDone (): boolean {
    for (const b of this.branches) if (!b.done) return false
    return true
  }

  addBranch (target: ForwardTarget): void {
    const b = new Branch(this, target)
    if (this.branches.length === 0) this.branches = [b]
    else this.branches.push(b)
    const failed = this.core.startBranch(this, b)
    if (failed !== 0) {
      this.branchFailed(b, failed)
      return
    }
    if (this.invite && !b.done) this.#armTimerC(b, Math.min(this.options.responseTimeoutMs ?? this.core.timerC, this.core.timerC))
  }

  /** CANCEL every pending branch (§16.10 upstream CANCEL, §16.7 step 10 after a 2xx or 6xx). */
  cancelAll (upstream: boolean): void {
    if (upstream) this.#cancelled = true
    for (const b of this.branches) this.#cancelBranch(b)
  }

  /** Answer upstream with the proxy's own response (no branch could be tried). */
  finish (status: number, reason: string): void {
    if (this.#finalSent) return
    this.#finalSent = true
    this.core.reply(this.tx, status, reason)
    this.#report(status, undefined)
  }

  #report (status: number, target: ForwardTarget | undefined): void {
    if (this.#reported) return
    this.#reported = true
    const options = this.options
    // Reported only once the final response is sent, after which no branch is added
    // (addBranches and failover check #finalSent): what chose the branches can go.
    // The context lives on for Timer L/M to relay 2xx retransmissions.
    this.pre = RELEASED_PRE
    this.options = RELEASED_OPTIONS
    this.hash = ''
    // Called as a method: the options may be an object whose onFinal reads its own fields.
    options.onFinal?.(status, target)
  }

  #armTimerC (b: Branch, ms: number): void {
    const wheel = this.core.wheel
    if (b.timerC !== undefined) wheel.cancel(b.timerC)
    b.timerC = wheel.schedule(b, ms)
  }

  /** @internal Timer C of branch `b` fired (see Branch#onWheelTimer). */
  timerCFired (b: Branch, ioRead = false): void {
    b.timerC = undefined
    if (b.done) return
    if (!b.provisional && !ioRead) {
      // Timers run before the poll phase: when sipd itself fell behind, the
      // node's response may be waiting unread in the socket. Decide after the
      // pending I/O is read, or a busy sipd would fail live nodes over (and
      // the media policy mark them down) for its own delay.
      setImmediate(() => { this.timerCFired(b, true) })
      return
    }
    if (ioRead && b.provisional) {
      // A provisional was read meanwhile: Timer C starts over (§16.8), or the
      // 487 of a CANCEL sent on it is awaited.
      this.#armTimerC(b, b.cancelled ? 64 * this.core.t1 : this.core.timerC)
      return
    }
    if (b.provisional && !b.cancelled) {
      // §16.8: a branch with a provisional response is CANCELled; its 487 ends it.
      b.timedOut = true
      this.#cancelBranch(b)
      this.#armTimerC(b, 64 * this.core.t1)
      return
    }
    // §16.8: no provisional (or no answer to our CANCEL): the branch ends as a 408.
    b.tx?.terminate()
    this.branchFailed(b, 408)
  }

  #cancelBranch (b: Branch): void {
    if (b.done || b.cancelled) return
    b.cancelled = true
    if (!this.invite) return
    if (b.provisional) this.core.sendCancel(b)
    else b.cancelPending = true
  }

  /** @internal A branch's provisional response. */
  branchProvisional (b: Branch, resp: SipResponse): void {
    b.provisional = true
    if (b.timerC !== undefined && !b.cancelled) this.#armTimerC(b, this.core.timerC)
    if (b.cancelPending) {
      b.cancelPending = false
      this.core.sendCancel(b)
    }
    // §16.7 step 5: provisional responses other than 100 are forwarded at once.
    if (resp.status > 100 && !this.#finalSent) this.core.relay(this.tx, resp)
  }

  /** @internal A branch's final response (also 2xx retransmissions through an Accepted client transaction). */
  branchFinal (b: Branch, resp: SipResponse): void {
    const status = resp.status
    if (b.done) {
      // A 2xx retransmission or another fork's 2xx through the Accepted client transaction.
      if (status >= 200 && status < 300) this.core.relay(this.tx, resp)
      return
    }
    if (status === 487 && b.timedOut) {
      // Our own CANCEL after Timer C, not the caller's: the caller gets 408
      // Request Timeout (as Kamailio's fr_inv_timer), a no-answer, not 487
      // "terminated by a CANCEL" it never sent.
      this.branchFailed(b, 408)
      return
    }
    this.#end(b)
    b.status = status
    if (status >= 200 && status < 300) {
      // §16.7 step 5: every 2xx is forwarded at once; the other branches are cancelled (§16.7 step 10).
      this.core.relay(this.tx, resp)
      this.#finalSent = true
      this.#report(status, b.target)
      this.cancelAll(false)
      return
    }
    // Kept for the best-response choice and §16.7 step 7; a 2xx was relayed at once and is not kept (the context lives as long as Timer M).
    b.response = resp
    this.#settle(b, true)
  }

  /** @internal A branch ended without a response: 408 timeout, 503 transport error, or a status the core chose. */
  branchFailed (b: Branch, status: number): void {
    if (b.done) return
    this.#end(b)
    b.status = status
    this.#settle(b, false)
  }

  #end (b: Branch): void {
    b.done = true
    if (b.timerC !== undefined) {
      this.core.wheel.cancel(b.timerC)
      b.timerC = undefined
    }
  }

  /** A branch ended without 2xx: fail over, remember the best, answer when all branches are done. */
  #settle (b: Branch, received: boolean): void {
    const status = b.status
    if (!this.#finalSent && !this.#cancelled && !b.cancelled && this.options.failover !== undefined && status < 600) {
      const next = this.options.failover({ target: b.target, status, received, provisional: b.provisional })
      if (next !== undefined) {
        if (this.#best === undefined || better(status, this.#best.status)) this.#best = b
        this.addBranches(isTargetList(next) ? next : [next])
        return
      }
    }
    if (this.#best === undefined || better(status, this.#best.status)) this.#best = b
    // §16.7 step 5 (6xx): the other branches are cancelled.
    if (status >= 600) this.cancelAll(false)
    if (this.#adding > 0) return
    for (const o of this.branches) if (!o.done) return
    this.#sendBest()
  }

  /**
   * §16.7 step 7: a 401/407 chosen as best carries the WWW-Authenticate and
   * Proxy-Authenticate values of every other 401/407 branch too, so the
   * client can answer all the challenges at once.
   */
  #otherChallenges (best: Branch): Array<[string, string]> | undefined {
    if (best.status !== 401 && best.status !== 407) return undefined
    let out: Array<[string, string]> | undefined
    for (const b of this.branches) {
      if (b === best || b.response === undefined || (b.status !== 401 && b.status !== 407)) continue
      for (const v of b.response.headers('www-authenticate')) (out ??= []).push(['WWW-Authenticate', v])
      for (const v of b.response.headers('proxy-authenticate')) (out ??= []).push(['Proxy-Authenticate', v])
    }
    return out
  }

  /** §16.7 step 6: all branches done, send the best final response. */
  #sendBest (): void {
    if (this.#finalSent) return
    this.#finalSent = true
    const best = this.#best
    if (best === undefined) {
      this.core.reply(this.tx, 408, 'Request Timeout')
      this.#report(408, undefined)
      return
    }
    // A forwarded 503 would tell the caller that this proxy is out of service (§16.7 step 6): 500 instead.
    if (best.status === 503) {
      this.core.reply(this.tx, 500, 'Server Internal Error')
      this.#report(500, best.target)
      return
    }
    if (best.response === undefined && best.status === 408 && this.#cancelled) {
      // The caller CANCELled and the branch never answered (our CANCEL waited for a provisional, §9.1):
      // the INVITE ends as a cancelled one (487, §9.2), not as a timeout the caller did not wait for.
      this.core.reply(this.tx, 487, 'Request Terminated')
      this.#report(487, best.target)
      return
    }
    if (best.response !== undefined) this.core.relay(this.tx, best.response, this.#otherChallenges(best))
    else this.core.reply(this.tx, best.status, best.status === 430 ? 'Flow Failed' : reasonPhrase(best.status))
    this.#report(best.status, best.target)
  }
}
