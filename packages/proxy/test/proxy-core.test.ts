// The RFC 3261 §16 proxy core on real loopback UDP: a caller, the proxy and
// scripted callees, each a TransportLayer with its own TransactionLayer.
// Forking (first 2xx wins, the other branch is CANCELled), best response
// (§16.7 step 6), 6xx cancelling the others, upstream CANCEL (§16.10),
// Timer C (§16.8), the forwarded request's Via/Record-Route/Max-Forwards,
// and route preprocessing (§16.4) on parsed requests.
import t from 'tap'
import { parseMessage } from '@sipd/sip-parser'
import type { SipRequest, SipResponse } from '@sipd/sip-parser'
import { buildCancel, newBranch, TransactionLayer, TransportLayer } from '@sipd/sip-stack'
import type { AnyServerTransaction, ServerInviteTransaction, Source } from '@sipd/sip-stack'
import { loopHash, ProxyCore, statelessBranchHash } from '../src/proxy-core.js'
import type { ForwardTarget } from '../src/proxy-core.js'

interface Node {
  transport: TransportLayer
  transactions: TransactionLayer
  port: number
  requests: SipRequest[]
}

async function node (onRequest: (tx: AnyServerTransaction, n: Node) => void, extra: { onStrayAck?: (a: SipRequest, s: Source) => void, onStrayResponse?: (r: SipResponse) => void, listen?: string[] } = {}): Promise<Node> {
  const holder: { n?: Node } = {}
  const transport = new TransportLayer({ onMessage: (msg, source) => { holder.n!.transactions.receive(msg, source) } }, { listen: extra.listen ?? ['udp:127.0.0.1:0'] })
  const transactions = new TransactionLayer({
    send: async (bytes, target) => await transport.send(bytes, target),
    onRequest: tx => {
      holder.n!.requests.push(tx.request)
      onRequest(tx, holder.n!)
    },
    onStrayAck: extra.onStrayAck,
    onStrayResponse: extra.onStrayResponse,
    timers: { t1: 100, t2: 400 }
  })
  const listeners = await transport.listen()
  holder.n = { transport, transactions, port: listeners[0]!.port, requests: [] }
  return holder.n
}

async function close (...nodes: Node[]): Promise<void> {
  for (const n of nodes) {
    n.transactions.close()
    await n.transport.close()
  }
}

async function until (what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (cond()) return
    await new Promise(resolve => setTimeout(resolve, 5))
  }
  throw new Error(`timed out waiting for ${what}`)
}

/** A callee: rings (180) and then answers `status` after `delayMs`, or waits for a CANCEL (answered 200 + 487) when status is 0. */
function callee (status: number, delayMs = 0): (tx: AnyServerTransaction) => void {
  return tx => {
    if (tx.method === 'CANCEL') {
      tx.respond(200)
      const inv = (tx as { cancelTarget?: ServerInviteTransaction }).cancelTarget
      inv?.respond(487)
      return
    }
    if (tx.method !== 'INVITE') {
      tx.respond(200)
      return
    }
    if (status === 0 || status >= 200) tx.respond(180)
    if (status === 0) return
    setTimeout(() => { tx.respond(status, undefined, { copyRecordRoute: true }) }, delayMs)
  }
}

function inviteText (callerPort: number, proxyPort: number, branch: string, callId: string): string {
  return [
    `INVITE sip:bob@127.0.0.1:${proxyPort} SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:${callerPort};branch=${branch}`,
    'Max-Forwards: 70',
    `From: <sip:alice@127.0.0.1>;tag=a-${callId}`,
    `To: <sip:bob@127.0.0.1:${proxyPort}>`,
    `Call-ID: ${callId}`,
    'CSeq: 1 INVITE',
    `Contact: <sip:alice@127.0.0.1:${callerPort}>`,
    'Content-Length: 0',
    '', ''
  ].join('\r\n')
}

interface Setup {
  caller: Node
  proxy: Node
  core: ProxyCore
  callees: Node[]
}

async function setup (t: { teardown: (fn: () => Promise<void>) => void }, behaviours: Array<(tx: AnyServerTransaction) => void>, timerC = 60_000): Promise<Setup> {
  const callees: Node[] = []
  for (const b of behaviours) callees.push(await node(b))
  const holder: { core?: ProxyCore } = {}
  const proxy = await node(tx => {
    if (tx.method === 'CANCEL') holder.core!.cancel(tx)
    else holder.core!.forward(tx, callees.map((c): ForwardTarget => ({ destination: `sip:127.0.0.1:${c.port}` })))
  }, { onStrayAck: (a, s) => { holder.core!.forwardStateless(a, s) }, onStrayResponse: r => { holder.core!.relayStray(r) } })
  holder.core = new ProxyCore({
    transactions: proxy.transactions,
    listeners: () => proxy.transport.listeners,
    timerC,
    t1: 100,
    sendResponse: async (bytes, via) => await proxy.transport.sendResponse(bytes, via)
  })
  const caller = await node(() => {})
  t.teardown(async () => { await close(caller, proxy, ...callees) })
  return { caller, proxy, core: holder.core, callees }
}

interface Call {
  provisional: number[]
  finals: number[]
  invite: SipRequest
  tx: ReturnType<TransactionLayer['createClient']>
}

function call (s: Setup, callId: string): Call {
  const c: Call = { provisional: [], finals: [], invite: undefined as unknown as SipRequest, tx: undefined as unknown as Call['tx'] }
  const bytes = Buffer.from(inviteText(s.caller.port, s.proxy.port, newBranch(), callId))
  c.tx = s.caller.transactions.createClient(bytes, { transport: 'udp', address: '127.0.0.1', port: s.proxy.port }, {
    onProvisional: r => { c.provisional.push(r.status) },
    onFinal: r => { c.finals.push(r.status) },
    onTimeout: () => { c.finals.push(-408) },
    onTransportError: () => { c.finals.push(-503) }
  })
  c.invite = c.tx.request
  return c
}

t.test('the forwarded request: Via with a loop-detecting branch, Record-Route, Max-Forwards - 1', async t => {
  const s = await setup(t, [callee(200)])
  const c = call(s, 'fwd-1')
  await until('the 200', () => c.finals.length > 0)
  t.same(c.finals, [200], 'the 2xx reached the caller')
  t.ok(c.provisional.includes(180), 'the 180 was relayed')
  const got = s.callees[0]!.requests[0]!
  t.equal(got.via.length, 2, 'our Via on top of the caller\'s')
  t.equal(got.topVia!.host + ':' + String(got.topVia!.port), `127.0.0.1:${s.proxy.port}`, 'sent-by is the proxy listener')
  t.ok(got.topVia!.branch!.startsWith('z9hG4bKsd' + loopHash(c.invite)), 'branch = cookie + sd + loop hash of the request + unique part')
  t.equal(got.maxForwards, 69, 'Max-Forwards decremented')
  t.same(got.recordRoute.map(r => r.uri), [`sip:127.0.0.1:${s.proxy.port};transport=udp;lr`], 'our Record-Route')
  t.equal(got.uri, c.invite.uri, 'Request-URI unchanged (the node is the destination)')
})

t.test('parallel fork: the first 2xx wins and the ringing branch is CANCELled', async t => {
  const s = await setup(t, [callee(0), callee(200, 50)])
  const c = call(s, 'fork-1')
  await until('the 200', () => c.finals.length > 0)
  await until('the CANCEL at the ringing callee', () => s.callees[0]!.requests.some(r => r.method === 'CANCEL'))
  t.same(c.finals, [200], 'the caller got the 2xx, and only it')
  t.equal(s.callees[0]!.requests.filter(r => r.method === 'CANCEL').length, 1, 'one CANCEL to the other branch')
  t.equal(s.callees[1]!.requests.filter(r => r.method === 'CANCEL').length, 0, 'no CANCEL to the answering branch')
})

t.test('best response: the lowest class wins; a 503 is sent as 500', async t => {
  const s = await setup(t, [callee(500, 10), callee(486, 30)])
  const c = call(s, 'best-1')
  await until('a final', () => c.finals.length > 0)
  t.same(c.finals, [486], '4xx beats 5xx (§16.7 step 6)')
  const s2 = await setup(t, [callee(503, 10)])
  const c2 = call(s2, 'best-2')
  await until('a final', () => c2.finals.length > 0)
  t.same(c2.finals, [500], 'a 503 from downstream becomes 500 upstream')
})

t.test('a 6xx cancels the other branches and is the answer', async t => {
  const s = await setup(t, [callee(603, 30), callee(0)])
  const c = call(s, 'six-1')
  await until('a final', () => c.finals.length > 0)
  t.same(c.finals, [603], 'the 6xx answered the caller')
  await until('the CANCEL at the ringing callee', () => s.callees[1]!.requests.some(r => r.method === 'CANCEL'))
  t.pass('the ringing branch was CANCELled')
})

t.test('CANCEL from upstream: 200 at once, every branch CANCELled, 487 comes back', async t => {
  const s = await setup(t, [callee(0), callee(0)])
  const c = call(s, 'cancel-1')
  await until('both callees ring', () => c.provisional.includes(180) && s.callees.every(n => n.requests.length > 0))
  await new Promise(resolve => setTimeout(resolve, 20))
  const cancelFinals: number[] = []
  s.caller.transactions.createClient(buildCancel(c.invite), { transport: 'udp', address: '127.0.0.1', port: s.proxy.port }, {
    onFinal: r => { cancelFinals.push(r.status) },
    onTimeout: () => { cancelFinals.push(-408) },
    onTransportError: () => { cancelFinals.push(-503) }
  })
  await until('the INVITE final', () => c.finals.length > 0)
  t.same(cancelFinals, [200], 'the CANCEL got 200')
  t.same(c.finals, [487], 'the INVITE got 487')
  for (const n of s.callees) t.equal(n.requests.filter(r => r.method === 'CANCEL').length, 1, 'each branch got a CANCEL')
})

t.test('Timer C: a branch ringing too long is CANCELled and the caller gets 408', async t => {
  const s = await setup(t, [callee(0)], 300)
  const c = call(s, 'timerc-1')
  await until('the INVITE final', () => c.finals.length > 0)
  // The branch's 487 answers our own CANCEL; the caller sent none: 408 (no answer), as Kamailio's fr_inv_timer.
  t.same(c.finals, [408], 'the branch was CANCELled by Timer C; upstream a 408, not the 487')
  t.equal(s.callees[0]!.requests.filter(r => r.method === 'CANCEL').length, 1, 'one CANCEL')
})

t.test('route preprocessing (§16.4)', async t => {
  const s = await setup(t, [callee(200)])
  const p = s.proxy.port
  const req = (lines: string[]): SipRequest => parseMessage(Buffer.from(lines.concat(['Via: SIP/2.0/UDP 127.0.0.9:5060;branch=z9hG4bKx', 'Max-Forwards: 70', 'From: <sip:a@x>;tag=1', 'To: <sip:b@y>;tag=2', 'Call-ID: c', 'CSeq: 2 BYE', 'Content-Length: 0', '', '']).join('\r\n'))) as SipRequest
  const loose = s.core.preprocess(req([`BYE sip:bob@127.0.0.9:5070 SIP/2.0`, `Route: <sip:127.0.0.1:${p};transport=udp;lr>, <sip:127.0.0.7;lr>`]))
  t.ok(loose.ours, 'our Route entry is recognised')
  t.same(loose.routes.map(r => r.uri), ['sip:127.0.0.7;lr'], 'and removed; the next one stays')
  t.equal(loose.requestUri, 'sip:bob@127.0.0.9:5070', 'Request-URI unchanged')
  const strict = s.core.preprocess(req([`BYE sip:127.0.0.1:${p};lr SIP/2.0`, 'Route: <sip:127.0.0.7;lr>, <sip:bob@127.0.0.9:5070>']))
  t.equal(strict.requestUri, 'sip:bob@127.0.0.9:5070', 'a strict router\'s Request-URI (our Record-Route) is replaced by the last Route')
  t.same(strict.routes.map(r => r.uri), ['sip:127.0.0.7;lr'], 'which leaves the Route set')
  const foreign = s.core.preprocess(req(['BYE sip:bob@127.0.0.9:5070 SIP/2.0', 'Route: <sip:127.0.0.7;lr>']))
  t.notOk(foreign.ours, 'a foreign Route is left alone')
  t.equal(foreign.routes.length, 1)
})

t.test('a transport change is record-routed twice (RFC 5658), outbound side on top', async t => {
  const callee1 = await node(callee(200))
  const holder: { core?: ProxyCore } = {}
  const proxy = await node(tx => { holder.core!.forward(tx, [{ destination: `sip:127.0.0.1:${callee1.port}` }]) }, { listen: ['udp:127.0.0.1:0', 'tcp:127.0.0.1:0'] })
  holder.core = new ProxyCore({
    transactions: proxy.transactions,
    listeners: () => proxy.transport.listeners,
    sendResponse: async (bytes, via) => await proxy.transport.sendResponse(bytes, via)
  })
  const caller = await node(() => {}, { listen: ['tcp:127.0.0.1:0'] })
  t.teardown(async () => { await close(caller, proxy, callee1) })
  const tcpPort = proxy.transport.listeners.find(l => l.transport === 'tcp')!.port
  const udpPort = proxy.transport.listeners.find(l => l.transport === 'udp')!.port
  const finals: number[] = []
  const text = inviteText(caller.port, tcpPort, newBranch(), 'tcp-1').replace('SIP/2.0/UDP', 'SIP/2.0/TCP')
  caller.transactions.createClient(Buffer.from(text), { transport: 'tcp', address: '127.0.0.1', port: tcpPort }, {
    onFinal: r => { finals.push(r.status) },
    onTimeout: () => { finals.push(-408) },
    onTransportError: () => { finals.push(-503) }
  })
  await until('the 200 over TCP', () => finals.length > 0)
  t.same(finals, [200], 'the answer came back over TCP')
  const got = callee1.requests[0]!
  t.same(got.recordRoute.map(r => r.uri), [`sip:127.0.0.1:${udpPort};transport=udp;lr`, `sip:127.0.0.1:${tcpPort};transport=tcp;lr`], 'UDP side on top, TCP side below')
  t.equal(got.topVia!.transport, 'UDP', 'our Via names the outbound transport')
})

t.test('a request CANCELled while the policy was still deciding is not forwarded', async t => {
  const callee1 = await node(callee(200))
  const holder: { core?: ProxyCore, decide?: () => void } = {}
  const outcomes: Array<number | string> = []
  const proxy = await node(tx => {
    if (tx.method === 'CANCEL') {
      holder.core!.cancel(tx)
      return
    }
    // An asynchronous decision (authentication, location lookup) that ends after the CANCEL.
    holder.decide = () => {
      holder.core!.forward(tx, [{ destination: `sip:127.0.0.1:${callee1.port}` }], { onFinal: (status, target) => { outcomes.push(status, target === undefined ? 'no branch' : 'branch') } })
    }
  })
  holder.core = new ProxyCore({
    transactions: proxy.transactions,
    listeners: () => proxy.transport.listeners,
    sendResponse: async (bytes, via) => await proxy.transport.sendResponse(bytes, via)
  })
  const caller = await node(() => {})
  t.teardown(async () => { await close(caller, proxy, callee1) })
  const s: Setup = { caller, proxy, core: holder.core, callees: [callee1] }
  const c = call(s, 'late-1')
  await until('the 100 Trying', () => c.provisional.includes(100) && holder.decide !== undefined)
  const cancelFinals: number[] = []
  caller.transactions.createClient(buildCancel(c.invite), { transport: 'udp', address: '127.0.0.1', port: proxy.port }, {
    onFinal: r => { cancelFinals.push(r.status) },
    onTimeout: () => { cancelFinals.push(-408) },
    onTransportError: () => { cancelFinals.push(-503) }
  })
  await until('the INVITE final', () => c.finals.length > 0)
  t.same(cancelFinals, [200], 'the CANCEL got 200')
  t.same(c.finals, [487], 'the INVITE got 487 from the proxy itself')
  holder.decide!()
  t.same(outcomes, [487, 'no branch'], 'the late decision forwards nothing and reports the 487')
  t.equal(holder.core.activeContexts, 0, 'no response context was created')
})

t.test('consumed credentials are not forwarded (removeHeaders)', async t => {
  const callee1 = await node(callee(200))
  const holder: { core?: ProxyCore } = {}
  const proxy = await node(tx => { holder.core!.forward(tx, [{ destination: `sip:127.0.0.1:${callee1.port}` }], { removeHeaders: ['Proxy-Authorization'] }) })
  holder.core = new ProxyCore({
    transactions: proxy.transactions,
    listeners: () => proxy.transport.listeners,
    sendResponse: async (bytes, via) => await proxy.transport.sendResponse(bytes, via)
  })
  const caller = await node(() => {})
  t.teardown(async () => { await close(caller, proxy, callee1) })
  const finals: number[] = []
  const text = inviteText(caller.port, proxy.port, newBranch(), 'creds-1').replace('CSeq: 1 INVITE', 'CSeq: 1 INVITE\r\nProxy-Authorization: Digest username="alice", realm="example.test", nonce="n", uri="sip:bob@example.test", response="0123"')
  caller.transactions.createClient(Buffer.from(text), { transport: 'udp', address: '127.0.0.1', port: proxy.port }, {
    onFinal: r => { finals.push(r.status) },
    onTimeout: () => { finals.push(-408) },
    onTransportError: () => { finals.push(-503) }
  })
  await until('the 200', () => finals.length > 0)
  t.same(finals, [200])
  const got = callee1.requests[0]!
  t.notOk(got.hasHeader('Proxy-Authorization'), 'the credentials stayed at the proxy')
  t.equal(got.callId, 'creds-1', 'the rest of the request is intact')
})

t.test('407 from several branches: one 407 upstream carrying every challenge (§16.7 step 7)', async t => {
  const challenger = (realm: string, delayMs: number) => (tx: AnyServerTransaction): void => {
    if (tx.method !== 'INVITE') return
    setTimeout(() => { tx.respond(407, 'Proxy Authentication Required', { headers: [['Proxy-Authenticate', `Digest realm="${realm}", nonce="n-${realm}", qop="auth", algorithm=MD5`]] }) }, delayMs)
  }
  const s = await setup(t, [challenger('a.test', 5), challenger('b.test', 30)])
  const holder: { resp?: SipResponse } = {}
  const bytes = Buffer.from(inviteText(s.caller.port, s.proxy.port, newBranch(), 'merge-1'))
  s.caller.transactions.createClient(bytes, { transport: 'udp', address: '127.0.0.1', port: s.proxy.port }, {
    onFinal: r => { holder.resp = r },
    onTimeout: () => {},
    onTransportError: () => {}
  })
  await until('the 407', () => holder.resp !== undefined)
  t.equal(holder.resp!.status, 407)
  const realms = holder.resp!.headers('proxy-authenticate').map(v => v.slice(v.indexOf('realm="') + 7, v.indexOf('"', v.indexOf('realm="') + 7))).sort()
  t.same(realms, ['a.test', 'b.test'], 'both challenges, each whole')
  t.equal(holder.resp!.headers('proxy-authenticate').length, 2, 'two Proxy-Authenticate values')
})

t.test('the branch of a statelessly forwarded request (RFC 3261 §16.11)', async t => {
  const ack = (via: string, over: Partial<Record<'cseq' | 'callId' | 'to' | 'from' | 'uri', string>> = {}): SipRequest => parseMessage(Buffer.from([
    `ACK ${over.uri ?? 'sip:bob@192.0.2.9'} SIP/2.0`,
    `Via: ${via}`,
    'Max-Forwards: 70',
    `From: <sip:alice@192.0.2.1>;tag=${over.from ?? 'fa'}`,
    `To: <sip:bob@192.0.2.9>;tag=${over.to ?? 'tb'}`,
    `Call-ID: ${over.callId ?? 'sl-1'}`,
    `CSeq: ${over.cseq ?? '1'} ACK`,
    'Content-Length: 0',
    '', ''
  ].join('\r\n'))) as SipRequest
  const cookie = 'SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-ack-1'
  const h = statelessBranchHash(ack(cookie))
  t.match(h, /^[0-9a-f]{16}$/, '64 bits in hex')
  // The two FNV-1a lanes of the LF-joined text, written out here with Number#toString.
  let a = 0x811c9dc5
  let b = 0x01000193 ^ 0x5bd1e995
  for (const c of Buffer.from('z9hG4bK-ack-1\nACK', 'latin1')) {
    a = Math.imul(a ^ c, 0x01000193)
    b = Math.imul(b ^ c, 0x01000193) ^ (b >>> 15)
  }
  t.equal(h, (a >>> 0).toString(16).padStart(8, '0') + (b >>> 0).toString(16).padStart(8, '0'), 'the hash of the received branch and method')
  t.equal(statelessBranchHash(ack(cookie)), h, 'a retransmission gets the same branch')
  t.not(statelessBranchHash(ack('SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-ack-2')), h, 'another received branch, another branch')
  // With the magic cookie the received branch alone tells transactions apart: the rest is not hashed.
  t.equal(statelessBranchHash(ack(cookie, { cseq: '2', callId: 'sl-2' })), h, 'with the cookie, only the branch (and method) is hashed')
  // RFC 2543 branch (or none): top Via, tags, Call-ID, CSeq number and Request-URI.
  const old = 'SIP/2.0/UDP 192.0.2.1:5060;branch=1'
  const o = statelessBranchHash(ack(old))
  t.equal(statelessBranchHash(ack(old)), o, 'RFC 2543: a retransmission gets the same branch')
  t.not(o, h)
  for (const [name, over] of [['CSeq', { cseq: '2' }], ['Call-ID', { callId: 'sl-2' }], ['To tag', { to: 'tc' }], ['From tag', { from: 'fc' }], ['Request-URI', { uri: 'sip:carol@192.0.2.9' }]] as const) {
    t.not(statelessBranchHash(ack(old, over)), o, `RFC 2543: another ${name}, another branch`)
  }
  t.not(statelessBranchHash(ack('SIP/2.0/UDP 192.0.2.2:5060;branch=1')), o, 'RFC 2543: another top Via, another branch')
  t.not(statelessBranchHash(ack('SIP/2.0/UDP 192.0.2.1:5060')), o, 'no branch at all: the top Via still counts')
})
