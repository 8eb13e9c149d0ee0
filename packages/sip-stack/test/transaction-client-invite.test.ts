// INVITE client transaction: RFC 3261 §17.1.1 (Figure 5) with RFC 6026 §7.2
// (Accepted, Timer M), driven by a FakeClock.

import t from 'tap'
import type { SipRequest } from '@sipd/sip-parser'
import { ClientInviteTransaction, buildAck, buildCancel } from '../src/transaction-client-invite.js'
import { ClientRecorder, Harness, flushMicrotasks, request, responseTo, source, target } from './helpers/transaction-harness.js'

function start (transport: 'udp' | 'tcp' = 'udp', fields = {}): { h: Harness, rec: ClientRecorder, tx: ClientInviteTransaction, invite: SipRequest } {
  const h = new Harness()
  const rec = new ClientRecorder()
  const invite = request({ branch: 'z9hG4bK-inv-1', routes: ['<sip:p1.example.net;lr>', '<sip:p2.example.net;lr>'], ...fields })
  const tx = h.layer.createClient(invite, target(transport), rec) as ClientInviteTransaction
  return { h, rec, tx, invite }
}

t.test('Calling: sent at once; Timer A doubles from T1 without cap; Timer B times out at 64*T1', async t => {
  const { h, rec, tx } = start()
  t.equal(tx.kind, 'client-invite')
  t.equal(tx.state, 'calling')
  t.equal(tx.reliable, false)
  t.same(h.sendTimes(), [0], 'INVITE sent on creation')
  h.clock.advance(31_999)
  // Timer A: 500, 1000, 2000, 4000, 8000, 16000 ms apart (§17.1.1.2), no T2 cap.
  t.same(h.sendTimes(), [0, 500, 1500, 3500, 7500, 15_500, 31_500])
  t.ok(h.sentMethods().every(m => m === 'INVITE'))
  t.ok(h.sent.every(s => s.bytes.equals(h.sent[0]!.bytes)), 'retransmissions are the same bytes')
  t.equal(h.layer.counters.retransmissionsSent, 6)
  t.equal(tx.state, 'calling')
  t.same(rec.events, [])
  h.clock.advance(1)
  t.equal(tx.state, 'terminated', 'Timer B = 64*T1 = 32 s')
  t.same(rec.events, ['timeout', 'terminated'])
  t.equal(h.layer.counters.timeouts, 1)
  h.clock.advance(100_000)
  t.equal(h.sent.length, 7, 'no retransmission after Terminated')
  t.equal(h.layer.size, 0)
  t.equal(h.clock.pending, 0, 'no timer left behind')
})

t.test('reliable transport: no Timer A, Timer B still times out', async t => {
  const { h, rec, tx } = start('tcp')
  t.equal(tx.reliable, true)
  h.clock.advance(31_999)
  t.equal(h.sent.length, 1, 'no retransmission over TCP')
  h.clock.advance(1)
  t.same(rec.events, ['timeout', 'terminated'])
})

t.test('T1 and T2 come from the layer config: Timer A and B scale with T1', async t => {
  const h = new Harness({ timers: { t1: 100, t2: 400 } })
  const rec = new ClientRecorder()
  h.layer.createClient(request(), target(), rec)
  h.clock.advance(6399)
  t.same(h.sendTimes(), [0, 100, 300, 700, 1500, 3100, 6300], 'A doubles from 100 ms, ignoring T2')
  t.same(rec.events, [])
  h.clock.advance(1)
  t.same(rec.events, ['timeout', 'terminated'], 'B = 64 * 100 ms')
})

t.test('Calling → Proceeding on 1xx: retransmissions stop, Timer B no longer applies', async t => {
  const { h, rec, tx, invite } = start()
  h.clock.advance(600) // one retransmission
  h.layer.receive(responseTo(invite, 100), source())
  t.equal(tx.state, 'proceeding')
  t.equal(tx.receivedProvisional, true)
  h.layer.receive(responseTo(invite, 180, { toTag: 'b1' }), source())
  h.layer.receive(responseTo(invite, 183, { toTag: 'b1' }), source())
  t.same(rec.events, ['provisional 100', 'provisional 180', 'provisional 183'])
  h.clock.advance(120_000)
  t.equal(h.sent.length, 2, 'no retransmission in Proceeding')
  t.equal(tx.state, 'proceeding', 'Timer B fires only in Calling; the TU (Timer C) ends Proceeding')
  t.equal(h.clock.pending, 0)
  tx.terminate()
  t.equal(tx.state, 'terminated')
  t.same(rec.events.slice(-1), ['terminated'])
  t.equal(h.layer.counters.active['client-invite'], 0)
})

for (const from of ['calling', 'proceeding'] as const) {
  t.test(`${from} → Completed on 300-699: ACK per §17.1.1.3, final to TU, Timer D`, async t => {
    const { h, rec, tx, invite } = start()
    if (from === 'proceeding') h.layer.receive(responseTo(invite, 180, { toTag: 'b1' }), source())
    const busy = responseTo(invite, 486, { toTag: 'callee-7' })
    h.layer.receive(busy, source())
    t.equal(tx.state, 'completed')
    t.same(rec.events.slice(-1), ['final 486'])
    const ack = h.sent[1]!.msg as SipRequest
    t.equal(ack.method, 'ACK')
    t.equal(ack.uri, invite.uri, 'same Request-URI')
    t.equal(ack.callId, invite.callId, 'same Call-ID')
    t.equal(ack.header('from'), invite.header('from'), 'same From')
    t.equal(ack.header('to'), busy.header('to'), 'To from the response (with its tag)')
    t.equal(ack.to.tag, 'callee-7')
    t.same(ack.cseq, { seq: invite.cseq.seq, method: 'ACK' }, 'CSeq number of the INVITE, method ACK')
    t.equal(ack.via.length, 1, 'a single Via')
    t.equal(ack.topVia!.raw, invite.topVia!.raw, 'equal to the INVITE top Via (same branch)')
    t.same(ack.headers('route'), invite.headers('route'), 'Route header fields of the INVITE')
    t.equal(ack.maxForwards, 70)
    t.equal(ack.contentLength, 0)
    t.same(h.sent[1]!.target, target(), 'to the same next hop')

    // Retransmitted final: the ACK again, nothing to the TU.
    h.clock.advance(10_000)
    h.layer.receive(responseTo(invite, 486, { toTag: 'callee-7' }), source())
    t.equal(h.sent.length, 3)
    t.ok(h.sent[2]!.bytes.equals(h.sent[1]!.bytes), 'the same ACK is resent')
    t.equal(rec.finals.length, 1, 'retransmission not passed to the TU')
    t.equal(h.layer.counters.retransmissionsReceived, 1)
    // 1xx and 2xx after a non-2xx final are absorbed.
    h.layer.receive(responseTo(invite, 180, { toTag: 'callee-7' }), source())
    h.layer.receive(responseTo(invite, 200, { toTag: 'callee-7' }), source())
    t.equal(rec.finals.length, 1)

    h.clock.advance(21_999) // Timer D = 32 s from the final (received at 0)
    t.equal(tx.state, 'completed')
    h.clock.advance(1)
    t.equal(tx.state, 'terminated', 'Timer D fired')
    t.same(rec.events.slice(-1), ['terminated'])
    t.equal(h.layer.size, 0)
    h.layer.receive(responseTo(invite, 486, { toTag: 'callee-7' }), source())
    t.equal(h.strayResponses.length, 1, 'after Terminated a final is stray')
  })
}

t.test('reliable transport: Timer D is zero, Completed ends after the ACK', async t => {
  const { h, rec, tx, invite } = start('tcp')
  h.layer.receive(responseTo(invite, 503, { toTag: 'x' }), source('tcp'))
  t.equal(h.sentMethods().join(), 'INVITE,ACK', 'the ACK is sent even over TCP')
  t.equal(h.sent[1]!.target.flowId, 'tcp/99', 'over the connection the INVITE used')
  t.equal(tx.state, 'terminated')
  t.same(rec.events, ['final 503', 'terminated'])
  t.equal(h.clock.pending, 0)
})

t.test('Timer D is configurable; 0 ends Completed at once over UDP too', async t => {
  const h = new Harness({ timers: { timerD: 0 } })
  const rec = new ClientRecorder()
  const invite = request()
  const tx = h.layer.createClient(invite, target(), rec)
  h.layer.receive(responseTo(invite, 404, { toTag: 'x' }), source())
  t.equal(tx.state, 'terminated')
  t.same(h.sentMethods(), ['INVITE', 'ACK'])
})

for (const from of ['calling', 'proceeding'] as const) {
  t.test(`${from} → Accepted on 2xx (RFC 6026): every 2xx to the TU, no ACK, Timer M`, async t => {
    const { h, rec, tx, invite } = start()
    if (from === 'proceeding') h.layer.receive(responseTo(invite, 180, { toTag: 'b1' }), source())
    h.clock.advance(100)
    h.layer.receive(responseTo(invite, 200, { toTag: 'b1' }), source())
    t.equal(tx.state, 'accepted')
    h.clock.advance(1000)
    t.equal(h.sent.length, 1, 'no retransmission and no ACK from the transaction')
    // Retransmissions of the 2xx and a 2xx from another fork reach the TU.
    h.layer.receive(responseTo(invite, 200, { toTag: 'b1' }), source())
    h.layer.receive(responseTo(invite, 200, { toTag: 'b2' }), source())
    t.same(rec.finals.map(r => r.to.tag), ['b1', 'b1', 'b2'])
    t.equal(h.layer.counters.retransmissionsReceived, 1, 'same To tag: a retransmission')
    // Non-2xx and 1xx in Accepted are absorbed.
    h.layer.receive(responseTo(invite, 180, { toTag: 'b3' }), source())
    h.layer.receive(responseTo(invite, 500, { toTag: 'b3' }), source())
    t.equal(rec.finals.length, 3)
    t.equal(h.sent.length, 1)
    h.clock.advance(30_999) // Timer M = 64*T1 from 100 ms
    t.equal(tx.state, 'accepted')
    h.clock.advance(1)
    t.equal(tx.state, 'terminated', 'Timer M fired')
    t.same(rec.events.slice(-1), ['terminated'])
    h.layer.receive(responseTo(invite, 200, { toTag: 'b1' }), source())
    t.equal(h.strayResponses.length, 1, 'after Timer M a 2xx is stray (the proxy forwards it)')
  })
}

t.test('Timer M applies over reliable transports too', async t => {
  const { h, tx, invite } = start('tcp')
  h.layer.receive(responseTo(invite, 200, { toTag: 'b1' }), source('tcp'))
  t.equal(tx.state, 'accepted')
  h.clock.advance(31_999)
  t.equal(tx.state, 'accepted')
  h.clock.advance(1)
  t.equal(tx.state, 'terminated')
})

t.test('transport error in Calling: synchronous throw, failed result, rejected promise', async t => {
  for (const kind of ['throw', 'fail', 'reject'] as const) {
    const h = new Harness()
    h.mode = { kind }
    const rec = new ClientRecorder()
    const tx = h.layer.createClient(request(), target(), rec)
    if (kind === 'reject') {
      t.equal(tx.state, 'calling', 'an async failure is not known yet')
      await flushMicrotasks()
    }
    t.equal(tx.state, 'terminated', kind)
    t.same(rec.events, ['transport-error', 'terminated'], kind)
    t.match(rec.errors[0], { message: 'send failed (test)', code: 'SIP_ERR_TEST' })
    t.equal(h.layer.counters.transportErrors, 1)
    h.clock.advance(64_000)
    t.equal(h.sent.length, 1, `${kind}: no retransmission after the error`)
    t.equal(h.clock.pending, 0)
  }
})

t.test('transport error on a retransmission (Timer A) and on the ACK in Completed', async t => {
  {
    const { h, rec, tx } = start()
    h.mode = { kind: 'fail' }
    h.clock.advance(500)
    t.equal(tx.state, 'terminated')
    t.same(rec.events, ['transport-error', 'terminated'])
  }
  {
    const { h, rec, tx, invite } = start()
    h.mode = { kind: 'fail' }
    h.layer.receive(responseTo(invite, 486, { toTag: 'x' }), source())
    t.equal(tx.state, 'terminated')
    t.same(rec.events, ['final 486', 'transport-error', 'terminated'], 'the final reaches the TU first')
  }
})

t.test('a send function returning nothing is fire and forget', async t => {
  const h = new Harness()
  h.mode = { kind: 'void' }
  const rec = new ClientRecorder()
  const tx = h.layer.createClient(request(), target('tcp'), rec)
  t.equal(tx.state, 'calling')
  t.equal(tx.target.flowId, undefined, 'no flow learned')
})

t.test('buildCancel and createCancel follow §9.1', async t => {
  const { tx, invite } = start()
  const cancelBytes = tx.createCancel([['Reason', 'SIP;cause=487']])
  const { parseMessage } = await import('@sipd/sip-parser')
  const cancel = parseMessage(cancelBytes) as SipRequest
  t.equal(cancel.method, 'CANCEL')
  t.equal(cancel.uri, invite.uri)
  t.equal(cancel.callId, invite.callId)
  t.equal(cancel.header('from'), invite.header('from'))
  t.equal(cancel.header('to'), invite.header('to'))
  t.same(cancel.cseq, { seq: invite.cseq.seq, method: 'CANCEL' })
  t.equal(cancel.via.length, 1)
  t.equal(cancel.topVia!.raw, invite.topVia!.raw)
  t.same(cancel.headers('route'), invite.headers('route'))
  t.equal(cancel.header('reason'), 'SIP;cause=487')
  t.ok(buildCancel(invite).equals(tx.createCancel()), 'createCancel = buildCancel of the INVITE')
  const ack = buildAck(invite, responseTo(invite, 404, { toTag: 'q' }))
  t.match(ack.toString(), /^ACK sip:bob@example.com SIP\/2.0\r\n/)
})

t.test('the CANCEL runs as its own non-INVITE client transaction on the same branch', async t => {
  const { h, rec, tx, invite } = start()
  h.layer.receive(responseTo(invite, 180, { toTag: 'b1' }), source())
  const cancelRec = new ClientRecorder()
  const cancelTx = h.layer.createClient(tx.createCancel(), tx.target, cancelRec)
  t.equal(cancelTx.kind, 'client-non-invite')
  t.equal(cancelTx.branch, tx.branch)
  h.layer.receive(responseTo(cancelTx.request, 200), source())
  t.same(cancelRec.events, ['final 200'], 'the CANCEL 200 goes to the CANCEL transaction')
  h.layer.receive(responseTo(invite, 487, { toTag: 'b1' }), source())
  t.same(rec.events.slice(-1), ['final 487'], 'the 487 goes to the INVITE transaction')
  t.equal(tx.state, 'completed')
})

t.test('Accepted lets go of the request (nothing is sent for Timer M); every 2xx still reaches the TU', async t => {
  const { h, rec, tx } = start()
  t.equal(tx.request.method, 'INVITE')
  const sent = h.sent[0]!.msg as SipRequest
  h.layer.receive(responseTo(sent, 200, { toTag: 'uas-1' }), source())
  t.equal(tx.state, 'accepted')
  t.throws(() => tx.request, { name: 'TransactionError', code: 'SIP_ERR_TX_RELEASED' })
  h.layer.receive(responseTo(sent, 200, { toTag: 'uas-1' }), source())
  h.layer.receive(responseTo(sent, 200, { toTag: 'uas-2' }), source())
  t.same(rec.events.filter(e => e.startsWith('final')).length, 3, 'the first 2xx, its retransmission and another fork\'s 2xx')
  t.equal(h.layer.counters.retransmissionsReceived, 1)
  h.clock.advance(32_000)
  t.equal(tx.state, 'terminated', 'Timer M')
})
