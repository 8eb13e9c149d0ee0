/**
 * Writing messages: createResponse (RFC 3261 §8.2.6), createRequest,
 * forwardRequest (§16.6, splicing the received bytes) and stripTopVia
 * (§16.7 step 3). Every output is parsed again and its values asserted.
 */
import t from 'tap'
import { parseMessage, SipRequest, SipResponse } from '../src/message.js'
import { createRequest, createResponse, editViaElement, forwardRequest, reasonPhrase, stripTopVia } from '../src/build.js'
import { validateRequest, validateResponse } from '../src/validate.js'
import { FIXTURE_NAMES, fixture } from './helpers/fixtures.js'

function req (text: string | Buffer): SipRequest {
  const m = parseMessage(text)
  if (!(m instanceof SipRequest)) throw new Error('expected a request')
  return m
}

function resp (text: string | Buffer): SipResponse {
  const m = parseMessage(text)
  if (!(m instanceof SipResponse)) throw new Error('expected a response')
  return m
}

/** The received bytes of header line `k`, line break included. */
function lineBytes (m: SipRequest | SipResponse, k: number): Buffer {
  return m.buf.subarray(m.lineAt(k), m.nextAt(k))
}

/**
 * Header lines of `m` (by index) that do not appear byte-identical, in
 * order, in `out`: [] when every one of them was copied unchanged.
 */
function notCopied (m: SipRequest | SipResponse, out: Buffer, lines: number[]): number[] {
  const missing: number[] = []
  let from = 0
  for (const k of lines) {
    const at = out.indexOf(lineBytes(m, k), from)
    if (at < 0) missing.push(k)
    else from = at + lineBytes(m, k).length
  }
  return missing
}

const INVITE = [
  'INVITE sip:bob@biloxi.example.com SIP/2.0',
  'v: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK74bf9;rport, SIP/2.0/UDP p0.example.com;branch=z9hG4bKp0',
  'Via: SIP/2.0/TCP p1.example.com;branch=z9hG4bKp1;received=192.0.2.1',
  'Max-Forwards: 70',
  'Route: <sip:r1.example.com;lr>, <sip:r2.example.com;lr>',
  'Route: <sip:r3.example.com;lr>',
  'Record-Route: <sip:rr0.example.com;lr>',
  'From: "Alice" <sip:alice@atlanta.example.com>;tag=9fxced76sl',
  't: Bob <sip:bob@biloxi.example.com>',
  'Call-ID: 3848276298220188511@atlanta.example.com',
  'CSeq: 1 INVITE',
  'Timestamp: 54.2 0.1',
  'Contact: <sip:alice@192.0.2.10>',
  'X-Secret: s3cr3t',
  'Proxy-Authorization: Digest username="alice", realm="atlanta.example.com"',
  'Subject: Grüße',
  'Content-Type: application/sdp',
  'Content-Length: 13',
  '',
  'v=0\r\ns=-\r\nx\x00y'
].join('\r\n')

t.test('createResponse copies Via, From, To, Call-ID, CSeq (RFC 3261 §8.2.6.2)', async t => {
  const r = req(Buffer.from(INVITE))
  const out = createResponse(r, 486)
  const m = resp(out)
  t.equal(m.status, 486)
  t.equal(m.reason, 'Busy Here')
  t.same(m.via.map(v => v.raw), r.via.map(v => v.raw), 'every Via, in order')
  t.equal(m.via.length, 3)
  t.equal(m.from.raw, r.from.raw)
  t.equal(m.to.raw, r.to.raw)
  t.equal(m.callId, r.callId)
  t.same(m.cseq, r.cseq)
  t.equal(m.contentLength, 0)
  t.equal(m.body.length, 0)
  t.notOk(m.hasHeader('Record-Route'), 'Record-Route only on request')
  t.notOk(m.hasHeader('Contact'))
  t.notOk(m.hasHeader('Timestamp'), 'Timestamp only on 100')
  t.notOk(m.hasHeader('X-Secret'))
  t.notOk(m.hasHeader('Route'))
  t.same(notCopied(r, out, [0, 1, 6, 7, 8, 9]), [], 'Via, From, To, Call-ID, CSeq lines are byte copies (names as written)')
  t.equal(validateResponse(m), undefined)
  t.equal(reasonPhrase(486), 'Busy Here')
  t.equal(reasonPhrase(299), 'Success')
})

t.test('createResponse: To tag only when absent and not on 100; Timestamp on 100', async t => {
  const r = req(Buffer.from(INVITE))
  const ringing = resp(createResponse(r, 180, undefined, { toTag: 'a6c85cf' }))
  t.equal(ringing.to.tag, 'a6c85cf')
  t.equal(ringing.to.displayName, 'Bob')
  t.equal(ringing.to.uri, 'sip:bob@biloxi.example.com')
  const trying = resp(createResponse(r, 100, undefined, { toTag: 'a6c85cf' }))
  t.equal(trying.to.tag, undefined, 'no tag on 100 (§8.2.6.2)')
  t.equal(trying.header('Timestamp'), '54.2 0.1', 'Timestamp copied into 100 (§8.2.6.1)')
  t.equal(trying.reason, 'Trying')

  const tagged = req(INVITE.replace('t: Bob <sip:bob@biloxi.example.com>', 'To: <sip:bob@biloxi.example.com>;tag=existing'))
  const ok = resp(createResponse(tagged, 200, 'OK', { toTag: 'new' }))
  t.equal(ok.to.tag, 'existing', 'a To tag already there is kept')
  t.same(ok.headers('To'), ['<sip:bob@biloxi.example.com>;tag=existing'])

  const addrSpec = req(INVITE.replace('t: Bob <sip:bob@biloxi.example.com>', 'To: sip:bob@biloxi.example.com;x=1'))
  const r2 = resp(createResponse(addrSpec, 404, undefined, { toTag: 'zz' }))
  t.equal(r2.to.tag, 'zz')
  t.equal(r2.to.params.get('x'), '1')
  t.equal(r2.to.uri, 'sip:bob@biloxi.example.com')
})

t.test('createResponse: topViaParams (RFC 3261 §18.2.1, RFC 3581 §4)', async t => {
  const r = req(Buffer.from(INVITE))
  const m = resp(createResponse(r, 200, 'OK', { toTag: 'x', topViaParams: { received: '198.51.100.7', rport: 40123 } }))
  const top = m.topVia!
  t.equal(top.rport, 40123, ';rport → ;rport=PORT')
  t.equal(top.received, '198.51.100.7')
  t.equal(top.branch, 'z9hG4bK74bf9')
  t.equal(top.raw, 'SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK74bf9;rport=40123;received=198.51.100.7', 'rport set in place, received appended')
  t.same(m.via.slice(1).map(v => v.raw), r.via.slice(1).map(v => v.raw), 'the other Vias unchanged')

  // rport only where the Via asked for it; received replaces an existing one.
  t.equal(editViaElement('SIP/2.0/UDP h;branch=z9hG4bK1', { received: '192.0.2.1', rport: 5060 }), 'SIP/2.0/UDP h;branch=z9hG4bK1;received=192.0.2.1')
  t.equal(editViaElement('SIP/2.0/UDP h;received=10.0.0.1;branch=z9hG4bK1;rport', { received: '192.0.2.1', rport: 5061 }),
    'SIP/2.0/UDP h;received=192.0.2.1;branch=z9hG4bK1;rport=5061')
  t.equal(editViaElement('SIP/2.0/UDP h;branch=z9hG4bK1;x="a;b"', { received: '192.0.2.1' }), 'SIP/2.0/UDP h;branch=z9hG4bK1;x="a;b";received=192.0.2.1', 'quoted ; kept')
  t.equal(editViaElement('SIP/2.0/UDP h;branch=z9hG4bK1;rport=1', {}), 'SIP/2.0/UDP h;branch=z9hG4bK1;rport=1', 'nothing to do')
  t.equal(editViaElement('SIP/2.0/UDP [2001:db8::1];branch=z9hG4bK1', { received: '[2001:db8::2]' }), 'SIP/2.0/UDP [2001:db8::1];branch=z9hG4bK1;received=[2001:db8::2]')
  t.throws(() => editViaElement('SIP/2.0/UDP h', { received: '1.2.3.4\r\nX: y' }), TypeError)

  // A response to a request with one Via per line.
  const single = req('OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;rport;branch=z9hG4bKs\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n')
  const sr = resp(createResponse(single, 200, undefined, { topViaParams: { received: '203.0.113.5', rport: 7000 } }))
  t.same([sr.topVia?.received, sr.topVia?.rport, sr.topVia?.branch], ['203.0.113.5', 7000, 'z9hG4bKs'])
})

t.test('createResponse: headers, body, Record-Route copy, argument checks', async t => {
  const r = req(Buffer.from(INVITE))
  const out = createResponse(r, 200, 'OK', {
    toTag: 't1',
    copyRecordRoute: true,
    headers: [['Contact', '<sip:bob@192.0.2.4>'], ['Supported', 'timer']],
    body: 'v=0\r\n',
    contentType: 'application/sdp'
  })
  const m = resp(out)
  t.same(m.recordRoute.map(x => x.uri), ['sip:rr0.example.com;lr'])
  t.equal(m.header('Contact'), '<sip:bob@192.0.2.4>')
  t.same(m.supported, ['timer'])
  t.equal(m.header('Content-Type'), 'application/sdp')
  t.equal(m.contentLength, 5)
  t.equal(m.body.toString(), 'v=0\r\n')
  const utf = resp(createResponse(r, 480, 'Nicht verfügbar', { body: Buffer.from([0, 1, 2]) }))
  t.equal(utf.reason, 'Nicht verfügbar')
  t.same([...utf.body], [0, 1, 2])
  t.equal(utf.contentLength, 3)
  t.notOk(utf.hasHeader('Content-Type'), 'no Content-Type without one given')

  t.throws(() => createResponse(r, 200, 'OK\r\nX-Injected: 1'), TypeError, 'no line break in the reason')
  t.throws(() => createResponse(r, 200, 'OK', { headers: [['X-A', 'a\nb']] }), TypeError)
  t.throws(() => createResponse(r, 200, 'OK', { headers: [['X A', 'a']] }), TypeError, 'header names are tokens')
  t.throws(() => createResponse(r, 200, 'OK', { toTag: 'a;b' }), TypeError)
  t.throws(() => createResponse(r, 99), RangeError)
  t.throws(() => createResponse(r, 700), RangeError)
  t.throws(() => createResponse(r, 200.5), RangeError)
})

t.test('createResponse from a request with bare-LF lines and no empty line', async t => {
  const lf = req('OPTIONS sip:a@b SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\nFrom: <sip:x@y>;tag=1\nTo: <sip:a@b>\nCall-ID: c\nCSeq: 1 OPTIONS')
  const out = createResponse(lf, 200, 'OK', { toTag: 'q' })
  t.notOk(out.toString('latin1').replace(/\r\n/g, '').includes('\n'), 'every line ends in CRLF')
  const m = resp(out)
  t.same([m.topVia?.branch, m.from.tag, m.to.tag, m.callId, m.cseq.seq], ['z9hG4bK1', '1', 'q', 'c', 1])
})

t.test('createRequest', async t => {
  const out = createRequest({
    method: 'MESSAGE',
    uri: 'sip:bob@biloxi.example.com',
    headers: [
      ['Via', 'SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKm1'], ['Max-Forwards', '70'], ['From', '"Zoë" <sip:z@example.com>;tag=1'],
      ['To', '<sip:bob@biloxi.example.com>'], ['Call-ID', 'm1@example.com'], ['CSeq', '1 MESSAGE']
    ],
    body: 'Hello, Bob',
    contentType: 'text/plain'
  })
  const m = req(out)
  t.equal(m.method, 'MESSAGE')
  t.equal(m.uri, 'sip:bob@biloxi.example.com')
  t.equal(m.version, 'SIP/2.0')
  t.equal(m.topVia?.branch, 'z9hG4bKm1')
  t.equal(m.from.displayName, 'Zoë')
  t.same(m.cseq, { seq: 1, method: 'MESSAGE' })
  t.equal(m.body.toString(), 'Hello, Bob')
  t.equal(m.contentLength, 10)
  t.equal(m.header('Content-Type'), 'text/plain')
  t.equal(validateRequest(m), undefined)
  const empty = req(createRequest({ method: 'OPTIONS', uri: 'sip:a@b', headers: [] }))
  t.equal(empty.contentLength, 0)
  t.equal(empty.headerCount, 1)
  t.throws(() => createRequest({ method: 'BAD METHOD', uri: 'sip:a@b', headers: [] }), TypeError)
  t.throws(() => createRequest({ method: 'INVITE', uri: 'sip:a@b SIP/2.0\r\nX: y', headers: [] }), TypeError)
  t.throws(() => createRequest({ method: 'INVITE', uri: 'sip:a@b', headers: [['Subject', 'a\r\n\r\nbody']] }), TypeError)
})

t.test('forwardRequest splices the received bytes (RFC 3261 §16.6)', async t => {
  const r = req(Buffer.from(INVITE))
  const out = forwardRequest(r, {
    via: 'SIP/2.0/UDP proxy.example.com;branch=z9hG4bKfwd1',
    maxForwards: 69,
    popRoute: true,
    recordRoute: ['<sip:proxy.example.com;lr>', '<sip:proxy-int.example.com;lr>'],
    requestUri: 'sip:bob@192.0.2.4:5070',
    topViaParams: { received: '198.51.100.7', rport: 40123 },
    pushRoute: ['<sip:path.example.com;lr>'],
    removeHeaders: ['x-secret', 'Proxy-Authorization']
  })
  const m = req(out)
  t.equal(m.method, 'INVITE')
  t.equal(m.uri, 'sip:bob@192.0.2.4:5070', 'Request-URI replaced')
  t.same(m.via.map(v => v.branch), ['z9hG4bKfwd1', 'z9hG4bK74bf9', 'z9hG4bKp0', 'z9hG4bKp1'], 'new Via on top')
  t.same([m.via[1]!.received, m.via[1]!.rport], ['198.51.100.7', 40123], 'received/rport on the previous top Via')
  t.equal(m.maxForwards, 69)
  t.same(m.recordRoute.map(x => x.uri), ['sip:proxy.example.com;lr', 'sip:proxy-int.example.com;lr', 'sip:rr0.example.com;lr'], 'Record-Route added on top')
  t.same(m.route.map(x => x.uri), ['sip:path.example.com;lr', 'sip:r2.example.com;lr', 'sip:r3.example.com;lr'], 'top Route popped from a two-element line, pushed Route on top')
  t.notOk(m.hasHeader('X-Secret'))
  t.notOk(m.hasHeader('Proxy-Authorization'))
  t.equal(m.callId, r.callId)
  t.same(m.cseq, r.cseq)
  t.equal(m.from.raw, r.from.raw)
  t.equal(m.header('Subject'), 'Grüße')
  t.ok(m.body.equals(r.body), 'body byte-identical')
  t.equal(m.contentLength, 13)
  t.equal(validateRequest(m), undefined)
  // Untouched lines: everything but the first Via line, Max-Forwards, the first Route line and the removed ones.
  const untouched = [1, 4, 5, 6, 7, 8, 9, 10, 11, 14, 15, 16]
  t.same(notCopied(r, out, untouched), [], 'every untouched header line is a byte copy, in order')
  t.ok(out.subarray(out.length - r.body.length).equals(r.body))
})

t.test('forwardRequest: one-element Route line removed, Max-Forwards added, Content-Length added', async t => {
  const text = 'OPTIONS sip:a@b.example.com SIP/2.0\r\nVia: SIP/2.0/UDP h.example.com;branch=z9hG4bK1\r\nRoute: <sip:me.example.com;lr>\r\nRoute: <sip:next.example.com;lr>\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:a@b.example.com>\r\nCall-ID: c2\r\nCSeq: 2 OPTIONS\r\n\r\nrest of datagram'
  const r = req(text)
  const out = forwardRequest(r, { via: 'SIP/2.0/UDP me.example.com;branch=z9hG4bK2', maxForwards: 70, popRoute: true })
  const m = req(out)
  t.same(m.route.map(x => x.uri), ['sip:next.example.com;lr'])
  t.equal(m.headers('Route').length, 1, 'the popped line is gone')
  t.equal(m.maxForwards, 70, 'Max-Forwards added')
  t.equal(m.contentLength, 16, 'Content-Length added for the body the datagram carried')
  t.equal(m.body.toString(), 'rest of datagram')
  t.equal(m.uri, 'sip:a@b.example.com', 'start line copied')
  t.same(notCopied(r, out, [0, 2, 3, 4, 5, 6]), [])

  const plain = forwardRequest(r, {})
  const p = req(plain)
  t.same(p.headerEntries().slice(0, 7), r.headerEntries(), 'no edits: every line copied')
  t.equal(p.contentLength, 16)
  t.throws(() => forwardRequest(r, { maxForwards: 256 }), RangeError)
  t.throws(() => forwardRequest(r, { via: 'SIP/2.0/UDP x\r\nX: 1' }), TypeError)
  t.throws(() => forwardRequest(r, { requestUri: 'sip:a@b SIP/2.0' }), TypeError)
  t.throws(() => forwardRequest(r, { addHeaders: [['X', 'a\rb']] }), TypeError)
  const added = req(forwardRequest(r, { addHeaders: [['X-Added', 'yes']], removeHeaders: ['route'] }))
  t.equal(added.header('X-Added'), 'yes')
  t.same(added.route, [])
})

t.test('forwardRequest: folded and bare-LF input, every torture request', async t => {
  const folded = req('INVITE sip:a@b SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bK1,\n SIP/2.0/UDP g;branch=z9hG4bK0\nRoute: <sip:r1;lr>,\n <sip:r2;lr>\nMax-Forwards: 3\nFrom: <sip:x@y>;tag=1\nTo: <sip:a@b>\nCall-ID: c3\nCSeq: 1 INVITE\nContent-Length: 2\n\nhi')
  const m = req(forwardRequest(folded, { via: 'SIP/2.0/TCP p;branch=z9hG4bK9', maxForwards: 2, popRoute: true, topViaParams: { received: '192.0.2.8' } }))
  t.same(m.via.map(v => [v.host, v.received]), [['p', undefined], ['h', '192.0.2.8'], ['g', undefined]])
  t.same(m.route.map(x => x.uri), ['sip:r2;lr'])
  t.equal(m.maxForwards, 2)
  t.equal(m.body.toString(), 'hi')

  // Every torture request that validates: forwarded, it parses again with the same values.
  const failures: string[] = []
  for (const name of FIXTURE_NAMES) {
    let r: SipRequest
    try {
      const p = parseMessage(fixture(name))
      if (!(p instanceof SipRequest) || validateRequest(p) !== undefined) continue
      r = p
    } catch {
      continue
    }
    const out = forwardRequest(r, { via: 'SIP/2.0/UDP proxy.example.com;branch=z9hG4bKt', maxForwards: 5, popRoute: true, recordRoute: ['<sip:proxy.example.com;lr>'] })
    const f = req(out)
    const same = f.callId === r.callId && f.cseq.seq === r.cseq.seq && f.from.raw === r.from.raw && f.to.raw === r.to.raw &&
      f.via.length === r.via.length + 1 && f.body.equals(r.body) && f.maxForwards === 5 && f.uri === r.uri &&
      f.recordRoute.length === r.recordRoute.length + 1 && f.route.length === Math.max(0, r.route.length - 1)
    if (!same) failures.push(name)
  }
  t.same(failures, [], 'every valid torture request survives forwarding')
})

t.test('stripTopVia (RFC 3261 §16.7 step 3)', async t => {
  const base = 'SIP/2.0 200 OK\r\n%VIA%From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: s1\r\nCSeq: 1 INVITE\r\nContent-Length: 4\r\n\r\nbody'
  const single = resp(base.replace('%VIA%', 'Via: SIP/2.0/UDP me.example.com;branch=z9hG4bKme\r\nVia: SIP/2.0/UDP up.example.com;branch=z9hG4bKup\r\n'))
  const s1 = resp(stripTopVia(single))
  t.same(s1.via.map(v => v.host), ['up.example.com'])
  t.equal(s1.body.toString(), 'body')
  t.equal(s1.status, 200)
  t.same(notCopied(single, stripTopVia(single), [1, 2, 3, 4, 5, 6]), [], 'the rest is copied')

  const multi = resp(base.replace('%VIA%', 'v: SIP/2.0/UDP me.example.com;branch=z9hG4bKme, SIP/2.0/UDP up.example.com;branch=z9hG4bKup, SIP/2.0/TCP up2.example.com;branch=z9hG4bKup2\r\n'))
  const s2 = resp(stripTopVia(multi))
  t.same(s2.via.map(v => v.host), ['up.example.com', 'up2.example.com'], 'a multi-element line is rewritten')
  t.equal(s2.headerEntries()[0]![0], 'v', 'header name kept')
  t.equal(validateResponse(s2), undefined)

  const onlyOne = resp(base.replace('%VIA%', 'Via: SIP/2.0/UDP me.example.com;branch=z9hG4bKme\r\n'))
  const s3 = resp(stripTopVia(onlyOne))
  t.same(s3.via, [])
  t.notOk(s3.hasHeader('Via'))
  const none = resp(base.replace('%VIA%', ''))
  t.ok(stripTopVia(none).equals(none.raw), 'no Via: unchanged')
})

t.test('outputs are sized exactly: one allocation, no spare bytes (above 4 KiB, where Buffer.allocUnsafe does not pool)', async t => {
  const body = 'x'.repeat(5000)
  const base = (start: string, more: string[]): string => [start, 'Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1', ...more, 'Max-Forwards: 70',
    // A long From: the responses copy it too.
    'From: "' + 'p'.repeat(4200) + '" <sip:a@b>;tag=1', 'To: <sip:c@d>', 'Call-ID: abc@host', 'CSeq: 1 INVITE'].join('\r\n')
  const whole = (b: Buffer, what: string): void => {
    t.equal(b.buffer.byteLength, b.length, `${what}: the Buffer is its whole allocation`)
    t.equal(b.byteOffset, 0, `${what}: at its start`)
  }
  const inv = req(base('INVITE sip:c@d SIP/2.0', ['Route: <sip:192.0.2.9;lr>']) + `\r\nContent-Length: ${body.length}\r\n\r\n${body}`)
  // The usual forward, and the cases that write after the headers or fix a line end.
  whole(forwardRequest(inv, { via: 'SIP/2.0/UDP 192.0.2.2;branch=z9hG4bK2', maxForwards: 69, recordRoute: ['<sip:192.0.2.2;lr>'], popRoute: true }), 'forward')
  whole(forwardRequest(inv, { requestUri: 'sip:ü@d', maxForwards: 9, topViaParams: { received: '192.0.2.7', rport: 1 }, removeHeaders: ['Content-Length', 'max-forwards'], addHeaders: [['X-U', 'ü']] }), 'forward with a new Request-URI, added lines')
  whole(forwardRequest(req(base('INVITE sip:c@d SIP/2.0', []).replace(/\r\n/g, '\n') + '\n\n'), { maxForwards: 100 }), 'forward of bare-LF lines, Content-Length added')
  whole(createResponse(inv, 100), '100 Trying')
  whole(createResponse(inv, 200, 'ÖK', { toTag: 'z', headers: [['Contact', '<sip:ü@e>']], body, contentType: 'text/plain', copyRecordRoute: true }), '200 with a body')
  const r = resp(['SIP/2.0 200 OK', 'Via: SIP/2.0/UDP 192.0.2.2;branch=z9hG4bK2, SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1', 'From: <sip:a@b>;tag=1', 'To: <sip:c@d>;tag=2',
    'Call-ID: abc@host', 'CSeq: 1 INVITE', `Content-Length: ${body.length}`, '', body].join('\r\n'))
  whole(stripTopVia(r), 'stripTopVia of a two-element Via line')
})
