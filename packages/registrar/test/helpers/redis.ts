import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import net from 'node:net'
import { Redis } from 'ioredis'
import { DEFAULT_REDIS_CLIENT_OPTIONS } from '../../src/location-redis.js'

/** The throw-away server the test runner started (scripts/run-tests.mjs). */
export function testRedisUrl (): string {
  const url = process.env.SIPD_TEST_REDIS_URL
  if (url === undefined || url.length === 0) {
    throw new Error('SIPD_TEST_REDIS_URL is not set: run the tests through `npm test` (scripts/run-tests.mjs starts redis-server) or point it at a throw-away server')
  }
  return url
}

/** A key prefix no other test uses. */
export function uniquePrefix (label: string): string {
  return `sipd-test:${label}:${randomBytes(4).toString('hex')}:`
}

/** A fail-fast client as the store would create, connected. */
export async function connectedClient (url: string): Promise<Redis> {
  const r = new Redis(url, { ...DEFAULT_REDIS_CLIENT_OPTIONS })
  r.on('error', () => {})
  if (r.status !== 'ready') await new Promise<void>((resolve, reject) => { r.once('ready', resolve); r.once('end', () => reject(new Error(`cannot connect to ${url}`))) })
  return r
}

/** Deletes every key under a prefix. Test teardown only: SCAN is fine here, never in the store. */
export async function deletePrefix (r: Redis, prefix: string): Promise<void> {
  let cursor = '0'
  let rounds = 0
  do {
    const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
    if (keys.length > 0) await r.del(...keys)
    cursor = next
  } while (cursor !== '0' && ++rounds < 10_000)
}

/** A free loopback TCP port (bound, noted, released). */
export async function freePort (): Promise<number> {
  const srv = net.createServer()
  await new Promise<void>(resolve => srv.listen(0, '127.0.0.1', resolve))
  const port = (srv.address() as net.AddressInfo).port
  await new Promise<void>(resolve => srv.close(() => resolve()))
  return port
}

/** A redis-server of our own, to stop and start; only this PID is ever signalled. */
export class OwnRedis {
  #child: ChildProcess | undefined
  constructor (readonly port: number) {}

  get url (): string {
    return `redis://127.0.0.1:${this.port}`
  }

  async start (): Promise<void> {
    // SIPD_TEST_REDIS_SERVER names the binary when it is not on PATH (scripts/run-tests.mjs).
    const binary = process.env.SIPD_TEST_REDIS_SERVER ?? 'redis-server'
    const child = spawn(binary, ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
    this.#child = child
    let spawnError: Error | undefined
    child.once('error', (err) => { spawnError = err })
    // Bounded wait until it accepts connections.
    for (let i = 0; i < 200; i++) {
      if (spawnError !== undefined || child.exitCode !== null) throw new Error(`${binary} on port ${this.port} did not start: ${spawnError?.message ?? `exit ${String(child.exitCode)}`}`)
      if (await canConnect(this.port)) return
      await new Promise(resolve => setTimeout(resolve, 25))
    }
    throw new Error(`${binary} on port ${this.port} did not accept connections within 5 s`)
  }

  async stop (): Promise<void> {
    const child = this.#child
    if (child === undefined || child.exitCode !== null || child.pid === undefined) return
    const exited = new Promise<void>(resolve => child.once('exit', () => resolve()))
    process.kill(child.pid, 'SIGTERM')
    await exited
    this.#child = undefined
  }
}

async function canConnect (port: number): Promise<boolean> {
  return await new Promise(resolve => {
    const s = net.connect(port, '127.0.0.1')
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => resolve(false))
  })
}
