// The sipd process and its configuration (issue 3, "packages/proxy: the sipd
// process"): a bad config file or environment value makes the CLI exit
// non-zero with a message naming the key, the value and what is allowed;
// with no config at all sipd runs on its built-in defaults, which
// SIPD_LISTEN / SIPD_HTTP override (the tests never bind 5060: the defaults
// themselves are checked through buildConfig from @sipd/proxy's dist);
// config/sipd.yaml in the working directory is read when --config is absent,
// as `npm start` does from the repository root; SIGTERM and SIGINT end it
// with exit code 0 after the transaction in flight has finished.
//
// Loopback addresses 127.0.0.70–127.0.0.75 are this file's own.
import t from 'tap'
import type { Test } from 'tap'
import dgram from 'node:dgram'
import net from 'node:net'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ChildProcess } from 'node:child_process'
import { buildConfig, ConfigError, loadConfig } from '@sipd/proxy'
import { freePort, isPortBound } from './helpers/servers.js'
import { SIPD_CLI } from './helpers/spawn-sipd.js'
import { delay, exitOf, OutputTail, spawnBound, stopChild, track } from './helpers/process.js'
import type { ExitStatus } from './helpers/process.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const slowElement = path.join(here, 'fixtures', 'slow-element.mjs')

/** This process's environment without any SIPD_* variable, plus `extra`. */
function cliEnv (extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SIPD_')) env[k] = v
  return { ...env, ...extra }
}

async function tempDir (t: Test): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sipd-proxy-config-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  return dir
}

interface Cli {
  child: ChildProcess
  output: OutputTail
  exited: Promise<ExitStatus>
}

/** Starts `node dist/cli.js ARGS` in `cwd`; stopped by PID at teardown. */
function startCli (t: Test, args: string[], env: NodeJS.ProcessEnv, cwd: string): Cli {
  const child = spawnBound(process.execPath, [SIPD_CLI, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
  const output = new OutputTail(1 << 20)
  child.stdout?.on('data', (d: Buffer) => output.push(d))
  child.stderr?.on('data', (d: Buffer) => output.push(d))
  track(child)
  const exited = exitOf(child)
  t.teardown(async () => { await stopChild(child, 'SIGKILL', 5000) })
  return { child, output, exited }
}

/** Runs the CLI to its exit, bounded: null code and `timedOut` if it had to be killed. */
async function runToExit (t: Test, args: string[], env: NodeJS.ProcessEnv, cwd: string, boundMs = 20_000): Promise<{ code: number | null, timedOut: boolean, output: string }> {
  const cli = startCli(t, args, env, cwd)
  const first = await Promise.race([cli.exited, delay(boundMs).then(() => undefined)])
  if (first !== undefined) return { code: first.code, timedOut: false, output: cli.output.toString() }
  await stopChild(cli.child, 'SIGKILL', 5000)
  return { code: null, timedOut: true, output: cli.output.toString() }
}

async function healthz (hostPort: string): Promise<number | undefined> {
  try {
    return (await fetch(`http://${hostPort}/healthz`, { signal: AbortSignal.timeout(1000) })).status
  } catch {
    return undefined
  }
}

/** Waits (bounded) until /healthz answers `status`; false if it never did or the child exited. */
async function healthzBecomes (cli: Cli, hostPort: string, status: number, ms = 15_000): Promise<boolean> {
  const end = Date.now() + ms
  while (Date.now() < end && cli.child.exitCode === null && cli.child.signalCode === null) {
    if (await healthz(hostPort) === status) return true
    await delay(50)
  }
  return false
}

function request (method: string, uri: string, via: string, n: number, extra: string[] = []): string {
  return [
    `${method} ${uri} SIP/2.0`,
    `Via: ${via};branch=z9hG4bK-cfg-${n}-${process.pid};rport`,
    `From: <sip:probe@example.com>;tag=f${n}`,
    `To: <${uri}>`,
    `Call-ID: cfg-${n}-${process.pid}@test`,
    `CSeq: ${n} ${method}`,
    'Max-Forwards: 70',
    ...extra,
    'Content-Length: 0',
    '', ''
  ].join('\r\n')
}

/** A UDP peer on its own loopback address that keeps what it receives. */
class UdpPeer {
  readonly received: string[] = []
  private constructor (readonly sock: dgram.Socket, readonly address: string, readonly port: number) {
    sock.on('message', m => { this.received.push(m.toString('latin1')) })
  }

  static async open (t: Test, address: string): Promise<UdpPeer> {
    const sock = dgram.createSocket('udp4')
    await new Promise<void>((resolve, reject) => { sock.once('error', reject); sock.bind(0, address, () => { sock.off('error', reject); resolve() }) })
    t.teardown(() => { sock.close() })
    return new UdpPeer(sock, address, sock.address().port)
  }

  get via (): string { return `SIP/2.0/UDP ${this.address}:${this.port}` }

  send (text: string, host: string, port: number): void { this.sock.send(text, port, host) }

  /** The first received message starting with `prefix`, waiting up to `ms`. */
  async waitFor (prefix: string, ms = 3000): Promise<string | undefined> {
    const end = Date.now() + ms
    for (;;) {
      const hit = this.received.find(m => m.startsWith(prefix))
      if (hit !== undefined || Date.now() > end) return hit
      await delay(10)
    }
  }
}

/** One request over a new TCP connection from `localAddress`; the response's text ('' if none within `ms`). */
async function tcpAsk (host: string, port: number, localAddress: string, build: (via: string) => string, ms = 3000): Promise<string> {
  const sock = net.connect({ host, port, localAddress })
  let text = ''
  sock.on('data', d => { text += d.toString('latin1') })
  sock.on('error', () => {})
  try {
    await new Promise<void>((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject) })
    sock.write(build(`SIP/2.0/TCP ${localAddress}:${sock.localPort}`))
    const end = Date.now() + ms
    while (!text.includes('\r\n\r\n') && Date.now() < end) await delay(10)
    return text
  } finally {
    sock.destroy()
  }
}

/**
 * The CLI's output once it matches `re` (or after a 5 s bound): the start line
 * is logged asynchronously after start() resolved, which may be after /healthz answers.
 */
async function outputMatching (cli: { output: { toString: () => string } }, re: RegExp): Promise<string> {
  for (const end = Date.now() + 5000; !re.test(cli.output.toString()) && Date.now() < end;) await new Promise(resolve => setTimeout(resolve, 20))
  return cli.output.toString()
}

t.test('defaults and overrides as buildConfig / loadConfig of @sipd/proxy compute them', async t => {
  const d = buildConfig(undefined, {})
  t.same(d.listen, ['udp:0.0.0.0:5060', 'tcp:0.0.0.0:5060'], 'no config: UDP and TCP on 0.0.0.0:5060')
  t.equal(d.http, '127.0.0.1:9090', 'no config: HTTP on 127.0.0.1:9090')
  t.same(loadConfig(undefined, {}).listen, d.listen, 'loadConfig without a file gives the same defaults')
  const e = loadConfig(undefined, { SIPD_LISTEN: 'udp:127.0.0.1:5070,tcp:127.0.0.1:5071', SIPD_HTTP: '127.0.0.1:9191' })
  t.same(e.listen, ['udp:127.0.0.1:5070', 'tcp:127.0.0.1:5071'], 'SIPD_LISTEN is a comma list replacing listen')
  t.equal(e.http, '127.0.0.1:9191', 'SIPD_HTTP replaces http')
  const empty = buildConfig({ listen: ['udp:127.0.0.1:5072'] }, { SIPD_LISTEN: '', SIPD_HTTP: '' })
  t.same(empty.listen, ['udp:127.0.0.1:5072'], 'an empty SIPD_LISTEN leaves the file alone')
  t.equal(empty.http, '127.0.0.1:9090')
  t.throws(() => buildConfig({}, { SIPD_LISTEN: 'udp:127.0.0.1:5060,ws:127.0.0.1:80' }), ConfigError, 'a bad SIPD_LISTEN entry throws ConfigError')
})

// [what, file text or undefined (no --config), environment, what stderr must say]
const INVALID: Array<[string, string | undefined, Record<string, string>, RegExp]> = [
  ['listen with an unknown transport', 'listen: ["sctp:127.0.0.1:5060"]\n', {},
    /sipd: config listen\[0\]: value "sctp:127\.0\.0\.1:5060" must start with udp: or tcp:/],
  ['listen with a port out of range', 'listen: ["udp:127.0.0.1:70000"]\n', {},
    // The value shown is the HOST:PORT part (test/proxy-cli-errors.test.ts wants the whole entry).
    /sipd: config listen\[0\]: value "(udp:)?127\.0\.0\.1:70000" is not HOST:PORT/],
  ['an unknown top-level key', 'lisen: ["udp:127.0.0.1:5060"]\n', {},
    /sipd: config lisen: unknown key; allowed here: listen, http, /],
  ['an unknown selection algorithm', 'media:\n  sets:\n    - id: 1\n      algorithm: fastest\n      nodes: [{ uri: "sip:127.0.0.3:5080" }]\n', {},
    /sipd: config media\.sets\[0\]\.algorithm: value "fastest" is not one of round-robin, weighted/],
  ['a route naming an unknown gateway', 'trunks:\n  gateways: [{ id: carrier-a, uri: "sip:127.0.0.5:5090" }]\n  routes: [{ prefix: "1", gateways: [carrier-b] }]\n', {},
    /sipd: config trunks\.routes\[0\]\.gateways\[0\]: value "carrier-b" is not a gateway id \(known: carrier-a\)/],
  ['a file that is not YAML', 'listen: [\n', {}, /sipd: config .*is not valid YAML/],
  ['a bad SIPD_LISTEN', undefined, { SIPD_LISTEN: 'udp:127.0.0.70:5060, tls:127.0.0.70:5061' },
    /sipd: config SIPD_LISTEN\[1\]: value "tls:127\.0\.0\.70:5061" must start with udp: or tcp:/],
  ['a bad SIPD_HTTP', undefined, { SIPD_HTTP: 'localhost' },
    /sipd: config SIPD_HTTP: value "localhost" is not HOST:PORT/]
]

t.test('an invalid config: sipd exits 2 naming the key, the value and what is allowed', async t => {
  const dir = await tempDir(t)
  // One after the other: eight Node start-ups at once on a loaded 2-core box can overrun the bound.
  for (const [i, [what, text, env, want]] of INVALID.entries()) {
    let args: string[] = []
    if (text !== undefined) {
      const file = path.join(dir, `bad-${i}.yaml`)
      await writeFile(file, text)
      args = ['--config', file]
    }
    const r = await runToExit(t, args, cliEnv(env), dir)
    t.equal(r.code, 2, `${what}: exit code 2${r.timedOut ? ' (it was still running)' : ''}`)
    t.match(r.output, want, `${what}: the message`)
    t.notMatch(r.output, /\n\s+at /, `${what}: a message, not a stack trace`)
  }
  const missing = await runToExit(t, ['--config', path.join(dir, 'absent.yaml')], cliEnv(), dir)
  t.equal(missing.code, 2, 'a config file that does not exist: exit code 2')
  t.match(missing.output, /cannot read .*absent\.yaml/, 'the message names the file')
})

t.test('no config file: SIPD_LISTEN and SIPD_HTTP say where sipd listens; SIGTERM exits 0', async t => {
  const dir = await tempDir(t) // no config/sipd.yaml here
  const host = '127.0.0.71'
  const port = await freePort(host, 'both')
  const http = `127.0.0.1:${await freePort('127.0.0.1', 'tcp')}`
  const cli = startCli(t, [], cliEnv({ SIPD_LISTEN: `udp:${host}:${port},tcp:${host}:${port}`, SIPD_HTTP: http }), dir)
  t.ok(await healthzBecomes(cli, http, 200), `/healthz on SIPD_HTTP ${http} answers 200`)
  t.ok(await isPortBound(host, port, 'udp'), `UDP bound on ${host}:${port}`)
  t.ok(await isPortBound(host, port, 'tcp'), `TCP listening on ${host}:${port}`)
  t.match(await outputMatching(cli, /"config":"\(built-in defaults\)"/), /"config":"\(built-in defaults\)"/, 'the start line says it runs on the built-in defaults')

  const peer = await UdpPeer.open(t, '127.0.0.72')
  peer.send(request('OPTIONS', `sip:${host}:${port}`, peer.via, 1), host, port)
  const udp = await peer.waitFor('SIP/2.0 ')
  t.match(udp ?? '', /^SIP\/2\.0 200 /, 'OPTIONS over UDP answered 200')
  t.match(udp ?? '', /\r\nAllow: OPTIONS, REGISTER\r\n/, 'with Allow: what sipd on its defaults, a registrar, serves')
  t.match(udp ?? '', /\r\nAccept: /, 'with Accept')
  t.match(udp ?? '', /\r\nSupported: /, 'with Supported')
  const tcp = await tcpAsk(host, port, '127.0.0.72', via => request('OPTIONS', `sip:${host}:${port}`, via, 2))
  t.match(tcp, /^SIP\/2\.0 200 /, 'OPTIONS over TCP answered 200')

  const status = await stopChild(cli.child, 'SIGTERM', 10_000)
  t.same(status, { code: 0, signal: null }, 'SIGTERM: exit code 0')
})

t.test('config/sipd.yaml in the working directory is read without --config; SIGINT exits 0', async t => {
  const dir = await tempDir(t)
  const host = '127.0.0.73'
  const port = await freePort(host, 'udp')
  const http = `127.0.0.1:${await freePort('127.0.0.1', 'tcp')}`
  await mkdir(path.join(dir, 'config'))
  await writeFile(path.join(dir, 'config', 'sipd.yaml'), `listen: ["udp:${host}:${port}"]\nhttp: "${http}"\n`)
  const cli = startCli(t, [], cliEnv(), dir)
  t.ok(await healthzBecomes(cli, http, 200), `/healthz on the file's http ${http} answers 200`)
  t.ok(await isPortBound(host, port, 'udp'), `UDP bound on the file's ${host}:${port}`)
  t.match(await outputMatching(cli, /"config":"config\/sipd\.yaml"/), /"config":"config\/sipd\.yaml"/, 'the start line names config/sipd.yaml')
  const status = await stopChild(cli.child, 'SIGINT', 10_000)
  t.same(status, { code: 0, signal: null }, 'SIGINT: exit code 0')
})

t.test('SIPD_LISTEN and SIPD_HTTP override the config file', async t => {
  const dir = await tempDir(t)
  const host = '127.0.0.74'
  const filePort = await freePort(host, 'udp')
  const envPort = await freePort(host, 'udp')
  const fileHttp = `127.0.0.74:${await freePort(host, 'tcp')}`
  const envHttp = `127.0.0.1:${await freePort('127.0.0.1', 'tcp')}`
  const file = path.join(dir, 'sipd.yaml')
  await writeFile(file, `listen: ["udp:${host}:${filePort}"]\nhttp: "${fileHttp}"\n`)
  const cli = startCli(t, ['--config', file], cliEnv({ SIPD_LISTEN: `udp:${host}:${envPort}`, SIPD_HTTP: envHttp }), dir)
  t.ok(await healthzBecomes(cli, envHttp, 200), 'HTTP on SIPD_HTTP')
  t.ok(await isPortBound(host, envPort, 'udp'), 'UDP on SIPD_LISTEN')
  t.notOk(await isPortBound(host, filePort, 'udp'), 'not on the file\'s listen')
  const [fh, fp] = [fileHttp.slice(0, fileHttp.lastIndexOf(':')), Number(fileHttp.slice(fileHttp.lastIndexOf(':') + 1))]
  t.notOk(await isPortBound(fh, fp, 'tcp'), 'not on the file\'s http')
  t.same(await stopChild(cli.child, 'SIGTERM', 10_000), { code: 0, signal: null }, 'SIGTERM: exit code 0')
})

t.test('SIGTERM with an INVITE transaction in flight: new work refused, the INVITE answered, exit 0', async t => {
  const dir = await tempDir(t)
  const host = '127.0.0.70'
  const port = await freePort(host, 'udp')
  const http = `127.0.0.1:${await freePort('127.0.0.1', 'tcp')}`
  const file = path.join(dir, 'sipd.yaml')
  await writeFile(file, `listen: ["udp:${host}:${port}"]\nhttp: "${http}"\nrouting: ${JSON.stringify(slowElement)}\n`)
  const cli = startCli(t, ['--config', file], cliEnv(), dir)
  t.ok(await healthzBecomes(cli, http, 200), 'sipd is up')

  const peer = await UdpPeer.open(t, '127.0.0.75')
  const uri = `sip:bob@${host}:${port}`
  peer.send(request('INVITE', uri, peer.via, 1, [`Contact: <sip:alice@${peer.address}:${peer.port}>`, 'X-Delay: 1500']), host, port)
  t.ok(await peer.waitFor('SIP/2.0 100 '), 'the INVITE got 100 Trying: its transaction is in flight')
  process.kill(cli.child.pid!, 'SIGTERM')

  t.ok(await healthzBecomes(cli, http, 503, 3000), '/healthz answers 503 while stopping')
  peer.send(request('OPTIONS', `sip:carol@${host}:${port}`, peer.via, 2), host, port)
  const refused = await peer.waitFor('SIP/2.0 503 ')
  t.match(refused ?? '', /\r\nCSeq: 2 OPTIONS\r\n/, 'a new request while stopping gets 503')
  t.match(refused ?? '', /\r\nRetry-After: \d+/, 'with Retry-After (RFC 3261 §21.5.4)')

  const ok = await peer.waitFor('SIP/2.0 200 ', 5000)
  t.match(ok ?? '', /\r\nCSeq: 1 INVITE\r\n/, 'the INVITE in flight still got its 200 after SIGTERM')
  const toLine = /\r\nTo: ([^\r]*)/.exec(ok ?? '')?.[1] ?? ''
  t.match(toLine, /;tag=/, 'the 200 carries a To tag')
  // The ACK for the 2xx (RFC 3261 §13.2.2.4) ends sipd's 2xx retransmissions.
  peer.send([
    `ACK sip:uas@${host}:${port} SIP/2.0`,
    `Via: ${peer.via};branch=z9hG4bK-cfg-ack-${process.pid};rport`,
    'From: <sip:probe@example.com>;tag=f1',
    `To: ${toLine}`,
    `Call-ID: cfg-1-${process.pid}@test`,
    'CSeq: 1 ACK',
    'Max-Forwards: 70',
    'Content-Length: 0',
    '', ''
  ].join('\r\n'), host, port)

  const end = await Promise.race([cli.exited, delay(15_000).then(() => undefined)])
  t.same(end, { code: 0, signal: null }, 'sipd exits 0 by itself within its shutdown bound')
})
