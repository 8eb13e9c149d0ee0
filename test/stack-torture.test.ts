// Every RFC 4475 / RFC 5118 torture message sent byte-exact over UDP to a sipd
// whose routing module answers every request 200 (test/fixtures/uas-element.mjs).
// The element answers anything it is given, so any other answer comes from
// sipd's own sanity stage, before an element: an invalid request gets 400 with
// a reason phrase naming its defect (RFC 4475 §3.1.2), badvers 505, unkscm /
// novelsc 416, bext01 420, zeromf 483; responses (which match no transaction)
// and unparseable bytes get nothing and are counted in /metrics; valid
// requests reach the element. (sipd without a routing module is covered by
// sipd-torture-wire.test.ts; there valid requests get 404/403.)
//
// Where the answers go: the fixtures' Via sent-by hosts are example names and
// addresses, so sipd adds `received=<source address>` and answers there on the
// Via's port (RFC 3261 §18.2.2: 5060 when the Via names none). The test
// therefore sends from 127.0.0.62:5060 and listens on 127.0.0.62 at every
// port the fixtures' Vias name, and never rewrites a fixture.
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
const element = path.join(here, 'fixtures', 'uas-element.mjs')
const PEER = '127.0.0.62'
const PORTS = [5060, 5050, 6050, 19823]

/** The element's answer: the request passed the sanity stage. */
const ELEMENT = 200
type Expect = { status: number, reason?: RegExp } | 'drop'

/**
 * What each fixture must get. Valid requests (RFC 4475 §3.1.1, RFC 5118 §4.1,
 * §4.2, §4.5–4.10) reach the element, and so do the §3.3 ones whose proper
 * answer is the UAS's or registrar's (invut 415, regaut01 401, unksm2 400 by a
 * registrar): the stack forwards them as a proxy would.
 */
const EXPECTED: Record<string, Expect> = {
  'wsinv.dat': { status: ELEMENT },
  'intmeth.dat': { status: ELEMENT },
  'esc01.dat': { status: ELEMENT },
  'escnull.dat': { status: ELEMENT },
  'esc02.dat': { status: ELEMENT },
  'lwsdisp.dat': { status: ELEMENT },
  'longreq.dat': { status: ELEMENT },
  'dblreq.dat': { status: ELEMENT }, // only the first REGISTER (Content-Length 0) counts
  'semiuri.dat': { status: ELEMENT },
  'transports.dat': { status: ELEMENT },
  'mpart01.dat': { status: ELEMENT },
  'unreason.dat': 'drop', // responses to no transaction of ours
  'noreason.dat': 'drop',
  // §3.1.2: invalid messages, 400 naming the defect.
  'badinv01.dat': { status: 400, reason: /Via/ },
  'clerr.dat': { status: 400, reason: /Content-Length/ },
  'ncl.dat': { status: 400, reason: /Content-Length "-999"/ },
  'scalar02.dat': { status: 400, reason: /CSeq/ },
  'scalarlg.dat': 'drop',
  'quotbal.dat': { status: 400, reason: /quoted string/ },
  'ltgtruri.dat': { status: 400, reason: /Request-URI.*<>/ },
  'lwsruri.dat': { status: 400, reason: /whitespace.*Request-URI/ },
  'lwsstart.dat': { status: 400, reason: /more than one SP/ },
  'trws.dat': { status: 400, reason: /whitespace after the SIP version/ },
  'escruri.dat': { status: 400, reason: /Request-URI.*headers/ },
  'baddate.dat': { status: ELEMENT }, // §3.1.2.12: a bad Date is passed on, not refused
  'regbadct.dat': { status: 400, reason: /Contact/ },
  'badaspec.dat': { status: 400, reason: /To/ },
  'baddn.dat': { status: 400, reason: /display name/ },
  'badvers.dat': { status: 505 },
  'mismatch01.dat': { status: 400, reason: /CSeq method/ },
  'mismatch02.dat': { status: 400, reason: /CSeq method/ },
  'bigcode.dat': 'drop',
  // §3.3: semantics.
  'badbranch.dat': { status: ELEMENT },
  'insuf.dat': { status: 400, reason: /Missing From/ },
  'unkscm.dat': { status: 416 },
  'novelsc.dat': { status: 416 },
  'unksm2.dat': { status: ELEMENT },
  'bext01.dat': { status: 420 },
  'invut.dat': { status: ELEMENT },
  'regaut01.dat': { status: ELEMENT },
  'multi01.dat': { status: 400, reason: /Call-ID/ },
  'mcl01.dat': { status: 400, reason: /Content-Length/ },
  'bcast.dat': 'drop',
  'zeromf.dat': { status: 483 }, // OPTIONS to sip:user@example.com, not to sipd itself
  'cparam01.dat': { status: ELEMENT },
  'cparam02.dat': { status: ELEMENT },
  'regescrt.dat': { status: ELEMENT },
  'sdp01.dat': { status: ELEMENT },
  'inv2543.dat': { status: ELEMENT },
  'test.dat': 'drop', // a header line without a colon: nothing to answer with
  // RFC 5118.
  'ipv6-good.dat': { status: ELEMENT },
  'port-ambiguous.dat': { status: ELEMENT },
  'port-unambiguous.dat': { status: ELEMENT },
  'ipv6-bad.dat': { status: 400, reason: /IPv6/ }, // §4.3
  'ipv6-bug-abnf-3-colons.dat': { status: 400, reason: /IPv6/ }, // §4.4
  'ipv6-correct-abnf-2-colons.dat': { status: ELEMENT },
  'via-received-param-with-delim.dat': { status: ELEMENT },
  'via-received-param-no-delim.dat': { status: ELEMENT },
  'ipv6-in-sdp.dat': { status: 400, reason: /Content-Length/ }, // the Content-Length printed in the RFC exceeds the body
  'mult-ip-in-header.dat': { status: ELEMENT },
  'mult-ip-in-sdp.dat': { status: ELEMENT },
  'ipv4-mapped-ipv6.dat': { status: ELEMENT }
}

/**
 * Fixtures that repeat an earlier one's top Via branch, sent-by and method:
 * by RFC 3261 §17.2.3 they are retransmissions of that request while its
 * transaction lives (Timer J, 32 s), and get its response again. RFC 4475
 * did not mean them to be sent one after the other; the answer they get here
 * proves the transaction layer absorbed them.
 */
const RETRANSMISSION_OF: Record<string, string> = {
  'cparam02.dat': 'cparam01.dat', // z9hG4bKkdjuw from saturn.example.com:5060, REGISTER
  'regescrt.dat': 'escnull.dat' // z9hG4bKkdjuw from host5.example.com, REGISTER
}

async function metricSum (httpUrl: string, names: string[]): Promise<number> {
  const text = await (await fetch(`${httpUrl}/metrics`)).text()
  let sum = 0
  for (const line of text.split('\n')) {
    if (names.some(n => line.startsWith(n + '{'))) sum += Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return sum
}

/** Call-ID and CSeq of a fixture when it parses far enough, to tell its answers from stray ones. */
function identity (bytes: Buffer): { callId: string, seq: number } | undefined {
  try {
    const m = parseMessage(bytes)
    return { callId: m.callId, seq: m.cseq.seq }
  } catch {
    return undefined
  }
}

t.test('torture messages over UDP to sipd with an element that answers everything', async t => {
  const files = readdirSync(dir).filter(f => f.endsWith('.dat')).sort()
  t.same(files.filter(f => EXPECTED[f] === undefined), [], 'every fixture has an expectation')

  const port = await freePort('127.0.0.1', 'both')
  const http = await freePort('127.0.0.1', 'tcp')
  const sipd = await spawnSipd({
    configYaml: `listen: ["udp:127.0.0.1:${port}"]\nhttp: "127.0.0.1:${http}"\nrouting: ${JSON.stringify(element)}\n`
  })
  t.teardown(async () => { await sipd.stop() })

  let got: Array<{ status: number, text: string, resp: SipResponse | undefined }> = []
  const sockets: dgram.Socket[] = []
  let acks = 0
  const ack = (resp: SipResponse): void => {
    // The ACK of a 2xx (RFC 3261 §13.2.2.4) ends sipd's 2xx retransmissions,
    // which would otherwise spill into the following cases.
    const contact = /<([^>]+)>/.exec(resp.header('Contact') ?? '')?.[1] ?? `sip:127.0.0.1:${port}`
    sockets[0]!.send(createRequest({
      method: 'ACK',
      uri: contact,
      headers: [
        ['Via', `SIP/2.0/UDP ${PEER}:5060;branch=z9hG4bK-torture-ack-${++acks}`],
        ['From', resp.header('From')!],
        ['To', resp.header('To')!],
        ['Call-ID', resp.callId],
        ['CSeq', `${resp.cseq.seq} ACK`],
        ['Max-Forwards', '70']
      ]
    }), port, '127.0.0.1')
  }
  for (const p of PORTS) {
    const s = dgram.createSocket('udp4')
    await new Promise<void>((resolve, reject) => { s.once('error', reject); s.bind(p, PEER, () => { s.off('error', reject); resolve() }) })
    s.on('message', msg => {
      const text = msg.toString('latin1')
      let resp: SipResponse | undefined
      try { resp = parseMessage(msg) as SipResponse } catch { resp = undefined }
      got.push({ status: Number(text.slice(8, 11)), text, resp })
      if (resp !== undefined && resp.status >= 200 && resp.status < 300 && resp.cseq.method === 'INVITE') ack(resp)
    })
    sockets.push(s)
  }
  t.teardown(() => { for (const s of sockets) s.close() })

  const parseErrorsBefore = await metricSum(sipd.httpUrl, ['sipd_parse_errors_total'])
  for (const f of files) {
    const want = EXPECTED[f]!
    const bytes = readFileSync(path.join(dir, f))
    const earlier = RETRANSMISSION_OF[f]
    const id = identity(earlier !== undefined ? readFileSync(path.join(dir, earlier)) : bytes)
    const mine = (g: typeof got[number]): boolean =>
      id === undefined || g.resp === undefined || (g.resp.callId === id.callId && g.resp.cseq.seq === id.seq)
    const countedBefore = await metricSum(sipd.httpUrl, ['sipd_parse_errors_total', 'sipd_responses_received_total'])
    got = []
    await new Promise<void>((resolve, reject) => sockets[0]!.send(bytes, port, '127.0.0.1', err => { if (err != null) reject(err); else resolve() }))
    const until = Date.now() + (want === 'drop' ? 250 : 3000)
    while (Date.now() < until && !got.some(g => mine(g) && g.status >= 200)) await delay(5)
    const finals = got.filter(g => mine(g) && g.status >= 200)
    if (want === 'drop') {
      t.same(got.map(g => g.text.slice(0, g.text.indexOf('\r\n'))), [], `${f}: no answer`)
      const countedAfter = await metricSum(sipd.httpUrl, ['sipd_parse_errors_total', 'sipd_responses_received_total'])
      t.ok(countedAfter > countedBefore, `${f}: counted as a parse error or a received response`)
      continue
    }
    const first = finals[0]
    t.equal(first?.status, want.status, `${f}: ${want.status}${earlier !== undefined ? ` (${earlier}'s response again: a retransmission)` : ''}`, { got: got.map(g => g.text.slice(0, g.text.indexOf('\r\n'))) })
    if (want.reason !== undefined) {
      const reason = first?.text.slice(12, first.text.indexOf('\r\n')) ?? ''
      t.match(reason, want.reason, `${f}: the reason phrase names the defect ("${reason}")`)
    }
    if (f === 'bext01.dat') {
      // Proxy-Require is for every proxy on the path, Require only for the UAS
      // (RFC 3261 §16.3 step 5, §8.2.2.3): the Request-URI is not sipd's, so
      // Unsupported lists the Proxy-Require tokens and not the Require ones.
      const unsupported = first?.resp?.header('Unsupported') ?? ''
      t.match(unsupported, /noProxiesSupportThis/, 'bext01: Unsupported names the Proxy-Require extensions')
      t.notMatch(unsupported, /nothingSupportsThis/, 'bext01: but not the Require ones, aimed at the UAS')
    }
  }
  t.ok(await metricSum(sipd.httpUrl, ['sipd_parse_errors_total']) > parseErrorsBefore, 'unparseable messages are counted in sipd_parse_errors_total')

  // sipd still serves: an OPTIONS to sipd itself gets 200 with Allow, Accept, Supported.
  got = []
  sockets[0]!.send([
    `OPTIONS sip:127.0.0.1:${port} SIP/2.0`,
    `Via: SIP/2.0/UDP ${PEER}:5060;branch=z9hG4bK-after-torture-element`,
    'From: <sip:probe@example.com>;tag=after',
    `To: <sip:127.0.0.1:${port}>`,
    'Call-ID: after-torture-element@test',
    'CSeq: 1 OPTIONS',
    'Max-Forwards: 70',
    'Content-Length: 0',
    '', ''
  ].join('\r\n'), port, '127.0.0.1')
  const until = Date.now() + 3000
  while (Date.now() < until && !got.some(g => g.resp?.callId === 'after-torture-element@test')) await delay(5)
  const reply = got.find(g => g.resp?.callId === 'after-torture-element@test')?.text ?? ''
  t.match(reply, /^SIP\/2\.0 200 /, 'OPTIONS to sipd answered 200 after the torture run')
  t.match(reply, /\r\nAllow: [^\r]*INVITE/, 'with Allow')
  t.match(reply, /\r\nAccept: /, 'with Accept')
  t.match(reply, /\r\nSupported: /, 'with Supported')
  t.equal((await fetch(`${sipd.httpUrl}/healthz`)).status, 200, '/healthz 200')
})
