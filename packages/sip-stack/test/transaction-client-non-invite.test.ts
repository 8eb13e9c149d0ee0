// Non-INVITE client transaction: RFC 3261 §17.1.2 (Figure 6), driven by a FakeClock.

import t from 'tap'
import { ClientNonInviteTransaction } from '../src/transaction-client-non-invite.js'
import { ClientRecorder, Harness, request, responseTo, source, target } from './helpers/transaction-harness.js'

function start (transport: 'udp' | 'tcp' = 'udp', h = new Harness()): { h: Harness, rec: ClientRecorder, tx: ClientNonInviteTransaction } {
  const rec = new ClientRecorder()
  const req = request({ method: 'OPTIONS', branch: 'z9hG4bK-opt-1' })
  const tx = h.layer.createClient(req, target(transport), rec) as ClientNonInviteTransaction
  return { h, rec, tx }
}

t.test('Trying: Timer E doubles from T1 up to T2; Timer F times out at 64*T1', async t => {
  const { h, rec, tx } = start()
  t.equal(tx.kind, 'client-non-invite')
  t.equal(tx.state, 'trying')
  h.clock.advance(31_999)
  // §17.1.2.2: intervals 500, 1000, 2000, 4000, then T2 = 4000.
  t.same(h.sendTimes(), [0, 500, 1500, 3500, 7500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500])
  t.ok(h.sent.every(s => s.bytes.equals(h.sent[0]!.bytes)))
  t.equal(h.layer.counters.retransmissionsSent, 10)
  t.same(rec.events, [])
  h.clock.advance(1)
  t.equal(tx.state, 'terminated', 'Timer F = 32 s')
  t.same(rec.events, ['timeout', 'terminated'])
  t.equal(h.layer.counters.timeouts, 1)
  h.clock.advance(60_000)
  t.equal(h.sent.length, 11)
  t.equal(h.clock.pending, 0)
})

t.test('Proceeding: Timer E is reset to T2; Timer F still times out', async t => {
  const { h, rec, tx } = start()
  h.clock.advance(600)
  h.layer.receive(responseTo(tx.request, 100), source())
  t.equal(tx.state, 'proceeding')
  h.layer.receive(responseTo(tx.request, 101), source())
  t.same(rec.events, ['provisional 100', 'provisional 101'])
  h.clock.advance(31_399)
  // E running since 500 (interval 1000) fires at 1500, then every T2.
  t.same(h.sendTimes(), [0, 500, 1500, 5500, 9500, 13_500, 17_500, 21_500, 25_500, 29_500])
  h.clock.advance(1)
  t.same(rec.events.slice(2), ['timeout', 'terminated'])
})

t.test('a small T2 caps Timer E early', async t => {
  const { h } = start('udp', new Harness({ timers: { t1: 500, t2: 1000 } }))
  h.clock.advance(5000)
  t.same(h.sendTimes(), [0, 500, 1500, 2500, 3500, 4500])
})

for (const from of ['trying', 'proceeding'] as const) {
  t.test(`${from} → Completed on 200-699: final to TU, Timer K = T4 absorbs retransmissions`, async t => {
    const { h, rec, tx } = start()
    if (from === 'proceeding') h.layer.receive(responseTo(tx.request, 100), source())
    h.layer.receive(responseTo(tx.request, 200, { toTag: 'uas' }), source())
    t.equal(tx.state, 'completed')
    t.same(rec.events.slice(-1), ['final 200'])
    h.clock.advance(2000)
    t.equal(h.sent.length, 1, 'no retransmission in Completed')
    h.layer.receive(responseTo(tx.request, 200, { toTag: 'uas' }), source())
    h.layer.receive(responseTo(tx.request, 100), source())
    t.equal(rec.finals.length, 1, 'retransmitted final absorbed')
    t.equal(h.layer.counters.retransmissionsReceived, 1)
    h.clock.advance(2999)
    t.equal(tx.state, 'completed')
    h.clock.advance(1)
    t.equal(tx.state, 'terminated', 'Timer K = T4 = 5 s')
    t.same(rec.events.slice(-1), ['terminated'])
    t.equal(h.clock.pending, 0)
  })
}

t.test('a 4xx-6xx final is handled like a 2xx (no ACK for non-INVITE)', async t => {
  const { h, rec, tx } = start()
  h.layer.receive(responseTo(tx.request, 404, { toTag: 'uas' }), source())
  t.equal(tx.state, 'completed')
  t.same(rec.events, ['final 404'])
  t.equal(h.sent.length, 1)
})

t.test('reliable transport: no Timer E, Timer K is zero', async t => {
  const { h, rec, tx } = start('tcp')
  h.clock.advance(20_000)
  t.equal(h.sent.length, 1, 'no retransmission over TCP')
  h.layer.receive(responseTo(tx.request, 200, { toTag: 'uas' }), source('tcp'))
  t.equal(tx.state, 'terminated')
  t.same(rec.events, ['final 200', 'terminated'])
  t.equal(h.layer.size, 0)
})

t.test('reliable transport: Timer F still times out', async t => {
  const { h, rec } = start('tcp')
  h.clock.advance(32_000)
  t.same(rec.events, ['timeout', 'terminated'])
})

t.test('transport error in Trying and in Proceeding (on a Timer E retransmission)', async t => {
  {
    const h = new Harness()
    h.mode = { kind: 'throw' }
    const { rec, tx } = start('udp', h)
    t.equal(tx.state, 'terminated')
    t.same(rec.events, ['transport-error', 'terminated'])
  }
  {
    const { h, rec, tx } = start()
    h.layer.receive(responseTo(tx.request, 100), source())
    h.mode = { kind: 'fail' }
    h.clock.advance(500)
    t.equal(tx.state, 'terminated')
    t.same(rec.events, ['provisional 100', 'transport-error', 'terminated'])
    t.equal(h.layer.counters.transportErrors, 1)
  }
})

t.test('terminate() abandons the transaction', async t => {
  const { h, rec, tx } = start()
  tx.terminate()
  tx.terminate()
  t.equal(tx.state, 'terminated')
  t.same(rec.events, ['terminated'], 'onTerminated once')
  h.clock.advance(60_000)
  t.equal(h.sent.length, 1)
  h.layer.receive(responseTo(tx.request, 200), source())
  t.equal(h.strayResponses.length, 1)
})
