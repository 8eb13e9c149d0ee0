/**
 * URI grammar: sip:, sips: (RFC 3261 §19.1, §25.1), tel: (RFC 3966) and any
 * other absoluteURI; comparison per RFC 3261 §19.1.4; serialisation.
 *
 * The parser makes one pass over the char codes of the text with the lookup
 * tables of chars.ts, and slices each field once (decoding percent-escapes
 * only where the scan saw a `%`). No RegExp: a proxy parses a request-URI per
 * message.
 */
import type { Params, SipUri } from './types.js'
import { URI_I, wasmDelta, wasmOut, wasmSipUri } from './wasm-index.js'
import { SipParseError, quote } from './errors.js'
import {
  ALPHA, ALPHANUM, DIGIT, HEX, HNV, PARAMCHAR, PASSWORD, PHONEDIGIT_HEX, SCHEME,
  TEL_PNAME, URIC, USER, VISUAL_SEPARATOR, hexValue, inClass
} from './chars.js'

/** Error code of every URI defect. */
const ERR_BAD_URI = 'SIP_ERR_BAD_URI'

const PERCENT = 0x25 // %
const AMP = 0x26 // &
const PLUS = 0x2b // +
const HYPHEN = 0x2d // -
const DOT = 0x2e // .
const COLON = 0x3a // :
const SEMI = 0x3b // ;
const EQ = 0x3d // =
const QUESTION = 0x3f // ?
const LBRACKET = 0x5b // [
const RBRACKET = 0x5d // ]

/** User characters written unescaped by formatUri: the strict RFC 3261 §25.1 set, without `#`. */
const USER_OUT = Uint8Array.from(USER)
USER_OUT[0x23] = 0

/** RFC 3261 §19.1.4: these parameters must match when present in either URI. */
const STRICT_PARAMS = ['user', 'ttl', 'method', 'maddr', 'transport']

// ---------------------------------------------------------------------------
// Errors

function fail (message: string, offset: number): never {
  throw new SipParseError(message, offset, ERR_BAD_URI)
}

function describeChar (c: number): string {
  if (c >= 0x20 && c < 0x7f) return c === 0x27 ? '"\'"' : `'${String.fromCharCode(c)}'`
  return 'U+' + c.toString(16).toUpperCase().padStart(4, '0')
}

function badChar (text: string, i: number, where: string): never {
  fail(`invalid character ${describeChar(text.charCodeAt(i))} in URI ${where}`, i)
}

/** Check the `%XX` escape at `i` (RFC 3261 §25.1 `escaped = "%" HEXDIG HEXDIG`). */
function checkEscape (text: string, i: number, end: number, where: string): void {
  if (i + 2 >= end || hexValue(text.charCodeAt(i + 1)) < 0 || hexValue(text.charCodeAt(i + 2)) < 0) {
    fail(`invalid escape ${quote(text.slice(i, Math.min(i + 3, end)))} in URI ${where}`, i)
  }
}

/**
 * Where a host failed to parse, tell an unbracketed IPv6 address apart
 * (RFC 5118 §4.2: `sip:2001:db8::10` is invalid; the reference needs `[` `]`).
 */
function failBareIPv6 (text: string, hostStart: number): void {
  let i = hostStart
  while (i < text.length) {
    const c = text.charCodeAt(i)
    if (!inClass(HEX, c) && c !== COLON && c !== DOT) break
    i++
  }
  if (isIPv6(text, hostStart, i)) {
    fail(`IPv6 address ${quote(text.slice(hostStart, i))} not enclosed in "[" "]" in URI`, hostStart)
  }
}

// ---------------------------------------------------------------------------
// Percent-escapes

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

function decodeHighBytes (bytes: number[]): string {
  try {
    return utf8.decode(Uint8Array.from(bytes))
  } catch {
    // Not UTF-8 (e.g. a Latin-1 `%E9`): keep one char per byte rather than lose data.
    return String.fromCharCode(...bytes)
  }
}

/**
 * Decode the `%XX` escapes of `text[start, end)`. A run of escaped bytes
 * >= 0x80 is decoded as UTF-8, or byte for byte (U+0080–U+00FF) if it is not
 * valid UTF-8. A `%` not followed by two hex digits is kept as is.
 */
function decodeRange (text: string, start: number, end: number): string {
  let out = ''
  let last = start
  let i = start
  while (i < end) {
    if (text.charCodeAt(i) !== PERCENT || i + 2 >= end) { i++; continue }
    const hi = hexValue(text.charCodeAt(i + 1))
    const lo = hexValue(text.charCodeAt(i + 2))
    if (hi < 0 || lo < 0) { i++; continue }
    if (last < i) out += text.slice(last, i)
    const b = hi * 16 + lo
    i += 3
    if (b < 0x80) {
      out += String.fromCharCode(b)
    } else {
      const bytes = [b]
      while (i + 2 < end && text.charCodeAt(i) === PERCENT) {
        const h = hexValue(text.charCodeAt(i + 1))
        const l = hexValue(text.charCodeAt(i + 2))
        if (h < 8 || l < 0) break
        bytes.push(h * 16 + l)
        i += 3
      }
      out += decodeHighBytes(bytes)
    }
    last = i
  }
  return last === start ? text.slice(start, end) : out + text.slice(last, end)
}

/**
 * Decode the percent-escapes (RFC 3261 §25.1 `escaped`) of `s`. Escaped bytes
 * >= 0x80 are read as UTF-8 (or byte for byte when not valid UTF-8); a `%`
 * that does not start a valid escape is kept as is, so this never throws.
 */
export function unescapePercent (s: string): string {
  return s.indexOf('%') === -1 ? s : decodeRange(s, 0, s.length)
}

function hex2 (b: number): string {
  return '%' + (b < 16 ? '0' : '') + b.toString(16).toUpperCase()
}

/** Escape every char of `s` not in `allowed` as UTF-8 `%XX` (lone surrogates become U+FFFD). */
function escapeFor (s: string, allowed: Uint8Array): string {
  let i = 0
  while (i < s.length && inClass(allowed, s.charCodeAt(i))) i++
  if (i === s.length) return s
  let out = s.slice(0, i)
  for (; i < s.length; i++) {
    let cp = s.charCodeAt(i)
    if (inClass(allowed, cp)) { out += s[i]; continue }
    if (cp >= 0xd800 && cp <= 0xdfff) {
      const next = s.charCodeAt(i + 1)
      if (cp <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        cp = 0x10000 + ((cp - 0xd800) << 10) + (next - 0xdc00)
        i++
      } else {
        cp = 0xfffd
      }
    }
    if (cp < 0x80) {
      out += hex2(cp)
    } else if (cp < 0x800) {
      out += hex2(0xc0 | (cp >> 6)) + hex2(0x80 | (cp & 0x3f))
    } else if (cp < 0x10000) {
      out += hex2(0xe0 | (cp >> 12)) + hex2(0x80 | ((cp >> 6) & 0x3f)) + hex2(0x80 | (cp & 0x3f))
    } else {
      out += hex2(0xf0 | (cp >> 18)) + hex2(0x80 | ((cp >> 12) & 0x3f)) +
        hex2(0x80 | ((cp >> 6) & 0x3f)) + hex2(0x80 | (cp & 0x3f))
    }
  }
  return out
}

// ---------------------------------------------------------------------------
// Hosts

/**
 * IPv4 dotted quad in `text[start, end)`: four groups of 1–3 digits
 * (RFC 3261 §25.1 `IPv4address`), each at most 255 (RFC 3986 §3.2.2 `dec-octet`).
 */
function isIPv4 (text: string, start: number, end: number): boolean {
  let groups = 0
  let i = start
  while (i < end) {
    let v = 0
    const gs = i
    while (i < end && i - gs < 4) {
      const c = text.charCodeAt(i)
      if (c < 0x30 || c > 0x39) break
      v = v * 10 + c - 0x30
      i++
    }
    const n = i - gs
    if (n === 0 || n > 3 || v > 255) return false
    groups++
    if (i === end) break
    if (text.charCodeAt(i) !== DOT || groups === 4) return false
    i++
    if (i === end) return false
  }
  return groups === 4
}

/**
 * IPv6 address in `text[start, end)` per RFC 3986 §3.2.2 (adopted for SIP by
 * RFC 5954): eight `h16` groups, or fewer with exactly one `::`, the last
 * 32 bits optionally a dotted quad (`::ffff:192.0.2.1`). Three colons in a row
 * are invalid (RFC 5118 §4.10, the RFC 3261 ABNF bug).
 */
function isIPv6 (text: string, start: number, end: number): boolean {
  return ipv6Words(text, start, end, null)
}

/** Validate an IPv6 address and, when `out` is given, store its eight 16-bit words. */
function ipv6Words (text: string, start: number, end: number, out: number[] | null): boolean {
  if (end - start < 2) return false
  let i = start
  let groups = 0
  let gap = -1 // index in the word list where `::` stands
  const words: number[] = []
  if (text.charCodeAt(i) === COLON) {
    if (text.charCodeAt(i + 1) !== COLON) return false
    gap = 0
    i += 2
  }
  while (i < end) {
    const gs = i
    let v = 0
    while (i < end && i - gs < 5) {
      const h = hexValue(text.charCodeAt(i))
      if (h < 0) break
      v = v * 16 + h
      i++
    }
    if (i === gs) return false
    if (i < end && text.charCodeAt(i) === DOT) {
      // RFC 3986 §3.2.2 `ls32`: a trailing dotted quad stands for the last two words.
      if (!isIPv4(text, gs, end)) return false
      let q = 0
      let a = 0
      for (let k = gs; k <= end; k++) {
        const c = k < end ? text.charCodeAt(k) : DOT
        if (c === DOT) {
          if ((q & 1) === 0) words.push(a << 8)
          else words[words.length - 1] |= a
          q++
          a = 0
        } else {
          a = a * 10 + c - 0x30
        }
      }
      groups += 2
      i = end
      break
    }
    if (i - gs > 4) return false
    words.push(v)
    groups++
    if (i === end) break
    if (text.charCodeAt(i) !== COLON) return false
    i++
    if (i === end) return false
    if (text.charCodeAt(i) === COLON) {
      if (gap !== -1) return false
      gap = words.length
      i++
    }
  }
  if (gap === -1 ? groups !== 8 : groups > 7) return false
  if (out !== null) {
    out.length = 0
    for (let k = 0; k < words.length; k++) {
      if (k === gap) for (let z = 0; z < 8 - words.length; z++) out.push(0)
      out.push(words[k] as number)
    }
    if (gap === words.length) for (let z = 0; z < 8 - words.length; z++) out.push(0)
  }
  return true
}

// Results of the last scanHostname call, kept in module scratch so that the
// per-URI hot path allocates no result object.
let scanDefect = -1
let scanUpper = false
let scanDigitsOnly = true

/**
 * Scan a hostname or dotted quad from `start` to the first character that
 * cannot belong to one; return that offset. Sets `scanDefect` to the offset
 * of the first grammar defect of a hostname, or -1 (RFC 3261 §25.1:
 * `hostname = *(domainlabel ".") toplabel ["."]`; labels of alphanum with
 * inner "-"; the top label starts with ALPHA), `scanUpper` when an upper-case
 * letter was seen and `scanDigitsOnly` when it held only digits and dots (an
 * IPv4 address candidate, whose top label would be invalid as a hostname).
 */
function scanHostname (text: string, start: number): number {
  const len = text.length
  let pos = start
  let labelStart = start
  let topStart = start
  let defect = -1
  let upper = false
  let digitsOnly = true
  while (pos < len) {
    const c = text.charCodeAt(pos)
    if (c === DOT) {
      // A domainlabel is non-empty and does not end with "-".
      if (defect === -1) {
        if (pos === labelStart) defect = pos
        else if (text.charCodeAt(pos - 1) === HYPHEN) defect = pos - 1
      }
      labelStart = pos + 1
    } else if (c === HYPHEN) {
      if (defect === -1 && pos === labelStart) defect = pos
      digitsOnly = false
    } else if (c < 128 && ALPHANUM[c] === 1) {
      if (pos === labelStart) topStart = pos
      if (c > 0x39) {
        digitsOnly = false
        if (c <= 0x5a) upper = true
      }
    } else {
      break
    }
    pos++
  }
  if (defect === -1 && pos > labelStart && text.charCodeAt(pos - 1) === HYPHEN) defect = pos - 1
  if (defect === -1 && pos > start && !inClass(ALPHA, text.charCodeAt(topStart))) defect = topStart
  scanDefect = defect
  scanUpper = upper
  scanDigitsOnly = digitsOnly
  return pos
}

type HostType = SipUri['hostType']

/**
 * Kind of a host string (RFC 3261 §25.1 `host`): `'name'`, `'ipv4'`, `'ipv6'`
 * (an IPv6 reference in `[` `]`), or undefined when it is not a valid host.
 */
export function hostTypeOf (s: string): HostType | undefined {
  const len = s.length
  if (len === 0) return undefined
  if (s.charCodeAt(0) === LBRACKET) {
    return s.charCodeAt(len - 1) === RBRACKET && isIPv6(s, 1, len - 1) ? 'ipv6' : undefined
  }
  if (scanHostname(s, 0) !== len) return undefined
  if (scanDigitsOnly) return isIPv4(s, 0, len) ? 'ipv4' : undefined
  return scanDefect === -1 ? 'name' : undefined
}

/** Whether `s` is a valid SIP host: hostname, IPv4 address or IPv6 reference `[...]` (RFC 3261 §25.1). */
export function isValidHost (s: string): boolean {
  return hostTypeOf(s) !== undefined
}

/** Whether `s` is a dotted-quad IPv4 address (each part 0–255). */
export function isValidIPv4 (s: string): boolean {
  return isIPv4(s, 0, s.length)
}

/** Whether `s` is an IPv6 address without brackets (RFC 3986 §3.2.2), e.g. a Via `received` value. */
export function isValidIPv6 (s: string): boolean {
  return isIPv6(s, 0, s.length)
}

// ---------------------------------------------------------------------------
// Parsing

/**
 * Parse a URI: sip: and sips: (RFC 3261 §19.1, §25.1), tel: (RFC 3966), or
 * any other absoluteURI (scheme and raw text only). Scheme, host and
 * parameter names are lower-cased; user, password, parameter and header
 * values are percent-decoded.
 *
 * @throws {SipParseError} code `SIP_ERR_BAD_URI`, with the offset of the defect in `text`.
 */
export function parseUri (text: string): SipUri {
  const len = text.length
  if (len === 0) fail('empty URI', 0)
  if (!inClass(ALPHA, text.charCodeAt(0))) badChar(text, 0, 'scheme')
  let i = 1
  while (i < len && inClass(SCHEME, text.charCodeAt(i))) i++
  if (i === len) fail(`missing ":" after URI scheme in ${quote(text)}`, i)
  if (text.charCodeAt(i) !== COLON) badChar(text, i, 'scheme')
  // Recognise sip/sips/tel in any case without allocating (RFC 3261 §19.1.4: schemes are case-insensitive).
  const c0 = text.charCodeAt(0) | 0x20
  if (i === 3) {
    const c1 = text.charCodeAt(1) | 0x20
    const c2 = text.charCodeAt(2) | 0x20
    if (c0 === 0x73 && c1 === 0x69 && c2 === 0x70) return parseSip(text, 'sip', 4)
    if (c0 === 0x74 && c1 === 0x65 && c2 === 0x6c) return parseTel(text, 4)
  } else if (i === 4 && c0 === 0x73 && (text.charCodeAt(1) | 0x20) === 0x69 &&
    (text.charCodeAt(2) | 0x20) === 0x70 && (text.charCodeAt(3) | 0x20) === 0x73) {
    return parseSip(text, 'sips', 5)
  }
  return parseOther(text, text.slice(0, i).toLowerCase(), i + 1)
}

/** RFC 3261 §25.1 `SIP-URI` / `SIPS-URI` after the scheme and colon. */
function parseSip (text: string, scheme: 'sip' | 'sips', start: number): SipUri {
  const len = text.length
  let user: string | undefined
  let password: string | undefined
  let pos = start
  let c = 0

  // userinfo: no unescaped "@" may follow it (hostport, uri-parameters and
  // headers exclude "@"), so the first "@" ends it. The user part may hold
  // ";" and "?" (user-unreserved), e.g. RFC 4475 §3.1.1.11 semiuri.
  const at = text.indexOf('@', start)
  if (at !== -1) {
    let i = start
    let esc = false
    for (; i < at; i++) {
      c = text.charCodeAt(i)
      if (c === COLON) break
      if (c === PERCENT) { checkEscape(text, i, at, 'user'); esc = true; i += 2; continue }
      if (!inClass(USER, c)) badChar(text, i, 'user')
    }
    if (i === start) fail('empty user in URI', start)
    user = esc ? decodeRange(text, start, i) : text.slice(start, i)
    if (i < at) {
      const ps = i + 1
      esc = false
      for (i = ps; i < at; i++) {
        c = text.charCodeAt(i)
        if (c === PERCENT) { checkEscape(text, i, at, 'password'); esc = true; i += 2; continue }
        if (!inClass(PASSWORD, c)) badChar(text, i, 'password')
      }
      password = esc ? decodeRange(text, ps, at) : text.slice(ps, at)
    }
    pos = at + 1
  }

  // host = hostname / IPv4address / IPv6reference
  if (pos === len) fail('missing host in URI', pos)
  const hs = pos
  let host: string
  let hostType: HostType
  c = text.charCodeAt(pos)
  if (c === LBRACKET) {
    pos++
    while (pos < len) {
      c = text.charCodeAt(pos)
      if (!inClass(HEX, c) && c !== COLON && c !== DOT) break
      pos++
    }
    if (pos === len) fail('unterminated IPv6 reference in URI', hs)
    if (c !== RBRACKET) badChar(text, pos, 'IPv6 reference')
    pos++
    if (!isIPv6(text, hs + 1, pos - 1)) fail(`invalid IPv6 reference ${quote(text.slice(hs, pos))} in URI`, hs)
    host = text.slice(hs, pos).toLowerCase()
    hostType = 'ipv6'
  } else {
    pos = scanHostname(text, hs)
    if (pos === hs) {
      if (c === SEMI || c === QUESTION || c === COLON) fail('missing host in URI', pos)
      badChar(text, pos, 'host')
    }
    if (scanDigitsOnly) {
      if (!isIPv4(text, hs, pos)) {
        failBareIPv6(text, hs)
        fail(`invalid IPv4 address ${quote(text.slice(hs, pos))} in URI`, hs)
      }
      hostType = 'ipv4'
    } else {
      if (scanDefect !== -1) {
        const bad = scanDefect
        failBareIPv6(text, hs)
        fail(`invalid host name ${quote(text.slice(hs, pos))} in URI`, bad)
      }
      hostType = 'name'
    }
    host = text.slice(hs, pos)
    if (scanUpper) host = host.toLowerCase()
  }

  // [":" port], port = 1*DIGIT, at most 65535
  let port: number | undefined
  if (pos < len && text.charCodeAt(pos) === COLON) {
    const ps = ++pos
    let v = 0
    while (pos < len) {
      c = text.charCodeAt(pos)
      if (c < 0x30 || c > 0x39) break
      v = v * 10 + c - 0x30
      pos++
    }
    if (pos < len && c !== SEMI && c !== QUESTION) {
      if (hostType !== 'ipv6') failBareIPv6(text, hs)
      badChar(text, pos, 'port')
    }
    if (pos === ps) fail('missing port in URI', ps)
    if (v > 65535) fail(`invalid port ${quote(text.slice(ps, pos))} in URI`, ps)
    port = v
  }
  if (pos < len) {
    c = text.charCodeAt(pos)
    if (c !== SEMI && c !== QUESTION) badChar(text, pos, 'host')
  }

  // uri-parameters = *(";" uri-parameter)
  let params: Params | undefined
  while (pos < len && text.charCodeAt(pos) === SEMI) pos = parseSipParam(text, pos + 1, params ??= new Map())

  // headers = "?" header *("&" header)
  let headers: Map<string, string> | undefined
  if (pos < len) pos = parseHeaders(text, pos + 1, headers = new Map())

  return new ParsedSipUri(scheme, user, password, host, hostType, port, params, headers, text)
}

/**
 * A parsed sip:/sips: URI. Most URIs have no headers and many no
 * parameters: their empty Maps are made on first read, not per parse.
 */
class ParsedSipUri implements SipUri {
  scheme: string
  user: string | undefined
  password: string | undefined
  host: string
  hostType: HostType
  port: number | undefined
  raw: string
  #params: Params | undefined
  #headers: Map<string, string> | undefined
  /** With `#paramsAt` >= 0: `raw[#paramsAt]` is the ";" of checked parameters without escapes, made a Map on first read. */
  #paramsAt: number
  constructor (scheme: string, user: string | undefined, password: string | undefined, host: string, hostType: HostType,
    port: number | undefined, params: Params | undefined, headers: Map<string, string> | undefined, raw: string, paramsAt = -1) {
    this.scheme = scheme
    this.user = user
    this.password = password
    this.host = host
    this.hostType = hostType
    this.port = port
    this.raw = raw
    this.#params = params
    this.#headers = headers
    this.#paramsAt = paramsAt
  }

  get params (): Params {
    if (this.#params === undefined) {
      const params: Params = this.#params = new Map()
      const at = this.#paramsAt
      if (at >= 0) {
        const text = this.raw
        let i = at
        while (i < text.length) i = parseSipParam(text, i + 1, params)
      }
    }
    return this.#params
  }

  set params (m: Params) {
    this.#params = m
  }

  get headers (): Map<string, string> {
    return this.#headers ??= new Map()
  }

  set headers (m: Map<string, string>) {
    this.#headers = m
  }
}

/** PARAMCHAR (RFC 3261 §25.1) over bytes, without `%`: 1 allowed; `;` 2, `=` 3, `?` 4. */
const PARAM_BYTE = new Uint8Array(256)
for (let c = 0; c < 128; c++) if (PARAMCHAR[c] === 1 && c !== PERCENT) PARAM_BYTE[c] = 1
PARAM_BYTE[SEMI] = 2
PARAM_BYTE[EQ] = 3
PARAM_BYTE[QUESTION] = 4

/** USER (RFC 3261 §25.1) over bytes, without `%`. */
const USER_BYTE = new Uint8Array(256)
for (let c = 0; c < 128; c++) if (USER[c] === 1 && c !== PERCENT) USER_BYTE[c] = 1

/** Hostname bytes: 1 digit, 2 lower-case letter, 3 upper-case letter, 4 `-`, 5 `.`. */
const HOST_BYTE = new Uint8Array(256)
for (let c = 0x30; c <= 0x39; c++) HOST_BYTE[c] = 1
for (let c = 0x61; c <= 0x7a; c++) HOST_BYTE[c] = 2
for (let c = 0x41; c <= 0x5a; c++) HOST_BYTE[c] = 3
HOST_BYTE[HYPHEN] = 4
HOST_BYTE[DOT] = 5

/**
 * The usual sip: or sips: URI in buf[s..e), read from the bytes in one pass:
 * `text` is the same URI as a string (one char per byte) and `base` the
 * offset in `buf` of its first char. Returns undefined for anything this
 * path does not take (escapes, a password, an IPv6 reference, URI headers,
 * an invalid host, any defect): parseUri(text) then gives the same answer or
 * the precise error. Parameters are checked here and made a Map on first read.
 */
export function parseSipUriBytes (buf: Uint8Array, text: string, base: number): SipUri | undefined {
  const e = base + text.length
  // The same grammar in wasm while the message is the one held there (wasm-index.ts).
  if (wasmSipUri(buf, base, e)) {
    const W = wasmOut
    const d = wasmDelta - base
    const us = W[URI_I + 1]!
    const pa = W[URI_I + 8]!
    return sipUriFrom(text, W[URI_I] === 1 ? 'sips' : 'sip', us >= 0 ? text.substring(us + d, W[URI_I + 2]! + d) : undefined,
      W[URI_I + 3]! + d, W[URI_I + 4]! + d, W[URI_I + 5]!, W[URI_I + 6]!, W[URI_I + 7]!, pa >= 0 ? pa + d : -1)
  }
  let i = base
  // "sip:" / "sips:" in any case (RFC 3261 §19.1.4).
  if (e - i < 5 || (buf[i]! | 0x20) !== 0x73 || (buf[i + 1]! | 0x20) !== 0x69 || (buf[i + 2]! | 0x20) !== 0x70) return undefined
  let scheme: 'sip' | 'sips'
  if (buf[i + 3] === COLON) {
    scheme = 'sip'
    i += 4
  } else if ((buf[i + 3]! | 0x20) === 0x73 && buf[i + 4] === COLON) {
    scheme = 'sips'
    i += 5
  } else {
    return undefined
  }
  const start = i
  let user: string | undefined
  // userinfo ends at the first "@" of the URI, as parseSip finds it.
  const at = text.indexOf('@', start - base)
  if (at >= 0) {
    const atB = at + base
    while (i < atB && USER_BYTE[buf[i]!] === 1) i++
    if (i !== atB || i === start) return undefined
    user = text.substring(start - base, at)
    i++
  }
  // hostname = *(domainlabel ".") toplabel ["."], or an IPv4 address.
  const hs = i
  let labelStart = i
  let kinds = 0
  let prev = 0
  let top = 0
  for (; i < e; i++) {
    const t = HOST_BYTE[buf[i]!]!
    if (t === 0) break
    if (t === 5) {
      if (i === labelStart || prev === 4) return undefined
      labelStart = i + 1
    } else {
      if (i === labelStart) {
        if (t === 4) return undefined
        top = t
      }
      kinds |= 1 << t
    }
    prev = t
  }
  if (i === hs || prev === 4) return undefined
  const hostEnd = i
  let port = -1
  if (i < e && buf[i] === COLON) {
    const ps = ++i
    let v = 0
    while (i < e) {
      const d = buf[i]! - 0x30
      if (d < 0 || d > 9) break
      v = v * 10 + d
      if (v > 65535) return undefined
      i++
    }
    if (i === ps) return undefined
    port = v
  }
  if (i === e) return sipUriFrom(text, scheme, user, hs - base, hostEnd - base, kinds, top, port, -1)
  if (buf[i] !== SEMI) return undefined
  // uri-parameters: each `;` pname ["=" pvalue], both non-empty paramchars.
  const paramsAt = i - base
  while (i < e) {
    const ns = ++i
    while (i < e && PARAM_BYTE[buf[i]!] === 1) i++
    if (i === ns) return undefined
    if (i < e && buf[i] === EQ) {
      const vs = ++i
      while (i < e && PARAM_BYTE[buf[i]!] === 1) i++
      if (i === vs) return undefined
    }
    if (i < e && buf[i] !== SEMI) return undefined
  }
  return sipUriFrom(text, scheme, user, hs - base, hostEnd - base, kinds, top, port, paramsAt)
}

/**
 * The URI read by parseSipUriBytes (or its wasm twin): the host at
 * text[hs..he) with `kinds` (1 << HOST_BYTE class of each byte) and `top`
 * (the class of its top label's first byte), port -1 when none, the
 * parameters' ";" at `paramsAt` (-1 none). Undefined for a host that is
 * neither an IPv4 address nor a host name.
 */
function sipUriFrom (text: string, scheme: string, user: string | undefined, hs: number, he: number, kinds: number, top: number, port: number, paramsAt: number): SipUri | undefined {
  let host = text.substring(hs, he)
  let hostType: HostType
  if ((kinds & ~2) === 0) {
    if (!isIPv4(host, 0, host.length)) return undefined
    hostType = 'ipv4'
  } else {
    // The top label starts with a letter (a trailing "." ends the name after it).
    if (top === 1) return undefined
    hostType = 'name'
    if ((kinds & 8) !== 0) host = host.toLowerCase()
  }
  return new ParsedSipUri(scheme, user, undefined, host, hostType, port < 0 ? undefined : port, undefined, undefined, text, paramsAt)
}

/** One `pname ["=" pvalue]` starting at `start` (after the ";"); returns the offset after it. */
function parseSipParam (text: string, start: number, params: Params): number {
  const len = text.length
  let i = start
  let esc = false
  let upper = false
  let c = 0
  for (; i < len; i++) {
    c = text.charCodeAt(i)
    if (c === EQ || c === SEMI || c === QUESTION) break
    if (c === PERCENT) { checkEscape(text, i, len, 'parameter'); esc = true; i += 2; continue }
    if (!inClass(PARAMCHAR, c)) badChar(text, i, 'parameter')
    if (c >= 0x41 && c <= 0x5a) upper = true
  }
  if (i === start) fail('empty URI parameter name', start)
  // RFC 3261 §19.1.4: parameter names are case-insensitive.
  let name = esc ? decodeRange(text, start, i).toLowerCase() : text.slice(start, i)
  if (upper && !esc) name = name.toLowerCase()
  let value: string | null = null
  if (i < len && c === EQ) {
    const vs = ++i
    esc = false
    for (; i < len; i++) {
      c = text.charCodeAt(i)
      if (c === SEMI || c === QUESTION) break
      if (c === PERCENT) { checkEscape(text, i, len, 'parameter'); esc = true; i += 2; continue }
      if (!inClass(PARAMCHAR, c)) badChar(text, i, 'parameter')
    }
    if (i === vs) fail(`empty value of URI parameter ${quote(name)}`, vs)
    value = esc ? decodeRange(text, vs, i) : text.slice(vs, i)
  }
  // A repeated parameter keeps its first value.
  if (params.size === 0 || !params.has(name)) params.set(name, value)
  return i
}

/** `header *("&" header)` from `start` (after the "?") to the end of the text. */
function parseHeaders (text: string, start: number, headers: Map<string, string>): number {
  const len = text.length
  let pos = start
  let c = 0
  for (;;) {
    const ns = pos
    let esc = false
    for (; pos < len; pos++) {
      c = text.charCodeAt(pos)
      if (c === EQ || c === AMP) break
      if (c === PERCENT) { checkEscape(text, pos, len, 'header'); esc = true; pos += 2; continue }
      if (!inClass(HNV, c)) badChar(text, pos, 'header')
    }
    if (pos === ns) fail('empty URI header name', ns)
    const name = esc ? decodeRange(text, ns, pos) : text.slice(ns, pos)
    if (pos === len || c !== EQ) fail(`URI header ${quote(name)} without "="`, pos)
    const vs = ++pos
    esc = false
    for (; pos < len; pos++) {
      c = text.charCodeAt(pos)
      if (c === AMP) break
      if (c === PERCENT) { checkEscape(text, pos, len, 'header'); esc = true; pos += 2; continue }
      if (!inClass(HNV, c)) badChar(text, pos, 'header')
    }
    const value = esc ? decodeRange(text, vs, pos) : text.slice(vs, pos)
    addHeader(headers, name, value)
    if (pos === len) return pos
    pos++
  }
}

/**
 * Add a URI header. Names keep their spelling but match case-insensitively
 * (RFC 3261 §19.1.4); a repeated header joins the earlier value as a
 * comma-separated list, its equivalent (RFC 3261 §7.3.1).
 */
function addHeader (headers: Map<string, string>, name: string, value: string): void {
  if (headers.size > 0) {
    const lower = name.toLowerCase()
    for (const [known, prev] of headers) {
      if (known.length === name.length && known.toLowerCase() === lower) {
        headers.set(known, prev + ',' + value)
        return
      }
    }
  }
  headers.set(name, value)
}

/** RFC 3966 §3 `telephone-subscriber` after `tel:`. */
function parseTel (text: string, start: number): SipUri {
  const len = text.length
  let i = start
  if (i === len || text.charCodeAt(i) === SEMI) fail('empty tel number in URI', i)
  const global = text.charCodeAt(i) === PLUS
  if (global) i++
  let digits = 0
  for (; i < len; i++) {
    const c = text.charCodeAt(i)
    if (c === SEMI) break
    if (global) {
      // global-number-digits = "+" *phonedigit DIGIT *phonedigit
      if (inClass(DIGIT, c)) digits++
      else if (!inClass(VISUAL_SEPARATOR, c)) badChar(text, i, 'tel number')
    } else {
      // local-number-digits = *phonedigit-hex (HEXDIG / "*" / "#") *phonedigit-hex
      if (!inClass(PHONEDIGIT_HEX, c)) badChar(text, i, 'tel number')
      if (!inClass(VISUAL_SEPARATOR, c)) digits++
    }
  }
  if (digits === 0) fail(`tel number ${quote(text.slice(start, i))} has no digits`, start)
  const user = text.slice(start, i)
  const params: Params = new Map()
  while (i < len) i = parseTelParam(text, i + 1, params)
  // RFC 3966 §5.1.5: a local number MUST carry a phone-context.
  if (!global && !params.has('phone-context')) fail('local tel number without phone-context in URI', start)
  return {
    scheme: 'tel',
    user,
    password: undefined,
    host: '',
    hostType: 'name',
    port: undefined,
    params,
    headers: new Map(),
    raw: text
  }
}

/** RFC 3966 `parameter = ";" pname ["=" pvalue]` (also ext, isub, phone-context). */
function parseTelParam (text: string, start: number, params: Params): number {
  const len = text.length
  let i = start
  let c = 0
  for (; i < len; i++) {
    c = text.charCodeAt(i)
    if (c === EQ || c === SEMI) break
    if (!inClass(TEL_PNAME, c)) badChar(text, i, 'tel parameter')
  }
  if (i === start) fail('empty tel URI parameter name', start)
  const name = text.slice(start, i).toLowerCase()
  let value: string | null = null
  if (i < len && c === EQ) {
    const vs = ++i
    // isdn-subaddress = ";isub=" 1*uric; other values are 1*paramchar.
    const allowed = name === 'isub' ? URIC : PARAMCHAR
    let esc = false
    for (; i < len; i++) {
      c = text.charCodeAt(i)
      if (c === SEMI) break
      if (c === PERCENT) { checkEscape(text, i, len, 'tel parameter'); esc = true; i += 2; continue }
      if (!inClass(allowed, c)) badChar(text, i, 'tel parameter')
    }
    if (i === vs) fail(`empty value of tel URI parameter ${quote(name)}`, vs)
    value = esc ? decodeRange(text, vs, i) : text.slice(vs, i)
  }
  if (!params.has(name)) params.set(name, value)
  return i
}

/** RFC 3261 §25.1 `absoluteURI` of an unknown scheme: check its characters, keep it raw. */
function parseOther (text: string, scheme: string, start: number): SipUri {
  const len = text.length
  if (start === len) fail(`empty ${scheme}: URI`, start)
  for (let i = start; i < len; i++) {
    const c = text.charCodeAt(i)
    if (c === PERCENT) { checkEscape(text, i, len, 'text'); i += 2; continue }
    // uric, plus "[" "]" for IPv6 literals (RFC 3986 §3.2.2).
    if (!inClass(URIC, c) && c !== LBRACKET && c !== RBRACKET) badChar(text, i, 'text')
  }
  return {
    scheme,
    user: undefined,
    password: undefined,
    host: '',
    hostType: 'name',
    port: undefined,
    params: new Map(),
    headers: new Map(),
    raw: text
  }
}

// ---------------------------------------------------------------------------
// Serialising

/**
 * Serialise a URI. sip/sips and tel URIs are built from their fields,
 * escaping what the grammar requires (RFC 3261 §25.1), so that `parseUri`
 * returns the same fields; other schemes return `raw`. The fields must be
 * valid (non-empty user when present, a valid host, non-empty parameter
 * values when not null).
 */
export function formatUri (uri: SipUri): string {
  const scheme = uri.scheme
  if (scheme === 'sip' || scheme === 'sips') {
    let s = scheme + ':'
    if (uri.user !== undefined) {
      s += escapeFor(uri.user, USER_OUT)
      if (uri.password !== undefined) s += ':' + escapeFor(uri.password, PASSWORD)
      s += '@'
    }
    s += uri.host
    if (uri.port !== undefined) s += ':' + String(uri.port)
    for (const [name, value] of uri.params) {
      s += ';' + escapeFor(name, PARAMCHAR)
      if (value !== null) s += '=' + escapeFor(value, PARAMCHAR)
    }
    let sep = '?'
    for (const [name, value] of uri.headers) {
      s += sep + escapeFor(name, HNV) + '=' + escapeFor(value, HNV)
      sep = '&'
    }
    return s
  }
  if (scheme === 'tel') {
    let s = 'tel:' + (uri.user ?? '')
    for (const [name, value] of uri.params) {
      s += ';' + name
      if (value !== null) s += '=' + escapeFor(value, name === 'isub' ? URIC : PARAMCHAR)
    }
    return s
  }
  return uri.raw
}

// ---------------------------------------------------------------------------
// Comparison

function lowerEquals (a: string, b: string): boolean {
  if (a.length !== b.length) return false
  if (a === b) return true
  return a.toLowerCase() === b.toLowerCase()
}

/** Parameter value equality; `null` (a flag) only equals `null`. */
function valueEquals (a: string | null, b: string | null, caseSensitive: boolean): boolean {
  if (a === null || b === null) return a === b
  return caseSensitive ? a === b : lowerEquals(a, b)
}

/**
 * Host equality: case-insensitive, and IP literals compared by value
 * (RFC 5954 clarifies §19.1.4: `[::ffff:192.0.2.128]` equals `[::ffff:c000:280]`).
 */
function hostEquals (a: string, b: string): boolean {
  if (lowerEquals(a, b)) return true
  const ta = hostTypeOf(a)
  if (ta === undefined || ta === 'name' || ta !== hostTypeOf(b)) return false
  if (ta === 'ipv4') {
    const pa = a.split('.')
    const pb = b.split('.')
    for (let k = 0; k < 4; k++) if (Number(pa[k]) !== Number(pb[k])) return false
    return true
  }
  const wa: number[] = []
  const wb: number[] = []
  ipv6Words(a, 1, a.length - 1, wa)
  ipv6Words(b, 1, b.length - 1, wb)
  for (let k = 0; k < 8; k++) if (wa[k] !== wb[k]) return false
  return true
}

function headersEqual (a: Map<string, string>, b: Map<string, string>): boolean {
  if (a.size !== b.size) return false
  if (a.size === 0) return true
  // Header names are case-insensitive (RFC 3261 §19.1.4); values must match exactly.
  const lower = new Map<string, string>()
  for (const [name, value] of b) lower.set(name.toLowerCase(), value)
  if (lower.size !== a.size) return false
  for (const [name, value] of a) {
    if (lower.get(name.toLowerCase()) !== value) return false
  }
  return true
}

function sipEquals (a: SipUri, b: SipUri): boolean {
  // RFC 3261 §19.1.4: userinfo is compared case-sensitively after unescaping;
  // an absent port is not the default port (sip:bob@biloxi.com ≠ sip:bob@biloxi.com:5060).
  if (a.user !== b.user || a.password !== b.password || a.port !== b.port) return false
  if (!hostEquals(a.host, b.host)) return false
  // user, ttl, method, maddr and transport must match when present in either URI.
  for (const name of STRICT_PARAMS) {
    const va = a.params.get(name)
    const vb = b.params.get(name)
    if (va === undefined && vb === undefined) continue
    if (va === undefined || vb === undefined) return false
    if (name === 'maddr' && va !== null && vb !== null) {
      if (!hostEquals(va, vb)) return false
    } else if (!valueEquals(va, vb, name === 'method')) {
      // Methods are case-sensitive (RFC 3261 §7.1); the other values are tokens or hosts.
      return false
    }
  }
  // Any other parameter counts only when present in both URIs.
  for (const [name, va] of a.params) {
    if (STRICT_PARAMS.includes(name)) continue
    const vb = b.params.get(name)
    if (vb !== undefined && !valueEquals(va, vb, false)) return false
  }
  // Header components are never ignored.
  return headersEqual(a.headers, b.headers)
}

function withoutSeparators (s: string): string {
  let out = ''
  for (let i = 0; i < s.length; i++) {
    if (!inClass(VISUAL_SEPARATOR, s.charCodeAt(i))) out += s[i]
  }
  return out.toLowerCase()
}

/** RFC 3966 §4: numbers without visual separators, same parameter names, case-insensitive values. */
function telEquals (a: SipUri, b: SipUri): boolean {
  if (withoutSeparators(a.user ?? '') !== withoutSeparators(b.user ?? '')) return false
  if (a.params.size !== b.params.size) return false
  for (const [name, va] of a.params) {
    const vb = b.params.get(name)
    if (vb === undefined) return false
    if (va === null || vb === null) {
      if (va !== vb) return false
    } else if (name === 'phone-context' && va.charCodeAt(0) === PLUS) {
      if (withoutSeparators(va) !== withoutSeparators(vb)) return false
    } else if (!lowerEquals(va, vb)) {
      return false
    }
  }
  return true
}

/**
 * Compare two URIs per RFC 3261 §19.1.4 (sip/sips), RFC 3966 §4 (tel), or
 * as text after the scheme for other schemes. sip and sips URIs are never
 * equal; parameter order does not matter.
 *
 * @throws {SipParseError} when a string argument is not a valid URI.
 */
export function uriEquals (a: string | SipUri, b: string | SipUri): boolean {
  const x = typeof a === 'string' ? parseUri(a) : a
  const y = typeof b === 'string' ? parseUri(b) : b
  if (!lowerEquals(x.scheme, y.scheme)) return false
  const scheme = x.scheme.toLowerCase()
  if (scheme === 'sip' || scheme === 'sips') return sipEquals(x, y)
  if (scheme === 'tel') return telEquals(x, y)
  return x.raw.slice(x.raw.indexOf(':') + 1) === y.raw.slice(y.raw.indexOf(':') + 1)
}
