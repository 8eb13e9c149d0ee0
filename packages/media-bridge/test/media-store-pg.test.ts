// PgMediaSetStore against the real PostgreSQL of the test runner
// (SIPD_TEST_DATABASE_URL), in a schema of its own.
import t from 'tap'
import { Dispatcher } from '../src/dispatcher.js'
import { InvalidArgumentError, MediaBridgeError } from '../src/errors.js'
import { MEDIA_MIGRATIONS, MediaStoreError, PgMediaSetStore } from '../src/media-store-pg.js'
import { createTestSchema } from './helpers/pg.js'

const db = await createTestSchema('media')
t.teardown(db.drop)
const store = new PgMediaSetStore({ pool: db.pool })

t.test('before the migration: a MediaStoreError that says what to run', async t => {
  const err = await t.rejects(store.load()) as unknown as MediaStoreError
  t.ok(err instanceof MediaStoreError)
  t.ok(err instanceof MediaBridgeError)
  t.equal(err.code, 'MEDIA_ERR_STORE')
  t.match(err.message, /sipd migrate/)
})

t.test('migrations apply and constrain the rows', async t => {
  t.equal(MEDIA_MIGRATIONS[0]?.version, 1)
  for (const m of MEDIA_MIGRATIONS) await db.pool.query(m.up)
  t.same(await store.load(), [], 'no sets yet')
  await t.rejects(db.pool.query("INSERT INTO media_nodes (set_id, uri) VALUES ('1', 'http://x')"), 'a non-SIP URI is refused')
  await t.rejects(db.pool.query("INSERT INTO media_nodes (set_id, uri, weight) VALUES ('1', 'sip:127.0.0.1', 0)"), 'weight 0 is refused')
  await t.rejects(db.pool.query("INSERT INTO media_nodes (set_id, uri, admin_state) VALUES ('1', 'sip:127.0.0.1', 'sleepy')"), 'an unknown admin state is refused')
  await t.rejects(db.pool.query("INSERT INTO media_sets (set_id, algorithm) VALUES ('1', 'fastest')"), 'an unknown algorithm is refused')
})

t.test('load: sets with algorithm, nodes with weight, priority, attributes and state', async t => {
  await db.pool.query("INSERT INTO media_sets (set_id, algorithm) VALUES ('1', 'weighted'), ('edge', 'priority')")
  await db.pool.query(`INSERT INTO media_nodes (set_id, uri, weight, priority, attributes, admin_state) VALUES
    ('1', 'sip:127.0.0.3:5080', 2, 0, '{"zone": "a", "cap": 100}', 'enabled'),
    ('1', 'sip:127.0.0.4:5080', 1, 0, '{}', 'draining'),
    ('edge', 'sip:127.0.0.5:5080;transport=tcp', 1, 1, '{}', 'enabled'),
    ('edge', 'sip:127.0.0.3:5080', 1, 0, '{}', 'enabled'),
    ('7', 'sip:127.0.0.6:5080', 1, 0, '{}', 'disabled')`)
  const sets = await store.load()
  t.same(sets, [
    {
      id: 1,
      algorithm: 'weighted',
      nodes: [
        { uri: 'sip:127.0.0.3:5080', weight: 2, priority: 0, attributes: { zone: 'a', cap: '100' }, adminState: 'enabled' },
        { uri: 'sip:127.0.0.4:5080', weight: 1, priority: 0, attributes: {}, adminState: 'draining' }
      ]
    },
    { id: 7, algorithm: 'round-robin', nodes: [{ uri: 'sip:127.0.0.6:5080', weight: 1, priority: 0, attributes: {}, adminState: 'disabled' }] },
    {
      id: 'edge',
      algorithm: 'priority',
      nodes: [
        { uri: 'sip:127.0.0.3:5080', weight: 1, priority: 0, attributes: {}, adminState: 'enabled' },
        { uri: 'sip:127.0.0.5:5080;transport=tcp', weight: 1, priority: 1, attributes: {}, adminState: 'enabled' }
      ]
    }
  ], 'numeric set ids as numbers, a set without a media_sets row is round-robin')

  // What the dispatcher makes of it: the loaded shape is accepted as is.
  const d = new Dispatcher(sets)
  t.equal(d.select(1)?.uri, 'sip:127.0.0.3:5080', 'the draining node gets no new calls')
  t.equal(d.select('1')?.uri, 'sip:127.0.0.3:5080', '"1" and 1 name the same set')
  t.equal(d.select(7), undefined, 'a disabled node is never selected')
  t.equal(d.select('edge')?.uri, 'sip:127.0.0.3:5080', 'priority 0 first')
})

t.test('a reload from the table keeps active calls of unchanged nodes', async t => {
  const d = new Dispatcher(await store.load())
  d.callStarted('sip:127.0.0.3:5080', 'call-1')
  d.callStarted('sip:127.0.0.6:5080', 'call-2')
  await db.pool.query("DELETE FROM media_nodes WHERE uri = 'sip:127.0.0.6:5080'")
  await db.pool.query("INSERT INTO media_nodes (set_id, uri) VALUES ('1', 'sip:127.0.0.8:5080')")
  d.reload(await store.load())
  t.equal(d.activeCalls('sip:127.0.0.3:5080'), 1, 'kept')
  t.same(d.snapshot().retired, [{ uri: 'sip:127.0.0.6:5080', activeCalls: 1 }], 'the removed node keeps its call until it ends')
  t.ok(d.nodeUris().includes('sip:127.0.0.8:5080'), 'the new node is configured')
  t.ok(d.callEnded('call-2'))
  t.same(d.snapshot().retired, [], 'gone once its call ended')
})

t.test('options are checked; an owned pool is ended by close()', async t => {
  t.throws(() => new PgMediaSetStore({}), InvalidArgumentError)
  t.throws(() => new PgMediaSetStore({ pool: db.pool, connectionString: db.url }), InvalidArgumentError)
  t.throws(() => new PgMediaSetStore({ connectionString: db.url, queryTimeoutMs: 0 }), InvalidArgumentError)
  const own = new PgMediaSetStore({ connectionString: `${db.url}${db.url.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${db.schema}`)}` })
  t.equal((await own.load()).length, 2, 'reads the same tables through its own pool')
  await own.close()
  await t.rejects(own.load(), MediaStoreError, 'closed')
})
