#!/usr/bin/env node
// Markdown tables from result files, for the README and RESULTS.md: the
// same columns and number formatting as the table the harness prints.
//
//   node bench/report.mjs [NAME…]     (default: every bench/results/*.json)
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { formatCompact, formatNumber } from './lib/table.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const dir = path.join(here, 'results')
const names = process.argv.length > 2 ? process.argv.slice(2) : readdirSync(dir).filter(f => f.endsWith('.json')).map(f => f.slice(0, -5))
const STANDARD = new Set(['name', 'case', 'unit', 'median', 'spread', 'samples', 'ratios', 'na'])
const cell = v => String(v).replaceAll('|', '\\|')

for (const name of names) {
  const file = path.join(dir, `${name}.json`)
  if (!existsSync(file)) { console.error(`no ${path.relative(process.cwd(), file)}`); process.exitCode = 1; continue }
  const j = JSON.parse(readFileSync(file, 'utf8'))
  const m = j.machine
  const l = m.loadAverageAtStart
  console.log(`### ${j.suite}${j.quick ? ' (quick)' : ''} — ${j.date.slice(0, 16).replace('T', ' ')} UTC, ${j.seconds} s`)
  console.log()
  console.log(`${m.cpuModel}, ${m.cores} cores, Node ${m.nodeVersion}; load average at start ${l['1m']} / ${l['5m']} / ${l['15m']}; other processes used ${m.othersBusyCores} cores on average during the run${j.peers ? `; ${Object.entries(j.peers).map(([k, v]) => `${k} ${v}`).join(', ')}` : ''}.`)
  console.log()
  const rows = j.rows
  const extra = []
  const ratioKeys = []
  for (const r of rows) {
    for (const [k, v] of Object.entries(r)) if (!STANDARD.has(k) && !extra.includes(k) && (v === null || typeof v !== 'object')) extra.push(k)
    for (const k of Object.keys(r.ratios ?? {})) if (!ratioKeys.includes(k)) ratioKeys.push(k)
  }
  const hasSpread = rows.some(r => r.spread !== undefined && r.spread !== null)
  const head = ['', ...extra, 'median', 'unit', ...(hasSpread ? ['p25–p75'] : []), 'n', ...ratioKeys.map(k => `÷ ${k}`)]
  console.log(`| ${head.join(' | ')} |`)
  const textual = new Set(extra.filter(k => rows.some(r => typeof r[k] === 'string')))
  console.log(`|${head.map((h, i) => (i === 0 || h === 'unit' || textual.has(h) ? '---' : '---:')).join('|')}|`)
  for (const r of rows) {
    const spread = r.spread === undefined || r.spread === null ? '' : typeof r.spread === 'number' ? `±${formatCompact(r.spread)}` : `${formatCompact(r.spread.p25)}–${formatCompact(r.spread.p75)}`
    const cells = [
      r.name ?? r.case,
      ...extra.map(k => formatNumber(r[k])),
      r.median === null || r.median === undefined ? 'n/a' : formatNumber(r.median),
      r.unit,
      ...(hasSpread ? [spread] : []),
      r.samples ?? '',
      ...ratioKeys.map(k => (typeof r.ratios?.[k] === 'number' ? `${r.ratios[k].toFixed(r.ratios[k] >= 10 ? 1 : 2)}×` : ''))
    ]
    console.log(`| ${cells.map(cell).join(' | ')} |`)
  }
  console.log()
}
