// The raw salvage of a request whose headers did not index: what a 400 needs
// (Via, From, To, Call-ID, CSeq) or nothing.
import t from 'tap'
import { parseMessage } from '@sipd/sip-parser'
import type { SipRequest } from '@sipd/sip-parser'
import { salvageRequest } from '../src/salvage.js'

const LINES = [
  'INVITE sip:bob@example.test SIP/2.0',
  'Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKs1',
  'v: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKs0, SIP/2.0/UDP 192.0.2.8;branch=z9hG4bKs00',
  'Max-Forwards: 70',
  'f: <sip:alice@example.test>;tag=1',
  'TO : <sip:bob@example.test>',
  'i: salvage@192.0.2.1',
  'CSeq: 7 INVITE',
  'A line without a colon',
  'Content-Length: 0'
]

function salvage (lines: string[], eol = '\r\n'): SipRequest | undefined {
  const out = salvageRequest(Buffer.from(lines.join(eol) + eol + eol, 'latin1'))
  return out === undefined ? undefined : parseMessage(out) as SipRequest
}

t.test('the fields a response copies, in order, compact and folded forms', async t => {
  const req = salvage(LINES)!
  t.equal(req.method, 'INVITE', 'the CSeq method')
  t.same(req.headers('Via'), ['SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKs1', 'SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKs0', 'SIP/2.0/UDP 192.0.2.8;branch=z9hG4bKs00'])
  t.equal(req.topVia?.branch, 'z9hG4bKs1')
  t.equal(req.from.tag, '1')
  t.equal(req.to.uri, 'sip:bob@example.test')
  t.equal(req.callId, 'salvage@192.0.2.1')
  t.same(req.cseq, { seq: 7, method: 'INVITE' })
  // Bare LF line ends, leading CRLFs, a folded From.
  const lf = salvage(['', ...LINES.map(l => l.startsWith('f:') ? 'f: <sip:alice@example.test>\n ;tag=2' : l)], '\n')!
  t.equal(lf.from.tag, '2')
  // A start line that is no request line: the CSeq names the method.
  t.equal(salvage(['\u0001garbage', ...LINES.slice(1).map(l => l.startsWith('CSeq') ? 'CSeq: 3 OPTIONS' : l)])?.method, 'OPTIONS')
})

t.test('nothing to answer', async t => {
  const without = (name: string): string[] => LINES.filter(l => !l.toLowerCase().startsWith(name))
  for (const h of ['via', 'v:', 'f:', 'to', 'i:', 'cseq']) {
    const lines = h === 'via' ? without('via').filter(l => !l.startsWith('v:')) : without(h)
    if (h === 'v:') continue // one Via is enough
    t.equal(salvage(lines), undefined, `without ${h}`)
  }
  t.ok(salvage(without('v:')), 'one Via is enough')
  t.equal(salvage([...LINES, 'To: <sip:carol@example.test>']), undefined, 'To twice')
  t.equal(salvage([...LINES, 'Call-ID: other']), undefined, 'Call-ID twice')
  t.equal(salvage(LINES.map(l => l.startsWith('CSeq') ? 'CSeq: 7 ACK' : l)), undefined, 'an ACK (by CSeq)')
  t.equal(salvage(['ACK sip:bob@example.test SIP/2.0', ...LINES.slice(1)]), undefined, 'an ACK (by start line)')
  t.equal(salvage(LINES.map(l => l.startsWith('CSeq') ? 'CSeq: 7' : l)), undefined, 'a CSeq without a method')
  // The broken line is one of the fields a response copies: without it the answer would skip a hop.
  t.equal(salvage(LINES.map(l => l.startsWith('Via:') ? l.replace('Via:', 'Via') : l)), undefined, 'a Via line without its colon')
  t.equal(salvage(LINES.map(l => l.startsWith('i:') ? 'i salvage@192.0.2.1' : l)), undefined, 'a compact Call-ID line without its colon')
  t.equal(salvage(['SIP/2.0 200 OK', ...LINES.slice(1)]), undefined, 'a response')
  t.equal(salvageRequest(Buffer.from('\r\n\r\n')), undefined, 'only CRLFs')
  // A header after the empty line is body, not header.
  t.equal(salvage([...without('cseq'), '', 'CSeq: 7 INVITE']), undefined, 'a CSeq in the body')
  t.equal(salvage([...LINES.slice(0, 1), ...Array.from({ length: 80 }, (_, i) => `Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK${i}`), ...LINES.slice(1)]), undefined, 'too many Vias')
})

t.test('a lone CR stays in its value, so the rebuilt request refuses it instead of answering with a cut value', async t => {
  const out = salvageRequest(Buffer.from(LINES.map(l => l.startsWith('f:') ? 'f: <sip:ali\rce@example.test>;tag=1' : l).join('\r\n') + '\r\n\r\n', 'latin1'))
  t.ok(out === undefined || out.includes('ali\rce'), 'the From is kept whole')
})
