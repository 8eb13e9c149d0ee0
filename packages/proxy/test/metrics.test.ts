import t from 'tap'
import { Registry } from 'prom-client'
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
