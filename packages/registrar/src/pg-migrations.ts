import type pg from 'pg'
import { InvalidArgumentError, MigrationError, StoreUnavailableError } from './errors.js'

/** One schema change. Versions are per component and applied in increasing order. */
export interface Migration {
  /** Positive integer, strictly increasing within a component's list. */
  readonly version: number
  /** Short name recorded in `sipd_migrations`. */
  readonly name: string
  /** SQL run inside the migration transaction. */
  readonly up: string
}

/**
 * The registrar's tables. Append only: a released migration is never edited,
 * a change is a new entry with the next version.
 */
export const REGISTRAR_MIGRATIONS: readonly Migration[] = Object.freeze([
  Object.freeze({
    version: 1,
    name: 'subscribers',
    up: `CREATE TABLE subscribers (
  username text NOT NULL CHECK (char_length(username) > 0),
  domain text NOT NULL CHECK (char_length(domain) > 0 AND domain = lower(domain)),
  ha1_md5 text NOT NULL CHECK (char_length(ha1_md5) = 32),
  ha1_sha256 text NOT NULL CHECK (char_length(ha1_sha256) = 64),
  enabled boolean NOT NULL DEFAULT true,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (username, domain)
)`
  })
])

// Arbitrary constant: every sipd node takes the same transaction-scoped
// advisory lock, so nodes started together run migrations one at a time.
const MIGRATION_LOCK_KEY = 0x51bd0001

/**
 * Applies the migrations of `component` that are not yet recorded in
 * `sipd_migrations`, in one transaction, under an advisory lock. Idempotent:
 * a second run applies nothing. Other packages pass their own component name
 * and list (media nodes, trunks), so versions never collide.
 * @returns names of the migrations applied by this call, `version:name`
 */
export async function runMigrations (pool: pg.Pool, component: string, migrations: readonly Migration[]): Promise<string[]> {
  if (typeof component !== 'string' || component.length === 0) throw new InvalidArgumentError('runMigrations: component must be a non-empty string')
  let last = 0
  for (const m of migrations) {
    if (!Number.isInteger(m.version) || m.version <= last) {
      throw new InvalidArgumentError(`runMigrations: ${component} migration versions must be positive integers in increasing order, got ${String(m.version)} after ${last}`)
    }
    last = m.version
  }
  let client: pg.PoolClient
  try {
    client = await pool.connect()
  } catch (err) {
    throw new StoreUnavailableError('postgres', 'migrate', err)
  }
  const applied: string[] = []
  let current = 'sipd_migrations'
  try {
    await client.query('BEGIN')
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY])
    await client.query(`CREATE TABLE IF NOT EXISTS sipd_migrations (
  component text NOT NULL,
  version integer NOT NULL,
  name text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (component, version)
)`)
    const done = await client.query<{ version: number }>('SELECT version FROM sipd_migrations WHERE component = $1', [component])
    const have = new Set(done.rows.map(r => r.version))
    for (const m of migrations) {
      if (have.has(m.version)) continue
      current = `${component}/${m.version} ${m.name}`
      await client.query(m.up)
      await client.query('INSERT INTO sipd_migrations (component, version, name) VALUES ($1, $2, $3)', [component, m.version, m.name])
      applied.push(`${m.version}:${m.name}`)
    }
    await client.query('COMMIT')
    return applied
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw new MigrationError(current, err)
  } finally {
    client.release()
  }
}
