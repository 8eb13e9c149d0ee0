import t from 'tap'
import { Cluster } from 'ioredis'
import { InvalidArgumentError, StoreUnavailableError } from '../src/errors.js'
import { RedisLocationStore } from '../src/location-redis.js'
import type { LocationUpdate } from '../src/location-store.js'
import { locationContract } from './location-contract.js'
import { connectedClient, deletePrefix, freePort, OwnRedis, testRedisUrl, uniquePrefix } from './helpers/redis.js'

const client = await connectedClient(testRedisUrl())
t.teardown(async () => { await client.quit() })

for (const atomicIndex of [true, false]) {
  t.test(`contract (${atomicIndex ? 'index in the update script' : 'index written separately, as under Cluster'})`, async t => {
    locationContract(t, async () => {
      const prefix = uniquePrefix('contract')
      const store = new RedisLocationStore({ redis: client, prefix, atomicIndex })
      return { store, cleanup: async () => { await store.close(); await deletePrefix(client, prefix) } }
    })
  })
}

const BASE = Math.floor(Date.now() / 1000) * 1000
const AOR = 'sip:alice@example.test'
const reg = (callId: string, cseq: number, contact: string, expires: number): LocationUpdate => ({ callId, cseq, changes: [{ contact, expires }] })

t.test('key layout: hash tag per AOR, key expiry at the last binding, index sets', async t => {
  const prefix = uniquePrefix('layout')
  t.teardown(async () => await deletePrefix(client, prefix))
  const store = new RedisLocationStore({ redis: client, prefix })
  await store.update(AOR, { callId: 'c', cseq: 1, changes: [{ contact: 'sip:a@192.0.2.1', expires: 60 }, { contact: 'sip:a@192.0.2.2', expires: 600 }] }, BASE)
  const key = `${prefix}loc:{${AOR}}`
  t.equal(await client.type(key), 'hash')
  t.same((await client.hkeys(key)).sort(), ['u:sip:a@192.0.2.1', 'u:sip:a@192.0.2.2'])
  t.equal(JSON.parse(await client.hget(key, 'u:sip:a@192.0.2.2') ?? '{}').expiresAt, BASE + 600_000, 'binding stored as JSON')
  t.equal(Number(await client.pexpiretime(key)), BASE + 600_000, 'PEXPIREAT at the last expiry')
  t.equal(Number(await client.zscore(`${prefix}{idx}:exp`, AOR)), BASE + 600_000)
  t.equal(Number(await client.zscore(`${prefix}{idx}:lex`, AOR)), 0)
  t.same(await client.keys(`${prefix}*`).then(k => k.sort()), [`${prefix}loc:{${AOR}}`, `${prefix}{idx}:exp`, `${prefix}{idx}:lex`].sort(), 'no other keys')

  // A lookup after the first binding expired filters it and prunes it.
  t.equal((await store.lookup(AOR, BASE + 60_000)).length, 1)
  await client.ping() // same connection: the prune sent by lookup has run
  t.same(await client.hkeys(key), ['u:sip:a@192.0.2.2'], 'expired field pruned')
  t.equal(Number(await client.pexpiretime(key)), BASE + 600_000)

  await store.update(AOR, reg('c', 2, 'sip:a@192.0.2.2', 0), BASE + 70_000)
  t.equal(await client.exists(key), 0, 'the hash goes with its last binding')
  t.equal(await client.zscore(`${prefix}{idx}:exp`, AOR), null, 'and so does its index entry')
  t.equal(await client.zscore(`${prefix}{idx}:lex`, AOR), null)
})

t.test('the index is cleaned a little on every write, without scanning', async t => {
  const prefix = uniquePrefix('sweep')
  t.teardown(async () => await deletePrefix(client, prefix))
  const store = new RedisLocationStore({ redis: client, prefix, indexSweep: 3 })
  for (let i = 0; i < 5; i++) await store.update(`sip:old${i}@example.test`, reg('c', 1, 'sip:o@192.0.2.1', 10), BASE)
  t.equal(await client.zcard(`${prefix}{idx}:exp`), 5)
  await store.update('sip:new@example.test', reg('c', 1, 'sip:n@192.0.2.1', 60), BASE + 20_000)
  t.equal(await client.zcard(`${prefix}{idx}:exp`), 3, 'three expired AORs dropped, plus the new one')
  t.equal(await client.zcard(`${prefix}{idx}:lex`), 3)
  await store.update('sip:new@example.test', reg('c', 2, 'sip:n@192.0.2.1', 60), BASE + 20_000)
  t.same(await client.zrange(`${prefix}{idx}:lex`, 0, -1), ['sip:new@example.test'])
})

t.test('validation of options', async t => {
  t.throws(() => new RedisLocationStore({ redis: client, prefix: 'a{b}:' }), InvalidArgumentError)
  t.throws(() => new RedisLocationStore({ redis: client, indexSweep: -1 }), InvalidArgumentError)
  t.throws(() => new RedisLocationStore({ redis: '' }), InvalidArgumentError)
  t.throws(() => new RedisLocationStore({ redis: {} as never }), InvalidArgumentError)
  const cluster = new Cluster([{ host: '127.0.0.1', port: 1 }], { lazyConnect: true })
  t.teardown(() => cluster.disconnect())
  t.throws(() => new RedisLocationStore({ redis: cluster, atomicIndex: true }), /Cluster/)
  t.ok(new RedisLocationStore({ redis: cluster }), 'a Cluster client gets the separate index write')
})

t.test('a redis-server of our own: script cache loss, outage, recovery', async t => {
  const own = new OwnRedis(await freePort())
  await own.start()
  t.teardown(async () => await own.stop())
  const store = new RedisLocationStore({ redis: own.url, prefix: 'sipd:' })
  t.teardown(async () => await store.close())
  await store.ready()

  t.equal((await store.update(AOR, reg('c', 1, 'sip:a@192.0.2.1', 600), BASE)).ok, true)
  const admin = await connectedClient(own.url)
  await admin.script('FLUSH')
  await admin.quit()
  const after = await store.update(AOR, reg('c', 2, 'sip:a@192.0.2.1', 600), BASE + 1)
  t.same(after.ok && after.outcomes, ['refreshed'], 'EVALSHA falls back to EVAL after SCRIPT FLUSH')

  await own.stop()
  const e = await t.rejects(store.update(AOR, reg('c', 3, 'sip:a@192.0.2.1', 600), BASE + 2)) as unknown as StoreUnavailableError
  t.ok(e instanceof StoreUnavailableError, 'update while down')
  t.equal(e.code, 'SIPD_ERR_STORE_UNAVAILABLE')
  t.equal(e.store, 'redis')
  t.equal(e.operation, 'update')
  await t.rejects(store.lookup(AOR, BASE + 2), { code: 'SIPD_ERR_STORE_UNAVAILABLE', operation: 'lookup' })
  await t.rejects(store.count(BASE + 2), { code: 'SIPD_ERR_STORE_UNAVAILABLE' })
  await t.rejects(store.list({}, BASE + 2), { code: 'SIPD_ERR_STORE_UNAVAILABLE' })

  await own.start()
  // The client reconnects by itself; bounded polling until it has.
  let result: Awaited<ReturnType<RedisLocationStore['update']>> | undefined
  for (let i = 0; i < 200 && result === undefined; i++) {
    try {
      result = await store.update(AOR, reg('c2', 1, 'sip:a@192.0.2.9', 600), BASE + 3)
    } catch (err) {
      t.equal((err as StoreUnavailableError).code, 'SIPD_ERR_STORE_UNAVAILABLE', 'only typed errors while reconnecting')
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  }
  t.same(result?.ok === true && result.outcomes, ['added'], 'recovered (the fresh server kept no data)')
  t.same((await store.lookup(AOR, BASE + 4)).map(b => b.contact), ['sip:a@192.0.2.9'])
})
