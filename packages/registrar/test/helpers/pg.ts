import { randomBytes } from 'node:crypto'
import pg from 'pg'

/** A pool whose search_path is a fresh schema, dropped when the test ends. */
export interface TestSchema {
  pool: pg.Pool
  schema: string
  url: string
  /** `url` with the schema as its search_path: for another process (sipd) to use the schema. */
  schemaUrl: string
}

/** The throw-away server the test runner started (scripts/run-tests.mjs). */
export function testDatabaseUrl (): string {
  const url = process.env.SIPD_TEST_DATABASE_URL
  if (url === undefined || url.length === 0) {
    throw new Error('SIPD_TEST_DATABASE_URL is not set: run the tests through `npm test` (scripts/run-tests.mjs starts PostgreSQL) or point it at a throw-away server')
  }
  return url
}

/** Creates a unique schema; call `drop()` in teardown. */
export async function createTestSchema (label: string): Promise<TestSchema & { drop: () => Promise<void> }> {
  const url = testDatabaseUrl()
  const schema = `sipd_t_${label}_${randomBytes(4).toString('hex')}`
  const admin = new pg.Client({ connectionString: url })
  await admin.connect()
  try {
    await admin.query(`CREATE SCHEMA ${schema}`)
  } finally {
    await admin.end()
  }
  const pool = new pg.Pool({ connectionString: url, max: 4, options: `-c search_path=${schema}` })
  pool.on('error', () => {})
  return {
    pool,
    schema,
    url,
    schemaUrl: `${url}${url.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`,
    drop: async () => {
      await pool.end()
      const c = new pg.Client({ connectionString: url })
      await c.connect()
      try {
        await c.query(`DROP SCHEMA ${schema} CASCADE`)
      } finally {
        await c.end()
      }
    }
  }
}
