// createRedisClient against real servers of our own: a Sentinel monitoring a
// master, and a one-node Redis Cluster holding every slot. The location
// store works through both (update, lookup, list, remove).
import t from 'tap'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { RedisLocationStore } from '../src/location-redis.js'
import { createRedisClient } from '../src/redis-client.js'
import { freePort, OwnRedis } from './helpers/redis.js'

const BINARY = process.env.SIPD_TEST_REDIS_SERVER ?? 'redis-server'

/** Starts `redis-server ARGS` in `dir`; stopped (by PID) in teardown. */
async function startServer (t: Tap.Test, args: string[], dir: string, port: number): Promise<ChildProcess> {
  const child = spawn(BINARY, args, { cwd: dir, stdio: 'ignore' })
  t.teardown(async () => {
    if (child.exitCode !== null || child.pid === undefined) return
    const exited = new Promise(resolve => child.once('exit', resolve))
    process.kill(child.pid, 'SIGTERM')
    await exited
  })
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`${BINARY} ${args.join(' ')} exited ${String(child.exitCode)}`)
    if (cli(port, ['PING']).trim() === 'PONG') return child
    await new Promise(resolve => setTimeout(resolve, 25))
  }
  throw new Error(`${BINARY} on port ${port} did not answer PING within 5 s`)
}

function cli (port: number, args: string[]): string {
  const r = spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { encoding: 'utf8', timeout: 5000 })
  return r.stdout ?? ''
}

async function exercise (t: Tap.Test, store: RedisLocationStore): Promise<void> {
  // Redis expires the keys on its own clock: the store's time must be real.
  const T0 = Date.now()
  await store.ready()
  const aor = 'sip:alice@example.test'
  const r = await store.update(aor, { callId: 'c1', cseq: 1, changes: [{ contact: 'sip:alice@127.0.0.9:5060', expires: 600, node: 'n1' }] }, T0)
  t.equal(r.ok, true, 'update')
  t.same((await store.lookup(aor, T0)).map(b => b.contact), ['sip:alice@127.0.0.9:5060'], 'lookup')
  t.same((await store.list({}, T0)).items.map(i => i.aor), [aor], 'list')
  t.equal(await store.remove(aor, T0), 1, 'remove')
  t.same(await store.lookup(aor, T0), [], 'gone')
}

t.test('Sentinel: the store reaches the master the sentinel names', async t => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sipd-sentinel-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  const master = new OwnRedis(await freePort())
  await master.start()
  t.teardown(async () => { await master.stop() })
  const sport = await freePort()
  const conf = path.join(dir, 'sentinel.conf')
  await writeFile(conf, `port ${sport}\nbind 127.0.0.1\nsentinel monitor sipdmaster 127.0.0.1 ${master.port} 1\n`)
  await startServer(t, [conf, '--sentinel'], dir, sport)
  const client = createRedisClient({ sentinels: [`127.0.0.1:${sport}`], sentinelName: 'sipdmaster' })
  t.teardown(() => { client.disconnect() })
  const store = new RedisLocationStore({ redis: client, prefix: 'sipd-test:sentinel:' })
  await exercise(t, store)
  await store.update('sip:bob@example.test', { callId: 'c2', cseq: 1, changes: [{ contact: 'sip:bob@127.0.0.9:5060', expires: 600 }] }, Date.now())
  t.equal(cli(master.port, ['EXISTS', 'sipd-test:sentinel:loc:{sip:bob@example.test}']).trim(), '1', 'the binding is on the master the sentinel named')
})

t.test('Cluster: the store works on a one-node cluster holding every slot', async t => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sipd-cluster-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  const port = await freePort()
  await startServer(t, ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-announce-ip', '127.0.0.1', '--cluster-config-file', path.join(dir, 'nodes.conf'), '--save', '', '--appendonly', 'no'], dir, port)
  cli(port, ['CLUSTER', 'ADDSLOTSRANGE', '0', '16383'])
  for (let i = 0; i < 200 && !cli(port, ['CLUSTER', 'INFO']).includes('cluster_state:ok'); i++) await new Promise(resolve => setTimeout(resolve, 25))
  t.match(cli(port, ['CLUSTER', 'INFO']), 'cluster_state:ok', 'cluster up')
  const client = createRedisClient({ cluster: [`127.0.0.1:${port}`], onError: e => { t.comment(String(e)) } })
  t.teardown(() => { client.disconnect() })
  t.equal((client as { isCluster?: boolean }).isCluster, true, 'a Cluster client')
  const store = new RedisLocationStore({ redis: client, prefix: 'sipd-test:cluster:' })
  await exercise(t, store)
})

t.test('invalid settings throw', async t => {
  t.throws(() => createRedisClient({}), { code: 'SIPD_ERR_INVALID_ARGUMENT' })
  t.throws(() => createRedisClient({ sentinels: ['127.0.0.1:1'] }), { code: 'SIPD_ERR_INVALID_ARGUMENT' })
  t.throws(() => createRedisClient({ cluster: ['nohost'] }), { code: 'SIPD_ERR_INVALID_ARGUMENT' })
})
