/**
 * parseMessage and the message accessors: generic header access, typed
 * views, text decoding, folding, line endings, framing of a datagram by
 * Content-Length, error codes and offsets, responses, and validateRequest /
 * validateResponse.
 */
import t from 'tap'
import { parseMessage, SipRequest, SipResponse } from '../src/message.js'
import { SipLimitError, SipParseError } from '../src/errors.js'
import { validateRequest, validateResponse } from '../src/validate.js'
import { fixture } from './helpers/fixtures.js'

type Test = typeof t

const VIA = 'Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds'
const FROM = 'From: "Alice" <sip:alice@atlanta.example.com>;tag=1928301774'
const TO = 'To: <sip:bob@biloxi.example.com>'
const CALL_ID = 'Call-ID: a84b4c76e66710@pc33.atlanta.example.com'
const CSEQ = 'CSeq: 314159 INVITE'
const START = 'INVITE sip:bob@biloxi.example.com SIP/2.0'

/** A request from header lines (CRLF line endings unless `eol` says otherwise). */
function request (headers: string[], body = '', start = START, eol = '\r\n'): string {
  return [start, ...headers].join(eol) + eol + eol + body
}

/** The usual mandatory headers plus `extra`. */
function basic (extra: string[] = [], body = ''): string {
  return request([VIA, FROM, TO, CALL_ID, CSEQ, 'Max-Forwards: 70', ...extra], body)
}

function parseReq (text: string | Buffer): SipRequest {
  const m = parseMessage(text)
  if (!(m instanceof SipRequest)) throw new Error('expected a request')
  return m
}

function parseResp (text: string | Buffer): SipResponse {
  const m = parseMessage(text)
  if (!(m instanceof SipResponse)) throw new Error('expected a response')
  return m
}

/** The SipParseError `fn` throws (fails the test when it throws nothing or something else). */
function parseError (t: Test, fn: () => unknown): SipParseError {
  try {
    fn()
  } catch (err) {
    if (err instanceof SipParseError) return err
    t.fail(`threw ${String(err)}`)
    throw err
  }
  t.fail('did not throw')
  return new SipParseError('none', -1)
}

/** The input text at an error's offset. */
function textAt (text: string, err: SipParseError, n = 12): string {
  return Buffer.from(text).toString('latin1').slice(err.offset, err.offset + n)
}

t.test('header / headers / hasHeader: any case, compact forms both ways', async t => {
  const m = parseReq(request([
    'v: SIP/2.0/UDP a.example.com;branch=z9hG4bK1', 'f: <sip:a@x>;tag=1', 't: <sip:b@y>', 'i: call-1@x', 'CSeq: 1 INVITE',
    'm: <sip:a@192.0.2.1>', 'e: gzip', 'l: 0', 's: Lunch', 'k: timer', 'c: application/sdp', 'o: presence',
    'u: dialog', 'r: <sip:carol@example.com>', 'x: 1800', 'y: sig', 'b: <sip:ref@example.com>', 'j: *;audio',
    'X-Custom: one', 'x-CUSTOM: two'
  ]))
  const pairs: Array<[string, string, string]> = [
    ['i', 'Call-ID', 'call-1@x'], ['m', 'Contact', '<sip:a@192.0.2.1>'], ['e', 'Content-Encoding', 'gzip'],
    ['l', 'Content-Length', '0'], ['f', 'From', '<sip:a@x>;tag=1'], ['t', 'To', '<sip:b@y>'],
    ['v', 'Via', 'SIP/2.0/UDP a.example.com;branch=z9hG4bK1'], ['s', 'Subject', 'Lunch'], ['k', 'Supported', 'timer'],
    ['c', 'Content-Type', 'application/sdp'], ['o', 'Event', 'presence'], ['u', 'Allow-Events', 'dialog'],
    ['r', 'Refer-To', '<sip:carol@example.com>'], ['x', 'Session-Expires', '1800'], ['y', 'Identity', 'sig'],
    ['b', 'Referred-By', '<sip:ref@example.com>'], ['j', 'Reject-Contact', '*;audio']
  ]
  for (const [compact, long, value] of pairs) {
    t.equal(m.header(long), value, `${long} found from its compact form "${compact}:"`)
    t.equal(m.header(long.toUpperCase()), value, `${long.toUpperCase()}`)
    t.equal(m.header(compact), value, `"${compact}" asks for ${long}`)
    t.equal(m.header(compact.toUpperCase()), value, `"${compact.toUpperCase()}" asks for ${long}`)
    t.ok(m.hasHeader(long.toLowerCase()))
  }
  // Unknown names: any case, every line, never split (their grammar is unknown).
  t.equal(m.header('x-custom'), 'one')
  t.same(m.headers('X-CUSTOM'), ['one', 'two'])
  t.ok(m.hasHeader('X-Custom'))
  t.notOk(m.hasHeader('X-Missing'))
  t.equal(m.header('X-Missing'), undefined)
  t.same(m.headers('X-Missing'), [])
  t.notOk(m.hasHeader('Route'))

  // Long forms in the message, compact forms asked.
  const m2 = parseReq(basic(['Contact: <sip:a@b>', 'Content-Type: text/plain', 'Subject: Hi']))
  t.equal(m2.header('m'), '<sip:a@b>')
  t.equal(m2.header('c'), 'text/plain')
  t.equal(m2.header('s'), 'Hi')
  t.equal(m2.header('i'), 'a84b4c76e66710@pc33.atlanta.example.com')
  t.equal(m2.header('v'), 'SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds')
})

t.test('headers splits list headers on top-level commas only', async t => {
  const m = parseReq(basic([
    'Contact: "Doe, John" <sip:john@example.com;x=1,2>;q=0.5, <sip:j2@example.com>',
    'Contact: sip:j3@example.com',
    'Route: <sip:p1.example.com;lr>,<sip:p2.example.com;lr>',
    'Route: <sip:p3.example.com;lr>',
    'Allow: INVITE, ACK,BYE ,  CANCEL',
    'Subject: Lunch, or dinner?',
    'Date: Sat, 13 Nov 2010 23:29:00 GMT',
    'WWW-Authenticate: Digest realm="a", nonce="b"',
    'Warning: 399 host "a, b", 399 host2 "c"'
  ]))
  t.same(m.headers('Contact'), ['"Doe, John" <sip:john@example.com;x=1,2>;q=0.5', '<sip:j2@example.com>', 'sip:j3@example.com'])
  t.equal(m.header('Contact'), '"Doe, John" <sip:john@example.com;x=1,2>;q=0.5', 'header() gives the first element')
  t.same(m.headers('route'), ['<sip:p1.example.com;lr>', '<sip:p2.example.com;lr>', '<sip:p3.example.com;lr>'])
  t.same(m.headers('Allow'), ['INVITE', 'ACK', 'BYE', 'CANCEL'])
  t.same(m.headers('Subject'), ['Lunch, or dinner?'], 'not a list header')
  t.same(m.headers('Date'), ['Sat, 13 Nov 2010 23:29:00 GMT'])
  t.same(m.headers('WWW-Authenticate'), ['Digest realm="a", nonce="b"'])
  t.same(m.headers('Warning'), ['399 host "a, b"', '399 host2 "c"'])
  t.same(m.headers('Via'), ['SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds'])
})

t.test('headerEntries: every line in order, names as written', async t => {
  const m = parseReq(request(['v: SIP/2.0/UDP h;branch=z9hG4bK1', 'FROM: <sip:a@x>;tag=1', 'To :  <sip:b@y> ', 'X-A: 1, 2', 'Empty:']))
  t.same(m.headerEntries(), [
    ['v', 'SIP/2.0/UDP h;branch=z9hG4bK1'], ['FROM', '<sip:a@x>;tag=1'], ['To', '<sip:b@y>'], ['X-A', '1, 2'], ['Empty', '']
  ])
  t.equal(m.headerCount, 5)
})

t.test('Via: every element with its fields', async t => {
  const m = parseReq(request([
    'Via: SIP/2.0/udp Host.Example.COM:5061;branch=z9hG4bKa;rport;received=10.0.0.1;maddr=224.2.0.1;ttl=5;X-Flag',
    'v: SIP/2.0/TCP [2001:DB8::1]:5070;rport=1234;branch=z9hG4bKb, SIP / 2.0 / TLS proxy.example.com ; branch = z9hG4bKc',
    FROM, TO, CALL_ID, CSEQ
  ]))
  const vias = m.via
  t.equal(vias.length, 3)
  const [a, b, c] = vias
  t.same([a!.protocol, a!.transport, a!.host, a!.port, a!.branch, a!.received, a!.rport], ['SIP/2.0', 'UDP', 'host.example.com', 5061, 'z9hG4bKa', '10.0.0.1', null])
  t.same([...a!.params], [['branch', 'z9hG4bKa'], ['rport', null], ['received', '10.0.0.1'], ['maddr', '224.2.0.1'], ['ttl', '5'], ['x-flag', null]])
  t.equal(a!.raw, 'SIP/2.0/udp Host.Example.COM:5061;branch=z9hG4bKa;rport;received=10.0.0.1;maddr=224.2.0.1;ttl=5;X-Flag')
  t.same([b!.transport, b!.host, b!.port, b!.rport, b!.branch, b!.received], ['TCP', '[2001:db8::1]', 5070, 1234, 'z9hG4bKb', undefined])
  t.same([c!.protocol, c!.transport, c!.host, c!.port, c!.branch], ['SIP/2.0', 'TLS', 'proxy.example.com', undefined, 'z9hG4bKc'])
  t.equal(m.topVia, vias[0], 'topVia is the first element')

  // topVia alone parses only the first element: a bad second one does not matter.
  const m2 = parseReq(request(['Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1, SIP/2.0/UDP b.example.com:99999', FROM, TO, CALL_ID, CSEQ]))
  t.equal(m2.topVia?.host, 'a.example.com')
  const err = parseError(t, () => m2.via)
  t.equal(err.code, 'SIP_ERR_BAD_VIA')
  t.match(err.message, 'invalid port in Via')
  t.equal(textAt(m2.toString(), err, 5), '99999')

  const none = parseReq(request([FROM, TO, CALL_ID, CSEQ]))
  t.equal(none.topVia, undefined)
  t.same(none.via, [])

  // An empty Via line is refused by both views, in either order (else topVia
  // would depend on which was read first, and forwarding would edit the
  // empty line instead of the top Via).
  const empty = request(['Via: ', VIA, FROM, TO, CALL_ID, CSEQ])
  const e1 = parseError(t, () => parseReq(empty).topVia)
  t.equal(e1.code, 'SIP_ERR_BAD_HEADER')
  t.equal(e1.message, 'empty Via header')
  const viaFirst = parseReq(empty)
  t.equal(parseError(t, () => viaFirst.via).message, 'empty Via header')
  t.equal(parseError(t, () => viaFirst.topVia).message, 'empty Via header')
  t.equal(validateRequest(parseReq(empty))?.reason, 'empty Via header')
  for (const h of ['Route', 'Record-Route', 'Contact']) {
    t.equal(parseError(t, () => { const m = parseReq(basic([`${h}:`])); return h === 'Route' ? m.route : h === 'Contact' ? m.contact : m.recordRoute }).message, `empty ${h} header`)
  }
  t.same(parseReq(request(['Via: SIP/2.0/UDP a;branch=z9hG4bK1, , SIP/2.0/UDP b;branch=z9hG4bK2', FROM, TO, CALL_ID, CSEQ])).via.map(v => v.host), ['a', 'b'], 'an empty element between commas is skipped')

  // An IPv6 reference ends at the first character an address cannot hold:
  // a missing "]" must not swallow the parameters after it.
  for (const v of ['SIP/2.0/UDP [2001:db8::9:1\x00;received=[2001:db8::9:255];branch=z9hG4bK1', 'SIP/2.0/UDP [2001:db8::9:1;branch=z9hG4bK1]', 'SIP/2.0/UDP [not:an:address]', 'SIP/2.0/UDP []']) {
    const text = request([`Via: ${v}`, FROM, TO, CALL_ID, CSEQ])
    const err = parseError(t, () => parseReq(text).topVia)
    t.equal(err.code, 'SIP_ERR_BAD_VIA', JSON.stringify(v))
    t.match(err.message, 'invalid IPv6 reference in Via')
    t.equal(textAt(text, err, 1), '[')
  }
  const recv = request(['Via: SIP/2.0/UDP h;received=[2001:db8::1;branch=z9hG4bK1]', FROM, TO, CALL_ID, CSEQ])
  t.match(parseError(t, () => parseReq(recv).topVia).message, 'invalid IPv6 reference in Via parameter received')
  t.equal(parseReq(request(['Via: SIP/2.0/UDP [::ffff:192.0.2.1]:5060;received=[2001:DB8::1];branch=z9hG4bK1', FROM, TO, CALL_ID, CSEQ])).topVia?.received, '[2001:DB8::1]')
})

t.test('methods: the known ones and their near misses read as written (request line and CSeq)', async t => {
  const known = ['ACK', 'BYE', 'INFO', 'PRACK', 'REFER', 'INVITE', 'CANCEL', 'NOTIFY', 'UPDATE', 'OPTIONS', 'PUBLISH', 'MESSAGE', 'REGISTER', 'SUBSCRIBE']
  const methods = [...known, 'AC', 'ACKS', 'invite', 'INVITe', 'iNVITE', 'INVITF', 'REGISTEr', 'SUBSCRIBx', 'SUBSCRIBES', 'XNFO', 'OPTIONZ', 'FANCY-Method', 'B']
  for (const method of methods) {
    const m = parseReq(request([VIA, FROM, TO, CALL_ID, `CSeq: 7 ${method}`], '', `${method} sip:bob@biloxi.example.com SIP/2.0`))
    t.equal(m.method, method, `request line ${method}`)
    t.same(m.cseq, { seq: 7, method }, `CSeq ${method}`)
  }
})

t.test('CSeq, Call-ID, Max-Forwards, Expires, Content-Length', async t => {
  const m = parseReq(basic(['Expires: 3600', 'Content-Length: 0']))
  t.same(m.cseq, { seq: 314159, method: 'INVITE' })
  t.equal(m.callId, 'a84b4c76e66710@pc33.atlanta.example.com')
  t.equal(m.maxForwards, 70)
  t.equal(m.expires, 3600)
  t.equal(m.contentLength, 0)

  const odd = parseReq(request([VIA, FROM, TO, 'i: x', 'CSeq:   2147483647   FANCY-Method', 'Max-Forwards: 0']))
  t.same(odd.cseq, { seq: 2147483647, method: 'FANCY-Method' })
  t.equal(odd.maxForwards, 0)
  t.equal(odd.expires, undefined)
  t.equal(odd.contentLength, undefined)

  for (const [line, code, msg] of [
    ['CSeq: INVITE', 'SIP_ERR_BAD_CSEQ', 'invalid CSeq'],
    ['CSeq: 1', 'SIP_ERR_BAD_CSEQ', 'missing method in CSeq'],
    ['CSeq: 2147483648 INVITE', 'SIP_ERR_NUMBER_TOO_LARGE', 'is larger than 2147483647'],
    ['CSeq: 1 IN/VITE', 'SIP_ERR_BAD_CSEQ', 'invalid method'],
    ['CSeq: 1INVITE', 'SIP_ERR_BAD_CSEQ', 'missing method in CSeq']
  ] as const) {
    const text = request([VIA, FROM, TO, CALL_ID, line])
    const err = parseError(t, () => parseReq(text).cseq)
    t.equal(err.code, code, line)
    t.match(err.message, msg, line)
    t.ok(err.offset >= text.indexOf(line) + 5 && err.offset <= text.indexOf(line) + line.length, `${line}: offset inside the value`)
  }
  t.equal(parseError(t, () => parseReq(request([VIA, FROM, TO, CALL_ID])).cseq).code, 'SIP_ERR_MISSING_HEADER')
  t.equal(parseError(t, () => parseReq(request([VIA, FROM, TO, CSEQ])).callId).code, 'SIP_ERR_MISSING_HEADER')

  const badCallId = request([VIA, FROM, TO, 'Call-ID: abc def', CSEQ])
  const e1 = parseError(t, () => parseReq(badCallId).callId)
  t.equal(e1.code, 'SIP_ERR_BAD_CALL_ID')
  t.equal(textAt(badCallId, e1, 4), ' def')
  t.equal(parseError(t, () => parseReq(request([VIA, FROM, TO, 'Call-ID:', CSEQ])).callId).code, 'SIP_ERR_BAD_CALL_ID')

  for (const [line, code] of [
    ['Max-Forwards: 256', 'SIP_ERR_NUMBER_TOO_LARGE'], ['Max-Forwards: -1', 'SIP_ERR_BAD_NUMBER'], ['Max-Forwards: 7a', 'SIP_ERR_BAD_NUMBER'],
    ['Max-Forwards:', 'SIP_ERR_BAD_NUMBER']
  ] as const) {
    t.equal(parseError(t, () => parseReq(request([VIA, FROM, TO, CALL_ID, CSEQ, line])).maxForwards).code, code, line)
  }
  t.equal(parseReq(request([VIA, FROM, TO, CALL_ID, CSEQ, 'Max-Forwards: 0070'])).maxForwards, 70, 'leading zeros')
  t.equal(parseReq(request([VIA, FROM, TO, CALL_ID, CSEQ, 'Expires: 4294967295'])).expires, 4294967295)
  // RFC 3261 §20.19, §10.2.1.1: above 2**32-1 reads as 2**32-1; malformed (RFC 2543's date too) as 3600.
  for (const [line, want] of [
    ['Expires: 4294967296', 4294967295], ['Expires: 99999999999999999999999', 4294967295], ['Expires:  60 ', 60],
    ['Expires: never', 3600], ['Expires: -5', 3600], ['Expires: 1.5', 3600], ['Expires:', 3600],
    ['Expires: Thu, 01 Dec 1994 16:00:00 GMT', 3600]
  ] as const) {
    t.equal(parseReq(request([VIA, FROM, TO, CALL_ID, CSEQ, line])).expires, want, line)
  }
})

t.test('From / To: display name, URI, tag, params', async t => {
  const m = parseReq(request([
    VIA, 'From: "A \\"quoted\\" \\\\ name" <sip:alice@atlanta.example.com;transport=tcp>;tag=88sja8x;x-p="a;b,c"',
    'To: Bob Smith <sip:bob@biloxi.example.com>', CALL_ID, CSEQ
  ]))
  t.equal(m.from.displayName, 'A "quoted" \\ name')
  t.equal(m.from.uri, 'sip:alice@atlanta.example.com;transport=tcp')
  t.equal(m.from.tag, '88sja8x')
  t.same([...m.from.params], [['tag', '88sja8x'], ['x-p', 'a;b,c']])
  t.equal(m.to.displayName, 'Bob Smith')
  t.equal(m.to.uri, 'sip:bob@biloxi.example.com')
  t.equal(m.to.tag, undefined)
  t.equal(m.to.raw, 'Bob Smith <sip:bob@biloxi.example.com>')

  // addr-spec form: the ;params after the URI are header parameters (RFC 3261 §20.10).
  const m2 = parseReq(request([VIA, 'From: sip:alice@atlanta.example.com;tag=1', 'To: sip:bob@biloxi.example.com ; tag = 2', CALL_ID, CSEQ]))
  t.equal(m2.from.uri, 'sip:alice@atlanta.example.com')
  t.equal(m2.from.tag, '1')
  t.equal(m2.to.tag, '2')
  t.equal(m2.from.displayName, undefined)

  for (const [line, code, msg, at] of [
    ['To: "Bob <sip:bob@b.example.com>', 'SIP_ERR_UNTERMINATED_QUOTE', 'unterminated quoted string in To', '"Bob'],
    ['To: <sip:bob@b.example.com', 'SIP_ERR_BAD_ADDRESS', 'missing ">" in To', '<sip'],
    ['To: Bob, Jr <sip:bob@b.example.com>', 'SIP_ERR_BAD_DISPLAY_NAME', 'invalid character "," in display name of To', ', Jr'],
    ['To: <bob@b.example.com>', 'SIP_ERR_BAD_ADDRESS', 'missing URI scheme in To', 'bob@'],
    ['To: sip:bob@b.example.com?subject=x', 'SIP_ERR_BAD_ADDRESS', 'must be enclosed in <> in To', '?sub'],
    ['To: <sip:bob@b.example.com>;tag', 'SIP_ERR_BAD_PARAM', '', ''],
    ['To: <sip:bob@b.example.com>;=x', 'SIP_ERR_BAD_PARAM', 'empty parameter name in To', '=x'],
    ['To: <sip:bob@b.example.com> junk', 'SIP_ERR_BAD_PARAM', 'unexpected "junk" in To parameters', 'junk'],
    ['To:', 'SIP_ERR_BAD_ADDRESS', 'empty To', '']
  ] as const) {
    const text = request([VIA, FROM, line, CALL_ID, CSEQ])
    if (code === 'SIP_ERR_BAD_PARAM' && msg === '') {
      t.equal(parseReq(text).to.tag, undefined, 'a tag flag without value reads as no tag')
      continue
    }
    const err = parseError(t, () => parseReq(text).to)
    t.equal(err.code, code, line)
    t.match(err.message, msg, line)
    if (at !== '') t.equal(textAt(text, err, at.length), at, `${line}: offset`)
  }
  t.equal(parseError(t, () => parseReq(request([VIA, TO, CALL_ID, CSEQ])).from).code, 'SIP_ERR_MISSING_HEADER')
})

t.test('Contact: list, *, expires and q', async t => {
  const m = parseReq(basic([
    'Contact: <sip:a@192.0.2.1:5060;transport=tcp>;expires=60;q=0.7;+sip.instance="<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"',
    'm: "Mr, X" <sip:x@example.com>;q=1, sip:y@example.com;expires=0'
  ]))
  const c = m.contact
  if (c === '*') return t.fail('not *')
  t.same(c.map(x => [x.displayName, x.uri, x.expires, x.q]), [
    [undefined, 'sip:a@192.0.2.1:5060;transport=tcp', 60, 0.7],
    ['Mr, X', 'sip:x@example.com', undefined, 1],
    [undefined, 'sip:y@example.com', 0, undefined]
  ])
  t.equal(c[0]!.params.get('+sip.instance'), '<urn:uuid:00000000-0000-1000-8000-000A95A0E128>')

  const star = parseReq(request([VIA, FROM, TO, CALL_ID, 'CSeq: 2 REGISTER', 'Contact: *', 'Expires: 0'], '', 'REGISTER sip:example.com SIP/2.0'))
  t.equal(star.contact, '*')
  t.equal(star.expires, 0)
  t.same(parseReq(basic()).contact, [], 'absent: empty list')

  for (const q of ['0', '0.5', '0.001', '1', '1.0', '1.000', '0.']) {
    const got = parseReq(basic([`Contact: <sip:a@b>;q=${q}`])).contact
    t.equal(got === '*' ? undefined : got[0]!.q, Number(q), `q=${q}`)
  }
  for (const q of ['2', '1.5', '0.0001', '.5', '0x1', '1.001', '-0', 'abc']) {
    const text = basic([`Contact: <sip:a@b>;q=${q}`])
    const err = parseError(t, () => parseReq(text).contact)
    t.equal(err.code, 'SIP_ERR_BAD_PARAM', `q=${q}`)
    t.equal(textAt(text, err, q.length), q, `q=${q}: offset at the value`)
  }
  // RFC 3261 §20.10: a malformed expires reads as 3600, an overlarge one as 2**32-1; the Contact stays.
  for (const [v, want] of [['soon', 3600], ['-5', 3600], ['4294967296', 4294967295], ['0', 0], ['7200', 7200]] as const) {
    const got = parseReq(basic([`Contact: <sip:a@b>;expires=${v};q=0.5`])).contact
    t.same(got === '*' ? got : got.map(c => [c.uri, c.expires, c.q]), [['sip:a@b', want, 0.5]], `expires=${v}`)
  }
  const mixed = basic(['Contact: <sip:a@b>, *'])
  t.equal(parseError(t, () => parseReq(mixed).contact).code, 'SIP_ERR_BAD_ADDRESS', '* among other contacts')
})

t.test('Route / Record-Route', async t => {
  const m = parseReq(basic([
    'Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>', 'Record-Route: <sip:rr.example.com;lr;ftag=x>', 'Route: "P3" <sip:p3.example.com;lr>;foo'
  ]))
  t.same(m.route.map(r => [r.displayName, r.uri, [...r.params]]), [
    [undefined, 'sip:p1.example.com;lr', []], [undefined, 'sip:p2.example.com;lr', []], ['P3', 'sip:p3.example.com;lr', [['foo', null]]]
  ])
  t.same(m.recordRoute.map(r => r.uri), ['sip:rr.example.com;lr;ftag=x'])
  t.equal(m.route[1]!.raw, '<sip:p2.example.com;lr>')
  t.same(parseReq(basic()).route, [])
  const text = basic(['Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr'])
  const err = parseError(t, () => parseReq(text).route)
  t.equal(err.code, 'SIP_ERR_BAD_ADDRESS')
  t.equal(textAt(text, err, 7), '<sip:p2', 'offset at the second element')
})

t.test('Authorization / Proxy-Authorization digest credentials', async t => {
  const m = parseReq(basic([
    'Authorization: Digest username="alice", realm="atlanta.example.com", nonce="84a4cc6f3082121f32b42a2187831a9e", uri="sip:bob@biloxi.example.com", response="7587245234b3434cc3412213e5f113a5", algorithm=MD5, cnonce="0a4f113b", opaque="5ccc069c403ebaf9f0171e9517f40e41", qop=auth, nc=00000001',
    'Proxy-Authorization: Digest username="bob",realm="biloxi.example.com",nonce="n",uri="sip:x",response="r",algorithm=SHA-256,X-Ext="a, b"',
    'Authorization: Digest username="second", realm="r2", nonce="n2", uri="sip:y", response="z"'
  ]))
  const a = m.authorization
  t.same(a && [a.scheme, a.username, a.realm, a.nonce, a.uri, a.response, a.algorithm, a.cnonce, a.opaque, a.qop, a.nc], [
    'Digest', 'alice', 'atlanta.example.com', '84a4cc6f3082121f32b42a2187831a9e', 'sip:bob@biloxi.example.com',
    '7587245234b3434cc3412213e5f113a5', 'MD5', '0a4f113b', '5ccc069c403ebaf9f0171e9517f40e41', 'auth', '00000001'
  ])
  const p = m.proxyAuthorization
  t.same(p && [p.username, p.realm, p.algorithm, p.qop, p.params.get('x-ext')], ['bob', 'biloxi.example.com', 'SHA-256', undefined, 'a, b'])
  t.same(m.credentials(false).map(c => c.username), ['alice', 'second'])
  t.same(m.credentials(true).map(c => c.username), ['bob'])
  t.equal(parseReq(basic()).authorization, undefined)
  t.equal(parseReq(basic()).proxyAuthorization, undefined)
  t.equal(parseReq(basic(['Authorization: Digest username="J\u00fcrgen"'])).authorization?.username, 'Jürgen', 'quoted values are UTF-8')

  const text = basic(['Authorization: Digest username="a", realm="r"', 'Authorization: Digest username="b" realm="r"'])
  const err = parseError(t, () => parseReq(text).credentials(false))
  t.equal(err.code, 'SIP_ERR_BAD_AUTH')
  t.match(err.message, 'expected "," between auth parameters in Authorization')
  t.equal(err.offset, text.indexOf('realm="r"', text.indexOf('username="b"')), 'offset in the second line, where the comma is missing')
  t.equal(parseError(t, () => parseReq(basic(['Authorization: Digest username'])).authorization).code, 'SIP_ERR_BAD_AUTH')
  t.equal(parseError(t, () => parseReq(basic(['Authorization: Digest nonce="abc'])).authorization).code, 'SIP_ERR_UNTERMINATED_QUOTE')
})

t.test('Require / Proxy-Require / Supported', async t => {
  const m = parseReq(basic(['Require: 100rel', 'Proxy-Require: sec-agree, foo', 'Supported: timer , replaces', 'k: path']))
  t.same(m.require, ['100rel'])
  t.same(m.proxyRequire, ['sec-agree', 'foo'])
  t.same(m.supported, ['timer', 'replaces', 'path'])
  t.same(parseReq(basic()).require, [])
  const text = basic(['Supported: timer, re/place'])
  const err = parseError(t, () => parseReq(text).supported)
  t.equal(err.code, 'SIP_ERR_BAD_TOKEN')
  t.match(err.message, 'invalid option tag "re/place" in Supported')
  t.equal(textAt(text, err, 6), '/place')
})

t.test('text: ASCII header block and UTF-8 values', async t => {
  // ASCII everywhere: values are substrings of the latin1 header block.
  const ascii = parseReq(basic(['Subject: plain text']))
  t.equal(ascii.header('Subject'), 'plain text')
  t.equal(ascii.from.displayName, 'Alice')

  // UTF-8 in display names (quoted and token), quoted params, Subject and a Call-ID.
  const text = request([
    VIA, 'From: "Jürgen Müller 日本" <sip:j@example.com>;tag=1;note="día"', 'To: Zoë <sip:z@example.com>',
    'Call-ID: café@example.com', CSEQ, 'Subject: Grüße, 你好', 'Contact: "Ærø" <sip:c@example.com>'
  ])
  const m = parseReq(Buffer.from(text, 'utf8'))
  t.equal(m.from.displayName, 'Jürgen Müller 日本')
  t.equal(m.from.params.get('note'), 'día')
  t.equal(m.to.displayName, 'Zoë')
  t.equal(m.header('Subject'), 'Grüße, 你好')
  t.equal(m.callId, 'café@example.com')
  t.equal(m.callId, m.header('Call-ID'))
  const c = m.contact
  t.equal(c === '*' ? undefined : c[0]!.displayName, 'Ærø')
  t.same(m.headerEntries()[1], ['From', '"Jürgen Müller 日本" <sip:j@example.com>;tag=1;note="día"'])
  // Offsets stay byte offsets after multi-byte characters.
  const bad = Buffer.from(request([VIA, 'From: "Jürgen" <sip:j@example.com> junk', TO, CALL_ID, CSEQ]), 'utf8')
  const err = parseError(t, () => parseReq(bad).from)
  t.equal(bad.toString('latin1', err.offset, err.offset + 4), 'junk')

  // A folded line with UTF-8 takes the text grammar: same result.
  const folded = parseReq(Buffer.from(request([VIA, 'From: "Jürgen\r\n Müller"\r\n <sip:j@example.com>;note="día"', TO, CALL_ID, CSEQ]), 'utf8'))
  t.equal(folded.from.displayName, 'Jürgen Müller')
  t.equal(folded.from.params.get('note'), 'día')

  // Octets that are not UTF-8 become U+FFFD, never an exception.
  const latin1 = Buffer.concat([Buffer.from(START + '\r\n' + VIA + '\r\nFrom: "Jos'), Buffer.from([0xe9]), Buffer.from('" <sip:j@example.com>\r\n' + [TO, CALL_ID, CSEQ].join('\r\n') + '\r\n\r\n')])
  t.equal(parseReq(latin1).from.displayName, 'Jos\ufffd')

  // Reason phrases: ASCII and UTF-8 (RFC 3261 §25.1 Reason-Phrase is UTF-8 text).
  t.equal(parseResp('SIP/2.0 486 Busy Here\r\n' + VIA + '\r\n\r\n').reason, 'Busy Here')
  t.equal(parseResp(Buffer.from('SIP/2.0 480 Nicht verfügbar — später\r\n' + VIA + '\r\n\r\n', 'utf8')).reason, 'Nicht verfügbar — später')
  t.equal(parseReq(Buffer.from(request([VIA, FROM, TO, CALL_ID, CSEQ], '', 'INVITE sip:%C3%BC@example.com SIP/2.0'), 'utf8')).requestUri.user, 'ü')
})

t.test('folded header values (RFC 3261 §7.3.1)', async t => {
  const text = request([
    'Via: SIP/2.0/UDP 192.0.2.1\r\n ;branch=z9hG4bK1,\r\n\tSIP/2.0/TCP 192.0.2.2 ;branch=z9hG4bK2',
    'From:\r\n <sip:alice@example.com>\r\n ;tag=abc',
    'To: <sip:bob@example.com>', 'Call-ID: f@x', 'CSeq: 1\r\n INVITE',
    'Subject: first line   \r\n   second line',
    'Route: <sip:p1;lr>,\r\n <sip:p2;lr>',
    'Require: a,\r\n b',
    'Max-Forwards:\r\n 10'
  ])
  const m = parseReq(text)
  t.same(m.via.map(v => [v.host, v.branch, v.transport]), [['192.0.2.1', 'z9hG4bK1', 'UDP'], ['192.0.2.2', 'z9hG4bK2', 'TCP']])
  t.equal(m.topVia?.branch, 'z9hG4bK1')
  t.equal(m.from.uri, 'sip:alice@example.com')
  t.equal(m.from.tag, 'abc')
  t.same(m.cseq, { seq: 1, method: 'INVITE' })
  t.equal(m.header('Subject'), 'first line second line', 'a fold and the whitespace around it is one SP')
  t.same(m.route.map(r => r.uri), ['sip:p1;lr', 'sip:p2;lr'])
  t.same(m.require, ['a', 'b'])
  t.equal(m.maxForwards, 10, 'value that starts on the continuation line')
  t.equal(m.headerCount, 9)

  // Errors inside folded values point into the original bytes.
  const bad = request([VIA, FROM, TO, CALL_ID, CSEQ, 'Route: <sip:p1;lr>,\r\n  <sip:p2;lr', 'Contact: <sip:c@d>;\r\n  q=7', 'Require: x,\r\n y/z'])
  const m2 = parseReq(bad)
  t.equal(textAt(bad, parseError(t, () => m2.route), 7), '<sip:p2')
  t.equal(textAt(bad, parseError(t, () => m2.contact), 1), '7')
  t.equal(textAt(bad, parseError(t, () => m2.require), 2), '/z')

  const cont = parseError(t, () => parseMessage(START + '\r\n  folded\r\n' + VIA + '\r\n\r\n'))
  t.equal(cont.code, 'SIP_ERR_BAD_HEADER')
  t.match(cont.message, 'continuation line before the first header')
})

t.test('bare LF line endings', async t => {
  const text = request([VIA, FROM, TO, CALL_ID, CSEQ, 'Subject: a\n b', 'Content-Length: 5'], 'hello', START, '\n')
  const m = parseReq(text)
  t.equal(m.method, 'INVITE')
  t.equal(m.version, 'SIP/2.0')
  t.equal(m.callId, 'a84b4c76e66710@pc33.atlanta.example.com')
  t.same(m.cseq, { seq: 314159, method: 'INVITE' })
  t.equal(m.header('Subject'), 'a b')
  t.equal(m.body.toString(), 'hello')
  t.equal(validateRequest(m), undefined)
  // Mixed endings.
  const mixed = parseReq(START + '\r\n' + VIA + '\n' + FROM + '\r\n' + TO + '\n' + CALL_ID + '\n' + CSEQ + '\r\n\nbody')
  t.equal(mixed.headerCount, 5)
  t.equal(mixed.body.toString(), 'body')
  // CRLFs before the start line are ignored (RFC 3261 §7.5).
  t.equal(parseReq('\r\n\r\n' + basic()).method, 'INVITE')
})

t.test('duplicate single-value headers', async t => {
  for (const [line, read] of [
    [FROM, (m: SipRequest) => m.from], [TO, (m: SipRequest) => m.to], [CALL_ID, (m: SipRequest) => m.callId],
    [CSEQ, (m: SipRequest) => m.cseq], ['Max-Forwards: 70', (m: SipRequest) => m.maxForwards],
    ['Expires: 1', (m: SipRequest) => m.expires]
  ] as const) {
    const text = basic(['Expires: 1', line.replace(': ', ':  ')])
    const err = parseError(t, () => read(parseReq(text)))
    t.equal(err.code, 'SIP_ERR_DUPLICATE_HEADER', line)
    t.match(err.message, `more than one ${line.slice(0, line.indexOf(':'))} header`)
    t.equal(err.offset, text.lastIndexOf(line.slice(0, line.indexOf(':'))), 'offset at the second line')
  }
  // Content-Length is needed for framing, so a duplicate fails the parse itself.
  const text = basic(['Content-Length: 0', 'l: 0'])
  const err = parseError(t, () => parseMessage(text))
  t.equal(err.code, 'SIP_ERR_DUPLICATE_HEADER')
  t.equal(textAt(text, err, 2), 'l:')
  t.ok(err.partial !== undefined)
})

t.test('datagram framing by Content-Length (RFC 3261 §18.3)', async t => {
  const larger = basic(['Content-Length: 150'], 'x'.repeat(128))
  const err = parseError(t, () => parseMessage(larger))
  t.equal(err.code, 'SIP_ERR_CONTENT_LENGTH')
  t.equal(err.message, 'Content-Length 150 exceeds body of 128 bytes')
  t.equal(textAt(larger, err, 3), '150', 'offset at the Content-Length value')
  t.equal(err.partial?.callId, 'a84b4c76e66710@pc33.atlanta.example.com', 'enough to answer 400')

  const smaller = basic(['Content-Length: 5'], 'helloEXTRA')
  const m = parseReq(smaller)
  t.equal(m.body.toString(), 'hello', 'octets past Content-Length are discarded')
  t.equal(m.raw.toString(), smaller.slice(0, -5))
  t.equal(m.contentLength, 5)

  const absent = basic([], 'the rest\r\nof the datagram')
  const a = parseReq(absent)
  t.equal(a.body.toString(), 'the rest\r\nof the datagram', 'without Content-Length the rest is the body')
  t.equal(a.contentLength, undefined)
  t.equal(a.raw.length, Buffer.byteLength(absent))

  const zero = parseReq(basic(['Content-Length: 0']))
  t.equal(zero.body.length, 0)

  // Headers without the empty line: the datagram ends the headers.
  const noEnd = parseReq([START, VIA, FROM, TO, CALL_ID, CSEQ].join('\r\n'))
  t.equal(noEnd.callId, 'a84b4c76e66710@pc33.atlanta.example.com')
  t.same(noEnd.cseq, { seq: 314159, method: 'INVITE' })
  t.equal(noEnd.body.length, 0)

  for (const [cl, code] of [['-1', 'SIP_ERR_BAD_NUMBER'], ['abc', 'SIP_ERR_BAD_NUMBER'], ['99999999999', 'SIP_ERR_NUMBER_TOO_LARGE'], ['', 'SIP_ERR_BAD_NUMBER']] as const) {
    const e = parseError(t, () => parseMessage(basic([`Content-Length: ${cl}`])))
    t.equal(e.code, code, `Content-Length: ${cl}`)
  }
  const buf = Buffer.from(basic(['Content-Length: 3'], 'abc'))
  const withBody = parseReq(buf)
  t.equal(withBody.buf, buf, 'the message keeps the received Buffer')
  t.ok(withBody.body.buffer === buf.buffer, 'the body is a view, not a copy')
})

t.test('start line errors', async t => {
  for (const [line, code, msg, at] of [
    ['INVITE sip:a@b SIP/2.0 extra', 'SIP_ERR_BAD_START_LINE', 'whitespace inside the Request-URI', ' SIP/2.0'],
    ['INVITE sip:a@b', 'SIP_ERR_BAD_START_LINE', 'missing SIP version', ''],
    ['INVITE sip:a@b SIP/2', 'SIP_ERR_BAD_VERSION', 'invalid SIP version', 'SIP/2'],
    ['INVITE sip:a@b HTTP/1.1', 'SIP_ERR_BAD_VERSION', 'invalid SIP version', 'HTTP'],
    ['INV@ITE sip:a@b SIP/2.0', 'SIP_ERR_BAD_START_LINE', 'invalid method', '@ITE'],
    ['INVITE\tsip:a@b SIP/2.0', 'SIP_ERR_BAD_START_LINE', 'invalid method', '\tsip'],
    [' INVITE sip:a@b SIP/2.0', 'SIP_ERR_BAD_START_LINE', 'invalid start line', ' INV'],
    ['INVITE sip:a@b\x01 SIP/2.0', 'SIP_ERR_BAD_START_LINE', 'control character in the Request-URI', '\x01'],
    ['SIP/2.0 20 OK', 'SIP_ERR_BAD_STATUS', 'invalid status code', '20 OK'],
    ['SIP/2.0 2000 OK', 'SIP_ERR_BAD_STATUS', 'invalid status code', '2000'],
    ['SIP/2.0 099 Low', 'SIP_ERR_BAD_STATUS', 'invalid status code', '099'],
    ['SIP/2.0 700 High', 'SIP_ERR_BAD_STATUS', 'invalid status code', '700'],
    ['SIP/2.0 200OK', 'SIP_ERR_BAD_STATUS', 'invalid status code', '200OK'],
    ['SIP/2.0', 'SIP_ERR_BAD_START_LINE', 'invalid status line', 'SIP/'],
    ['SIP/X 200 OK', 'SIP_ERR_BAD_VERSION', 'invalid SIP version', 'SIP/X']
  ] as const) {
    const text = line + '\r\n' + [VIA, FROM, TO, CALL_ID, CSEQ].join('\r\n') + '\r\n\r\n'
    const err = parseError(t, () => parseMessage(text))
    t.equal(err.code, code, JSON.stringify(line))
    t.match(err.message, msg, JSON.stringify(line))
    if (at !== '') t.equal(textAt(text, err, at.length), at, `${JSON.stringify(line)}: offset`)
  }
  t.equal(parseError(t, () => parseMessage('')).code, 'SIP_ERR_EMPTY')
  t.equal(parseError(t, () => parseMessage('\r\n\r\n')).code, 'SIP_ERR_EMPTY')
  const noColon = START + '\r\n' + VIA + '\r\nNot a header\r\n\r\n'
  const e = parseError(t, () => parseMessage(noColon))
  t.equal(e.code, 'SIP_ERR_BAD_HEADER')
  t.equal(textAt(noColon, e, 5), 'Not a')
  const badName = START + '\r\nBad Name: x\r\n\r\n'
  const e2 = parseError(t, () => parseMessage(badName))
  t.match(e2.message, 'invalid character " " in header name "Bad Name"')
  t.equal(textAt(badName, e2, 5), ' Name')
  t.match(parseError(t, () => parseMessage(START + '\r\n: value\r\n\r\n')).message, 'header line without a name')
})

t.test('header count limit', async t => {
  const lines = [VIA, FROM, TO, CALL_ID, CSEQ]
  for (let i = 0; i < 300; i++) lines.push(`X-H${i}: ${i}`)
  const err = parseError(t, () => parseMessage(request(lines)))
  t.ok(err instanceof SipLimitError)
  t.equal(err.code, 'SIP_ERR_TOO_MANY_HEADERS')
  t.match(err.message, 'more than 256 header lines')
  t.equal(parseReq(request(lines.slice(0, 256))).headerCount, 256)
  t.equal(parseError(t, () => parseMessage(request(lines.slice(0, 11)), { maxHeaders: 10 })).code, 'SIP_ERR_TOO_MANY_HEADERS')
  // A message with many headers (more than one block of the shared index) reads back whole.
  const big = parseReq(request(lines.slice(0, 256)))
  t.equal(big.header('X-H250'), '250')
  t.equal(big.callId, 'a84b4c76e66710@pc33.atlanta.example.com')
})

t.test('earlier messages keep their index while later ones are parsed', async t => {
  const first = parseReq(basic(['Subject: first']))
  const many: SipRequest[] = []
  for (let i = 0; i < 5000; i++) many.push(parseReq(basic([`Subject: m${i}`, `X-N: ${i}`])))
  t.equal(first.header('Subject'), 'first')
  t.equal(first.headerCount, 7)
  t.equal(many[0]!.header('Subject'), 'm0')
  t.equal(many[4999]!.header('X-N'), '4999')
  t.ok(many.every((m, i) => m.header('Subject') === `m${i}`), 'every message reads its own headers')
})

t.test('responses', async t => {
  const r = parseResp('SIP/2.0 180 Ringing\r\n' + [VIA, FROM, 'To: <sip:bob@biloxi.example.com>;tag=a6c85cf', CALL_ID, CSEQ, 'Content-Length: 0'].join('\r\n') + '\r\n\r\n')
  t.equal(r.isRequest, false)
  t.equal(r.status, 180)
  t.equal(r.reason, 'Ringing')
  t.equal(r.version, 'SIP/2.0')
  t.equal(r.to.tag, 'a6c85cf')
  t.equal(validateResponse(r), undefined)
  t.equal(parseResp('SIP/2.0 200\r\n' + VIA + '\r\n\r\n').reason, '', 'no reason phrase')
  t.equal(parseResp('sip/2.0 200 OK\r\n' + VIA + '\r\n\r\n').version, 'sip/2.0')
  t.equal(parseResp('SIP/2.0 699 Whatever it is\r\n\r\n').reason, 'Whatever it is')
  const req = parseReq(basic())
  t.equal(req.isRequest, true)
  t.equal(req.uri, 'sip:bob@biloxi.example.com')
  t.equal(req.requestUri.host, 'biloxi.example.com')
  t.equal(req.version, 'SIP/2.0')
  const bad = parseReq(request([VIA, FROM, TO, CALL_ID, CSEQ], '', 'INVITE sip:[::1 SIP/2.0'))
  const err = parseError(t, () => bad.requestUri)
  t.equal(err.code, 'SIP_ERR_BAD_URI')
  t.match(err.message, '(Request-URI)')
  t.ok(err.offset >= 7 && err.offset < 16, 'offset inside the Request-URI')
})

t.test('validateRequest', async t => {
  t.equal(validateRequest(parseReq(basic())), undefined)
  t.equal(validateRequest(parseReq(request([VIA, FROM, TO, CALL_ID, CSEQ], '', 'INVITE sip:bob@biloxi.example.com sip/2.0'))), undefined, 'SIP-Version is case-insensitive (RFC 3261 §7.1)')
  t.equal(validateRequest(parseReq(request([VIA, FROM, TO, CALL_ID, CSEQ], '', 'INVITE tel:+15551234567 SIP/2.0'))), undefined)
  t.equal(validateRequest(parseReq(request([VIA, FROM, TO, CALL_ID, CSEQ], '', 'INVITE sips:bob@biloxi.example.com SIP/2.0'))), undefined)
  t.equal(validateRequest(parseReq(request([VIA, FROM, TO, CALL_ID, CSEQ]))), undefined, 'Max-Forwards may be absent (RFC 2543 peers)')
  // The shortcuts (one Via element checked through the top Via, schemes by
  // char codes, URI headers only after a '?') accept what the full views do.
  for (const start of ['INVITE SIPS:b@x SIP/2.0', 'INVITE TEL:+15551234 SIP/2.0', 'INVITE Sip:b@x SIP/2.0', 'INVITE sip:a?b@x SIP/2.0']) {
    t.equal(validateRequest(parseReq(request([VIA, FROM, TO, CALL_ID, CSEQ], '', start))), undefined, start)
  }
  t.equal(validateRequest(parseReq(request([VIA + ';x="a,b"', FROM, TO, CALL_ID, CSEQ]))), undefined, 'a comma in a quoted Via parameter')
  t.equal(validateRequest(parseReq(request([VIA, FROM, TO, CALL_ID, CSEQ, 'Contact: *']))), undefined, 'Contact: *')
  for (const cl of ['Content-Length: 0', 'l:0', 'Content-Length : 000000000 ', 'Content-Length:\t0000000000']) {
    t.equal(validateRequest(parseReq(request([VIA, FROM, TO, CALL_ID, CSEQ, cl]))), undefined, cl)
    t.equal(validateResponse(parseResp('SIP/2.0 200 OK\r\n' + [VIA, FROM, TO + ';tag=2', CALL_ID, CSEQ, cl].join('\r\n') + '\r\n\r\n')), undefined, `response: ${cl}`)
  }
  for (const c of ['<sip:trunk@127.0.0.2:5060>', '<SIPS:1.2.3.4>', 'm: <sip:a.b@10.0.0.1>', 'Contact:\t<sip:a@1.2.3.4:65535>  ']) {
    t.equal(validateRequest(parseReq(request([VIA, FROM, TO, CALL_ID, CSEQ, c.startsWith('m:') ? c : c.startsWith('Contact:') ? c : 'Contact: ' + c]))), undefined, `plain Contact ${c}`)
  }
  const cases: Array<[string, string[], string, number, string]> = [
    ['version', [VIA, FROM, TO, CALL_ID, CSEQ], 'INVITE sip:b@x SIP/3.0', 505, 'Version Not Supported'],
    ['no Via', [FROM, TO, CALL_ID, CSEQ], START, 400, 'Missing Via header'],
    ['no From', [VIA, TO, CALL_ID, CSEQ], START, 400, 'Missing From header'],
    ['no To', [VIA, FROM, CALL_ID, CSEQ], START, 400, 'Missing To header'],
    ['no Call-ID', [VIA, FROM, TO, CSEQ], START, 400, 'Missing Call-ID header'],
    ['no CSeq', [VIA, FROM, TO, CALL_ID], START, 400, 'Missing CSeq header'],
    ['CSeq method', [VIA, FROM, TO, CALL_ID, 'CSeq: 1 BYE'], START, 400, 'CSeq method BYE does not match request method INVITE'],
    ['Max-Forwards', [VIA, FROM, TO, CALL_ID, CSEQ, 'Max-Forwards: many'], START, 400, 'invalid Max-Forwards "many"'],
    ['Via', [VIA + ', SIP/2.0/UDP', FROM, TO, CALL_ID, CSEQ], START, 400, 'missing space before sent-by in Via'],
    ['second Via line', [VIA, 'Via: SIP/2.0/UDP h:0x', FROM, TO, CALL_ID, CSEQ], START, 400, 'Via parameters'],
    ['Via after a quoted comma', [VIA + ';x="a,b", SIP/2.0/UDP', FROM, TO, CALL_ID, CSEQ], START, 400, 'missing space before sent-by in Via'],
    ['text after a plain Contact', [VIA, FROM, TO, CALL_ID, CSEQ, 'Contact: <sip:a@1.2.3.4>x'], START, 400, 'unexpected "x" in Contact parameters'],
    ['plain Contact unclosed', [VIA, FROM, TO, CALL_ID, CSEQ, 'Contact: <sip:a@1.2.3.4:5060'], START, 400, 'missing ">" in Contact'],
    ['second Contact', [VIA, FROM, TO, CALL_ID, CSEQ, 'Contact: <sip:a@b>, <sip:c@d'], START, 400, 'missing ">" in Contact'],
    ['Record-Route', [VIA, FROM, TO, CALL_ID, CSEQ, 'Record-Route: <sip:a'], START, 400, 'missing ">" in Record-Route'],
    ['Proxy-Require', [VIA, FROM, TO, CALL_ID, CSEQ, 'Proxy-Require: a b'], START, 400, 'invalid option tag "a b" in Proxy-Require'],
    ['scheme sipx', [VIA, FROM, TO, CALL_ID, CSEQ], 'INVITE sipx:b@x SIP/2.0', 416, 'Unsupported URI Scheme'],
    ['scheme tels', [VIA, FROM, TO, CALL_ID, CSEQ], 'INVITE tels:+1 SIP/2.0', 416, 'Unsupported URI Scheme'],
    ['scheme si', [VIA, FROM, TO, CALL_ID, CSEQ], 'INVITE si:b SIP/2.0', 416, 'Unsupported URI Scheme'],
    ['Contact', [VIA, FROM, TO, CALL_ID, CSEQ, 'Contact: <sip:a@b'], START, 400, 'missing ">" in Contact'],
    ['Route', [VIA, FROM, TO, CALL_ID, CSEQ, 'Route: sip:a@b, <'], START, 400, 'Route'],
    ['Require', [VIA, FROM, TO, CALL_ID, CSEQ, 'Require: a b'], START, 400, 'invalid option tag "a b" in Require'],
    ['two Expires', [VIA, FROM, TO, CALL_ID, CSEQ, 'Expires: 60', 'Expires: 70'], START, 400, 'Expires'],
    ['scheme', [VIA, FROM, TO, CALL_ID, CSEQ], 'INVITE http://example.com SIP/2.0', 416, 'Unsupported URI Scheme'],
    ['scheme-less', [VIA, FROM, TO, CALL_ID, CSEQ], 'INVITE bob SIP/2.0', 416, 'Unsupported URI Scheme'],
    ['URI headers', [VIA, FROM, TO, CALL_ID, CSEQ], 'INVITE sip:b@x?Subject=hi SIP/2.0', 400, 'Request-URI must not contain headers'],
    ['bad URI', [VIA, FROM, TO, CALL_ID, CSEQ], 'INVITE sip:b@x:99999 SIP/2.0', 400, 'port'],
    ['dup Call-ID', [VIA, FROM, TO, CALL_ID, CALL_ID, CSEQ], START, 400, 'more than one Call-ID header']
  ]
  for (const [name, lines, start, status, reason] of cases) {
    const v = validateRequest(parseReq(request(lines, '', start)))
    t.equal(v?.status, status, name)
    t.match(v?.reason ?? '', reason, name)
    t.notOk((v?.reason ?? '').includes('\n'), `${name}: the reason is one line`)
  }
})

t.test('validateResponse (RFC 3261 §18.1.2, §16.7)', async t => {
  const head = (status: string, lines: string[]): string => `SIP/2.0 ${status}\r\n` + lines.join('\r\n') + '\r\n\r\n'
  const ok = [VIA, FROM, 'To: <sip:bob@biloxi.example.com>;tag=1', CALL_ID, CSEQ]
  t.equal(validateResponse(parseResp(head('200 OK', ok))), undefined)
  const drop: Array<[string, string[], string]> = [
    ['no Via', ok.filter(l => l !== VIA), 'missing Via header'],
    ['no From', ok.filter(l => l !== FROM), 'missing From header'],
    ['no To', ok.slice(0, 2).concat(ok.slice(3)), 'missing To header'],
    ['no Call-ID', ok.filter(l => l !== CALL_ID), 'missing Call-ID header'],
    ['no CSeq', ok.filter(l => l !== CSEQ), 'missing CSeq header'],
    // scalarlg.dat style: an overlarge CSeq.
    ['CSeq', [VIA, FROM, ok[2]!, CALL_ID, 'CSeq: 9292394834772304023312 OPTIONS'], 'CSeq number'],
    ['Via', ['Via: SIP/2.0/UDP', FROM, ok[2]!, CALL_ID, CSEQ], 'Via'],
    ['second Via', [VIA, 'Via: SIP/2.0/UDP h:0x', FROM, ok[2]!, CALL_ID, CSEQ], 'Via'],
    ['From', [VIA, 'From: <sip:a@b', ok[2]!, CALL_ID, CSEQ], 'missing ">" in From'],
    ['To', [VIA, FROM, 'To: "x <sip:b@c>', CALL_ID, CSEQ], 'unterminated quoted string in To'],
    ['Call-ID', [VIA, FROM, ok[2]!, 'Call-ID: a b', CSEQ], 'invalid Call-ID'],
    ['dup CSeq', [...ok, 'CSeq: 2 INVITE'], 'more than one CSeq header']
  ]
  for (const [name, lines, reason] of drop) {
    const why = validateResponse(parseResp(head('200 OK', lines)))
    t.ok(why !== undefined, `${name}: dropped`)
    t.match(why ?? '', reason, name)
  }
  t.match(validateResponse(parseResp(head('200 OK', ok).replace('SIP/2.0 200', 'SIP/3.0 200'))) ?? '', 'unsupported SIP version SIP/3.0')
  t.match(validateResponse(parseResp(fixture('scalarlg'))) ?? '', 'CSeq number "9292394834772304023312" is larger than 2147483647')
  // bigcode.dat style: a status code past 699 never parses, so it is dropped at the parse.
  const big = fixture('bigcode')
  const err = parseError(t, () => parseMessage(big))
  t.equal(err.code, 'SIP_ERR_BAD_STATUS')
  t.equal(validateResponse(parseResp(big.toString('latin1').replace('4294967301', '499'))), undefined, 'the same response with a sane code is kept')
})
