import { InvalidArgumentError } from './errors.js'
import { ownString } from '@sipd/sip-stack'
import { subscriberKey, type Subscriber, type SubscriberStore } from './subscriber-store.js'

/** Options of {@link CachedSubscriberStore}. */
export interface CachedSubscriberStoreOptions {
  /**
   * How long an answer (found or not found) is reused, in milliseconds. Also
   * the longest a disabled or deleted subscriber can still register.
   * @default 5000
   */
  ttlMs?: number
  /**
   * Most cached answers; the oldest is dropped when full.
   * @default 10000
   */
  maxEntries?: number
  /**
   * Clock in milliseconds.
   * @default Date.now
   */
  now?: () => number
}

/** Defaults of {@link CachedSubscriberStoreOptions}. */
export const DEFAULT_CACHED_SUBSCRIBER_STORE_OPTIONS = Object.freeze({
  ttlMs: 5000,
  maxEntries: 10_000,
  now: Date.now as () => number
})

interface Entry { value: Subscriber | undefined, expiresAt: number }

/**
 * A short-lived cache in front of another store, so that a burst of
 * REGISTERs (a phone's challenge round trip, a site rebooting) costs one
 * query per subscriber rather than one per request. Unknown subscribers are
 * cached too, so a scan of usernames does not reach the database at request
 * rate. Concurrent lookups of the same subscriber share one query. Failures
 * are not cached.
 */
export class CachedSubscriberStore implements SubscriberStore {
  readonly #inner: SubscriberStore
  readonly #ttlMs: number
  readonly #max: number
  readonly #now: () => number
  readonly #entries = new Map<string, Entry>()
  readonly #inflight = new Map<string, Promise<Subscriber | undefined>>()

  constructor (inner: SubscriberStore, options: CachedSubscriberStoreOptions = {}) {
    const o = {
      ttlMs: options.ttlMs ?? DEFAULT_CACHED_SUBSCRIBER_STORE_OPTIONS.ttlMs,
      maxEntries: options.maxEntries ?? DEFAULT_CACHED_SUBSCRIBER_STORE_OPTIONS.maxEntries,
      now: options.now ?? DEFAULT_CACHED_SUBSCRIBER_STORE_OPTIONS.now
    }
    if (inner === null || typeof inner !== 'object' || typeof inner.lookup !== 'function') throw new InvalidArgumentError('CachedSubscriberStore: inner must be a SubscriberStore')
    if (!Number.isFinite(o.ttlMs) || o.ttlMs < 0) throw new InvalidArgumentError(`CachedSubscriberStore: option "ttlMs" must be a number >= 0, got ${String(o.ttlMs)}`)
    if (!Number.isInteger(o.maxEntries) || o.maxEntries < 1) throw new InvalidArgumentError(`CachedSubscriberStore: option "maxEntries" must be a positive integer, got ${String(o.maxEntries)}`)
    this.#inner = inner
    this.#ttlMs = o.ttlMs
    this.#max = o.maxEntries
    this.#now = o.now
  }

  /** Number of cached answers, expired ones included until they are replaced. */
  get size (): number {
    return this.#entries.size
  }

  async lookup (user: string, domain: string): Promise<Subscriber | undefined> {
    const key = subscriberKey(user, domain)
    const hit = this.#entries.get(key)
    if (hit !== undefined) {
      if (hit.expiresAt > this.#now()) return hit.value
      this.#entries.delete(key)
    }
    const pending = this.#inflight.get(key)
    if (pending !== undefined) return await pending
    const p = this.#inner.lookup(user, domain)
    this.#inflight.set(key, p)
    try {
      const value = await p
      this.#remember(key, value)
      return value
    } finally {
      this.#inflight.delete(key)
    }
  }

  /** Forgets one subscriber, e.g. after `sipd user del` on this node. */
  invalidate (user: string, domain: string): void {
    this.#entries.delete(subscriberKey(user, domain))
  }

  /** Forgets every cached answer. */
  clear (): void {
    this.#entries.clear()
  }

  async close (): Promise<void> {
    this.#entries.clear()
    await this.#inner.close()
  }

  #remember (key: string, value: Subscriber | undefined): void {
    if (this.#ttlMs === 0) return
    if (this.#entries.size >= this.#max) {
      // Map iteration order is insertion order: the first keys are the
      // oldest. A sixteenth goes at once, in one pass: finding the first key
      // walks every entry deleted before it until the map rehashes, so one
      // eviction per miss paid that walk on every miss of a full cache.
      let n = Math.max(1, this.#max >> 4)
      for (const k of this.#entries.keys()) {
        this.#entries.delete(k)
        if (--n === 0) break
      }
    }
    // The key is built from the request's user and domain, slices of its text: a copy keeps only itself.
    this.#entries.set(ownString(key), { value, expiresAt: this.#now() + this.#ttlMs })
  }
}
