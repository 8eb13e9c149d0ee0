import t from 'tap'
import pg from 'pg'
import { ha1 } from '../src/digest.js'
import { InvalidArgumentError, MigrationError, StoreUnavailableError, SubscriberExistsError } from '../src/errors.js'
import { REGISTRAR_MIGRATIONS, runMigrations } from '../src/pg-migrations.js'
import { CachedSubscriberStore } from '../src/subscriber-cache.js'
import { PgSubscriberStore } from '../src/subscriber-pg.js'
import { createTestSchema } from './helpers/pg.js'

const db = await createTestSchema('subscribers')
t.teardown(db.drop)
const store = new PgSubscriberStore({ pool: db.pool })

t.test('migrate is idempotent and records versions', async t => {
  // Two nodes starting together: the advisory lock makes one wait for the other.
  const [a, b] = await Promise.all([store.migrate(), new PgSubscriberStore({ pool: db.pool }).migrate()])
  t.same([...a, ...b], ['1:subscribers'], 'applied exactly once')
  t.same(await store.migrate(), [], 'nothing left to apply')
  const rows = await db.pool.query('SELECT component, version, name FROM sipd_migrations ORDER BY version')
  t.same(rows.rows, [{ component: 'registrar', version: 1, name: 'subscribers' }])
})

t.test('migrations of another component are kept apart; a failing one applies nothing', async t => {
  const extra = [
    { version: 1, name: 'media_nodes', up: 'CREATE TABLE media_nodes (id text PRIMARY KEY)' },
    { version: 2, name: 'broken', up: 'CREATE TABLE nope (' }
  ]
  const e = await t.rejects(runMigrations(db.pool, 'media', extra)) as unknown as MigrationError
  t.ok(e instanceof MigrationError)
  t.equal(e.code, 'SIPD_ERR_MIGRATION')
  t.equal(e.migration, 'media/2 broken')
  const tables = await db.pool.query("SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'media_nodes'", [db.schema])
  t.equal(tables.rows[0].n, 0, 'the whole batch rolled back')
  t.same(await runMigrations(db.pool, 'media', extra.slice(0, 1)), ['1:media_nodes'])
  t.same(await store.migrate(), [], 'registrar versions untouched')
  await t.rejects(runMigrations(db.pool, 'media', [{ version: 2, name: 'a', up: '' }, { version: 2, name: 'b', up: '' }]), InvalidArgumentError)
  t.equal(REGISTRAR_MIGRATIONS[0].version, 1)
})

t.test('add, lookup, duplicate, password, enable, delete', async t => {
  await store.addUser('alice', 'Example.Test', 'wonderland')
  const alice = await store.lookup('alice', 'example.test')
  t.same(alice, {
    user: 'alice',
    domain: 'example.test',
    realm: 'example.test',
    ha1Md5: ha1('alice', 'example.test', 'wonderland', 'MD5'),
    ha1Sha256: ha1('alice', 'example.test', 'wonderland', 'SHA-256'),
    enabled: true
  })
  t.same(await store.lookup('alice', 'EXAMPLE.test'), alice, 'domain is case-insensitive')
  t.equal(await store.lookup('Alice', 'example.test'), undefined, 'user is case-sensitive')
  t.equal(await store.lookup('bob', 'example.test'), undefined)

  const raw = await db.pool.query('SELECT * FROM subscribers')
  t.notMatch(JSON.stringify(raw.rows), /wonderland/, 'no clear password in the table')

  const dup = await t.rejects(store.addUser('alice', 'example.test', 'again')) as unknown as SubscriberExistsError
  t.ok(dup instanceof SubscriberExistsError)
  t.equal(dup.code, 'SIPD_ERR_SUBSCRIBER_EXISTS')

  t.equal(await store.setPassword('alice', 'example.test', 'looking-glass'), true)
  t.equal((await store.lookup('alice', 'example.test'))?.ha1Md5, ha1('alice', 'example.test', 'looking-glass', 'MD5'))
  t.equal(await store.setEnabled('alice', 'example.test', false), true)
  t.equal((await store.lookup('alice', 'example.test'))?.enabled, false)
  t.equal(await store.setEnabled('nobody', 'example.test', false), false)
  t.equal(await store.deleteUser('alice', 'example.test'), true)
  t.equal(await store.deleteUser('alice', 'example.test'), false)
  t.equal(await store.lookup('alice', 'example.test'), undefined)
  await t.rejects(store.addUser('', 'example.test', 'x'), InvalidArgumentError)
  await t.rejects(store.addUser('x', 'example.test', ''), InvalidArgumentError)
})

t.test('listUsers pages by domain then user', async t => {
  for (const [u, d] of [['u3', 'b.test'], ['u1', 'a.test'], ['u2', 'a.test'], ['u1', 'b.test'], ['u0', 'c.test']]) {
    await store.addUser(u, d, 'pw')
  }
  const seen: string[] = []
  let after: { user: string, domain: string } | undefined
  for (let page = 0; page < 10; page++) {
    const rows = await store.listUsers({ limit: 2, after })
    t.ok(rows.length <= 2)
    if (rows.length === 0) break
    for (const r of rows) {
      seen.push(`${r.user}@${r.domain}`)
      t.ok(r.createdAt instanceof Date)
      t.equal(r.enabled, true)
      t.notOk('ha1Md5' in r, 'no hashes in listings')
    }
    after = rows[rows.length - 1]
  }
  t.same(seen, ['u1@a.test', 'u2@a.test', 'u1@b.test', 'u3@b.test', 'u0@c.test'])
  t.same((await store.listUsers({ domain: 'B.test' })).map(r => r.user), ['u1', 'u3'])
  await t.rejects(store.listUsers({ limit: 0 }), InvalidArgumentError)
})

t.test('a cached store sees a disabled user within its TTL', async t => {
  await store.addUser('carol', 'example.test', 'pw')
  let now = 0
  const cached = new CachedSubscriberStore(store, { ttlMs: 5000, now: () => now })
  t.equal((await cached.lookup('carol', 'example.test'))?.enabled, true)
  await store.setEnabled('carol', 'example.test', false)
  now += 4999
  t.equal((await cached.lookup('carol', 'example.test'))?.enabled, true, 'still cached')
  now += 1
  t.equal((await cached.lookup('carol', 'example.test'))?.enabled, false, 'refused once the TTL has passed')
})

t.test('an unreachable database is StoreUnavailableError', async t => {
  // A port nothing listens on: bind one, note it, close it.
  const net = await import('node:net')
  const srv = net.createServer()
  await new Promise<void>(resolve => srv.listen(0, '127.0.0.1', resolve))
  const port = (srv.address() as { port: number }).port
  await new Promise<void>(resolve => srv.close(() => resolve()))
  const down = new PgSubscriberStore({ connectionString: `postgres://postgres@127.0.0.1:${port}/postgres`, connectTimeoutMs: 500 })
  t.teardown(async () => await down.close())
  const e = await t.rejects(down.lookup('alice', 'example.test')) as unknown as StoreUnavailableError
  t.ok(e instanceof StoreUnavailableError)
  t.equal(e.code, 'SIPD_ERR_STORE_UNAVAILABLE')
  t.equal(e.store, 'postgres')
  t.equal(e.operation, 'lookup')
  await t.rejects(down.migrate(), { code: 'SIPD_ERR_STORE_UNAVAILABLE' })
})

t.test('options are validated', async t => {
  t.throws(() => new PgSubscriberStore({}), InvalidArgumentError)
  t.throws(() => new PgSubscriberStore({ pool: db.pool, connectionString: 'postgres://x' }), InvalidArgumentError)
  t.throws(() => new PgSubscriberStore({ connectionString: 'postgres://x', maxConnections: 0 }), InvalidArgumentError)
  t.ok(pg.Pool)
})
