// sipd over TCP, the parts sipd-tcp.test.ts leaves out, through sipd's YAML
// `limits`: the total connection limit (excess closed, capacity freed when a
// connection ends), the idle timeout (an idle connection closed, one kept
// alive with CRLF pings not), the message timeout (a message trickled a
// byte at a time, or left half-sent, is cut off at tcp_message_timeout_ms), a message whose Content-Length exceeds
// max_message_size (connection closed, others served; 513 over UDP), and
// responses going back on the request's connection whatever port its Via
// names (RFC 3261 §18.2.2).
//
// Loopback addresses 127.0.0.90–127.0.0.99 are this file's own.
import t from 'tap'
import type { Test } from 'tap'
import dgram from 'node:dgram'
import net from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort } from './helpers/servers.js'
import { spawnSipd } from './helpers/spawn-sipd.js'
import type { SipdHandle } from './helpers/spawn-sipd.js'
import { delay } from './helpers/process.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const element = path.join(here, 'fixtures', 'uas-element.mjs')
let seq = 0

function request (method: string, port: number, via: string, opts: { body?: string, extra?: string[] } = {}): string {
  const n = ++seq
  const body = opts.body ?? ''
  return [
    `${method} sip:user@127.0.0.1:${port} SIP/2.0`,
    `Via: ${via};branch=z9hG4bK-stcp-${n}-${process.pid}`,
    `From: <sip:probe@example.com>;tag=s${n}`,
    `To: <sip:user@127.0.0.1:${port}>`,
    `Call-ID: stcp-${n}-${process.pid}@test`,
    `CSeq: ${n} ${method}`,
    'Max-Forwards: 70',
    ...(opts.extra ?? []),
    `Content-Length: ${Buffer.byteLength(body)}`,
    '', body
  ].join('\r\n')
}

interface Client { sock: net.Socket, text: () => string, closed: () => boolean, via: string }

async function connect (port: number, localAddress: string): Promise<Client> {
  const sock = net.connect({ host: '127.0.0.1', port, localAddress, noDelay: true })
  let received = ''
  let isClosed = false
  sock.on('data', d => { received += d.toString('latin1') })
  sock.on('close', () => { isClosed = true })
  sock.on('error', () => { isClosed = true })
  await new Promise<void>((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject) })
  return { sock, text: () => received, closed: () => isClosed, via: `SIP/2.0/TCP ${localAddress}:${sock.localPort}` }
}

async function until (cond: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms
  while (!(await cond()) && Date.now() < end) await delay(10)
  return await cond()
}

const count = (text: string, status: string): number => text.split(`SIP/2.0 ${status} `).length - 1

async function metric (sipd: SipdHandle, line: string): Promise<number> {
  const text = await (await fetch(`${sipd.httpUrl}/metrics`)).text()
  const hit = text.split('\n').find(l => l.startsWith(line + ' '))
  return hit === undefined ? 0 : Number(hit.slice(line.length + 1))
}

async function startSipd (t: Test, limits: string): Promise<{ sipd: SipdHandle, port: number }> {
  const port = await freePort('127.0.0.1', 'both')
  const http = await freePort('127.0.0.1', 'tcp')
  const sipd = await spawnSipd({
    configYaml: [
      `listen: ["udp:127.0.0.1:${port}", "tcp:127.0.0.1:${port}"]`,
      `http: "127.0.0.1:${http}"`,
      `routing: ${JSON.stringify(element)}`,
      `limits: ${limits}`
    ].join('\n') + '\n'
  })
  t.teardown(async () => { await sipd.stop() })
  return { sipd, port }
}

t.test('limits.tcp_max_connections: the excess is closed, the admitted are served, a freed slot is reused', async t => {
  const { sipd, port } = await startSipd(t, '{ tcp_max_connections: 6, tcp_max_per_address: 6 }')
  const clients: Client[] = []
  for (let i = 0; i < 8; i++) clients.push(await connect(port, `127.0.0.${90 + i}`))
  t.ok(await until(() => clients.filter(c => c.closed()).length >= 2, 3000), 'two connections closed')
  await delay(100)
  t.same(clients.map(c => c.closed()), [false, false, false, false, false, false, true, true], 'the six first stay open, the two beyond the limit are closed')
  for (const c of clients.slice(0, 6)) c.sock.write(request('OPTIONS', port, c.via))
  t.ok(await until(() => clients.slice(0, 6).every(c => count(c.text(), '200') === 1), 3000), 'each admitted connection is answered')

  clients[0]!.sock.destroy()
  t.ok(await until(async () => await metric(sipd, 'sipd_tcp_connections') === 5, 3000), 'sipd sees the closed connection go')
  const late = await connect(port, '127.0.0.98')
  late.sock.write(request('OPTIONS', port, late.via))
  t.ok(await until(() => count(late.text(), '200') === 1, 3000), 'a new connection takes the freed slot and is answered')
  t.notOk(late.closed(), 'and stays open')
  for (const c of [...clients, late]) c.sock.destroy()
})

t.test('limits.tcp_idle_ms: an idle connection is closed, one with CRLF keep-alives is not', async t => {
  const { port } = await startSipd(t, '{ tcp_idle_ms: 600 }')
  const idle = await connect(port, '127.0.0.90')
  const busy = await connect(port, '127.0.0.91')
  // The busy client pings every 150 ms (RFC 5626 §3.5.1) until the idle one is gone.
  let pongs = 0
  const deadline = Date.now() + 5000
  while (!idle.closed() && Date.now() < deadline && !busy.closed()) {
    busy.sock.write('\r\n\r\n')
    await delay(150)
    pongs = busy.text().length / 2
  }
  t.ok(idle.closed(), 'sipd closed the idle connection')
  t.notOk(busy.closed(), 'the connection with keep-alives is still open')
  t.ok(pongs >= 3, `its pings were answered (${pongs} CRLF pongs)`)
  busy.sock.write(request('OPTIONS', port, busy.via))
  t.ok(await until(() => count(busy.text(), '200') === 1, 3000), 'and it still carries SIP')
  busy.sock.destroy()
})

t.test('limits.tcp_message_timeout_ms: a request trickled a byte at a time, or left half-sent, is cut off', async t => {
  // Slowloris: each byte resets a socket's idle timer, so without a bound of
  // its own a message trickled slower than its end held the connection (and
  // one of tcp_max_per_address) for ever. Kamailio's tcp_msg_read_timeout.
  const { sipd, port } = await startSipd(t, '{ tcp_idle_ms: 60000, tcp_message_timeout_ms: 600 }')
  const slow = await connect(port, '127.0.0.95')
  const msg = request('OPTIONS', port, slow.via)
  const started = Date.now()
  let i = 0
  // 10 bytes a second, well inside the idle timeout between bytes; the whole message would take ~25 s.
  while (!slow.closed() && Date.now() - started < 4000 && i < msg.length) {
    slow.sock.write(msg[i++]!)
    await delay(100)
  }
  const heldMs = Date.now() - started
  t.ok(slow.closed(), `sipd closed the connection trickling one message (after ${heldMs} ms, ${i} of ${msg.length} bytes)`)
  t.ok(heldMs < 2000, 'within about tcp_message_timeout_ms of the message\'s first byte')
  t.equal(count(slow.text(), '200'), 0, 'the trickled message was never delivered')
  // Half a message, then silence: closed at the message timeout, not the idle one (60 s).
  const half = await connect(port, '127.0.0.97')
  const m3 = request('OPTIONS', port, half.via)
  half.sock.write(m3.slice(0, 60))
  t.ok(await until(() => half.closed(), 3000), 'a connection left half-way through a message is closed at about the message timeout')
  // A message that arrives in a few pieces within the bound is served, and the connection stays.
  const chunked = await connect(port, '127.0.0.96')
  const m2 = request('OPTIONS', port, chunked.via)
  for (const piece of [m2.slice(0, 40), m2.slice(40, 120), m2.slice(120)]) {
    chunked.sock.write(piece)
    await delay(150)
  }
  t.ok(await until(() => count(chunked.text(), '200') === 1, 2000), 'a message in three pieces 150 ms apart is answered')
  await delay(900)
  t.notOk(chunked.closed(), 'and its connection stays open past the message timeout once the message is whole')
  t.ok(await metric(sipd, 'sipd_tcp_connection_events_total{event="closed_idle"}') >= 2, 'the cut-offs are counted as idle closes')
  chunked.sock.destroy()
})

t.test('responses go back on the request\'s connection whatever port its Via names', async t => {
  const { port } = await startSipd(t, '{ max_message_size: 4096 }')
  const c = await connect(port, '127.0.0.92')
  // A sent-by that is not the source (a name, port 9): only the connection can
  // carry the answer. (OPTIONS rather than INVITE: over TCP its transaction
  // ends at once (Timer J is 0), so sipd stops without waiting for it.)
  c.sock.write(request('OPTIONS', port, 'SIP/2.0/TCP client.example.com:9'))
  t.ok(await until(() => count(c.text(), '200') === 1, 3000), 'the 200 arrived on the connection')
  t.match(c.text(), /\r\nVia: SIP\/2\.0\/TCP client\.example\.com:9;branch=[^;\r]*;received=127\.0\.0\.92\r\n/, 'its Via got received= with the source address (RFC 3261 §18.2.1)')
  // Same host as the source, another port: no received= (§18.2.1 compares the host only).
  c.sock.write(request('OPTIONS', port, 'SIP/2.0/TCP 127.0.0.92:9'))
  t.ok(await until(() => count(c.text(), '200') === 2, 3000), 'a second request from "127.0.0.92:9" is answered on the connection too')
  t.match(c.text(), /\r\nVia: SIP\/2\.0\/TCP 127\.0\.0\.92:9;branch=[^;\r]*\r\n/, 'its Via without received=')
  c.sock.destroy()
})

t.test('limits.max_message_size: a too long message closes its TCP connection (others go on); over UDP it gets 513', async t => {
  const { port } = await startSipd(t, '{ max_message_size: 2048 }')
  const big = await connect(port, '127.0.0.93')
  const good = await connect(port, '127.0.0.94')
  big.sock.write(request('OPTIONS', port, big.via, { body: 'x'.repeat(3000) }))
  t.ok(await until(() => big.closed(), 3000), 'the connection that announced 3000 body bytes over a 2048 limit is closed')
  t.equal(count(big.text(), '200'), 0, 'without the request reaching the element')
  good.sock.write(request('OPTIONS', port, good.via))
  t.ok(await until(() => count(good.text(), '200') === 1, 3000), 'another client is answered')
  good.sock.destroy()

  const u = dgram.createSocket('udp4')
  await new Promise<void>(resolve => u.bind(0, '127.0.0.95', () => resolve()))
  t.teardown(() => { u.close() })
  let reply = ''
  u.on('message', m => { reply = m.toString('latin1') })
  u.send(request('OPTIONS', port, `SIP/2.0/UDP 127.0.0.95:${u.address().port}`, { body: 'x'.repeat(3000) }), port, '127.0.0.1')
  t.ok(await until(() => reply !== '', 3000), 'the datagram is answered')
  t.match(reply, /^SIP\/2\.0 513 /, 'with 513 Message Too Large (RFC 3261 §21.5.7)')
})
