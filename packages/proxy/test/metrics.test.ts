import t from 'tap'
import { Histogram, Registry } from 'prom-client'
import { SipdMetrics } from '../src/metrics.js'

t.test('REGISTER outcomes and digest failures are counted as plain numbers and exported at scrape time', async t => {
  const m = new SipdMetrics(new Registry(), false)
  m.registerOutcome('challenged')
  m.registerOutcome('ok')
  m.registerOutcome('ok')
  m.authFailure('stale')
  const text = await m.registry.metrics()
  t.match(text, /\nsipd_register_requests_total\{outcome="ok"\} 2\n/)
  t.match(text, /\nsipd_register_requests_total\{outcome="challenged"\} 1\n/)
  t.match(text, /\nsipd_auth_failures_total\{reason="stale"\} 1\n/)
  t.notMatch(text, /outcome="forbidden"/, 'an outcome never seen has no series')
  m.registerOutcome('ok')
  t.match(await m.registry.metrics(), /\nsipd_register_requests_total\{outcome="ok"\} 3\n/, 'a second scrape reads the running total')
})

t.test('the location store latency prints as prom-client\'s own histogram would', async t => {
  const m = new SipdMetrics(new Registry(), false)
  const reference = new Registry()
  const h = new Histogram({ name: 'sipd_location_store_seconds', help: 'Location store operation latency', labelNames: ['op'] as const, buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1], registers: [reference] })
  t.equal(await m.registry.getSingleMetricAsString('sipd_location_store_seconds'), await reference.getSingleMetricAsString('sipd_location_store_seconds'), 'no series before the first observation')
  for (const s of [0.0001, 0.0005, 0.0007, 0.003, 0.003, 0.2, 0.9, 1, 4.5]) {
    m.storeLatency.observe(s)
    h.labels('update').observe(s)
  }
  const ours = await m.registry.getSingleMetricAsString('sipd_location_store_seconds')
  t.equal(ours, await reference.getSingleMetricAsString('sipd_location_store_seconds'))
  t.match(ours, /sipd_location_store_seconds_bucket\{le="0.0005",op="update"\} 2\n/)
  t.match(ours, /sipd_location_store_seconds_count\{op="update"\} 9/)
  t.match(await m.registry.metrics(), /sipd_location_store_seconds_bucket\{le="\+Inf",op="update"\} 9\n/, 'in the full scrape too')
})
