// Proves the test environment and helpers work against real servers: the
// throw-away Redis and PostgreSQL that scripts/run-tests.mjs starts, an
// extra redis-server that a test owns, and sipp calling sipp on loopback.

import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { Redis } from 'ioredis'
import pg from 'pg'
import t from 'tap'
import { describeSipp, parseSippStats, runSipp, startSippUas } from './helpers/sipp.js'
import { databaseUrl, freePort, isPortBound, redisPing, redisUrl, startRedis } from './helpers/servers.js'
import { spawnSipd } from './helpers/spawn-sipd.js'

t.test('shared Redis from SIPD_TEST_REDIS_URL answers PING', async (t) => {
  const redis = new Redis(redisUrl(), { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null })
  t.teardown(() => { redis.disconnect() })
  await redis.connect()
  t.equal(await redis.ping(), 'PONG')
  const key = `sipd-infra-test:${process.pid}`
  t.teardown(async () => { await redis.del(key) })
  await redis.set(key, 'v', 'EX', 30)
  t.equal(await redis.get(key), 'v', 'a value written can be read back')
})

t.test('shared PostgreSQL from SIPD_TEST_DATABASE_URL answers select 1', async (t) => {
  const client = new pg.Client({ connectionString: databaseUrl(), connectionTimeoutMillis: 5000 })
  await client.connect()
  t.teardown(() => client.end())
  const r = await client.query<{ one: number, db: string }>('select 1 as one, current_database() as db')
  t.equal(r.rows[0]?.one, 1)
  t.equal(r.rows[0]?.db, 'sipd_test')
})

t.test('startRedis owns a separate server that stops and starts again', async (t) => {
  const r = await startRedis()
  t.teardown(() => r.stop())
  t.not(r.url, redisUrl(), 'not the shared server')
  t.ok(await redisPing(r.host, r.port), 'answers PING after start')
  t.type(r.pid(), 'number')
  await r.stop()
  t.equal(r.pid(), undefined, 'no PID while stopped')
  t.notOk(await redisPing(r.host, r.port), 'no answer while stopped')
  await r.start()
  t.ok(await redisPing(r.host, r.port), 'answers PING again on the same port after start()')
})

t.test('freePort returns a port no one holds', async (t) => {
  const udp = await freePort('127.0.0.2', 'udp')
  t.notOk(await isPortBound('127.0.0.2', udp, 'udp'), `udp ${udp} is free`)
  const both = await freePort('127.0.0.2', 'both')
  t.notOk(await isPortBound('127.0.0.2', both, 'udp'), `udp ${both} is free`)
  t.notOk(await isPortBound('127.0.0.2', both, 'tcp'), `tcp ${both} is free`)
})

t.test('parseSippStats reads the cumulative counters of the last row', async (t) => {
  const csv = 'StartTime;TotalCallCreated;SuccessfulCall(P);SuccessfulCall(C);FailedCall(C);\n' +
    'x;2;2;2;0;\n' +
    'y;5;3;4;1;\n'
  const s = parseSippStats(csv)
  t.equal(s?.created, 5)
  t.equal(s?.successful, 4)
  t.equal(s?.failed, 1)
  t.equal(parseSippStats('StartTime;\n'), undefined, 'no data row: no stats')
})

t.test('sipp uac on 127.0.0.2 completes 5 calls over UDP with sipp uas on 127.0.0.3', async (t) => {
  const uas = await startSippUas({ localIp: '127.0.0.3', maxLifetimeSec: 60 })
  t.teardown(() => uas.stop())
  const uac = await runSipp({
    builtin: 'uac',
    remote: uas.address,
    localIp: '127.0.0.2',
    transport: 'u1',
    calls: 5,
    rate: 20,
    timeoutSec: 30
  })
  // The sipp report is a diagnostic, printed only when an assertion fails.
  const uacDiag = { sipp: describeSipp(uac) }
  t.equal(uac.code, 0, 'uac exit code 0', uacDiag)
  t.equal(uac.stats?.successful, 5, 'uac counts 5 successful calls', uacDiag)
  t.equal(uac.stats?.failed, 0, 'uac counts no failed call', uacDiag)
  t.equal(uac.errors, undefined, 'uac traced no error', uacDiag)
  const uasResult = await uas.stop()
  const uasDiag = { sipp: describeSipp(uasResult) }
  t.equal(uasResult.stats?.incoming, 5, 'uas received 5 calls', uasDiag)
  t.equal(uasResult.stats?.failed, 0, 'uas counts no failed call', uasDiag)
})

t.test('runSipp reports a failed run: no one answers', async (t) => {
  // Nothing is bound on this port of 127.0.0.4, so the INVITE goes unanswered.
  const port = await freePort('127.0.0.4', 'udp')
  const r = await runSipp({ builtin: 'uac', remote: `127.0.0.4:${port}`, localIp: '127.0.0.2', calls: 1, timeoutSec: 2 })
  const diag = { sipp: describeSipp(r) }
  t.not(r.code, 0, 'non-zero exit code', diag)
  t.match(r.errors ?? '', /timed out/, 'the error trace says why', diag)
  t.equal(r.stats?.successful ?? 0, 0, 'no successful call', diag)
})

// A stand-in for packages/proxy/dist/cli.js with the same outside contract
// (--config FILE, http: "host:port", GET /healthz, exit 0 on SIGTERM), so that
// the helper is proven before and independently of the real server.
const STAND_IN_CLI = `
import http from 'node:http'
import { readFileSync } from 'node:fs'
const file = process.argv[process.argv.indexOf('--config') + 1]
const line = readFileSync(file, 'utf8').split('\\n').find((l) => l.startsWith('http:'))
const [host, port] = JSON.parse(line.slice(5).trim()).split(':')
const srv = http.createServer((req, res) => { res.statusCode = req.url === '/healthz' ? 200 : 404; res.end() })
srv.listen(Number(port), host, () => console.log(JSON.stringify({ msg: 'listening', config: file })))
process.on('SIGTERM', () => srv.close(() => { console.log(JSON.stringify({ msg: 'stopped' })); process.exit(0) }))
`

t.test('spawnSipd writes the config, waits for /healthz and stops by PID', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sipd-infra-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const cli = path.join(dir, 'cli.mjs')
  await writeFile(cli, STAND_IN_CLI)
  const port = await freePort('127.0.0.1', 'tcp')
  const sipd = await spawnSipd({ configYaml: `http: "127.0.0.1:${port}"\n`, cliPath: cli })
  t.teardown(() => sipd.stop())
  t.equal(sipd.httpUrl, `http://127.0.0.1:${port}`)
  const res = await fetch(`${sipd.httpUrl}/healthz`)
  t.equal(res.status, 200, 'healthy once spawnSipd resolved')
  t.match(sipd.logs(), /"msg":"listening"/, 'stdout is captured')
  t.match(sipd.logs(), sipd.configFile, 'started with the temp config file')
  t.equal(await sipd.stop(), 0, 'exit code after SIGTERM')
  t.match(sipd.logs(), /"msg":"stopped"/, 'it saw SIGTERM and shut down')
  await t.rejects(fetch(`${sipd.httpUrl}/healthz`), 'no longer listening')
})

t.test('spawnSipd rejects with the output when the process exits early', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sipd-infra-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const cli = path.join(dir, 'cli.mjs')
  await writeFile(cli, "console.error('config error: listen[0] is not an address'); process.exit(2)\n")
  await t.rejects(spawnSipd({ configYaml: 'http: "127.0.0.1:1"\n', cliPath: cli }), {
    code: 'SIPD_TEST_ERR_START',
    message: /exit 2[\s\S]*config error: listen\[0\] is not an address/
  })
})
