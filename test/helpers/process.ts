// Shared plumbing for the helpers that start child processes (redis-server,
// sipd, sipp): bounded output capture, bounded stop by PID, and a last-resort
// SIGKILL of whatever is still running when the test process exits.

import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { existsSync } from 'node:fs'

/** The stable code of every error the test helpers throw. */
export type TestHelperErrorCode =
  | 'SIPD_TEST_ERR_ENV'
  | 'SIPD_TEST_ERR_START'
  | 'SIPD_TEST_ERR_ARGUMENT'

/** Thrown when the test environment or a helper's child process is not usable. */
export class TestHelperError extends Error {
  readonly code: TestHelperErrorCode
  constructor (code: TestHelperErrorCode, message: string) {
    super(message)
    this.name = 'TestHelperError'
    this.code = code
  }
}

/** The tail of a child's stdout and stderr, bounded so that a chatty child cannot exhaust memory. */
export class OutputTail {
  #text = ''
  readonly #limit: number
  constructor (limit: number) {
    this.#limit = limit
  }

  /** Appends a chunk, dropping the oldest text beyond the limit. */
  push (chunk: Buffer | string): void {
    this.#text += typeof chunk === 'string' ? chunk : chunk.toString('utf8')
    if (this.#text.length > this.#limit) this.#text = this.#text.slice(this.#text.length - this.#limit)
  }

  toString (): string {
    return this.#text
  }
}

/** How a child ended: its exit code, or the signal that killed it. */
export interface ExitStatus {
  code: number | null
  signal: NodeJS.Signals | null
}

/** A promise of the child's exit; settles also when spawning failed. */
export function exitOf (child: ChildProcess): Promise<ExitStatus> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode })
  }
  return new Promise((resolve) => {
    child.once('error', () => resolve({ code: child.exitCode, signal: child.signalCode }))
    child.once('exit', (code, signal) => resolve({ code, signal }))
  })
}

/** Resolves after `ms` milliseconds (the timer keeps the process alive: it is awaited). */
export function delay (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

const SETPRIV = '/usr/bin/setpriv'
const hasSetpriv = existsSync(SETPRIV)

/**
 * `child_process.spawn`, but the child gets SIGKILL from the kernel if this
 * test process dies first (even by SIGKILL or a tap timeout): `setpriv
 * --pdeathsig KILL` (util-linux) sets the parent-death signal and execs the
 * program, so the PID stays the program's own. Without setpriv, a plain spawn.
 */
export function spawnBound (file: string, args: readonly string[], options: SpawnOptions): ChildProcess {
  if (!hasSetpriv) return spawn(file, args, options)
  return spawn(SETPRIV, ['--pdeathsig', 'KILL', '--', file, ...args], options)
}

const running = new Set<ChildProcess>()
let exitHookInstalled = false

/**
 * Remembers a child so that it is SIGKILLed (by its PID) if the test process
 * exits while the child still runs, e.g. after a failed assertion skipped a
 * teardown. Forgets it once it exits.
 */
export function track (child: ChildProcess): void {
  if (child.pid === undefined) return
  running.add(child)
  child.once('exit', () => running.delete(child))
  if (!exitHookInstalled) {
    exitHookInstalled = true
    process.on('exit', () => {
      for (const c of running) {
        if (c.pid !== undefined) {
          try { process.kill(c.pid, 'SIGKILL') } catch {}
        }
      }
    })
  }
}

/**
 * Stops a child by its PID: `signal` first, then SIGKILL if it has not
 * exited after `boundMs`. Resolves with how it ended.
 */
export async function stopChild (child: ChildProcess, signal: NodeJS.Signals, boundMs: number): Promise<ExitStatus> {
  const exited = exitOf(child)
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return exited
  try { process.kill(child.pid, signal) } catch {}
  let timer: NodeJS.Timeout | undefined
  const bound = new Promise<undefined>((resolve) => { timer = setTimeout(() => resolve(undefined), boundMs) })
  const first = await Promise.race([exited, bound])
  // Cleared so that a bound not needed does not hold the test process open.
  clearTimeout(timer)
  if (first !== undefined) return first
  try { process.kill(child.pid, 'SIGKILL') } catch {}
  return exited
}
