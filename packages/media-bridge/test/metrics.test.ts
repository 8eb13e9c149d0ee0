import t from 'tap'
import { Registry } from 'prom-client'
import { Dispatcher } from '../src/dispatcher.js'
import { InvalidArgumentError } from '../src/errors.js'
import { createMediaMetrics } from '../src/metrics.js'
import { Prober } from '../src/prober.js'
import type { OptionsOutcome } from '../src/prober.js'
import { FakeClock } from './helpers/fake-clock.js'

const A = 'sip:127.0.0.3:5060'
const B = 'sip:127.0.0.4:5060'
const C = 'sip:127.0.0.5:5060'

/** Value of one sample line `name{labels} value` in the text exposition, or undefined. */
function sample (text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue
    const close = line.lastIndexOf('}')
    const body = line.slice(name.length + 1, close)
    const got: Record<string, string> = {}
    for (const pair of body.split('",')) {
      const eq = pair.indexOf('=')
      got[pair.slice(0, eq)] = pair.slice(eq + 2).replace(/"$/, '')
    }
    if (Object.keys(labels).every((k) => got[k] === labels[k]) && Object.keys(got).length === Object.keys(labels).length) {
      return Number(line.slice(close + 2))
    }
  }
  return undefined
}

t.test('metrics text contains every series with the right values', async (t) => {
  const clock = new FakeClock()
  const registry = new Registry()
  const dispatcher = new Dispatcher([
    { id: 1, algorithm: 'round-robin', nodes: [{ uri: A }, { uri: B }, { uri: C }] },
    { id: 'moh', algorithm: 'hash-from', nodes: [{ uri: C }] }
  ], { clock })
  createMediaMetrics({ registry, dispatcher })

  for (let i = 0; i < 9; i++) dispatcher.select(1)
  dispatcher.select('moh', { fromUser: 'alice' })
  dispatcher.select(1, { exclude: new Set([A]) })
  dispatcher.select(1, { exclude: new Set([A, B]) })
  dispatcher.callStarted(A, 'c1')
  dispatcher.callStarted(A, 'c2')
  dispatcher.callStarted(C, 'c3')
  dispatcher.setAdminState(B, 'draining')
  dispatcher.reportFailure(C)

  const answers = new Map<string, OptionsOutcome>([[A, { status: 200 }], [B, { status: 200 }], [C, { error: 'timeout' }]])
  const prober = new Prober(dispatcher, async (uri) => await new Promise((resolve) => {
    clock.setTimeout(() => resolve(answers.get(uri) as OptionsOutcome), 3)
  }), { clock, timeoutMs: 100 })
  prober.start()
  await clock.advance(10)
  prober.stop()

  const text = await registry.metrics()
  for (const name of ['sipd_media_node_state', 'sipd_media_node_active_calls', 'sipd_media_selections_total',
    'sipd_media_failovers_total', 'sipd_media_probe_latency_seconds']) {
    t.match(text, `# TYPE ${name} `, `${name} is exposed`)
  }
  t.equal(sample(text, 'sipd_media_selections_total', { set: '1', algorithm: 'round-robin' }), 11)
  t.equal(sample(text, 'sipd_media_selections_total', { set: 'moh', algorithm: 'hash-from' }), 1)
  t.equal(sample(text, 'sipd_media_failovers_total', { set: '1' }), 2)
  t.equal(sample(text, 'sipd_media_node_active_calls', { node: A }), 2)
  t.equal(sample(text, 'sipd_media_node_active_calls', { node: B }), 0)
  t.equal(sample(text, 'sipd_media_node_active_calls', { node: C }), 1)
  t.equal(sample(text, 'sipd_media_node_state', { set: '1', node: A, state: 'active' }), 1)
  t.equal(sample(text, 'sipd_media_node_state', { set: '1', node: A, state: 'inactive' }), 0)
  t.equal(sample(text, 'sipd_media_node_state', { set: '1', node: B, state: 'draining' }), 1, 'admin state shown over health')
  t.equal(sample(text, 'sipd_media_node_state', { set: '1', node: B, state: 'active' }), 0)
  t.equal(sample(text, 'sipd_media_node_state', { set: 'moh', node: C, state: 'inactive' }), 1)
  t.equal(sample(text, 'sipd_media_probe_latency_seconds_count', { node: A }), 1)
  t.equal(sample(text, 'sipd_media_probe_latency_seconds_bucket', { node: A, le: '0.0025' }), 0)
  t.equal(sample(text, 'sipd_media_probe_latency_seconds_bucket', { node: A, le: '0.005' }), 1, '3 ms probe')
  t.equal(sample(text, 'sipd_media_probe_latency_seconds_count', { node: C }), undefined, 'timeouts are not latencies')

  // Gauges follow reloads: a removed node with calls stays in active_calls only.
  dispatcher.reload([{ id: 1, algorithm: 'weighted', nodes: [{ uri: B }, { uri: C }] }])
  dispatcher.setAdminState(B, 'enabled')
  t.equal(dispatcher.select(1)?.uri, B)
  const after = await registry.metrics()
  t.equal(sample(after, 'sipd_media_node_active_calls', { node: A }), 2, 'retired node still counted')
  t.equal(sample(after, 'sipd_media_node_state', { set: '1', node: A, state: 'active' }), undefined)
  t.equal(sample(after, 'sipd_media_node_state', { set: 'moh', node: C, state: 'inactive' }), undefined, 'removed set gone')
  t.equal(sample(after, 'sipd_media_selections_total', { set: '1', algorithm: 'weighted' }), 1, 'rebound on reload')
})

t.test('detach stops counting; bad options throw', async (t) => {
  const registry = new Registry()
  const dispatcher = new Dispatcher([{ id: 1, algorithm: 'round-robin', nodes: [{ uri: A }] }])
  const metrics = createMediaMetrics({ registry, dispatcher })
  dispatcher.select(1)
  metrics.detach()
  dispatcher.select(1)
  t.equal(sample(await registry.metrics(), 'sipd_media_selections_total', { set: '1', algorithm: 'round-robin' }), 1)
  t.throws(() => createMediaMetrics({ registry: new Registry(), dispatcher, probeLatencyBuckets: [] }), InvalidArgumentError)
  t.throws(() => createMediaMetrics({ registry: {} as Registry, dispatcher }), { code: 'MEDIA_ERR_INVALID_ARGUMENT', option: 'registry' })
})
