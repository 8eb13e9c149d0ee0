/**
 * sipd's default routing policy (the proxy issue's "config file, no code
 * needed"): CANCEL and in-dialog requests through the proxy core, trusted
 * sources (trunk providers) to a media node picked by the dispatcher with
 * failover, and never an open relay for anyone else.
 */
import { createRequest } from '@sipd/sip-parser'
import type { SipRequest } from '@sipd/sip-parser'
import { Dispatcher, Prober } from '@sipd/media-bridge'
import type { OptionsOutcome } from '@sipd/media-bridge'
import { newBranch, newTag } from '@sipd/sip-stack'
import type { AnyServerTransaction, TransactionLayer } from '@sipd/sip-stack'
import type { Binding, SubscriberStore } from '@sipd/registrar'
import type { Logger } from 'pino'
import { AddressList } from './acl.js'
import type { SipdConfig } from './config.js'
import type { BranchOutcome, ForwardTarget, ProxyCore } from './proxy-core.js'
import { gatewayRequestUri, TrunkRouter } from './trunks.js'
import { ProxyAuth } from './proxy-auth.js'
import type { ProxyAuthOptions } from './proxy-auth.js'
import type { Gateway } from './trunks.js'

/** A registered contact of an AOR, as the location service returns it. */
export interface LocatedContact {
  /** The Contact URI: the new Request-URI (RFC 3261 §16.5). */
  uri: string
  /** The next hop when it is not the contact itself (the flow's address behind NAT, a Path). @default the contact URI */
  destination?: string
}

/**
 * The location service as the policy uses it: the contacts of an AOR
 * (`sip:user@domain`), an empty list for a subscriber with none, undefined
 * for an AOR that is not ours.
 */
export type Locate = (aor: string) => Promise<readonly LocatedContact[] | undefined> | readonly LocatedContact[] | undefined

/**
 * A {@link Locate} over the registrar: undefined for an AOR that is no
 * subscriber of ours, else its bindings (possibly none). A binding whose
 * REGISTER came from another address than its Contact (NAT) is reached at
 * that source address (RFC 5626 §5.2 in spirit; the flow itself is not reused).
 */
export function registrarLocate (lookup: (aor: string) => Promise<readonly Binding[]>, subscribers: SubscriberStore): Locate {
  return async (aor) => {
    const colon = aor.indexOf(':')
    const at = aor.indexOf('@')
    if (at <= colon) return undefined
    const sub = await subscribers.lookup(aor.slice(colon + 1, at), aor.slice(at + 1))
    if (sub === undefined || !sub.enabled) return undefined
    const bindings = await lookup(aor)
    return bindings.map(b => {
      const r = b.received
      const t = r?.transport.toLowerCase()
      return r !== undefined && (t === 'udp' || t === 'tcp')
        ? { uri: b.contact, destination: 'sip:' + (r.address.indexOf(':') >= 0 ? '[' + r.address + ']' : r.address) + ':' + String(r.port) + ';transport=' + t }
        : { uri: b.contact }
    })
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
  /** Media node addresses: requests from them are calls out of media. */
  readonly #mediaHosts: AddressList
  readonly #prober: Prober | undefined
  readonly #defaultSet: number | string | undefined
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
    const hosts: string[] = []
    for (const s of config.media.sets) {
      for (const n of s.nodes) {
        const h = uriHost(n.uri)
        if (h !== undefined) hosts.push(h)
      }
    }
    this.#mediaHosts = new AddressList(hosts)
    this.dispatcher = new Dispatcher(config.media.sets.map(s => ({
      id: s.id,
      algorithm: s.algorithm,
      nodes: s.nodes.map(n => ({ uri: n.uri, weight: n.weight, priority: n.priority, attributes: n.attributes, adminState: n.state }))
    })), {
      onHealthChange: (uri, from, to, reason) => { this.#logger.info({ uri, from, to, reason }, 'media node health changed') }
    })
    this.#defaultSet = config.media.defaultSet ?? config.media.sets[0]?.id
    this.trunks = new TrunkRouter({ gateways: config.trunks.gateways, routes: config.trunks.routes, downForMs: config.trunks.downForMs })
    this.#locate = options.locate
    this.#auth = new ProxyAuth(config, options.auth)
    this.#served = options.servedHosts
    if (options.probe !== false && config.media.sets.length > 0) {
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
    return config.trusted.length > 0 || config.media.sets.length > 0 || config.trunks.routes.length > 0
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
      this.#core.reply(tx, 403, 'Forbidden')
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
    this.#core.forward(tx, [{}], {
      onFinal: (status) => {
        // The call ends with the BYE's 2xx (or a 481: the other side had forgotten it).
        if (bye && (status < 300 || status === 481)) this.dispatcher.callEnded(callId)
      }
    })
  }

  /** A trunk's call into media: a node of the configured set, failing over on 408/5xx/timeout before any provisional. */
  #toMedia (tx: AnyServerTransaction, removeHeaders?: readonly string[]): void {
    const req = tx.request
    const setId = this.#setFor(req)
    if (setId === undefined) {
      this.#core.reply(tx, 503, 'No Media Set')
      return
    }
    const callId = req.callId
    const fromUser = safeFromUser(req)
    const tried = new Set<string>()
    const invite = req.method === 'INVITE'
    const pick = (): ForwardTarget | undefined => {
      const node = this.dispatcher.select(setId, { callId, fromUser, exclude: tried })
      if (node === undefined) return undefined
      tried.add(node.uri)
      if (invite) this.dispatcher.callStarted(node.uri, callId)
      return { destination: node.uri }
    }
    const first = pick()
    if (first === undefined) {
      this.#core.reply(tx, 503, 'No Media Node Available')
      return
    }
    this.#core.forward(tx, [first], {
      removeHeaders,
      failover: (o: BranchOutcome) => {
        if (o.provisional || !isFailoverStatus(o.status)) return undefined
        if (o.target.destination !== undefined) {
          this.dispatcher.reportFailure(o.target.destination)
          this.#logger.warn({ node: o.target.destination, status: o.status, callId }, 'media node failed a call: failing over')
        }
        return pick()
      },
      onFinal: (status) => {
        if (invite && status >= 300) this.dispatcher.callEnded(callId)
      }
    })
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
      // Parallel forking to every contact (RFC 3261 §16.6); the first 2xx wins, the rest are CANCELled.
      this.#core.forward(tx, contacts.map(c => ({ requestUri: c.uri, destination: c.destination })))
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
