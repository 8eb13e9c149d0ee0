/**
 * Every RFC 4475 and RFC 5118 torture message, byte-exact, against what the
 * RFC text says it must produce. Each fixture has one entry in CASES:
 *
 * - `valid`: parses, every accessor reads, validateRequest / validateResponse
 *   find nothing; `check` asserts the tricky fields.
 * - `parse`: parseMessage throws SipParseError with `code`, its message names
 *   the defect (`match`); `partial` when a 400 can still be answered.
 * - `validate`: parses, validateRequest answers `status` naming the defect.
 * - `drop`: a response that parses but validateResponse says to discard.
 * - `element`: well-formed here; the check belongs to an element (registrar,
 *   proxy, UAS) and `check` asserts the field that element reads.
 */
import t from 'tap'
import { parseMessage, SipRequest, SipResponse } from '../src/message.js'
import { SipParseError } from '../src/errors.js'
import { validateRequest, validateResponse } from '../src/validate.js'
import { createResponse } from '../src/build.js'
import { parseUri } from '../src/uri.js'
import { FIXTURE_NAMES, bytesAfterHeaders, fixture, readEverything, withCorrectContentLength } from './helpers/fixtures.js'

type Test = typeof t

interface Case {
  /** RFC and section. */
  rfc: string
  outcome: 'valid' | 'parse' | 'validate' | 'drop' | 'element'
  /** parse: SipParseError code. */
  code?: string
  /** parse / validate / drop: text the error message or reason must contain. */
  match?: string
  /** parse: whether the error carries `partial` (a request a 400 can answer). */
  partial?: boolean
  /** validate: expected status. */
  status?: number
  check?: (t: Test, m: SipRequest | SipResponse) => void
}

const req = (m: SipRequest | SipResponse): SipRequest => {
  if (!(m instanceof SipRequest)) throw new Error('expected a request')
  return m
}
const resp = (m: SipRequest | SipResponse): SipResponse => {
  if (!(m instanceof SipResponse)) throw new Error('expected a response')
  return m
}

const SDP_150 = 'v=0\r\no=mhandley 29739 7272939 IN IP4 192.0.2.'

const CASES: Record<string, Case> = {
  // RFC 4475 §3.1.1.1 A Short Tortuous INVITE: folding everywhere, odd case and
  // whitespace, escaped quotes in a display name, compact forms, empty Subject.
  wsinv: {
    rfc: 'RFC 4475 §3.1.1.1',
    outcome: 'valid',
    check: (t, m) => {
      const r = req(m)
      t.equal(r.method, 'INVITE')
      t.equal(r.uri, 'sip:vivekg@chair-dnrc.example.com;unknownparam')
      t.same([...r.requestUri.params], [['unknownparam', null]])
      // "TO :" with the value on the next line (folded).
      t.equal(r.to.uri, 'sip:vivekg@chair-dnrc.example.com')
      t.equal(r.to.tag, '1918181833n')
      t.equal(r.to.displayName, undefined)
      // "J Rosenberg \\\"" is `J Rosenberg \"` once the quoted-pairs are resolved.
      t.equal(r.from.displayName, 'J Rosenberg \\"')
      t.equal(r.from.uri, 'sip:jdrosen@example.com')
      t.equal(r.from.tag, '98asjd8')
      t.equal(r.maxForwards, 68)
      t.equal(r.callId, 'wsinv.ndaksdj@192.0.2.1')
      t.equal(r.contentLength, 150)
      // "cseq: 0009\r\n  INVITE"
      t.same(r.cseq, { seq: 9, method: 'INVITE' })
      // Three Via elements over two lines, the first folded inside sent-protocol.
      t.same(r.via.map(v => [v.protocol, v.transport, v.host, v.port, v.branch]), [
        ['SIP/2.0', 'UDP', '192.0.2.2', undefined, '390skdjuw'],
        ['SIP/2.0', 'TCP', 'spindle.example.com', undefined, 'z9hG4bK9ikj8'],
        ['SIP/2.0', 'UDP', '192.168.255.111', undefined, 'z9hG4bK30239']
      ])
      t.equal(r.topVia?.branch, '390skdjuw')
      t.equal(r.header('Subject'), '', 's: with an empty value')
      t.equal(r.header('NewFangledHeader'), 'newfangled value continued newfangled value')
      t.equal(r.header('UnknownHeaderWithUnusualValue'), ';;,,;;,;')
      t.same(r.route.map(x => x.uri), ['sip:services.example.com;lr;unknownwith=value;unknown-no-value'])
      const c = r.contact
      t.not(c, '*')
      if (c === '*') return
      t.equal(c.length, 1)
      t.equal(c[0]!.displayName, 'Quoted string ""')
      t.equal(c[0]!.uri, 'sip:jdrosen@example.com')
      t.same([...c[0]!.params], [['newparam', 'newvalue'], ['secondparam', null], ['q', '0.33']])
      t.equal(c[0]!.q, 0.33)
      t.equal(r.body.length, 150)
      t.ok(r.body.toString('latin1').startsWith(SDP_150))
    }
  },
  // RFC 4475 §3.1.1.2 Wide Range of Valid Characters: every token character in
  // the method, Call-ID word characters, quoted-pairs of BEL/NUL/DEL, UTF-8.
  intmeth: {
    rfc: 'RFC 4475 §3.1.1.2',
    outcome: 'valid',
    check: (t, m) => {
      const r = req(m)
      const method = "!interesting-Method0123456789_*+`.%indeed'~"
      t.equal(r.method, method)
      t.same(r.cseq, { seq: 139122385, method })
      t.equal(r.requestUri.user, "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
      t.equal(r.requestUri.password, "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
      t.equal(r.requestUri.host, 'example.com')
      t.equal(r.topVia?.branch, "z9hG4bK-.!%66*_+`'~")
      t.equal(r.to.displayName, 'BEL:\x07 NUL:\x00 DEL:\x7f')
      t.equal(r.to.uri, "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com")
      t.equal(r.from.displayName, "token1~` token2'+_ token3*%!.-")
      t.equal(r.from.tag, "_token~1'+`*%!-.")
      // The quoted parameter value is UTF-8 (RFC 3261 §25.1 qdtext).
      t.equal(r.from.params.get("fromparam''~+*_!.-%"), 'работающий')
      t.equal(r.callId, 'intmeth.word%ZK-!.*_+\'@word`~)(><:\\/"][?}{')
      t.equal(r.maxForwards, 255)
      t.equal(r.header("extensionHeader-!.%*+_`'~"), '\ufeff大停電')
    }
  },
  // RFC 4475 §3.1.1.3 Valid Use of the % Escaping Mechanism: escapes in the
  // user part, URI parameter names and values; compact i: and C:.
  esc01: {
    rfc: 'RFC 4475 §3.1.1.3',
    outcome: 'valid',
    check: (t, m) => {
      const r = req(m)
      t.equal(r.requestUri.user, 'sips:user@example.com')
      t.equal(r.requestUri.host, 'example.net')
      t.equal(parseUri(r.to.uri).user, 'user')
      t.equal(parseUri(r.from.uri).user, 'I have spaces')
      t.equal(r.callId, 'esc01.239409asdfakjkn23onasd0-3234')
      t.equal(r.header('Content-Type'), 'application/sdp')
      const c = r.contact
      if (c === '*') return t.fail('Contact is not *')
      const u = parseUri(c[0]!.uri)
      t.equal(u.user, 'caller')
      t.same([...u.params], [['lr', null], ['name', 'value%41']])
    }
  },
  // RFC 4475 §3.1.1.4 Escaped Nulls in URIs: %00 decodes to NUL.
  escnull: {
    rfc: 'RFC 4475 §3.1.1.4',
    outcome: 'valid',
    check: (t, m) => {
      const r = req(m)
      t.equal(parseUri(r.to.uri).user, 'null-\x00-null')
      t.equal(parseUri(r.from.uri).user, 'null-\x00-null')
      const c = r.contact
      if (c === '*') return t.fail('Contact is not *')
      t.same(c.map(x => parseUri(x.uri).user), ['\x00', '\x00\x00'])
      t.equal(r.contentLength, 0)
    }
  },
  // RFC 4475 §3.1.1.5 Use of % When It Is Not an Escape: RE%47IST%45R is an
  // unknown method (not REGISTER; an element answers 501 or proxies it) and
  // C%6Fntact is an extension header, not Contact.
  esc02: {
    rfc: 'RFC 4475 §3.1.1.5',
    outcome: 'valid',
    check: (t, m) => {
      const r = req(m)
      t.equal(r.method, 'RE%47IST%45R')
      t.not(r.method, 'REGISTER')
      t.same(r.cseq, { seq: 29344, method: 'RE%47IST%45R' })
      t.equal(r.to.displayName, '%Z%45')
      t.equal(r.topVia?.branch, 'z9hG4bK209%fzsnel234')
      const c = r.contact
      if (c === '*') return t.fail('Contact is not *')
      t.same(c.map(x => x.uri), ['sip:alias1@host1.example.com', 'sip:alias3@host3.example.com'])
      t.equal(r.header('C%6Fntact'), '<sip:alias2@host2.example.com>')
    }
  },
  // RFC 4475 §3.1.1.6 Message with No LWS between Display Name and <.
  lwsdisp: {
    rfc: 'RFC 4475 §3.1.1.6',
    outcome: 'valid',
    check: (t, m) => {
      t.equal(m.from.displayName, 'caller')
      t.equal(m.from.uri, 'sip:caller@example.com')
      t.equal(m.from.tag, '323')
    }
  },
  // RFC 4475 §3.1.1.7 Long Values in Header Fields: long display name, URI
  // parameters, tag, Call-ID, header name and value, branch, 34 Via lines in
  // every case and compact form.
  longreq: {
    rfc: 'RFC 4475 §3.1.1.7',
    outcome: 'valid',
    check: (t, m) => {
      const r = req(m)
      t.equal(r.to.displayName, `I have a user name of ${'extreme'.repeat(10)} proportion`)
      const to = parseUri(r.to.uri)
      t.equal(to.port, 6000)
      t.equal(to.params.get('unknownparam1'), `very${'long'.repeat(20)}value`)
      t.equal(to.params.get(`longparam${'name'.repeat(25)}`), 'shortvalue')
      t.equal(to.params.get(`very${'long'.repeat(25)}parameternamewithnovalue`), null)
      t.equal(r.from.tag, '12982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982424')
      t.equal(r.from.params.get(`unknownheaderparam${'name'.repeat(20)}`), `unknowheaderparam${'value'.repeat(15)}`)
      t.equal(r.from.params.get(`unknownvaluelessparam${'nameparam'.repeat(9)}name`), null)
      t.equal(r.callId, `longreq.one${'really'.repeat(20)}longcallid`)
      t.equal(r.via.length, 34)
      t.same(r.via.slice(0, 33).map(v => v.host), Array.from({ length: 33 }, (_, i) => `sip${33 - i}.example.com`))
      const last = r.via[33]!
      t.equal(last.host, 'host.example.com')
      t.equal(last.received, '192.0.2.5')
      t.equal(last.branch, `very${'long'.repeat(50)}branchvalue`)
      const name = `Unknown-${'Long'.repeat(20)}-Name`
      t.ok(r.hasHeader(name.toLowerCase()))
      t.equal(r.header(name), `unknown-${'long'.repeat(20)}-value; unknown-${'long'.repeat(20)}-parameter-name = unknown-${'long'.repeat(20)}-parameter-value`)
      const c = r.contact
      if (c === '*') return t.fail('Contact is not *')
      t.equal(c[0]!.uri, `sip:${'amazinglylongcallername'.repeat(5)}@host5.example.net`)
      t.equal(r.contentLength, 150)
      t.equal(r.body.length, 150)
    }
  },
  // RFC 4475 §3.1.1.8 Extra Trailing Octets in a UDP Datagram: only the
  // REGISTER counts; the INVITE after its Content-Length 0 is discarded
  // (RFC 3261 §18.3).
  dblreq: {
    rfc: 'RFC 4475 §3.1.1.8',
    outcome: 'valid',
    check: (t, m) => {
      const r = req(m)
      t.equal(r.method, 'REGISTER')
      t.equal(r.callId, 'dblreq.0ha0isndaksdj99sdfafnl3lk233412')
      t.equal(r.body.length, 0)
      const whole = fixture('dblreq')
      t.equal(r.raw.length, whole.indexOf('\r\n\r\n') + 4, 'the message ends at its empty line')
      t.ok(r.raw.length < whole.length)
      t.notOk(r.toString().includes('INVITE sip:joe@example.com'))
    }
  },
  // RFC 4475 §3.1.1.9 Semicolon-Separated Parameters in URI User Part.
  semiuri: {
    rfc: 'RFC 4475 §3.1.1.9',
    outcome: 'valid',
    check: (t, m) => {
      const u = req(m).requestUri
      t.equal(u.user, 'user;par=u@example.net')
      t.equal(u.host, 'example.com')
      t.equal(u.params.size, 0)
      t.same(m.headers('Accept'), ['application/sdp', 'application/pkcs7-mime', 'multipart/mixed', 'multipart/signed', 'message/sip', 'message/sipfrag'])
    }
  },
  // RFC 4475 §3.1.1.10 Varied and Unknown Transport Types.
  transports: {
    rfc: 'RFC 4475 §3.1.1.10',
    outcome: 'valid',
    check: (t, m) => {
      t.same(m.via.map(v => [v.transport, v.host]), [
        ['UDP', 't1.example.com'], ['SCTP', 't2.example.com'], ['TLS', 't3.example.com'],
        ['UNKNOWN', 't4.example.com'], ['TCP', 't5.example.com']
      ])
      t.equal(m.callId, 'transports.kijh4akdnaqjkwendsasfdj')
    }
  },
  // RFC 4475 §3.1.1.11 Multipart MIME Message: binary body with NUL and
  // non-UTF-8 octets, kept byte for byte.
  mpart01: {
    rfc: 'RFC 4475 §3.1.1.11',
    outcome: 'valid',
    check: (t, m) => {
      t.equal(req(m).method, 'MESSAGE')
      t.equal(m.header('Content-Type'), 'multipart/mixed;boundary=7a9cbec02ceef655')
      t.equal(m.contentLength, 553)
      t.equal(m.body.length, 553)
      t.ok(m.body.equals(bytesAfterHeaders(fixture('mpart01'))), 'body byte-identical')
      t.ok(m.body.includes(0), 'body holds NUL octets')
      t.ok(m.body.toString('latin1').startsWith('--7a9cbec02ceef655\r\nContent-Type: text/plain'))
      t.ok(m.body.toString('latin1').endsWith('--7a9cbec02ceef655--\r\n'))
      t.equal(m.topVia?.rport, null, 'rport without a value')
      t.equal(m.topVia?.port, 5070)
      t.equal(m.header('Date'), 'Sat, 15 Oct 2005 04:44:56 GMT')
    }
  },
  // RFC 4475 §3.1.1.12 Unusual Reason Phrase: UTF-8 in the reason.
  unreason: {
    rfc: 'RFC 4475 §3.1.1.12',
    outcome: 'valid',
    check: (t, m) => {
      const r = resp(m)
      t.equal(r.status, 200)
      t.equal(r.reason, '= 2**3 * 5**2 но сто девяносто девять - простое')
      t.equal(r.body.length, 154)
    }
  },
  // RFC 4475 §3.1.1.13 Empty Reason Phrase: "SIP/2.0 100 " then CRLF.
  noreason: {
    rfc: 'RFC 4475 §3.1.1.13',
    outcome: 'valid',
    check: (t, m) => {
      const r = resp(m)
      t.equal(r.status, 100)
      t.equal(r.reason, '')
      t.equal(r.to.tag, '902jndnke3')
    }
  },

  // RFC 4475 §3.1.2.1 Extraneous Header Field Separators: Via ";;,;,," and
  // Contact ";;;;" → 400.
  badinv01: { rfc: 'RFC 4475 §3.1.2.1', outcome: 'validate', status: 400, match: 'empty parameter name in Via' },
  // RFC 4475 §3.1.2.2 Content Length Larger Than Message: over UDP a 400
  // (RFC 3261 §18.3); the error carries the request to answer.
  clerr: { rfc: 'RFC 4475 §3.1.2.2', outcome: 'parse', code: 'SIP_ERR_CONTENT_LENGTH', match: 'Content-Length 9999 exceeds body of 154 bytes', partial: true },
  // RFC 4475 §3.1.2.3 Negative Content-Length → 400.
  ncl: { rfc: 'RFC 4475 §3.1.2.3', outcome: 'parse', code: 'SIP_ERR_BAD_NUMBER', match: 'invalid Content-Length "-999"', partial: true },
  // RFC 4475 §3.1.2.4 Request Scalar Fields with Overlarge Values: 400 for the
  // CSeq (Max-Forwards 300, Expires and Contact expires are out of range too;
  // the RFC lets the expiries be read as defaults: 2**32-1 here, RFC 3261 §20.19).
  scalar02: {
    rfc: 'RFC 4475 §3.1.2.4',
    outcome: 'validate',
    status: 400,
    match: 'CSeq number "36893488147419103232" is larger than 2147483647',
    check: (t, m) => {
      t.throws(() => m.maxForwards, { code: 'SIP_ERR_NUMBER_TOO_LARGE' })
      t.equal(m.expires, 4294967295)
      const c = m.contact
      t.equal(c === '*' ? c : c[0]?.expires, 4294967295, 'Contact expires')
    }
  },
  // RFC 4475 §3.1.2.5 Response Scalar Fields with Overlarge Values: the
  // response is discarded (CSeq out of range).
  scalarlg: { rfc: 'RFC 4475 §3.1.2.5', outcome: 'drop', match: 'CSeq number "9292394834772304023312" is larger than 2147483647' },
  // RFC 4475 §3.1.2.6 Unterminated Quoted String in Display Name → 400.
  quotbal: { rfc: 'RFC 4475 §3.1.2.6', outcome: 'validate', status: 400, match: 'unterminated quoted string in To' },
  // RFC 4475 §3.1.2.7 <> Enclosing Request-URI → 400.
  ltgtruri: { rfc: 'RFC 4475 §3.1.2.7', outcome: 'parse', code: 'SIP_ERR_BAD_START_LINE', match: 'Request-URI enclosed in <>', partial: true },
  // RFC 4475 §3.1.2.8 Malformed SIP Request-URI (embedded LWS) → 400.
  lwsruri: { rfc: 'RFC 4475 §3.1.2.8', outcome: 'parse', code: 'SIP_ERR_BAD_START_LINE', match: 'whitespace inside the Request-URI', partial: true },
  // RFC 4475 §3.1.2.9 Multiple SP Separating Request-Line Elements: rejecting
  // is acceptable; we reject (a proxy copies the start line byte for byte).
  lwsstart: { rfc: 'RFC 4475 §3.1.2.9', outcome: 'parse', code: 'SIP_ERR_BAD_START_LINE', match: 'more than one SP before the Request-URI', partial: true },
  // RFC 4475 §3.1.2.10 SP Characters at End of Request-Line: rejecting is
  // acceptable; rejected for the same reason.
  trws: { rfc: 'RFC 4475 §3.1.2.10', outcome: 'parse', code: 'SIP_ERR_BAD_START_LINE', match: 'whitespace after the SIP version', partial: true },
  // RFC 4475 §3.1.2.11 Escaped Headers in SIP Request-URI → 400 (RFC 3261 §19.1.5).
  escruri: { rfc: 'RFC 4475 §3.1.2.11', outcome: 'validate', status: 400, match: 'Request-URI must not contain headers' },
  // RFC 4475 §3.1.2.12 Invalid Time Zone in Date Header Field: an element that
  // does not use Date may ignore it; we do not parse Date, so it is accepted.
  baddate: {
    rfc: 'RFC 4475 §3.1.2.12',
    outcome: 'valid',
    check: (t, m) => t.equal(m.header('Date'), 'Fri, 01 Jan 2010 16:00:00 EST')
  },
  // RFC 4475 §3.1.2.13 Failure to Enclose name-addr URI in <> → 400.
  regbadct: { rfc: 'RFC 4475 §3.1.2.13', outcome: 'validate', status: 400, match: 'URI with "?" must be enclosed in <> in Contact' },
  // RFC 4475 §3.1.2.14 Spaces within addr-spec → 400.
  badaspec: { rfc: 'RFC 4475 §3.1.2.14', outcome: 'validate', status: 400, match: 'invalid character " " inside <> in To' },
  // RFC 4475 §3.1.2.15 Non-token Characters in Display Name → 400.
  baddn: { rfc: 'RFC 4475 §3.1.2.15', outcome: 'validate', status: 400, match: 'invalid character "," in display name of From' },
  // RFC 4475 §3.1.2.16 Unknown Protocol Version → 505.
  badvers: { rfc: 'RFC 4475 §3.1.2.16', outcome: 'validate', status: 505, match: 'Version Not Supported' },
  // RFC 4475 §3.1.2.17 Start Line and CSeq Method Mismatch → 400.
  mismatch01: { rfc: 'RFC 4475 §3.1.2.17', outcome: 'validate', status: 400, match: 'CSeq method INVITE does not match request method OPTIONS' },
  // RFC 4475 §3.1.2.18 Unknown Method with CSeq Method Mismatch: 501 is
  // preferred at a proxy, 400 acceptable; validateRequest answers 400.
  mismatch02: { rfc: 'RFC 4475 §3.1.2.18', outcome: 'validate', status: 400, match: 'CSeq method INVITE does not match request method NEWMETHOD' },
  // RFC 4475 §3.1.2.19 Overlarge Response Code: drop the response.
  bigcode: { rfc: 'RFC 4475 §3.1.2.19', outcome: 'parse', code: 'SIP_ERR_BAD_STATUS', match: 'invalid status code', partial: false },

  // RFC 4475 §3.2.1 Missing Transaction Identifier: the branch is just the
  // magic cookie; a parser must not break. The transaction layer decides
  // (400, or the RFC 2543 matching rules).
  badbranch: {
    rfc: 'RFC 4475 §3.2.1',
    outcome: 'element',
    check: (t, m) => t.equal(m.topVia?.branch, 'z9hG4bK')
  },

  // RFC 4475 §3.3.1 Missing Required Header Fields (no To, From, Call-ID) → 400.
  insuf: { rfc: 'RFC 4475 §3.3.1', outcome: 'validate', status: 400, match: 'Missing From header' },
  // RFC 4475 §3.3.2 Request-URI with Unknown Scheme → 416.
  unkscm: { rfc: 'RFC 4475 §3.3.2', outcome: 'validate', status: 416, match: 'Unsupported URI Scheme' },
  // RFC 4475 §3.3.3 Request-URI with Known but Atypical Scheme (soap.beep) → 416.
  novelsc: { rfc: 'RFC 4475 §3.3.3', outcome: 'validate', status: 416, match: 'Unsupported URI Scheme' },
  // RFC 4475 §3.3.4 Unknown URI Schemes in Header Fields: well-formed; a
  // proxy handles it as usual, the registrar refuses the To AOR (registrar
  // package: its domain check answers first).
  unksm2: {
    rfc: 'RFC 4475 §3.3.4',
    outcome: 'element',
    check: (t, m) => {
      t.equal(m.to.uri, 'isbn:2983792873')
      t.equal(m.from.uri, 'http://www.example.com')
      t.equal(m.from.tag, '3234233')
      const c = m.contact
      if (c === '*') return t.fail('Contact is not *')
      t.equal(c[0]!.uri, 'name:John_Smith')
    }
  },
  // RFC 4475 §3.3.5 Proxy-Require and Require: 420 Bad Extension with
  // Unsupported — the element knows its extensions (proxy / UAS).
  bext01: {
    rfc: 'RFC 4475 §3.3.5',
    outcome: 'element',
    check: (t, m) => {
      t.same(m.require, ['nothingSupportsThis', 'nothingSupportsThisEither'])
      t.same(m.proxyRequire, ['noProxiesSupportThis', 'norDoAnyProxiesSupportThis'])
    }
  },
  // RFC 4475 §3.3.6 Unknown Content-Type: a UAS answers 415 with Accept.
  invut: {
    rfc: 'RFC 4475 §3.3.6',
    outcome: 'element',
    check: (t, m) => {
      t.equal(m.header('Content-Type'), 'application/unknownformat')
      t.equal(m.body.length, 40)
    }
  },
  // RFC 4475 §3.3.7 Unknown Authorization Scheme: a registrar that
  // authenticates answers 401 with a scheme it knows (registrar package).
  regaut01: {
    rfc: 'RFC 4475 §3.3.7',
    outcome: 'element',
    check: (t, m) => {
      t.equal(m.authorization?.scheme, 'NoOneKnowsThisScheme')
      t.equal(m.authorization?.params.get('opaque-data'), 'here')
      t.equal(m.authorization?.username, undefined)
    }
  },
  // RFC 4475 §3.3.8 Multiple Values in Single Value Required Fields → 400.
  multi01: { rfc: 'RFC 4475 §3.3.8', outcome: 'validate', status: 400, match: 'more than one Call-ID header' },
  // RFC 4475 §3.3.9 Multiple Content-Length Values → 400 (UDP); on a stream
  // the framing is lost and the connection is closed (stream.test.ts).
  mcl01: { rfc: 'RFC 4475 §3.3.9', outcome: 'parse', code: 'SIP_ERR_DUPLICATE_HEADER', match: 'more than one Content-Length header', partial: true },
  // RFC 4475 §3.3.10 200 OK Response with Broadcast Via Header Field Value:
  // well-formed; the proxy must not send it to 255.255.255.255 (proxy core).
  bcast: {
    rfc: 'RFC 4475 §3.3.10',
    outcome: 'element',
    check: (t, m) => {
      t.equal(resp(m).status, 200)
      t.same(m.via.map(v => v.host), ['192.0.2.198', '255.255.255.255'])
    }
  },
  // RFC 4475 §3.3.11 Max-Forwards of Zero: a proxy answers 483 (or an OPTIONS
  // itself); the proxy core checks it.
  zeromf: {
    rfc: 'RFC 4475 §3.3.11',
    outcome: 'element',
    check: (t, m) => t.equal(m.maxForwards, 0)
  },
  // RFC 4475 §3.3.12 REGISTER with a Contact Header Parameter: unknownparam
  // belongs to the Contact header field, not to the URI.
  cparam01: {
    rfc: 'RFC 4475 §3.3.12',
    outcome: 'valid',
    check: (t, m) => {
      const c = m.contact
      if (c === '*') return t.fail('Contact is not *')
      t.equal(c[0]!.uri, 'sip:+19725552222@gw1.example.net')
      t.same([...c[0]!.params], [['unknownparam', null]])
      t.equal(parseUri(c[0]!.uri).params.size, 0)
    }
  },
  // RFC 4475 §3.3.13 REGISTER with a url-parameter: unknownparam belongs to the URI.
  cparam02: {
    rfc: 'RFC 4475 §3.3.13',
    outcome: 'valid',
    check: (t, m) => {
      const c = m.contact
      if (c === '*') return t.fail('Contact is not *')
      t.equal(c[0]!.uri, 'sip:+19725552222@gw1.example.net;unknownparam')
      t.equal(c[0]!.params.size, 0)
      t.same([...parseUri(c[0]!.uri).params], [['unknownparam', null]])
    }
  },
  // RFC 4475 §3.3.14 REGISTER with a URL Escaped Header: the Contact URI
  // carries an escaped Route header, stored by the registrar as is.
  regescrt: {
    rfc: 'RFC 4475 §3.3.14',
    outcome: 'valid',
    check: (t, m) => {
      const c = m.contact
      if (c === '*') return t.fail('Contact is not *')
      t.equal(c[0]!.uri, 'sip:user@example.com?Route=%3Csip:sip.example.com%3E')
      t.equal(parseUri(c[0]!.uri).headers.get('Route'), '<sip:sip.example.com>')
      t.equal(m.contentLength, 0)
    }
  },
  // RFC 4475 §3.3.15 Unacceptable Accept Offering: a UAS answers 406 (or 400);
  // the Accept header is what it reads.
  sdp01: {
    rfc: 'RFC 4475 §3.3.15',
    outcome: 'element',
    check: (t, m) => {
      t.same(m.headers('Accept'), ['text/nobodyKnowsThis'])
      t.equal(m.header('Content-Type'), 'application/sdp')
    }
  },
  // RFC 4475 §3.4.1 INVITE with RFC 2543 Syntax: no branch, no Max-Forwards,
  // no Content-Length (the datagram's rest is the body); accepted.
  inv2543: {
    rfc: 'RFC 4475 §3.4.1',
    outcome: 'valid',
    check: (t, m) => {
      t.equal(m.topVia?.branch, undefined)
      t.equal(m.topVia?.host, 'iftgw.example.com')
      t.equal(m.maxForwards, undefined)
      t.equal(m.contentLength, undefined)
      t.equal(m.body.length, bytesAfterHeaders(fixture('inv2543')).length)
      t.same(m.recordRoute.map(r => r.uri), ['sip:UserB@example.com;maddr=ss1.example.com'])
      t.equal(m.from.tag, undefined)
    }
  },
  // test.dat: in the RFC 4475 archive but described by no section. Its
  // Request-Line has no SIP-Version and "Foobar roobar" is no header line
  // (RFC 3261 §7.3.1); indexing stops at the first defect.
  test: { rfc: 'RFC 4475 archive (test.dat)', outcome: 'parse', code: 'SIP_ERR_BAD_HEADER', match: 'missing ":" in header line "Foobar roobar"', partial: false },

  // RFC 5118 §4.1 Valid SIP Message with an IPv6 Reference.
  'ipv6-good': {
    rfc: 'RFC 5118 §4.1',
    outcome: 'valid',
    check: (t, m) => {
      const u = req(m).requestUri
      t.equal(u.host, '[2001:db8::10]')
      t.equal(u.hostType, 'ipv6')
      t.equal(u.port, undefined)
      t.equal(m.topVia?.host, '[2001:db8::9:1]')
      const c = m.contact
      if (c === '*') return t.fail('Contact is not *')
      t.equal(parseUri(c[0]!.uri).host, '[2001:db8::1]')
    }
  },
  // RFC 5118 §4.2 Invalid SIP Message with an IPv6 Reference (no brackets) → 400.
  'ipv6-bad': { rfc: 'RFC 5118 §4.2', outcome: 'validate', status: 400, match: 'IPv6 address "2001:db8::10" not enclosed in "[" "]"' },
  // RFC 5118 §4.3 Port Ambiguous in a SIP URI: 5070 is part of the address.
  'port-ambiguous': {
    rfc: 'RFC 5118 §4.3',
    outcome: 'valid',
    check: (t, m) => {
      const u = req(m).requestUri
      t.equal(u.host, '[2001:db8::10:5070]')
      t.equal(u.port, undefined)
    }
  },
  // RFC 5118 §4.4 Port Unambiguous in a SIP URI.
  'port-unambiguous': {
    rfc: 'RFC 5118 §4.4',
    outcome: 'valid',
    check: (t, m) => {
      const u = req(m).requestUri
      t.equal(u.host, '[2001:db8::10]')
      t.equal(u.port, 5070)
    }
  },
  // RFC 5118 §4.5 IPv6 Reference Delimiters in Via Header: received with brackets.
  'via-received-param-with-delim': {
    rfc: 'RFC 5118 §4.5',
    outcome: 'valid',
    check: (t, m) => {
      t.equal(m.topVia?.host, '[2001:db8::9:1]')
      t.equal(m.topVia?.received, '[2001:db8::9:255]')
      t.equal(m.topVia?.branch, 'z9hG4bKas3-111')
    }
  },
  // RFC 5118 §4.5 IPv6 Reference Delimiters in Via Header: received without brackets.
  'via-received-param-no-delim': {
    rfc: 'RFC 5118 §4.5',
    outcome: 'valid',
    check: (t, m) => {
      t.equal(m.topVia?.received, '2001:db8::9:255')
      t.equal(m.topVia?.branch, 'z9hG4bKas3')
    }
  },
  // RFC 5118 §4.6 SIP Request with IPv6 Addresses in SDP Body. The printed
  // Content-Length (268) exceeds the printed body (251 bytes): as a datagram
  // that is a 400 (RFC 3261 §18.3). With the length corrected it parses (below).
  'ipv6-in-sdp': { rfc: 'RFC 5118 §4.6', outcome: 'parse', code: 'SIP_ERR_CONTENT_LENGTH', match: 'Content-Length 268 exceeds body of 251 bytes', partial: true },
  // RFC 5118 §4.7 Multiple IP Addresses in SIP Headers.
  'mult-ip-in-header': {
    rfc: 'RFC 5118 §4.7',
    outcome: 'valid',
    check: (t, m) => {
      t.same(m.via.map(v => [v.transport, v.host, v.port, v.received]), [
        ['UDP', '[2001:db8::9:1]', 6050, undefined],
        ['UDP', '192.0.2.1', undefined, undefined],
        ['TCP', '[2001:db8::9:255]', undefined, '192.0.2.200']
      ])
    }
  },
  // RFC 5118 §4.8 Multiple IP Addresses in SDP. The printed Content-Length
  // (181) is 8 short of the body: octets past it are discarded (RFC 3261 §18.3).
  'mult-ip-in-sdp': {
    rfc: 'RFC 5118 §4.8',
    outcome: 'valid',
    check: (t, m) => {
      t.equal(m.contentLength, 181)
      t.equal(m.body.length, 181)
      t.ok(m.body.includes('c=IN IP4 192.0.2.1\r\n'))
      t.ok(m.body.includes('c=IN IP6 2001:db8::1\r\n'))
      t.equal(req(m).requestUri.host, '[2001:db8::10]')
    }
  },
  // RFC 5118 §4.9 IPv4-Mapped IPv6 Addresses. Printed Content-Length 236 for a
  // 245-byte body: the tail is discarded as in mult-ip-in-sdp.
  'ipv4-mapped-ipv6': {
    rfc: 'RFC 5118 §4.9',
    outcome: 'valid',
    check: (t, m) => {
      t.same(m.via.map(v => [v.host, v.port]), [['[::ffff:192.0.2.10]', 19823], ['[::ffff:192.0.2.2]', undefined]])
      const c = m.contact
      if (c === '*') return t.fail('Contact is not *')
      t.equal(c[0]!.displayName, 'T. desk phone')
      t.equal(parseUri(c[0]!.uri).host, '[::ffff:192.0.2.2]')
      t.equal(m.body.length, 236)
      t.ok(m.body.includes('c=IN IP6 ::ffff:192.0.2.2\r\n'))
    }
  },
  // RFC 5118 §4.10 IPv6 Reference Bug in RFC 3261 ABNF: two colons before the
  // embedded IPv4 address is right.
  'ipv6-correct-abnf-2-colons': {
    rfc: 'RFC 5118 §4.10',
    outcome: 'valid',
    check: (t, m) => {
      t.equal(req(m).requestUri.host, '[2001:db8::192.0.2.1]')
      t.equal(req(m).requestUri.hostType, 'ipv6')
      t.equal(parseUri(m.to.uri).host, '[2001:db8::192.0.2.1]')
    }
  },
  // RFC 5118 §4.10: three colons is not an IPv6 address → 400.
  'ipv6-bug-abnf-3-colons': { rfc: 'RFC 5118 §4.10', outcome: 'validate', status: 400, match: 'invalid IPv6 reference "[2001:db8:::192.0.2.1]"' }
}

t.test('every fixture has an expectation and every expectation a fixture', async t => {
  t.same(Object.keys(CASES).sort(), [...FIXTURE_NAMES], 'CASES covers test/fixtures/torture/*.dat')
  t.equal(FIXTURE_NAMES.length, 62, '50 from RFC 4475 + 12 from RFC 5118')
})

for (const name of FIXTURE_NAMES) {
  const c = CASES[name]
  if (c === undefined) continue
  t.test(`${name} (${c.rfc}): ${c.outcome}`, async t => {
    const bytes = fixture(name)
    if (c.outcome === 'parse') {
      let err: unknown
      try {
        parseMessage(bytes)
      } catch (e) {
        err = e
      }
      t.ok(err instanceof SipParseError, 'throws SipParseError')
      if (!(err instanceof SipParseError)) return
      t.equal(err.code, c.code)
      t.match(err.message, c.match!)
      t.ok(err.offset >= 0 && err.offset <= bytes.length, 'offset inside the message')
      if (c.partial === true) {
        // Enough was indexed to answer 400 (RFC 3261 §8.2 / §18.3).
        t.ok(err.partial !== undefined, 'carries the partial request')
        if (err.partial === undefined) return
        const answer = parseMessage(createResponse(err.partial, 400, err.message.slice(0, 60)))
        t.equal(answer.isRequest, false)
        t.equal((answer as SipResponse).status, 400)
        t.same(answer.via.map(v => v.raw), err.partial.via.map(v => v.raw), 'the 400 goes back over the Vias')
        t.equal(answer.callId, err.partial.callId)
      } else {
        t.equal(err.partial, undefined, 'nothing to answer')
      }
      return
    }
    const m = parseMessage(bytes)
    // readEverything lets only SipParseError through; a sound message reads whole.
    const errors = readEverything(m)
    if (c.outcome === 'valid' || c.outcome === 'element') t.same([...errors.keys()], [], 'every accessor reads')
    if (m instanceof SipRequest) {
      const v = validateRequest(m)
      if (c.outcome === 'validate') {
        t.ok(v !== undefined, 'validateRequest refuses it')
        t.equal(v?.status, c.status)
        t.match(v?.reason ?? '', c.match!)
      } else {
        t.equal(v, undefined, 'validateRequest accepts it')
      }
    } else {
      const drop = validateResponse(m)
      if (c.outcome === 'drop') {
        t.ok(drop !== undefined, 'validateResponse drops it')
        t.match(drop ?? '', c.match!)
      } else {
        t.equal(drop, undefined, 'validateResponse keeps it')
      }
    }
    c.check?.(t, m)
  })
}

t.test('ipv6-in-sdp with its Content-Length corrected (RFC 5118 §4.6)', async t => {
  const m = parseMessage(withCorrectContentLength(fixture('ipv6-in-sdp')))
  if (!(m instanceof SipRequest)) return t.fail('a request')
  t.equal(validateRequest(m), undefined)
  t.equal(m.requestUri.host, '[2001:db8::10]')
  t.equal(m.topVia?.host, '[2001:db8::20]')
  t.equal(m.body.length, 251)
  t.ok(m.body.includes('c=IN IP6 2001:db8::20\r\n'))
  t.ok(m.body.includes('o=assistant 971731711378798081 0 IN IP6 2001:db8::20\r\n'))
})

t.test('offsets of the parse errors point at the defect', async t => {
  const at = (name: string): string => {
    try {
      parseMessage(fixture(name))
    } catch (err) {
      if (err instanceof SipParseError) return fixture(name).toString('latin1').slice(err.offset, err.offset + 12)
    }
    return ''
  }
  t.equal(at('clerr'), '9999\r\n\r\nv=0\r')
  t.equal(at('ncl'), '-999\r\n\r\nv=0\r')
  t.equal(at('ltgtruri'), '<sip:user@ex')
  t.equal(at('lwsstart'), ' sip:user@ex')
  t.equal(at('lwsruri'), ' lr SIP/2.0\r')
  t.equal(at('trws'), '  \r\nVia: SIP')
  t.equal(at('mcl01'), 'Content-Leng', 'the second Content-Length line')
  t.equal(at('bigcode'), '4294967301 b')
  t.equal(at('test'), 'Foobar rooba')
})

t.test('offsets of accessor errors point at the defect', async t => {
  const at = (name: string, read: (m: SipRequest | SipResponse) => unknown): string => {
    const m = parseMessage(fixture(name))
    try {
      read(m)
    } catch (err) {
      if (err instanceof SipParseError) return fixture(name).toString('latin1').slice(err.offset, err.offset + 10)
    }
    return ''
  }
  t.equal(at('quotbal', m => m.to), '"Mr. J. Us')
  t.equal(at('badaspec', m => m.to), ' sip:t.wat')
  t.equal(at('baddn', m => m.from), ', Alexande')
  t.equal(at('badinv01', m => m.via), ';,;,,\r\nCon')
  t.equal(at('regbadct', m => m.contact), '?Route=%3C')
  t.equal(at('scalar02', m => m.cseq), '3689348814')
  t.equal(at('scalar02', m => m.maxForwards), '300\r\nExpir')
  t.equal(at('multi01', m => m.callId), 'Call-ID: m', 'the second Call-ID line')
  t.equal(at('ipv6-bad', m => (m as SipRequest).requestUri), '2001:db8::')
})
