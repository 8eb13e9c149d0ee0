// Every RFC 4475 / RFC 5118 torture message sent to a running sipd over UDP,
// byte for byte: each gets the answer the RFC expects or a counted drop, and
// sipd keeps serving afterwards.
//
// sipd runs on its defaults (no routing module, no served domain), so a
// request that passes the sanity stage and is not for sipd itself gets 404
// (REGISTER: 403, no domain served): that is how the test tells "accepted"
// from "rejected by the sanity stage".
//
// Where the answers go: the fixtures' Via sent-by hosts are example names or
// addresses, so sipd adds `received=<our source address>` and answers there,
// on the Via's port (5060 unless the Via names one; RFC 3261 §18.2.2). The test
// therefore sends from 127.0.0.60:5060 and listens on 127.0.0.60 at every
// port the fixtures' Vias name. The fixtures are never rewritten.
import t from 'tap'
import dgram from 'node:dgram'
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequest, parseMessage } from '@sipd/sip-parser'
import type { SipResponse } from '@sipd/sip-parser'
import { freePort } from './helpers/servers.js'
import { spawnSipd } from './helpers/spawn-sipd.js'
import { delay } from './helpers/process.js'
import { EXPECTED } from './helpers/torture-expected.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const dir = path.join(here, '..', 'packages', 'sip-parser', 'test', 'fixtures', 'torture')
const PEER = '127.0.0.60'
const PORTS = [5060, 5050, 6050, 19823]

/** The hop-by-hop ACK for a non-2xx final response to an INVITE. */
function ackFor (resp: SipResponse, uri: string, topVia: string): Buffer {
  return createRequest({
    method: 'ACK',
    uri,
    headers: [
      ['Via', topVia],
      ['From', resp.header('From')!],
      ['To', resp.header('To')!],
      ['Call-ID', resp.callId],
      ['CSeq', `${resp.cseq.seq} ACK`],
      ['Max-Forwards', '70']
    ]
  })
}

async function metric (httpUrl: string, name: string, label: string): Promise<number> {
  const text = await (await fetch(`${httpUrl}/metrics`)).text()
  let sum = 0
  for (const line of text.split('\n')) {
    if (line.startsWith(name + '{') && line.includes(label)) sum += Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return sum
}

t.test('torture messages over UDP', async t => {
  const files = readdirSync(dir).filter(f => f.endsWith('.dat')).sort()
  t.same(files.filter(f => EXPECTED[f] === undefined), [], 'every fixture has an expectation')

  const port = await freePort('127.0.0.1', 'both')
  const http = await freePort('127.0.0.1', 'tcp')
  const sipd = await spawnSipd({
    configYaml: `listen: ["udp:127.0.0.1:${port}"]\nhttp: "127.0.0.1:${http}"\n`
  })
  t.teardown(async () => { await sipd.stop() })

  // Answers are collected per fixture: several RFC 5118 messages share a Call-ID.
  let got: number[] = []
  let inviteUri = ''
  let inviteVia = ''
  const sockets: dgram.Socket[] = []
  for (const p of PORTS) {
    const s = dgram.createSocket('udp4')
    await new Promise<void>((resolve, reject) => { s.once('error', reject); s.bind(p, PEER, () => { s.off('error', reject); resolve() }) })
    s.on('message', msg => {
      const status = Number(msg.toString('latin1', 8, 11))
      got.push(status)
      // Acknowledge a final response to an INVITE (RFC 3261 §17.1.1.3), as a
      // UAC would, so its retransmissions do not spill into the next case.
      if (status >= 300) {
        try {
          const resp = parseMessage(msg)
          if (!resp.isRequest && resp.cseq.method === 'INVITE') sockets[0]!.send(ackFor(resp, inviteUri, inviteVia), port, '127.0.0.1')
        } catch {
          // A 400 to a request without Call-ID or CSeq (insuf.dat) needs no ACK:
          // the sanity stage answers statelessly.
        }
      }
    })
    sockets.push(s)
  }
  t.teardown(() => { for (const s of sockets) s.close() })

  const dropsBefore = await metric(sipd.httpUrl, 'sipd_parse_errors_total', '')
  for (const f of files) {
    const want = EXPECTED[f]!
    got = []
    const bytes = readFileSync(path.join(dir, f))
    inviteUri = bytes.toString('latin1', 0, bytes.indexOf('\n')).split(' ')[1] ?? ''
    // The ACK repeats the INVITE's own top Via (without the received= sipd added).
    try { inviteVia = parseMessage(bytes).header('Via') ?? '' } catch { inviteVia = '' }
    await new Promise<void>((resolve, reject) => sockets[0]!.send(bytes, port, '127.0.0.1', err => { if (err != null) reject(err); else resolve() }))
    // Wait for a final answer (bounded), or a short while when none is due.
    const until = Date.now() + (want === 'drop' ? 200 : 3000)
    while (Date.now() < until && !got.some(s => s >= 200)) await delay(10)
    if (want === 'drop') {
      t.same(got, [], `${f}: no answer`)
    } else {
      // A 100 Trying may precede the final answer of an INVITE.
      t.same(got.filter(s => s !== 100).slice(0, 1), [want], `${f}: ${want}`)
    }
  }
  const dropsAfter = await metric(sipd.httpUrl, 'sipd_parse_errors_total', '')
  t.ok(dropsAfter > dropsBefore, `unparseable messages are counted (${dropsAfter - dropsBefore})`)

  // sipd still serves: an OPTIONS to sipd itself gets 200 with Allow, Accept, Supported.
  const options = Buffer.from([
    `OPTIONS sip:127.0.0.1:${port} SIP/2.0`,
    `Via: SIP/2.0/UDP ${PEER}:5060;branch=z9hG4bK-after-torture`,
    'From: <sip:probe@example.com>;tag=after',
    `To: <sip:127.0.0.1:${port}>`,
    'Call-ID: after-torture@test',
    'CSeq: 1 OPTIONS',
    'Max-Forwards: 70',
    'Content-Length: 0',
    '', ''
  ].join('\r\n'))
  const reply = new Promise<Buffer>(resolve => sockets[0]!.once('message', resolve))
  sockets[0]!.send(options, port, '127.0.0.1')
  const msg = (await Promise.race([reply, delay(3000).then(() => Buffer.alloc(0))])).toString('latin1')
  t.match(msg, /^SIP\/2\.0 200 /, 'OPTIONS answered 200 after the torture run')
  t.match(msg, /\r\nAllow: OPTIONS, REGISTER\r\n/, 'with Allow: what sipd on its defaults, a registrar, serves')
  t.match(msg, /\r\nAccept: /, 'with Accept')
  t.match(msg, /\r\nSupported: /, 'with Supported')
})
