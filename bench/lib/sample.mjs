// Repeated timed samples of a synchronous function, with warm-up. Each
// sample runs the function in batches for `sampleMs` and yields ops/second;
// the figure to quote is the median over samples.

/** Statistics of a list of numbers. */
export function stats (values) {
  const v = [...values].sort((a, b) => a - b)
  const at = q => v[Math.min(v.length - 1, Math.max(0, Math.round(q * (v.length - 1))))]
  return { median: at(0.5), min: v[0], max: v[v.length - 1], p25: at(0.25), p75: at(0.75), samples: v.length }
}

let sink = 0
/** Keep a result alive so the JIT cannot drop the work. */
export function keep (x) {
  sink = (sink + (typeof x === 'number' ? x : x ? 1 : 0)) | 0
  return sink
}

/** Ops per second of `fn` over `samples` samples of `sampleMs` each, after `warmupMs`. */
export function measure (fn, { samples = 10, sampleMs = 200, warmupMs = 300 } = {}) {
  const until = performance.now() + warmupMs
  let batch = 16
  while (performance.now() < until) {
    for (let i = 0; i < batch; i++) keep(fn(i))
    if (batch < 65536) batch *= 2
  }
  const rates = []
  for (let s = 0; s < samples; s++) {
    let ops = 0
    const t0 = performance.now()
    let t1 = t0
    while (t1 - t0 < sampleMs) {
      for (let i = 0; i < batch; i++) keep(fn(i))
      ops += batch
      t1 = performance.now()
    }
    rates.push(ops / ((t1 - t0) / 1000))
  }
  return stats(rates)
}
