// INVITE server transaction: RFC 3261 §17.2.1 (Figure 7) with RFC 6026 §7.1
// (Accepted, Timer L), driven by a FakeClock.

import t from 'tap'
import type { SipRequest, SipResponse } from '@sipd/sip-parser'
import type { ServerInviteTransaction } from '../src/transaction-server-invite.js'
import type { ServerTransaction } from '../src/transaction-server.js'
import { Harness, request, requestText, source } from './helpers/transaction-harness.js'
import type { RequestFields } from './helpers/transaction-harness.js'

const INVITE: RequestFields = { branch: 'z9hG4bK-uac-1' }

/** The hop-by-hop ACK a client sends for our non-2xx final (same branch). */
function ackFor (resp: SipResponse, fields: RequestFields = INVITE): SipRequest {
  return request({ ...fields, method: 'ACK', toTag: resp.to.tag })
}

function setup (transport: 'udp' | 'tcp' = 'udp', h = new Harness()): { h: Harness, tx: ServerInviteTransaction, events: string[] } {
  const events: string[] = []
  h.onRequest = tx => {
    tx.handler = {
      onTimeout: () => events.push('timeout'),
      onTransportError: e => events.push('transport-error ' + e.message),
      onTerminated: () => events.push('terminated')
    }
  }
  h.layer.receive(request({ ...INVITE, transport: transport.toUpperCase() }), source(transport))
  return { h, tx: h.serverTxs[0] as ServerInviteTransaction, events }
}

t.test('a new INVITE: 100 Trying at once, then the TU gets the transaction in Proceeding', async t => {
  const { h, tx } = setup()
  t.equal(h.serverTxs.length, 1)
  t.equal(tx.kind, 'server-invite')
  t.equal(tx.state, 'proceeding')
  t.equal(tx.method, 'INVITE')
  t.same(h.sentStatuses(), [100])
  const trying = h.sent[0]!.msg as SipResponse
  t.equal(trying.to.tag, undefined, '100 carries no To tag (§8.2.6.2)')
  t.equal(trying.topVia!.branch, 'z9hG4bK-uac-1')
  t.equal(trying.callId, 'call-1@example.com')
  t.same(h.sent[0]!.target, { transport: 'udp', address: '192.0.2.10', port: 5060, flowId: 'udp/0/192.0.2.10/5060' })
  t.equal(tx.lastStatus, 100)
  t.equal(h.layer.counters.active['server-invite'], 1)
})

t.test('sendTrying: false leaves provisional responses to the TU', async t => {
  const { h, tx } = setup('udp', new Harness({ sendTrying: false }))
  t.equal(h.sent.length, 0)
  h.layer.receive(request(INVITE), source())
  t.equal(h.sent.length, 0, 'a retransmission before any response gets nothing')
  t.equal(tx.respond(180), true)
  t.same(h.sentStatuses(), [180])
})

t.test('Proceeding: 1xx from the TU sent; a retransmitted INVITE gets the latest provisional', async t => {
  const { h, tx } = setup()
  h.layer.receive(request(INVITE), source())
  t.same(h.sentStatuses(), [100, 100], 'retransmission answered with the 100')
  t.equal(tx.respond(180, 'Ringing'), true)
  t.equal(tx.respond(183), true)
  h.layer.receive(request(INVITE), source())
  t.same(h.sentStatuses(), [100, 100, 180, 183, 183])
  t.equal((h.sent[2]!.msg as SipResponse).to.tag, tx.toTag, '180 carries our To tag')
  t.equal((h.sent[3]!.msg as SipResponse).to.tag, tx.toTag, 'the same tag on every response')
  t.equal(h.layer.counters.retransmissionsReceived, 2)
  t.equal(h.layer.counters.retransmissionsSent, 2)
  t.equal(h.serverTxs.length, 1, 'retransmissions do not reach the TU')
  t.equal(tx.state, 'proceeding')
  h.clock.advance(120_000)
  t.equal(tx.state, 'proceeding', 'no timer in Proceeding')
})

t.test('Proceeding: an ACK before any final response is absorbed', async t => {
  const { h, tx } = setup()
  h.layer.receive(request({ ...INVITE, method: 'ACK', toTag: 'x' }), source())
  t.equal(tx.state, 'proceeding')
  t.equal(h.strayAcks.length, 0, 'not passed on')
  t.same(h.sentStatuses(), [100])
})

t.test('Proceeding → Completed on 300-699: Timer G retransmits up to T2, Timer H informs the TU', async t => {
  const { h, tx, events } = setup()
  t.equal(tx.respond(486), true)
  t.equal(tx.state, 'completed')
  h.clock.advance(31_999)
  const finals = h.sent.slice(1)
  t.ok(finals.every(s => s.bytes.equals(finals[0]!.bytes)), 'the same final each time')
  // §17.2.1: G = T1, doubling up to T2.
  t.same(h.sendTimes(1), [0, 500, 1500, 3500, 7500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500])
  t.same(events, [])
  h.clock.advance(1)
  t.equal(tx.state, 'terminated', 'Timer H = 64*T1')
  t.same(events, ['timeout', 'terminated'])
  t.equal(h.layer.counters.timeouts, 1)
  t.equal(h.clock.pending, 0)
  t.equal(tx.respond(500), false, 'nothing is sent after Terminated')
})

t.test('Completed: a retransmitted INVITE gets the final again; TU responses are refused', async t => {
  const { h, tx } = setup()
  tx.respond(404)
  h.layer.receive(request(INVITE), source())
  t.same(h.sentStatuses(), [100, 404, 404])
  t.equal(tx.respond(200), false, 'no 2xx after a non-2xx final')
  t.equal(tx.respond(180), false)
  t.equal(tx.lastStatus, 404)
  t.same(h.sentStatuses(), [100, 404, 404])
})

t.test('Completed → Confirmed on ACK: G and H stop, Timer I = T4 absorbs ACKs', async t => {
  const { h, tx, events } = setup()
  tx.respond(486)
  h.clock.advance(600) // one Timer G retransmission
  const final = h.sent[1]!.msg as SipResponse
  h.layer.receive(ackFor(final), source())
  t.equal(tx.state, 'confirmed')
  t.equal(h.strayAcks.length, 0, 'the ACK for a non-2xx is consumed by the transaction')
  h.layer.receive(ackFor(final), source())
  h.layer.receive(request(INVITE), source())
  t.equal(h.layer.counters.retransmissionsReceived, 2, 'ACK and INVITE retransmissions absorbed in Confirmed')
  const sentBefore = h.sent.length
  h.clock.advance(4999)
  t.equal(h.sent.length, sentBefore, 'no retransmission in Confirmed')
  t.equal(tx.state, 'confirmed')
  h.clock.advance(1)
  t.equal(tx.state, 'terminated', 'Timer I = T4 after the ACK (at 600 ms)')
  t.same(events, ['terminated'])
})

t.test('reliable transport: no Timer G, Timer I is zero; Timer H still applies', async t => {
  {
    const { h, tx, events } = setup('tcp')
    tx.respond(486)
    h.clock.advance(10_000)
    t.same(h.sentStatuses(), [100, 486], 'no retransmission over TCP')
    t.equal(h.sent[1]!.target.flowId, 'tcp/7', 'on the connection the INVITE came in on')
    h.layer.receive(ackFor(h.sent[1]!.msg as SipResponse, { ...INVITE, transport: 'TCP' }), source('tcp'))
    t.equal(tx.state, 'terminated', 'Timer I = 0')
    t.same(events, ['terminated'])
  }
  {
    const { h, tx, events } = setup('tcp')
    tx.respond(486)
    h.clock.advance(32_000)
    t.equal(tx.state, 'terminated')
    t.same(events, ['timeout', 'terminated'])
  }
})

t.test('Proceeding → Accepted on 2xx (RFC 6026): INVITEs absorbed, 2xx from TU sent, ACK to TU, Timer L', async t => {
  const { h, tx, events } = setup()
  h.clock.advance(100)
  t.equal(tx.respond(200, 'OK', { headers: [['Contact', '<sip:bob@192.0.2.1>']] }), true)
  t.equal(tx.state, 'accepted')
  const ok = h.sent[1]!.msg as SipResponse
  t.equal(ok.status, 200)
  t.equal(ok.to.tag, tx.toTag)
  t.equal(ok.header('contact'), '<sip:bob@192.0.2.1>')
  h.clock.advance(5000)
  t.equal(h.sent.length, 2, 'the transaction does not retransmit the 2xx (the TU does)')
  h.layer.receive(request(INVITE), source())
  t.equal(h.sent.length, 2, 'a retransmitted INVITE is absorbed, not answered')
  t.equal(h.serverTxs.length, 1)
  t.equal(tx.respond(200), true, "the TU's 2xx retransmission passes through")
  t.equal(tx.respond(486), false, 'no non-2xx after a 2xx')
  t.equal(tx.respond(180), false, 'no 1xx after a 2xx')
  t.same(h.sentStatuses(), [100, 200, 200])
  // An ACK that matches the transaction (same branch) goes to the TU.
  h.layer.receive(ackFor(ok), source())
  t.equal(h.strayAcks.length, 1)
  t.equal(h.strayAcks[0]!.tx, tx, 'with the transaction it matched')
  t.equal(tx.state, 'accepted', 'the ACK does not end Accepted')
  // An ACK for the 2xx with its own branch (§17.1.1.3) matches nothing.
  h.layer.receive(ackFor(ok, { ...INVITE, branch: 'z9hG4bK-ack-2xx' }), source())
  t.equal(h.strayAcks.length, 2)
  t.equal(h.strayAcks[1]!.tx, undefined)
  h.clock.advance(26_999) // Timer L = 64*T1 from 100 ms
  t.equal(tx.state, 'accepted')
  h.clock.advance(1)
  t.equal(tx.state, 'terminated', 'Timer L fired')
  t.same(events, ['terminated'])
  // After Timer L a retransmitted INVITE is a new request again.
  h.layer.receive(request(INVITE), source())
  t.equal(h.serverTxs.length, 2)
})

t.test('Timer L applies over reliable transports too', async t => {
  const { h, tx } = setup('tcp')
  tx.respond(200)
  h.clock.advance(31_999)
  t.equal(tx.state, 'accepted')
  h.clock.advance(1)
  t.equal(tx.state, 'terminated')
})

t.test('transport errors: Proceeding and Completed terminate, Accepted informs the TU and stays', async t => {
  {
    const { h, tx, events } = setup()
    h.mode = { kind: 'fail' }
    t.equal(tx.respond(180), true, 'handed to the transport')
    t.equal(tx.state, 'terminated')
    t.same(events, ['transport-error send failed (test)', 'terminated'])
  }
  {
    const { h, tx, events } = setup()
    tx.respond(500)
    h.mode = { kind: 'throw' }
    h.clock.advance(500) // Timer G retransmission fails
    t.equal(tx.state, 'terminated')
    t.same(events, ['transport-error send failed (test)', 'terminated'])
    t.equal(h.layer.counters.transportErrors, 1)
  }
  {
    const { h, tx, events } = setup()
    h.mode = { kind: 'fail' }
    tx.respond(200)
    t.equal(tx.state, 'accepted')
    t.same(events, ['transport-error send failed (test)'])
    h.clock.advance(32_000)
    t.same(events, ['transport-error send failed (test)', 'terminated'])
  }
})

t.test('respond validates the status; sendResponse relays prepared bytes and changes state by class', async t => {
  const { h, tx } = setup()
  t.throws(() => tx.respond(99), RangeError)
  t.throws(() => tx.respond(700), RangeError)
  t.throws(() => tx.sendResponse(Buffer.from('x'), 2.5), RangeError)
  const relayed = Buffer.from(requestText({ method: 'OPTIONS' })) // any bytes: the transaction does not parse them
  t.equal(tx.sendResponse(relayed, 183), true)
  t.equal(tx.state, 'proceeding')
  t.ok(h.sent[1]!.bytes.equals(relayed))
  t.equal(tx.sendResponse(relayed, 603, 'callee-tag'), true)
  t.equal(tx.state, 'completed')
  t.equal(tx.responseToTag, 'callee-tag')
})

t.test('a To tag in the request (re-INVITE) is kept; opts.toTag is used for an initial request', async t => {
  const h = new Harness()
  h.layer.receive(request({ ...INVITE, toTag: 'dialog-tag' }), source())
  const reinvite = h.serverTxs[0] as ServerTransaction
  t.equal(reinvite.toTag, 'dialog-tag')
  reinvite.respond(200)
  t.equal((h.sent[1]!.msg as SipResponse).to.tag, 'dialog-tag')
  h.layer.receive(request({ ...INVITE, branch: 'z9hG4bK-other', callId: 'c2' }), source())
  const initial = h.serverTxs[1] as ServerTransaction
  initial.respond(486, undefined, { toTag: 'chosen' })
  t.equal((h.sent[3]!.msg as SipResponse).to.tag, 'chosen')
})

t.test('responses carry received/rport per RFC 3581 and go where §18.2.2 says', async t => {
  const h = new Harness()
  h.layer.receive(request({ ...INVITE, sentBy: 'client.example.com:5070', viaParams: ';rport' }), source('udp', '203.0.113.5', 40_000))
  const trying = h.sent[0]!
  const via = (trying.msg as SipResponse).topVia!
  t.equal(via.received, '203.0.113.5')
  t.equal(via.rport, 40_000)
  t.same({ ...trying.target, flowId: undefined }, { transport: 'udp', address: '203.0.113.5', port: 40_000, flowId: undefined }, 'rport: the source port')

  h.layer.receive(request({ ...INVITE, branch: 'z9hG4bK-2', sentBy: '198.51.100.7:5070' }), source('udp', '198.51.100.7', 5070))
  t.equal((h.sent[1]!.msg as SipResponse).topVia!.received, undefined, 'no received when sent-by is the source')
  t.equal(h.sent[1]!.target.port, 5070)
})

t.test('a relayed 2xx lets go of the request for Timer L; respond() keeps it so the UAS can send its 2xx again', async t => {
  const { h, tx } = setup()
  t.equal(tx.request.method, 'INVITE')
  // A proxy relays the downstream 2xx as bytes.
  const ok = Buffer.from(requestText(INVITE).replace(/^INVITE [^\r]*/, 'SIP/2.0 200 OK'), 'latin1')
  t.equal(tx.sendResponse(ok, 200), true)
  t.equal(tx.state, 'accepted')
  t.throws(() => tx.request, { name: 'TransactionError', code: 'SIP_ERR_TX_RELEASED' }, 'the request is gone (nothing in Accepted answers from it)')
  h.layer.receive(request(INVITE), source())
  t.equal(h.sent.length, 2, 'a retransmitted INVITE is still absorbed, not answered')
  t.equal(tx.sendResponse(ok, 200), true, 'a relayed 2xx retransmission still passes through')
  t.equal(tx.respond(200), false, 'a response of its own cannot be built any more: refused, not thrown (the fuzzer found a proxy answering a 2xx without upstream Vias)')
  h.layer.receive(request({ ...INVITE, method: 'ACK', toTag: 'x' }), source())
  t.equal(h.strayAcks.length, 1, 'the ACK still goes to the TU')
  t.equal(h.strayAcks[0]!.tx, tx)

  const other = setup()
  t.equal(other.tx.respond(200), true)
  t.equal(other.tx.request.method, 'INVITE', 'after respond(2xx) the request is kept')
  t.equal(other.tx.respond(200), true)
  t.same(other.h.sentStatuses(), [100, 200, 200])
})

t.test('Confirmed and Accepted hold no response bytes: nothing is resent from them', async t => {
  const { h, tx } = setup()
  t.equal(tx.respond(486), true)
  h.layer.receive(request(INVITE), source())
  t.same(h.sentStatuses(), [100, 486, 486], 'Completed resends the final for a retransmitted INVITE')
  h.layer.receive(ackFor(h.sent[1]!.msg as SipResponse), source())
  t.equal(tx.state, 'confirmed')
  h.layer.receive(request(INVITE), source())
  t.same(h.sentStatuses(), [100, 486, 486], 'Confirmed absorbs it')
})
