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
export const FULL = Object.freeze({ warmupMs: 400, minCpuMs: 600, minSamples: 12 })
export const QUICK = Object.freeze({ warmupMs: 150, minCpuMs: 150, minSamples: 8 })

/**
 * Nanoseconds per call of `fn` over mitata's samples (each sample is the mean
 * of a batch of calls when a call is short), after calling `fn` for
 * `warmupMs` so that it runs optimised code.
 * @param {() => unknown} fn a function of no arguments
 * @param {{ warmupMs?: number, minCpuMs?: number, minSamples?: number }} [opts]
 * @returns {Promise<number[]>}
 */
export async function sampleNs (fn, opts = FULL) {
  const { warmupMs = FULL.warmupMs, minCpuMs = FULL.minCpuMs, minSamples = FULL.minSamples } = opts
  const until = performance.now() + warmupMs
  while (performance.now() < until) do_not_optimize(fn())
  const s = await measure(fn, { min_cpu_time: minCpuMs * 1e6, min_samples: minSamples })
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
