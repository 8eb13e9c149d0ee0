// Child process of bench/run.mjs: runs one suite (or, with --profile, one of
// its profile targets) and reports over IPC, so that the harness can stop a
// suite that overruns its time limit, even one stuck in a synchronous loop.
//
//   node --expose-gc bench/lib/run-suite.mjs NAME                 run(ctx)
//   node --cpu-prof … bench/lib/run-suite.mjs NAME --profile T S  profile({ target: T, seconds: S })
//
// Messages to the parent: { type: 'ready', timeLimit, profileTargets },
// { type: 'progress', text }, { type: 'result', result, cpuSeconds },
// { type: 'error', message, stack }. An empty profile target means the
// suite's defaultProfileTarget (else its first target).
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { cpuSecondsWithChildren } from './machine.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const [name, mode, target, seconds] = process.argv.slice(2)
const ctxIn = JSON.parse(process.env.SIPD_BENCH_CTX ?? '{}')

function send (msg) {
  return new Promise(resolve => process.send(msg, undefined, undefined, () => resolve()))
}

try {
  const mod = await import(pathToFileURL(path.join(here, '..', 'suites', `${name}.mjs`)).href)
  if (typeof mod.run !== 'function') throw new Error(`bench/suites/${name}.mjs does not export run(ctx)`)
  const profileTargets = mod.profileTargets ?? null
  await send({ type: 'ready', timeLimit: mod.timeLimit ?? null, profileTargets })
  const progress = text => { process.send({ type: 'progress', text: String(text) }) }
  if (mode === '--profile') {
    if (typeof mod.profile !== 'function' || profileTargets === null) throw new Error(`bench/suites/${name}.mjs does not export profile(ctx) and profileTargets`)
    const chosen = target || mod.defaultProfileTarget || Object.keys(profileTargets)[0]
    if (!(chosen in profileTargets)) throw new Error(`no profile target '${chosen}' in ${name}; targets: ${Object.keys(profileTargets).join(', ')}`)
    await mod.profile({ quick: ctxIn.quick === true, target: chosen, seconds: Number(seconds), progress })
    await send({ type: 'result', result: { target: chosen } })
  } else {
    const result = await mod.run({ quick: ctxIn.quick === true, withKamailio: ctxIn.withKamailio === true, machine: ctxIn.machine, progress, resultsDir: ctxIn.resultsDir })
    await send({ type: 'result', result, cpuSeconds: cpuSecondsWithChildren(process.pid) })
  }
} catch (err) {
  await send({ type: 'error', message: err?.message ?? String(err), stack: err?.stack })
}
// A suite may leave handles open; the result is in, so leave (a CPU profile
// is still written on process.exit).
process.exit(0)
