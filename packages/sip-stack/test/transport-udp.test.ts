import t from 'tap'
import type { Test } from 'tap'
import { createSocket, type Socket } from 'node:dgram'
import { createResponse, parseMessage, type SipRequest } from '@sipd/sip-parser'
import { DEFAULT_TRANSPORT_OPTIONS } from '../src/transport-options.js'
import { TransportLayer } from '../src/transport-layer.js'
import { responseDestination, viaReceivedParams } from '../src/transport-via.js'
import { parseListenAddress } from '../src/transport-address.js'
import { Resolver } from '../src/resolver.js'
import type { Source, ViaFields } from '../src/transport-types.js'
import { hasIPv6Loopback, optionsRequest, RecordingLayer, until } from './helpers/transport-peer.js'

/** A UDP client socket on loopback that records the datagrams it receives. */
async function udpClient (t: Test, family: 4 | 6 = 4): Promise<{ sock: Socket, port: number, got: Buffer[] }> {
  const sock = createSocket(family === 6 ? 'udp6' : 'udp4')
  const got: Buffer[] = []
  sock.on('message', buf => { got.push(buf) })
  await new Promise<void>(resolve => sock.bind(0, family === 6 ? '::1' : '127.0.0.1', resolve))
  t.teardown(() => { sock.close() })
  return { sock, port: sock.address().port, got }
}

async function udpLayer (t: Test, options: ConstructorParameters<typeof RecordingLayer>[0] = {}): Promise<RecordingLayer> {
  const r = new RecordingLayer({ listen: ['udp:127.0.0.1:0'], ...options })
  await r.layer.listen()
  t.teardown(async () => { await r.layer.close() })
  return r
}

function via (fields: Partial<ViaFields>): ViaFields {
  return { transport: 'UDP', host: '192.0.2.1', port: 5060, received: undefined, rport: undefined, params: new Map(), ...fields }
}

const SRC: Source = Object.freeze({ transport: 'udp', address: '203.0.113.7', port: 40000, local: { address: '127.0.0.1', port: 5060 }, flowId: 'udp/0/203.0.113.7/40000' })

t.test('received/rport decision (RFC 3261 §18.2.1, RFC 3581 §4)', async t => {
  t.equal(viaReceivedParams(via({ host: '203.0.113.7' }), SRC), undefined, 'sent-by equals the source: nothing to add')
  t.same(viaReceivedParams(via({ host: '192.0.2.1' }), SRC), { received: '203.0.113.7' }, 'other address: received')
  t.same(viaReceivedParams(via({ host: 'phone.example.com' }), SRC), { received: '203.0.113.7' }, 'a name: received')
  t.same(viaReceivedParams(via({ host: '203.0.113.7', rport: null }), SRC), { received: '203.0.113.7', rport: 40000 },
    'empty rport: rport filled and received added even when the address matches')
  t.same(viaReceivedParams(via({ host: '10.0.0.5', rport: null }), SRC), { received: '203.0.113.7', rport: 40000 })
  t.equal(viaReceivedParams(via({ host: '203.0.113.7', rport: 5060 }), SRC), undefined, 'an rport with a value is left alone')
  const v6: Source = { ...SRC, address: '2001:db8::7' }
  t.equal(viaReceivedParams(via({ host: '[2001:DB8:0:0::7]' }), v6), undefined, 'IPv6 compared in canonical form')
  t.same(viaReceivedParams(via({ host: '[2001:db8::8]' }), v6), { received: '2001:db8::7' })
})

t.test('response destination (RFC 3261 §18.2.2, RFC 3581 §4)', async t => {
  t.same(responseDestination(via({ host: '10.0.0.5', port: 5062, rport: null }), SRC),
    { transport: 'udp', host: '203.0.113.7', port: 40000, flowId: SRC.flowId }, 'rport: the source address and port')
  t.same(responseDestination(via({ host: '10.0.0.5', port: 5062 }), SRC),
    { transport: 'udp', host: '203.0.113.7', port: 5062, flowId: SRC.flowId }, 'no rport: received with the sent-by port')
  t.same(responseDestination(via({ host: '10.0.0.5', received: '198.51.100.1', rport: 7000 })),
    { transport: 'udp', host: '198.51.100.1', port: 7000, flowId: undefined }, 'received/rport already on the Via (no source)')
  t.same(responseDestination(via({ host: '10.0.0.5', port: undefined, params: new Map([['maddr', '239.1.1.1']]) }), SRC),
    { transport: 'udp', host: '239.1.1.1', port: 5060, flowId: SRC.flowId }, 'maddr wins')
  t.same(responseDestination(via({ host: 'proxy.example.com', port: undefined })),
    { transport: 'udp', host: 'proxy.example.com', port: undefined, flowId: undefined }, 'a sent-by name without port: SRV per RFC 3263 §5')
  t.same(responseDestination(via({ host: '192.0.2.1', port: undefined })),
    { transport: 'udp', host: '192.0.2.1', port: 5060, flowId: undefined })
  const tcpSrc: Source = { ...SRC, transport: 'tcp', flowId: 'tcp/9' }
  t.same(responseDestination(via({ transport: 'TCP', host: '10.0.0.5', port: 5070, rport: null }), tcpSrc),
    { transport: 'tcp', host: '203.0.113.7', port: 5070, flowId: 'tcp/9' }, 'TCP: the flow, then received with the sent-by port')
  t.equal(responseDestination(via({ transport: 'SCTP' })), undefined, 'unsupported sent-protocol')
})

t.test('UDP round trip: request in, response back to the source by rport', async t => {
  const r = await udpLayer(t)
  const client = await udpClient(t)
  const port = r.port('udp')
  r.onMessage = (msg, source) => {
    const req = msg as SipRequest
    const topVia = req.topVia!
    const params = viaReceivedParams(topVia, source)
    void r.layer.sendResponse(createResponse(req, 200, 'OK', { topViaParams: params, toTag: 'x' }), topVia, source)
  }
  // The sent-by claims a private address behind NAT; only rport gets the answer home.
  client.sock.send(optionsRequest(1, '10.1.2.3:5060;rport'), port, '127.0.0.1')
  await until(() => client.got.length === 1, 'the response')
  const resp = parseMessage(client.got[0]!)
  t.equal(resp.isRequest, false)
  if (!resp.isRequest) t.equal(resp.status, 200)
  t.equal(resp.topVia?.received, '127.0.0.1')
  t.equal(resp.topVia?.rport, client.port)
  const { source } = r.messages[0]!
  t.equal(source.transport, 'udp')
  t.equal(source.address, '127.0.0.1')
  t.equal(source.port, client.port)
  t.same(source.local, { address: '127.0.0.1', port })
  t.equal(source.flowId, `udp/0/127.0.0.1/${client.port}`)
  t.equal(r.layer.counters.messagesIn.udp, 1)
  await until(() => r.layer.counters.messagesOut.udp === 1, 'the out counter')
  t.ok(r.layer.counters.bytesIn.udp > 100 && r.layer.counters.bytesOut.udp > 100)
})

t.test('a sender\'s datagrams share one Source; other senders get their own, right to the field', async t => {
  // Transactions hold their Source 32 s: one object per trunk or media node, not one per datagram.
  const r = await udpLayer(t)
  const port = r.port('udp')
  const clients = []
  for (let i = 0; i < 10; i++) clients.push(await udpClient(t))
  const send = async (c: { sock: Socket }, n: number): Promise<void> => {
    const before = r.messages.length
    c.sock.send(optionsRequest(n, '127.0.0.1:5060'), port, '127.0.0.1')
    await until(() => r.messages.length === before + 1, `message ${n}`)
  }
  await send(clients[0]!, 1)
  await send(clients[0]!, 2)
  await send(clients[1]!, 3)
  const [a, b, c] = r.messages.map(m => m.source)
  t.equal(a, b, 'the same sender: the same Source object')
  t.not(c, a, 'another sender: another Source')
  t.equal(c!.port, clients[1]!.port)
  t.equal(c!.flowId, `udp/0/127.0.0.1/${clients[1]!.port}`)
  // Nine more senders push the first out of the socket's few remembered ones: a new, equal Source.
  for (let i = 1; i < 10; i++) await send(clients[i]!, 10 + i)
  await send(clients[0]!, 30)
  const last = r.messages[r.messages.length - 1]!.source
  t.not(last, a, 'forgotten after many other senders')
  t.same(last, a, 'and made again with the same fields')
  for (const [i, m] of r.messages.entries()) {
    const from = clients.find(cl => cl.port === m.source.port)
    t.ok(from !== undefined && m.source.flowId === `udp/0/127.0.0.1/${from.port}` && m.source.address === '127.0.0.1', `message ${i}: its own sender's Source`)
  }
})

t.test('UDP response without rport goes to received at the sent-by port', async t => {
  const r = await udpLayer(t)
  const sender = await udpClient(t)
  const listener = await udpClient(t)
  r.onMessage = (msg, source) => {
    const req = msg as SipRequest
    void r.layer.sendResponse(createResponse(req, 200, 'OK', { topViaParams: viaReceivedParams(req.topVia!, source) }), req.topVia!, source)
  }
  sender.sock.send(optionsRequest(2, `127.0.0.1:${listener.port}`), r.port('udp'), '127.0.0.1')
  await until(() => listener.got.length === 1, 'the response at the sent-by port')
  t.equal(sender.got.length, 0, 'nothing sent to the source port')
})

t.test('a response to a sent-by name is resolved per RFC 3263 §5 (SRV when no port)', async t => {
  const peer = await udpClient(t)
  const queries: string[] = []
  const dns = {
    resolve4: async (name: string) => { queries.push('A ' + name); return name === 'edge.test' ? [{ address: '127.0.0.1', ttl: 60 }] : [] },
    resolve6: async (name: string) => { queries.push('AAAA ' + name); return [] },
    resolveSrv: async (name: string) => {
      queries.push('SRV ' + name)
      return name === '_sip._udp.edge.test' ? [{ name: 'edge.test', port: peer.port, priority: 1, weight: 1 }] : []
    }
  }
  const r = await udpLayer(t, { resolver: new Resolver({ dns }) })
  const req = parseMessage(optionsRequest(11, 'edge.test')) as SipRequest
  const res = await r.layer.sendResponse(createResponse(req, 200, 'OK'), req.topVia!)
  t.ok(res.ok)
  await until(() => peer.got.length === 1, 'the response at the SRV target')
  t.same(queries.sort(), ['A edge.test', 'AAAA edge.test', 'SRV _sip._udp.edge.test'])
  const lost = parseMessage(optionsRequest(12, 'nowhere.test')) as SipRequest
  const none = await r.layer.sendResponse(createResponse(lost, 200, 'OK'), lost.topVia!)
  t.equal(none.ok, false)
  if (!none.ok) t.equal(none.error.code, 'SIP_ERR_UNRESOLVED')
})

t.test('send() to a UDP destination and via a flow id', async t => {
  const r = await udpLayer(t)
  const peer = await udpClient(t)
  const res = await r.layer.send(Buffer.from(optionsRequest(3, '127.0.0.1:5060')), { transport: 'udp', address: '127.0.0.1', port: peer.port })
  t.ok(res.ok)
  if (res.ok) {
    t.equal(res.flowId, `udp/0/127.0.0.1/${peer.port}`)
    t.same(res.local, { address: '127.0.0.1', port: r.port('udp') })
    t.ok(r.layer.isFlowOpen(res.flowId))
    const again = await r.layer.send(Buffer.from(optionsRequest(4, '127.0.0.1:5060')), { transport: 'udp', address: '127.0.0.1', port: peer.port, flowId: res.flowId })
    t.ok(again.ok)
  }
  await until(() => peer.got.length === 2, 'two requests')
  const noV6 = await r.layer.send(Buffer.from('x'), { transport: 'udp', address: '::1', port: peer.port })
  t.equal(noV6.ok, false)
  if (!noV6.ok) t.equal(noV6.error.code, 'SIP_ERR_NO_TRANSPORT', 'no IPv6 socket for an IPv6 destination')
})

t.test('CRLF keep-alive datagrams: counted and ignored, or answered when configured', async t => {
  const quiet = await udpLayer(t)
  const c1 = await udpClient(t)
  c1.sock.send('\r\n\r\n', quiet.port('udp'), '127.0.0.1')
  c1.sock.send(optionsRequest(5, '127.0.0.1:1'), quiet.port('udp'), '127.0.0.1')
  await until(() => quiet.messages.length === 1, 'the request after the keep-alive')
  t.equal(quiet.layer.counters.keepAlivesIn.udp, 1)
  t.equal(quiet.layer.counters.keepAlivesOut.udp, 0)
  t.equal(quiet.parseErrors.length, 0, 'a keep-alive is not a parse error')
  t.equal(c1.got.length, 0, 'no answer by default')

  const chatty = await udpLayer(t, { udpKeepAliveReply: true })
  const c2 = await udpClient(t)
  c2.sock.send('\r\n\r\n', chatty.port('udp'), '127.0.0.1')
  await until(() => c2.got.length === 1, 'the CRLF answer')
  t.equal(c2.got[0]!.toString(), '\r\n')
})

t.test('garbage and oversize datagrams reach onParseError and are counted; later messages still work', async t => {
  const r = await udpLayer(t, { maxMessageSize: 600 })
  const c = await udpClient(t)
  c.sock.send('HELLO WORLD\r\n\r\n', r.port('udp'), '127.0.0.1')
  const big = optionsRequest(6, '127.0.0.1:1', 'UDP', ['Subject: ' + 'x'.repeat(700)])
  c.sock.send(big, r.port('udp'), '127.0.0.1')
  c.sock.send(optionsRequest(7, '127.0.0.1:1'), r.port('udp'), '127.0.0.1')
  await until(() => r.messages.length === 1 && r.parseErrors.length === 2, 'two errors and one message')
  const [garbage, oversize] = r.parseErrors
  t.equal(garbage!.raw?.toString(), 'HELLO WORLD\r\n\r\n', 'the datagram is handed over')
  t.equal(garbage!.source.port, c.port)
  t.equal(oversize!.err.code, 'SIP_ERR_MESSAGE_TOO_LARGE')
  t.equal((oversize!.err.partial as SipRequest | undefined)?.method, 'OPTIONS', 'parsed anyway so that 513 can be answered')
  t.equal(r.layer.counters.parseErrors.SIP_ERR_MESSAGE_TOO_LARGE, 1)
  t.equal(Object.values(r.layer.counters.parseErrors).reduce((a, b) => a + b, 0), 2)
  t.equal((r.messages[0]!.msg as SipRequest).cseq.seq, 7)
})

t.test('a throwing handler is counted and the socket keeps serving', async t => {
  const r = await udpLayer(t)
  const c = await udpClient(t)
  let first = true
  r.onMessage = () => {
    if (first) { first = false; throw new Error('element bug') }
  }
  c.sock.send(optionsRequest(8, '127.0.0.1:1'), r.port('udp'), '127.0.0.1')
  c.sock.send(optionsRequest(9, '127.0.0.1:1'), r.port('udp'), '127.0.0.1')
  await until(() => r.messages.length === 2, 'both messages')
  t.equal(r.layer.counters.handlerErrors, 1)
})

t.test('socket buffer sizes are applied where the OS allows and reported', async t => {
  const r = await udpLayer(t, { udpRecvBufferSize: 256 * 1024, udpSendBufferSize: 256 * 1024 })
  const info = r.layer.listeners[0]!
  t.ok((info.recvBufferSize ?? 0) >= 64 * 1024, `receive buffer ${String(info.recvBufferSize)}`)
  t.ok((info.sendBufferSize ?? 0) >= 64 * 1024, `send buffer ${String(info.sendBufferSize)}`)
})

t.test('chooseTransport: large UDP requests go over TCP when allowed (RFC 3261 §18.1.1)', async t => {
  const both = new TransportLayer({ onMessage () {} }, { listen: ['udp:127.0.0.1:0', 'tcp:127.0.0.1:0'] })
  t.equal(both.chooseTransport({ transport: 'udp' }, 1300), 'udp')
  t.equal(both.chooseTransport({ transport: 'udp' }, 1301), 'tcp')
  t.equal(both.chooseTransport({ transport: 'udp', maySwitch: false }, 5000), 'udp')
  t.equal(both.chooseTransport({ transport: 'tcp' }, 10), 'tcp')
  t.equal(both.counters.udpToTcp, 1)
  const udpOnly = new TransportLayer({ onMessage () {} }, { listen: ['udp:127.0.0.1:0'], udpMtuLimit: 500 })
  t.equal(udpOnly.chooseTransport({ transport: 'udp' }, 5000), 'udp', 'no TCP listener: stays UDP')
})

t.test('listen addresses and options are validated at construction', async t => {
  t.same(parseListenAddress('udp:127.0.0.1:5070'), { transport: 'udp', address: '127.0.0.1', port: 5070, family: 4 })
  t.same(parseListenAddress('TCP:[::1]:0'), { transport: 'tcp', address: '::1', port: 0, family: 6 })
  t.same(parseListenAddress('udp:0.0.0.0'), { transport: 'udp', address: '0.0.0.0', port: 5060, family: 4 })
  for (const bad of ['sctp:127.0.0.1:5060', 'udp:localhost:5060', 'udp:::1:5060', 'tcp:[::1', 'udp:127.0.0.1:70000', 'udp:127.0.0.1:x', 'tcp:[127.0.0.1]:5060']) {
    t.throws(() => new TransportLayer({ onMessage () {} }, { listen: [bad] }), { code: 'SIP_ERR_INVALID_OPTION', option: 'listen' }, bad)
  }
  t.throws(() => new TransportLayer({ onMessage () {} }, { tcpIdleTimeout: 0 }), { code: 'SIP_ERR_INVALID_OPTION', option: 'tcpIdleTimeout' })
  t.throws(() => new TransportLayer({ onMessage () {} }, { maxTcpConnections: 2, maxTcpConnectionsPerAddress: 3 }), { code: 'SIP_ERR_INVALID_OPTION', option: 'maxTcpConnectionsPerAddress' })
  t.throws(() => new TransportLayer({ onMessage () {} }, { udpKeepAliveReply: 'yes' as unknown as boolean }), { code: 'SIP_ERR_INVALID_OPTION', option: 'udpKeepAliveReply' })
  t.throws(() => new TransportLayer({} as never), TypeError)
  t.ok(Object.isFrozen(DEFAULT_TRANSPORT_OPTIONS))
})

t.test('listen() on a port in use rejects and releases what it bound; close() is idempotent', async t => {
  const first = await udpLayer(t)
  const second = new TransportLayer({ onMessage () {} }, { listen: ['tcp:127.0.0.1:0', `udp:127.0.0.1:${first.port('udp')}`] })
  await t.rejects(second.listen(), { code: 'EADDRINUSE' })
  t.equal(second.status, 'closed')
  await second.close()
  t.equal(second.status, 'closed')
})

// Runs where ::1 is configured (it is on the machines sipd is built on).
if (hasIPv6Loopback()) t.test('IPv6: UDP round trip on ::1', async t => {
  const r = new RecordingLayer({ listen: ['udp:[::1]:0', 'udp:127.0.0.1:0'] })
  await r.layer.listen()
  t.teardown(async () => { await r.layer.close() })
  const c = await udpClient(t, 6)
  r.onMessage = (msg, source) => {
    const req = msg as SipRequest
    void r.layer.sendResponse(createResponse(req, 200, 'OK', { topViaParams: viaReceivedParams(req.topVia!, source) }), req.topVia!, source)
  }
  c.sock.send(optionsRequest(10, '[2001:db8::99]:5060;rport'), r.port('udp', 6), '::1')
  await until(() => c.got.length === 1, 'the IPv6 response')
  const resp = parseMessage(c.got[0]!)
  t.equal(resp.topVia?.received, '::1')
  t.equal(resp.topVia?.rport, c.port)
  const { source } = r.messages[0]!
  t.equal(source.address, '::1')
  t.equal(source.local.address, '::1')
  t.equal(source.flowId, `udp/0/::1/${c.port}`)
})
