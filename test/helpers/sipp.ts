// Runs real sipp (Debian package sip-tester) for end-to-end tests, always
// bounded in time, with call counts from its statistics file and its error
// trace kept for failure messages. See /work/shared/SIPP-NOTES.md.

import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { delay, exitOf, OutputTail, spawnBound, stopChild, TestHelperError, track } from './process.js'
import { freePort, isPortBound } from './servers.js'

/** sipp's `-t` transport modes used here: UDP one socket, TCP one socket, TCP one socket per call. */
export type SippTransport = 'u1' | 't1' | 'tn'

/** Options of {@link runSipp}. Give exactly one of `scenario` and `builtin`. */
export interface SippOptions {
  /** Path to a scenario XML file (`-sf`). */
  scenario?: string
  /** A built-in scenario (`-sn`). */
  builtin?: 'uac' | 'uas'
  /** `host:port` to send to (uac side). */
  remote?: string
  /** Local address (`-i`); give each party its own 127.0.0.x. */
  localIp: string
  /** Local SIP port (`-p`). @default a free port on localIp */
  localPort?: number
  /** @default 'u1' */
  transport?: SippTransport
  /** Stop after this many calls (`-m`). */
  calls: number
  /** Calls per second (`-r`). @default sipp's own (10) */
  rate?: number
  /** Global timeout (`-timeout Ns -timeout_error`): sipp fails and exits when reached. */
  timeoutSec: number
  /** More sipp arguments, appended last. @default [] */
  extraArgs?: string[]
  /** CSV injection file (`-inf`). */
  injectionFile?: string
}

/** Counters from sipp's `-trace_stat` file (cumulative values). */
export interface SippStats {
  /** SuccessfulCall(C) */
  successful: number
  /** FailedCall(C) */
  failed: number
  /** TotalCallCreated */
  created: number
  /** IncomingCall(C) */
  incoming: number
  /** OutgoingCall(C) */
  outgoing: number
  /** Retransmissions(C) */
  retransmissions: number
  /** Every column of the last row, by header name. */
  raw: Record<string, string>
}

/** How a sipp run ended. */
export interface SippResult {
  /** sipp's exit code (0 only when every call succeeded; 255 on -timeout_error); null if killed by a signal. */
  code: number | null
  signal: NodeJS.Signals | null
  /** The full command line, for failure messages. */
  command: string
  stdout: string
  stderr: string
  /** Undefined when sipp wrote no statistics (e.g. it failed to start). */
  stats?: SippStats
  /** The `-trace_err` text (unexpected messages, timeouts); undefined when there were none. */
  errors?: string
}

let runCounter = 0

/** A Call-ID prefix unique to this test process and run, so that runs never share Call-IDs. */
function uniqueCallIdFormat (): string {
  runCounter++
  return `sipd-${process.pid}-${runCounter}-${randomBytes(3).toString('hex')}-%u-%p@%s`
}

/** Parses sipp's `-stf` CSV (`;`-separated, header row first) and returns the last row. */
export function parseSippStats (csv: string): SippStats | undefined {
  const lines = csv.split('\n').filter((l) => l.trim() !== '')
  if (lines.length < 2) return undefined
  const header = (lines[0] as string).split(';')
  const row = (lines[lines.length - 1] as string).split(';')
  const raw: Record<string, string> = {}
  header.forEach((name, i) => { if (name !== '') raw[name] = row[i] ?? '' })
  const num = (key: string): number => {
    const n = Number(raw[key])
    return Number.isFinite(n) ? n : 0
  }
  return {
    successful: num('SuccessfulCall(C)'),
    failed: num('FailedCall(C)'),
    created: num('TotalCallCreated'),
    incoming: num('IncomingCall(C)'),
    outgoing: num('OutgoingCall(C)'),
    retransmissions: num('Retransmissions(C)'),
    raw
  }
}

/** A multi-line description of a sipp run for an assertion message: command, exit, stats, errors, output tail. */
export function describeSipp (r: SippResult): string {
  const stats = r.stats
    ? `successful=${r.stats.successful} failed=${r.stats.failed} created=${r.stats.created} incoming=${r.stats.incoming} outgoing=${r.stats.outgoing}`
    : 'no statistics written'
  return [
    `sipp ${r.command}`,
    `exit ${r.code ?? r.signal}; ${stats}`,
    r.errors ? `errors:\n${r.errors.slice(-4000)}` : 'errors: none',
    `stdout (tail):\n${r.stdout.slice(-3000)}`,
    r.stderr ? `stderr:\n${r.stderr.slice(-2000)}` : ''
  ].join('\n')
}

interface Prepared {
  args: string[]
  dir: string
  statFile: string
  errorFile: string
  localPort: number
}

async function prepare (o: Omit<SippOptions, 'calls'> & { calls?: number }): Promise<Prepared> {
  if ((o.scenario === undefined) === (o.builtin === undefined)) {
    throw new TestHelperError('SIPD_TEST_ERR_ARGUMENT', 'sipp: give exactly one of `scenario` (XML file) and `builtin` (uac or uas)')
  }
  if (!(o.timeoutSec > 0)) throw new TestHelperError('SIPD_TEST_ERR_ARGUMENT', `sipp: timeoutSec must be > 0, got ${o.timeoutSec}`)
  if (o.calls !== undefined && !(Number.isInteger(o.calls) && o.calls > 0)) {
    throw new TestHelperError('SIPD_TEST_ERR_ARGUMENT', `sipp: calls must be a positive integer, got ${o.calls}`)
  }
  const transport = o.transport ?? 'u1'
  const localPort = o.localPort ?? await freePort(o.localIp, transport === 'u1' ? 'udp' : 'tcp')
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sipd-sipp-'))
  const statFile = path.join(dir, 'stats.csv')
  const errorFile = path.join(dir, 'errors.log')
  const args: string[] = []
  if (o.remote !== undefined) args.push(o.remote)
  if (o.scenario !== undefined) args.push('-sf', path.resolve(o.scenario))
  else args.push('-sn', o.builtin as string)
  args.push(
    '-i', o.localIp, '-p', String(localPort), '-t', transport,
    '-nostdin',
    // Bounded: sipp fails and exits at the global timeout instead of
    // waiting for calls in progress to drain.
    '-timeout', `${o.timeoutSec}s`, '-timeout_error',
    '-trace_stat', '-stf', statFile,
    '-trace_err', '-error_file', errorFile,
    '-cid_str', uniqueCallIdFormat()
  )
  if (o.calls !== undefined) args.push('-m', String(o.calls))
  if (o.rate !== undefined) args.push('-r', String(o.rate))
  if (o.injectionFile !== undefined) args.push('-inf', path.resolve(o.injectionFile))
  args.push(...(o.extraArgs ?? []))
  return { args, dir, statFile, errorFile, localPort }
}

async function readOptional (file: string): Promise<string | undefined> {
  try {
    const text = await readFile(file, 'utf8')
    return text === '' ? undefined : text
  } catch {
    return undefined
  }
}

interface Started {
  pid: number | undefined
  finished: Promise<SippResult>
  stop: (signal: NodeJS.Signals) => Promise<SippResult>
  exited: () => boolean
}

function startSipp (p: Prepared, hardBoundMs: number): Started {
  const child = spawnBound('sipp', p.args, { cwd: p.dir, stdio: ['ignore', 'pipe', 'pipe'] })
  const stdout = new OutputTail(256 * 1024)
  const stderr = new OutputTail(64 * 1024)
  let spawnError: Error | undefined
  child.once('error', (err) => { spawnError = err })
  child.stdout?.on('data', (d: Buffer) => stdout.push(d))
  child.stderr?.on('data', (d: Buffer) => stderr.push(d))
  track(child)
  // Belt and braces for -timeout: if sipp is still there well after it,
  // SIGINT (sipp's own graceful exit), then SIGKILL.
  const guard = setTimeout(() => { void stopChild(child, 'SIGINT', 5000) }, hardBoundMs)
  guard.unref()
  const finished = (async (): Promise<SippResult> => {
    const status = await exitOf(child)
    clearTimeout(guard)
    const stats = parseSippStats(await readOptional(p.statFile) ?? '')
    const errors = await readOptional(p.errorFile)
    await rm(p.dir, { recursive: true, force: true })
    // 127: setpriv could not exec sipp.
    const err = spawnError || status.code === 127 ? `could not run sipp${spawnError ? `: ${spawnError.message}` : ''} (is it installed? apt-get install -y sip-tester)\n` : ''
    return {
      code: status.code,
      signal: status.signal,
      command: p.args.join(' '),
      stdout: stdout.toString(),
      stderr: err + stderr.toString(),
      ...(stats ? { stats } : {}),
      ...(errors !== undefined ? { errors } : {})
    }
  })()
  return {
    pid: child.pid,
    finished,
    stop: async (signal) => {
      await stopChild(child, signal, 5000)
      return finished
    },
    exited: () => spawnError !== undefined || child.exitCode !== null || child.signalCode !== null
  }
}

/**
 * Runs sipp to completion: `-m calls`, `-timeout timeoutSec` (a failure when
 * reached), statistics and error trace in a temp dir, a unique `-cid_str`.
 * Never rejects for a failed run: check `code` (0 = every call succeeded) and
 * use {@link describeSipp} as the assertion message.
 */
export async function runSipp (options: SippOptions): Promise<SippResult> {
  const p = await prepare(options)
  return startSipp(p, (options.timeoutSec + 10) * 1000).finished
}

/** Options of {@link startSippUas}. */
export interface SippUasOptions {
  /** Scenario XML (`-sf`); without it, sipp's built-in `uas`. */
  scenario?: string
  /** Local address (`-i`), e.g. 127.0.0.3. */
  localIp: string
  /** Local SIP port (`-p`), e.g. 5080. @default a free port on localIp */
  localPort?: number
  /** @default 'u1' */
  transport?: SippTransport
  /** Exit by itself after this many calls (`-m`). @default no limit */
  calls?: number
  /** Longest life (`-timeout`, a failure when reached); `stop()` normally ends it first. @default 120 */
  maxLifetimeSec?: number
  /** More sipp arguments, appended last. @default [] */
  extraArgs?: string[]
  /** CSV injection file (`-inf`). */
  injectionFile?: string
  /** How long to wait until sipp holds its SIP port. @default 5000 */
  readyTimeoutMs?: number
}

/** A long-running sipp party (UAS). */
export interface SippUasHandle {
  readonly pid: number
  readonly localIp: string
  readonly localPort: number
  /** `ip:port`, for a config's node URI or a uac's remote. */
  readonly address: string
  /** Resolves when sipp exits by itself (calls limit or lifetime) or after `stop()`. */
  readonly finished: Promise<SippResult>
  /** Ends sipp by its PID (SIGINT, SIGKILL after 5 s) and resolves with its result. */
  stop (): Promise<SippResult>
}

/**
 * Starts a sipp UAS (built-in `uas` unless `scenario` is given) bound to
 * `localIp:localPort`, and resolves once it holds that port. Always
 * `stop()` it in `t.teardown`; it also ends by itself after `maxLifetimeSec`.
 */
export async function startSippUas (options: SippUasOptions): Promise<SippUasHandle> {
  const maxLifetimeSec = options.maxLifetimeSec ?? 120
  const p = await prepare({
    ...(options.scenario !== undefined ? { scenario: options.scenario } : { builtin: 'uas' as const }),
    localIp: options.localIp,
    ...(options.localPort !== undefined ? { localPort: options.localPort } : {}),
    ...(options.transport !== undefined ? { transport: options.transport } : {}),
    ...(options.calls !== undefined ? { calls: options.calls } : {}),
    timeoutSec: maxLifetimeSec,
    ...(options.extraArgs !== undefined ? { extraArgs: options.extraArgs } : {}),
    ...(options.injectionFile !== undefined ? { injectionFile: options.injectionFile } : {})
  })
  const s = startSipp(p, (maxLifetimeSec + 10) * 1000)
  const protocol = (options.transport ?? 'u1') === 'u1' ? 'udp' : 'tcp'
  const readyTimeoutMs = options.readyTimeoutMs ?? 5000
  const deadline = Date.now() + readyTimeoutMs
  for (;;) {
    if (s.exited()) {
      const r = await s.finished
      throw new TestHelperError('SIPD_TEST_ERR_START', `sipp UAS exited before binding ${options.localIp}:${p.localPort}\n${describeSipp(r)}`)
    }
    // sipp holds the port once our own bind on it fails with EADDRINUSE.
    if (await isPortBound(options.localIp, p.localPort, protocol)) break
    if (Date.now() > deadline) {
      const r = await s.stop('SIGKILL')
      throw new TestHelperError('SIPD_TEST_ERR_START', `sipp UAS did not bind ${options.localIp}:${p.localPort} within ${readyTimeoutMs} ms\n${describeSipp(r)}`)
    }
    await delay(20)
  }
  return {
    pid: s.pid as number,
    localIp: options.localIp,
    localPort: p.localPort,
    address: `${options.localIp}:${p.localPort}`,
    finished: s.finished,
    stop: () => s.stop('SIGINT')
  }
}
