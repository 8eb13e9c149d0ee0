import t from 'tap'
import { Dispatcher } from '../src/dispatcher.js'
import type { HealthState } from '../src/dispatcher.js'
import { InvalidArgumentError } from '../src/errors.js'
import { Prober } from '../src/prober.js'
import type { OptionsOutcome, ProberOptions } from '../src/prober.js'
import { FakeClock, flush } from './helpers/fake-clock.js'

const A = 'sip:127.0.0.3:5060'
const B = 'sip:127.0.0.4:5060'

type Behaviour = 'ok' | 'down' | 503 | 404 | 'hang' | 'reject' | { delayMs: number, status: number }

/**
 * The SIP side of probing, scripted per node: what OPTIONS to each node
 * answers. Stands in for the proxy's OPTIONS transactions, which are wired in
 * by the proxy package.
 */
function scripted (clock: FakeClock) {
  const behaviour = new Map<string, Behaviour>()
  const sent: string[] = []
  const send = async (uri: string, timeoutMs: number): Promise<OptionsOutcome> => {
    sent.push(uri)
    const b = behaviour.get(uri) ?? 'ok'
    if (b === 'ok') return { status: 200 }
    if (b === 'down') return { error: 'timeout' }
    if (b === 'hang') return await new Promise<OptionsOutcome>(() => {})
    if (b === 'reject') throw new Error('socket closed')
    if (typeof b === 'number') return { status: b }
    return await new Promise<OptionsOutcome>((resolve) => {
      clock.setTimeout(() => resolve({ status: b.status }), Math.min(b.delayMs, timeoutMs))
    })
  }
  return { behaviour, sent, send }
}

function setup (options: Partial<ProberOptions> = {}) {
  const clock = new FakeClock()
  const transitions: string[] = []
  const dispatcher = new Dispatcher([{ id: 1, algorithm: 'round-robin', nodes: [{ uri: A }, { uri: B }] }], {
    clock,
    onHealthChange: (uri, from, to, reason) => { if (uri === B) transitions.push(`${from}>${to}:${reason}`) }
  })
  const script = scripted(clock)
  const prober = new Prober(dispatcher, script.send, {
    clock, intervalMs: 1000, timeoutMs: 200, failureThreshold: 3, successThreshold: 2, ...options
  })
  return { clock, dispatcher, prober, transitions, ...script }
}

t.test('thresholds: active → inactive after N failures → probing → active after M successes', async (t) => {
  const { clock, dispatcher, prober, behaviour, transitions } = setup()
  const healthOfB: HealthState[] = []
  behaviour.set(B, 'down')
  prober.start()
  await flush()
  healthOfB.push(dispatcher.nodeHealth(B) as HealthState) // round 1 at start(): 1 failure
  await clock.advance(1000)
  healthOfB.push(dispatcher.nodeHealth(B) as HealthState) // 2 failures
  t.equal(dispatcher.select(1, { exclude: new Set([A]) })?.uri, B, 'still selectable below the failure threshold')
  await clock.advance(1000)
  healthOfB.push(dispatcher.nodeHealth(B) as HealthState) // 3 failures: inactive
  t.equal(dispatcher.select(1, { exclude: new Set([A]) }), undefined, 'inactive: never selected')
  await clock.advance(1000)
  healthOfB.push(dispatcher.nodeHealth(B) as HealthState) // still down
  behaviour.set(B, 'ok')
  await clock.advance(1000)
  healthOfB.push(dispatcher.nodeHealth(B) as HealthState) // first success: probing
  t.equal(dispatcher.select(1, { exclude: new Set([A]) }), undefined, 'probing: not selected yet')
  await clock.advance(1000)
  healthOfB.push(dispatcher.nodeHealth(B) as HealthState) // second success: active
  t.same(healthOfB, ['active', 'active', 'inactive', 'inactive', 'probing', 'active'])
  t.same(transitions, ['active>inactive:probe', 'inactive>probing:probe', 'probing>active:probe'])
  t.equal(dispatcher.nodeHealth(A), 'active', 'the healthy node never moved')
  prober.stop()
})

t.test('a failure while probing goes straight back to inactive; a single success resets the failure count', async (t) => {
  const { clock, dispatcher, prober, behaviour } = setup({ successThreshold: 3 })
  behaviour.set(B, 'down')
  prober.start()
  await clock.advance(2000)
  t.equal(dispatcher.nodeHealth(B), 'inactive')
  behaviour.set(B, 'ok')
  await clock.advance(1000)
  t.equal(dispatcher.nodeHealth(B), 'probing')
  behaviour.set(B, 'down')
  await clock.advance(1000)
  t.equal(dispatcher.nodeHealth(B), 'inactive', 'relapse')
  behaviour.set(B, 'ok')
  await clock.advance(3000)
  t.equal(dispatcher.nodeHealth(B), 'active', 'three successes in a row')
  behaviour.set(B, 'down')
  await clock.advance(1000)
  behaviour.set(B, 'ok')
  await clock.advance(1000)
  behaviour.set(B, 'down')
  await clock.advance(2000)
  t.equal(dispatcher.nodeHealth(B), 'active', 'failures were not consecutive')
  prober.stop()
})

t.test('which responses count as alive: any by default, downStatusCodes configurable', async (t) => {
  {
    const { dispatcher, prober, behaviour } = setup({ failureThreshold: 1 })
    behaviour.set(A, 404)
    behaviour.set(B, 503)
    await prober.probeAll()
    t.equal(dispatcher.nodeHealth(A), 'active', '404 to OPTIONS: the node answers SIP')
    t.equal(dispatcher.nodeHealth(B), 'active', '503 counts as alive by default')
  }
  {
    const { dispatcher, prober, behaviour } = setup({ failureThreshold: 1, downStatusCodes: [503] })
    behaviour.set(A, 404)
    behaviour.set(B, 503)
    await prober.probeAll()
    t.equal(dispatcher.nodeHealth(A), 'active')
    t.equal(dispatcher.nodeHealth(B), 'inactive', '503 configured as down')
    const last = dispatcher.snapshot().sets[0]?.nodes[1]?.lastProbe
    t.match(last, { alive: false, status: 503 })
  }
})

t.test('a node marked down by a failed call recovers through probing', async (t) => {
  const { clock, dispatcher, prober, transitions } = setup()
  prober.start()
  await flush()
  dispatcher.reportFailure(B)
  t.equal(dispatcher.nodeHealth(B), 'inactive', 'at once, not at the next probe')
  await clock.advance(1000)
  t.equal(dispatcher.nodeHealth(B), 'probing')
  await clock.advance(1000)
  t.equal(dispatcher.nodeHealth(B), 'active')
  t.same(transitions, ['active>inactive:call-failure', 'inactive>probing:probe', 'probing>active:probe'])
  prober.stop()
})

t.test('a call failure while probing restarts the success count', async (t) => {
  const { clock, dispatcher, prober } = setup({ successThreshold: 3 })
  prober.start()
  await flush()
  dispatcher.reportFailure(B)
  await clock.advance(2000)
  t.equal(dispatcher.nodeHealth(B), 'probing', 'two successes of three')
  dispatcher.reportFailure(B)
  await clock.advance(2000)
  t.equal(dispatcher.nodeHealth(B), 'probing', 'two successes since the failure are not enough')
  await clock.advance(1000)
  t.equal(dispatcher.nodeHealth(B), 'active')
  prober.stop()
})

t.test('probe latency and outcome are recorded', async (t) => {
  const { clock, dispatcher, prober, behaviour } = setup()
  behaviour.set(A, { delayMs: 15, status: 200 })
  behaviour.set(B, 'down')
  prober.start()
  await clock.advance(20)
  const [a, b] = dispatcher.snapshot().sets[0]?.nodes ?? []
  t.match(a?.lastProbe, { alive: true, status: 200, latencyMs: 15 })
  t.match(b?.lastProbe, { alive: false, error: 'timeout' })
  prober.stop()
})

t.test('a probe that never settles times out on the prober\'s own deadline; no overlapping probes', async (t) => {
  const { clock, dispatcher, prober, behaviour, sent } = setup({ intervalMs: 100, timeoutMs: 250, failureThreshold: 1 })
  behaviour.set(B, 'hang')
  prober.start()
  await clock.advance(200)
  t.equal(sent.filter((u) => u === B).length, 1, 'B still in flight: rounds at 100 and 200 skip it')
  t.equal(sent.filter((u) => u === A).length, 3, 'A probed every round')
  await clock.advance(60)
  t.equal(dispatcher.nodeHealth(B), 'inactive', 'timed out after timeoutMs')
  t.match(dispatcher.snapshot().sets[0]?.nodes[1]?.lastProbe, { error: 'timeout', latencyMs: 250 })
  await clock.advance(50)
  t.equal(sent.filter((u) => u === B).length, 2, 'probed again in the next round')
  prober.stop()
})

t.test('a rejected sendOptions counts as a transport failure', async (t) => {
  const errors: string[] = []
  const { dispatcher, prober, behaviour } = setup({ failureThreshold: 1, onError: (uri, err) => errors.push(`${uri}: ${(err as Error).message}`) })
  behaviour.set(B, 'reject')
  await prober.probeAll()
  t.equal(dispatcher.nodeHealth(B), 'inactive')
  t.match(dispatcher.snapshot().sets[0]?.nodes[1]?.lastProbe, { error: 'transport' })
  t.same(errors, [`${B}: socket closed`])
  const syncErrors: unknown[] = []
  const throwing = new Prober(dispatcher, () => { throw new Error('bad uri') }, { failureThreshold: 1, onError: (_uri, err) => syncErrors.push(err) })
  await throwing.probeAll()
  t.equal(dispatcher.nodeHealth(A), 'inactive', 'a synchronous throw is a transport failure too')
  t.match(syncErrors, [{ message: 'bad uri' }, { message: 'bad uri' }])
})

t.test('stop() leaves no timers and ignores late outcomes; start() again resumes', async (t) => {
  const { clock, dispatcher, prober, behaviour, sent } = setup()
  behaviour.set(B, { delayMs: 150, status: 200 })
  dispatcher.reportFailure(B)
  prober.start()
  t.equal(prober.running, true)
  await clock.advance(10)
  t.ok(clock.pending > 0, 'round timer and probe deadline pending')
  prober.stop()
  t.equal(prober.running, false)
  // The scripted 150 ms answer is a timer of the fake SIP side, not of the prober.
  t.equal(clock.pending, 1, 'only the fake SIP answer is left')
  await clock.advance(5000)
  t.equal(clock.pending, 0, 'nothing rescheduled after stop')
  t.equal(dispatcher.nodeHealth(B), 'inactive', 'the answer that arrived after stop() was ignored')
  const probes = sent.length
  prober.start()
  await clock.advance(400)
  t.equal(sent.length, probes + 2, 'one new round')
  t.equal(dispatcher.nodeHealth(B), 'probing')
  prober.stop()
  await clock.advance(1000)
  t.equal(clock.pending, 0)
})

t.test('nodes added or removed by reload are picked up at the next round', async (t) => {
  const { clock, dispatcher, prober, sent } = setup()
  const C = 'sip:127.0.0.5:5060'
  prober.start()
  await flush()
  dispatcher.reload([{ id: 1, algorithm: 'round-robin', nodes: [{ uri: A }, { uri: C }] }])
  sent.length = 0
  await clock.advance(1000)
  t.same(sent.sort(), [A, C].sort())
  prober.stop()
})

t.test('options are validated', async (t) => {
  const d = new Dispatcher()
  const send = async (): Promise<OptionsOutcome> => ({ status: 200 })
  const bad: Array<[Partial<ProberOptions>, string]> = [
    [{ intervalMs: 0 }, 'intervalMs'],
    [{ timeoutMs: Number.NaN }, 'timeoutMs'],
    [{ failureThreshold: 0 }, 'failureThreshold'],
    [{ successThreshold: 1.5 }, 'successThreshold'],
    [{ downStatusCodes: [99] }, 'downStatusCodes'],
    [{ clock: { now: () => 0 } as never }, 'clock']
  ]
  for (const [options, option] of bad) {
    t.throws(() => new Prober(d, send, options), InvalidArgumentError)
    t.throws(() => new Prober(d, send, options), { code: 'MEDIA_ERR_INVALID_ARGUMENT', option })
  }
})
