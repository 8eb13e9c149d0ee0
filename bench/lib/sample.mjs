// Sampling for the micro suites: mitata takes the samples (batches of calls,
// time per call), after a warm-up long enough for the JIT to settle; the
// figure to quote is the median, the spread is the quartiles and extremes.
import { measure, do_not_optimize } from 'mitata'

export { do_not_optimize }

/**
 * Statistics of a list of numbers: median, min, max, quartiles and count.
 * @param {number[]} values
 */
export function stats (values) {
  const v = [...values].sort((a, b) => a - b)
  const at = q => v[Math.min(v.length - 1, Math.max(0, Math.round(q * (v.length - 1))))]
  return { median: at(0.5), min: v[0], max: v[v.length - 1], p25: at(0.25), p75: at(0.75), samples: v.length }
}

/** Sampling settings for a full and a quick run. */
export const FULL = Object.freeze({ warmupMs: 400, minCpuMs: 600, minSamples: 12, sampleMs: 10 })
// The JIT needs about 200 ms to settle on the parsers here, so a quick run
// shortens the sampling, not the warm-up.
export const QUICK = Object.freeze({ warmupMs: 400, minCpuMs: 150, minSamples: 8, sampleMs: 10 })

/**
 * Nanoseconds per call of `fn` over mitata's samples, after calling `fn` for
 * `warmupMs` so that it runs optimised code. Each sample is the mean of a
 * batch of calls sized to take about `sampleMs`, so that every case gets
 * samples of the same length whatever a call costs (mitata's own rule
 * batches only calls under 65 µs, which puts cases near that edge in one
 * mode or the other from run to run) and rounds pool with equal weight.
 * @param {() => unknown} fn a function of no arguments
 * @param {{ warmupMs?: number, minCpuMs?: number, minSamples?: number, sampleMs?: number }} [opts]
 * @returns {Promise<number[]>}
 */
export async function sampleNs (fn, opts = FULL) {
  const { warmupMs = FULL.warmupMs, minCpuMs = FULL.minCpuMs, minSamples = FULL.minSamples, sampleMs = FULL.sampleMs } = opts
  const t0 = performance.now()
  let calls = 0
  while (performance.now() - t0 < warmupMs) { do_not_optimize(fn()); calls++ }
  // Cost of one call, from the second half of the warm-up.
  const t1 = performance.now()
  let pilot = 0
  while (performance.now() - t1 < Math.max(20, warmupMs / 4) || pilot < 2) { do_not_optimize(fn()); pilot++ }
  const perCallMs = (performance.now() - t1) / pilot
  // mitata unrolls batches by 4, so a batch is 1 call or a multiple of 4.
  const want = Math.round(sampleMs / perCallMs)
  const batch = want < 2 ? 1 : Math.min(65536, Math.ceil(want / 4) * 4)
  const s = await measure(fn, {
    min_cpu_time: minCpuMs * 1e6,
    min_samples: minSamples,
    warmup_samples: 1,
    warmup_threshold: Infinity,
    batch_samples: Math.max(batch, 4),
    batch_threshold: batch > 1 ? Infinity : -1
  })
  return s.samples
}

/**
 * A rate figure (units per second) from nanoseconds per call: median and
 * spread over the samples, in the shape of a result row.
 * @param {number[]} ns nanoseconds per call
 * @param {number} [unitsPerCall] units of work one call does (messages, selects)
 */
export function rateFromNs (ns, unitsPerCall = 1) {
  const s = stats(ns.map(t => unitsPerCall * 1e9 / t))
  return { median: s.median, spread: { min: s.min, max: s.max, p25: s.p25, p75: s.p75 }, samples: s.samples }
}
