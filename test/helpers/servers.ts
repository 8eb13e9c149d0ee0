// Access to the throw-away servers that scripts/run-tests.mjs starts, free
// loopback ports, and a separately owned redis-server for tests that stop
// and restart Redis.

import type { ChildProcess } from 'node:child_process'
import dgram from 'node:dgram'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { delay, OutputTail, spawnBound, stopChild, TestHelperError, track } from './process.js'

function requireEnv (name: string): string {
  const value = process.env[name]
  if (value === undefined || value === '') {
    throw new TestHelperError('SIPD_TEST_ERR_ENV',
      `${name} is not set: run the tests through \`npm test\` (scripts/run-tests.mjs starts Redis and PostgreSQL and sets it), ` +
      `e.g. \`npm test -- ${path.relative(process.cwd(), process.argv[1] ?? 'test/file.test.ts')}\``)
  }
  return value
}

/** URL of the shared throw-away Redis (`SIPD_TEST_REDIS_URL`). Use your own key prefix and clean up. */
export function redisUrl (): string {
  return requireEnv('SIPD_TEST_REDIS_URL')
}

/** URL of the shared throw-away PostgreSQL database `sipd_test` (`SIPD_TEST_DATABASE_URL`). Use your own schema. */
export function databaseUrl (): string {
  return requireEnv('SIPD_TEST_DATABASE_URL')
}

/** Which sockets a port must be free for; `both` is for a SIP listener on UDP and TCP at one port. */
export type PortProtocol = 'udp' | 'tcp' | 'both'

function bindTcp (host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once('error', reject)
    srv.listen({ host, port, exclusive: true }, () => {
      const addr = srv.address() as net.AddressInfo
      srv.close(() => resolve(addr.port))
    })
  })
}

function bindUdp (host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4')
    sock.once('error', (err) => { sock.close(); reject(err) })
    sock.bind({ address: host, port, exclusive: true }, () => {
      const p = sock.address().port
      sock.close(() => resolve(p))
    })
  })
}

/**
 * A port that is free right now on `host` for the given protocol(s). Another
 * process may take it before you bind; bind soon after.
 */
export async function freePort (host = '127.0.0.1', protocol: PortProtocol = 'tcp'): Promise<number> {
  if (protocol === 'udp') return bindUdp(host, 0)
  if (protocol === 'tcp') return bindTcp(host, 0)
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await bindTcp(host, 0)
    try {
      await bindUdp(host, port)
      return port
    } catch {}
  }
  throw new TestHelperError('SIPD_TEST_ERR_START', `no port free on both UDP and TCP found on ${host} after 50 tries`)
}

/** `a.b.c.d` as the kernel prints it in /proc/net/{udp,tcp}: the 32-bit address in host byte order, hex. */
function procHexIpv4 (ip: string): string {
  const parts = ip.split('.').map((x) => Number(x).toString(16).padStart(2, '0').toUpperCase())
  return (os.endianness() === 'LE' ? parts.reverse() : parts).join('')
}

/**
 * Whether a socket on this machine is bound to `host:port` (UDP) or listens
 * there (TCP), wildcard binds included. Reads /proc/net (IPv4, Linux) rather
 * than binding the port itself, so it never races the process that is about
 * to bind it.
 */
export async function isPortBound (host: string, port: number, protocol: 'udp' | 'tcp'): Promise<boolean> {
  if (!net.isIPv4(host)) throw new TestHelperError('SIPD_TEST_ERR_ARGUMENT', `isPortBound: only IPv4 addresses are supported, got ${host}`)
  const table = await readFile(`/proc/net/${protocol}`, 'utf8')
  const portHex = port.toString(16).padStart(4, '0').toUpperCase()
  const wanted = new Set([`${procHexIpv4(host)}:${portHex}`, `00000000:${portHex}`])
  for (const line of table.split('\n').slice(1)) {
    // "  sl  local_address rem_address   st ..."; TCP state 0A is LISTEN.
    const f = line.trim().split(/\s+/)
    if (f.length < 4 || !wanted.has(f[1] as string)) continue
    if (protocol === 'udp' || f[3] === '0A') return true
  }
  return false
}

/** Sends PING to a Redis server and resolves whether it answered +PONG within 1 s. */
export function redisPing (host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port })
    let buf = ''
    const done = (ok: boolean): void => { sock.destroy(); resolve(ok) }
    sock.setTimeout(1000, () => done(false))
    sock.once('error', () => done(false))
    sock.once('connect', () => sock.write('PING\r\n'))
    sock.on('data', (d: Buffer) => {
      buf += d.toString('latin1')
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'))
    })
  })
}

/** A redis-server owned by one test. */
export interface RedisHandle {
  /** `redis://host:port` */
  readonly url: string
  readonly host: string
  readonly port: number
  /** PID of the running server, undefined while stopped. */
  pid (): number | undefined
  /** Stops the server by its PID (SIGTERM, SIGKILL after 5 s); nothing is persisted, so data is lost. No-op when stopped. */
  stop (): Promise<void>
  /** Starts it again on the same port and waits until it answers PING. No-op when running. */
  start (): Promise<void>
  /** What the server printed (bounded). */
  logs (): string
}

/** Options of {@link startRedis}. */
export interface StartRedisOptions {
  /** @default '127.0.0.1' */
  host?: string
  /** @default a free port */
  port?: number
  /** How long to wait for PING after each start. @default 10000 */
  readyTimeoutMs?: number
}

/**
 * Launches an extra redis-server (binary from `SIPD_TEST_REDIS_SERVER`, else
 * `redis-server` on PATH) on a free loopback port, without persistence,
 * separately from the shared one, for tests that stop and restart Redis.
 * Always `stop()` it in `t.teardown`.
 */
export async function startRedis (options: StartRedisOptions = {}): Promise<RedisHandle> {
  const host = options.host ?? '127.0.0.1'
  const port = options.port ?? await freePort(host, 'tcp')
  const readyTimeoutMs = options.readyTimeoutMs ?? 10_000
  const binary = process.env.SIPD_TEST_REDIS_SERVER || 'redis-server'
  const output = new OutputTail(64 * 1024)
  let child: ChildProcess | undefined
  let dir: string | undefined

  const stop = async (): Promise<void> => {
    const c = child
    child = undefined
    if (c) await stopChild(c, 'SIGTERM', 5000)
    if (dir !== undefined) {
      await rm(dir, { recursive: true, force: true })
      dir = undefined
    }
  }

  const start = async (): Promise<void> => {
    if (child) return
    dir = await mkdtemp(path.join(os.tmpdir(), 'sipd-redis-'))
    const c = spawnBound(binary, [
      '--port', String(port), '--bind', host, '--save', '', '--appendonly', 'no',
      '--dir', dir, '--daemonize', 'no', '--logfile', ''
    ], { stdio: ['ignore', 'pipe', 'pipe'] })
    child = c
    let spawnError: Error | undefined
    c.once('error', (err) => { spawnError = err })
    c.stdout?.on('data', (d: Buffer) => output.push(d))
    c.stderr?.on('data', (d: Buffer) => output.push(d))
    track(c)
    const deadline = Date.now() + readyTimeoutMs
    while (Date.now() < deadline) {
      if (spawnError || c.exitCode !== null || c.signalCode !== null) {
        await stop()
        throw new TestHelperError('SIPD_TEST_ERR_START',
          `${binary} on ${host}:${port} exited before answering PING (${spawnError?.message ?? `exit ${c.exitCode ?? c.signalCode}`}); output:\n${output.toString()}`)
      }
      if (await redisPing(host, port)) return
      await delay(50)
    }
    await stop()
    throw new TestHelperError('SIPD_TEST_ERR_START', `${binary} on ${host}:${port} did not answer PING within ${readyTimeoutMs} ms; output:\n${output.toString()}`)
  }

  await start()
  return {
    url: `redis://${host}:${port}`,
    host,
    port,
    pid: () => child?.pid,
    stop,
    start,
    logs: () => output.toString()
  }
}
