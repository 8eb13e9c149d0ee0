/**
 * The registrar element (RFC 3261 §10.3): one REGISTER in, one final
 * response out, with digest authentication and the location and subscriber
 * stores. It owns no socket: the server hands it the parsed request and the
 * flow it arrived on, and sends the answer itself.
 */
import { parseUri, SipParseError } from '@sipd/sip-parser'
import type { DigestCredentials, SipRequest } from '@sipd/sip-parser'
import type { DigestAuthenticator, DigestFailureReason, DigestVerifyResult } from './digest.js'
import { InvalidArgumentError, StoreUnavailableError } from './errors.js'
import { definedOnly } from './options.js'
import type { Binding, BindingChange, LocationStore, LocationUpdateResult } from './location-store.js'
import { subscriberHa1, type SubscriberStore } from './subscriber-store.js'

/** Where a REGISTER came from, as the transport layer saw it. */
export interface RegisterSource {
  /** `udp`, `tcp`, … */
  readonly transport: string
  readonly address: string
  readonly port: number
  /** The flow (RFC 5626 §3) the request arrived on; stored as the binding's `flowToken`. */
  readonly flowId?: string
  /**
   * This node's own Path URI for the flow (its address with a flow token as
   * user part), stored as the binding's `flowUri` so that other nodes send
   * requests for the phone through this node (RFC 5626 §5.1, RFC 3327).
   * A function is called only when a binding is written, so that a
   * challenged or refused REGISTER does not pay for minting the token.
   */
  readonly flowUri?: string | (() => string | undefined)
}

/** The final response to send; the server adds Via, From, To (with tag), Call-ID and CSeq. */
export interface RegisterResponse {
  status: number
  reason: string
  headers: Array<[string, string]>
}

/** How a REGISTER ended, the label of the outcome metric. */
export type RegisterOutcome =
  | 'ok' | 'challenged' | 'auth-failed' | 'forbidden' | 'domain-not-served' | 'bad-request'
  | 'interval-too-brief' | 'too-many-contacts' | 'out-of-order' | 'unavailable' | 'error'

/** Options of {@link Registrar}. */
export interface RegistrarOptions {
  /** Domains served (To host), compared lower-case. */
  domains: readonly string[]
  locations: LocationStore
  subscribers: SubscriberStore
  authenticator: DigestAuthenticator
  /**
   * Shortest non-zero registration accepted; below it 423 with Min-Expires (§10.3 step 7).
   * @default 60
   */
  minExpires?: number
  /**
   * Longest registration; longer requests are shortened to it (§10.3 step 7).
   * @default 3600
   */
  maxExpires?: number
  /**
   * Expiry when neither the contact nor the request says (§10.2.1.1).
   * @default 3600
   */
  defaultExpires?: number
  /**
   * Most bindings per AOR; a REGISTER that would exceed it gets
   * `403 Too Many Contacts` (retrying cannot help, so not 503).
   * @default 10
   */
  maxContacts?: number
  /**
   * Seconds sent as `Flow-Timer` with `Require: outbound` (RFC 5626 §5.4):
   * the phone then sends its keep-alives every 80-100% of it. 0 sends none,
   * and phones keep their own pace (baresip: ~25 s over UDP, ~105 s over
   * TCP); set it below the shortest NAT binding lifetime on the way.
   * @default 0
   */
  flowTimer?: number
  /**
   * This node's id, stored with each binding so other nodes route through it.
   * @default undefined
   */
  nodeId?: string
  /**
   * Retry-After seconds of the 503 sent when a store is down (RFC 3261 §21.5.4).
   * @default 5
   */
  retryAfterSec?: number
  /**
   * REGISTERs for which this returns true are accepted without digest
   * authentication: the AOR of the To header is bound as asked, whoever
   * sent it (Kamailio's registrar without `www_authorize`). For sources the
   * operator trusts to have authenticated the phone already (an SBC in
   * front) or networks where anyone may register any user.
   * @default none (every REGISTER is authenticated)
   */
  authExempt?: (source: RegisterSource) => boolean
  /** Called once per REGISTER with its outcome. @default none */
  onOutcome?: (outcome: RegisterOutcome) => void
  /** Called for each refused credential. @default none */
  onAuthFailure?: (reason: DigestFailureReason) => void
  /** Latency of a location store operation in seconds. @default none */
  onStoreLatency?: (op: 'update', seconds: number) => void
  /** An unexpected error (answered 500 without details) or a store failure (503). @default none */
  onError?: (err: unknown) => void
}

/** Defaults of {@link RegistrarOptions}. */
export const DEFAULT_REGISTRAR_OPTIONS = Object.freeze({
  minExpires: 60,
  maxExpires: 3600,
  defaultExpires: 3600,
  maxContacts: 10,
  flowTimer: 0,
  retryAfterSec: 5
})

/**
 * Handles REGISTER requests. Every failure is a response value; the
 * returned promise never rejects.
 */
export class Registrar {
  readonly #domains: ReadonlySet<string>
  readonly #locations: LocationStore
  readonly #subscribers: SubscriberStore
  readonly #auth: DigestAuthenticator
  readonly #min: number
  readonly #max: number
  readonly #default: number
  readonly #maxContacts: number
  readonly #nodeId: string | undefined
  readonly #retryAfter: string
  readonly #flowTimer: string | undefined
  readonly #exempt: ((source: RegisterSource) => boolean) | undefined
  readonly #o: RegistrarOptions
  // The Date header of the 200s, rebuilt once per second.
  #dateSecond = -1
  #date = ''

  constructor (options: RegistrarOptions) {
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError('Registrar: options must be an object')
    const o = { ...DEFAULT_REGISTRAR_OPTIONS, ...definedOnly(options) }
    if (!Array.isArray(o.domains) || !o.domains.every(d => typeof d === 'string' && d.length > 0)) throw new InvalidArgumentError('Registrar: option "domains" must be an array of non-empty strings')
    for (const k of ['locations', 'subscribers', 'authenticator'] as const) {
      if (o[k] === null || typeof o[k] !== 'object') throw new InvalidArgumentError(`Registrar: option "${k}" is required`)
    }
    for (const k of ['minExpires', 'maxExpires', 'defaultExpires', 'maxContacts', 'flowTimer', 'retryAfterSec'] as const) {
      if (!Number.isInteger(o[k]) || o[k] < 0) throw new InvalidArgumentError(`Registrar: option "${k}" must be an integer >= 0, got ${String(o[k])}`)
    }
    if (o.maxExpires < 1 || o.maxExpires < o.minExpires) throw new InvalidArgumentError(`Registrar: option "maxExpires" (${o.maxExpires}) must be >= 1 and >= minExpires (${o.minExpires})`)
    if (o.defaultExpires < 1 || o.defaultExpires > o.maxExpires) throw new InvalidArgumentError(`Registrar: option "defaultExpires" must be from 1 to maxExpires (${o.maxExpires}), got ${o.defaultExpires}`)
    if (o.maxContacts < 1) throw new InvalidArgumentError('Registrar: option "maxContacts" must be at least 1')
    if (o.authExempt !== undefined && typeof o.authExempt !== 'function') throw new InvalidArgumentError('Registrar: option "authExempt" must be a function (source) => boolean')
    this.#domains = new Set(o.domains.map(d => d.toLowerCase()))
    this.#locations = options.locations
    this.#subscribers = options.subscribers
    this.#auth = options.authenticator
    this.#min = o.minExpires
    this.#max = o.maxExpires
    this.#default = o.defaultExpires
    this.#maxContacts = o.maxContacts
    this.#nodeId = o.nodeId
    this.#retryAfter = String(o.retryAfterSec)
    this.#flowTimer = o.flowTimer > 0 ? String(o.flowTimer) : undefined
    this.#exempt = o.authExempt
    this.#o = options
  }

  /** True when REGISTERs for this host are ours to answer. */
  serves (host: string): boolean {
    return this.#domains.has(host.toLowerCase())
  }

  /**
   * Answers one REGISTER (RFC 3261 §10.3).
   * @param now milliseconds since the epoch
   */
  handleRegister (req: SipRequest, source: RegisterSource, now = Date.now()): Promise<RegisterResponse> {
    // One then() on #handle's promise rather than an async wrapper awaiting it: a promise and a microtask less per REGISTER.
    return this.#handle(req, source, now).then(this.#settled, this.#failed)
  }

  readonly #settled = (r: [RegisterOutcome, RegisterResponse]): RegisterResponse => {
    this.#o.onOutcome?.(r[0])
    return r[1]
  }

  readonly #failed = (err: unknown): RegisterResponse => {
    let outcome: RegisterOutcome = 'error'
    let r: RegisterResponse
    if (err instanceof StoreUnavailableError) {
      outcome = 'unavailable'
      this.#o.onError?.(err)
      // RFC 3261 §21.5.4: temporary; the phone retries after Retry-After.
      r = { status: 503, reason: 'Service Unavailable', headers: [['Retry-After', this.#retryAfter]] }
    } else if (err instanceof SipParseError) {
      outcome = 'bad-request'
      r = { status: 400, reason: 'Bad Request', headers: [] }
    } else {
      this.#o.onError?.(err)
      // Never a stack trace on the wire: the details go to onError (the log).
      r = { status: 500, reason: 'Server Internal Error', headers: [] }
    }
    this.#o.onOutcome?.(outcome)
    return r
  }

  /**
   * Answers at once a REGISTER that carries no credentials and so can only be
   * challenged or refused, without any store and without a server
   * transaction: RFC 3261 §8.2.7 gives unauthenticated requests that get a
   * challenge to a stateless UAS, so that a flood of them creates no
   * transaction state (each would otherwise be held for Timer J, 32 s over
   * UDP). A retransmission is simply challenged again.
   * @returns the response to send statelessly, or undefined when the
   *   REGISTER may change bindings (credentials, or an `authExempt` source):
   *   it goes to {@link handleRegister} in a server transaction, since
   *   §8.2.7 rules out a stateless registrar
   */
  answerStateless (req: SipRequest, source: RegisterSource): RegisterResponse | undefined {
    if (req.hasHeader('Authorization') || this.#exempt?.(source) === true) return undefined
    let r: [RegisterOutcome, RegisterResponse]
    try {
      const a = this.#address(req)
      r = Array.isArray(a) ? a : ['challenged', this.#challenge(this.#auth.realmFor(a.domain), false, req.header('User-Agent'))]
    } catch (err) {
      // A request the parser cannot read this far is the stateful path's to answer (400, or 500 with a log line).
      if (err instanceof SipParseError) return undefined
      throw err
    }
    this.#o.onOutcome?.(r[0])
    return r[1]
  }

  /** §10.3 steps 1 and 5: the domain is ours and the AOR is the To URI; or the refusal. */
  #address (req: SipRequest): [RegisterOutcome, RegisterResponse] | { aor: string, user: string, domain: string } {
    // §10.3 step 1: the Request-URI names the domain whose bindings are asked for.
    if (!this.#domains.has(req.requestUri.host.toLowerCase())) return ['domain-not-served', reply(403, 'Domain Not Served')]
    // §10.3 step 5: the AOR is the To URI, in the canonical form sip:user@domain.
    let to
    try {
      to = parseUri(req.to.uri)
    } catch {
      return ['bad-request', reply(400, 'Invalid To URI')]
    }
    if ((to.scheme !== 'sip' && to.scheme !== 'sips') || to.user === undefined || to.user === '') {
      return ['bad-request', reply(400, 'Invalid To URI')]
    }
    const domain = to.host.toLowerCase()
    // The AOR's domain must be ours as well: no bindings for foreign AORs.
    if (!this.#domains.has(domain)) return ['domain-not-served', reply(403, 'Domain Not Served')]
    return { aor: `sip:${to.user}@${domain}`, user: to.user, domain }
  }

  async #handle (req: SipRequest, source: RegisterSource, now: number): Promise<[RegisterOutcome, RegisterResponse]> {
    const a = this.#address(req)
    if (Array.isArray(a)) return a
    const { aor, domain } = a
    const userAgent = req.header('User-Agent')
    if (this.#exempt?.(source) !== true) {
      // §10.3 steps 2-4 (RFC 3261 §22.4), with the subscriber lookup awaited here: one async step less than a helper of its own.
      const realm = this.#auth.realmFor(domain)
      const creds = pickCredentials(req, realm)
      // A challenge names the client's User-Agent: some clients get MD5 alone (DigestAuthenticatorOptions.md5OnlyUserAgents).
      if (creds === undefined) return ['challenged', this.#challenge(realm, false, userAgent)]
      const user = creds.username ?? ''
      // §10.3 step 4: the authenticated user may only change its own AOR. Both
      // a foreign AOR and an unknown user get the same answer.
      const sub = user === a.user ? await this.#subscribers.lookup(user, domain) : undefined
      const refused = this.#refusal(user === a.user ? this.#auth.verify({ method: req.method, credentials: creds, realm, ha1: subscriberHa1(sub, realm) }) : UNKNOWN_USER, realm, userAgent)
      if (refused !== undefined) return refused
    }

    // §10.3 step 6: Contact: * needs Expires: 0 and no other Contact.
    const contacts = req.contact
    const expiresHeader = req.expires
    const path = req.headers('Path')
    const echoPath = path.length > 0 && supports(req, 'path')
    // RFC 5626 §6: outbound applies when this registrar is the phone's first
    // hop (one Via, no Path) or the first Path URI carries `ob`; then a
    // binding with reg-id gets `Require: outbound`, which is what makes the
    // phone keep its flow alive (CRLF over TCP, STUN over UDP) and
    // re-register on flow failure. Only for a UA that listed `outbound` in
    // Supported (RFC 3261 §8.2.2.3: no Require of an extension it did not offer).
    // Decided on the first contact with a reg-id: most REGISTERs have none.
    let outboundApplies: boolean | undefined
    let requireOutbound = false
    const callId = req.callId
    const cseq = req.cseq.seq
    let result: LocationUpdateResult
    if (contacts === '*') {
      if (expiresHeader !== 0) return ['bad-request', reply(400, 'Invalid Wildcard')]
      result = await this.#update(aor, { callId, cseq, removeAll: true, changes: [], maxContacts: this.#maxContacts }, now)
    } else if (contacts.length === 0) {
      // §10.3 step 8: no Contact is a query.
      result = { ok: true, bindings: await this.#locations.lookup(aor, now), outcomes: [], removedAll: 0 }
    } else {
      const changes: BindingChange[] = []
      const flowUri = typeof source.flowUri === 'function' ? source.flowUri() : source.flowUri
      for (const c of contacts) {
        if (c.uri === '*') return ['bad-request', reply(400, 'Invalid Wildcard')]
        try {
          parseUri(c.uri)
        } catch {
          return ['bad-request', reply(400, 'Invalid Contact URI')]
        }
        // §10.3 step 7: the contact's expires parameter, else the Expires header, else ours.
        let expires = c.expires ?? expiresHeader ?? this.#default
        if (expires !== 0 && expires < this.#min) {
          return ['interval-too-brief', { status: 423, reason: 'Interval Too Brief', headers: [['Min-Expires', String(this.#min)]] }]
        }
        if (expires > this.#max) expires = this.#max
        const change: BindingChange = {
          contact: c.uri,
          expires,
          path,
          received: { transport: source.transport, address: source.address, port: source.port }
        }
        if (c.q !== undefined) change.q = c.q
        // RFC 5626 §6: +sip.instance and reg-id name the flow; a reg-id without an instance is ignored.
        const instance = c.params.get('+sip.instance')
        if (typeof instance === 'string' && instance.length > 0) {
          change.instanceId = instance
          const regId = c.params.get('reg-id')
          const n = typeof regId === 'string' ? Number(regId) : NaN
          if (Number.isInteger(n) && n >= 1) {
            change.regId = n
            outboundApplies ??= supports(req, 'outbound') && (path.length === 0 ? req.via.length === 1 : firstPathHasOb(path[0] as string))
            if (outboundApplies) requireOutbound = true
          }
        }
        if (this.#nodeId !== undefined) change.node = this.#nodeId
        if (source.flowId !== undefined) change.flowToken = source.flowId
        if (flowUri !== undefined) change.flowUri = flowUri
        if (userAgent !== undefined) change.userAgent = userAgent
        changes.push(change)
      }
      try {
        result = await this.#update(aor, { callId, cseq, changes, maxContacts: this.#maxContacts }, now)
      } catch (err) {
        // The store's checks refuse values the parser let through (a q above 1, an over-long URI).
        if (err instanceof InvalidArgumentError) return ['bad-request', reply(400, 'Invalid Contact')]
        throw err
      }
    }

    if (!result.ok) {
      if (result.error === 'out-of-order') {
        // §10.3 steps 6-7: same Call-ID with a CSeq not above the stored one.
        return ['out-of-order', reply(500, 'Request Out Of Order')]
      }
      return ['too-many-contacts', reply(403, 'Too Many Contacts')]
    }
    const headers: Array<[string, string]> = []
    // §10.3 step 8: every current binding with the time it has left.
    for (const b of result.bindings) headers.push(['Contact', contactValue(b, now)])
    // RFC 3327 §5.3: the Path is echoed only to a UA that said it supports it.
    if (echoPath) for (const p of path) headers.push(['Path', p])
    if (requireOutbound) {
      headers.push(['Require', 'outbound'])
      if (this.#flowTimer !== undefined) headers.push(['Flow-Timer', this.#flowTimer])
    }
    headers.push(['Date', this.#dateOf(now)])
    return ['ok', { status: 200, reason: 'OK', headers }]
  }

  /** The answer to refused credentials, or undefined when they are good. */
  #refusal (verdict: DigestVerifyResult, realm: string, userAgent: string | undefined): [RegisterOutcome, RegisterResponse] | undefined {
    if (verdict.ok) return undefined
    this.#o.onAuthFailure?.(verdict.reason)
    switch (verdict.reason) {
      case 'stale': return ['challenged', this.#challenge(realm, true, userAgent)]
      case 'unknown-user': return ['forbidden', reply(403, 'Forbidden')]
      case 'bad-request': return ['bad-request', reply(400, 'Bad Authorization')]
      default: return ['auth-failed', this.#challenge(realm, false, userAgent)]
    }
  }

  /** The store's update, timed for onStoreLatency by a then() on its promise (no async wrapper of its own). */
  #update (aor: string, u: Parameters<LocationStore['update']>[1], now: number): Promise<LocationUpdateResult> {
    const onLatency = this.#o.onStoreLatency
    if (onLatency === undefined) return this.#locations.update(aor, u, now)
    // performance.now(): a double, where hrtime.bigint() allocated two BigInts per REGISTER.
    const t0 = performance.now()
    const done = (): void => { onLatency('update', (performance.now() - t0) / 1000) }
    return this.#locations.update(aor, u, now).then(r => { done(); return r }, err => { done(); throw err })
  }

  /** The Date header value for `now` (RFC 3261 §20.17), built once per second. */
  #dateOf (now: number): string {
    const second = Math.floor(now / 1000)
    if (second !== this.#dateSecond) {
      this.#date = new Date(second * 1000).toUTCString()
      this.#dateSecond = second
    }
    return this.#date
  }

  #challenge (realm: string, stale: boolean, userAgent: string | undefined): RegisterResponse {
    const headers: Array<[string, string]> = []
    for (const v of this.#auth.challenge(realm, { stale, userAgent })) headers.push(['WWW-Authenticate', v])
    return { status: 401, reason: 'Unauthorized', headers }
  }
}

const UNKNOWN_USER: DigestVerifyResult = Object.freeze({ ok: false, reason: 'unknown-user' })

function reply (status: number, reason: string): RegisterResponse {
  return { status, reason, headers: [] }
}

/** The credentials for our realm when a client sent several (RFC 3261 §22.4), else the first. */
function pickCredentials (req: SipRequest, realm: string): DigestCredentials | undefined {
  const all = req.credentials(false)
  if (all.length === 0) return undefined
  for (const c of all) if (c.realm === realm) return c
  return all[0]
}

/** Whether the request lists `option` in Supported (option-tags compare case-insensitively, RFC 3261 §19.2). */
function supports (req: SipRequest, option: string): boolean {
  for (const s of req.supported) if (s.toLowerCase() === option) return true
  return false
}

/** Whether a Path value's URI has the `ob` parameter (RFC 5626 §5.1: that edge proxy does outbound). */
function firstPathHasOb (value: string): boolean {
  const lt = value.indexOf('<')
  const gt = value.indexOf('>', lt + 1)
  try {
    return parseUri(lt >= 0 && gt > lt ? value.slice(lt + 1, gt) : value.trim()).params.has('ob')
  } catch {
    return false
  }
}

/** A Contact of the 200: the URI with its remaining seconds, q and RFC 5626 parameters. */
function contactValue (b: Binding, now: number): string {
  let v = `<${b.contact}>;expires=${Math.max(1, Math.ceil((b.expiresAt - now) / 1000))}`
  if (b.q !== undefined) v += `;q=${b.q}`
  // The parser hands the instance without its quotes; RFC 5626 §4.1 writes it as a quoted string.
  if (b.instanceId !== undefined) v += b.instanceId.startsWith('"') ? `;+sip.instance=${b.instanceId}` : `;+sip.instance="${b.instanceId}"`
  if (b.regId !== undefined) v += `;reg-id=${b.regId}`
  return v
}
