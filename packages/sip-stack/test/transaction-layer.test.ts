// Transaction layer: matching (RFC 3261 §17.1.3, §17.2.3, RFC 2543 fallback),
// CANCEL (§9.2), merged requests (§8.2.2.2), stateless replies, counters.

import t from 'tap'
import { parseMessage } from '@sipd/sip-parser'
import type { SipResponse } from '@sipd/sip-parser'
import { TransactionLayer, DEFAULT_TRANSACTION_LAYER_OPTIONS } from '../src/transaction-layer.js'
import { DEFAULT_TRANSACTION_TIMERS, resolveTransactionTimers } from '../src/transaction-timers.js'
import { InvalidTransactionOptionError, TransactionRequestError } from '../src/transaction-errors.js'
import { hasMagicCookie, newBranch, newTag } from '../src/transaction-ids.js'
import type { ServerInviteTransaction } from '../src/transaction-server-invite.js'
import type { ServerNonInviteTransaction } from '../src/transaction-server-non-invite.js'
import { ClientRecorder, Harness, request, requestText, responseTo, source, target } from './helpers/transaction-harness.js'
import type { RequestFields } from './helpers/transaction-harness.js'
import type { Source } from '../src/transport-types.js'

t.test('§17.2.3: branch, sent-by and method identify a server transaction', async t => {
  // Merged-request detection off: these requests share From tag, Call-ID and CSeq.
  const h = new Harness({ detectMergedRequests: false })
  const base: RequestFields = { method: 'OPTIONS', branch: 'z9hG4bK-same' }
  h.layer.receive(request(base), source())
  h.layer.receive(request(base), source())
  t.equal(h.serverTxs.length, 1, 'a retransmission matches')
  h.layer.receive(request({ ...base, sentBy: '192.0.2.11:5060' }), source())
  t.equal(h.serverTxs.length, 2, 'same branch from another sent-by: a new transaction')
  h.layer.receive(request({ ...base, sentBy: '192.0.2.10' }), source())
  t.equal(h.serverTxs.length, 3, 'sent-by without port differs from one with port')
  h.layer.receive(request({ ...base, method: 'INFO' }), source())
  t.equal(h.serverTxs.length, 4, 'same branch, another method: a new transaction')
  h.layer.receive(request({ ...base, branch: 'z9hG4bK-SAME' }), source())
  t.equal(h.serverTxs.length, 5, 'branches compare byte for byte')
  t.equal(h.layer.counters.created['server-non-invite'], 5)
  t.equal(h.layer.counters.active['server-non-invite'], 5)
  t.equal(h.layer.size, 5)
})

t.test('§17.2.3: transactions sharing a branch keep matching their own retransmissions and ACKs, whichever ends first', async t => {
  const h = new Harness({ detectMergedRequests: false })
  const base: RequestFields = { method: 'OPTIONS', branch: 'z9hG4bK-shared' }
  const variants: RequestFields[] = [base, { ...base, sentBy: '192.0.2.11:5060' }, { ...base, sentBy: '192.0.2.10' }, { ...base, method: 'INFO' }]
  for (const v of variants) h.layer.receive(request(v), source())
  t.equal(h.serverTxs.length, 4)
  for (const v of variants) h.layer.receive(request(v), source())
  t.equal(h.serverTxs.length, 4, 'each retransmission matches its own transaction')
  t.equal(h.layer.counters.retransmissionsReceived, 4)
  // The first one (keyed by the branch alone) ends: the others still match, and the first request starts anew.
  h.serverTxs[0]!.terminate()
  for (const v of variants.slice(1)) h.layer.receive(request(v), source())
  t.equal(h.serverTxs.length, 4, 'no new transaction for the others')
  h.layer.receive(request(base), source())
  t.equal(h.serverTxs.length, 5, 'the ended one\'s request is new again')
  h.layer.receive(request(base), source())
  t.equal(h.serverTxs.length, 5)
  // INVITEs on one branch from two sent-bys: each ACK reaches its own INVITE transaction.
  h.layer.receive(request({ branch: 'z9hG4bK-inv2' }), source())
  h.layer.receive(request({ branch: 'z9hG4bK-inv2', sentBy: '192.0.2.12:5060' }), source())
  const [a, b] = h.serverTxs.slice(-2) as ServerInviteTransaction[]
  a!.respond(486)
  b!.respond(486)
  h.layer.receive(request({ branch: 'z9hG4bK-inv2', sentBy: '192.0.2.12:5060', method: 'ACK', toTag: b!.responseToTag }), source())
  t.same([a!.state, b!.state], ['completed', 'confirmed'])
  h.layer.receive(request({ branch: 'z9hG4bK-inv2', method: 'ACK', toTag: a!.responseToTag }), source())
  t.same([a!.state, b!.state], ['confirmed', 'confirmed'])
  t.equal(h.strayAcks.length, 0)
  h.layer.close()
  t.equal(h.layer.size, 0, 'every transaction left the maps')
})

t.test('§9.2: a CANCEL is its own transaction, matched to its INVITE', async t => {
  const h = new Harness()
  h.layer.receive(request({ branch: 'z9hG4bK-inv' }), source())
  const invite = h.serverTxs[0] as ServerInviteTransaction
  h.layer.receive(request({ method: 'CANCEL', branch: 'z9hG4bK-inv' }), source())
  const cancel = h.serverTxs[1] as ServerNonInviteTransaction
  t.equal(cancel.kind, 'server-non-invite')
  t.equal(cancel.method, 'CANCEL')
  t.equal(cancel.cancelTarget, invite, 'same key with method INVITE')
  t.equal(invite.state, 'proceeding', 'the CANCEL does not change the INVITE transaction by itself')
  // The TU answers both (§9.2).
  cancel.respond(200)
  invite.respond(487)
  t.same(h.sentStatuses(), [100, 200, 487])
  h.layer.receive(request({ method: 'CANCEL', branch: 'z9hG4bK-inv' }), source())
  t.equal(h.serverTxs.length, 2, 'a retransmitted CANCEL is absorbed')
  t.same(h.sentStatuses(), [100, 200, 487, 200], '...and answered with its final')

  h.layer.receive(request({ method: 'CANCEL', branch: 'z9hG4bK-unknown', callId: 'c3' }), source())
  t.equal((h.serverTxs[2] as ServerNonInviteTransaction).cancelTarget, undefined, 'no INVITE: the TU answers 481 or forwards')
  h.layer.receive(request({ method: 'CANCEL', branch: 'z9hG4bK-inv', sentBy: '192.0.2.99:5060', callId: 'c4' }), source())
  t.equal((h.serverTxs[3] as ServerNonInviteTransaction).cancelTarget, undefined, 'another sent-by does not match')
})

t.test('RFC 2543 matching when the branch lacks the magic cookie', async t => {
  // Merged-request detection off: the variants below share From tag, Call-ID and CSeq.
  const h = new Harness({ detectMergedRequests: false })
  const old: RequestFields = { branch: '1234-old', fromTag: 'f1' }
  h.layer.receive(request(old), source())
  const invite = h.serverTxs[0] as ServerInviteTransaction
  t.equal(h.sentStatuses().join(), '100')
  h.layer.receive(request(old), source())
  t.equal(h.serverTxs.length, 1, 'an identical INVITE is a retransmission')
  t.same(h.sentStatuses(), [100, 100])
  // Any difference in Request-URI, From tag, Call-ID, CSeq or top Via: new.
  h.layer.receive(request({ ...old, uri: 'sip:carol@example.com' }), source())
  h.layer.receive(request({ ...old, fromTag: 'f2' }), source())
  h.layer.receive(request({ ...old, callId: 'other@example.com' }), source())
  h.layer.receive(request({ ...old, cseq: 2 }), source())
  h.layer.receive(request({ ...old, sentBy: '192.0.2.10:5062' }), source())
  t.equal(h.serverTxs.length, 6)

  invite.respond(404)
  const final = h.sent.at(-1)!.msg as SipResponse
  // ACK with another To tag than our response's: not for this transaction.
  h.layer.receive(request({ ...old, method: 'ACK', toTag: 'not-ours' }), source())
  t.equal(invite.state, 'completed')
  t.equal(h.strayAcks.length, 1)
  // ACK with our response's To tag (RFC 2543: the ACK carries the INVITE's branch-less Via).
  h.layer.receive(request({ ...old, method: 'ACK', toTag: final.to.tag }), source())
  t.equal(invite.state, 'confirmed', 'matched by Request-URI, From tag, Call-ID, CSeq number, top Via and To tag')
  t.equal(h.strayAcks.length, 1)
})

t.test('RFC 2543: a re-INVITE (To tag known) is ACKed and CANCELled under that tag', async t => {
  const h = new Harness()
  const re: RequestFields = { branch: null, toTag: 'dlg', cseq: 5 }
  h.layer.receive(request(re), source())
  const invite = h.serverTxs[0] as ServerInviteTransaction
  h.layer.receive(request({ ...re, method: 'CANCEL' }), source())
  t.equal((h.serverTxs[1] as ServerNonInviteTransaction).cancelTarget, invite)
  invite.respond(486)
  h.layer.receive(request({ ...re, method: 'ACK' }), source())
  t.equal(invite.state, 'confirmed')
})

t.test('§8.2.2.2: a merged request is answered 482 through its own transaction', async t => {
  const h = new Harness()
  const first: RequestFields = { branch: 'z9hG4bK-path-a', fromTag: 'ft', callId: 'fork@x', cseq: 7 }
  h.layer.receive(request(first), source())
  t.equal(h.serverTxs.length, 1)
  const merged: RequestFields = { ...first, branch: 'z9hG4bK-path-b', sentBy: '192.0.2.77:5060' }
  h.layer.receive(request(merged), source('udp', '192.0.2.77'))
  t.equal(h.serverTxs.length, 1, 'the TU never sees the merged request')
  const loop = h.sent.at(-1)!.msg as SipResponse
  t.equal(loop.status, 482)
  t.equal(loop.reason, 'Loop Detected')
  t.equal(loop.topVia!.branch, 'z9hG4bK-path-b')
  t.equal(h.sent.at(-1)!.target.address, '192.0.2.77')
  t.equal(h.layer.counters.mergedRequests, 1)
  h.layer.receive(request(merged), source('udp', '192.0.2.77'))
  t.same(h.sentStatuses().slice(-2), [482, 482], 'its retransmission gets the 482 again')
  t.equal(h.layer.counters.mergedRequests, 1)

  // Not merged: a To tag (in-dialog), another CSeq, another method.
  h.layer.receive(request({ ...merged, branch: 'z9hG4bK-c', toTag: 'dlg' }), source())
  h.layer.receive(request({ ...merged, branch: 'z9hG4bK-d', cseq: 8 }), source())
  h.layer.receive(request({ ...merged, branch: 'z9hG4bK-e', method: 'CANCEL', cseqMethod: 'CANCEL' }), source())
  t.equal(h.serverTxs.length, 4)

  // Once the first transaction is gone, the same request is new.
  const tx = h.serverTxs[0]!
  tx.respond(486)
  h.layer.receive(request({ ...first, method: 'ACK', toTag: (h.sent.at(-1)!.msg as SipResponse).to.tag }), source())
  h.clock.advance(5000) // Timer I
  t.equal(tx.state, 'terminated')
  h.layer.receive(request({ ...merged, branch: 'z9hG4bK-path-f' }), source())
  t.equal(h.serverTxs.length, 5)
})

t.test('detectMergedRequests: false lets a spiralling request through', async t => {
  const h = new Harness({ detectMergedRequests: false })
  h.layer.receive(request({ branch: 'z9hG4bK-1' }), source())
  h.layer.receive(request({ branch: 'z9hG4bK-2' }), source())
  t.equal(h.serverTxs.length, 2)
  t.equal(h.layer.counters.mergedRequests, 0)
})

t.test('§17.1.3: responses match a client transaction by branch and CSeq method', async t => {
  const h = new Harness()
  const rec = new ClientRecorder()
  const tx = h.layer.createClient(request({ method: 'OPTIONS', branch: 'z9hG4bK-c1' }), target(), rec)
  h.layer.receive(responseTo(request({ method: 'OPTIONS', branch: 'z9hG4bK-c2' }), 200), source())
  h.layer.receive(responseTo(request({ method: 'INFO', branch: 'z9hG4bK-c1' }), 200), source())
  t.equal(h.strayResponses.length, 2, 'other branch or other CSeq method: stray')
  t.equal(h.layer.counters.strayResponses, 2)
  t.same(rec.events, [])
  h.layer.receive(responseTo(tx.request, 200), source())
  t.same(rec.events, ['final 200'])
})

t.test('§17.1.3 / §9.1: an INVITE and its CANCEL share a branch; each gets its own responses, in either order of ending', async t => {
  const h = new Harness()
  const invRec = new ClientRecorder()
  const canRec = new ClientRecorder()
  const inv = h.layer.createClient(request({ method: 'INVITE', branch: 'z9hG4bK-shared' }), target(), invRec)
  const can = h.layer.createClient(request({ method: 'CANCEL', branch: 'z9hG4bK-shared' }), target(), canRec)
  t.equal(h.layer.size, 2)
  t.throws(() => h.layer.createClient(request({ method: 'CANCEL', branch: 'z9hG4bK-shared' }), target(), canRec), TransactionRequestError, 'a second CANCEL on the branch')
  t.throws(() => h.layer.createClient(request({ method: 'INVITE', branch: 'z9hG4bK-shared' }), target(), invRec), TransactionRequestError, 'a second INVITE on the branch')
  h.layer.receive(responseTo(can.request, 200), source())
  h.layer.receive(responseTo(inv.request, 180), source())
  t.same(canRec.events, ['final 200'])
  t.same(invRec.events, ['provisional 180'])
  h.layer.receive(responseTo(request({ method: 'BYE', branch: 'z9hG4bK-shared' }), 200), source())
  t.equal(h.strayResponses.length, 1, 'the branch with another CSeq method is stray')
  // The INVITE ends first: a CANCEL still waiting keeps getting its responses (and the reverse below).
  const inv2 = h.layer.createClient(request({ method: 'INVITE', branch: 'z9hG4bK-two' }), target(), new ClientRecorder())
  const can2Rec = new ClientRecorder()
  const can2 = h.layer.createClient(request({ method: 'CANCEL', branch: 'z9hG4bK-two' }), target(), can2Rec)
  inv2.terminate()
  h.layer.receive(responseTo(can2.request, 200), source())
  t.same(can2Rec.events, ['final 200'])
  // A CANCEL created before any INVITE on its branch, then the INVITE: both found.
  const can3Rec = new ClientRecorder()
  const inv3Rec = new ClientRecorder()
  const can3 = h.layer.createClient(request({ method: 'CANCEL', branch: 'z9hG4bK-three' }), target(), can3Rec)
  const inv3 = h.layer.createClient(request({ method: 'INVITE', branch: 'z9hG4bK-three' }), target(), inv3Rec)
  h.layer.receive(responseTo(inv3.request, 180), source())
  h.layer.receive(responseTo(can3.request, 200), source())
  t.same(inv3Rec.events, ['provisional 180'])
  t.same(can3Rec.events, ['final 200'])
  // A request whose CSeq method differs from its method is matched by the CSeq method (§17.1.3).
  const oddRec = new ClientRecorder()
  h.layer.createClient(Buffer.from(requestText({ method: 'INFO', branch: 'z9hG4bK-odd' })), target(), oddRec, { method: 'INFO', branch: 'z9hG4bK-odd', cseqMethod: 'UPDATE' })
  h.layer.receive(responseTo(request({ method: 'INFO', branch: 'z9hG4bK-odd' }), 200), source())
  t.same(oddRec.events, [], 'CSeq INFO does not match')
  h.layer.receive(responseTo(request({ method: 'UPDATE', branch: 'z9hG4bK-odd' }), 200), source())
  t.same(oddRec.events, ['final 200'])
  h.layer.close()
  t.equal(h.layer.size, 0, 'every transaction left the maps')
})

t.test('final waits (Timers K, M, L) run on the layer\'s FIFOs: in order, never early, and one ended first leaves no timer', async t => {
  const h = new Harness()
  const ks = [0, 1, 2].map(i => {
    const tx = h.layer.createClient(request({ method: 'OPTIONS', branch: `z9hG4bK-k${i}` }), target(), new ClientRecorder())
    h.layer.receive(responseTo(tx.request, 200), source())
    h.clock.advance(1000)
    return tx
  })
  t.same(ks.map(tx => tx.state), ['completed', 'completed', 'completed'])
  h.clock.advance(1999) // 4,999 ms after the first 200: Timer K = T4 = 5 s
  t.same(ks.map(tx => tx.state), ['completed', 'completed', 'completed'], 'none early')
  h.clock.advance(1)
  t.same(ks.map(tx => tx.state), ['terminated', 'completed', 'completed'])
  ks[2]!.terminate()
  h.clock.advance(1100)
  t.same(ks.map(tx => tx.state), ['terminated', 'terminated', 'terminated'])
  t.equal(h.clock.pending, 0, 'no timer once nothing waits')
  // Timer M (client INVITE, Accepted) and Timer L (server INVITE whose 2xx was relayed): 64·T1.
  const inv = h.layer.createClient(request({ method: 'INVITE', branch: 'z9hG4bK-m' }), target(), new ClientRecorder())
  h.layer.receive(responseTo(inv.request, 200, { toTag: 'm' }), source())
  h.onRequest = tx => { tx.sendResponse(responseTo(tx.request, 200, { toTag: 'l' }).raw, 200, 'l') }
  h.layer.receive(request({ method: 'INVITE', branch: 'z9hG4bK-l' }), source())
  const srv = h.serverTxs.at(-1)!
  t.same([inv.state, srv.state], ['accepted', 'accepted'])
  h.clock.advance(31_999)
  t.same([inv.state, srv.state], ['accepted', 'accepted'], 'none early')
  h.clock.advance(1)
  t.same([inv.state, srv.state], ['terminated', 'terminated'])
  t.equal(h.clock.pending, 0)
  // Ended before their waits: the FIFOs stop their timers.
  const inv2 = h.layer.createClient(request({ method: 'INVITE', branch: 'z9hG4bK-m2' }), target(), new ClientRecorder())
  h.layer.receive(responseTo(inv2.request, 200, { toTag: 'm' }), source())
  const k2 = h.layer.createClient(request({ method: 'OPTIONS', branch: 'z9hG4bK-k9' }), target(), new ClientRecorder())
  h.layer.receive(responseTo(k2.request, 200), source())
  inv2.terminate()
  k2.terminate()
  t.equal(h.clock.pending, 0, 'no timer after early ends')
  t.equal(h.layer.size, 0)
})

t.test('createClient accepts bytes and refuses what cannot be a client transaction', async t => {
  const h = new Harness()
  const rec = new ClientRecorder()
  const tx = h.layer.createClient(Buffer.from(requestText({ method: 'REGISTER', branch: 'z9hG4bK-bytes' })), target(), rec)
  t.equal(tx.method, 'REGISTER')
  t.equal(tx.branch, 'z9hG4bK-bytes')
  t.equal(h.layer.counters.created['client-non-invite'], 1)
  t.throws(() => h.layer.createClient(request({ method: 'REGISTER', branch: 'z9hG4bK-bytes' }), target(), rec),
    TransactionRequestError, 'a branch in use')
  t.throws(() => h.layer.createClient(request({ method: 'ACK' }), target(), rec), { code: 'SIP_ERR_TX_BAD_REQUEST' })
  t.throws(() => h.layer.createClient(request({ branch: '1234' }), target(), rec), /z9hG4bK/)
  t.throws(() => h.layer.createClient(request({ branch: null }), target(), rec), TransactionRequestError)
  const resp = responseTo(request(), 200)
  t.throws(() => h.layer.createClient(resp.raw, target(), rec), /needs a request/)
  t.equal(h.layer.size, 1)
})

t.test('malformed messages are dropped and counted', async t => {
  const h = new Harness()
  const noVia = parseMessage('OPTIONS sip:x@example.com SIP/2.0\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@example.com>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n')
  h.layer.receive(noVia, source())
  const noCseq = parseMessage('OPTIONS sip:x@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-x\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@example.com>\r\nCall-ID: c\r\nContent-Length: 0\r\n\r\n')
  h.layer.receive(noCseq, source())
  const respNoBranch = parseMessage('SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@example.com>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n')
  h.layer.receive(respNoBranch, source())
  t.equal(h.layer.counters.malformed, 3)
  t.equal(h.serverTxs.length, 0)
  t.equal(h.sent.length, 0)
})

t.test('replyStateless: same To tag for a retransmission (§8.2.7), received/rport, §18.2.2 target', async t => {
  const h = new Harness()
  const req = request({ method: 'OPTIONS', sentBy: 'phone.example.com', viaParams: ';rport', branch: 'z9hG4bK-sl' })
  const src = source('udp', '203.0.113.9', 33_333)
  h.layer.replyStateless(req, src, 404)
  h.layer.replyStateless(request({ method: 'OPTIONS', sentBy: 'phone.example.com', viaParams: ';rport', branch: 'z9hG4bK-sl' }), src, 404)
  h.layer.replyStateless(request({ method: 'OPTIONS', branch: 'z9hG4bK-other' }), src, 404)
  const [a, b, c] = h.sentMessages() as SipResponse[]
  t.equal(a!.status, 404)
  t.ok(a!.to.tag !== undefined && a!.to.tag.length === 16)
  t.equal(a!.to.tag, b!.to.tag, 'deterministic tag')
  t.not(a!.to.tag, c!.to.tag, 'another request, another tag')
  t.equal(a!.topVia!.received, '203.0.113.9')
  t.equal(a!.topVia!.rport, 33_333)
  t.same(h.sent[0]!.target, { transport: 'udp', address: '203.0.113.9', port: 33_333, flowId: 'udp/0/203.0.113.9/33333' })
  h.layer.replyStateless(req, src, 100)
  t.equal((h.sentMessages().at(-1) as SipResponse).to.tag, undefined, 'no tag on 100')
  h.layer.replyStateless(req, src, 403, 'Nope', { toTag: 'mine', headers: [['Warning', '399 sipd "x"']] })
  const last = h.sentMessages().at(-1) as SipResponse
  t.equal(last.reason, 'Nope')
  t.equal(last.to.tag, 'mine')
  t.equal(last.header('warning'), '399 sipd "x"')
  t.equal(h.serverTxs.length, 0, 'no transaction')
  t.equal(h.layer.size, 0)
  const count = h.sent.length
  t.equal(h.layer.replyStateless(request({ method: 'ACK' }), src, 400), undefined)
  t.equal(h.sent.length, count, 'an ACK is never answered')
})

t.test('responseTarget: UDP sent-by port without rport, TCP flow, maddr name falls back to the source', async t => {
  const h = new Harness()
  t.same(h.layer.responseTarget(request({ sentBy: '192.0.2.10:5070' }), source('udp', '192.0.2.10', 40_000)),
    { transport: 'udp', address: '192.0.2.10', port: 5070, flowId: 'udp/0/192.0.2.10/40000' }, '§18.2.2: the sent-by port')
  t.same(h.layer.responseTarget(request({ transport: 'TCP' }), source('tcp', '192.0.2.10', 40_001)),
    { transport: 'tcp', address: '192.0.2.10', port: 5060, flowId: 'tcp/7' }, 'the connection, else received + sent-by port')
  t.same(h.layer.responseTarget(request({ viaParams: ';maddr=mc.example.com' }), source('udp', '192.0.2.10', 40_002)),
    { transport: 'udp', address: '192.0.2.10', port: 40_002, flowId: 'udp/0/192.0.2.10/40002' })
})

t.test('responseTarget: an maddr address is found in any case and spacing, and only a Via without one skips its parameters', async t => {
  const h = new Harness()
  const src = source('udp', '192.0.2.10', 40_003)
  // §18.2.2: maddr first, with the sent-by port; parameter names are case-insensitive (§7.3.1), SEMI allows spaces (§25.1).
  for (const p of [';maddr=192.0.2.99', '; MAddr=192.0.2.99', ';ttl=1 ;MADDR=192.0.2.99', ';x="a;b" ;mAdDr = 192.0.2.99']) {
    t.same(h.layer.responseTarget(request({ viaParams: p }), src),
      { transport: 'udp', address: '192.0.2.99', port: 5060, flowId: 'udp/0/192.0.2.10/40003' }, p)
  }
  // The same letters elsewhere (host, another parameter's value) only cost the parameter map: the answer is unchanged.
  for (const [p, sentBy] of [[';x=maddr', undefined], [';rport', 'maddr.example.test:5060'], [';received=192.0.2.10', undefined]] as const) {
    const req = request({ viaParams: p, sentBy })
    t.same(h.layer.responseTarget(req, src).address, '192.0.2.10', p)
  }
})

t.test('sendStateless hands bytes to send unchanged', async t => {
  const h = new Harness()
  const bytes = Buffer.from(requestText({ method: 'ACK', branch: 'z9hG4bK-ack' }))
  const result = h.layer.sendStateless(bytes, target())
  t.match(result, { ok: true })
  t.ok(h.sent[0]!.bytes.equals(bytes))
})

t.test('counters follow transactions through their life; close() terminates all', async t => {
  const h = new Harness()
  const rec = new ClientRecorder()
  h.layer.receive(request({ branch: 'z9hG4bK-s1' }), source())
  h.layer.receive(request({ method: 'OPTIONS', branch: 'z9hG4bK-s2' }), source())
  h.layer.createClient(request({ branch: 'z9hG4bK-c1', callId: 'c1' }), target(), rec)
  h.layer.createClient(request({ method: 'BYE', branch: 'z9hG4bK-c2', callId: 'c2' }), target(), rec)
  t.same(h.layer.counters.active, { 'client-invite': 1, 'client-non-invite': 1, 'server-invite': 1, 'server-non-invite': 1 })
  t.equal(h.layer.size, 4)
  h.layer.close()
  t.same(h.layer.counters.active, { 'client-invite': 0, 'client-non-invite': 0, 'server-invite': 0, 'server-non-invite': 0 })
  t.same(h.layer.counters.created, { 'client-invite': 1, 'client-non-invite': 1, 'server-invite': 1, 'server-non-invite': 1 })
  t.equal(h.layer.size, 0)
  t.same(rec.events, ['terminated', 'terminated'])
  t.equal(h.clock.pending, 0, 'no timers left')
})

t.test('options are validated at construction', async t => {
  const send = (): undefined => undefined
  const onRequest = (): void => {}
  t.throws(() => new TransactionLayer({ onRequest } as never), InvalidTransactionOptionError)
  t.throws(() => new TransactionLayer({ send } as never), /onRequest/)
  t.throws(() => new TransactionLayer({ send, onRequest, timers: { t1: 0 } }), /timers\.t1/)
  t.throws(() => new TransactionLayer({ send, onRequest, timers: { t1: 500, t2: 100 } }), /timers\.t2/)
  t.throws(() => new TransactionLayer({ send, onRequest, timers: { t4: 1.5 } }), /timers\.t4/)
  t.throws(() => new TransactionLayer({ send, onRequest, timers: { timerD: -1 } }), /timers\.timerD/)
  const layer = new TransactionLayer({ send, onRequest })
  t.same(layer.timers, { t1: 500, t2: 4000, t4: 5000, timerD: 32_000, timeout: 32_000 })
  t.same(resolveTransactionTimers({ t1: 250 }), { t1: 250, t2: 4000, t4: 5000, timerD: 32_000, timeout: 16_000 })
  t.ok(Object.isFrozen(DEFAULT_TRANSACTION_TIMERS))
  t.ok(Object.isFrozen(DEFAULT_TRANSACTION_LAYER_OPTIONS))
  t.equal(DEFAULT_TRANSACTION_LAYER_OPTIONS.sendTrying, true)
})

t.test('branches and tags: cookie, 64 random bits, no repeats', async t => {
  const seen = new Set<string>()
  const bad: string[] = []
  for (let i = 0; i < 2000; i++) {
    const b = newBranch()
    if (!hasMagicCookie(b) || b.length !== 23) bad.push(b)
    seen.add(b)
    seen.add(newTag())
  }
  t.same(bad, [], 'every branch is z9hG4bK + 16 hex digits')
  t.equal(seen.size, 4000)
  t.notOk(hasMagicCookie('z9hG4bK'), 'the bare cookie is not a branch')
  t.notOk(hasMagicCookie(undefined))
  t.notOk(hasMagicCookie('Z9HG4BK1234'), 'the cookie is case-sensitive')
})

t.test('server transactions from one address and port share one source object (each holds it for Timer J or L)', async t => {
  const h = new Harness()
  const local = { address: '192.0.2.1', port: 5060 }
  // As the UDP transport makes them: a new object and flowId text per datagram, the socket's address shared.
  const from = (address: string, port: number): Source => ({ transport: 'udp', address, port, local, flowId: ['udp/0', address, String(port)].join('/') })
  h.layer.receive(request({ method: 'INVITE', branch: 'z9hG4bK-s1', callId: 's1' }), from('192.0.2.10', 5060))
  h.layer.receive(request({ method: 'INVITE', branch: 'z9hG4bK-s2', callId: 's2' }), from('192.0.2.10', 5060))
  h.layer.receive(request({ method: 'BYE', branch: 'z9hG4bK-s3', callId: 's3' }), from('192.0.2.10', 5060))
  h.layer.receive(request({ method: 'INVITE', branch: 'z9hG4bK-s4', callId: 's4' }), from('192.0.2.10', 5062))
  h.layer.receive(request({ method: 'INVITE', branch: 'z9hG4bK-s5', callId: 's5' }), { ...from('192.0.2.10', 5062), local: { address: '192.0.2.1', port: 5060 } })
  const [a, b, c, d, e] = h.serverTxs
  t.equal(h.serverTxs.length, 5)
  t.equal(b!.source, a!.source, 'the second INVITE holds the first one\'s source')
  t.equal(c!.source, a!.source, 'so does the BYE')
  t.not(d!.source, a!.source, 'another port: its own source')
  t.same(d!.source, { transport: 'udp', address: '192.0.2.10', port: 5062, local, flowId: 'udp/0/192.0.2.10/5062' })
  t.not(e!.source, d!.source, 'another local socket: its own source')
})
