// sipd must not start half-way: when an address it was told to use cannot be
// bound, the process exits non-zero with a message naming that address, so
// that a supervisor sees the failure (issue 3: "sipd exits non-zero").
// A bad listen entry is quoted whole in the config error, and limits that
// contradict each other are a config error, not a crash in the transport.
//
// Loopback addresses 127.0.0.76 and 127.0.0.77 are this file's own.
import t from 'tap'
import type { Test } from 'tap'
import net from 'node:net'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { freePort, isPortBound } from './helpers/servers.js'
import { SIPD_CLI } from './helpers/spawn-sipd.js'
import { delay, exitOf, OutputTail, spawnBound, stopChild, track } from './helpers/process.js'

/** This process's environment without any SIPD_* variable, plus `extra`. */
function cliEnv (extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SIPD_')) env[k] = v
  return { ...env, ...extra }
}

/**
 * Runs the CLI to its exit, bounded: `code` is null when it was still running
 * at the bound (it is killed then); `udpHeld` says whether `udp` (host, port)
 * was still bound by it at that moment.
 */
async function runToExit (t: Test, args: string[], env: NodeJS.ProcessEnv, udp?: [string, number], boundMs = 8000): Promise<{ code: number | null, output: string, udpHeld: boolean }> {
  const child = spawnBound(process.execPath, [SIPD_CLI, ...args], { cwd: os.tmpdir(), env, stdio: ['ignore', 'pipe', 'pipe'] })
  const output = new OutputTail(1 << 20)
  child.stdout?.on('data', (d: Buffer) => output.push(d))
  child.stderr?.on('data', (d: Buffer) => output.push(d))
  track(child)
  t.teardown(async () => { await stopChild(child, 'SIGKILL', 5000) })
  const first = await Promise.race([exitOf(child), delay(boundMs).then(() => undefined)])
  let udpHeld = false
  if (first === undefined) {
    if (udp !== undefined) udpHeld = await isPortBound(udp[0], udp[1], 'udp')
    await stopChild(child, 'SIGKILL', 5000)
  }
  return { code: first?.code ?? null, output: output.toString(), udpHeld }
}

async function holdTcp (t: Test, host: string): Promise<number> {
  const srv = net.createServer()
  await new Promise<void>((resolve, reject) => { srv.once('error', reject); srv.listen(0, host, () => resolve()) })
  t.teardown(() => new Promise<void>(resolve => srv.close(() => resolve())))
  return (srv.address() as net.AddressInfo).port
}

t.test('the HTTP address is taken: sipd exits non-zero instead of running without HTTP', async t => {
  const host = '127.0.0.76'
  const taken = await holdTcp(t, host)
  const sip = await freePort(host, 'udp')
  const r = await runToExit(t, [], cliEnv({ SIPD_LISTEN: `udp:${host}:${sip}`, SIPD_HTTP: `${host}:${taken}`, SIPD_LOG_LEVEL: 'info' }), [host, sip])
  t.match(r.output, new RegExp(`EADDRINUSE.*${host.replaceAll('.', '\\.')}:${taken}`), 'the message names the address in use')
  t.not(r.code, null, 'the process ended by itself (it must not stay up with its SIP sockets and no HTTP, /healthz or SIGTERM handler)')
  t.not(r.code, 0, 'with a non-zero exit code')
  t.notOk(r.udpHeld, 'no SIP socket left bound')
})

t.test('the SIP address is taken: sipd exits non-zero naming it', async t => {
  const host = '127.0.0.77'
  const taken = await holdTcp(t, host)
  const http = await freePort('127.0.0.1', 'tcp')
  const r = await runToExit(t, [], cliEnv({ SIPD_LISTEN: `tcp:${host}:${taken}`, SIPD_HTTP: `127.0.0.1:${http}` }))
  t.not(r.code, null, 'the process ended by itself')
  t.not(r.code, 0, 'with a non-zero exit code')
  t.match(r.output, new RegExp(`EADDRINUSE.*${host.replaceAll('.', '\\.')}:${taken}`), 'the message names the address in use')
})

t.test('a listen entry with a bad port is quoted whole in the error', async t => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sipd-cli-errors-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  const file = path.join(dir, 'sipd.yaml')
  await writeFile(file, 'listen: ["udp:127.0.0.1:70000"]\n')
  const r = await runToExit(t, ['--config', file], cliEnv({}))
  t.equal(r.code, 2, 'exit code 2')
  t.match(r.output, /sipd: config listen\[0\]: value "udp:127\.0\.0\.1:70000" is not /, 'the value as written, transport prefix included')
})

t.test('limits: tcp_max_per_address above tcp_max_connections', async t => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sipd-cli-errors-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  const file = path.join(dir, 'sipd.yaml')
  const http = await freePort('127.0.0.1', 'tcp')
  const sip = await freePort('127.0.0.76', 'tcp')
  const base = `listen: ["tcp:127.0.0.76:${sip}"]\nhttp: "127.0.0.1:${http}"\n`

  await writeFile(file, base + 'limits: { tcp_max_connections: 10, tcp_max_per_address: 20 }\n')
  const both = await runToExit(t, ['--config', file], cliEnv({}))
  t.equal(both.code, 2, 'both given and contradicting: exit code 2 (a config error, not 1)')
  t.match(both.output, /sipd: config limits\.tcp_max_per_address: value 20 .*tcp_max_connections \(10\)/, 'the message names both keys and the values')
  t.notMatch(both.output, /\n\s+at /, 'no stack trace')

  // Only the total given, below the per-address default (100): the default follows it.
  await writeFile(file, base + 'limits: { tcp_max_connections: 10 }\n')
  const total = await runToExit(t, ['--config', file], cliEnv({}), undefined, 4000)
  t.equal(total.code, null, 'only tcp_max_connections: 10: sipd starts and keeps running')
  t.notMatch(total.output, /InvalidTransportOptionError/, 'no transport option error')
})

t.test('the sipd command npm links is a file in the repository that runs the built CLI', async t => {
  // npm links a workspace's bins at `npm ci`, before the build: a bin that
  // points into dist/ does not exist then and is never linked, so `npx sipd`
  // went to the npm registry instead.
  const proxyDir = path.resolve(path.dirname(SIPD_CLI), '..')
  const pkg = JSON.parse(await readFile(path.join(proxyDir, 'package.json'), 'utf8')) as { bin: Record<string, string> }
  const bin = pkg.bin.sipd
  t.ok(bin !== undefined && !path.normalize(bin).startsWith('dist'), `bin ${bin} is not a build output`)
  const file = path.join(proxyDir, bin ?? '')
  t.ok((await stat(file)).mode & 0o100, 'executable')
  const child = spawnBound(process.execPath, [file, '--help'], { cwd: os.tmpdir(), env: cliEnv({}), stdio: ['ignore', 'pipe', 'pipe'] })
  const output = new OutputTail(1 << 16)
  child.stdout?.on('data', (d: Buffer) => output.push(d))
  child.stderr?.on('data', (d: Buffer) => output.push(d))
  track(child)
  const status = await Promise.race([exitOf(child), delay(8000).then(() => undefined)])
  await stopChild(child, 'SIGKILL', 2000)
  t.equal(status?.code, 0, 'exits 0')
  t.match(output.toString(), /usage: sipd \[--config FILE\]/, 'prints the CLI usage')
})
