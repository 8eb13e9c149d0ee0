// Non-INVITE server transaction: RFC 3261 §17.2.2 (Figure 8), driven by a FakeClock.

import t from 'tap'
import type { SipResponse } from '@sipd/sip-parser'
import type { ServerNonInviteTransaction } from '../src/transaction-server-non-invite.js'
import { Harness, request, source } from './helpers/transaction-harness.js'
import type { RequestFields } from './helpers/transaction-harness.js'

const REGISTER: RequestFields = { method: 'REGISTER', uri: 'sip:example.com', branch: 'z9hG4bK-reg-1' }

function setup (transport: 'udp' | 'tcp' = 'udp'): { h: Harness, tx: ServerNonInviteTransaction, events: string[] } {
  const h = new Harness()
  const events: string[] = []
  h.onRequest = tx => {
    tx.handler = {
      onTransportError: e => events.push('transport-error ' + e.message),
      onTerminated: () => events.push('terminated')
    }
  }
  h.layer.receive(request({ ...REGISTER, transport: transport.toUpperCase() }), source(transport))
  return { h, tx: h.serverTxs[0] as ServerNonInviteTransaction, events }
}

t.test('Trying: the TU gets the request; retransmissions are absorbed without a response', async t => {
  const { h, tx } = setup()
  t.equal(tx.kind, 'server-non-invite')
  t.equal(tx.state, 'trying')
  t.equal(h.sent.length, 0, 'no automatic 100 for non-INVITE')
  h.layer.receive(request(REGISTER), source())
  h.layer.receive(request(REGISTER), source())
  t.equal(h.sent.length, 0)
  t.equal(h.serverTxs.length, 1)
  t.equal(h.layer.counters.retransmissionsReceived, 2)
  h.clock.advance(100_000)
  t.equal(tx.state, 'trying', 'no timer in Trying')
})

t.test('Trying → Proceeding on 1xx; a retransmission gets the latest provisional', async t => {
  const { h, tx } = setup()
  t.equal(tx.respond(100), true)
  t.equal(tx.state, 'proceeding')
  h.layer.receive(request(REGISTER), source())
  t.same(h.sentStatuses(), [100, 100])
  tx.respond(182)
  h.layer.receive(request(REGISTER), source())
  t.same(h.sentStatuses(), [100, 100, 182, 182])
  t.equal(h.layer.counters.retransmissionsSent, 2)
})

for (const from of ['trying', 'proceeding'] as const) {
  t.test(`${from} → Completed on 200-699: retransmissions get the final, Timer J = 64*T1`, async t => {
    const { h, tx, events } = setup()
    if (from === 'proceeding') tx.respond(100)
    const before = h.sent.length
    t.equal(tx.respond(200, 'OK', { headers: [['Expires', '3600']] }), true)
    t.equal(tx.state, 'completed')
    const ok = h.sent[before]!.msg as SipResponse
    t.equal(ok.status, 200)
    t.equal(ok.header('expires'), '3600')
    t.equal(ok.to.tag, tx.toTag)
    h.clock.advance(10_000)
    t.equal(h.sent.length, before + 1, 'no timer retransmission of non-INVITE finals')
    h.layer.receive(request(REGISTER), source())
    t.equal(h.sent.length, before + 2)
    t.ok(h.sent[before + 1]!.bytes.equals(h.sent[before]!.bytes), 'the same final again')
    t.equal(tx.respond(500), false, 'a second final is refused')
    t.equal(tx.respond(100), false, 'a provisional after the final is refused')
    t.equal(tx.lastStatus, 200)
    h.clock.advance(21_999)
    t.equal(tx.state, 'completed')
    h.clock.advance(1)
    t.equal(tx.state, 'terminated', 'Timer J = 32 s')
    t.same(events, ['terminated'])
    t.equal(h.layer.size, 0)
    h.layer.receive(request(REGISTER), source())
    t.equal(h.serverTxs.length, 2, 'after Timer J the request is new again')
  })
}

t.test('reliable transport: Timer J is zero', async t => {
  const { h, tx, events } = setup('tcp')
  tx.respond(200)
  t.equal(tx.state, 'terminated')
  t.same(events, ['terminated'])
  t.equal(h.sent[0]!.target.flowId, 'tcp/7')
  t.equal(h.clock.pending, 0)
})

t.test('transport error in Trying, Proceeding and Completed terminates and informs the TU', async t => {
  {
    const { h, tx, events } = setup()
    h.mode = { kind: 'fail' }
    tx.respond(200)
    t.equal(tx.state, 'terminated')
    t.same(events, ['transport-error send failed (test)', 'terminated'])
  }
  {
    const { h, tx, events } = setup()
    tx.respond(100)
    h.mode = { kind: 'throw' }
    tx.respond(180)
    t.equal(tx.state, 'terminated')
    t.same(events, ['transport-error send failed (test)', 'terminated'])
  }
  {
    const { h, tx, events } = setup()
    tx.respond(404)
    h.mode = { kind: 'fail' }
    h.layer.receive(request(REGISTER), source())
    t.equal(tx.state, 'terminated')
    t.same(events, ['transport-error send failed (test)', 'terminated'])
  }
})

t.test('terminate() abandons the transaction', async t => {
  const { h, tx, events } = setup()
  tx.respond(200)
  tx.terminate()
  t.equal(tx.state, 'terminated')
  t.same(events, ['terminated'])
  t.equal(h.clock.pending, 0)
  t.equal(tx.respond(200), false)
})

t.test('Completed keeps its final in memory of its own (Timer J is 32 s), sent again unchanged', async t => {
  const { h, tx } = setup()
  // The final as a slice of a larger buffer, as messages cut from Node's allocation pool are.
  const text = 'SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-reg-1\r\nFrom: <sip:alice@example.com>;tag=a\r\nTo: <sip:alice@example.com>;tag=b\r\nCall-ID: call-1@example.com\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n'
  const pool = Buffer.alloc(8192)
  const n = pool.write(text, 100, 'latin1')
  const ok = pool.subarray(100, 100 + n)
  t.equal(tx.sendResponse(ok, 200), true)
  t.equal(tx.state, 'completed')
  h.layer.receive(request(REGISTER), source())
  const again = h.sent[h.sent.length - 1]!.bytes
  t.ok(again.equals(ok), 'the same bytes are sent again')
  t.not(again.buffer, ok.buffer, 'from memory of their own, not the larger buffer')
  pool.fill(0)
  h.layer.receive(request(REGISTER), source())
  t.ok(h.sent[h.sent.length - 1]!.bytes.equals(Buffer.from(text, 'latin1')), 'unaffected by later writes to the larger buffer')
})

t.test('Completed holds no request: a read throws SIP_ERR_TX_RELEASED, retransmissions still get the same final bytes', async t => {
  const { h, tx } = setup()
  t.equal(tx.request.method, 'REGISTER', 'the TU reads the request before answering')
  t.equal(tx.respond(401, 'Unauthorized', { headers: [['WWW-Authenticate', 'Digest realm="example.com", nonce="n1"']] }), true)
  t.throws(() => tx.request, { name: 'TransactionError', code: 'SIP_ERR_TX_RELEASED' }, 'the request is gone with the final')
  t.equal(tx.respond(200), false, 'a later respond() is refused, not thrown')
  t.equal(tx.sendResponse(Buffer.from('SIP/2.0 200 OK\r\n\r\n'), 200), false, 'so is a later sendResponse()')
  const first = h.sent[0]!.bytes
  for (let i = 0; i < 3; i++) h.layer.receive(request(REGISTER), source())
  t.equal(h.sent.length, 4)
  for (let i = 1; i < 4; i++) t.ok(h.sent[i]!.bytes.equals(first), `retransmission ${i} answered with the same final bytes`)
  t.equal(h.layer.counters.retransmissionsSent, 3)
})

t.test('Timer J of many transactions: each ends 64*T1 after its final, in order, none early; then gone', async t => {
  const h = new Harness()
  h.onRequest = tx => { tx.respond(200) }
  const branches: string[] = []
  // Finals 1 s apart, so that each Timer J falls on its own instant.
  for (let i = 0; i < 5; i++) {
    branches.push(`z9hG4bK-j-${i}`)
    h.layer.receive(request({ ...REGISTER, branch: branches[i], callId: branches[i] }), source())
    h.clock.advance(1000)
  }
  const txs = h.serverTxs.slice()
  t.equal(h.layer.size, 5)
  // Now = 5 s; the first final went at 0 s, so its Timer J is due at 32 s.
  h.clock.advance(32_000 - 5000 - 1)
  t.same(txs.map(tx => tx.state), ['completed', 'completed', 'completed', 'completed', 'completed'], 'none early')
  h.layer.receive(request({ ...REGISTER, branch: branches[0], callId: branches[0] }), source())
  t.equal(h.sent.length, 6, 'the first still answers its retransmission')
  t.ok(h.sent[5]!.bytes.equals(h.sent[0]!.bytes), 'with its final')
  h.clock.advance(1)
  t.same(txs.map(tx => tx.state), ['terminated', 'completed', 'completed', 'completed', 'completed'])
  // One batch may be up to 100 ms late; never more.
  h.clock.advance(1100)
  t.same(txs.map(tx => tx.state), ['terminated', 'terminated', 'completed', 'completed', 'completed'])
  h.clock.advance(3000)
  t.same(txs.map(tx => tx.state), ['terminated', 'terminated', 'terminated', 'terminated', 'terminated'])
  t.equal(h.layer.size, 0)
  t.equal(h.layer.counters.active['server-non-invite'], 0)
  t.equal(h.clock.pending, 0, 'no timer left')
  h.layer.receive(request({ ...REGISTER, branch: branches[0], callId: branches[0] }), source())
  t.equal(h.serverTxs.length, 6, 'a retransmission after Timer J is a new request')
})

t.test('Timer J waits on the wheel, sharing its one native timer with the long timers', async t => {
  const h = new Harness()
  h.onRequest = tx => { tx.respond(200) }
  h.layer.receive(request(REGISTER), source())
  t.equal(h.wheel.size, 1, 'the Timer J queue has its entry on the wheel')
  t.equal(h.clock.pending, 1, 'and no native timer of its own')
  // A client INVITE's Timer B is on the wheel too (Timer A on the clock).
  h.layer.createClient(request({ method: 'INVITE', uri: 'sip:bob@192.0.2.9', branch: 'z9hG4bK-inv-j' }), { transport: 'udp', address: '192.0.2.9', port: 5060 }, { onFinal: () => {}, onTimeout: () => {}, onTransportError: () => {} })
  t.equal(h.clock.pending, 2, 'wheel + Timer A: still one native timer for the long timers')
  h.clock.advance(32_000)
  t.equal(h.serverTxs[0]!.state, 'terminated', 'Timer J fired on time (its due time is on a tick)')
})

t.test('Timer J: transactions ended early leave no timer behind; the rest still expire', async t => {
  const h = new Harness()
  const events: string[] = []
  h.onRequest = tx => {
    const n = h.serverTxs.length - 1
    tx.handler = { onTerminated: () => events.push(`terminated ${n}`) }
    tx.respond(404)
  }
  for (let i = 0; i < 3; i++) h.layer.receive(request({ ...REGISTER, branch: `z9hG4bK-e${i}`, callId: `e${i}` }), source())
  const [a, b, c] = h.serverTxs
  a!.terminate()
  b!.terminate()
  t.equal(h.clock.pending, 1, 'one transaction still waits')
  h.clock.advance(32_000)
  t.equal(c!.state, 'terminated')
  t.same(events, ['terminated 0', 'terminated 1', 'terminated 2'], 'each reported once')
  t.equal(h.clock.pending, 0)
  // A transport error in Completed ends it early too.
  h.layer.receive(request({ ...REGISTER, branch: 'z9hG4bK-e3', callId: 'e3' }), source())
  h.mode = { kind: 'fail' }
  h.layer.receive(request({ ...REGISTER, branch: 'z9hG4bK-e3', callId: 'e3' }), source())
  t.equal(h.serverTxs[3]!.state, 'terminated')
  t.equal(h.clock.pending, 0, 'no timer left after the transport error')
  h.mode = { kind: 'ok' }
  h.layer.receive(request({ ...REGISTER, branch: 'z9hG4bK-e4', callId: 'e4' }), source())
  h.layer.close()
  t.equal(h.clock.pending, 0, 'close() stops the timer')
  t.equal(h.layer.size, 0)
})

t.test('finals kept for Timer J across arenas, and one too large for an arena, are resent byte for byte', async t => {
  const h = new Harness()
  let i = 0
  // Bodies of varied length put the finals at every alignment; 400 of ~700 B fill several 64 KiB arenas.
  h.onRequest = tx => { tx.respond(200, 'OK', { body: 'x'.repeat(i % 9 === 0 ? 9000 : 300 + (i * 37) % 500), contentType: 'text/plain' }) }
  const firsts: Buffer[] = []
  for (; i < 400; i++) {
    h.layer.receive(request({ ...REGISTER, branch: `z9hG4bK-a${i}`, callId: `a${i}` }), source())
    firsts.push(Buffer.from(h.sent[h.sent.length - 1]!.bytes))
  }
  let same = 0
  for (let k = 0; k < 400; k++) {
    h.layer.receive(request({ ...REGISTER, branch: `z9hG4bK-a${k}`, callId: `a${k}` }), source())
    if (h.sent[h.sent.length - 1]!.bytes.equals(firsts[k]!)) same++
  }
  t.equal(same, 400, 'every retransmission got its own final, unchanged')
  t.equal(h.sent.length, 800)
})

// Without TU callbacks, Completed over UDP is left to a small record (key, final, target) in the layer's maps.
t.test('no handler: Completed as a record: same final to retransmissions, Timer J, counters, state read through', async t => {
  const h = new Harness()
  h.onRequest = tx => { tx.respond(200) }
  h.layer.receive(request(REGISTER), source())
  const tx = h.serverTxs[0] as ServerNonInviteTransaction
  t.equal(tx.state, 'completed')
  t.equal(tx.terminated, false)
  t.equal(h.layer.size, 1)
  t.equal(h.layer.counters.active['server-non-invite'], 1)
  h.layer.receive(request(REGISTER), source())
  h.layer.receive(request(REGISTER), source())
  t.equal(h.serverTxs.length, 1, 'retransmissions matched')
  t.equal(h.sent.length, 3)
  t.ok(h.sent[1]!.bytes.equals(h.sent[0]!.bytes) && h.sent[2]!.bytes.equals(h.sent[0]!.bytes), 'the same final again')
  t.same(h.sent[1]!.target, h.sent[0]!.target, 'to the same target')
  t.equal(h.layer.counters.retransmissionsReceived, 2)
  t.equal(h.layer.counters.retransmissionsSent, 2)
  t.equal(tx.respond(500), false, 'a second final is refused')
  h.clock.advance(31_999)
  t.equal(tx.state, 'completed')
  h.clock.advance(1)
  t.equal(tx.state, 'terminated', 'Timer J = 32 s')
  t.equal(tx.terminated, true)
  t.equal(h.layer.size, 0)
  t.equal(h.layer.counters.active['server-non-invite'], 0)
  t.equal(h.clock.pending, 0)
  tx.terminate()
  t.equal(h.layer.counters.active['server-non-invite'], 0, 'terminate() after Timer J counts nothing twice')
  h.layer.receive(request(REGISTER), source())
  t.equal(h.serverTxs.length, 2, 'after Timer J the request is new again')
})

t.test('no handler: a transport error resending the final ends the record; terminate() and close() end records', async t => {
  for (const kind of ['fail', 'throw', 'reject'] as const) {
    const h = new Harness()
    h.onRequest = tx => { tx.respond(404) }
    h.layer.receive(request(REGISTER), source())
    const tx = h.serverTxs[0]!
    h.mode = { kind }
    h.layer.receive(request(REGISTER), source())
    await new Promise(resolve => setImmediate(resolve))
    t.equal(tx.state, 'terminated', kind)
    t.equal(h.layer.counters.transportErrors, 1)
    t.equal(h.layer.size, 0)
    t.equal(h.layer.counters.active['server-non-invite'], 0)
    t.equal(h.clock.pending, 0, 'no timer left')
    h.clock.advance(40_000)
    t.equal(h.layer.counters.active['server-non-invite'], 0, 'Timer J skips it')
  }
  const h = new Harness()
  h.onRequest = tx => { tx.respond(200) }
  for (let i = 0; i < 3; i++) h.layer.receive(request({ ...REGISTER, branch: `z9hG4bK-r${i}`, callId: `r${i}` }), source())
  const [a] = h.serverTxs
  a!.terminate()
  a!.terminate()
  t.equal(a!.state, 'terminated')
  t.equal(h.layer.size, 2)
  t.equal(h.layer.counters.active['server-non-invite'], 2)
  h.layer.receive(request({ ...REGISTER, branch: 'z9hG4bK-r0', callId: 'r0' }), source())
  t.equal(h.serverTxs.length, 4, 'its request is new again')
  h.serverTxs[3]!.respond(200)
  h.layer.close()
  t.same(h.serverTxs.map(tx => tx.state), ['terminated', 'terminated', 'terminated', 'terminated'])
  t.equal(h.layer.size, 0)
  t.equal(h.layer.counters.active['server-non-invite'], 0)
  t.equal(h.clock.pending, 0)
})

t.test('no handler: a request merged with one whose record waits out Timer J gets 482 (RFC 3261 §8.2.2.2)', async t => {
  const h = new Harness()
  h.onRequest = tx => { if (tx.state === 'trying') tx.respond(200) }
  h.layer.receive(request({ ...REGISTER, branch: 'z9hG4bK-m1' }), source())
  h.layer.receive(request({ ...REGISTER, branch: 'z9hG4bK-m2' }), source())
  t.same(h.sentStatuses(), [200, 482])
  h.clock.advance(32_100)
  h.layer.receive(request({ ...REGISTER, branch: 'z9hG4bK-m3' }), source())
  t.same(h.sentStatuses(), [200, 482, 200], 'not once the first has ended')
})

t.test('no handler: the layer lets go of the transaction in Completed (a handler keeps it until Timer J)', async t => {
  const { setFlagsFromString } = await import('node:v8')
  const { runInNewContext } = await import('node:vm')
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  const refs: Array<WeakRef<object>> = []
  for (const withHandler of [false, true]) {
    const h = new Harness()
    h.onRequest = tx => {
      if (withHandler) tx.handler = {}
      tx.respond(200)
    }
    h.layer.receive(request({ ...REGISTER, branch: `z9hG4bK-gc-${String(withHandler)}` }), source())
    refs.push(new WeakRef(h.serverTxs.pop()!))
    t.teardown(() => { h.layer.close() })
  }
  await new Promise(resolve => setImmediate(resolve))
  gc()
  t.equal(refs[0]!.deref(), undefined, 'without a handler the transaction is garbage')
  t.not(refs[1]!.deref(), undefined, 'with a handler it is held for Timer J')
})
