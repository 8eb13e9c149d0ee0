import type pg from 'pg'
import { pg as loadPg } from './lazy-deps.js'
import { ha1 } from './digest.js'
import { InvalidArgumentError, StoreUnavailableError, SubscriberExistsError } from './errors.js'
import { definedOnly } from './options.js'
import { REGISTRAR_MIGRATIONS, runMigrations } from './pg-migrations.js'
import type { Subscriber, SubscriberStore } from './subscriber-store.js'

/** Options of {@link PgSubscriberStore}; give `connectionString` or `pool`. */
export interface PgSubscriberStoreOptions {
  /**
   * `postgres://…` URL (`SIPD_DATABASE_URL`); the store then owns its pool
   * and ends it on `close()`.
   * @default undefined
   */
  connectionString?: string
  /**
   * An existing pool, shared with other stores; not ended by `close()`.
   * @default undefined
   */
  pool?: pg.Pool
  /**
   * Pool size when the store creates the pool.
   * @default 10
   */
  maxConnections?: number
  /**
   * Give up connecting after this many milliseconds, so REGISTER can answer
   * 503 rather than wait (only for a pool the store creates).
   * @default 2000
   */
  connectTimeoutMs?: number
  /**
   * Give up on a query after this many milliseconds (only for a pool the
   * store creates).
   * @default 2000
   */
  queryTimeoutMs?: number
}

/** Defaults of {@link PgSubscriberStoreOptions}. */
export const DEFAULT_PG_SUBSCRIBER_STORE_OPTIONS = Object.freeze({
  maxConnections: 10,
  connectTimeoutMs: 2000,
  queryTimeoutMs: 2000
})

/** A subscriber as listed for operators: no hashes. */
export interface SubscriberListEntry {
  user: string
  domain: string
  enabled: boolean
  createdAt: Date
}

interface Row {
  username: string
  domain: string
  ha1_md5: string
  ha1_sha256: string
  enabled: boolean
}

/**
 * Subscribers in the PostgreSQL table `subscribers` (see
 * {@link REGISTRAR_MIGRATIONS}). The realm of the stored HA1s is the domain,
 * so the authenticator must run without a fixed `realm`.
 */
export class PgSubscriberStore implements SubscriberStore {
  readonly #pool: pg.Pool
  readonly #ownsPool: boolean

  constructor (options: PgSubscriberStoreOptions) {
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError('PgSubscriberStore: options must be an object')
    const o = { ...DEFAULT_PG_SUBSCRIBER_STORE_OPTIONS, ...definedOnly(options) }
    if ((o.pool === undefined) === (o.connectionString === undefined)) {
      throw new InvalidArgumentError('PgSubscriberStore: give exactly one of "connectionString" and "pool"')
    }
    for (const k of ['maxConnections', 'connectTimeoutMs', 'queryTimeoutMs'] as const) {
      if (!Number.isInteger(o[k]) || o[k] < 1) throw new InvalidArgumentError(`PgSubscriberStore: option "${k}" must be a positive integer, got ${String(o[k])}`)
    }
    if (o.pool !== undefined) {
      this.#pool = o.pool
      this.#ownsPool = false
    } else {
      if (typeof o.connectionString !== 'string' || o.connectionString.length === 0) throw new InvalidArgumentError('PgSubscriberStore: option "connectionString" must be a non-empty string')
      this.#pool = new (loadPg().Pool)({
        connectionString: o.connectionString,
        max: o.maxConnections,
        connectionTimeoutMillis: o.connectTimeoutMs,
        query_timeout: o.queryTimeoutMs
      })
      // An idle client losing its connection emits 'error' on the pool; with
      // no listener that would end the process. The next query reconnects.
      this.#pool.on('error', () => {})
      this.#ownsPool = true
    }
  }

  /** Creates or upgrades the tables; safe to run on every start and from several nodes. */
  async migrate (): Promise<string[]> {
    return await runMigrations(this.#pool, 'registrar', REGISTRAR_MIGRATIONS)
  }

  async lookup (user: string, domain: string): Promise<Subscriber | undefined> {
    const res = await this.#query<Row>('lookup', {
      name: 'sipd_subscriber_lookup',
      text: 'SELECT username, domain, ha1_md5, ha1_sha256, enabled FROM subscribers WHERE username = $1 AND domain = $2',
      values: [user, domain.toLowerCase()]
    })
    const r = res.rows[0]
    if (r === undefined) return undefined
    return Object.freeze({ user: r.username, domain: r.domain, realm: r.domain, ha1Md5: r.ha1_md5, ha1Sha256: r.ha1_sha256, enabled: r.enabled })
  }

  /**
   * Adds a subscriber; the password is hashed here (realm = domain) and not stored.
   * @throws SubscriberExistsError when `user@domain` exists
   */
  async addUser (user: string, domain: string, password: string, enabled = true): Promise<void> {
    checkName(user, domain)
    if (typeof password !== 'string' || password.length === 0) throw new InvalidArgumentError('addUser: password must be a non-empty string')
    const d = domain.toLowerCase()
    try {
      await this.#pool.query('INSERT INTO subscribers (username, domain, ha1_md5, ha1_sha256, enabled) VALUES ($1, $2, $3, $4, $5)',
        [user, d, ha1(user, d, password, 'MD5'), ha1(user, d, password, 'SHA-256'), enabled])
    } catch (err) {
      // 23505 unique_violation: the primary key (username, domain) exists.
      if ((err as { code?: string }).code === '23505') throw new SubscriberExistsError(user, d)
      throw new StoreUnavailableError('postgres', 'addUser', err)
    }
  }

  /** Replaces a subscriber's password. @returns false when there is no such subscriber */
  async setPassword (user: string, domain: string, password: string): Promise<boolean> {
    checkName(user, domain)
    if (typeof password !== 'string' || password.length === 0) throw new InvalidArgumentError('setPassword: password must be a non-empty string')
    const d = domain.toLowerCase()
    const res = await this.#query('setPassword', {
      text: 'UPDATE subscribers SET ha1_md5 = $3, ha1_sha256 = $4 WHERE username = $1 AND domain = $2',
      values: [user, d, ha1(user, d, password, 'MD5'), ha1(user, d, password, 'SHA-256')]
    })
    return res.rowCount === 1
  }

  /** @returns false when there was no such subscriber */
  async deleteUser (user: string, domain: string): Promise<boolean> {
    checkName(user, domain)
    const res = await this.#query('deleteUser', { text: 'DELETE FROM subscribers WHERE username = $1 AND domain = $2', values: [user, domain.toLowerCase()] })
    return res.rowCount === 1
  }

  /** @returns false when there is no such subscriber */
  async setEnabled (user: string, domain: string, enabled: boolean): Promise<boolean> {
    checkName(user, domain)
    const res = await this.#query('setEnabled', { text: 'UPDATE subscribers SET enabled = $3 WHERE username = $1 AND domain = $2', values: [user, domain.toLowerCase(), enabled === true] })
    return res.rowCount === 1
  }

  /**
   * Subscribers ordered by domain then user, a page at a time: pass the last
   * entry of a page as `after` to get the next.
   */
  async listUsers (opts: { domain?: string, after?: { user: string, domain: string }, limit?: number } = {}): Promise<SubscriberListEntry[]> {
    const limit = opts.limit ?? 100
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new InvalidArgumentError(`listUsers: limit must be an integer from 1 to 10000, got ${String(limit)}`)
    const where: string[] = []
    const values: unknown[] = []
    if (opts.domain !== undefined) {
      values.push(opts.domain.toLowerCase())
      where.push(`domain = $${values.length}`)
    }
    if (opts.after !== undefined) {
      values.push(opts.after.domain.toLowerCase(), opts.after.user)
      where.push(`(domain, username) > ($${values.length - 1}, $${values.length})`)
    }
    values.push(limit)
    const text = 'SELECT username, domain, enabled, created_at FROM subscribers' +
      (where.length > 0 ? ' WHERE ' + where.join(' AND ') : '') +
      ` ORDER BY domain, username LIMIT $${values.length}`
    const res = await this.#query<{ username: string, domain: string, enabled: boolean, created_at: Date }>('listUsers', { text, values })
    return res.rows.map(r => ({ user: r.username, domain: r.domain, enabled: r.enabled, createdAt: r.created_at }))
  }

  async close (): Promise<void> {
    if (this.#ownsPool) await this.#pool.end()
  }

  async #query<R extends pg.QueryResultRow> (operation: string, q: pg.QueryConfig): Promise<pg.QueryResult<R>> {
    try {
      return await this.#pool.query<R>(q)
    } catch (err) {
      throw new StoreUnavailableError('postgres', operation, err)
    }
  }
}

function checkName (user: string, domain: string): void {
  if (typeof user !== 'string' || user.length === 0) throw new InvalidArgumentError('subscriber user must be a non-empty string')
  if (typeof domain !== 'string' || domain.length === 0) throw new InvalidArgumentError('subscriber domain must be a non-empty string')
}
