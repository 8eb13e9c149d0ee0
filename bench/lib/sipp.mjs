// Running sipp for the end-to-end suites: a bounded run that ends by itself
// (-m, -timeout) and its counters from the -trace_stat file, and a
// long-running party (a media node or phone uas) whose cumulative counters
// are read from the same file, which sipp rewrites every second (-fd 1).
import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'

/** Arguments every load run gets (SIPP-NOTES.md): no terminal, 4 MiB socket buffers, counters every second. */
export function commonArgs (statFile) {
  return ['-nostdin', '-buff_size', '4194304', '-trace_stat', '-stf', statFile, '-fd', '1']
}

/**
 * The last line of a sipp -trace_stat file as { counter: number }: the
 * cumulative `(C)` counters under their names without the suffix (e.g.
 * `SuccessfulCall`, `FailedUnexpectedMessage`, `OutOfCallMsgs`,
 * `Retransmissions`, `CurrentCall`); undefined when sipp has not written it yet.
 */
export function readStats (file) {
  if (!existsSync(file)) return undefined
  const lines = readFileSync(file, 'latin1').split('\n').filter(l => l.length > 0)
  if (lines.length < 2) return undefined
  const head = lines[0].split(';')
  const last = lines[lines.length - 1].split(';')
  const out = {}
  head.forEach((h, i) => {
    if (h.endsWith('(C)')) out[h.slice(0, -3)] = statValue(last[i])
    else if (h === 'CurrentCall' || h === 'TotalCallCreated') out[h] = statValue(last[i])
  })
  return out
}

/** A stat file value: a count, or a duration `HH:MM:SS:uuuuuu` as milliseconds. */
function statValue (text) {
  if (text === undefined) return NaN
  const parts = text.split(':')
  if (parts.length === 4) return ((Number(parts[0]) * 60 + Number(parts[1])) * 60 + Number(parts[2])) * 1000 + Number(parts[3]) / 1000
  return Number(text)
}

/** Counters that mean a call went wrong or a message was not the one expected. */
export function problems (s) {
  if (s === undefined) return { failed: 0, unexpected: 0 }
  return {
    failed: s.FailedCall ?? 0,
    unexpected: (s.FailedUnexpectedMessage ?? 0) + (s.OutOfCallMsgs ?? 0)
  }
}

/**
 * Run sipp until it ends by itself; killed (SIGKILL, by PID) after
 * `timeoutMs` if it does not. Resolves with the exit code, stdout and the
 * counters of its stat file.
 */
export function runSipp (args, { statFile, timeoutMs }) {
  return new Promise((resolve, reject) => {
    const child = spawn('sipp', [...args, ...commonArgs(statFile)], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', d => { if (out.length < 200000) out += d })
    child.stderr.on('data', d => { if (out.length < 200000) out += d })
    child.once('error', reject)
    let killed = false
    const t = setTimeout(() => { killed = true; child.kill('SIGKILL') }, timeoutMs)
    child.once('exit', code => {
      clearTimeout(t)
      resolve({ code, killed, out, stats: readStats(statFile) })
    })
  })
}

/**
 * Start a sipp that runs until stopped (a uas). `stats()` reads its
 * cumulative counters; `stop()` ends it by its PID.
 */
export async function startSipp (args, { statFile }) {
  const child = spawn('sipp', [...args, ...commonArgs(statFile)], { stdio: ['ignore', 'ignore', 'pipe'] })
  let err = ''
  child.stderr.on('data', d => { if (err.length < 10000) err += d })
  const exited = new Promise(resolve => child.once('exit', resolve))
  // Ready once it has written its first counters (or dead).
  for (let i = 0; i < 100 && readStats(statFile) === undefined && child.exitCode === null; i++) {
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  if (child.exitCode !== null) throw new Error(`sipp ${args.join(' ')} exited at start: ${err.trim()}`)
  return {
    pid: child.pid,
    stats: () => readStats(statFile),
    async stop () {
      if (child.exitCode !== null) return
      child.kill('SIGUSR1') // sipp: dump and quit; SIGKILL below if it lingers
      const t = setTimeout(() => { if (child.exitCode === null) child.kill('SIGKILL') }, 1500)
      await exited
      clearTimeout(t)
    }
  }
}
