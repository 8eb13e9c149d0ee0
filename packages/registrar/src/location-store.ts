/**
 * The location service (RFC 3261 §10.2, §10.3): bindings of an
 * address-of-record to contacts, the interface both stores implement, and
 * the rules of one REGISTER's update shared by them.
 */
import { InvalidArgumentError, truncate } from './errors.js'
import { ownString } from '@sipd/sip-stack'

/** Where a REGISTER came from: the flow a request to the phone must reuse (RFC 5626 §5.3). */
export interface FlowAddress {
  /** `udp`, `tcp`, `tls`, `ws`, `wss`. */
  readonly transport: string
  readonly address: string
  readonly port: number
}

/** One binding of an AOR to a contact. Objects returned by the stores are frozen. */
export interface Binding {
  /** The address-of-record, canonical form chosen by the caller (e.g. `sip:alice@example.test`). */
  readonly aor: string
  /** Identity of the binding within the AOR, see {@link bindingKey}. */
  readonly key: string
  /** The Contact URI as registered. */
  readonly contact: string
  /** RFC 5626 `+sip.instance` value as the caller passed it; compared as a string. */
  readonly instanceId?: string
  /** RFC 5626 `reg-id`. */
  readonly regId?: number
  /** Absolute expiry, milliseconds since the epoch; the binding is gone at this instant. */
  readonly expiresAt: number
  /** Contact `q` value, 0 to 1 (RFC 3261 §20.10). */
  readonly q?: number
  /** Call-ID of the REGISTER that last wrote the binding (§10.3 step 7). */
  readonly callId: string
  /** CSeq of the REGISTER that last wrote the binding (§10.3 step 7). */
  readonly cseq: number
  /** Path header values of the REGISTER, in order (RFC 3327 §5.3). */
  readonly path: readonly string[]
  /** Source of the REGISTER as received. */
  readonly received?: FlowAddress
  /** Id of the sipd node that holds the flow (the connection); others route through it. */
  readonly node?: string
  /** Opaque token that names the flow on `node` (RFC 5626 §5.2). */
  readonly flowToken?: string
  /**
   * Where any node sends a request for this binding so that it reaches the
   * phone over its flow: the holding node's own Path URI, with a flow token
   * as its user part (RFC 5626 §5.1, RFC 3327). Kept apart from `path`,
   * which holds what the REGISTER carried and is echoed to the phone.
   */
  readonly flowUri?: string
  /** User-Agent header of the REGISTER, for operators. */
  readonly userAgent?: string
  /** When the binding was last written, milliseconds since the epoch. */
  readonly updatedAt: number
}

/** One Contact of a REGISTER, already validated and with its expiry decided (§10.3 step 8). */
export interface BindingChange {
  /** Contact URI. */
  contact: string
  /** Seconds the binding lives from `now`; 0 removes it. The caller applies Min-Expires and the maximum. */
  expires: number
  q?: number
  instanceId?: string
  regId?: number
  /** @default [] */
  path?: readonly string[]
  received?: FlowAddress
  node?: string
  flowToken?: string
  flowUri?: string
  userAgent?: string
}

/** The changes one REGISTER makes to one AOR. */
export interface LocationUpdate {
  /** Call-ID of the REGISTER. */
  callId: string
  /** CSeq number of the REGISTER. */
  cseq: number
  /**
   * `Contact: *` with `Expires: 0` (§10.3 step 6): remove every binding.
   * `changes` must then be empty.
   * @default false
   */
  removeAll?: boolean
  /** One entry per Contact, in the order of the request. */
  changes: readonly BindingChange[]
  /**
   * Most bindings the AOR may have. An update that would grow the AOR beyond
   * it is refused whole; one that does not grow it (refreshes, replacements)
   * passes even if a lowered limit is already exceeded.
   * @default 10
   */
  maxContacts?: number
}

/** What happened to one {@link BindingChange}. */
export type BindingOutcome = 'added' | 'refreshed' | 'removed' | 'absent'

/**
 * Result of an update. Failures change nothing: RFC 3261 §10.3 commits a
 * REGISTER's bindings if and only if all of them succeed.
 */
export type LocationUpdateResult =
  | {
    ok: true
    /** The AOR's bindings after the update, for the 200's Contact list. */
    bindings: Binding[]
    /** One per change, in order. Empty for `removeAll`. */
    outcomes: BindingOutcome[]
    /** Bindings removed by `removeAll`; 0 otherwise. */
    removedAll: number
  }
  | {
    ok: false
    /**
     * §10.3 steps 6 and 7: a stored binding has the request's Call-ID and a
     * CSeq not lower than the request's; the request is out of order and
     * fails (500 in RFC 3261 terms, nothing stored).
     */
    error: 'out-of-order'
    /** Index of the offending change, -1 for `removeAll`. */
    index: number
    /** The AOR's bindings, unchanged. */
    bindings: Binding[]
  }
  | {
    ok: false
    /** The AOR would hold more than `maxContacts` bindings; nothing stored. */
    error: 'too-many-contacts'
    limit: number
    /** The AOR's bindings, unchanged. */
    bindings: Binding[]
  }

/** One page of {@link LocationStore.list}. */
export interface LocationPage {
  /** AORs with at least one live binding, in ascending AOR order. */
  items: Array<{ aor: string, bindings: Binding[] }>
  /**
   * Pass to the next call to continue; absent when the listing is complete.
   * A page may hold fewer than `limit` items (AORs that expired meanwhile are
   * left out) and still have a cursor.
   */
  cursor?: string
}

/**
 * Where bindings live. Every method takes `now` (milliseconds since the
 * epoch, default `Date.now()`); a binding with `expiresAt <= now` does not
 * exist for any method, whether or not it has been swept yet.
 *
 * Implementations reject with `StoreUnavailableError` when their backend
 * fails, and never leave one AOR's bindings half-written.
 */
export interface LocationStore {
  /** Applies one REGISTER's changes to one AOR atomically. */
  update (aor: string, update: LocationUpdate, now?: number): Promise<LocationUpdateResult>
  /** Live bindings of an AOR, highest q first, then most recently updated. */
  lookup (aor: string, now?: number): Promise<Binding[]>
  /** Removes every binding of an AOR (admin). @returns the number of live bindings removed */
  remove (aor: string, now?: number): Promise<number>
  /** AORs in ascending order, a page at a time. */
  list (opts?: { cursor?: string, limit?: number }, now?: number): Promise<LocationPage>
  /** Number of AORs with at least one live binding. */
  count (now?: number): Promise<number>
  /** Stops timers and closes connections the store opened. */
  close (): Promise<void>
}

/** Default of {@link LocationUpdate.maxContacts}. */
export const DEFAULT_MAX_CONTACTS = 10
/** Default and largest page size of {@link LocationStore.list}. */
export const DEFAULT_LIST_LIMIT = 100
export const MAX_LIST_LIMIT = 1000
// RFC 3261 §8.1.1.5: a CSeq number is below 2**31.
const MAX_CSEQ = 2 ** 31 - 1
// RFC 3261 §20.19: Expires is delta-seconds, capped here at 2**32-1.
const MAX_EXPIRES = 2 ** 32 - 1

/**
 * Identity of a binding within its AOR.
 * - RFC 5626 §6: with `+sip.instance` and `reg-id`, the pair names one flow;
 *   flows of one instance are kept apart, and a new REGISTER on the same
 *   flow replaces the binding whatever its contact URI.
 * - With `+sip.instance` alone, the instance names the binding (the GRUU
 *   rule of RFC 5627): a phone re-registering from a new address replaces
 *   its old contact instead of adding one.
 * - Otherwise the contact URI, compared as RFC 3261 §10.3 step 5 asks
 *   (§19.1.4 URI equality, approximated by {@link canonicalContact}).
 */
export function bindingKey (c: { contact: string, instanceId?: string | undefined, regId?: number | undefined }): string {
  if (c.instanceId !== undefined) {
    return c.regId !== undefined ? `i:${c.instanceId};reg-id=${c.regId}` : `i:${c.instanceId}`
  }
  return 'u:' + canonicalContact(c.contact)
}

/**
 * A comparison form of a URI per RFC 3261 §19.1.4: userinfo is
 * case-sensitive and kept, everything after it (scheme aside) is
 * case-insensitive and lower-cased, and the order of `;` parameters does
 * not matter, so they are sorted. Escaped characters are not unescaped.
 */
export function canonicalContact (uri: string): string {
  const colon = uri.indexOf(':')
  if (colon < 0) return uri.toLowerCase()
  const scheme = uri.slice(0, colon).toLowerCase()
  let rest = uri.slice(colon + 1)
  let user = ''
  // RFC 3261 §25.1: '@' appears unescaped only after the userinfo.
  const at = rest.indexOf('@')
  if (at >= 0) {
    user = rest.slice(0, at + 1)
    rest = rest.slice(at + 1)
  }
  rest = rest.toLowerCase()
  const qm = rest.indexOf('?')
  const headers = qm < 0 ? '' : rest.slice(qm)
  const hostParams = qm < 0 ? rest : rest.slice(0, qm)
  const semi = hostParams.indexOf(';')
  if (semi < 0) return `${scheme}:${user}${hostParams}${headers}`
  const params = hostParams.slice(semi + 1).split(';').filter(p => p.length > 0).sort()
  return `${scheme}:${user}${hostParams.slice(0, semi)};${params.join(';')}${headers}`
}

/** Orders bindings for lookups and 200 responses: q descending (absent counts as 1), newest first, then key. */
export function compareBindings (a: Binding, b: Binding): number {
  const qa = a.q ?? 1
  const qb = b.q ?? 1
  if (qa !== qb) return qb - qa
  if (a.updatedAt !== b.updatedAt) return b.updatedAt - a.updatedAt
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0
}

/**
 * True when `s` holds a CR or LF: such a value cannot be written back into
 * a header (the 200's Contact, a Route set), so it is never stored
 * (RFC 3261 §25.1: no CR or LF in a header value, not even quoted).
 */
function hasControl (s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c === 0x0d || c === 0x0a) return true
  }
  return false
}

/** @internal Throws InvalidArgumentError for a malformed update; returns the resolved limit. */
export function checkUpdate (aor: string, u: LocationUpdate, now: number): number {
  checkAor(aor)
  checkNow(now)
  if (u === null || typeof u !== 'object') throw new InvalidArgumentError('location update must be an object')
  if (typeof u.callId !== 'string' || u.callId.length === 0) throw new InvalidArgumentError('location update: callId must be a non-empty string')
  if (!Number.isInteger(u.cseq) || u.cseq < 0 || u.cseq > MAX_CSEQ) throw new InvalidArgumentError(`location update: cseq must be an integer from 0 to 2**31-1, got ${String(u.cseq)}`)
  if (!Array.isArray(u.changes)) throw new InvalidArgumentError('location update: changes must be an array')
  if (u.removeAll === true && u.changes.length > 0) throw new InvalidArgumentError('location update: removeAll (Contact: *) comes with no other change (RFC 3261 §10.3 step 6)')
  const limit = u.maxContacts ?? DEFAULT_MAX_CONTACTS
  if (!Number.isInteger(limit) || limit < 1) throw new InvalidArgumentError(`location update: maxContacts must be a positive integer, got ${String(limit)}`)
  for (let i = 0; i < u.changes.length; i++) checkChange(u.changes[i], i)
  return limit
}

const STRING_FIELDS = ['node', 'flowToken', 'flowUri', 'userAgent'] as const

/** Throws InvalidArgumentError for a malformed change of an update (`i`: its index, for the message). */
function checkChange (c: BindingChange | undefined, i: number): void {
  if (c === null || typeof c !== 'object') throw new InvalidArgumentError(`${where(i)} must be an object`)
  if (typeof c.contact !== 'string' || c.contact.length === 0) throw new InvalidArgumentError(`${where(i)}.contact must be a non-empty string`)
  if (!Number.isInteger(c.expires) || c.expires < 0 || c.expires > MAX_EXPIRES) throw new InvalidArgumentError(`${where(i)}.expires must be an integer number of seconds >= 0, got ${String(c.expires)}`)
  if (c.q !== undefined && (typeof c.q !== 'number' || !(c.q >= 0 && c.q <= 1))) throw new InvalidArgumentError(`${where(i)}.q must be from 0 to 1, got ${String(c.q)}`)
  if (c.instanceId !== undefined && (typeof c.instanceId !== 'string' || c.instanceId.length === 0)) throw new InvalidArgumentError(`${where(i)}.instanceId must be a non-empty string`)
  if (c.regId !== undefined && (!Number.isInteger(c.regId) || c.regId < 1)) throw new InvalidArgumentError(`${where(i)}.regId must be a positive integer, got ${String(c.regId)}`)
  if (c.regId !== undefined && c.instanceId === undefined) throw new InvalidArgumentError(`${where(i)}: regId without instanceId (RFC 5626 §6 ignores such a reg-id; drop it first)`)
  let pathControl = false
  if (c.path !== undefined) {
    if (!Array.isArray(c.path)) throw new InvalidArgumentError(`${where(i)}.path must be an array of strings`)
    for (const p of c.path as unknown[]) {
      if (typeof p !== 'string') throw new InvalidArgumentError(`${where(i)}.path must be an array of strings`)
      if (hasControl(p)) pathControl = true
    }
  }
  if (pathControl || hasControl(c.contact) || (c.instanceId !== undefined && hasControl(c.instanceId))) {
    throw new InvalidArgumentError(`${where(i)}: contact, instanceId and path must not contain CR or LF`)
  }
  if (c.received !== undefined) {
    const r = c.received
    if (r === null || typeof r !== 'object' || typeof r.transport !== 'string' || typeof r.address !== 'string' || !Number.isInteger(r.port) || r.port < 0 || r.port > 65535) {
      throw new InvalidArgumentError(`${where(i)}.received must be {transport, address, port}`)
    }
  }
  for (const k of STRING_FIELDS) {
    if (c[k] !== undefined && typeof c[k] !== 'string') throw new InvalidArgumentError(`${where(i)}.${k} must be a string`)
  }
}

/** A change's name in a message, built only for one. */
function where (i: number): string {
  return `location update: changes[${i}]`
}

/** @internal */
export function checkAor (aor: string): void {
  if (typeof aor !== 'string' || aor.length === 0 || aor.length > 1024) throw new InvalidArgumentError(`AOR must be a string of 1 to 1024 characters, got ${typeof aor === 'string' ? JSON.stringify(truncate(aor, 80)) : typeof aor}`)
}

/** @internal */
export function checkNow (now: number): void {
  if (!Number.isFinite(now) || now < 0) throw new InvalidArgumentError(`now must be milliseconds since the epoch, got ${String(now)}`)
}

/** @internal */
export function checkListLimit (limit: number | undefined): number {
  const l = limit ?? DEFAULT_LIST_LIMIT
  if (!Number.isInteger(l) || l < 1 || l > MAX_LIST_LIMIT) throw new InvalidArgumentError(`list limit must be an integer from 1 to ${MAX_LIST_LIMIT}, got ${String(limit)}`)
  return l
}

/**
 * @internal Builds the stored binding for a change; optional fields only when
 * present, so every store returns the same shape. With `prev` (the binding
 * it replaces, or null for a new one) the binding keeps strings of its own
 * (see {@link ownString}): those equal to `prev`'s are shared with it, the
 * others copied. Without, the caller's strings are used as they are (the
 * Redis store serialises the binding at once).
 */
export function makeBinding (aor: string, key: string, c: BindingChange, callId: string, cseq: number, now: number, prev?: Binding | null): Binding {
  const own = prev !== undefined
  const path = c.path ?? []
  const b: { -readonly [K in keyof Binding]: Binding[K] } = {
    aor: own ? keep(prev?.aor, aor) : aor,
    key: own ? keep(prev?.key, key) : key,
    contact: own ? keep(prev?.contact, c.contact) : c.contact,
    expiresAt: now + c.expires * 1000,
    callId: own ? keep(prev?.callId, callId) : callId,
    cseq,
    path: own && prev !== null && samePath(prev.path, path) ? prev.path : Object.freeze(own ? path.map(ownString) : [...path]),
    updatedAt: now
  }
  if (c.instanceId !== undefined) b.instanceId = own ? keep(prev?.instanceId, c.instanceId) : c.instanceId
  if (c.regId !== undefined) b.regId = c.regId
  if (c.q !== undefined) b.q = c.q
  if (c.received !== undefined) {
    const r = c.received
    const p = prev?.received
    b.received = own && p !== undefined && p.transport === r.transport && p.address === r.address && p.port === r.port
      ? p
      : Object.freeze({ transport: own ? ownString(r.transport) : r.transport, address: own ? ownString(r.address) : r.address, port: r.port })
  }
  if (c.node !== undefined) b.node = c.node
  if (c.flowToken !== undefined) b.flowToken = c.flowToken
  if (c.flowUri !== undefined) b.flowUri = c.flowUri
  if (c.userAgent !== undefined) b.userAgent = own ? keep(prev?.userAgent, c.userAgent) : c.userAgent
  return Object.freeze(b)
}

/** `prev` when it equals `next` (a refresh), else a copy of `next` of its own. */
function keep (prev: string | undefined, next: string): string {
  return prev === next ? prev : ownString(next)
}

function samePath (a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/**
 * The key of the live binding a contact without instance refreshes with the
 * very same URI text (a phone re-registering), else undefined: the key is a
 * function of the text, so it is that binding's, and the canonical form
 * (lower-casing, splitting and sorting parameters) is not built again.
 */
function refreshedKey (live: ReadonlyMap<string, Binding>, c: BindingChange): string | undefined {
  if (c.instanceId !== undefined) return undefined
  for (const b of live.values()) if (b.instanceId === undefined && b.contact === c.contact) return b.key
  return undefined
}

/**
 * @internal The update rules on a snapshot of one AOR's live bindings
 * (RFC 3261 §10.3 steps 6 and 7, RFC 5626 §6, the contact limit). The
 * memory store applies the result; the Redis store's Lua script implements
 * the same rules and the shared contract tests hold both to them.
 */
export function planUpdate (aor: string, live: ReadonlyMap<string, Binding>, u: LocationUpdate, limit: number, now: number):
  | { ok: true, next: Map<string, Binding>, outcomes: BindingOutcome[], removedAll: number }
  | { ok: false, error: 'out-of-order', index: number }
  | { ok: false, error: 'too-many-contacts', limit: number } {
  if (u.removeAll === true) {
    // §10.3 step 6: a binding with the same Call-ID and a CSeq not lower
    // than the request's aborts the removal.
    for (const b of live.values()) {
      if (b.callId === u.callId && b.cseq >= u.cseq) return { ok: false, error: 'out-of-order', index: -1 }
    }
    return { ok: true, next: new Map(), outcomes: [], removedAll: live.size }
  }
  const next = new Map(live)
  const outcomes: BindingOutcome[] = []
  for (let i = 0; i < u.changes.length; i++) {
    const c = u.changes[i]
    const key = refreshedKey(live, c) ?? bindingKey(c)
    // §10.3 step 7, against the bindings as they were before this request
    // (two Contacts of one REGISTER naming one binding do not collide).
    const old = live.get(key)
    if (old !== undefined && old.callId === u.callId && old.cseq >= u.cseq) return { ok: false, error: 'out-of-order', index: i }
    if (c.expires === 0) {
      outcomes.push(next.delete(key) ? 'removed' : 'absent')
    } else {
      outcomes.push(next.has(key) ? 'refreshed' : 'added')
      // Strings of its own, shared with the binding it refreshes (see ownString), and keyed by them.
      const b = makeBinding(aor, key, c, u.callId, u.cseq, now, next.get(key) ?? null)
      next.set(b.key, b)
    }
  }
  if (next.size > limit && next.size > live.size) return { ok: false, error: 'too-many-contacts', limit }
  return { ok: true, next, outcomes, removedAll: 0 }
}
