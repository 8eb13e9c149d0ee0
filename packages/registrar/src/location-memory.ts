import { InvalidArgumentError } from './errors.js'
import {
  checkAor, checkListLimit, checkNow, checkUpdate, compareBindings, planUpdate,
  type Binding, type LocationPage, type LocationStore, type LocationUpdate, type LocationUpdateResult
} from './location-store.js'
import { definedOnly } from './options.js'
import { ownString } from '@sipd/sip-stack'

/** Options of {@link MemoryLocationStore}. */
export interface MemoryLocationStoreOptions {
  /**
   * How often expired bindings are swept, in milliseconds; 0 turns the timer
   * off (expiry is enforced on read regardless).
   * @default 10000
   */
  sweepIntervalMs?: number
  /**
   * Most AORs examined per sweep, so one sweep never stalls the event loop;
   * the next sweep continues where this one stopped.
   * @default 5000
   */
  sweepBatch?: number
  /**
   * Clock for the sweep timer, milliseconds since the epoch.
   * @default Date.now
   */
  now?: () => number
}

/** Defaults of {@link MemoryLocationStoreOptions}. */
export const DEFAULT_MEMORY_LOCATION_STORE_OPTIONS = Object.freeze({
  sweepIntervalMs: 10_000,
  sweepBatch: 5000,
  now: Date.now as () => number
})

/**
 * Bindings in this process, the embedded default for a single node. Each
 * operation runs synchronously inside one call, so an AOR's update is atomic
 * by construction. Bindings are frozen and shared with callers, not copied.
 */
export class MemoryLocationStore implements LocationStore {
  readonly #aors = new Map<string, Map<string, Binding>>()
  readonly #batch: number
  readonly #now: () => number
  #timer: NodeJS.Timeout | undefined
  #cursor: Iterator<string> | undefined

  constructor (options: MemoryLocationStoreOptions = {}) {
    const o = { ...DEFAULT_MEMORY_LOCATION_STORE_OPTIONS, ...definedOnly(options) }
    if (!Number.isInteger(o.sweepIntervalMs) || o.sweepIntervalMs < 0) throw new InvalidArgumentError(`MemoryLocationStore: option "sweepIntervalMs" must be an integer >= 0, got ${String(o.sweepIntervalMs)}`)
    if (!Number.isInteger(o.sweepBatch) || o.sweepBatch < 1) throw new InvalidArgumentError(`MemoryLocationStore: option "sweepBatch" must be a positive integer, got ${String(o.sweepBatch)}`)
    if (typeof o.now !== 'function') throw new InvalidArgumentError('MemoryLocationStore: option "now" must be a function')
    this.#batch = o.sweepBatch
    this.#now = o.now
    if (o.sweepIntervalMs > 0) {
      this.#timer = setInterval(() => { this.sweep(this.#now()) }, o.sweepIntervalMs)
      this.#timer.unref()
    }
  }

  async update (aor: string, update: LocationUpdate, now = Date.now()): Promise<LocationUpdateResult> {
    const limit = checkUpdate(aor, update, now)
    const live = this.#live(aor, now)
    const plan = planUpdate(aor, live, update, limit, now)
    if (!plan.ok) {
      const bindings = sorted(live)
      return plan.error === 'out-of-order'
        ? { ok: false, error: 'out-of-order', index: plan.index, bindings }
        : { ok: false, error: 'too-many-contacts', limit: plan.limit, bindings }
    }
    if (plan.next.size === 0) this.#aors.delete(aor)
    // A new AOR is keyed by a copy of its own: the caller's string may be cut from a request's text.
    else this.#aors.set(this.#aors.has(aor) ? aor : ownString(aor), plan.next)
    return { ok: true, bindings: sorted(plan.next), outcomes: plan.outcomes, removedAll: plan.removedAll }
  }

  async lookup (aor: string, now = Date.now()): Promise<Binding[]> {
    checkAor(aor)
    checkNow(now)
    return sorted(this.#live(aor, now))
  }

  async remove (aor: string, now = Date.now()): Promise<number> {
    checkAor(aor)
    checkNow(now)
    const n = this.#live(aor, now).size
    this.#aors.delete(aor)
    return n
  }

  async list (opts: { cursor?: string, limit?: number } = {}, now = Date.now()): Promise<LocationPage> {
    checkNow(now)
    const limit = checkListLimit(opts.limit)
    const after = opts.cursor
    // Admin listing only: sorting the keys costs O(n log n) per page, which
    // keeps the per-REGISTER path free of any ordered index.
    const keys: string[] = []
    for (const k of this.#aors.keys()) if (after === undefined || k > after) keys.push(k)
    keys.sort()
    const page = keys.slice(0, limit)
    const items: LocationPage['items'] = []
    for (const aor of page) {
      const bindings = sorted(this.#live(aor, now))
      if (bindings.length > 0) items.push({ aor, bindings })
    }
    return page.length === limit && keys.length > limit ? { items, cursor: page[page.length - 1] } : { items }
  }

  async count (now = Date.now()): Promise<number> {
    checkNow(now)
    let n = 0
    for (const m of this.#aors.values()) {
      for (const b of m.values()) {
        if (b.expiresAt > now) { n++; break }
      }
    }
    return n
  }

  /**
   * Drops expired bindings of up to `sweepBatch` AORs, resuming where the
   * previous sweep stopped. Runs from the timer; callable directly.
   * @returns the number of bindings dropped
   */
  sweep (now = Date.now()): number {
    let dropped = 0
    let examined = 0
    while (examined < this.#batch) {
      this.#cursor ??= this.#aors.keys()
      const r = this.#cursor.next()
      if (r.done === true) {
        this.#cursor = undefined
        // One full pass per call at most, so an empty map does not spin.
        break
      }
      examined++
      const m = this.#aors.get(r.value)
      if (m === undefined) continue
      for (const [k, b] of m) {
        if (b.expiresAt <= now) { m.delete(k); dropped++ }
      }
      // Deleting the current key is safe: Map iterators skip deleted entries.
      if (m.size === 0) this.#aors.delete(r.value)
    }
    return dropped
  }

  async close (): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
  }

  /** Live bindings of an AOR; the stored map itself when nothing in it has expired. */
  #live (aor: string, now: number): Map<string, Binding> {
    const m = this.#aors.get(aor)
    if (m === undefined) return new Map()
    let expired = false
    for (const b of m.values()) if (b.expiresAt <= now) { expired = true; break }
    if (!expired) return m
    const live = new Map<string, Binding>()
    for (const [k, b] of m) if (b.expiresAt > now) live.set(k, b)
    return live
  }
}

function sorted (m: ReadonlyMap<string, Binding>): Binding[] {
  return [...m.values()].sort(compareBindings)
}
