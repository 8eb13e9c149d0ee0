// sipp phones registering with digest authentication at a sipd whose
// locations are in the test Redis: over UDP and TCP the first REGISTER is
// challenged and the second accepted, the binding shows in the admin API and
// unregistering removes it; a short registration disappears once it expires;
// the admin API lists with paging and deletes an AOR.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { delay } from './helpers/process.js'
import { describeSipp, runSipp, type SippResult } from './helpers/sipp.js'
import { freePort } from './helpers/servers.js'
import { spawnSipd } from './helpers/spawn-sipd.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const FULL = path.join(here, 'sipp', 'register-auth.xml')
const ONCE = path.join(here, 'sipp', 'register-auth-once.xml')
const DOMAIN = 'example.test'

interface ApiBinding { contact: string, expiresAt: number, received?: { transport: string, address: string, port: number }, node?: string, flowToken?: string }

const redisUrl = process.env.SIPD_TEST_REDIS_URL
if (redisUrl === undefined || redisUrl === '') throw new Error('SIPD_TEST_REDIS_URL is not set: run through scripts/run-tests.mjs')

t.test('sipp REGISTER with digest against sipd with Redis locations', async t => {
  const port = await freePort('127.0.0.1', 'both')
  const http = await freePort('127.0.0.1', 'tcp')
  const users = ['alice', 'bob', 'carol', 'dave']
  const sipd = await spawnSipd({
    configYaml: [
      `listen: ["udp:127.0.0.1:${port}", "tcp:127.0.0.1:${port}"]`,
      `http: "127.0.0.1:${http}"`,
      'node_id: node-e2e',
      `domains: [${DOMAIN}]`,
      'subscribers:',
      '  users:',
      ...users.map(u => `    - { user: ${u}, domain: ${DOMAIN}, password: pw-${u} }`),
      'redis:',
      `  url: ${JSON.stringify(redisUrl)}`,
      `  prefix: "sipd-test:reg-e2e:${randomBytes(4).toString('hex')}:"`,
      'registrar:',
      '  min_expires: 1',
      'auth:',
      '  secret: "e2e-secret-0123456789abcdef0123456789"'
    ].join('\n') + '\n'
  })
  t.teardown(async () => { await sipd.stop() })

  const bindings = async (user: string): Promise<ApiBinding[]> => {
    const res = await fetch(`${sipd.httpUrl}/api/locations?aor=${encodeURIComponent(`sip:${user}@${DOMAIN}`)}`)
    const body = await res.json() as { bindings: ApiBinding[] }
    return body.bindings
  }
  /** Polls until `want` holds, at most ~`ms`; returns the last bindings seen. */
  const waitFor = async (user: string, want: (b: ApiBinding[]) => boolean, ms: number): Promise<ApiBinding[]> => {
    let b = await bindings(user)
    for (let i = 0; i < ms / 50 && !want(b); i++) {
      await delay(50)
      b = await bindings(user)
    }
    return b
  }
  const sipp = (scenario: string, user: string, localIp: string, transport: 'u1' | 't1', expires: number, extra: string[] = []): Promise<SippResult> => runSipp({
    scenario,
    remote: `127.0.0.1:${port}`,
    localIp,
    transport,
    calls: 1,
    timeoutSec: 20,
    extraArgs: ['-s', user, '-au', user, '-ap', `pw-${user}`, '-key', 'domain', DOMAIN, '-key', 'expires', String(expires), ...extra]
  })

  for (const [transport, user, ip] of [['u1', 'alice', '127.0.0.31'], ['t1', 'bob', '127.0.0.32']] as const) {
    await t.test(`${transport === 'u1' ? 'UDP' : 'TCP'}: 401, 200, binding in the admin API, unregister removes it`, async t => {
      // The scenario pauses 2 s after its 200 so that the binding can be read.
      const run = sipp(FULL, user, ip, transport, 300, ['-d', '2000'])
      const seen = await waitFor(user, b => b.length > 0, 10_000)
      t.equal(seen.length, 1, 'one binding while registered')
      t.match(seen[0]?.contact, `sip:${user}@${ip}:`, 'the phone\'s contact')
      t.equal(seen[0]?.received?.transport, transport === 'u1' ? 'udp' : 'tcp', 'flow transport stored')
      t.equal(seen[0]?.received?.address, ip, 'flow address stored')
      t.equal(seen[0]?.node, 'node-e2e', 'holding node stored')
      t.ok((seen[0]?.expiresAt ?? 0) > Date.now(), 'not expired')
      const r = await run
      t.equal(r.code, 0, describeSipp(r))
      t.equal(r.stats?.successful, 1, 'the scenario (two challenges, two 200s) completed')
      t.same(await bindings(user), [], 'unregister (Expires: 0) removed the binding')
    })
  }

  await t.test('a short registration disappears once it expires', async t => {
    const r = await sipp(ONCE, 'carol', '127.0.0.33', 'u1', 2)
    t.equal(r.code, 0, describeSipp(r))
    // Read at once: a 2 s binding is still there.
    const now = await bindings('carol')
    t.equal(now.length, 1, 'registered')
    const later = await waitFor('carol', b => b.length === 0, 8000)
    t.same(later, [], 'gone after its expiry')
  })

  await t.test('admin API: listing with paging and DELETE', async t => {
    const r = await sipp(ONCE, 'dave', '127.0.0.34', 't1', 300)
    t.equal(r.code, 0, describeSipp(r))
    const r2 = await sipp(ONCE, 'alice', '127.0.0.31', 'u1', 300)
    t.equal(r2.code, 0, describeSipp(r2))
    const page1 = await (await fetch(`${sipd.httpUrl}/api/locations?limit=1`)).json() as { items: Array<{ aor: string }>, cursor?: string }
    t.same(page1.items.map(i => i.aor), [`sip:alice@${DOMAIN}`], 'first page, AOR order')
    t.type(page1.cursor, 'string', 'a cursor to the next page')
    const page2 = await (await fetch(`${sipd.httpUrl}/api/locations?limit=1&cursor=${encodeURIComponent(page1.cursor ?? '')}`)).json() as { items: Array<{ aor: string }> }
    t.same(page2.items.map(i => i.aor), [`sip:dave@${DOMAIN}`], 'second page')
    const del = await fetch(`${sipd.httpUrl}/api/locations/${encodeURIComponent(`sip:dave@${DOMAIN}`)}`, { method: 'DELETE' })
    t.same(await del.json(), { aor: `sip:dave@${DOMAIN}`, removed: 1 })
    t.same(await bindings('dave'), [], 'deleted')
    const bad = await fetch(`${sipd.httpUrl}/api/locations?limit=0`)
    t.equal(bad.status, 400, 'an invalid limit is a 400')
  })

  await t.test('metrics count REGISTERs by outcome and the active registrations', async t => {
    const text = await (await fetch(`${sipd.httpUrl}/metrics`)).text()
    const value = (prefix: string): number => {
      const line = text.split('\n').find(l => l.startsWith(prefix))
      return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1))
    }
    t.ok(value('sipd_register_requests_total{outcome="ok"}') >= 7, 'accepted REGISTERs counted')
    t.ok(value('sipd_register_requests_total{outcome="challenged"}') >= 7, 'challenges counted')
    t.equal(value('sipd_registrations_active '), 1, 'alice is registered')
  })
})
