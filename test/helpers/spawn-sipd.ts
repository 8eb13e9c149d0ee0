// Runs the real sipd CLI (packages/proxy/dist/cli.js) as a child process with
// a YAML config, and waits until its HTTP /healthz answers 200.

import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse as parseYaml } from 'yaml'
import { delay, exitOf, OutputTail, spawnBound, stopChild, TestHelperError, track } from './process.js'

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')

/** The built sipd CLI the helper runs (build with `npx tsc -b`). */
export const SIPD_CLI = path.join(REPO_ROOT, 'packages', 'proxy', 'dist', 'cli.js')

/** sipd's HTTP address when neither `SIPD_HTTP` nor the config's `http:` sets one (issue 3). */
const DEFAULT_HTTP = '127.0.0.1:9090'

/** Options of {@link spawnSipd}. */
export interface SpawnSipdOptions {
  /** The config file's text; written to a temp file passed as `--config FILE`. */
  configYaml: string
  /** Added to (and overriding) this process's environment. @default {} */
  env?: Record<string, string>
  /** Extra CLI arguments after `--config FILE`. @default [] */
  args?: string[]
  /** The script run with node; for testing the helper itself. @default {@link SIPD_CLI} */
  cliPath?: string
  /** How long to wait for /healthz to answer 200. @default 15000 */
  readyTimeoutMs?: number
  /** How long `stop()` waits after SIGTERM before SIGKILL. @default 10000 */
  stopTimeoutMs?: number
}

/** A running sipd child. */
export interface SipdHandle {
  readonly pid: number
  /** `http://host:port` of its HTTP endpoint (/healthz, /metrics, admin API). */
  readonly httpUrl: string
  /** The temp config file it was started with (removed by `stop()`). */
  readonly configFile: string
  /** Sends SIGTERM to its PID (SIGKILL after the bound) and resolves with its exit code; null if killed by a signal. */
  stop (): Promise<number | null>
  /** Everything it printed to stdout and stderr so far (bounded to the last 4 MiB). */
  logs (): string
}

/** The value of one series of sipd's /metrics, `name{labels}` as sipd writes it; 0 when sipd has not written it. */
export async function metricValue (sipd: SipdHandle, series: string): Promise<number> {
  const text = await (await fetch(`${sipd.httpUrl}/metrics`)).text()
  for (const line of text.split('\n')) {
    if (line.startsWith(series + ' ')) return Number(line.slice(series.length + 1))
  }
  return 0
}

/** Parses `host:port` or `[v6]:port`. */
function parseHostPort (text: string, where: string): { host: string, port: number } {
  const colon = text.lastIndexOf(':')
  const port = Number(text.slice(colon + 1))
  let host = text.slice(0, colon)
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1)
  if (colon <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new TestHelperError('SIPD_TEST_ERR_ARGUMENT', `spawnSipd: ${where} is ${JSON.stringify(text)}; expected "host:port"`)
  }
  // A wildcard listener answers on loopback.
  if (host === '0.0.0.0' || host === '') host = '127.0.0.1'
  if (host === '::') host = '::1'
  return { host, port }
}

/** sipd's HTTP address: `SIPD_HTTP` overrides the config's `http:`, which overrides the default. */
function httpAddress (configYaml: string, env: NodeJS.ProcessEnv): { host: string, port: number } {
  if (env.SIPD_HTTP) return parseHostPort(env.SIPD_HTTP, 'SIPD_HTTP')
  let config: unknown
  try {
    config = parseYaml(configYaml)
  } catch (err) {
    throw new TestHelperError('SIPD_TEST_ERR_ARGUMENT', `spawnSipd: configYaml is not valid YAML: ${(err as Error).message}`)
  }
  const value = config !== null && typeof config === 'object' ? (config as Record<string, unknown>).http : undefined
  if (value === undefined) return parseHostPort(DEFAULT_HTTP, 'the default HTTP address')
  if (typeof value !== 'string') {
    throw new TestHelperError('SIPD_TEST_ERR_ARGUMENT', `spawnSipd: config key "http" is ${JSON.stringify(value)}; the helper expects a "host:port" string`)
  }
  return parseHostPort(value, 'config key "http"')
}

function healthz (host: string, port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = http.get({ host, port, path: '/healthz', timeout: 1000 }, (res) => {
      res.resume()
      resolve(res.statusCode)
    })
    req.once('timeout', () => req.destroy())
    req.once('error', () => resolve(undefined))
  })
}

/**
 * Spawns `node packages/proxy/dist/cli.js --config FILE` with `configYaml`
 * written to a temp file, and resolves once GET /healthz on its HTTP address
 * answers 200. Rejects with its logs if it exits first or does not become
 * healthy in time (it is killed then). Always `stop()` it in `t.teardown`.
 */
export async function spawnSipd (options: SpawnSipdOptions): Promise<SipdHandle> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env }
  const { host, port } = httpAddress(options.configYaml, env)
  const readyTimeoutMs = options.readyTimeoutMs ?? 15_000
  const stopTimeoutMs = options.stopTimeoutMs ?? 10_000

  const dir = await mkdtemp(path.join(os.tmpdir(), 'sipd-config-'))
  const configFile = path.join(dir, 'sipd.yaml')
  await writeFile(configFile, options.configYaml)

  const cli = options.cliPath ?? SIPD_CLI
  const child = spawnBound(process.execPath, [cli, '--config', configFile, ...(options.args ?? [])], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const output = new OutputTail(4 * 1024 * 1024)
  let spawnError: Error | undefined
  child.once('error', (err) => { spawnError = err })
  child.stdout?.on('data', (d: Buffer) => output.push(d))
  child.stderr?.on('data', (d: Buffer) => output.push(d))
  track(child)
  const exited = exitOf(child)

  let stopped: Promise<number | null> | undefined
  const stop = (): Promise<number | null> => {
    stopped ??= (async () => {
      const status = await stopChild(child, 'SIGTERM', stopTimeoutMs)
      await rm(dir, { recursive: true, force: true })
      return status.code
    })()
    return stopped
  }

  const deadline = Date.now() + readyTimeoutMs
  for (;;) {
    if (spawnError || child.exitCode !== null || child.signalCode !== null) {
      const status = await exited
      await stop()
      throw new TestHelperError('SIPD_TEST_ERR_START',
        `sipd exited before /healthz on ${host}:${port} answered 200 (${spawnError?.message ?? `exit ${status.code ?? status.signal}`}); ` +
        `command: node ${path.relative(REPO_ROOT, cli)} --config ${configFile}; output:\n${output.toString()}`)
    }
    if (await healthz(host, port) === 200) break
    if (Date.now() > deadline) {
      await stop()
      throw new TestHelperError('SIPD_TEST_ERR_START',
        `sipd (pid ${child.pid}) did not answer 200 on http://${host}:${port}/healthz within ${readyTimeoutMs} ms; output:\n${output.toString()}`)
    }
    await delay(50)
  }

  return {
    pid: child.pid as number,
    httpUrl: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    configFile,
    stop,
    logs: () => output.toString()
  }
}
