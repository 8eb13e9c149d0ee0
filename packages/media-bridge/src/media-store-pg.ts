import { createRequire } from 'node:module'
import type pg from 'pg'
import type { AdminState, MediaNodeConfig, MediaSetConfig, SelectionAlgorithm } from './dispatcher.js'
import { SELECTION_ALGORITHMS } from './dispatcher.js'
import { InvalidArgumentError, MediaBridgeError, quote } from './errors.js'

// pg on first use: a node whose media sets come from the config file never
// needs it, and importing it cost about 9 MiB of resident memory.
const requireDep = createRequire(import.meta.url)
let pgModule: typeof pg | undefined
function loadPg (): typeof pg {
  pgModule ??= requireDep('pg') as typeof pg
  return pgModule
}

/**
 * One schema change of the media tables, in the shape the registrar's
 * `runMigrations(pool, 'media', MEDIA_MIGRATIONS)` applies (`sipd migrate`).
 */
export interface MediaMigration {
  /** Positive integer, strictly increasing. */
  readonly version: number
  /** Short name recorded in `sipd_migrations`. */
  readonly name: string
  /** SQL run inside the migration transaction. */
  readonly up: string
}

/**
 * The media tables. Append only: a released migration is never edited.
 *
 * - `media_sets`: optional, one row per set that needs another algorithm than
 *   round-robin.
 * - `media_nodes`: one row per node membership (a URI may be in several sets).
 */
export const MEDIA_MIGRATIONS: readonly MediaMigration[] = Object.freeze([
  Object.freeze({
    version: 1,
    name: 'media_nodes',
    up: `CREATE TABLE media_sets (
  set_id text PRIMARY KEY CHECK (char_length(set_id) > 0),
  algorithm text NOT NULL DEFAULT 'round-robin'
    CHECK (algorithm IN ('round-robin', 'weighted', 'hash-callid', 'hash-from', 'least-calls', 'priority'))
);
CREATE TABLE media_nodes (
  set_id text NOT NULL CHECK (char_length(set_id) > 0),
  uri text NOT NULL CHECK (uri ILIKE 'sip:%' OR uri ILIKE 'sips:%'),
  weight integer NOT NULL DEFAULT 1 CHECK (weight > 0),
  priority integer NOT NULL DEFAULT 0 CHECK (priority >= 0),
  attributes jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(attributes) = 'object'),
  admin_state text NOT NULL DEFAULT 'enabled' CHECK (admin_state IN ('enabled', 'disabled', 'draining')),
  PRIMARY KEY (set_id, uri)
)`
  })
])

/** Options of {@link PgMediaSetStore}; give `connectionString` or `pool`. */
export interface PgMediaSetStoreOptions {
  /** `postgres://…` URL; the store then owns its pool and ends it on `close()`. @default undefined */
  connectionString?: string | undefined
  /** An existing pool; not ended by `close()`. @default undefined */
  pool?: pg.Pool | undefined
  /** Give up connecting after this long (only for a pool the store creates), ms. @default 5000 */
  connectTimeoutMs?: number
  /** Give up on a query after this long (only for a pool the store creates), ms. @default 5000 */
  queryTimeoutMs?: number
}

/** Defaults of {@link PgMediaSetStoreOptions}. */
export const DEFAULT_PG_MEDIA_SET_STORE_OPTIONS = Object.freeze({ connectTimeoutMs: 5000, queryTimeoutMs: 5000 })

/** Loading media sets from PostgreSQL failed (unreachable, missing table); nothing was returned. */
export class MediaStoreError extends MediaBridgeError {
  constructor (message: string, cause: unknown) {
    super('MEDIA_ERR_STORE', message, { cause })
  }
}

interface NodeRow {
  set_id: string
  uri: string
  weight: number
  priority: number
  attributes: unknown
  admin_state: AdminState
}

/**
 * Media sets in the PostgreSQL tables `media_sets` and `media_nodes` (see
 * {@link MEDIA_MIGRATIONS}). {@link PgMediaSetStore.load} returns them in the
 * shape {@link Dispatcher.reload} takes; the dispatcher validates them.
 */
export class PgMediaSetStore {
  readonly #pool: pg.Pool
  readonly #ownsPool: boolean

  constructor (options: PgMediaSetStoreOptions) {
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError('options', 'must be an object')
    const hasPool = options.pool !== undefined
    const hasUrl = options.connectionString !== undefined
    if (hasPool === hasUrl) throw new InvalidArgumentError('connectionString', 'give exactly one of "connectionString" and "pool"')
    if (options.pool !== undefined) {
      this.#pool = options.pool
      this.#ownsPool = false
      return
    }
    const o = { ...DEFAULT_PG_MEDIA_SET_STORE_OPTIONS, ...options }
    if (typeof o.connectionString !== 'string' || o.connectionString.length === 0) {
      throw new InvalidArgumentError('connectionString', 'must be a non-empty postgres:// URL')
    }
    for (const k of ['connectTimeoutMs', 'queryTimeoutMs'] as const) {
      if (!(Number.isInteger(o[k]) && o[k] > 0)) throw new InvalidArgumentError(k, `must be a positive integer, got ${quote(o[k])}`)
    }
    this.#pool = new (loadPg().Pool)({ connectionString: o.connectionString, max: 2, connectionTimeoutMillis: o.connectTimeoutMs, query_timeout: o.queryTimeoutMs })
    // An idle client losing its connection emits 'error' on the pool; the next query reconnects.
    this.#pool.on('error', () => {})
    this.#ownsPool = true
  }

  /** The pool, for running {@link MEDIA_MIGRATIONS} with the registrar's migration runner. */
  get pool (): pg.Pool {
    return this.#pool
  }

  /**
   * Every set with its nodes, sets and nodes in a stable order (set id, then
   * priority, then URI). A set without a `media_sets` row is round-robin.
   * @throws MediaStoreError when the database cannot be read
   */
  async load (): Promise<MediaSetConfig[]> {
    let sets: pg.QueryResult<{ set_id: string, algorithm: string }>
    let nodes: pg.QueryResult<NodeRow>
    try {
      sets = await this.#pool.query('SELECT set_id, algorithm FROM media_sets')
      nodes = await this.#pool.query<NodeRow>('SELECT set_id, uri, weight, priority, attributes, admin_state FROM media_nodes ORDER BY set_id, priority, uri')
    } catch (err) {
      throw new MediaStoreError(`cannot read media sets from PostgreSQL: ${(err as Error).message} (has "sipd migrate" run?)`, err)
    }
    const algorithms = new Map<string, SelectionAlgorithm>()
    for (const r of sets.rows) {
      if (SELECTION_ALGORITHMS.includes(r.algorithm as SelectionAlgorithm)) algorithms.set(r.set_id, r.algorithm as SelectionAlgorithm)
    }
    const bySet = new Map<string, MediaNodeConfig[]>()
    for (const r of nodes.rows) {
      let list = bySet.get(r.set_id)
      if (list === undefined) bySet.set(r.set_id, list = [])
      list.push({ uri: r.uri, weight: r.weight, priority: r.priority, attributes: stringValues(r.attributes), adminState: r.admin_state })
    }
    const out: MediaSetConfig[] = []
    for (const [id, list] of bySet) {
      out.push({ id: numericId(id), algorithm: algorithms.get(id) ?? 'round-robin', nodes: list })
    }
    return out
  }

  /** Ends the pool when the store created it. */
  async close (): Promise<void> {
    if (this.#ownsPool) await this.#pool.end()
  }
}

/** `"1"` as 1, so a database set and a YAML `did_sets` value name the same set either way. */
function numericId (id: string): number | string {
  const n = Number(id)
  return Number.isSafeInteger(n) && String(n) === id ? n : id
}

/** jsonb attributes as the string map the dispatcher carries (nested values as JSON text). */
function stringValues (value: unknown): Record<string, string> {
  const out: Record<string, string> = {}
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return out
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) out[k] = typeof v === 'string' ? v : JSON.stringify(v)
  return out
}
