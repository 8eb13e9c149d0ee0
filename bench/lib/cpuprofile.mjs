// Summary of a V8 .cpuprofile (what `node --cpu-prof` writes): the functions
// with the most self time, with their total (inclusive) time, located in the
// TypeScript source through the dist/*.js.map files when there is one.
//
//   node bench/lib/cpuprofile.mjs FILE.cpuprofile [TOP]
import { existsSync, readFileSync } from 'node:fs'
import { SourceMap } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
const sourceMaps = new Map()

function sourceMapOf (file) {
  if (!sourceMaps.has(file)) {
    let map = null
    try {
      if (existsSync(file + '.map')) map = new SourceMap(JSON.parse(readFileSync(file + '.map', 'utf8')))
    } catch {
      map = null
    }
    sourceMaps.set(file, map)
  }
  return sourceMaps.get(file)
}

/** `file:line` of a call frame, in the original source when a source map says where. */
function locate ({ url, lineNumber, columnNumber }) {
  if (!url) return ''
  if (!url.startsWith('file://')) return `${url}:${lineNumber + 1}`
  const file = fileURLToPath(url)
  const map = sourceMapOf(file)
  const entry = map?.findEntry(lineNumber, columnNumber)
  if (entry?.originalSource) {
    const src = entry.originalSource.startsWith('file://') ? fileURLToPath(entry.originalSource) : path.resolve(path.dirname(file), entry.originalSource)
    return `${path.relative(repoRoot, src)}:${entry.originalLine + 1}`
  }
  return `${path.relative(repoRoot, file)}:${lineNumber + 1}`
}

/**
 * Self and total time per function of a profile, largest self time first.
 * @param {{ nodes: Array<{ id: number, callFrame: object, children?: number[] }>, samples: number[], timeDeltas: number[], startTime: number, endTime: number }} profile
 * @param {{ top?: number }} [opts]
 * @returns {{ totalMs: number, samples: number, entries: Array<{ function: string, location: string, selfMs: number, selfPct: number, totalMs: number, totalPct: number }> }}
 */
export function summarise (profile, { top = 15 } = {}) {
  const byId = new Map()
  const parent = new Map()
  for (const n of profile.nodes) {
    byId.set(n.id, n)
    for (const c of n.children ?? []) parent.set(c, n.id)
  }
  const keyOf = new Map()
  const entries = new Map()
  for (const n of profile.nodes) {
    const f = n.callFrame
    const key = `${f.functionName}\u0000${f.url}\u0000${f.lineNumber}\u0000${f.columnNumber}`
    keyOf.set(n.id, key)
    if (!entries.has(key)) entries.set(key, { frame: f, selfUs: 0, totalUs: 0 })
  }
  const { samples, timeDeltas } = profile
  const meanDelta = samples.length > 1 ? (profile.endTime - profile.startTime) / samples.length : 0
  let totalUs = 0
  for (let i = 0; i < samples.length; i++) {
    // timeDeltas[i] is the time before sample i, so sample i lasts until sample i + 1.
    const us = i + 1 < samples.length ? timeDeltas[i + 1] : meanDelta
    totalUs += us
    const id = samples[i]
    entries.get(keyOf.get(id)).selfUs += us
    const seen = new Set()
    for (let k = id; k !== undefined; k = parent.get(k)) {
      const key = keyOf.get(k)
      if (seen.has(key)) continue
      seen.add(key)
      entries.get(key).totalUs += us
    }
  }
  const list = [...entries.values()]
    .filter(e => e.frame.functionName !== '(root)')
    .sort((a, b) => b.selfUs - a.selfUs)
    .slice(0, top)
    .map(e => ({
      function: e.frame.functionName || '(anonymous)',
      location: locate(e.frame),
      selfMs: e.selfUs / 1000,
      selfPct: totalUs > 0 ? 100 * e.selfUs / totalUs : 0,
      totalMs: e.totalUs / 1000,
      totalPct: totalUs > 0 ? 100 * e.totalUs / totalUs : 0
    }))
  return { totalMs: totalUs / 1000, samples: samples.length, entries: list }
}

/** The summary as aligned text lines. */
export function formatSummary ({ totalMs, samples, entries }) {
  const head = ['self ms', 'self %', 'total %', 'function', 'where']
  const body = entries.map(e => [e.selfMs.toFixed(1), e.selfPct.toFixed(1), e.totalPct.toFixed(1), e.function, e.location])
  const widths = head.map((h, i) => Math.max(h.length, ...body.map(r => r[i].length)))
  const line = r => r.map((c, i) => (i < 3 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd()
  return [`${samples} samples over ${(totalMs / 1000).toFixed(2)} s`, line(head), ...body.map(line)].join('\n')
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const [file, top] = process.argv.slice(2)
  if (!file) {
    console.error('usage: node bench/lib/cpuprofile.mjs FILE.cpuprofile [TOP]')
    process.exit(2)
  }
  console.log(formatSummary(summarise(JSON.parse(readFileSync(file, 'utf8')), { top: Number(top ?? 15) })))
}
