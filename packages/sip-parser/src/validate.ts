/**
 * Checks a server runs on a request that parsed (RFC 3261 §8.2, §16.3) and
 * the answer due when it fails. Only what any element must check lives here;
 * Require / Proxy-Require against supported extensions (420) and
 * Max-Forwards 0 (483) depend on the element and are left to it.
 */
import { ALPHANUM } from './chars.js'
import { SipParseError } from './errors.js'
import {
  H_CALL_ID, H_CONTACT, H_CSEQ, H_EXPIRES, H_FROM, H_PROXY_REQUIRE, H_RECORD_ROUTE, H_REQUIRE, H_ROUTE, H_TO, H_VIA
} from './header-names.js'
import type { SipRequest, SipResponse } from './message.js'
import type { ValidationFailure } from './types.js'

const MANDATORY: ReadonlyArray<readonly [number, string]> = [
  [H_VIA, 'Via'],
  [H_FROM, 'From'],
  [H_TO, 'To'],
  [H_CALL_ID, 'Call-ID'],
  [H_CSEQ, 'CSeq']
]

/**
 * True when the Request-URI text starts with a scheme an element can route:
 * sip, sips or tel in any case (others get 416, RFC 3261 §8.2.2.1, §19.1.4).
 */
function routableScheme (uri: string): boolean {
  const c0 = uri.charCodeAt(0) | 0x20
  const c1 = uri.charCodeAt(1) | 0x20
  const c2 = uri.charCodeAt(2) | 0x20
  if (c0 === 0x73 && c1 === 0x69 && c2 === 0x70) { // sip
    const c3 = uri.charCodeAt(3)
    return c3 === 0x3a || ((c3 | 0x20) === 0x73 && uri.charCodeAt(4) === 0x3a)
  }
  return c0 === 0x74 && c1 === 0x65 && c2 === 0x6c && uri.charCodeAt(3) === 0x3a // tel
}

/**
 * True when the Via elements are more than the top one: a second Via line,
 * or a comma anywhere in the first line (a comma in a quoted parameter value
 * too: then the whole list is parsed, which is only slower).
 */
function moreThanTopVia (req: SipRequest, k: number): boolean {
  if (req.findId(H_VIA, k + 1) >= 0) return true
  const buf = req.buf
  for (let i = req.lineAt(k), e = req.nextAt(k); i < e; i++) if (buf[i] === 0x2c) return true
  return false
}

function reasonOf (err: unknown): string {
  // A reason phrase is one line of UTF-8 text: keep it short and printable.
  const m = err instanceof Error ? err.message : String(err)
  let out = ''
  for (let i = 0; i < m.length && out.length < 120; i++) {
    const c = m.charCodeAt(i)
    out += c < 0x20 || c === 0x7f ? ' ' : m[i]
  }
  return out
}

/** RFC 3261 §7.1: the SIP-Version string is case-insensitive. */
function isSip20 (version: string): boolean {
  return version.length === 7 && (version === 'SIP/2.0' || version.toUpperCase() === 'SIP/2.0')
}

/** User-part characters plainContact takes: alphanumerics and the marks of RFC 3261 §25.1 user that need no care ('%', ';', '?', '/', ',' and '#' do). */
const PLAIN_USER = new Uint8Array(128)
for (let c = 0; c < 128; c++) if (ALPHANUM[c] === 1) PLAIN_USER[c] = 1
for (const ch of "-_.!~*'()&=+$") PLAIN_USER[ch.charCodeAt(0)] = 1

/**
 * True when Contact line `k` is `<sip:` (or sips), an optional user of
 * plain characters and `@`, a dotted-quad IPv4 host (parts 0-255), an
 * optional port up to 65535, `>` and nothing more: a value the Contact
 * grammar accepts, known so from its bytes without building the view (the
 * usual Contact of a trunk, a media node, sipp). Anything else (a display
 * name, parameters, a host name, a line folded after the value) is left to
 * the grammar.
 */
function plainContact (req: SipRequest, k: number): boolean {
  const buf = req.buf
  const e = req.nextAt(k)
  let i = req.valueStartAt(k)
  if (e - i < 13 || buf[i] !== 0x3c || (buf[i + 1]! | 0x20) !== 0x73 || (buf[i + 2]! | 0x20) !== 0x69 || (buf[i + 3]! | 0x20) !== 0x70) return false
  i += 4
  if ((buf[i]! | 0x20) === 0x73) i++
  if (buf[i] !== 0x3a) return false
  i++
  let j = i
  while (j < e && PLAIN_USER[buf[j]!] === 1) j++
  if (buf[j] === 0x40) {
    if (j === i) return false
    i = j + 1
  }
  for (let part = 0; part < 4; part++) {
    if (part > 0) {
      if (buf[i] !== 0x2e) return false
      i++
    }
    const d0 = i
    let v = 0
    while (i < e && i - d0 < 3 && buf[i]! >= 0x30 && buf[i]! <= 0x39) v = v * 10 + buf[i++]! - 0x30
    if (i === d0 || v > 255) return false
  }
  if (buf[i] === 0x3a) {
    const d0 = ++i
    let v = 0
    while (i < e && i - d0 < 5 && buf[i]! >= 0x30 && buf[i]! <= 0x39) v = v * 10 + buf[i++]! - 0x30
    if (i === d0 || v > 65535) return false
  }
  if (buf[i] !== 0x3e) return false
  return lineEndsAt(buf, i + 1, e)
}

/** True when only whitespace and the line end (CRLF or LF) are left from `i` to `e`: no folded continuation. */
function lineEndsAt (buf: Buffer, i: number, e: number): boolean {
  while (i < e && (buf[i] === 0x20 || buf[i] === 0x09)) i++
  if (i < e && buf[i] === 0x0d) i++
  if (i < e && buf[i] === 0x0a) i++
  return i === e
}

function bad (what: string): ValidationFailure {
  return { status: 400, reason: what }
}

/**
 * Returns undefined for a sound request, or the status and reason a server
 * must answer: 505 for another SIP version, 400 naming the defect for a
 * missing or malformed mandatory header, a CSeq method that is not the
 * request method or a Request-URI with headers, 416 for an unknown scheme.
 */
export function validateRequest (req: SipRequest): ValidationFailure | undefined {
  // RFC 3261 §21.5.6: only SIP/2.0 is spoken here (RFC 4475 §3.1.2.16).
  if (!isSip20(req.version)) return { status: 505, reason: 'Version Not Supported' }
  for (const [id, name] of MANDATORY) {
    if (req.findId(id) < 0) return bad(`Missing ${name} header`)
  }
  try {
    const topVia = req.topVia
    if (topVia === undefined) return bad('Missing Via header')
    // Every Via must parse: a response travels back over them. The top one
    // (which the request's path reads anyway) is the whole list when its
    // line is the only one and holds one element.
    if (moreThanTopVia(req, req.findId(H_VIA))) void req.via
    void req.callId
    const cseq = req.cseq
    void req.from
    void req.to
    // RFC 3261 §8.1.1.5 / RFC 4475 §3.1.2.17: the CSeq method matches the request method.
    if (cseq.method !== req.method) return bad(`CSeq method ${cseq.method} does not match request method ${req.method}`)
    void req.maxForwards
    void req.contentLength
    // Views of headers most requests lack are looked up before they are
    // built: an absent header gives nothing to check (and no empty array).
    if (req.findId(H_EXPIRES) >= 0) void req.expires
    // One plain Contact (see plainContact) needs no view to know it parses.
    const kc = req.findId(H_CONTACT)
    if (kc >= 0 && (req.findId(H_CONTACT, kc + 1) >= 0 || !plainContact(req, kc))) void req.contact
    if (req.findId(H_ROUTE) >= 0) void req.route
    if (req.findId(H_RECORD_ROUTE) >= 0) void req.recordRoute
    if (req.findId(H_REQUIRE) >= 0) void req.require
    if (req.findId(H_PROXY_REQUIRE) >= 0) void req.proxyRequire
  } catch (err) {
    if (err instanceof SipParseError) return bad(reasonOf(err))
    throw err
  }
  const uri = req.uri
  if (!routableScheme(uri)) return { status: 416, reason: 'Unsupported URI Scheme' }
  try {
    const ruri = req.requestUri
    // RFC 3261 §19.1.5: headers are not allowed in a Request-URI (RFC 4475
    // §3.1.2.11). They follow a '?', so without one there are none to look
    // at (and no empty Map is made to say so).
    if (uri.indexOf('?') >= 0 && ruri.headers.size > 0) return bad('Request-URI must not contain headers')
  } catch (err) {
    if (err instanceof SipParseError) return bad(reasonOf(err))
    throw err
  }
  return undefined
}

/**
 * Returns undefined for a response an element may process, or why it must
 * be dropped: responses are never answered, so a defect in a field that
 * matching or forwarding relies on means silent discard (RFC 3261 §18.1.2,
 * §16.7; RFC 4475 §3.1.2.5 and §3.1.2.19). Checks the version and that Via
 * (every element), From, To, Call-ID and CSeq are present and parse.
 */
export function validateResponse (resp: SipResponse): string | undefined {
  if (!isSip20(resp.version)) return `unsupported SIP version ${resp.version}`
  for (const [id, name] of MANDATORY) {
    if (resp.findId(id) < 0) return `missing ${name} header`
  }
  try {
    // A response travels back over its Via elements (§18.2.2, §16.7 step 3).
    void resp.via
    void resp.callId
    void resp.cseq
    void resp.from
    void resp.to
    void resp.contentLength
  } catch (err) {
    if (err instanceof SipParseError) return reasonOf(err)
    throw err
  }
  return undefined
}
