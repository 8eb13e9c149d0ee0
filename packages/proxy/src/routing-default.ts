/**
 * sipd's default routing policy (the proxy issue's "config file, no code
 * needed"): CANCEL and in-dialog requests through the proxy core, trusted
 * sources (trunk providers) to a media node picked by the dispatcher with
 * failover, and never an open relay for anyone else.
 */
import { isIP } from 'node:net'
import { createRequest, parseUri } from '@sipd/sip-parser'
import type { SipRequest } from '@sipd/sip-parser'
import { Dispatcher, MediaConfigError, Prober } from '@sipd/media-bridge'
import type { MediaSetConfig as DispatcherSetConfig, OptionsOutcome } from '@sipd/media-bridge'
import { newBranch, newTag, ownString } from '@sipd/sip-stack'
import type { AnyServerTransaction, TransactionLayer } from '@sipd/sip-stack'
import type { Binding, SubscriberStore } from '@sipd/registrar'
import type { Logger } from 'pino'
import { AddressList } from './acl.js'
import type { SipdConfig } from './config.js'
import type { BranchOutcome, ForwardOptions, ForwardTarget, ProxyCore } from './proxy-core.js'
import { gatewayRequestUri, TrunkRouter } from './trunks.js'
import { ProxyAuth } from './proxy-auth.js'
import type { ProxyAuthOptions } from './proxy-auth.js'
import type { Gateway } from './trunks.js'
import { isKnownMethod } from './sanity.js'

/** What phones may send through the default policy outside a dialog (Allow of its 405). */
const PHONE_ALLOW = 'INVITE, ACK, CANCEL, MESSAGE, SUBSCRIBE, REFER'

/** A registered contact of an AOR, as the location service returns it. */
export interface LocatedContact {
  /** The Contact URI: the new Request-URI (RFC 3261 §16.5). */
  uri: string
  /** The next hop when it is not the contact itself (the flow's address behind NAT). @default the contact URI */
  destination?: string
  /** Route values (name-addr) to push, the first being the next hop: the binding's Path, or the holding node's flow URI. @default none */
  route?: readonly string[]
  /** `destination` is the flow the phone registered on (TCP connection or NAT binding). @default false */
  flow?: boolean
  /** The contact's q-value (RFC 3261 §20.10); absent counts as 1. */
  q?: number
}

/**
 * The location service as the policy uses it: the contacts of an AOR
 * (`sip:user@domain`), an empty list for a subscriber with none, undefined
 * for an AOR that is not ours.
 */
export type Locate = (aor: string) => Promise<readonly LocatedContact[] | undefined> | readonly LocatedContact[] | undefined

/**
 * A {@link Locate} over the registrar: undefined for an AOR that is no
 * subscriber of ours (unknown or deleted) and has no binding that an
 * `exempt` source (registrar.auth_exempt) registered, or for a disabled
 * subscriber; else
 * its bindings (possibly none), each reached so
 * that the request uses the phone's own flow:
 * - a binding registered through an edge proxy: by its Path (RFC 3327 §5.3);
 * - a binding whose flow another node holds (`node` is not `localNode`):
 *   through that node, by the flow URI it stored (RFC 5626 §5.3);
 * - a binding whose flow this node holds: to the address the REGISTER came
 *   from, so the TCP connection (or the NAT binding) it arrived on is reused.
 */
export function registrarLocate (lookup: (aor: string) => Promise<readonly Binding[]>, subscribers: SubscriberStore, localNode?: string,
  exempt?: (address: string) => boolean): Locate {
  return async (aor) => {
    const colon = aor.indexOf(':')
    const at = aor.indexOf('@')
    if (at <= colon) return undefined
    const sub = await subscribers.lookup(aor.slice(colon + 1, at), aor.slice(at + 1))
    if (sub !== undefined && !sub.enabled) return undefined
    let bindings = await lookup(aor)
    if (sub === undefined) {
      // No subscriber (never one, or deleted since): only bindings that
      // registrar.auth_exempt let in without one stay reachable, as with a
      // registrar that does not authenticate. A deleted subscriber's
      // digest-registered phone stops getting calls once the subscriber
      // cache forgets it (subscribers.cache_ttl_ms), not when its bindings
      // expire. None left: not ours (404).
      bindings = exempt === undefined ? [] : bindings.filter(b => b.received !== undefined && exempt(b.received.address))
      if (bindings.length === 0) return undefined
    }
    return bindings.map(b => locatedContact(b, localNode))
  }
}

/** How one binding is reached from the node `localNode` (see {@link registrarLocate}). */
export function locatedContact (b: Binding, localNode?: string): LocatedContact {
  const c: LocatedContact = { uri: b.contact }
  if (b.q !== undefined) c.q = b.q
  if (b.path.length > 0) {
    c.route = b.path
    return c
  }
  if (b.node !== undefined && b.node !== localNode && b.flowUri !== undefined) {
    c.route = ['<' + b.flowUri + '>']
    return c
  }
  const r = b.received
  const t = r?.transport.toLowerCase()
  if (r !== undefined && (t === 'udp' || t === 'tcp')) {
    c.destination = 'sip:' + (r.address.indexOf(':') >= 0 ? '[' + r.address + ']' : r.address) + ':' + String(r.port) + ';transport=' + t
    c.flow = true
  }
  return c
}

/**
 * Contacts as serial groups (RFC 3261 §16.6, the q-value search of
 * §16.7 step 5 / RFC 3261 §20.10): the highest q first, contacts of equal
 * q forked in parallel; absent q counts as 1.
 */
export function contactGroups (contacts: readonly LocatedContact[]): ForwardTarget[][] {
  const byQ = new Map<number, ForwardTarget[]>()
  for (const c of contacts) {
    const q = c.q ?? 1
    let g = byQ.get(q)
    if (g === undefined) byQ.set(q, g = [])
    const target: ForwardTarget = { requestUri: c.uri }
    if (c.destination !== undefined) target.destination = c.destination
    if (c.route !== undefined) target.route = c.route
    if (c.flow === true) target.flow = true
    g.push(target)
  }
  return [...byQ.keys()].sort((a, b) => b - a).map(q => byQ.get(q)!)
}

/**
 * A serial search over parallel groups (RFC 3261 §16.6, §16.7 step 5):
 * the first group's targets, and forward options whose failover starts the
 * next group once every branch of the current one has failed (the core
 * calls it for each branch that ends without a 2xx or 6xx).
 */
export function serialSearch (groups: ReadonlyArray<readonly ForwardTarget[]>): { first: readonly ForwardTarget[], options: ForwardOptions } {
  let g = 0
  let pending = groups[0]?.length ?? 0
  return {
    first: groups[0] ?? [],
    options: groups.length <= 1
      ? {}
      : {
          failover: () => {
            if (--pending > 0) return undefined
            const next = groups[++g]
            if (next === undefined) return undefined
            pending = next.length
            return next
          }
        }
  }
}

/** What the default policy needs from the server. */
export interface DefaultRoutingOptions {
  config: SipdConfig
  core: ProxyCore
  transactions: TransactionLayer
  logger: Logger
  /** Domains and addresses sipd serves (a Request-URI host in it is ours), lower case, IPv6 without brackets. */
  servedHosts: ReadonlySet<string>
  /**
   * The location service; without it calls from media nodes go to trunks only.
   * @default undefined
   */
  locate?: Locate | undefined
  /**
   * The digest authenticator and subscriber store for phones (share the registrar's).
   * @default built from the config (`auth`, `subscribers.users`)
   */
  auth?: ProxyAuthOptions | undefined
  /**
   * Start OPTIONS probing of the media nodes (`media.probe`).
   * @default true
   */
  probe?: boolean
}

/** Statuses after which a call fails over to another media node or gateway (before any provisional). */
export function isFailoverStatus (status: number): boolean {
  return status === 408 || (status >= 500 && status < 600)
}

/** Host part of a SIP URI as written (no brackets), for source matching. */

function uriHost (uri: string): string | undefined {
  let i = uri.indexOf(':')
  if (i < 0) return undefined
  i++
  const at = uri.indexOf('@', i)
  if (at >= 0) i = at + 1
  if (uri.charCodeAt(i) === 0x5b) {
    const close = uri.indexOf(']', i)
    return close < 0 ? undefined : uri.slice(i + 1, close)
  }
  let end = i
  while (end < uri.length) {
    const c = uri.charCodeAt(end)
    if (c === 0x3a || c === 0x3b || c === 0x3f || c === 0x3e) break
    end++
  }
  return uri.slice(i, end)
}

/** The default routing policy. */
export class DefaultRouting {
  readonly dispatcher: Dispatcher
  readonly #core: ProxyCore
  readonly #config: SipdConfig
  readonly #tl: TransactionLayer
  readonly #logger: Logger
  readonly #isServed: (req: SipRequest) => boolean
  readonly #trusted: AddressList
  /** Media node addresses: requests from them are calls out of media (replaced by {@link DefaultRouting.reloadMedia}). */
  #mediaHosts: AddressList
  readonly #prober: Prober | undefined
  #defaultSet: number | string | undefined
  readonly trunks: TrunkRouter
  readonly #locate: Locate | undefined
  readonly #auth: ProxyAuth
  readonly #served: ReadonlySet<string>

  constructor (options: DefaultRoutingOptions) {
    const config = options.config
    this.#config = config
    this.#core = options.core
    this.#tl = options.transactions
    this.#logger = options.logger
    const served = options.servedHosts
    this.#isServed = (req) => {
      try {
        const h = req.requestUri.host
        return served.has((h.startsWith('[') ? h.slice(1, -1) : h).toLowerCase())
      } catch {
        return false
      }
    }
    this.#trusted = new AddressList(config.trusted)
    const sets = dispatcherSets(config.media.sets)
    this.#mediaHosts = mediaHostList(sets)
    this.dispatcher = new Dispatcher(sets, {
      onHealthChange: (uri, from, to, reason) => { this.#logger.info({ uri, from, to, reason }, 'media node health changed') }
    })
    this.#defaultSet = config.media.defaultSet ?? config.media.sets[0]?.id
    this.trunks = new TrunkRouter({ gateways: config.trunks.gateways, routes: config.trunks.routes, downForMs: config.trunks.downForMs })
    this.#locate = options.locate
    this.#auth = new ProxyAuth(config, options.auth)
    this.#served = options.servedHosts
    // Always, when enabled: a reload may bring nodes to a policy that started without any.
    if (options.probe !== false) {
      const p = config.media.probe
      this.#prober = new Prober(this.dispatcher, async (uri, timeoutMs) => await this.#sendOptions(uri, timeoutMs), {
        intervalMs: p.intervalMs,
        timeoutMs: p.timeoutMs,
        failureThreshold: p.failureThreshold,
        successThreshold: p.successThreshold,
        downStatusCodes: p.downCodes
      })
    }
  }

  /**
   * Whether the config gives the default policy anything to route: trusted
   * sources, media sets or trunk routes. Without them sipd is a registrar
   * that answers other requests itself (404).
   */
  static applies (config: SipdConfig): boolean {
    return config.trusted.length > 0 || config.media.sets.length > 0 || config.media.source === 'postgres' || config.trunks.routes.length > 0
  }

  /**
   * Replace the media sets (reload from the file or PostgreSQL). Validated
   * first: on a {@link MediaConfigError} or a `media.default_set` /
   * `media.did_sets` id that is no longer a set, nothing changes. Nodes that
   * stay keep their health and active calls; calls on removed nodes go on
   * and are still counted until they end.
   */
  reloadMedia (sets: readonly DispatcherSetConfig[]): void {
    const media = this.#config.media
    const ids = new Set(sets.map(s => String(s.id)))
    if (media.defaultSet !== undefined && !ids.has(String(media.defaultSet))) {
      throw new MediaConfigError('default_set', `media.default_set ${JSON.stringify(media.defaultSet)} is not among the loaded sets`)
    }
    for (const [prefix, id] of Object.entries(media.didSets)) {
      if (!ids.has(String(id))) throw new MediaConfigError(`did_sets.${prefix}`, `media.did_sets.${prefix} names set ${JSON.stringify(id)}, which is not among the loaded sets`)
    }
    const hosts = mediaHostList(sets)
    this.dispatcher.reload(sets)
    this.#mediaHosts = hosts
    this.#defaultSet = media.defaultSet ?? sets[0]?.id
  }

  /** Start probing the media nodes. */
  start (): void {
    this.#prober?.start()
  }

  /** Stop probing. */
  stop (): void {
    this.#prober?.stop()
  }

  /** Route a request that reached the routing stage (not OPTIONS to us, not REGISTER). */
  route (tx: AnyServerTransaction): void {
    const req = tx.request
    if (req.method === 'CANCEL') {
      this.#core.cancel(tx)
      return
    }
    const address = tx.source.address
    if (req.to.tag !== undefined) {
      this.#inDialog(tx, address)
      return
    }
    if (this.#toFlow(tx)) {
      // Another node sent it through us to the phone whose flow we hold
      // (RFC 5626 §5.3); the token in our own URI is the permission.
      this.#core.forward(tx, [AS_ROUTED])
      return
    }
    if (this.#trusted.has(address)) {
      this.#toMedia(tx)
      return
    }
    if (this.#mediaHosts.has(address)) {
      if (this.#isServed(req)) this.#fromMedia(tx)
      else this.#core.reply(tx, 403, 'Relaying Denied')
      return
    }
    this.#fromPhone(tx)
  }

  /**
   * Anyone else must authenticate as a subscriber of the From domain
   * (407, RFC 3261 §22.3), then goes to a media node. Neither the From nor
   * the Request-URI in a domain of ours: 403, never an open relay.
   */
  #fromPhone (tx: AnyServerTransaction): void {
    const req = tx.request
    let user: string | undefined
    let domain: string
    try {
      const from = req.from.uri
      const colon = from.indexOf(':')
      const at = from.indexOf('@')
      user = at > colon ? from.slice(colon + 1, at) : undefined
      let end = at + 1
      while (end < from.length && from.charCodeAt(end) !== 0x3a && from.charCodeAt(end) !== 0x3b && from.charCodeAt(end) !== 0x3e) end++
      domain = from.slice(at + 1, end).toLowerCase()
    } catch {
      this.#core.reply(tx, 400, 'Bad From')
      return
    }
    const fromOurs = user !== undefined && this.#served.has(domain)
    if (!fromOurs) {
      this.#core.reply(tx, 403, this.#isServed(req) ? 'Forbidden' : 'Relaying Denied')
      return
    }
    if (req.method !== 'INVITE' && req.method !== 'MESSAGE' && req.method !== 'SUBSCRIBE' && req.method !== 'REFER') {
      // RFC 3261 §21.4.6: a method sipd knows but does not take from phones
      // outside a dialog is 405 with what it does take; any other stays a
      // policy refusal (a proxy forwards methods it does not know, §16).
      if (isKnownMethod(req.method)) this.#core.reply(tx, 405, 'Method Not Allowed', [['Allow', PHONE_ALLOW]])
      else this.#core.reply(tx, 403, 'Forbidden')
      return
    }
    this.#auth.check(req, user!, domain).then(outcome => {
      // The credentials were for us: they are not passed on (RFC 3261 §22.3).
      if (outcome.ok) this.#toMedia(tx, ['Proxy-Authorization'])
      else this.#core.reply(tx, outcome.status, outcome.reason, outcome.headers)
    }, err => {
      this.#logger.error({ err }, 'proxy authentication failed')
      this.#core.reply(tx, 500, 'Authentication Failed')
    })
  }

  /**
   * True when the top Route is one of our flow URIs, for a flow other than
   * the request's own; also when that flow is gone, so that the request gets
   * its 430 (RFC 5626 §5.3) rather than a policy's answer.
   */
  #toFlow (tx: AnyServerTransaction): boolean {
    const top = tx.request.route[0]
    if (top === undefined || top.uri.indexOf('@') < 0) return false
    let f
    try {
      const u = parseUri(top.uri)
      if (!this.#core.isFlowUri(u)) return false
      f = this.#core.ourFlow(u)
    } catch {
      return false
    }
    const s = tx.source
    return f === undefined || !(f.transport === s.transport && f.address === s.address && f.port === s.port)
  }

  /**
   * RFC 3261 §16.12 / §12.2: an in-dialog request follows its Route set. We
   * forward it when it names us in its Route set (we record-routed the
   * dialog) or comes from a trusted source or a media node; a request
   * addressed to us with nothing to route by belongs to no dialog of ours.
   */
  #inDialog (tx: AnyServerTransaction, address: string): void {
    const req = tx.request
    const pre = this.#core.preprocess(req)
    if (!pre.ours && !this.#trusted.has(address) && !this.#mediaHosts.has(address)) {
      if (this.#isServed(req) && pre.routes.length === 0) this.#core.reply(tx, 481, 'Call/Transaction Does Not Exist')
      else this.#core.reply(tx, 403, 'Relaying Denied')
      return
    }
    const callId = req.callId
    const bye = req.method === 'BYE'
    this.#core.forward(tx, [AS_ROUTED], {
      preprocessed: pre,
      // RFC 3261 §15.1.2: the session ends with the BYE whatever its final
      // response; a BYE timing out on a dead media node must not leave the
      // call counted against it (least-calls) until the lifetime sweep.
      onFinal: bye ? () => { this.dispatcher.callEnded(callId) } : undefined
    })
  }

  /**
   * To a node of media set `setId` (by default the set `media.did_sets` /
   * `media.default_set` choose), failing over like a trunk's call. For
   * routing modules (`{ action: 'media' }`).
   */
  toMedia (tx: AnyServerTransaction, setId?: number | string): void {
    this.#toMedia(tx, undefined, setId)
  }

  /** To the gateways of the trunk route matching `number`, with failover; 404 when none matches. */
  toTrunk (tx: AnyServerTransaction, number: string): void {
    this.#toTrunk(tx, number)
  }

  /** To the registered contacts of `aor` (`sip:user@domain`): 404 for an unknown AOR, 480 without contacts. */
  toAor (tx: AnyServerTransaction, aor: string): void {
    if (this.#locate === undefined) {
      this.#core.reply(tx, 404, 'Not Found')
      return
    }
    let pending: ReturnType<Locate>
    try {
      pending = this.#locate(aor)
    } catch (err) {
      this.#lookupFailed(tx, err)
      return
    }
    const located = (contacts: readonly LocatedContact[] | undefined): void => {
      if (contacts === undefined) this.#core.reply(tx, 404, 'Not Found')
      else if (contacts.length === 0) this.#core.reply(tx, 480, 'Temporarily Unavailable')
      else this.#forkContacts(tx, contacts)
    }
    if (pending instanceof Promise) pending.then(located, err => { this.#lookupFailed(tx, err) })
    else located(pending)
  }

  /** A trunk's call into media: a node of the configured set, failing over on 408/5xx/timeout before any provisional. */
  #toMedia (tx: AnyServerTransaction, removeHeaders?: readonly string[], chosenSet?: number | string): void {
    const req = tx.request
    const setId = chosenSet ?? this.#setFor(req)
    if (setId === undefined) {
      this.#core.reply(tx, 503, 'No Media Set')
      return
    }
    // Held by the dispatcher for the whole call: a copy, not a slice that keeps the INVITE's text alive.
    const call = new MediaCall(this.dispatcher, this.#logger, setId, ownString(req.callId), safeFromUser(req), req.method === 'INVITE',
      removeHeaders, this.#config.media.responseTimeoutMs)
    const first = call.pick()
    if (first === undefined) {
      this.#core.reply(tx, 503, 'No Media Node Available')
      return
    }
    this.#core.forward(tx, [first], call)
  }

  /**
   * A call out of a media node: a registered AOR of ours gets its contacts
   * forked in parallel (480 when it has none); else a number matching a
   * trunk route goes to that route's gateways; else 404.
   */
  #fromMedia (tx: AnyServerTransaction): void {
    const req = tx.request
    let user: string | undefined
    let host: string
    try {
      const u = req.requestUri
      user = u.user
      host = u.host
    } catch {
      this.#core.reply(tx, 400, 'Bad Request-URI')
      return
    }
    if (user === undefined || user === '') {
      this.#core.reply(tx, 404, 'Not Found')
      return
    }
    const number = user
    if (this.#locate === undefined) {
      this.#toTrunk(tx, number)
      return
    }
    const located = (contacts: readonly LocatedContact[] | undefined): void => {
      if (contacts === undefined) {
        this.#toTrunk(tx, number)
        return
      }
      if (contacts.length === 0) {
        this.#core.reply(tx, 480, 'Temporarily Unavailable')
        return
      }
      this.#forkContacts(tx, contacts)
    }
    let pending: ReturnType<Locate>
    try {
      pending = this.#locate('sip:' + user + '@' + host.toLowerCase())
    } catch (err) {
      this.#lookupFailed(tx, err)
      return
    }
    if (pending instanceof Promise) pending.then(located, err => { this.#lookupFailed(tx, err) })
    else located(pending)
  }

  /**
   * Parallel forking to the contacts of the highest q (RFC 3261 §16.6); the
   * first 2xx wins, the rest are CANCELled. The next lower q group is tried
   * only when every branch of the current one failed without a 2xx or 6xx
   * (a 6xx ends the search, §16.7 step 5).
   */
  #forkContacts (tx: AnyServerTransaction, contacts: readonly LocatedContact[]): void {
    const search = serialSearch(contactGroups(contacts))
    this.#core.forward(tx, search.first, search.options)
  }

  #lookupFailed (tx: AnyServerTransaction, err: unknown): void {
    this.#logger.error({ err }, 'location lookup failed')
    this.#core.reply(tx, 500, 'Location Service Failed')
  }

  /** A number to its trunk route's gateways in order, failing over on 408/5xx/transport error and marking the gateway down. */
  #toTrunk (tx: AnyServerTransaction, number: string): void {
    const gateways = this.trunks.gatewaysFor(number)
    if (gateways === undefined || gateways.length === 0) {
      this.#core.reply(tx, 404, 'Not Found')
      return
    }
    let next = 0
    const byUri = new Map<string, Gateway>()
    const pick = (): ForwardTarget | undefined => {
      const g = gateways[next++]
      if (g === undefined) return undefined
      const requestUri = gatewayRequestUri(g.uri, number)
      byUri.set(requestUri, g)
      return { requestUri, destination: g.uri }
    }
    const first = pick()!
    this.#core.forward(tx, [first], {
      failover: (o: BranchOutcome) => {
        if (!isFailoverStatus(o.status)) return undefined
        const g = o.target.requestUri === undefined ? undefined : byUri.get(o.target.requestUri)
        if (g !== undefined) {
          this.trunks.markDown(g.id)
          this.#logger.warn({ gateway: g.id, status: o.status }, 'gateway failed a call: marked down, failing over')
        }
        return pick()
      }
    })
  }

  /** `media.did_sets` by longest prefix of the Request-URI user, else the default set. */
  #setFor (req: SipRequest): number | string | undefined {
    const did = this.#config.media.didSets
    let user: string | undefined
    try {
      user = req.requestUri.user
    } catch {
      user = undefined
    }
    if (user !== undefined) {
      let best: string | undefined
      for (const prefix of Object.keys(did)) {
        if (user.startsWith(prefix) && (best === undefined || prefix.length > best.length)) best = prefix
      }
      if (best !== undefined) return did[best]
    }
    return this.#defaultSet
  }

  /** One OPTIONS to a media node through a client transaction (the prober's `sendOptions`). */
  async #sendOptions (uri: string, _timeoutMs: number): Promise<OptionsOutcome> {
    const probe = this.#core.probeTarget(uri)
    if (probe === undefined) return { error: 'transport' }
    const { target, via, sentBy } = probe
    const branch = newBranch()
    const bytes = createRequest({
      method: 'OPTIONS',
      uri,
      headers: [
        ['Via', via + ';branch=' + branch],
        ['Max-Forwards', '70'],
        ['From', '<sip:sipd@' + sentBy + '>;tag=' + newTag()],
        ['To', '<' + uri + '>'],
        ['Call-ID', newTag() + '@sipd'],
        ['CSeq', '1 OPTIONS']
      ]
    })
    return await new Promise<OptionsOutcome>(resolve => {
      try {
        this.#tl.createClient(bytes, target, {
          onFinal: (resp) => { resolve({ status: resp.status }) },
          onTimeout: () => { resolve({ error: 'timeout' }) },
          onTransportError: () => { resolve({ error: 'transport' }) }
        })
      } catch {
        resolve({ error: 'transport' })
      }
    })
  }
}

/** The config file's sets in the dispatcher's shape. */
function dispatcherSets (sets: SipdConfig['media']['sets']): DispatcherSetConfig[] {
  return sets.map(s => ({
    id: s.id,
    algorithm: s.algorithm,
    nodes: s.nodes.map(n => ({ uri: n.uri, weight: n.weight, priority: n.priority, attributes: n.attributes, adminState: n.state }))
  }))
}

/** The addresses of every media node: requests from them are calls out of media. */
function mediaHostList (sets: readonly DispatcherSetConfig[]): AddressList {
  const hosts: string[] = []
  for (const s of sets) {
    for (const n of s.nodes) {
      const h = uriHost(n.uri)
      // Only addresses can be matched against a request's source (the proxy sends to addresses only, too).
      if (h !== undefined && isIP(h) !== 0) hosts.push(h)
    }
  }
  return new AddressList(hosts)
}

/**
 * One call to a media set: its forward options (failover to another node of
 * the set, the dispatcher's call count on the final response) and the
 * dispatcher's selection input in one object, where three closures, their
 * context, an options object and a selection object per pick were made.
 */
class MediaCall implements ForwardOptions {
  readonly removeHeaders: readonly string[] | undefined
  readonly responseTimeoutMs: number
  /** The dispatcher's selection input (SelectContext): Call-ID, From user, nodes tried. */
  readonly callId: string
  readonly fromUser: string | undefined
  /** The nodes tried, as a set only once there is a failover. */
  exclude: Set<string> | undefined = undefined
  #firstUri: string | undefined = undefined
  readonly #dispatcher: Dispatcher
  readonly #logger: Logger
  readonly #setId: number | string
  readonly #invite: boolean

  constructor (dispatcher: Dispatcher, logger: Logger, setId: number | string, callId: string, fromUser: string | undefined,
    invite: boolean, removeHeaders: readonly string[] | undefined, responseTimeoutMs: number) {
    this.#dispatcher = dispatcher
    this.#logger = logger
    this.#setId = setId
    this.callId = callId
    this.fromUser = fromUser
    this.#invite = invite
    this.removeHeaders = removeHeaders
    this.responseTimeoutMs = responseTimeoutMs
  }

  /** The next node of the set not tried yet; an INVITE's is counted as a call on it. */
  pick (): ForwardTarget | undefined {
    if (this.#firstUri !== undefined) this.exclude ??= new Set([this.#firstUri])
    const node = this.#dispatcher.select(this.#setId, this)
    if (node === undefined) return undefined
    if (this.exclude === undefined) this.#firstUri = node.uri
    else this.exclude.add(node.uri)
    if (this.#invite) this.#dispatcher.callStarted(node.uri, this.callId)
    return nodeTarget(node.uri)
  }

  failover (o: BranchOutcome): ForwardTarget | undefined {
    if (o.provisional || !isFailoverStatus(o.status)) return undefined
    if (o.target.destination !== undefined) {
      this.#dispatcher.reportFailure(o.target.destination)
      this.#logger.warn({ node: o.target.destination, status: o.status, callId: this.callId }, 'media node failed a call: failing over')
    }
    return this.pick()
  }

  onFinal (status: number): void {
    if (this.#invite && status >= 300) this.#dispatcher.callEnded(this.callId)
  }
}

/** The target of a request forwarded as it is routed (its Route set or Request-URI): shared, as a branch holds it for Timer K. */
const AS_ROUTED: ForwardTarget = Object.freeze({})

/** Media nodes' forward targets by URI: a Branch holds its target for Timer M (32 s), one shared object per node rather than one per call. */
const NODE_TARGETS = new Map<string, ForwardTarget>()

function nodeTarget (uri: string): ForwardTarget {
  let t = NODE_TARGETS.get(uri)
  if (t === undefined) {
    // Bounded: URIs of nodes removed by reloads would otherwise stay.
    if (NODE_TARGETS.size >= 1024) NODE_TARGETS.clear()
    t = Object.freeze({ destination: uri })
    NODE_TARGETS.set(uri, t)
  }
  return t
}

function safeFromUser (req: SipRequest): string | undefined {
  try {
    const uri = req.from.uri
    const colon = uri.indexOf(':')
    const at = uri.indexOf('@')
    return colon >= 0 && at > colon ? uri.slice(colon + 1, at) : undefined
  } catch {
    return undefined
  }
}
