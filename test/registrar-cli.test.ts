// The registrar's operations with PostgreSQL: `sipd migrate`, `sipd user
// add/del`, a sipd with SIPD_DATABASE_URL accepting a sipp phone registered
// with the added user, `sipd locations` reading the running sipd's admin API,
// and a deleted user refused.
import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createTestSchema } from '../packages/registrar/test/helpers/pg.js'
import { describeSipp, runSipp } from './helpers/sipp.js'
import { freePort } from './helpers/servers.js'
import { SIPD_CLI, spawnSipd } from './helpers/spawn-sipd.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const ONCE = path.join(here, 'sipp', 'register-auth-once.xml')
const DOMAIN = 'example.test'

interface CliResult { code: number, stdout: string, stderr: string }

/** Runs `node cli.js ARGS` to completion, bounded to 20 s. */
function cli (args: string[], env: Record<string, string>): Promise<CliResult> {
  return new Promise(resolve => {
    execFile(process.execPath, [SIPD_CLI, ...args], { env: { ...process.env, ...env }, timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1
      resolve({ code, stdout, stderr })
    })
  })
}

t.test('sipd migrate, user add/del and locations with PostgreSQL', async t => {
  const schema = await createTestSchema('cli')
  t.teardown(async () => { await schema.drop() })
  const dbUrl = schema.schemaUrl
  const port = await freePort('127.0.0.1', 'both')
  const http = await freePort('127.0.0.1', 'tcp')
  const yaml = [
    `listen: ["udp:127.0.0.1:${port}", "tcp:127.0.0.1:${port}"]`,
    `http: "127.0.0.1:${http}"`,
    `domains: [${DOMAIN}]`,
    // No cache, so that a deleted user is refused at once.
    'subscribers: { cache_ttl_ms: 0 }',
    'auth: { secret: "cli-secret-0123456789abcdef0123456789" }'
  ].join('\n') + '\n'
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sipd-cli-test-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  const config = path.join(dir, 'sipd.yaml')
  await writeFile(config, yaml)
  const env = { SIPD_DATABASE_URL: dbUrl }

  let r = await cli(['migrate', '--config', config], env)
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /applied/, 'migrations applied')
  r = await cli(['migrate', '--config', config], env)
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /up to date/, 'a second run has nothing to do')

  r = await cli(['user', 'add', `erin@${DOMAIN}`, '--password', 'pw-erin', '--config', config], env)
  t.equal(r.code, 0, r.stderr)
  r = await cli(['user', 'add', `erin@${DOMAIN}`, '--password', 'other', '--config', config], env)
  t.equal(r.code, 1, 'adding an existing user fails')
  t.match(r.stderr, /already exists/)
  r = await cli(['user', 'add', 'no-domain', '--password', 'x', '--config', config], env)
  t.equal(r.code, 2, 'USER@DOMAIN is required')
  const stored = await schema.pool.query('SELECT username, domain, ha1_md5 FROM subscribers')
  t.same(stored.rows.map(row => `${row.username}@${row.domain}`), [`erin@${DOMAIN}`])
  t.equal(String(stored.rows[0]?.ha1_md5).length, 32, 'an MD5 HA1, not the password')

  const sipd = await spawnSipd({ configYaml: yaml, env })
  t.teardown(async () => { await sipd.stop() })
  const register = async (timeoutSec = 10): Promise<Awaited<ReturnType<typeof runSipp>>> => await runSipp({
    scenario: ONCE,
    remote: `127.0.0.1:${port}`,
    localIp: '127.0.0.41',
    calls: 1,
    timeoutSec,
    extraArgs: ['-s', 'erin', '-au', 'erin', '-ap', 'pw-erin', '-key', 'domain', DOMAIN, '-key', 'expires', '300']
  })
  const ok = await register()
  t.equal(ok.code, 0, describeSipp(ok))

  r = await cli(['locations', `sip:erin@${DOMAIN}`, '--config', config], {})
  t.equal(r.code, 0, r.stderr)
  const one = JSON.parse(r.stdout) as { aor: string, bindings: Array<{ contact: string }> }
  t.equal(one.aor, `sip:erin@${DOMAIN}`)
  t.match(one.bindings[0]?.contact, 'sip:erin@127.0.0.41:', 'the phone\'s binding through sipd locations AOR')
  r = await cli(['locations', '--config', config], {})
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, `"aor": "sip:erin@${DOMAIN}"`, 'listed by sipd locations')

  r = await cli(['user', 'del', `erin@${DOMAIN}`, '--config', config], env)
  t.equal(r.code, 0, r.stderr)
  r = await cli(['user', 'del', `erin@${DOMAIN}`, '--config', config], env)
  t.equal(r.code, 1, 'deleting a missing user reports it')
  // sipp waits for its global timeout after the unexpected 403: keep it short.
  const refused = await register(4)
  t.not(refused.code, 0, 'a deleted user cannot register')
  t.match(refused.errors ?? refused.stdout, /403/, 'refused with 403 after the challenge')
})
