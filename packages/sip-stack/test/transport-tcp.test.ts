import t from 'tap'
import type { Test } from 'tap'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { createResponse, StreamParser, type SipRequest, type SipResponse } from '@sipd/sip-parser'
import { viaReceivedParams } from '../src/transport-via.js'
import { hasIPv6Loopback, optionsRequest, RecordingLayer, until } from './helpers/transport-peer.js'

/** A TCP client on loopback that frames what it receives into SIP messages. */
interface Client {
  sock: Socket
  /** Every byte received, in order. */
  bytes: () => Buffer
  messages: Array<SipRequest | SipResponse>
  closed: () => boolean
}

async function tcpClient (t: Test, port: number, opts: { host?: string, localAddress?: string } = {}): Promise<Client> {
  const chunks: Buffer[] = []
  const messages: Array<SipRequest | SipResponse> = []
  let closed = false
  const parser = new StreamParser({ onMessage: m => { messages.push(m) }, onError: err => { throw err } })
  const sock = connect({ host: opts.host ?? '127.0.0.1', port, localAddress: opts.localAddress })
  sock.on('data', (b: Buffer) => { chunks.push(b); parser.push(b) })
  sock.on('error', () => {})
  sock.on('close', () => { closed = true })
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve)
    sock.once('close', () => { resolve() })
    sock.once('error', reject)
  })
  t.teardown(() => { sock.destroy() })
  return { sock, bytes: () => Buffer.concat(chunks), messages, closed: () => closed }
}

async function tcpLayer (t: Test, options: ConstructorParameters<typeof RecordingLayer>[0] = {}): Promise<RecordingLayer> {
  const r = new RecordingLayer({ listen: ['tcp:127.0.0.1:0'], ...options })
  await r.layer.listen()
  t.teardown(async () => { await r.layer.close() })
  return r
}

/** Answer every request 200 by Via (the same connection for TCP). */
function answerAll (r: RecordingLayer): void {
  r.onMessage = (msg, source) => {
    if (!msg.isRequest) return
    void r.layer.sendResponse(createResponse(msg, 200, 'OK', { topViaParams: viaReceivedParams(msg.topVia!, source) }), msg.topVia!, source)
  }
}

/** A plain TCP server standing in for another SIP node; records connections and framed messages. */
async function peerServer (t: Test): Promise<{ server: Server, port: number, sockets: Socket[], messages: Array<SipRequest | SipResponse> }> {
  const sockets: Socket[] = []
  const messages: Array<SipRequest | SipResponse> = []
  const server = createServer(sock => {
    sockets.push(sock)
    const parser = new StreamParser({ onMessage: m => { messages.push(m) }, onError: err => { throw err } })
    sock.on('data', (b: Buffer) => { parser.push(b) })
    sock.on('error', () => {})
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    for (const s of sockets) s.destroy()
    await new Promise(resolve => server.close(resolve))
  })
  const a = server.address()
  return { server, port: typeof a === 'object' && a !== null ? a.port : 0, sockets, messages }
}

t.test('TCP framing: a message split at every byte boundary arrives whole', async t => {
  const r = await tcpLayer(t)
  const c = await tcpClient(t, r.port('tcp'))
  const msg = Buffer.from(optionsRequest(1, '127.0.0.1:5060', 'TCP', ['Content-Type: text/plain']).replace('Content-Length: 0', 'Content-Length: 5') + 'hello')
  for (let split = 1; split < msg.length; split++) {
    const before = r.layer.counters.bytesIn.tcp
    c.sock.write(msg.subarray(0, split))
    // The server has read the first part on its own before the rest is sent.
    await until(() => r.layer.counters.bytesIn.tcp === before + split, `first ${split} bytes`)
    c.sock.write(msg.subarray(split))
    await until(() => r.messages.length === split, `message ${split}`)
  }
  t.equal(r.messages.length, msg.length - 1)
  t.ok(r.messages.every(m => m.msg.body.toString() === 'hello' && (m.msg as SipRequest).method === 'OPTIONS'), 'every copy parsed with its body')
  t.equal(r.parseErrors.length, 0)
  t.equal(r.layer.counters.tcp.accepted, 1, 'all over one connection')
})

t.test('TCP framing: 50 messages in one write all arrive, in order', async t => {
  const r = await tcpLayer(t)
  answerAll(r)
  const c = await tcpClient(t, r.port('tcp'))
  let all = ''
  for (let i = 1; i <= 50; i++) all += optionsRequest(i, '127.0.0.1:5060', 'TCP')
  c.sock.write(all)
  await until(() => r.messages.length === 50, '50 messages')
  t.same(r.messages.map(m => (m.msg as SipRequest).cseq.seq), Array.from({ length: 50 }, (_, i) => i + 1))
  await until(() => c.messages.length === 50, '50 responses on the same connection')
  t.same(c.messages.map(m => m.cseq.seq), Array.from({ length: 50 }, (_, i) => i + 1))
  t.equal(r.layer.counters.messagesIn.tcp, 50)
})

t.test('CRLF keep-alive (double CRLF) is answered with one CRLF (RFC 5626 §3.5.1)', async t => {
  const r = await tcpLayer(t)
  answerAll(r)
  const c = await tcpClient(t, r.port('tcp'))
  c.sock.write('\r\n\r\n')
  await until(() => c.bytes().length === 2, 'the pong')
  t.equal(c.bytes().toString(), '\r\n')
  t.equal(r.layer.counters.keepAlivesIn.tcp, 1)
  t.equal(r.layer.counters.keepAlivesOut.tcp, 1)
  c.sock.write(optionsRequest(2, '127.0.0.1:5060', 'TCP'))
  await until(() => c.messages.length === 1, 'a response after the keep-alive')
})

t.test('an endless header is cut at the size limit while another client keeps working', async t => {
  const r = await tcpLayer(t, { maxMessageSize: 4096 })
  answerAll(r)
  const attacker = await tcpClient(t, r.port('tcp'))
  const good = await tcpClient(t, r.port('tcp'))
  attacker.sock.write('OPTIONS sip:sipd@example.net SIP/2.0\r\nX-Endless: ')
  // Bounded: far more than the limit, written until the server hangs up.
  for (let i = 0; i < 64 && !attacker.closed(); i++) {
    attacker.sock.write('a'.repeat(1024))
    good.sock.write(optionsRequest(100 + i, '127.0.0.1:5060', 'TCP'))
    await until(() => good.messages.length === i + 1 || attacker.closed(), 'the good client answered')
  }
  await until(() => attacker.closed() && r.closedFlows.length === 1, 'the attacker cut off')
  t.equal(r.layer.counters.tcp.closed['message-too-large'], 1)
  t.equal(r.layer.counters.parseErrors.SIP_ERR_MESSAGE_TOO_LARGE, 1)
  t.equal(r.parseErrors[0]?.err.code, 'SIP_ERR_MESSAGE_TOO_LARGE')
  t.same(r.closedFlows.map(f => f.reason), ['message-too-large'])
  t.notOk(good.closed(), 'the other connection is still open')
  const before = good.messages.length
  good.sock.write(optionsRequest(999, '127.0.0.1:5060', 'TCP'))
  await until(() => good.messages.length === before + 1, 'the good client still answered')
})

t.test('too many header lines close the connection with their own reason', async t => {
  const r = await tcpLayer(t, { maxHeaders: 20 })
  const c = await tcpClient(t, r.port('tcp'))
  const extra = Array.from({ length: 30 }, (_, i) => `X-H${i}: v`)
  c.sock.write(optionsRequest(1, '127.0.0.1:5060', 'TCP', extra))
  await until(() => c.closed() && r.closedFlows.length === 1, 'the connection closed')
  t.equal(r.layer.counters.tcp.closed['too-many-headers'], 1)
  t.equal(r.parseErrors[0]?.err.code, 'SIP_ERR_TOO_MANY_HEADERS')
  t.equal(r.messages.length, 0)
})

t.test('a framing error can be answered (400) before the connection closes', async t => {
  const r = await tcpLayer(t)
  r.onParseError = (err, source) => {
    const partial = err.partial
    if (partial !== undefined) void r.layer.sendResponse(createResponse(partial, 400, 'Bad Request'), partial.topVia!, source)
  }
  const c = await tcpClient(t, r.port('tcp'))
  // No Content-Length on a stream (RFC 3261 §18.3) and a bad start line.
  c.sock.write('OPTIONS sip:a@b SIP/2.0 extra\r\nVia: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bK1\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: e1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n')
  await until(() => c.closed() && r.closedFlows.length === 1, 'the connection closed')
  t.equal(r.parseErrors.length, 1)
  t.equal(r.layer.counters.tcp.closed['parse-error'], 1)
  t.ok(r.parseErrors[0]?.err.partial, 'the headers were indexed: enough to answer')
  t.equal(c.messages.length, 1, 'the 400 arrived before the close')
  t.equal((c.messages[0] as SipResponse | undefined)?.status, 400)
})

t.test('a message whose headers do not index reaches onParseError as bytes, from its own start, however it was cut into segments', async t => {
  const bad = 'INVITE sip:b@example.test SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKraw\r\nFrom: <sip:a@example.test>;tag=1\r\n' +
    'To: <sip:b@example.test>\r\nCall-ID: raw1\r\nCSeq: 1 INVITE\r\nNoColonHere\r\nContent-Length: 0\r\n\r\n'
  const good = 'OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKok\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\n' +
    'Call-ID: ok1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 5\r\n\r\nhello'
  const cases: Array<[string, string[]]> = [
    ['whole', [bad]],
    ['after two pipelined messages and keep-alives in the same segment', ['\r\n\r\n' + good + '\r\n' + good + bad]],
    // The bad message starts in the first segment and is completed over two more.
    ['split across three segments after a message', [good + bad.slice(0, 40), bad.slice(40, 90), bad.slice(90)]],
    ['in 20 segments', Array.from({ length: 20 }, (_, i) => bad.slice(i * Math.ceil(bad.length / 20), (i + 1) * Math.ceil(bad.length / 20)))]
  ]
  for (const [name, segments] of cases) {
    const r = await tcpLayer(t)
    const c = await tcpClient(t, r.port('tcp'))
    c.sock.setNoDelay(true)
    for (const seg of segments) {
      c.sock.write(seg)
      // Separate segments: wait until the previous bytes were read.
      if (segments.length > 1) await new Promise(resolve => setTimeout(resolve, 15))
    }
    await until(() => r.parseErrors.length === 1 && c.closed(), `${name}: the parse error`)
    const raw = r.parseErrors[0]!.raw
    t.equal(r.parseErrors[0]!.err.code, 'SIP_ERR_BAD_HEADER', name)
    t.equal(raw?.toString('latin1').replace(/^(\r\n)+/, ''), bad, `${name}: the failed message's bytes, nothing of the messages before it`)
  }
})

t.test('a message trickled in more segments than the flow keeps: its parse error comes without bytes (bounded memory)', async t => {
  const bad = 'INVITE sip:b@example.test SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKraw\r\nFrom: <sip:a@example.test>;tag=1\r\n' +
    'To: <sip:b@example.test>\r\nCall-ID: raw2\r\nCSeq: 1 INVITE\r\nNoColonHere\r\nContent-Length: 0\r\n\r\n'
  const r = await tcpLayer(t)
  const c = await tcpClient(t, r.port('tcp'))
  c.sock.setNoDelay(true)
  // 64 segments (twice the flow's bound), each read on its own.
  for (let i = 0; i < 64; i++) {
    c.sock.write(bad.slice(i * 3, i === 63 ? bad.length : (i + 1) * 3))
    await new Promise(resolve => setTimeout(resolve, 5))
  }
  await until(() => r.parseErrors.length === 1 && c.closed(), 'the parse error')
  t.equal(r.parseErrors[0]!.err.code, 'SIP_ERR_BAD_HEADER')
  t.equal(r.parseErrors[0]!.raw, undefined, 'no bytes: the start of the message was let go')
})

t.test('bytes no SIP message starts with (a TLS ClientHello, binary) close the connection at once', async t => {
  for (const [name, bytes] of [
    ['TLS ClientHello', Buffer.from('16030100a5010000a10303', 'hex')],
    ['a NUL after a keep-alive and a message', Buffer.concat([Buffer.from('\r\n\r\n' + optionsRequest(1, '127.0.0.1:5060', 'TCP')), Buffer.from([0, 1, 2])])],
    ['a space', Buffer.from(' INVITE')],
    // Starting with a token character: refused once the first line ends (the stream parser), not at max size or idle.
    ['an HTTP request line', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n')],
    ['a line of text', Buffer.from('AAAA BBBB CCCC\r\nmore')]
  ] as const) {
    const r = await tcpLayer(t, { tcpIdleTimeout: 60_000 })
    answerAll(r)
    const c = await tcpClient(t, r.port('tcp'))
    c.sock.write(bytes)
    await until(() => c.closed(), `${name}: closed`, 1000)
    t.equal(r.parseErrors[0]?.err.code, 'SIP_ERR_BAD_START_LINE', `${name}: counted as a bad start line`)
    // The server counts the close on its own socket's 'close', which may come after the client saw the FIN.
    await until(() => r.layer.counters.tcp.closed['parse-error'] > 0, `${name}: close counted`, 1000)
    t.equal(r.layer.counters.tcp.closed['parse-error'], 1, `${name}: closed for a parse error`)
    if (name.startsWith('a NUL')) t.equal(c.messages.length, 1, 'the message before it was answered')
  }
})

t.test('max connections per source address: extra connections are destroyed at once and counted', async t => {
  const r = await tcpLayer(t, { maxTcpConnectionsPerAddress: 3, maxTcpConnections: 5 })
  answerAll(r)
  const port = r.port('tcp')
  const clients: Client[] = []
  for (let i = 0; i < 5; i++) clients.push(await tcpClient(t, port))
  await until(() => r.layer.counters.tcp.accepted + r.layer.counters.tcp.refused === 5, 'five connections seen')
  await until(() => clients.filter(c => c.closed()).length === 2, 'two refused')
  t.equal(r.layer.counters.tcp.accepted, 3)
  t.equal(r.layer.counters.tcp.refused, 2)
  t.equal(r.layer.tcpConnections, 3)
  // Another source address (127.0.0.2 is loopback too) is not limited by 127.0.0.1's count...
  const other = await tcpClient(t, port, { localAddress: '127.0.0.2' })
  other.sock.write(optionsRequest(7, '127.0.0.2:5060', 'TCP'))
  await until(() => other.messages.length === 1, 'the other address is served')
  // ...but the total limit holds.
  await tcpClient(t, port, { localAddress: '127.0.0.3' })
  const sixth = await tcpClient(t, port, { localAddress: '127.0.0.4' })
  await until(() => sixth.closed(), 'beyond the total limit')
  t.equal(r.layer.counters.tcp.refused, 3)
  for (const [i, c] of clients.entries()) {
    if (c.closed()) continue
    c.sock.write(optionsRequest(20 + i, '127.0.0.1:5060', 'TCP'))
    await until(() => c.messages.length === 1, `accepted client ${i} served`)
  }
  t.equal(r.layer.counters.tcp.open, 5)
})

t.test('an idle connection is closed after the configured timeout', async t => {
  const r = await tcpLayer(t, { tcpIdleTimeout: 200 })
  const c = await tcpClient(t, r.port('tcp'))
  await until(() => c.closed() && r.closedFlows.length === 1, 'the idle close')
  t.equal(r.layer.counters.tcp.closed.idle, 1)
  t.same(r.closedFlows.map(f => f.reason), ['idle'])
  t.equal(r.layer.tcpConnections, 0)
})

t.test('a response goes back on the connection the request came in on', async t => {
  const r = await tcpLayer(t)
  answerAll(r)
  const c = await tcpClient(t, r.port('tcp'))
  // The sent-by is unreachable: only the connection itself can carry the answer.
  c.sock.write(optionsRequest(1, '192.0.2.200:5999', 'TCP'))
  await until(() => c.messages.length === 1, 'the response')
  t.equal((c.messages[0] as SipResponse).status, 200)
  t.equal(c.messages[0]!.topVia?.received, '127.0.0.1')
  t.equal(r.messages[0]!.source.flowId, 'tcp/1')
  t.equal(r.layer.counters.tcp.accepted, 1)
  t.equal(r.layer.counters.tcp.connected, 0, 'no new connection was opened')
})

t.test('when the request connection is gone, the response opens one to received and the sent-by port', async t => {
  const r = await tcpLayer(t)
  const peer = await peerServer(t)
  const c = await tcpClient(t, r.port('tcp'))
  c.sock.write(optionsRequest(1, `127.0.0.1:${peer.port}`, 'TCP'))
  await until(() => r.messages.length === 1, 'the request')
  c.sock.destroy()
  await until(() => r.layer.tcpConnections === 0, 'the server saw the close')
  const { msg, source } = r.messages[0]!
  const req = msg as SipRequest
  const res = await r.layer.sendResponse(createResponse(req, 200, 'OK'), req.topVia!, source)
  t.ok(res.ok)
  await until(() => peer.messages.length === 1, 'the response at the sent-by')
  t.equal((peer.messages[0] as SipResponse).status, 200)
  t.equal(r.layer.counters.tcp.connected, 1)
})

t.test('outbound connections are reused for later messages to the same peer', async t => {
  const r = await tcpLayer(t)
  const peer = await peerServer(t)
  const target = { transport: 'tcp' as const, address: '127.0.0.1', port: peer.port }
  const [a, b] = await Promise.all([
    r.layer.send(Buffer.from(optionsRequest(1, '127.0.0.1:5060', 'TCP')), target),
    r.layer.send(Buffer.from(optionsRequest(2, '127.0.0.1:5060', 'TCP')), target)
  ])
  const c = await r.layer.send(Buffer.from(optionsRequest(3, '127.0.0.1:5060', 'TCP')), target)
  t.ok(a?.ok && b?.ok && c.ok)
  await until(() => peer.messages.length === 3, 'three requests')
  t.equal(peer.sockets.length, 1, 'one connection for all three')
  if (a?.ok === true && c.ok) {
    t.equal(a.flowId, c.flowId)
    t.equal(a.local.address, '127.0.0.1')
  }
  t.equal(r.layer.counters.tcp.connected, 1)
  t.equal(r.layer.counters.messagesOut.tcp, 3)

  // The peer answers on the same connection: the response arrives with that flow.
  peer.sockets[0]!.write(createResponse(peer.messages[0] as SipRequest, 200, 'OK'))
  await until(() => r.messages.length === 1, 'the response from the peer')
  t.equal(r.messages[0]!.source.flowId, a?.ok === true ? a.flowId : '')
  t.equal(r.messages[0]!.source.port, peer.port)
})

t.test('an inbound connection is reused for requests to that peer, by address or by flow id', async t => {
  const r = await tcpLayer(t)
  const phone = await tcpClient(t, r.port('tcp'))
  phone.sock.write(optionsRequest(1, '10.0.0.9:5060', 'TCP'))
  await until(() => r.messages.length === 1, 'the registration-like request')
  const { source } = r.messages[0]!
  const byAddr = await r.layer.send(Buffer.from(optionsRequest(2, '127.0.0.1:5060', 'TCP')), { transport: 'tcp', address: source.address, port: source.port })
  const byFlow = await r.layer.send(Buffer.from(optionsRequest(3, '127.0.0.1:5060', 'TCP')), { transport: 'tcp', address: '192.0.2.1', port: 5060, flowId: source.flowId })
  t.ok(byAddr.ok && byFlow.ok)
  await until(() => phone.messages.length === 2, 'both requests down the phone\'s connection')
  t.same(phone.messages.map(m => m.cseq.seq), [2, 3])
  t.equal(r.layer.counters.tcp.connected, 0)
  t.ok(r.layer.isFlowOpen(source.flowId))
  r.layer.closeFlow(source.flowId)
  await until(() => phone.closed(), 'closeFlow closed it')
  t.notOk(r.layer.isFlowOpen(source.flowId))
})

t.test('a failed connect is reported as a value and counted', async t => {
  const r = await tcpLayer(t)
  // A port nobody listens on: bind a server, note its port, close it.
  const probe = createServer()
  await new Promise<void>(resolve => probe.listen(0, '127.0.0.1', resolve))
  const port = (probe.address() as { port: number }).port
  await new Promise(resolve => probe.close(resolve))
  const res = await r.layer.send(Buffer.from(optionsRequest(1, '127.0.0.1:5060', 'TCP')), { transport: 'tcp', address: '127.0.0.1', port })
  t.equal(res.ok, false)
  if (!res.ok) t.equal(typeof res.error.code, 'string')
  await until(() => r.layer.counters.tcp.closed['connect-failed'] === 1, 'the connect failure counted')
  t.equal(r.layer.counters.sendErrors.tcp, 1)
  const named = await r.layer.send(Buffer.from('x'), { transport: 'tcp', address: 'example.com', port: 5060 })
  t.equal(named.ok, false)
  if (!named.ok) t.equal(named.error.code, 'SIP_ERR_BAD_ADDRESS')
})

t.test('a peer that stops reading is dropped once the write queue is full', async t => {
  const r = await tcpLayer(t, { tcpMaxWriteBuffer: 64 * 1024 })
  const c = await tcpClient(t, r.port('tcp'))
  c.sock.pause()
  c.sock.write(optionsRequest(1, '127.0.0.1:5060', 'TCP'))
  await until(() => r.messages.length === 1, 'the request')
  const flowId = r.messages[0]!.source.flowId
  const chunk = Buffer.alloc(16 * 1024, 0x61)
  let writes = 0
  // Kernel buffers take some megabytes first; bounded at 64 MiB.
  while (r.layer.isFlowOpen(flowId) && writes < 4096) {
    void r.layer.send(chunk, { transport: 'tcp', address: '127.0.0.1', port: 1, flowId })
    writes++
    if (writes % 64 === 0) await new Promise(resolve => setImmediate(resolve))
  }
  t.notOk(r.layer.isFlowOpen(flowId), `dropped after ${writes} writes`)
  await until(() => r.layer.counters.tcp.closed['write-overflow'] === 1, 'counted as write-overflow')
})

t.test('close() stops listening and closes every connection', async t => {
  const r = new RecordingLayer({ listen: ['tcp:127.0.0.1:0', 'udp:127.0.0.1:0'] })
  await r.layer.listen()
  const port = r.port('tcp')
  const a = await tcpClient(t, port)
  const b = await tcpClient(t, port)
  await until(() => r.layer.tcpConnections === 2, 'two connections')
  await r.layer.close()
  t.equal(r.layer.status, 'closed')
  await until(() => a.closed() && b.closed(), 'clients see the close')
  t.equal(r.layer.counters.tcp.closed.shutdown, 2)
  t.equal(r.layer.counters.tcp.open, 0)
  const late = connect({ host: '127.0.0.1', port })
  const err = await new Promise<unknown>(resolve => { late.once('error', resolve); late.once('connect', () => { resolve(undefined) }) })
  late.destroy()
  t.match(err, { code: 'ECONNREFUSED' }, 'no longer listening')
  const res = await r.layer.send(Buffer.from('x'), { transport: 'tcp', address: '127.0.0.1', port })
  t.equal(res.ok, false)
})

// Runs where ::1 is configured (it is on the machines sipd is built on).
if (hasIPv6Loopback()) {
  t.test('IPv6: TCP request and response on ::1, connection reuse by address', async t => {
    const r = await tcpLayer(t, { listen: ['tcp:[::1]:0'] })
    answerAll(r)
    const c = await tcpClient(t, r.port('tcp', 6), { host: '::1' })
    c.sock.write(optionsRequest(1, '[::1]:5060', 'TCP'))
    await until(() => c.messages.length === 1, 'the response')
    const { source } = r.messages[0]!
    t.equal(source.address, '::1')
    t.equal(source.local.address, '::1')
    const again = await r.layer.send(Buffer.from(optionsRequest(2, '[::1]:5060', 'TCP')), { transport: 'tcp', address: '[0:0::1]', port: source.port })
    t.ok(again.ok)
    await until(() => c.messages.length === 2, 'reused by a non-canonical IPv6 address')
    t.equal(r.layer.counters.tcp.connected, 0)
  })
}
