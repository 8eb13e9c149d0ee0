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

const here = path.dirname(fileURLToPath(import.meta.url))
const dir = path.join(here, '..', 'packages', 'sip-parser', 'test', 'fixtures', 'torture')
const PEER = '127.0.0.60'
const PORTS = [5060, 5050, 6050, 19823]

/**
 * What sipd must answer (status), or 'drop' for no answer. The reason is the
 * RFC's: RFC 4475 §3.1.1 (valid), §3.1.2 (invalid syntax → 400), §3.3
 * (semantics), RFC 5118 §4 (IPv6).
 */
const EXPECTED: Record<string, number | 'drop'> = {
  // §3.1.1 valid messages: not for sipd, so 404 / 403 (REGISTER, no domain served).
  'wsinv.dat': 404,
  'intmeth.dat': 404,
  'esc01.dat': 404,
  'escnull.dat': 403,
  'esc02.dat': 404, // an unknown method that passes the sanity stage
  'lwsdisp.dat': 404,
  'longreq.dat': 404,
  'dblreq.dat': 403, // only the first REGISTER (Content-Length 0) is read
  'semiuri.dat': 404,
  'transports.dat': 404,
  'mpart01.dat': 404,
  'unreason.dat': 'drop', // a response matching no transaction
  'noreason.dat': 'drop',
  // §3.1.2 invalid messages: 400 naming the defect.
  'badinv01.dat': 400,
  'clerr.dat': 400,
  'ncl.dat': 400,
  'scalar02.dat': 400,
  'scalarlg.dat': 'drop', // a response with overlarge values: dropped
  'quotbal.dat': 400,
  'ltgtruri.dat': 400,
  'lwsruri.dat': 400,
  'lwsstart.dat': 400,
  'trws.dat': 400,
  'escruri.dat': 400,
  'baddate.dat': 404, // §3.1.2.12: a proxy passes a bad Date on unchanged
  'regbadct.dat': 400,
  'badaspec.dat': 400,
  'baddn.dat': 400,
  'badvers.dat': 505,
  'mismatch01.dat': 400,
  'mismatch02.dat': 400,
  'bigcode.dat': 'drop', // a response with a 10-digit status code
  // §3.3 semantics.
  'badbranch.dat': 404, // branch of only the magic cookie: still a valid request
  'insuf.dat': 400, // missing From, To, Call-ID
  'unkscm.dat': 416,
  'novelsc.dat': 416,
  'unksm2.dat': 403, // unknown scheme in To only; a REGISTER, no domain served
  'bext01.dat': 420, // Proxy-Require names extensions no proxy supports (RFC 3261 §16.3 step 5)
  'invut.dat': 404, // 415 is the UAS's answer; a proxy forwards
  'regaut01.dat': 403,
  'multi01.dat': 400,
  'mcl01.dat': 400,
  'bcast.dat': 'drop', // a response
  'zeromf.dat': 483, // OPTIONS not for sipd with Max-Forwards 0
  'cparam01.dat': 403,
  'cparam02.dat': 403,
  'regescrt.dat': 403,
  'sdp01.dat': 404,
  'inv2543.dat': 404,
  'test.dat': 'drop', // not a SIP message: a header line without a colon, nothing to answer with
  // RFC 5118.
  'ipv6-good.dat': 403,
  'port-ambiguous.dat': 403,
  'port-unambiguous.dat': 403,
  'ipv6-bad.dat': 400, // §4.3: IPv6 reference without brackets in the Request-URI
  'ipv6-bug-abnf-3-colons.dat': 400, // §4.4
  'ipv6-correct-abnf-2-colons.dat': 404,
  'via-received-param-with-delim.dat': 404,
  'via-received-param-no-delim.dat': 404,
  'ipv6-in-sdp.dat': 400, // Content-Length as printed in the RFC exceeds the body
  'mult-ip-in-header.dat': 404,
  'mult-ip-in-sdp.dat': 404,
  'ipv4-mapped-ipv6.dat': 404
}

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
          if (resp.cseq.method === 'INVITE') sockets[0]!.send(ackFor(resp, inviteUri, inviteVia), port, '127.0.0.1')
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
  t.match(msg, /\r\nAllow: [^\r]*INVITE/, 'with Allow')
  t.match(msg, /\r\nAccept: /, 'with Accept')
  t.match(msg, /\r\nSupported: /, 'with Supported')
})
