// /metrics tells what the stack did (issue 3: "retransmissions, parse errors
// by reason, TCP connections"): a request retransmission absorbed by a server
// transaction counts in sipd_retransmissions_total{direction="in"}, and TCP
// connections accepted and refused count in sipd_tcp_connection_events_total.
//
// Loopback addresses 127.0.0.100–127.0.0.103 are this file's own.
import t from 'tap'
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

/** Sum of the samples of `name` whose labels contain `label` ('' for all). */
async function metric (sipd: SipdHandle, name: string, label: string): Promise<number> {
  const text = await (await fetch(`${sipd.httpUrl}/metrics`)).text()
  let sum = 0
  for (const line of text.split('\n')) {
    if ((line.startsWith(name + '{') || line.startsWith(name + ' ')) && line.includes(label)) sum += Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return sum
}

async function until (cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms
  while (!cond() && Date.now() < end) await delay(10)
  return cond()
}

t.test('sipd metrics of the stack', async t => {
  const port = await freePort('127.0.0.1', 'both')
  const http = await freePort('127.0.0.1', 'tcp')
  const sipd = await spawnSipd({
    configYaml: [
      `listen: ["udp:127.0.0.1:${port}", "tcp:127.0.0.1:${port}"]`,
      `http: "127.0.0.1:${http}"`,
      `routing: ${JSON.stringify(element)}`,
      'limits: { tcp_max_per_address: 1 }'
    ].join('\n') + '\n'
  })
  t.teardown(async () => { await sipd.stop() })

  await t.test('a retransmitted request absorbed by its server transaction is counted "in"', async t => {
    const sock = dgram.createSocket('udp4')
    await new Promise<void>(resolve => sock.bind(0, '127.0.0.100', () => resolve()))
    t.teardown(() => { sock.close() })
    const answers: string[] = []
    sock.on('message', m => { answers.push(m.toString('latin1')) })
    const request = [
      `OPTIONS sip:user@127.0.0.1:${port} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.100:${sock.address().port};branch=z9hG4bK-metrics-rtx-${process.pid}`,
      'From: <sip:probe@example.com>;tag=m1',
      `To: <sip:user@127.0.0.1:${port}>`,
      `Call-ID: metrics-rtx-${process.pid}@test`,
      'CSeq: 1 OPTIONS',
      'Max-Forwards: 70',
      'Content-Length: 0',
      '', ''
    ].join('\r\n')
    const before = await metric(sipd, 'sipd_retransmissions_total', 'direction="in"')
    sock.send(request, port, '127.0.0.1')
    t.ok(await until(() => answers.length === 1, 3000), 'the request is answered')
    // The same request again (same branch, §17.2.3): the transaction answers it
    // with its last response; the element does not see it again.
    sock.send(request, port, '127.0.0.1')
    t.ok(await until(() => answers.length === 2, 3000), 'the retransmission gets the response again')
    t.equal(answers[1], answers[0], 'the very same response (same To tag)')
    const after = await metric(sipd, 'sipd_retransmissions_total', 'direction="in"')
    t.equal(after - before, 1, 'sipd_retransmissions_total{direction="in"} counted it')
  })

  await t.test('TCP connections accepted and refused are counted', async t => {
    const accepted0 = await metric(sipd, 'sipd_tcp_connection_events_total', 'event="accepted"')
    const refused0 = await metric(sipd, 'sipd_tcp_connection_events_total', 'event="refused"')
    const socks: net.Socket[] = []
    const closed: boolean[] = []
    for (let i = 0; i < 2; i++) {
      const s = net.connect({ host: '127.0.0.1', port, localAddress: '127.0.0.101' })
      const k = closed.push(false) - 1
      s.on('close', () => { closed[k] = true })
      s.on('error', () => {})
      await new Promise<void>(resolve => { s.once('connect', resolve); s.once('close', () => resolve()) })
      socks.push(s)
    }
    t.teardown(() => { for (const s of socks) s.destroy() })
    t.ok(await until(() => closed[1] === true, 3000), 'the second connection from one address is refused (tcp_max_per_address: 1)')
    t.equal(closed[0], false, 'the first stays open')
    t.equal(await metric(sipd, 'sipd_tcp_connection_events_total', 'event="accepted"') - accepted0, 1, 'one accepted counted')
    t.equal(await metric(sipd, 'sipd_tcp_connection_events_total', 'event="refused"') - refused0, 1, 'one refused counted')
  })
})
