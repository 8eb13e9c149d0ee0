// sipd over TCP: framing (a message split at every byte boundary, 50 in one
// write), CRLF keep-alive (RFC 5626 §3.5.1), and limits (an endless header and
// too many connections from one address are cut off while others go on).
import t from 'tap'
import net from 'node:net'
import { freePort } from './helpers/servers.js'
import { spawnSipd } from './helpers/spawn-sipd.js'
import { delay } from './helpers/process.js'

function options (port: number, n: number, local: string): string {
  return [
    `OPTIONS sip:127.0.0.1:${port} SIP/2.0`,
    `Via: SIP/2.0/TCP ${local};branch=z9hG4bK-tcp-${n}`,
    `From: <sip:probe@example.com>;tag=t${n}`,
    `To: <sip:127.0.0.1:${port}>`,
    `Call-ID: tcp-${n}@test`,
    `CSeq: ${n + 1} OPTIONS`,
    'Max-Forwards: 70',
    'Content-Length: 0',
    '', ''
  ].join('\r\n')
}

/** A client connection that collects what sipd writes back. */
async function connect (port: number, localAddress: string): Promise<{ sock: net.Socket, text: () => string, closed: () => boolean }> {
  const sock = net.connect({ host: '127.0.0.1', port, localAddress, noDelay: true })
  let received = ''
  let isClosed = false
  sock.on('data', d => { received += d.toString('latin1') })
  sock.on('close', () => { isClosed = true })
  sock.on('error', () => { isClosed = true })
  await new Promise<void>((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject) })
  return { sock, text: () => received, closed: () => isClosed }
}

async function until (cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms
  while (!cond() && Date.now() < end) await delay(5)
  return cond()
}

function count200 (text: string): number {
  return text.split('SIP/2.0 200 ').length - 1
}

t.test('sipd over TCP', async t => {
  const port = await freePort('127.0.0.1', 'tcp')
  const http = await freePort('127.0.0.1', 'tcp')
  const sipd = await spawnSipd({
    configYaml: [
      `listen: ["tcp:127.0.0.1:${port}"]`,
      `http: "127.0.0.1:${http}"`,
      'limits: { max_message_size: 4096, tcp_max_per_address: 4 }'
    ].join('\n') + '\n'
  })
  t.teardown(async () => { await sipd.stop() })

  await t.test('a message split at every byte boundary', async t => {
    const c = await connect(port, '127.0.0.31')
    const msg = Buffer.from(options(port, 0, '127.0.0.31'))
    let answered = 0
    for (let split = 1; split < msg.length; split++) {
      const fresh = Buffer.from(options(port, split, '127.0.0.31'))
      c.sock.write(fresh.subarray(0, split))
      await delay(1)
      c.sock.write(fresh.subarray(split))
      if (await until(() => count200(c.text()) > answered, 2000)) answered++
    }
    t.equal(answered, msg.length - 1, `every one of ${msg.length - 1} split messages answered 200`)
    c.sock.destroy()
  })

  await t.test('50 messages in one write', async t => {
    const c = await connect(port, '127.0.0.32')
    let all = ''
    for (let i = 0; i < 50; i++) all += options(port, 1000 + i, '127.0.0.32')
    c.sock.write(all)
    await until(() => count200(c.text()) >= 50, 5000)
    t.equal(count200(c.text()), 50, 'all 50 answered on the same connection')
    c.sock.destroy()
  })

  await t.test('CRLF keep-alive', async t => {
    const c = await connect(port, '127.0.0.33')
    c.sock.write('\r\n\r\n')
    await until(() => c.text().length >= 2, 2000)
    t.equal(c.text(), '\r\n', 'a double CRLF ping gets one CRLF pong')
    c.sock.write(options(port, 2000, '127.0.0.33'))
    await until(() => count200(c.text()) === 1, 2000)
    t.equal(count200(c.text()), 1, 'the connection still carries SIP after the ping')
    c.sock.destroy()
  })

  await t.test('an endless header is cut off; others go on', async t => {
    const bad = await connect(port, '127.0.0.34')
    const good = await connect(port, '127.0.0.35')
    bad.sock.write(`OPTIONS sip:127.0.0.1:${port} SIP/2.0\r\nX-Endless: `)
    for (let i = 0; i < 10 && !bad.closed(); i++) {
      bad.sock.write('a'.repeat(1024))
      await delay(10)
    }
    t.ok(await until(() => bad.closed(), 3000), 'the connection sending an endless header is closed')
    good.sock.write(options(port, 3000, '127.0.0.35'))
    t.ok(await until(() => count200(good.text()) === 1, 2000), 'another client is still answered')
    good.sock.destroy()
  })

  await t.test('connections per address are limited', async t => {
    const conns = []
    for (let i = 0; i < 6; i++) conns.push(await connect(port, '127.0.0.36'))
    await delay(200)
    const open = conns.filter(c => !c.closed())
    t.equal(open.length, 4, 'only tcp_max_per_address connections stay open')
    open[0]!.sock.write(options(port, 4000, '127.0.0.36'))
    t.ok(await until(() => count200(open[0]!.text()) === 1, 2000), 'an admitted connection is served')
    const other = await connect(port, '127.0.0.37')
    other.sock.write(options(port, 4001, '127.0.0.37'))
    t.ok(await until(() => count200(other.text()) === 1, 2000), 'another address is served')
    for (const c of [...conns, other]) c.sock.destroy()
  })

  const text = await (await fetch(`${sipd.httpUrl}/metrics`)).text()
  t.match(text, /sipd_tcp_connections \d+/, 'open TCP connections are a metric')
})
