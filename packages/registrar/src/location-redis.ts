import type { Cluster, Redis, RedisOptions } from 'ioredis'
import { ioredis } from './lazy-deps.js'
import { InvalidArgumentError, StoreUnavailableError } from './errors.js'
import { INDEX_SCRIPT, PRUNE_SCRIPT, REMOVE_SCRIPT, UPDATE_SCRIPT, type LuaScript } from './location-redis-scripts.js'
import {
  bindingKey, checkAor, checkListLimit, checkNow, checkUpdate, compareBindings,
  makeBinding, type Binding, type BindingOutcome, type LocationPage, type LocationStore,
  type LocationUpdate, type LocationUpdateResult
} from './location-store.js'

/** Options of {@link RedisLocationStore}. */
export interface RedisLocationStoreOptions {
  /**
   * An ioredis client (standalone, Sentinel or Cluster) or a `redis://` URL
   * (`SIPD_REDIS_URL`). With a URL the store creates and owns the client,
   * configured with {@link DEFAULT_REDIS_CLIENT_OPTIONS}. A client passed in
   * should fail fast as well (`enableOfflineQueue: false` or a small
   * `maxRetriesPerRequest`), or REGISTERs queue while Redis is down.
   */
  redis: Redis | Cluster | string
  /**
   * Prefix of every key; without `{` or `}` (they would break the hash tags).
   * @default 'sipd:'
   */
  prefix?: string
  /**
   * Write the AOR index inside the update script, so that it is exact.
   * Impossible under Redis Cluster, where the index and the AOR are in
   * different slots; there the index is written by a second command.
   * @default true for a standalone client, false for a Cluster
   */
  atomicIndex?: boolean
  /**
   * Fully expired AORs removed from the index per write.
   * @default 16
   */
  indexSweep?: number
  /**
   * Receives the errors an owned client emits (connection lost, reconnect
   * failed); commands still reject with StoreUnavailableError.
   * @default ignore them
   */
  onError?: (err: Error) => void
}

/**
 * ioredis settings for a client the store creates: fail a command at once
 * while disconnected (REGISTER answers 503 instead of waiting), give up on a
 * hung server after 2 s, and keep reconnecting in the background with
 * capped backoff so the store recovers by itself.
 */
export const DEFAULT_REDIS_CLIENT_OPTIONS: Readonly<RedisOptions> = Object.freeze({
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  connectTimeout: 2000,
  commandTimeout: 2000,
  retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2000)
})

/** Defaults of {@link RedisLocationStoreOptions}. */
export const DEFAULT_REDIS_LOCATION_STORE_OPTIONS = Object.freeze({
  prefix: 'sipd:',
  indexSweep: 16
})

/**
 * Bindings in Redis, shared by every sipd node.
 *
 * Layout, with the default prefix:
 * - `sipd:loc:{<aor>}`: a hash, one field per binding (field = binding key,
 *   value = binding JSON). The braces are a hash tag, so under Redis Cluster
 *   all of an AOR's data is in one slot and its Lua update is legal. The key
 *   expires (PEXPIREAT) with its last binding; expired fields are filtered on
 *   every read and pruned by the next write.
 * - `sipd:{idx}:exp`, `sipd:{idx}:lex`: sorted sets of AORs, scored by the
 *   expiry of their last binding (count, cleanup) and at 0 for lexical paging
 *   (list). Listing and cleanup read these; nothing SCANs the keyspace.
 *
 * The two index keys share the `{idx}` tag, so they are a single slot: under
 * Cluster one shard receives one index write per REGISTER (a few µs each,
 * well within one shard's budget at tens of thousands of REGISTERs per
 * second). Under Cluster the index write cannot be in the AOR's script; it
 * follows as a second command. Lookups and updates never read the index, so
 * this only affects list and count: if that second write fails, or two nodes
 * update one AOR at the same instant and their index writes cross, the
 * AOR's index entry is off until its next REGISTER rewrites it.
 */
export class RedisLocationStore implements LocationStore {
  readonly #redis: Redis | Cluster
  readonly #owns: boolean
  readonly #prefix: string
  readonly #idxExp: string
  readonly #idxLex: string
  readonly #atomicIndex: boolean
  readonly #sweep: number

  constructor (options: RedisLocationStoreOptions) {
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError('RedisLocationStore: options must be an object')
    const prefix = options.prefix ?? DEFAULT_REDIS_LOCATION_STORE_OPTIONS.prefix
    if (typeof prefix !== 'string' || prefix.includes('{') || prefix.includes('}')) {
      throw new InvalidArgumentError(`RedisLocationStore: option "prefix" must be a string without "{" or "}", got ${JSON.stringify(prefix)}`)
    }
    const sweep = options.indexSweep ?? DEFAULT_REDIS_LOCATION_STORE_OPTIONS.indexSweep
    if (!Number.isInteger(sweep) || sweep < 0) throw new InvalidArgumentError(`RedisLocationStore: option "indexSweep" must be an integer >= 0, got ${String(sweep)}`)
    const r = options.redis
    if (typeof r === 'string') {
      if (r.length === 0) throw new InvalidArgumentError('RedisLocationStore: option "redis" is an empty URL')
      this.#redis = new (ioredis().Redis)(r, { ...DEFAULT_REDIS_CLIENT_OPTIONS })
      this.#owns = true
      // Without a listener ioredis prints every connection error to stderr.
      this.#redis.on('error', options.onError ?? (() => {}))
    } else if (r !== null && typeof r === 'object' && typeof (r as Redis).evalsha === 'function') {
      this.#redis = r
      this.#owns = false
    } else {
      throw new InvalidArgumentError('RedisLocationStore: option "redis" must be an ioredis client or a redis:// URL')
    }
    const isCluster = (this.#redis as Cluster).isCluster === true
    if (options.atomicIndex === true && isCluster) throw new InvalidArgumentError('RedisLocationStore: option "atomicIndex" cannot be true with a Redis Cluster client (the index and the AOR are in different slots)')
    this.#atomicIndex = options.atomicIndex ?? !isCluster
    this.#prefix = prefix
    this.#idxExp = `${prefix}{idx}:exp`
    this.#idxLex = `${prefix}{idx}:lex`
    this.#sweep = sweep
  }

  /**
   * Resolves once the client is connected (at most `timeoutMs`). With a
   * fail-fast client, commands sent before that reject; call this at start.
   */
  async ready (timeoutMs = 5000): Promise<void> {
    const r = this.#redis
    if (r.status === 'ready') return
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        r.off('ready', onReady)
        reject(new StoreUnavailableError('redis', 'connect', new Error(`not ready after ${timeoutMs} ms (status ${r.status})`)))
      }, timeoutMs)
      const onReady = (): void => {
        clearTimeout(timer)
        resolve()
      }
      r.once('ready', onReady)
    })
  }

  async update (aor: string, update: LocationUpdate, now = Date.now()): Promise<LocationUpdateResult> {
    const limit = checkUpdate(aor, update, now)
    const args: Array<string | number> = [
      Math.floor(now), update.callId, update.cseq, update.removeAll === true ? '1' : '0', limit, aor, this.#sweep
    ]
    for (const c of update.changes) {
      const key = bindingKey(c)
      if (c.expires === 0) {
        args.push(key, '0', '')
      } else {
        const b = makeBinding(aor, key, c, update.callId, update.cseq, now)
        args.push(key, String(b.expiresAt), JSON.stringify(b))
      }
    }
    const reply = await this.#run('update', UPDATE_SCRIPT, this.#keys(aor), args) as string[]
    const status = reply[0]
    const bindings = parseBindings(reply, 3, now)
    if (status === 'ok') {
      if (!this.#atomicIndex) await this.#writeIndex(aor, Number(reply[2]), now)
      if (update.removeAll === true) return { ok: true, bindings, outcomes: [], removedAll: Number(reply[1]) }
      const outcomes = reply[1].length === 0 ? [] : reply[1].split(',') as BindingOutcome[]
      return { ok: true, bindings, outcomes, removedAll: 0 }
    }
    if (status === 'out-of-order') return { ok: false, error: 'out-of-order', index: Number(reply[1]), bindings }
    return { ok: false, error: 'too-many-contacts', limit, bindings }
  }

  async lookup (aor: string, now = Date.now()): Promise<Binding[]> {
    checkAor(aor)
    checkNow(now)
    return await this.#read(aor, now)
  }

  async remove (aor: string, now = Date.now()): Promise<number> {
    checkAor(aor)
    checkNow(now)
    const n = await this.#run('remove', REMOVE_SCRIPT, this.#keys(aor), [Math.floor(now), aor, this.#sweep]) as number
    if (!this.#atomicIndex) await this.#writeIndex(aor, 0, now)
    return n
  }

  async list (opts: { cursor?: string, limit?: number } = {}, now = Date.now()): Promise<LocationPage> {
    checkNow(now)
    const limit = checkListLimit(opts.limit)
    // One extra member tells whether another page exists.
    const min = opts.cursor === undefined ? '-' : '(' + opts.cursor
    const members = await this.#call('list', async () => await this.#redis.zrangebylex(this.#idxLex, min, '+', 'LIMIT', 0, limit + 1))
    const page = members.slice(0, limit)
    const all = await Promise.all(page.map(async aor => ({ aor, bindings: await this.#read(aor, now) })))
    const items = all.filter(i => i.bindings.length > 0)
    return members.length > limit ? { items, cursor: page[page.length - 1] } : { items }
  }

  async count (now = Date.now()): Promise<number> {
    checkNow(now)
    // IDX_EXP scores an AOR with its last binding's expiry: above now means live.
    return await this.#call('count', async () => await this.#redis.zcount(this.#idxExp, `(${Math.floor(now)}`, '+inf'))
  }

  async close (): Promise<void> {
    if (!this.#owns) return
    try {
      await this.#redis.quit()
    } catch {
      this.#redis.disconnect()
    }
  }

  async #read (aor: string, now: number): Promise<Binding[]> {
    const key = this.#aorKey(aor)
    const hash = await this.#call('lookup', async () => await this.#redis.hgetall(key))
    const out: Binding[] = []
    let expired = false
    for (const field in hash) {
      const b = parseBinding(hash[field])
      if (b === undefined || b.expiresAt <= now) expired = true
      else out.push(b)
    }
    if (expired) {
      // Best effort: the next update prunes as well, and reads filter anyway.
      this.#run('prune', PRUNE_SCRIPT, [key], [Math.floor(now)]).catch(() => {})
    }
    return out.sort(compareBindings)
  }

  async #writeIndex (aor: string, maxExp: number, now: number): Promise<void> {
    await this.#run('index', INDEX_SCRIPT, [this.#idxExp, this.#idxLex], [aor, maxExp, Math.floor(now), this.#sweep])
  }

  #aorKey (aor: string): string {
    return `${this.#prefix}loc:{${aor}}`
  }

  #keys (aor: string): string[] {
    const k = this.#aorKey(aor)
    return this.#atomicIndex ? [k, this.#idxExp, this.#idxLex] : [k]
  }

  /** EVALSHA, falling back to EVAL when the server does not have the script (restart, failover). */
  async #run (operation: string, s: LuaScript, keys: string[], args: Array<string | number>): Promise<unknown> {
    return await this.#call(operation, async () => {
      try {
        return await this.#redis.evalsha(s.sha, keys.length, ...keys, ...args)
      } catch (err) {
        if (err instanceof Error && err.message.startsWith('NOSCRIPT')) return await this.#redis.eval(s.source, keys.length, ...keys, ...args)
        throw err
      }
    })
  }

  async #call<T> (operation: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (err) {
      throw new StoreUnavailableError('redis', operation, err)
    }
  }
}

function parseBinding (json: string | undefined): Binding | undefined {
  if (json === undefined) return undefined
  try {
    const b = JSON.parse(json) as Binding
    if (b === null || typeof b !== 'object' || typeof b.expiresAt !== 'number') return undefined
    Object.freeze(b.path)
    if (b.received !== undefined) Object.freeze(b.received)
    return Object.freeze(b)
  } catch {
    return undefined
  }
}

function parseBindings (reply: string[], from: number, now: number): Binding[] {
  const out: Binding[] = []
  for (let i = from; i < reply.length; i++) {
    const b = parseBinding(reply[i])
    if (b !== undefined && b.expiresAt > now) out.push(b)
  }
  return out.sort(compareBindings)
}
