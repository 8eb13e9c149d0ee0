// A suite's rows as an aligned text table: name, the suite's own scalar
// columns, median, unit, spread (p25–p75 and min–max), samples, and one
// column per ratio key.

// `na` (why a figure is not applicable) stays in the JSON; the table shows n/a.
const STANDARD = new Set(['name', 'case', 'unit', 'median', 'spread', 'samples', 'ratios', 'na'])

/** A number with thousands separators, or three significant digits below 100. */
export function formatNumber (v) {
  if (v === undefined || v === null) return ''
  if (typeof v !== 'number') return String(v)
  if (!Number.isFinite(v)) return String(v)
  const a = Math.abs(v)
  if (a >= 100) return Math.round(v).toLocaleString('en-US')
  if (a === 0) return '0'
  return v.toPrecision(3)
}

/** A number in 3–4 significant digits with k/M suffix, for spreads. */
export function formatCompact (v) {
  if (typeof v !== 'number' || !Number.isFinite(v)) return formatNumber(v)
  const a = Math.abs(v)
  if (a >= 1e6) return `${(v / 1e6).toFixed(a >= 1e7 ? 1 : 2)}M`
  if (a >= 1e4) return `${(v / 1e3).toFixed(a >= 1e5 ? 0 : 1)}k`
  return formatNumber(v)
}

/** The spread of a row as [p25–p75, min–max] (or a ± figure when the spread is one number). */
function spreadCells (spread) {
  if (spread === undefined || spread === null) return ['', '']
  if (typeof spread === 'number') return [`±${formatCompact(spread)}`, '']
  return [`${formatCompact(spread.p25)}–${formatCompact(spread.p75)}`, `${formatCompact(spread.min)}–${formatCompact(spread.max)}`]
}

/**
 * @param {Array<Record<string, any>>} rows result rows (see bench/run.mjs for the contract)
 * @returns {string}
 */
export function table (rows) {
  const extra = []
  const ratioKeys = []
  for (const r of rows) {
    for (const [k, v] of Object.entries(r)) if (!STANDARD.has(k) && !extra.includes(k) && (v === null || typeof v !== 'object')) extra.push(k)
    for (const k of Object.keys(r.ratios ?? {})) if (!ratioKeys.includes(k)) ratioKeys.push(k)
  }
  const hasSpread = rows.some(r => r.spread !== undefined && r.spread !== null)
  const head = ['', ...extra, 'median', 'unit', ...(hasSpread ? ['p25–p75', 'min–max'] : []), 'n', ...ratioKeys.map(k => `÷ ${k}`)]
  const right = new Set(['median', 'p25–p75', 'min–max', 'n', ...ratioKeys.map(k => `÷ ${k}`)])
  const body = rows.map(r => [
    String(r.name ?? r.case ?? ''),
    ...extra.map(k => formatNumber(r[k])),
    r.median === null || r.median === undefined ? 'n/a' : formatNumber(r.median),
    String(r.unit ?? ''),
    ...(hasSpread ? spreadCells(r.spread) : []),
    r.samples === undefined ? '' : String(r.samples),
    ...ratioKeys.map(k => (typeof r.ratios?.[k] === 'number' ? `${r.ratios[k].toFixed(r.ratios[k] >= 10 ? 1 : 2)}×` : ''))
  ])
  const widths = head.map((h, i) => Math.max(h.length, ...body.map(b => b[i].length)))
  const line = cells => cells.map((c, i) => (right.has(head[i]) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd()
  return [line(head), widths.map(w => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n')
}
