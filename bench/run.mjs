#!/usr/bin/env node
// `npm run bench [-- NAME…] [--quick] [--profile]`: runs the suites in
// bench/suites (all, or the ones named), prints a table per suite and writes
// bench/results/NAME.json with the machine it ran on.
import { readdirSync, writeFileSync, mkdirSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { machine } from './lib/machine.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const args = process.argv.slice(2)
const quick = args.includes('--quick')
const profile = args.includes('--profile')
const wanted = args.filter(a => !a.startsWith('--'))
const ORDER = ['parse', 'stack', 'route', 'register', 'dispatch', 'e2e']
const available = readdirSync(path.join(here, 'suites')).filter(f => f.endsWith('.mjs')).map(f => f.slice(0, -4))
  .sort((a, b) => (ORDER.indexOf(a) + 1 || 99) - (ORDER.indexOf(b) + 1 || 99))
const names = wanted.length > 0 ? wanted : available
const unknown = names.filter(n => !available.includes(n))
if (unknown.length > 0) {
  console.error(`unknown suite(s): ${unknown.join(', ')}; available: ${available.join(', ')}`)
  process.exit(2)
}
const CAP_MS = quick ? 120_000 : 600_000

function progress (name) {
  return text => {
    if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K[${name}] ${text}`)
    else process.stderr.write(`[${name}] ${text}\n`)
  }
}

function fmt (v) {
  if (typeof v !== 'number') return v === undefined || v === null ? '' : String(v)
  if (!Number.isFinite(v)) return String(v)
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US')
  if (Math.abs(v) >= 10) return v.toFixed(1)
  return v.toFixed(3)
}

function table (rows) {
  const cols = []
  for (const r of rows) for (const k of Object.keys(r)) if (!cols.includes(k) && typeof r[k] !== 'object') cols.push(k)
  const ratioKeys = []
  for (const r of rows) for (const k of Object.keys(r.ratios ?? {})) if (!ratioKeys.includes(k)) ratioKeys.push(k)
  const spread = rows.some(r => r.spread)
  const head = [...cols, ...(spread ? ['p25–p75'] : []), ...ratioKeys.map(k => `× ${k}`)]
  const body = rows.map(r => [
    ...cols.map(c => fmt(r[c])),
    ...(spread ? [r.spread ? `${fmt(r.spread.p25)}–${fmt(r.spread.p75)}` : ''] : []),
    ...ratioKeys.map(k => r.ratios?.[k] === undefined ? '' : `${r.ratios[k].toFixed(1)}×`)
  ])
  const widths = head.map((h, i) => Math.max(h.length, ...body.map(b => b[i].length)))
  const line = cells => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')
  return [line(head), widths.map(w => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n')
}

mkdirSync(path.join(here, 'results'), { recursive: true })
let failed = false
for (const name of names) {
  const mod = await import(pathToFileURL(path.join(here, 'suites', `${name}.mjs`)).href)
  const ctx = { quick, profile, progress: progress(name), machine: machine(), resultsDir: path.join(here, 'results') }
  const started = Date.now()
  let result
  try {
    result = await Promise.race([
      mod.run(ctx),
      new Promise((_resolve, reject) => setTimeout(() => reject(new Error(`suite ${name} took longer than ${CAP_MS / 1000} s`)), CAP_MS).unref())
    ])
  } catch (err) {
    if (process.stderr.isTTY) process.stderr.write('\n')
    console.error(`[${name}] failed: ${err.message}`)
    failed = true
    continue
  }
  if (process.stderr.isTTY) process.stderr.write('\r\x1b[K')
  const out = { suite: name, date: new Date().toISOString(), seconds: Math.round((Date.now() - started) / 1000), quick, machine: ctx.machine, rows: result.rows, notes: result.notes ?? [] }
  writeFileSync(path.join(here, 'results', `${name}.json`), JSON.stringify(out, null, 2) + '\n')
  console.log(`\n== ${name} (${ctx.machine.cpuModel}, ${ctx.machine.cores} cores, Node ${ctx.machine.nodeVersion}, load ${ctx.machine.loadAverage.join(' ')})`)
  console.log(table(result.rows))
  for (const n of out.notes) console.log(`  note: ${n}`)
  console.log(`  → bench/results/${name}.json`)
}
process.exitCode = failed ? 1 : 0
