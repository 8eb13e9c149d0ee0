import t from 'tap'
import type { Test } from 'tap'
import { Dispatcher } from '../src/dispatcher.js'
import type { MediaSetConfig, SelectionAlgorithm } from '../src/dispatcher.js'
import { InvalidArgumentError, MediaBridgeError, MediaConfigError } from '../src/errors.js'
import { FakeClock } from './helpers/fake-clock.js'

const A = 'sip:127.0.0.3:5060'
const B = 'sip:127.0.0.4:5060'
const C = 'sip:127.0.0.5:5060'

function oneSet (algorithm: SelectionAlgorithm, nodes: MediaSetConfig['nodes'], id: number | string = 1): MediaSetConfig[] {
  return [{ id, algorithm, nodes }]
}

function count (d: Dispatcher, setId: number | string, n: number, ctx: (i: number) => { callId?: string, fromUser?: string } = () => ({})): Map<string, number> {
  const counts = new Map<string, number>()
  for (let i = 0; i < n; i++) {
    const node = d.select(setId, ctx(i))
    const key = node?.uri ?? 'none'
    counts.set(key, (counts.get(key) ?? 0) + 1)
  }
  return counts
}

function within (t: Test, actual: number, expected: number, tolerance: number, what: string): void {
  t.ok(Math.abs(actual - expected) <= expected * tolerance, `${what}: ${actual} within ±${tolerance * 100}% of ${expected}`)
}

t.test('round-robin spreads 3,000 selections evenly over 3 nodes', async (t) => {
  const d = new Dispatcher(oneSet('round-robin', [{ uri: A }, { uri: B }, { uri: C }]))
  const counts = count(d, 1, 3000)
  for (const uri of [A, B, C]) within(t, counts.get(uri) ?? 0, 1000, 0.02, uri)
  t.equal(counts.get('none'), undefined, 'never without a node')
  // Strict rotation: three consecutive picks are three different nodes.
  const seq = [d.select(1)?.uri, d.select(1)?.uri, d.select(1)?.uri]
  t.equal(new Set(seq).size, 3)
})

t.test('weighted 2:1:1 within ±5%, interleaved', async (t) => {
  const d = new Dispatcher(oneSet('weighted', [{ uri: A, weight: 2 }, { uri: B, weight: 1 }, { uri: C, weight: 1 }]))
  const counts = count(d, 1, 3000)
  within(t, counts.get(A) ?? 0, 1500, 0.05, 'A (weight 2)')
  within(t, counts.get(B) ?? 0, 750, 0.05, 'B (weight 1)')
  within(t, counts.get(C) ?? 0, 750, 0.05, 'C (weight 1)')
  // Smooth WRR never gives the heavy node a burst: A at most twice in a row.
  let run = 0
  let maxRun = 0
  for (let i = 0; i < 400; i++) {
    run = d.select(1)?.uri === A ? run + 1 : 0
    maxRun = Math.max(maxRun, run)
  }
  t.ok(maxRun <= 2, `longest run of A is ${maxRun}`)
})

t.test('weighted skips an unusable node and spreads over the rest by weight', async (t) => {
  const d = new Dispatcher(oneSet('weighted', [{ uri: A, weight: 3 }, { uri: B, weight: 1 }, { uri: C, weight: 5 }]))
  d.setAdminState(C, 'disabled')
  const counts = count(d, 1, 4000)
  t.equal(counts.get(C), undefined, 'disabled node gets nothing')
  within(t, counts.get(A) ?? 0, 3000, 0.05, 'A')
  within(t, counts.get(B) ?? 0, 1000, 0.05, 'B')
})

t.test('hash-from: each caller always lands on the same node, callers spread', async (t) => {
  const d = new Dispatcher(oneSet('hash-from', [{ uri: A }, { uri: B }, { uri: C }]))
  const first = new Map<string, string | undefined>()
  for (let u = 0; u < 3000; u++) first.set(`user${u}`, d.select(1, { fromUser: `user${u}`, callId: `c${u}` })?.uri)
  let moved = 0
  for (let round = 0; round < 3; round++) {
    for (let u = 0; u < 3000; u++) {
      // A new Call-ID every time: only the From user matters.
      if (d.select(1, { fromUser: `user${u}`, callId: `r${round}-${u}` })?.uri !== first.get(`user${u}`)) moved++
    }
  }
  t.equal(moved, 0, 'no caller changed node')
  const perNode = new Map<string, number>()
  for (const uri of first.values()) perNode.set(uri as string, (perNode.get(uri as string) ?? 0) + 1)
  for (const uri of [A, B, C]) within(t, perNode.get(uri) ?? 0, 1000, 0.1, `callers on ${uri}`)
})

t.test('hash-callid: one Call-ID, one node; no key falls back to round-robin', async (t) => {
  const d = new Dispatcher(oneSet('hash-callid', [{ uri: A }, { uri: B }, { uri: C }]))
  const node = d.select(1, { callId: 'abc@host' })?.uri
  for (let i = 0; i < 20; i++) t.equal(d.select(1, { callId: 'abc@host', fromUser: `u${i}` })?.uri, node)
  const seq = new Set([d.select(1)?.uri, d.select(1)?.uri, d.select(1)?.uri])
  t.equal(seq.size, 3, 'without a Call-ID the set rotates')
  const byFrom = new Dispatcher(oneSet('hash-from', [{ uri: A }, { uri: B }, { uri: C }]))
  const anonymous = new Set<string | undefined>()
  for (let i = 0; i < 20; i++) anonymous.add(byFrom.select(1, { callId: 'anon-1@host', fromUser: '' })?.uri)
  t.equal(anonymous.size, 1, 'hash-from without a From user keys on the Call-ID')
})

t.test('consistent hashing: removing one of N nodes moves about 1/N of the keys, and only its keys', async (t) => {
  for (const weighted of [false, true]) {
    const N = 10
    const uris = Array.from({ length: N }, (_, i) => `sip:10.0.0.${i + 1}:5060`)
    const nodes = uris.map((uri, i) => ({ uri, weight: weighted ? 1 + (i % 3) : 1 }))
    const d = new Dispatcher(oneSet('hash-callid', nodes))
    const keys = 20000
    const before: string[] = []
    for (let k = 0; k < keys; k++) before.push(d.select(1, { callId: `call-${k}@example.net` })?.uri as string)
    const removed = uris[3] as string
    const onRemoved = before.filter((u) => u === removed).length
    d.reload(oneSet('hash-callid', nodes.filter((n) => n.uri !== removed)))
    let moved = 0
    let movedOther = 0
    for (let k = 0; k < keys; k++) {
      const after = d.select(1, { callId: `call-${k}@example.net` })?.uri
      if (after !== before[k]) {
        moved++
        if (before[k] !== removed) movedOther++
      }
    }
    const share = weighted ? (nodes[3] as { weight: number }).weight / nodes.reduce((s, n) => s + n.weight, 0) : 1 / N
    t.equal(movedOther, 0, `${weighted ? 'weighted' : 'uniform'}: keys of other nodes stay`)
    t.equal(moved, onRemoved, 'exactly the removed node\'s keys move')
    within(t, moved, keys * share, 0.15, `${weighted ? 'weighted' : 'uniform'}: moved keys ≈ share of the removed node`)
  }
})

t.test('least-calls balances long calls', async (t) => {
  const d = new Dispatcher(oneSet('least-calls', [{ uri: A }, { uri: B }, { uri: C }]))
  const onA: string[] = []
  for (let i = 0; i < 300; i++) {
    const node = d.select(1) as { uri: string }
    d.callStarted(node.uri, `call-${i}`)
    if (node.uri === A) onA.push(`call-${i}`)
  }
  t.same([d.activeCalls(A), d.activeCalls(B), d.activeCalls(C)], [100, 100, 100], 'equal load')
  // 60 long calls on A end: A takes every new call until it has caught up.
  for (const key of onA.slice(0, 60)) d.callEnded(key)
  t.equal(d.activeCalls(A), 40)
  for (let i = 0; i < 60; i++) {
    const node = d.select(1) as { uri: string }
    t.equal(node.uri, A, `new call ${i} to the least loaded node`)
    d.callStarted(node.uri, `new-${i}`)
  }
  t.equal(new Set(count(d, 1, 3).keys()).size, 3, 'balanced again: ties rotate')
})

t.test('least-calls weighs by weight', async (t) => {
  const d = new Dispatcher(oneSet('least-calls', [{ uri: A, weight: 2 }, { uri: B, weight: 1 }]))
  for (let i = 0; i < 300; i++) d.callStarted((d.select(1) as { uri: string }).uri, `c${i}`)
  t.equal(d.activeCalls(A), 200)
  t.equal(d.activeCalls(B), 100)
})

t.test('priority: lower number preferred, next group only when the whole group is unavailable', async (t) => {
  const D = 'sip:127.0.0.6:5060'
  const d = new Dispatcher(oneSet('priority', [
    { uri: C, priority: 1 },
    { uri: A, priority: 0 },
    { uri: D, priority: 5 },
    { uri: B, priority: 0 }
  ]))
  const counts = count(d, 1, 1000)
  t.equal(counts.get(A), 500, 'group 0 shared round-robin')
  t.equal(counts.get(B), 500)
  d.setAdminState(A, 'disabled')
  t.equal(count(d, 1, 50).get(B), 50, 'one node of group 0 left: it takes everything')
  d.reportFailure(B)
  t.equal(count(d, 1, 50).get(C), 50, 'group 0 down: group 1')
  t.equal(d.select(1, { exclude: new Set([C]) })?.uri, D, 'group 1 tried: group 5')
  d.setHealth(B, 'active')
  t.equal(d.select(1)?.uri, B, 'group 0 back: preferred again')
})

t.test('failover with exclude never repeats a node, for every algorithm', async (t) => {
  const algorithms: SelectionAlgorithm[] = ['round-robin', 'weighted', 'hash-callid', 'hash-from', 'least-calls', 'priority']
  const uris = Array.from({ length: 7 }, (_, i) => `sip:10.1.0.${i + 1}`)
  for (const [algorithm, uniform] of algorithms.flatMap((a) => [[a, true], [a, false]] as const)) {
    const d = new Dispatcher(oneSet(algorithm, uris.map((uri, i) => ({ uri, weight: uniform ? 1 : 1 + i, priority: i % 3 }))))
    d.setAdminState(uris[2] as string, 'draining')
    d.reportFailure(uris[5] as string)
    for (let call = 0; call < 30; call++) {
      const tried = new Set<string>()
      for (;;) {
        const node = d.select(1, { callId: `call${call}`, fromUser: `u${call}`, exclude: tried })
        if (node === undefined) break
        if (tried.has(node.uri)) {
          t.fail(`${algorithm}: ${node.uri} returned twice for call ${call}`)
          break
        }
        tried.add(node.uri)
      }
      if (call === 0) {
        t.equal(tried.size, 5, `${algorithm}: every usable node tried once, then none`)
        t.notOk(tried.has(uris[2] as string), `${algorithm}: draining node never tried`)
        t.notOk(tried.has(uris[5] as string), `${algorithm}: failed node never tried`)
      }
    }
  }
})

t.test('draining: no new calls, active calls keep counting until they end', async (t) => {
  const d = new Dispatcher(oneSet('round-robin', [{ uri: A }, { uri: B }]))
  d.callStarted(A, 'long-1')
  d.callStarted(A, 'long-2')
  t.equal(d.setAdminState(A, 'draining'), true)
  t.equal(count(d, 1, 100).get(B), 100, 'all new calls to B')
  const snapA = () => d.snapshot().sets[0]?.nodes.find((n) => n.uri === A)
  t.equal(snapA()?.adminState, 'draining')
  t.equal(snapA()?.activeCalls, 2, 'draining node reports its calls')
  d.callStarted(A, 'long-1')
  t.equal(d.activeCalls(A), 2, 'callStarted is idempotent')
  t.equal(d.callEnded('long-1'), true)
  t.equal(d.callEnded('long-1'), false, 'callEnded is idempotent')
  t.equal(snapA()?.activeCalls, 1)
  d.callEnded('long-2')
  t.equal(snapA()?.activeCalls, 0, 'drained')
  t.equal(d.setAdminState('sip:unknown', 'enabled'), false, 'unknown node')
  t.throws(() => d.setAdminState(A, 'paused' as never), InvalidArgumentError)
})

t.test('call accounting: a moved call, forgotten calls, bounded tracking', async (t) => {
  const clock = new FakeClock()
  const d = new Dispatcher(oneSet('least-calls', [{ uri: A }, { uri: B }]), { clock, maxCallLifetimeMs: 60_000, maxTrackedCalls: 3 })
  d.callStarted(A, 'x')
  d.callStarted(B, 'x')
  t.equal(d.activeCalls(A), 0, 'failover moved the call off A')
  t.equal(d.activeCalls(B), 1)
  await clock.advance(30_000)
  d.callStarted(A, 'y')
  await clock.advance(31_000)
  t.equal(d.sweepCalls(), 1, 'x outlived maxCallLifetimeMs')
  t.equal(d.activeCalls(B), 0)
  t.equal(d.activeCalls(A), 1, 'y is younger')
  d.callStarted(A, 'p')
  d.callStarted(A, 'q')
  d.callStarted(B, 'r')
  t.equal(d.trackedCalls, 3, 'never more than maxTrackedCalls')
  t.equal(d.callEnded('y'), false, 'the oldest was forgotten')
  t.equal(d.activeCalls(A) + d.activeCalls(B), 3)
  await clock.advance(61_000)
  d.callStarted(A, 'z')
  t.equal(d.trackedCalls, 1, 'callStarted sweeps expired calls')
})

t.test('reportFailure takes a node out at once', async (t) => {
  const changes: string[] = []
  const d = new Dispatcher(oneSet('hash-from', [{ uri: A }, { uri: B }]), {
    onHealthChange: (uri, from, to, reason) => changes.push(`${uri} ${from}>${to} ${reason}`)
  })
  const home = d.select(1, { fromUser: 'alice' })?.uri as string
  t.equal(d.reportFailure(home), true)
  const other = home === A ? B : A
  t.equal(d.select(1, { fromUser: 'alice' })?.uri, other, 'alice goes elsewhere')
  t.same(changes, [`${home} active>inactive call-failure`])
  d.reportFailure(other)
  t.equal(d.select(1, { fromUser: 'alice' }), undefined, 'no usable node')
  t.equal(d.reportFailure('sip:nowhere'), false)
})

t.test('reload keeps runtime state of unchanged URIs and counts calls of removed nodes', async (t) => {
  const d = new Dispatcher([
    { id: 1, algorithm: 'round-robin', nodes: [{ uri: A }, { uri: B }, { uri: C }] },
    { id: 'backup', algorithm: 'priority', nodes: [{ uri: C }] }
  ])
  d.reportFailure(A)
  d.callStarted(A, 'a1')
  d.callStarted(A, 'a2')
  d.callStarted(B, 'b1')
  d.setAdminState(B, 'draining')
  d.recordProbe(A, { at: 1, latencyMs: 3, alive: false, error: 'timeout' })
  const D = 'sip:127.0.0.6:5060'
  d.reload([{ id: 1, algorithm: 'weighted', nodes: [{ uri: A, weight: 5 }, { uri: D }, { uri: C }] }])
  const snap = d.snapshot()
  const set1 = snap.sets[0]
  t.equal(set1?.algorithm, 'weighted')
  const a = set1?.nodes.find((n) => n.uri === A)
  t.equal(a?.health, 'inactive', 'health kept')
  t.equal(a?.activeCalls, 2, 'calls kept')
  t.equal(a?.weight, 5, 'new weight applied')
  t.equal(a?.lastProbe?.error, 'timeout', 'last probe kept')
  t.equal(set1?.nodes.find((n) => n.uri === D)?.health, 'active', 'new node starts active')
  t.same(snap.retired, [{ uri: B, activeCalls: 1 }], 'removed node keeps its call counted')
  t.equal(d.hasSet('backup'), false, 'removed set is gone')
  t.equal(count(d, 1, 60).get(B), undefined, 'removed node gets no calls')
  t.equal(d.callEnded('b1'), true)
  t.same(d.snapshot().retired, [], 'retired node forgotten when its last call ends')
  t.same(d.nodeUris().sort(), [A, C, D].sort())
  // B comes back: fresh state, its old draining state is gone with it.
  d.reload([{ id: 1, algorithm: 'round-robin', nodes: [{ uri: A }, { uri: B }] }])
  t.equal(d.snapshot().sets[0]?.nodes.find((n) => n.uri === B)?.adminState, 'enabled')
})

t.test('admin state: run-time change survives reload unless the configuration changes it', async (t) => {
  const cfg = oneSet('round-robin', [{ uri: A }, { uri: B }])
  const d = new Dispatcher(cfg)
  d.setAdminState(A, 'draining')
  d.reload(cfg)
  t.equal(d.snapshot().sets[0]?.nodes[0]?.adminState, 'draining', 'kept over an unchanged reload')
  d.reload(oneSet('round-robin', [{ uri: A, adminState: 'disabled' }, { uri: B }]))
  t.equal(d.snapshot().sets[0]?.nodes[0]?.adminState, 'disabled', 'configuration changed it')
  d.setAdminState(A, 'enabled')
  d.reload(oneSet('round-robin', [{ uri: A, adminState: 'disabled' }, { uri: B }]))
  t.equal(d.snapshot().sets[0]?.nodes[0]?.adminState, 'enabled', 'same configured value: run-time change kept')
})

t.test('a call selected just before a reload removed its node is still balanced', async (t) => {
  const d = new Dispatcher(oneSet('round-robin', [{ uri: A }]))
  d.reload(oneSet('round-robin', [{ uri: B }]))
  d.callStarted(A, 'late')
  t.same(d.snapshot().retired, [{ uri: A, activeCalls: 1 }])
  d.callEnded('late')
  t.same(d.snapshot().retired, [])
})

t.test('set ids: 1 and "1" name the same set; unknown sets select nothing', async (t) => {
  const d = new Dispatcher([{ id: 1, algorithm: 'round-robin', nodes: [{ uri: A }] }, { id: '7', algorithm: 'round-robin', nodes: [{ uri: B }] }])
  t.equal(d.select('1')?.uri, A)
  t.equal(d.select(7)?.uri, B)
  t.equal(d.select(2), undefined)
  t.equal(d.select(1)?.setId, 1)
})

t.test('invalid configuration throws MediaConfigError naming the place, and changes nothing', async (t) => {
  const d = new Dispatcher(oneSet('round-robin', [{ uri: A }]))
  const bad: Array<[unknown, string]> = [
    [[{ id: 1, algorithm: 'random', nodes: [] }], 'sets[0].algorithm'],
    [[{ id: 1, algorithm: 'weighted', nodes: [{ uri: A, weight: 0 }] }], 'sets[0].nodes[0].weight'],
    [[{ id: 1, algorithm: 'weighted', nodes: [{ uri: '10.0.0.1' }] }], 'sets[0].nodes[0].uri'],
    [[{ id: 1, algorithm: 'weighted', nodes: [{ uri: A }, { uri: A }] }], 'sets[0].nodes[1].uri'],
    [[{ id: 1, algorithm: 'priority', nodes: [{ uri: A, priority: 1.5 }] }], 'sets[0].nodes[0].priority'],
    [[{ id: 1, algorithm: 'priority', nodes: [] }, { id: '1', algorithm: 'priority', nodes: [] }], 'sets[1].id'],
    [[{ id: 1, algorithm: 'priority', nodes: [{ uri: A, attributes: { x: 1 } }] }], 'sets[0].nodes[0].attributes.x'],
    [[{ id: 1, algorithm: 'priority', nodes: [{ uri: A, adminState: 'off' }] }], 'sets[0].nodes[0].adminState'],
    [[{ id: 1, algorithm: 'priority', nodes: [{ uri: A, adminState: 'draining' }] }, { id: 2, algorithm: 'priority', nodes: [{ uri: A }] }], 'sets[1].nodes[0].adminState']
  ]
  for (const [cfg, path] of bad) {
    let caught: unknown
    try {
      d.reload(cfg as MediaSetConfig[])
    } catch (err) {
      caught = err
    }
    t.ok(caught instanceof MediaConfigError && caught instanceof MediaBridgeError, `${path}: MediaConfigError`)
    t.match(caught, { code: 'MEDIA_ERR_INVALID_CONFIG', path }, path)
  }
  t.equal(d.select(1)?.uri, A, 'previous configuration still in force')
  t.throws(() => new Dispatcher([], { maxCallLifetimeMs: 0 }), { code: 'MEDIA_ERR_INVALID_ARGUMENT', option: 'maxCallLifetimeMs' })
  t.throws(() => new Dispatcher([], { initialHealth: 'up' as never }), { code: 'MEDIA_ERR_INVALID_ARGUMENT', option: 'initialHealth' })
})

t.test('a node in two sets shares its live state', async (t) => {
  const d = new Dispatcher([
    { id: 1, algorithm: 'round-robin', nodes: [{ uri: A }, { uri: B }] },
    { id: 2, algorithm: 'least-calls', nodes: [{ uri: A, weight: 3 }, { uri: C }] }
  ])
  d.callStarted(A, 'c1')
  d.reportFailure(A)
  const [s1, s2] = d.snapshot().sets
  t.equal(s1?.nodes[0]?.activeCalls, 1)
  t.equal(s2?.nodes[0]?.activeCalls, 1)
  t.equal(s2?.nodes[0]?.health, 'inactive')
  t.equal(s2?.nodes[0]?.weight, 3, 'weight is per membership')
  t.same(d.nodeUris().sort(), [A, B, C].sort(), 'each URI once')
})
