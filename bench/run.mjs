#!/usr/bin/env node
// sipd benchmark harness.
//
//   npm run bench [-- NAME…] [--quick] [--with-kamailio] [--profile[=TARGET]] [--profile-only[=TARGET]] [--time-limit=SECONDS]
//
// Runs the suites in bench/suites (all of them in the order parse, stack,
// route, register, dispatch, e2e, then any others; or the ones named), each in
// its own child process (`node --expose-gc`, so mitata can collect garbage
// between measurements) under a time limit: a suite that overruns is stopped
// (its whole process group) and reported as a timeout. For each suite it
// prints a table and writes bench/results/NAME.json.
//
// Suite contract — bench/suites/NAME.mjs exports:
//   async function run(ctx) → { name, rows, notes?, profileTarget? }
//     ctx = { quick: boolean, withKamailio: boolean, progress(text): void, machine: {…}, resultsDir: string }
//     rows: [{ name, unit, median, spread?, samples?, ratios?, …extra }]
//       name     what was measured (string)
//       unit     of median, e.g. 'msgs/s', 'CPU s / 1,000 calls' (string)
//       median   the figure to quote (number; null when not applicable, with a `na` reason)
//       spread   { min, max, p25, p75 } over the samples, or one number (±)
//       samples  how many samples the median is over
//       ratios   { [peer]: number } — ours / peer, shown as one column per peer
//       extra    any other scalar fields are shown as columns and kept in the JSON
//     notes: strings printed under the table and kept in the JSON
//   const timeLimit = { full: seconds, quick: seconds }        (optional; default 600 / 180)
//   const profileTargets = { [id]: description }               (optional, with profile())
//   async function profile({ target, seconds, quick, progress }) (optional: runs one target's
//     workload for `seconds`; the harness runs it under node --cpu-prof for --profile)
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { cpuTimes, machine } from './lib/machine.mjs'
import { table } from './lib/table.mjs'
import { formatSummary, summarise } from './lib/cpuprofile.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const repoRoot = path.resolve(here, '..')
const resultsDir = path.join(here, 'results')
const RUN_SUITE = path.join(here, 'lib', 'run-suite.mjs')
const ORDER = ['parse', 'stack', 'route', 'register', 'dispatch', 'e2e']
const DEFAULT_LIMIT = Object.freeze({ full: 600, quick: 180 })
const PROFILE_SECONDS = Object.freeze({ full: 6, quick: 3 })
const KILL_GRACE_MS = 3000

const USAGE = `usage: npm run bench [-- NAME…] [--quick] [--with-kamailio] [--profile[=TARGET]] [--profile-only[=TARGET]] [--time-limit=SECONDS]
  NAME               suites to run (default: all in bench/suites)
  --quick            short run (fewer, shorter samples)
  --with-kamailio    e2e: run the same profiles against Kamailio (installed from Debian
                     if missing), alternating with sipd, and print sipd / Kamailio ratios
  --profile          after a suite, run its slowest case (or TARGET) under node --cpu-prof
                     and print the top 15 functions by self time
  --profile-only     the profile without the measurement run
  --time-limit=S     stop a suite after S seconds (default: the suite's own, else ${DEFAULT_LIMIT.full} s, ${DEFAULT_LIMIT.quick} s quick)`

// ---------------------------------------------------------------- arguments

const flags = { quick: false, withKamailio: false, profile: false, profileOnly: false, profileTarget: '', timeLimit: 0 }
const wanted = []
for (const a of process.argv.slice(2)) {
  if (a === '--quick') flags.quick = true
  else if (a === '--with-kamailio') flags.withKamailio = true
  else if (a === '--profile' || a.startsWith('--profile=')) { flags.profile = true; flags.profileTarget = a.slice(10) }
  else if (a === '--profile-only' || a.startsWith('--profile-only=')) { flags.profile = flags.profileOnly = true; flags.profileTarget = a.slice(15) }
  else if (a.startsWith('--time-limit=')) flags.timeLimit = Number(a.slice(13))
  else if (a === '--help' || a === '-h') { console.log(USAGE); process.exit(0) }
  else if (a.startsWith('-')) { console.error(`unknown option ${a}\n${USAGE}`); process.exit(2) }
  else wanted.push(a)
}
if (flags.timeLimit !== 0 && !(flags.timeLimit > 0)) {
  console.error(`--time-limit must be a positive number of seconds, got ${process.argv.find(a => a.startsWith('--time-limit='))}`)
  process.exit(2)
}
const available = readdirSync(path.join(here, 'suites'))
  .filter(f => f.endsWith('.mjs'))
  .map(f => f.slice(0, -4))
  .sort((a, b) => ((ORDER.indexOf(a) + 1 || 99) - (ORDER.indexOf(b) + 1 || 99)) || a.localeCompare(b))
const names = wanted.length > 0 ? [...new Set(wanted)] : available
const unknown = names.filter(n => !available.includes(n))
if (unknown.length > 0) {
  console.error(`unknown suite(s): ${unknown.join(', ')}; available: ${available.join(', ')}`)
  process.exit(2)
}

// ---------------------------------------------------------------- progress line

const tty = process.stdout.isTTY === true
let shown = ''
/** Show the progress line: overwritten in place on a terminal, one plain line per change otherwise. */
function progress (text) {
  if (text === shown) return
  shown = text
  if (tty) {
    const width = (process.stdout.columns || 100) - 1
    process.stdout.write(`\r\x1b[K${text.length > width ? text.slice(0, width - 1) + '…' : text}`)
  } else {
    process.stdout.write(text + '\n')
  }
}
/** Print a line above the progress line. */
function print (line) {
  if (tty && shown !== '') process.stdout.write('\r\x1b[K')
  process.stdout.write(line + '\n')
  if (tty && shown !== '') process.stdout.write(shown)
}
function clearProgress () {
  if (tty && shown !== '') process.stdout.write('\r\x1b[K')
  shown = ''
}

// ---------------------------------------------------------------- one child

let current = null
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    clearProgress()
    if (current) killGroup(current.pid, 'SIGKILL')
    console.error(`\nstopped by ${sig}`)
    process.exit(130)
  })
}

function killGroup (pid, signal) {
  try { process.kill(-pid, signal) } catch { /* already gone */ }
}

function relay (stream, label) {
  let buf = ''
  stream.setEncoding('utf8')
  stream.on('data', d => {
    buf += d
    let nl
    while ((nl = buf.indexOf('\n')) >= 0) {
      print(`  [${label}] ${buf.slice(0, nl)}`)
      buf = buf.slice(nl + 1)
    }
  })
  stream.on('end', () => { if (buf !== '') print(`  [${label}] ${buf}`) })
}

/**
 * Run bench/lib/run-suite.mjs for one suite in its own process group, relay
 * its progress, stop it at the time limit.
 * @returns {Promise<{ result?: any, error?: string, timedOut?: boolean, limit: number, cpuSeconds?: number, seconds: number, ready?: any }>}
 */
function runChild (name, { args = [], execArgv = [], label = name, ctx }) {
  return new Promise(resolve => {
    const started = Date.now()
    const child = spawn(process.execPath, [...execArgv, RUN_SUITE, name, ...args], {
      cwd: repoRoot,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: { ...process.env, SIPD_BENCH_CTX: JSON.stringify(ctx) }
    })
    current = child
    const out = { limit: flags.timeLimit || (flags.quick ? DEFAULT_LIMIT.quick : DEFAULT_LIMIT.full), seconds: 0 }
    relay(child.stdout, label)
    relay(child.stderr, label)
    progress(`[${label}] starting`)
    child.on('message', msg => {
      if (msg.type === 'ready') {
        out.ready = msg
        const own = msg.timeLimit?.[flags.quick ? 'quick' : 'full']
        if (flags.timeLimit === 0 && typeof own === 'number' && own > 0) out.limit = own
      } else if (msg.type === 'progress') {
        const s = Math.round((Date.now() - started) / 1000)
        progress(`[${label}] ${msg.text}  (${s} s of at most ${out.limit} s)`)
      } else if (msg.type === 'result') {
        out.result = msg.result
        out.cpuSeconds = msg.cpuSeconds
      } else if (msg.type === 'error') {
        out.error = msg.stack ?? msg.message
      }
    })
    const watchdog = setInterval(() => {
      if (out.timedOut || Date.now() - started <= out.limit * 1000) return
      out.timedOut = true
      killGroup(child.pid, 'SIGTERM')
      setTimeout(() => killGroup(child.pid, 'SIGKILL'), KILL_GRACE_MS).unref()
    }, 250)
    child.on('close', (code, signal) => {
      clearInterval(watchdog)
      current = null
      out.seconds = (Date.now() - started) / 1000
      if (out.result === undefined && out.error === undefined && !out.timedOut) {
        out.error = `the suite process exited (${signal ?? `code ${code}`}) without a result`
      }
      // Whatever the suite started in its process group goes with it.
      killGroup(child.pid, 'SIGKILL')
      resolve(out)
    })
  })
}

// ---------------------------------------------------------------- checks and output

function contractErrors (name, result) {
  const errs = []
  if (result === null || typeof result !== 'object') return [`run() returned ${result === null ? 'null' : typeof result}, not { name, rows }`]
  if (!Array.isArray(result.rows)) return ['result.rows is not an array']
  result.rows.forEach((r, i) => {
    const label = r?.name ?? r?.case
    if (typeof label !== 'string') errs.push(`row ${i}: no name`)
    if (typeof r?.unit !== 'string') errs.push(`row ${i} (${label}): no unit`)
    if (!(typeof r?.median === 'number' || r?.median === null)) errs.push(`row ${i} (${label}): median is ${typeof r?.median}, not a number or null`)
  })
  return errs
}

function loadNotes (m, othersBusyCores, stealCores) {
  const l = m.loadAverageAtStart
  const notes = [`load average at start ${l['1m']} / ${l['5m']} / ${l['15m']} (1, 5, 15 min) on ${m.cores} cores; during the run other processes used ${othersBusyCores.toFixed(2)} cores on average and the hypervisor took ${stealCores.toFixed(2)} (steal)`]
  if (othersBusyCores >= 0.1) notes.push('other processes were running during this run: figures may be lower than on an idle machine')
  if (stealCores >= 0.05) notes.push('the hypervisor held back our virtual CPUs during this run (steal time): figures may be lower than on a quiet host')
  return notes
}

async function profileSuite (name, target, machineInfo) {
  const seconds = flags.quick ? PROFILE_SECONDS.quick : PROFILE_SECONDS.full
  const file = path.join(resultsDir, `${name}.cpuprofile`)
  rmSync(file, { force: true })
  const r = await runChild(name, {
    label: `${name} --profile`,
    args: ['--profile', target, String(seconds)],
    execArgv: ['--cpu-prof', `--cpu-prof-dir=${resultsDir}`, `--cpu-prof-name=${name}.cpuprofile`, '--cpu-prof-interval=100'],
    ctx: { quick: flags.quick, withKamailio: flags.withKamailio, machine: machineInfo, resultsDir }
  })
  clearProgress()
  if (r.timedOut || r.error !== undefined) {
    console.error(`[${name}] profile failed: ${r.timedOut ? `took longer than ${r.limit} s` : r.error}`)
    return undefined
  }
  if (!existsSync(file)) {
    console.error(`[${name}] profile failed: ${path.relative(repoRoot, file)} was not written`)
    return undefined
  }
  const chosen = r.result?.target ?? target
  const summary = summarise(JSON.parse(readFileSync(file, 'utf8')), { top: 15 })
  console.log(`\n-- ${name} profile: ${chosen}${r.ready?.profileTargets?.[chosen] ? ` (${r.ready.profileTargets[chosen]})` : ''}, ${seconds} s under node --cpu-prof`)
  console.log(formatSummary(summary))
  console.log(`  → ${path.relative(repoRoot, file)} (open in Chrome DevTools or VS Code)`)
  return { target: chosen, file: path.relative(repoRoot, file), seconds, samples: summary.samples, top: summary.entries }
}

// ---------------------------------------------------------------- main

mkdirSync(resultsDir, { recursive: true })
let failed = false
for (const name of names) {
  const machineInfo = machine()
  const ctx = { quick: flags.quick, withKamailio: flags.withKamailio, machine: machineInfo, resultsDir }
  if (flags.profileOnly) {
    if (await profileSuite(name, flags.profileTarget, machineInfo) === undefined) failed = true
    continue
  }
  const date = new Date().toISOString()
  const cpu0 = cpuTimes()
  const r = await runChild(name, { ctx, execArgv: ['--expose-gc'] })
  const cpu1 = cpuTimes()
  clearProgress()
  if (r.timedOut) {
    console.error(`\n== ${name}: TIMEOUT — stopped after ${r.limit} s (limit; --time-limit=S to change)`)
    failed = true
    continue
  }
  if (r.error !== undefined) {
    console.error(`\n== ${name}: FAILED\n${r.error}`)
    failed = true
    continue
  }
  const errs = contractErrors(name, r.result)
  if (errs.length > 0) {
    console.error(`\n== ${name}: the result does not follow the suite contract (see bench/run.mjs):\n  ${errs.join('\n  ')}`)
    failed = true
    continue
  }
  const othersBusyCores = Math.max(0, (cpu1.busy - cpu0.busy - (r.cpuSeconds ?? 0)) / r.seconds)
  const stealCores = (cpu1.steal - cpu0.steal) / r.seconds
  const m = {
    ...machineInfo,
    loadAverageAtEnd: machine().loadAverageAtStart,
    othersBusyCores: Math.round(othersBusyCores * 100) / 100,
    stealCores: Math.round(stealCores * 100) / 100
  }
  const result = r.result
  const notes = [...(result.notes ?? []), ...loadNotes(m, othersBusyCores, stealCores)]
  const out = { suite: name, date, seconds: Math.round(r.seconds), quick: flags.quick, ...(flags.withKamailio ? { withKamailio: true } : {}), machine: m, ...(result.peers ? { peers: result.peers } : {}), rows: result.rows, notes }
  const l = m.loadAverageAtStart
  console.log(`\n== ${name}${flags.quick ? ' (quick)' : ''} — ${m.cpuModel}, ${m.cores} cores, Node ${m.nodeVersion}, load ${l['1m']} ${l['5m']} ${l['15m']}, ${out.seconds} s`)
  console.log(table(result.rows))
  for (const n of notes) console.log(`  note: ${n}`)
  if (flags.profile) {
    const target = flags.profileTarget || result.profileTarget || ''
    const prof = r.ready?.profileTargets ? await profileSuite(name, target, machineInfo) : undefined
    if (!r.ready?.profileTargets) console.log(`  (no profile: bench/suites/${name}.mjs exports no profileTargets)`)
    if (prof !== undefined) out.profile = prof
    else if (r.ready?.profileTargets) failed = true
  }
  const file = path.join(resultsDir, `${name}.json`)
  writeFileSync(file, JSON.stringify(out, null, 2) + '\n')
  console.log(`  → ${path.relative(repoRoot, file)}`)
}
process.exitCode = failed ? 1 : 0
