// Redis stopped under a running sipd: REGISTERs get 503 (never 500), sipd
// stays healthy, and once Redis is back REGISTERs succeed again without a
// restart. The Redis server here is our own, so it can be stopped (by PID).
import t from 'tap'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort as freeRedisPort, OwnRedis } from '../packages/registrar/test/helpers/redis.js'
import { delay } from './helpers/process.js'
import { describeSipp, runSipp, type SippResult } from './helpers/sipp.js'
import { freePort } from './helpers/servers.js'
import { spawnSipd } from './helpers/spawn-sipd.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const ONCE = path.join(here, 'sipp', 'register-auth-once.xml')
const DOMAIN = 'example.test'

t.test('Redis down: 503 with Retry-After; Redis back: 200', async t => {
  const redis = new OwnRedis(await freeRedisPort())
  await redis.start()
  t.teardown(async () => { await redis.stop() })
  const port = await freePort('127.0.0.1', 'udp')
  const http = await freePort('127.0.0.1', 'tcp')
  const sipd = await spawnSipd({
    configYaml: [
      `listen: ["udp:127.0.0.1:${port}"]`,
      `http: "127.0.0.1:${http}"`,
      `domains: [${DOMAIN}]`,
      `subscribers: { users: [{ user: alice, domain: ${DOMAIN}, password: pw-alice }] }`,
      `redis: { url: "${redis.url}" }`,
      'auth: { secret: "down-secret-0123456789abcdef0123456789" }'
    ].join('\n') + '\n'
  })
  t.teardown(async () => { await sipd.stop() })
  const register = async (): Promise<SippResult> => await runSipp({
    scenario: ONCE,
    remote: `127.0.0.1:${port}`,
    localIp: '127.0.0.51',
    calls: 1,
    timeoutSec: 10,
    extraArgs: ['-s', 'alice', '-au', 'alice', '-ap', 'pw-alice', '-key', 'domain', DOMAIN, '-key', 'expires', '300']
  })
  const locations = async (): Promise<number> => (await fetch(`${sipd.httpUrl}/api/locations?aor=${encodeURIComponent(`sip:alice@${DOMAIN}`)}`)).status

  const up = await register()
  t.equal(up.code, 0, describeSipp(up))

  await redis.stop()
  const down = await register()
  t.not(down.code, 0, 'the REGISTER failed')
  t.match(down.errors ?? '', /SIP\/2\.0 503 Service Unavailable/, 'answered 503')
  t.match(down.errors ?? '', /Retry-After: 5/, 'with Retry-After')
  t.notMatch(down.errors ?? '', /SIP\/2\.0 500/, 'never 500')
  t.equal((await fetch(`${sipd.httpUrl}/healthz`)).status, 200, 'sipd still healthy')
  t.equal(await locations(), 503, 'the admin API says the store is unavailable')

  await redis.start()
  // ioredis reconnects with capped backoff (2 s at most): bounded wait.
  let status = await locations()
  for (let i = 0; i < 100 && status !== 200; i++) {
    await delay(100)
    status = await locations()
  }
  t.equal(status, 200, 'the store reconnected by itself')
  const back = await register()
  t.equal(back.code, 0, describeSipp(back))
  const text = await (await fetch(`${sipd.httpUrl}/metrics`)).text()
  t.match(text, /sipd_register_requests_total\{outcome="unavailable"\} [1-9]/, 'counted as unavailable')
  t.notMatch(text, /sipd_register_requests_total\{outcome="error"\} [1-9]/, 'no internal errors')
})
