// Media node selection: Dispatcher.select() per algorithm over one set of 100
// nodes, the per-call decision of the proxy. Uses the built package (run
// `npx tsc -b` first). Keys for the hash algorithms cycle through 4,096
// distinct Call-IDs / From users so the measurement is not one cached key.

import { measure, do_not_optimize } from 'mitata'
import { Dispatcher } from '@sipd/media-bridge'
import { rateFromNs } from '../lib/sample.mjs'

const NODES = 100
const KEYS = 4096

function nodes () {
  return Array.from({ length: NODES }, (_, i) => ({
    uri: `sip:10.0.${i >> 8}.${i & 255}:5060;transport=udp`,
    weight: 1 + (i % 4),
    priority: i < 10 ? 0 : 1
  }))
}

function uniformNodes () {
  return nodes().map(({ uri }) => ({ uri }))
}

/**
 * @param {{ quick?: boolean, progress?: (text: string) => void }} [ctx]
 * @returns {Promise<{ name: 'dispatch', rows: Array<{ name: string, unit: string, median: number, spread: object, samples: number, medianNs: number, p75Ns: number }> }>}
 */
export async function run ({ quick = false, progress = () => {} } = {}) {
  const callIds = Array.from({ length: KEYS }, (_, i) => `${(i * 2654435761) >>> 0}-a84b4c76e66710@pc33.example.com`)
  const users = Array.from({ length: KEYS }, (_, i) => `+4930${String(1000000 + i)}`)
  const ctxs = callIds.map((callId, i) => ({ callId, fromUser: users[i] }))

  const cases = [
    { name: 'round-robin', algorithm: 'round-robin', nodes: uniformNodes() },
    { name: 'weighted', algorithm: 'weighted', nodes: nodes() },
    { name: 'hash-callid', algorithm: 'hash-callid', nodes: uniformNodes() },
    { name: 'hash-callid (weighted)', algorithm: 'hash-callid', nodes: nodes() },
    { name: 'hash-from', algorithm: 'hash-from', nodes: uniformNodes() },
    { name: 'least-calls', algorithm: 'least-calls', nodes: nodes(), loaded: true },
    { name: 'priority', algorithm: 'priority', nodes: nodes() },
    { name: 'hash-callid, failover (2 excluded)', algorithm: 'hash-callid', nodes: uniformNodes(), failover: true }
  ]

  const opts = quick
    ? { min_cpu_time: 50 * 1e6, max_samples: 200, warmup_samples: 2 }
    : { min_cpu_time: 500 * 1e6 }

  const rows = []
  for (const c of cases) {
    progress(c.name)
    const d = new Dispatcher([{ id: 1, algorithm: c.algorithm, nodes: c.nodes }])
    if (c.loaded) {
      // Uneven long calls, so least-calls compares real counts.
      for (let i = 0; i < 5000; i++) d.callStarted(c.nodes[(i * 7919) % NODES].uri, `call-${i}`)
    }
    let selectCtxs = ctxs
    if (c.failover) {
      selectCtxs = ctxs.map((ctx) => {
        const first = d.select(1, ctx).uri
        const second = d.select(1, { ...ctx, exclude: new Set([first]) }).uri
        return { ...ctx, exclude: new Set([first, second]) }
      })
    }
    let k = 0
    const stats = await measure(() => {
      do_not_optimize(d.select(1, selectCtxs[k]))
      k = (k + 1) & (KEYS - 1)
    }, opts)
    // Rows in the harness's shape (bench/run.mjs): selects per second, median
    // and spread over mitata's samples, plus the nanoseconds per select.
    rows.push({
      name: `${c.name} (${NODES} nodes)`,
      unit: 'selects/s',
      ...rateFromNs(stats.samples),
      medianNs: Number(stats.p50.toFixed(1)),
      p75Ns: Number(stats.p75.toFixed(1))
    })
  }
  return { name: 'dispatch', rows }
}

// Run directly: `node bench/suites/dispatch.mjs [--quick]`.
if (import.meta.url === `file://${process.argv[1]}`) {
  const result = await run({ quick: process.argv.includes('--quick') })
  console.table(result.rows)
}
