// Forking to an AOR's contacts and reaching them over their flows, on real
// loopback sockets: contacts grouped by q (RFC 3261 §16.6) with the next
// group tried only when the current one failed without a 2xx or 6xx, a
// branch that fails at once not ending the fork before its siblings start,
// and the flow token (RFC 5626 §5.3): a request routed to our flow URI goes
// down the registered TCP connection, and our Record-Route names the flow.
import t from 'tap'
import { parseUri } from '@sipd/sip-parser'
import type { SipRequest } from '@sipd/sip-parser'
import { newBranch, TransactionLayer, TransportLayer } from '@sipd/sip-stack'
import type { AnyServerTransaction, ServerInviteTransaction, Source } from '@sipd/sip-stack'
import type { Binding } from '@sipd/registrar'
import { ProxyCore } from '../src/proxy-core.js'
import type { ForwardOptions, ForwardTarget } from '../src/proxy-core.js'
import { contactGroups, locatedContact, serialSearch } from '../src/routing-default.js'
import { flowRouting } from '../src/location-service.js'

interface Node {
  transport: TransportLayer
  transactions: TransactionLayer
  port: number
  requests: Array<{ req: SipRequest, source: Source }>
}

/** Everything that happened, in order, across the parties of one test. */
type Log = string[]

async function node (onRequest: (tx: AnyServerTransaction, n: Node) => void, extra: { listen?: string[], onStrayAck?: (a: SipRequest, s: Source) => void } = {}): Promise<Node> {
  const holder: { n?: Node } = {}
  const transport = new TransportLayer({ onMessage: (msg, source) => { holder.n!.transactions.receive(msg, source) } }, { listen: extra.listen ?? ['udp:127.0.0.1:0'] })
  const transactions = new TransactionLayer({
    send: async (bytes, target) => await transport.send(bytes, target),
    onRequest: tx => {
      holder.n!.requests.push({ req: tx.request, source: tx.source })
      onRequest(tx, holder.n!)
    },
    onStrayAck: extra.onStrayAck,
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

/** A callee named `name`: answers INVITE with `status` after `delayMs` (0 = ring and wait for CANCEL), logging both. */
function callee (log: Log, name: string, status: number, delayMs = 0): (tx: AnyServerTransaction) => void {
  return tx => {
    if (tx.method === 'CANCEL') {
      log.push(`${name} CANCEL`)
      tx.respond(200)
      ;(tx as { cancelTarget?: ServerInviteTransaction }).cancelTarget?.respond(487)
      return
    }
    if (tx.method !== 'INVITE') {
      tx.respond(200)
      return
    }
    log.push(`${name} INVITE`)
    tx.respond(180)
    if (status === 0) return
    setTimeout(() => {
      log.push(`${name} ${status}`)
      tx.respond(status, undefined, { copyRecordRoute: true })
    }, delayMs)
  }
}

function invite (callerPort: number, proxyPort: number, callId: string, route?: string): Buffer {
  return Buffer.from([
    `INVITE sip:alice@example.test SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:${callerPort};branch=${newBranch()}`,
    'Max-Forwards: 70',
    `From: <sip:media@127.0.0.1>;tag=m-${callId}`,
    '<sip:alice@example.test>'.replace(/^/, 'To: '),
    `Call-ID: ${callId}`,
    'CSeq: 1 INVITE',
    ...(route !== undefined ? [`Route: ${route}`] : []),
    `Contact: <sip:media@127.0.0.1:${callerPort}>`,
    'Content-Length: 0',
    '', ''
  ].join('\r\n'))
}

interface Rig {
  caller: Node
  proxy: Node
  core: ProxyCore
}

/** A caller, a proxy whose policy is `decide`, over UDP on loopback. */
async function rig (t: Tap.Test, decide: (tx: AnyServerTransaction, core: ProxyCore) => void, listen?: string[]): Promise<Rig> {
  const holder: { core?: ProxyCore } = {}
  const proxy = await node(tx => {
    if (tx.method === 'CANCEL') holder.core!.cancel(tx)
    else decide(tx, holder.core!)
  }, { listen: listen ?? ['udp:127.0.0.1:0'], onStrayAck: (a, s) => { holder.core!.forwardStateless(a, s) } })
  holder.core = new ProxyCore({
    transactions: proxy.transactions,
    listeners: () => proxy.transport.listeners,
    t1: 100,
    sendResponse: async (bytes, via) => await proxy.transport.sendResponse(bytes, via),
    flows: flowRouting(id => proxy.transport.isFlowOpen(id))
  })
  const caller = await node(() => {})
  t.teardown(async () => { await close(caller, proxy) })
  return { caller, proxy, core: holder.core }
}

function call (r: Rig, callId: string, route?: string, port = r.proxy.port): number[] {
  const finals: number[] = []
  r.caller.transactions.createClient(invite(r.caller.port, port, callId, route), { transport: 'udp', address: '127.0.0.1', port }, {
    onFinal: res => { finals.push(res.status) },
    onTimeout: () => { finals.push(-408) },
    onTransportError: () => { finals.push(-503) }
  })
  return finals
}

function binding (over: Partial<Binding>): Binding {
  return { aor: 'sip:alice@example.test', key: 'k', contact: 'sip:alice@192.0.2.1:5060', expiresAt: 0, callId: 'c', cseq: 1, path: [], updatedAt: 0, ...over }
}

t.test('contacts in q groups, highest first, equal q together (absent q is 1)', async t => {
  const groups = contactGroups([
    { uri: 'sip:a@h', q: 0.5 },
    { uri: 'sip:b@h' },
    { uri: 'sip:c@h', q: 1, destination: 'sip:192.0.2.3:5060;transport=tcp', flow: true },
    { uri: 'sip:d@h', q: 0.1, route: ['<sip:edge.example.test;lr>'] },
    { uri: 'sip:e@h', q: 0.5 }
  ])
  t.same(groups, [
    [{ requestUri: 'sip:b@h' }, { requestUri: 'sip:c@h', destination: 'sip:192.0.2.3:5060;transport=tcp', flow: true }],
    [{ requestUri: 'sip:a@h' }, { requestUri: 'sip:e@h' }],
    [{ requestUri: 'sip:d@h', route: ['<sip:edge.example.test;lr>'] }]
  ])
  t.same(contactGroups([]), [])
})

t.test('a binding is reached by its Path, through its holding node, or over its flow here', async t => {
  const received = { transport: 'tcp', address: '198.51.100.7', port: 40000 }
  t.same(locatedContact(binding({ path: ['<sip:edge.example.test;lr>'], node: 'a', received }), 'b'),
    { uri: 'sip:alice@192.0.2.1:5060', route: ['<sip:edge.example.test;lr>'] }, 'an edge proxy\'s Path is the route (RFC 3327 §5.3)')
  t.same(locatedContact(binding({ node: 'a', flowUri: 'sip:tok@10.0.0.1:5060;transport=tcp;lr', received, q: 0.3 }), 'b'),
    { uri: 'sip:alice@192.0.2.1:5060', q: 0.3, route: ['<sip:tok@10.0.0.1:5060;transport=tcp;lr>'] }, 'another node\'s flow: through that node')
  t.same(locatedContact(binding({ node: 'a', flowUri: 'sip:tok@10.0.0.1:5060;transport=tcp;lr', received }), 'a'),
    { uri: 'sip:alice@192.0.2.1:5060', destination: 'sip:198.51.100.7:40000;transport=tcp', flow: true }, 'our own flow: straight down it')
  t.same(locatedContact(binding({ received: { transport: 'udp', address: '2001:db8::7', port: 5062 } })),
    { uri: 'sip:alice@192.0.2.1:5060', destination: 'sip:[2001:db8::7]:5062;transport=udp', flow: true }, 'no node recorded: ours')
})

t.test('serial search: the lower q group rings only after every branch of the higher one failed', async t => {
  const log: Log = []
  const a = await node(callee(log, 'a', 486, 10))
  const b = await node(callee(log, 'b', 480, 60))
  const c = await node(callee(log, 'c', 200, 10))
  t.teardown(async () => { await close(a, b, c) })
  const r = await rig(t, (tx, core) => {
    const search = serialSearch(contactGroups([
      { uri: 'sip:alice@c', destination: `sip:127.0.0.1:${c.port}`, q: 0.5 },
      { uri: 'sip:alice@a', destination: `sip:127.0.0.1:${a.port}`, q: 0.9 },
      { uri: 'sip:alice@b', destination: `sip:127.0.0.1:${b.port}`, q: 0.9 }
    ]))
    core.forward(tx, search.first, search.options)
  })
  const finals = call(r, 'serial-1')
  await until('the final', () => finals.length > 0)
  t.same(finals, [200], 'the q=0.5 contact answered')
  t.same(log.slice(0, 2).sort(), ['a INVITE', 'b INVITE'], 'both q=0.9 contacts rang first, in parallel')
  t.ok(log.indexOf('c INVITE') > log.indexOf('b 480') && log.indexOf('c INVITE') > log.indexOf('a 486'), `c rang only after both failed: ${log.join(', ')}`)
  t.equal(r.proxy.requests.length, 1)
})

t.test('serial search: a 2xx or a 6xx in the first group ends it', async t => {
  for (const status of [200, 603]) {
    const log: Log = []
    const a = await node(callee(log, 'a', status, 10))
    const c = await node(callee(log, 'c', 200))
    t.teardown(async () => { await close(a, c) })
    let search: { first: readonly ForwardTarget[], options: ForwardOptions } | undefined
    const r = await rig(t, (tx, core) => {
      search = serialSearch([[{ destination: `sip:127.0.0.1:${a.port}` }], [{ destination: `sip:127.0.0.1:${c.port}` }]])
      core.forward(tx, search.first, search.options)
    })
    const finals = call(r, `serial-end-${status}`)
    await until('the final', () => finals.length > 0)
    t.same(finals, [status], `the first group's ${status} is the answer`)
    t.equal(c.requests.length, 0, `the second group never rang after a ${status}`)
    t.ok(search !== undefined)
  }
})

t.test('serial search: when every group fails, the best response of all of them is sent', async t => {
  const log: Log = []
  const a = await node(callee(log, 'a', 503, 5))
  const c = await node(callee(log, 'c', 486, 5))
  t.teardown(async () => { await close(a, c) })
  const r = await rig(t, (tx, core) => {
    const search = serialSearch([[{ destination: `sip:127.0.0.1:${a.port}` }], [{ destination: `sip:127.0.0.1:${c.port}` }]])
    core.forward(tx, search.first, search.options)
  })
  const finals = call(r, 'serial-all')
  await until('the final', () => finals.length > 0)
  t.same(finals, [486], 'the 486 of the second group beats the 503 of the first (§16.7 step 6)')
  t.same(log.filter(l => l.endsWith('INVITE')), ['a INVITE', 'c INVITE'])
})

t.test('a branch that cannot be sent does not end a fork whose other branches are still starting', async t => {
  const log: Log = []
  const b = await node(callee(log, 'b', 200, 20))
  t.teardown(async () => { await close(b) })
  // A host name is never resolved by the core: that branch fails at once with 503.
  const r = await rig(t, (tx, core) => { core.forward(tx, [{ destination: 'sip:phone.invalid:5060' }, { destination: `sip:127.0.0.1:${b.port}` }]) })
  const finals = call(r, 'sync-fail')
  await until('the final', () => finals.length > 0)
  t.same(finals, [200], 'the second branch\'s 200, not a 500 for the first branch alone')
})

t.test('a contact\'s Path is pushed as the Route set and its first entry is the next hop (RFC 3327 §5.3)', async t => {
  const log: Log = []
  const edge = await node(callee(log, 'edge', 200, 5))
  t.teardown(async () => { await close(edge) })
  const r = await rig(t, (tx, core) => {
    core.forward(tx, [{ requestUri: 'sip:alice@192.0.2.10:5060', route: [`<sip:127.0.0.1:${edge.port};lr>`, '<sip:edge2.example.test;lr>'] }])
  })
  const finals = call(r, 'path-1')
  await until('the final', () => finals.length > 0)
  t.same(finals, [200], 'the edge proxy answered')
  const got = edge.requests[0]!.req
  t.equal(got.uri, 'sip:alice@192.0.2.10:5060', 'Request-URI: the registered contact')
  t.same(got.route.map(x => x.uri), [`sip:127.0.0.1:${edge.port};lr`, 'sip:edge2.example.test;lr'], 'the Path, in order, as Route')
})

t.test('RFC 5626 §5.3: a request routed to our flow URI goes down the registered TCP connection', async t => {
  const log: Log = []
  // The phone: connects to the proxy over TCP (as a REGISTER would) and answers what comes down that connection.
  const phone = await node(callee(log, 'phone', 200, 5), { listen: ['tcp:127.0.0.1:0'] })
  t.teardown(async () => { await close(phone) })
  const seen: Source[] = []
  const r = await rig(t, (tx, core) => {
    if (tx.method === 'OPTIONS') {
      seen.push(tx.source)
      tx.respond(200)
      return
    }
    core.forward(tx, [{}])
  }, ['udp:127.0.0.1:0', 'tcp:127.0.0.1:0'])
  const tcpPort = r.proxy.transport.listeners.find(l => l.transport === 'tcp')!.port
  const optFinals: number[] = []
  let phoneFlow = ''
  const opt = Buffer.from([
    `OPTIONS sip:127.0.0.1:${tcpPort} SIP/2.0`, `Via: SIP/2.0/TCP 127.0.0.1:${phone.port};branch=${newBranch()}`, 'Max-Forwards: 70',
    '<sip:alice@example.test>;tag=p1'.replace(/^/, 'From: '), 'To: <sip:alice@example.test>', 'Call-ID: reg-like@phone', 'CSeq: 1 OPTIONS', 'Content-Length: 0', '', ''
  ].join('\r\n'))
  const sent = await phone.transport.send(opt, { transport: 'tcp', address: '127.0.0.1', port: tcpPort })
  if (sent.ok) phoneFlow = sent.flowId
  phone.transactions.createClient(opt, { transport: 'tcp', address: '127.0.0.1', port: tcpPort, flowId: phoneFlow }, {
    onFinal: res => { optFinals.push(res.status) },
    onTimeout: () => { optFinals.push(-408) },
    onTransportError: () => { optFinals.push(-503) }
  })
  await until('the phone\'s request at the proxy', () => seen.length > 0)
  const flowUri = r.core.flowUri(seen[0]!)!
  t.match(flowUri, new RegExp(`^sip:[A-Za-z0-9_.-]+@127\\.0\\.0\\.1:${tcpPort};transport=tcp;lr$`), 'our address on the flow\'s transport, the token as user part')
  t.same(r.core.ourFlow(parseUri(flowUri)), { transport: 'tcp', address: '127.0.0.1', port: seen[0]!.port, flowId: seen[0]!.flowId }, 'the token names the phone\'s end of the connection and the connection')

  const connectsBefore = r.proxy.transport.counters.tcp.connected
  const finals = call(r, 'flow-1', `<${flowUri}>`)
  await until('the final', () => finals.length > 0)
  t.same(finals, [200], 'the phone answered')
  const got = phone.requests.find(x => x.req.method === 'INVITE')!
  t.equal(got.source.flowId, phoneFlow, 'the INVITE came down the connection the phone opened')
  t.equal(r.proxy.transport.counters.tcp.connected, connectsBefore, 'the proxy opened no connection to the phone')
  t.equal(got.req.route.length, 0, 'our flow Route was consumed')
  t.same(got.req.recordRoute.map(x => x.uri), [`${flowUri.slice(0, flowUri.indexOf('@') + 1)}127.0.0.1:${tcpPort};transport=tcp;lr`, `${flowUri.slice(0, flowUri.indexOf('@') + 1)}127.0.0.1:${r.proxy.port};transport=udp;lr`],
    'both Record-Routes carry the flow token, so in-dialog requests from either side find the flow')
  t.same(r.core.ourFlow(parseUri(got.req.recordRoute[1]!.uri)), r.core.ourFlow(parseUri(flowUri)))

  // The phone's own request with that token on top is not sent back to it (RFC 5626 §5.3: it came from that flow).
  const bye = Buffer.from([
    `BYE sip:media@127.0.0.1:${r.caller.port} SIP/2.0`, `Via: SIP/2.0/TCP 127.0.0.1:${phone.port};branch=${newBranch()}`, 'Max-Forwards: 70',
    'From: <sip:alice@example.test>;tag=p2', 'To: <sip:media@127.0.0.1>;tag=m2', 'Call-ID: flow-bye@phone', 'CSeq: 2 BYE',
    `Route: <${got.req.recordRoute[0]!.uri}>, <${got.req.recordRoute[1]!.uri}>`, 'Content-Length: 0', '', ''
  ].join('\r\n'))
  phone.transactions.createClient(bye, { transport: 'tcp', address: '127.0.0.1', port: tcpPort, flowId: phoneFlow }, { onFinal: () => {}, onTimeout: () => {}, onTransportError: () => {} })
  await until('the phone\'s BYE at the caller', () => r.caller.requests.some(x => x.req.method === 'BYE'))
  t.equal(phone.requests.filter(x => x.req.method === 'BYE').length, 0, 'not looped back down the flow it came from')
  t.notOk(r.core.ourFlow(parseUri(`sip:forged.AAAAAAAAAAAAAAAA@127.0.0.1:${tcpPort};transport=tcp;lr`)), 'a forged token is not ours')
  t.notOk(r.core.ourFlow(parseUri(flowUri.replace('127.0.0.1', '127.0.0.2'))), 'a token at another host is not ours')

  // RFC 5626 §5.3: once the connection is gone, a request for the flow gets 430 Flow Failed, and nothing is connected anew.
  phone.transport.closeFlow(phoneFlow)
  await until('the proxy to see the connection closed', () => !r.proxy.transport.isFlowOpen(seen[0]!.flowId))
  const late = call(r, 'flow-closed', `<${flowUri}>`)
  await until('the final', () => late.length > 0)
  t.same(late, [430], '430 Flow Failed')
  t.equal(r.proxy.transport.counters.tcp.connected, connectsBefore, 'no connection attempted to the phone')
  // A token of another process (a node restarted since the binding was written) names no flow of ours: 430 too.
  const other = flowRouting().encode({ transport: 'tcp', address: '127.0.0.1', port: seen[0]!.port, flowId: seen[0]!.flowId })
  const stale = call(r, 'flow-stale', `<sip:${other}@127.0.0.1:${tcpPort};transport=tcp;lr>`)
  await until('the final', () => stale.length > 0)
  t.same(stale, [430], 'a token this process cannot read: 430')
})
