// sipsak (Debian package sipsak 0.9.8), the classic operator probe, against
// sipd with a registrar (README "Checking sipd with sipsak"): its exit code
// is the verdict, as an operator reads it.
// - OPTIONS ping (`-s sip:host`): 200, exit 0;
// - traceroute (`-T`): 483 at Max-Forwards 0, then sipd's own final answer;
// - usrloc (`-U`) with digest: REGISTER, 401, REGISTER with credentials, 200,
//   then the binding removed, exit 0; with sipsak's default Expires 15 the
//   registrar answers 423 with Min-Expires (RFC 3261 §10.3 step 7), exit 1;
// - flood (`-F -e N`): every request reaches sipd and is answered.
// Skipped only when sipsak is not installed (`apt-get install -y sipsak`;
// .ci/run installs it).
import t from 'tap'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { freePort } from './helpers/servers.js'
import { metricValue, spawnSipd } from './helpers/spawn-sipd.js'
import { exitOf } from './helpers/process.js'

const SIPD = '127.0.0.215'

function sipsakPath (): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const p = path.join(dir, 'sipsak')
    if (dir !== '' && fs.existsSync(p)) return p
  }
  return undefined
}

const bin = sipsakPath()

/** Runs sipsak with `args` (at most 20 s); its exit code and output. */
async function sipsak (args: string[]): Promise<{ code: number | null, out: string }> {
  const child = spawn(bin!, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout!.on('data', d => { out += String(d) })
  child.stderr!.on('data', d => { out += String(d) })
  const timer = setTimeout(() => { child.kill('SIGKILL') }, 20_000)
  const done = await exitOf(child)
  clearTimeout(timer)
  return { code: done.code, out }
}

t.test('sipsak against sipd', { skip: bin === undefined ? 'sipsak is not installed (apt-get install -y sipsak)' : false }, async t => {
  const port = await freePort(SIPD, 'both')
  const http = await freePort(SIPD, 'tcp')
  const sipd = await spawnSipd({
    configYaml: `
listen: ["udp:${SIPD}:${port}", "tcp:${SIPD}:${port}"]
http: "${SIPD}:${http}"
log_level: warn
domains: ["${SIPD}"]
subscribers:
  users:
    - { user: alice, domain: "${SIPD}", password: alice-secret }
`
  })
  t.teardown(async () => { await sipd.stop() })
  const target = (user?: string): string[] => ['-s', `sip:${user === undefined ? '' : user + '@'}${SIPD}:${port}`]

  await t.test('OPTIONS ping', async t => {
    const r = await sipsak([...target(), '-vv'])
    t.equal(r.code, 0, 'sipsak exits 0', { out: r.out })
    t.match(r.out, /SIP\/2\.0 200 OK/, '200 OK')
  })

  await t.test('traceroute (-T)', async t => {
    const r = await sipsak(['-T', ...target('nobody'), '-vv'])
    t.match(r.out, /SIP\/2\.0 483 Too Many Hops/, 'Max-Forwards 0: 483 (RFC 3261 §16.3 step 3)')
    t.match(r.out, /SIP\/2\.0 404 Not Found/, 'then sipd\'s own answer: no such user')
  })

  await t.test('usrloc (-U) with digest', async t => {
    const ok = await sipsak(['-U', '-i', ...target('alice'), '-u', 'alice', '-a', 'alice-secret', '-x', '60', '-vv'])
    t.equal(ok.code, 0, 'sipsak exits 0', { out: ok.out })
    t.match(ok.out, /All usrloc tests completed successful/, 'registered and removed')
    const brief = await sipsak(['-U', '-i', ...target('alice'), '-u', 'alice', '-a', 'alice-secret', '-vv'])
    t.equal(brief.code, 1, 'sipsak\'s default Expires 15 is below registrar.min_expires')
    t.match(brief.out, /SIP\/2\.0 423 Interval Too Brief[\s\S]*Min-Expires: 60/, '423 with Min-Expires')
    const wrong = await sipsak(['-U', '-i', ...target('alice'), '-u', 'alice', '-a', 'wrong', '-x', '60', '-vv'])
    t.not(wrong.code, 0, 'a wrong password does not register')
    t.match(wrong.out, /SIP\/2\.0 401 Unauthorized/, 'it gets a new 401')
  })

  await t.test('flood (-F), bounded', async t => {
    const before = await metricValue(sipd, 'sipd_requests_received_total{method="OPTIONS"}')
    const r = await sipsak(['-F', '-e', '500', ...target()])
    t.equal(r.code, 0, 'sipsak exits 0', { out: r.out })
    let got = 0
    for (let i = 0; i < 100 && got < 500; i++) {
      got = await metricValue(sipd, 'sipd_requests_received_total{method="OPTIONS"}') - before
      if (got < 500) await new Promise(resolve => setTimeout(resolve, 20))
    }
    t.equal(got, 500, 'every flooded OPTIONS reached sipd')
  })
})
