/**
 * Header value grammars (RFC 3261 §25.1 and §20) over decoded header value
 * strings. Every function scans char codes; none uses a RegExp. Offsets in
 * errors are relative to the value string; the message accessor rebases them.
 */
import { decodeText } from './bytes.js'
import { SipParseError, quote } from './errors.js'
import { hostTypeOf } from './uri.js'
import type { AddressHeader, Contact, CSeq, DigestCredentials, NameAddr, Params, Via } from './types.js'

const SP = 0x20
const HT = 0x09
const DQUOTE = 0x22
const BACKSLASH = 0x5c
const LAQUOT = 0x3c
const RAQUOT = 0x3e
const SEMI = 0x3b
const COMMA = 0x2c
const EQUAL = 0x3d
const COLON = 0x3a
const SLASH = 0x2f
const LBRACKET = 0x5b
const RBRACKET = 0x5d
const CR = 0x0d
const LF = 0x0a

/** token chars, RFC 3261 §25.1: alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" */
export const IS_TOKEN = new Uint8Array(256)
for (let c = 0x30; c <= 0x39; c++) IS_TOKEN[c] = 1
for (let c = 0x41; c <= 0x5a; c++) IS_TOKEN[c] = 1
for (let c = 0x61; c <= 0x7a; c++) IS_TOKEN[c] = 1
for (const ch of "-.!%*_+`'~") IS_TOKEN[ch.charCodeAt(0)] = 1

/** Characters of an IPv6 address (RFC 3986 §3.2.2), dotted IPv4 tail included. */
export const IS_IPV6 = new Uint8Array(256)
for (const ch of '0123456789abcdefABCDEF:.') IS_IPV6[ch.charCodeAt(0)] = 1

/**
 * End (past `]`) of the IPv6 reference starting at `i` (which holds `[`), or
 * -1 when it is unterminated or not an IPv6 address: the scan stops at the
 * first character an address cannot hold, so a missing `]` never swallows
 * the parameters after it.
 */
export function ipv6RefEnd (s: string, i: number, end: number): number {
  let j = i + 1
  while (j < end && IS_IPV6[s.charCodeAt(j)] === 1) j++
  if (j >= end || s.charCodeAt(j) !== RBRACKET || hostTypeOf(s.slice(i, j + 1)) !== 'ipv6') return -1
  return j + 1
}

function isWs (c: number): boolean {
  return c === SP || c === HT || c === CR || c === LF
}

function skipWs (s: string, i: number, end: number): number {
  while (i < end && isWs(s.charCodeAt(i))) i++
  return i
}

function trimEnd (s: string, start: number, end: number): number {
  while (end > start && isWs(s.charCodeAt(end - 1))) end--
  return end
}

function stripWs (s: string): string {
  let out = ''
  for (let i = 0; i < s.length; i++) if (!isWs(s.charCodeAt(i))) out += s[i]
  return out
}

/** True when `s` is a non-empty token. */
export function isToken (s: string): boolean {
  if (s.length === 0) return false
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c > 0xff || IS_TOKEN[c] === 0) return false
  }
  return true
}

/**
 * Split a list header value on top-level commas: commas inside quoted strings
 * or `<...>` do not separate elements (RFC 3261 §7.3.1). Empty elements are
 * dropped only when `keepEmpty` is false.
 */
export function splitList (s: string, keepEmpty = false): string[] {
  const r = splitListRanges(s, keepEmpty)
  const out: string[] = []
  for (let j = 0; j < r.length; j += 2) out.push(r[j] === 0 && r[j + 1] === s.length ? s : s.slice(r[j], r[j + 1]))
  return out
}

/**
 * Element ranges of a list value, as splitList cuts them: `[start0, end0,
 * start1, end1, ...]` (trimmed), so that errors can point into the value.
 */
export function splitListRanges (s: string, keepEmpty = false): number[] {
  const out: number[] = []
  let start = 0
  let inQuote = false
  let inAngle = false
  const n = s.length
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i)
    if (inQuote) {
      if (c === BACKSLASH) i++
      else if (c === DQUOTE) inQuote = false
    } else if (c === DQUOTE) {
      inQuote = true
    } else if (c === LAQUOT) {
      inAngle = true
    } else if (c === RAQUOT) {
      inAngle = false
    } else if (c === COMMA && !inAngle) {
      pushRange(out, s, start, i, keepEmpty)
      start = i + 1
    }
  }
  pushRange(out, s, start, n, keepEmpty)
  return out
}

function pushRange (out: number[], s: string, start: number, end: number, keepEmpty: boolean): void {
  start = skipWs(s, start, end)
  end = trimEnd(s, start, end)
  if (end > start || keepEmpty) out.push(start, end)
}

/** Read a quoted-string starting at `i` (which holds the DQUOTE); returns [value, indexAfter]. */
export function readQuoted (s: string, i: number, end: number, what: string): [string, number] {
  let out = ''
  let from = i + 1
  for (let j = i + 1; j < end; j++) {
    const c = s.charCodeAt(j)
    if (c === BACKSLASH) {
      // RFC 3261 §25.1 quoted-pair: "\" followed by any char except CR/LF.
      out += s.slice(from, j)
      from = j + 1
      j++
    } else if (c === DQUOTE) {
      return [out + s.slice(from, j), j + 1]
    }
  }
  throw new SipParseError(`unterminated quoted string in ${what}`, i, 'SIP_ERR_UNTERMINATED_QUOTE')
}

/** Flat parameter list `[name, value, name, value, ...]`; a flag's value is null. */
export type FlatParams = Array<string | null>

/** A Map view of a flat parameter list. */
export function paramsToMap (flat: FlatParams): Params {
  const m: Params = new Map()
  for (let i = 0; i < flat.length; i += 2) m.set(flat[i] as string, flat[i + 1]!)
  return m
}

/** Value of a parameter in a flat list: undefined when absent, null for a flag. */
export function flatParam (flat: FlatParams, name: string): string | null | undefined {
  for (let i = 0; i < flat.length; i += 2) if (flat[i] === name) return flat[i + 1]
  return undefined
}

function lowerName (s: string, start: number, end: number): string {
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i)
    if (c >= 0x41 && c <= 0x5a) return s.slice(start, end).toLowerCase()
  }
  return s.slice(start, end)
}

/**
 * Parse `;name[=value]` parameters from `i` up to `end` into `out` (names
 * lower-cased). Values may be tokens, hosts (IPv6 references included) or
 * quoted strings. Returns the index where parsing stopped. `latin1`: `s`
 * holds one char per received byte, so quoted values are decoded as UTF-8
 * (RFC 3261 §25.1 qdtext includes UTF8-NONASCII).
 */
export function parseParams (s: string, i: number, end: number, out: FlatParams, what: string, latin1 = false): number {
  for (;;) {
    i = skipWs(s, i, end)
    if (i >= end) return i
    if (s.charCodeAt(i) !== SEMI) {
      throw new SipParseError(`unexpected ${quote(s.slice(i, i + 20))} in ${what} parameters`, i, 'SIP_ERR_BAD_PARAM')
    }
    i = skipWs(s, i + 1, end)
    const nameStart = i
    while (i < end && IS_TOKEN[s.charCodeAt(i)] === 1) i++
    if (i === nameStart) throw new SipParseError(`empty parameter name in ${what}`, i, 'SIP_ERR_BAD_PARAM')
    const name = lowerName(s, nameStart, i)
    i = skipWs(s, i, end)
    if (i < end && s.charCodeAt(i) === EQUAL) {
      i = skipWs(s, i + 1, end)
      if (i < end && s.charCodeAt(i) === DQUOTE) {
        const [v, after] = readQuoted(s, i, end, what)
        out.push(name, latin1 ? decodeText(v) : v)
        i = after
      } else {
        const vStart = i
        // gen-value = token / host / quoted-string; host may be an IPv6 reference.
        while (i < end) {
          const c = s.charCodeAt(i)
          if (c === LBRACKET) {
            const close = ipv6RefEnd(s, i, end)
            if (close < 0) throw new SipParseError(`invalid IPv6 reference in ${what} parameter ${name}`, i, 'SIP_ERR_BAD_PARAM')
            i = close
            continue
          }
          if (c === COLON || IS_TOKEN[c] === 1) { i++; continue }
          break
        }
        if (i === vStart) throw new SipParseError(`empty value for parameter ${name} in ${what}`, i, 'SIP_ERR_BAD_PARAM')
        out.push(name, s.slice(vStart, i))
      }
    } else {
      out.push(name, null)
    }
  }
}

/** Tag state of a name-addr view read from the bytes: taken from the parameter list, absent, or cut (cached). */
export const TAG_FROM_LIST = -1
export const TAG_NONE = -2
const TAG_CUT = -3

/**
 * The parts of a name-addr a proxy seldom reads (display name, parameter
 * list): a view over the message text makes them on first read, so that the
 * view itself stays small (it is made for From, To and every Route).
 */
interface NameAddrRest {
  displayName: string | undefined
  /** False while displayName is still to be cut from the text. */
  dnDone: boolean
  flat: FlatParams | undefined
  params: Params | undefined
}

/**
 * A parsed name-addr. A view from the bytes grammar (ParsedNameAddr.lazy)
 * has been checked whole but keeps offsets into the message text: the URI,
 * tag and raw text are cut when read, and the display name and parameters
 * are read again from the (checked) text when asked for.
 */
export class ParsedNameAddr implements NameAddr {
  // Fields are set once, in the constructor: no initialisers (they would
  // store every field twice), and as few as the hot reads need (measured
  // +3-4% on parse-then-read with 12 fields instead of 19).
  /** The text the offsets point into (the message head), or the element itself. */
  #text: string
  /** The element, once cut from [#rawStart, #rawEnd) of #text. */
  #raw: string | undefined
  #rawStart: number
  #rawEnd: number
  #uri: string | undefined
  #uriStart: number
  #uriEnd: number
  #tag: string | undefined
  /** >= 0: the tag at [#tagStart, #tagEnd) of #text, pending; else TAG_NONE, TAG_FROM_LIST or TAG_CUT. */
  #tagStart: number
  #tagEnd: number
  #rest: NameAddrRest | undefined

  /**
   * @internal Use eager() or lazy(). The element is [rawStart, rawEnd) of
   * `text`, the URI `uri` or [uriStart, uriEnd) of it.
   */
  constructor (text: string, rawStart: number, rawEnd: number, uri: string | undefined, uriStart: number, uriEnd: number,
    tagStart: number, tagEnd: number, rest: NameAddrRest | undefined) {
    this.#text = text
    this.#raw = rawStart === 0 && rawEnd === text.length ? text : undefined
    this.#rawStart = rawStart
    this.#rawEnd = rawEnd
    this.#uri = uri
    this.#uriStart = uriStart
    this.#uriEnd = uriEnd
    this.#tag = undefined
    this.#tagStart = tagStart
    this.#tagEnd = tagEnd
    this.#rest = rest
  }

  /** @internal A view with every part given (the string grammar). */
  static eager<T extends ParsedNameAddr> (this: new (text: string, rawStart: number, rawEnd: number, uri: string | undefined, uriStart: number, uriEnd: number,
    tagStart: number, tagEnd: number, rest: NameAddrRest | undefined) => T, displayName: string | undefined, uri: string, raw: string, flat: FlatParams): T {
    return new this(raw, 0, raw.length, uri, 0, 0, TAG_FROM_LIST, 0, { displayName, dnDone: true, flat, params: undefined })
  }

  /**
   * @internal A view over `text` (offsets in it, already checked by the
   * bytes grammar): the element at [rawStart, rawEnd), the URI at [uriStart,
   * uriEnd) (inside `<>` when text[uriStart - 1] is `<` past rawStart, the
   * display name before it), the parameters after it up to rawEnd unless
   * `flat` is given, the tag at [tagStart, tagEnd) or TAG_NONE / TAG_FROM_LIST.
   */
  static lazy<T extends ParsedNameAddr> (this: new (text: string, rawStart: number, rawEnd: number, uri: string | undefined, uriStart: number, uriEnd: number,
    tagStart: number, tagEnd: number, rest: NameAddrRest | undefined) => T,
  text: string, rawStart: number, rawEnd: number, uriStart: number, uriEnd: number, flat: FlatParams | undefined, tagStart: number, tagEnd: number): T {
    return new this(text, rawStart, rawEnd, undefined, uriStart, uriEnd, tagStart, tagEnd,
      flat === undefined ? undefined : { displayName: undefined, dnDone: false, flat, params: undefined })
  }

  /** The seldom read parts, made on first use (see NameAddrRest). */
  #more (): NameAddrRest {
    let r = this.#rest
    if (r === undefined) r = this.#rest = { displayName: undefined, dnDone: false, flat: undefined, params: undefined }
    return r
  }

  get displayName (): string | undefined {
    const r = this.#more()
    if (!r.dnDone) {
      r.displayName = this.#displayNameFromText()
      r.dnDone = true
    }
    return r.displayName
  }

  set displayName (v: string | undefined) {
    const r = this.#more()
    r.displayName = v
    r.dnDone = true
  }

  /** The display name of a lazy view: before `<` (tokens, or a quoted string), as parseNameAddr reads it. */
  #displayNameFromText (): string | undefined {
    const t = this.#text
    const lt = this.#uriStart - 1
    const s = this.#rawStart
    if (lt <= s || t.charCodeAt(lt) !== LAQUOT) return undefined
    if (t.charCodeAt(s) === DQUOTE) return decodeText(readQuoted(t, s, lt, 'name-addr')[0])
    const e = trimEnd(t, s, lt)
    return e > s ? decodeText(t.slice(s, e)) : undefined
  }

  get uri (): string {
    let u = this.#uri
    if (u === undefined) u = this.#uri = this.#text.substring(this.#uriStart, this.#uriEnd)
    return u
  }

  set uri (v: string) {
    this.#uri = v
  }

  /** @internal The parameters as a flat list (see FlatParams). */
  get flat (): FlatParams {
    const r = this.#more()
    let f = r.flat
    if (f === undefined) {
      // After the URI (and its `>`) to the element's end; the text was checked when the view was made.
      const t = this.#text
      const lt = this.#uriStart - 1
      const from = lt >= this.#rawStart && t.charCodeAt(lt) === LAQUOT ? this.#uriEnd + 1 : this.#uriEnd
      f = r.flat = []
      parseParams(t, from, this.#rawEnd, f, 'name-addr', true)
    }
    return f
  }

  /** The whole element as received (trimmed). */
  get raw (): string {
    let r = this.#raw
    if (r === undefined) r = this.#raw = this.#text.substring(this.#rawStart, this.#rawEnd)
    return r
  }

  get params (): Params {
    const r = this.#more()
    return r.params ??= paramsToMap(this.flat)
  }

  get tag (): string | undefined {
    const s = this.#tagStart
    if (s >= 0) {
      this.#tag = this.#text.substring(s, this.#tagEnd)
      this.#tagStart = TAG_CUT
      return this.#tag
    }
    if (s === TAG_CUT) return this.#tag
    if (s === TAG_NONE) return undefined
    const t = flatParam(this.flat, 'tag')
    return t === null ? undefined : t
  }
}

/** A parsed Contact element. */
export class ParsedContact extends ParsedNameAddr implements Contact {
  expires: number | undefined = undefined
  q: number | undefined = undefined
}

/**
 * Parse one name-addr / addr-spec element (From, To, Contact, Route, ...).
 * RFC 3261 §20.10: a URI that contains a comma, question mark or semicolon
 * must be enclosed in angle brackets; without them, `;` starts header params.
 */
export function parseNameAddr (s: string, what: string, latin1 = false): NameAddr {
  return parseNameAddrAs(s, what, false, latin1)
}

/**
 * `latin1`: `s` holds one char per received byte (the message's header
 * text), so display names and quoted values are decoded as UTF-8; otherwise
 * `s` is already text and is taken as it is.
 */
function parseNameAddrAs (s: string, what: string, contact: boolean, latin1: boolean): ParsedNameAddr {
  const end = trimEnd(s, 0, s.length)
  let i = skipWs(s, 0, end)
  const rawStart = i
  let displayName: string | undefined
  if (i >= end) throw new SipParseError(`empty ${what}`, i, 'SIP_ERR_BAD_ADDRESS')
  const first = s.charCodeAt(i)
  if (first === DQUOTE) {
    const [dn, after] = readQuoted(s, i, end, what)
    displayName = latin1 ? decodeText(dn) : dn
    i = skipWs(s, after, end)
    if (i >= end || s.charCodeAt(i) !== LAQUOT) {
      throw new SipParseError(`expected "<" after display name in ${what}`, i, 'SIP_ERR_BAD_ADDRESS')
    }
  } else if (first !== LAQUOT) {
    // A '<' before the first ';' starts the bracketed URI; a ';' first means
    // addr-spec with header params (whose quoted values may hold '<').
    let lt = i
    while (lt < end) {
      const c = s.charCodeAt(lt)
      if (c === LAQUOT || c === SEMI) break
      lt++
    }
    if (lt < end && s.charCodeAt(lt) === LAQUOT) {
      const dnEnd = trimEnd(s, i, lt)
      // display-name = *(token LWS): tokens separated by whitespace only; UTF-8
      // letters are taken too (not token characters, but common and unambiguous).
      for (let j = i; j < dnEnd; j++) {
        const c = s.charCodeAt(j)
        if (!(c === SP || c === HT || c >= 0x80 || IS_TOKEN[c] === 1)) {
          throw new SipParseError(`invalid character ${quote(s[j]!)} in display name of ${what}`, j, 'SIP_ERR_BAD_DISPLAY_NAME')
        }
      }
      displayName = dnEnd > i ? (latin1 ? decodeText(s.slice(i, dnEnd)) : s.slice(i, dnEnd)) : undefined
      i = lt
    } else {
      // addr-spec: the URI runs to the first ';' (header params), no spaces.
      let j = i
      while (j < end) {
        const c = s.charCodeAt(j)
        if (c === SEMI) break
        if (c === SP || c === HT) {
          const k = skipWs(s, j, end)
          if (k < end && s.charCodeAt(k) !== SEMI) {
            throw new SipParseError(`whitespace inside URI of ${what}`, j, 'SIP_ERR_BAD_ADDRESS')
          }
          break
        }
        if (c === 0x3f /* ? */ || c === COMMA) {
          throw new SipParseError(`URI with ${quote(s[j]!)} must be enclosed in <> in ${what}`, j, 'SIP_ERR_BAD_ADDRESS')
        }
        j++
      }
      const uri = s.slice(i, trimEnd(s, i, j))
      if (uri.indexOf(':') < 1) throw new SipParseError(`missing URI scheme in ${what}: ${quote(uri)}`, i, 'SIP_ERR_BAD_ADDRESS')
      const flat: FlatParams = []
      parseParams(s, j, end, flat, what, latin1)
      const raw = rawStart === 0 && end === s.length ? s : s.slice(rawStart, end)
      return contact ? ParsedContact.eager(undefined, uri, raw, flat) : ParsedNameAddr.eager(undefined, uri, raw, flat)
    }
  }
  // Here s[i] is '<'.
  const gt = s.indexOf('>', i + 1)
  if (gt < 0 || gt >= end) throw new SipParseError(`missing ">" in ${what}`, i, 'SIP_ERR_BAD_ADDRESS')
  let colon = -1
  for (let j = i + 1; j < gt; j++) {
    const c = s.charCodeAt(j)
    if (c === SP || c === HT || c === LAQUOT) throw new SipParseError(`invalid character ${quote(s[j]!)} inside <> in ${what}`, j, 'SIP_ERR_BAD_ADDRESS')
    if (c === COLON && colon < 0) colon = j
  }
  const uri = s.slice(i + 1, gt)
  if (colon <= i + 1) throw new SipParseError(`missing URI scheme in ${what}: ${quote(uri)}`, i + 1, 'SIP_ERR_BAD_ADDRESS')
  const flat: FlatParams = []
  parseParams(s, gt + 1, end, flat, what, latin1)
  const raw = rawStart === 0 && end === s.length ? s : s.slice(rawStart, end)
  return contact ? ParsedContact.eager(displayName, uri, raw, flat) : ParsedNameAddr.eager(displayName, uri, raw, flat)
}

/** From / To value with its tag. */
export function parseAddressHeader (s: string, what: string, latin1 = false): AddressHeader {
  return parseNameAddrAs(s, what, false, latin1) as ParsedNameAddr & AddressHeader
}

/** One Contact element (not `*`). */
export function parseContact (s: string, latin1 = false): Contact {
  const c = parseNameAddrAs(s, 'Contact', true, latin1) as ParsedContact
  contactParams(c, skipWs(s, 0, s.length))
  return c
}

/**
 * Set `expires` and `q` of a parsed Contact from its parameters (RFC 3261
 * §20.10). `at` is the offset of `c.raw` in the caller's error coordinates.
 */
export function contactParams (c: ParsedContact, at: number): void {
  const e = flatParam(c.flat, 'expires')
  if (e !== undefined && e !== null) c.expires = parseExpires(e)
  const q = flatParam(c.flat, 'q')
  if (q !== undefined && q !== null) {
    const v = parseQValue(q)
    if (v < 0) throw new SipParseError(`invalid q value ${quote(q)} in Contact`, at + paramValueOffset(c.raw, 'q'), 'SIP_ERR_BAD_PARAM')
    c.q = v
  }
}

/** RFC 3261 §25.1 qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ); -1 when malformed. */
export function parseQValue (q: string): number {
  const n = q.length
  const d0 = q.charCodeAt(0)
  if (n === 0 || (d0 !== 0x30 && d0 !== 0x31)) return -1
  if (n === 1) return d0 - 0x30
  if (q.charCodeAt(1) !== 0x2e || n > 5) return -1
  let frac = 0
  let scale = 1
  for (let i = 2; i < n; i++) {
    const d = q.charCodeAt(i) - 0x30
    if (d < 0 || d > 9 || (d0 === 0x31 && d !== 0)) return -1
    frac = frac * 10 + d
    scale *= 10
  }
  return d0 === 0x31 ? 1 : frac / scale
}

/** Offset of the value of header parameter `name` in a name-addr element's text (for error offsets); 0 when not found. */
function paramValueOffset (raw: string, name: string): number {
  let i = 0
  const n = raw.length
  if (raw.charCodeAt(0) === DQUOTE || raw.indexOf('<') >= 0) {
    // Skip the display name and the bracketed URI: parameters follow '>'.
    let inQuote = false
    for (; i < n; i++) {
      const c = raw.charCodeAt(i)
      if (inQuote) { if (c === BACKSLASH) i++; else if (c === DQUOTE) inQuote = false } else if (c === DQUOTE) inQuote = true
      else if (c === RAQUOT) break
    }
  }
  for (;;) {
    const semi = raw.indexOf(';', i)
    if (semi < 0) return 0
    let j = skipWs(raw, semi + 1, n)
    const ns = j
    while (j < n && IS_TOKEN[raw.charCodeAt(j)] === 1) j++
    if (raw.slice(ns, j).toLowerCase() === name) {
      j = skipWs(raw, j, n)
      if (raw.charCodeAt(j) === EQUAL) return skipWs(raw, j + 1, n)
    }
    i = j > semi ? j : semi + 1
  }
}

/** Parse an unsigned decimal number no larger than `max`. */
export function parseUint (s: string, what: string, max: number): number {
  const end = trimEnd(s, 0, s.length)
  const i = skipWs(s, 0, end)
  if (i === end) throw new SipParseError(`empty ${what}`, i, 'SIP_ERR_BAD_NUMBER')
  let n = 0
  for (let j = i; j < end; j++) {
    const d = s.charCodeAt(j) - 0x30
    if (d < 0 || d > 9) throw new SipParseError(`invalid ${what} ${quote(s.slice(i, end))}`, j, 'SIP_ERR_BAD_NUMBER')
    n = n * 10 + d
    if (n > max) throw new SipParseError(`${what} ${quote(s.slice(i, end))} is larger than ${max}`, i, 'SIP_ERR_NUMBER_TOO_LARGE')
  }
  return n
}

/**
 * An Expires header value or Contact `expires` parameter (RFC 3261 §20.19,
 * §20.10, §10.2.1.1): delta-seconds, a value above 2**32-1 read as 2**32-1
 * (MAY) and a malformed one, such as RFC 2543's absolute date, as 3600
 * (SHOULD; RFC 4475 §3.1.2.4 names it the default). Never throws: a registrar
 * binds a phone with a sloppy expires instead of refusing it with 400.
 */
export function parseExpires (s: string): number {
  const end = trimEnd(s, 0, s.length)
  const i = skipWs(s, 0, end)
  if (i === end) return 3600
  let n = 0
  for (let j = i; j < end; j++) {
    const d = s.charCodeAt(j) - 0x30
    if (d < 0 || d > 9) return 3600
    if (n < 0xffffffff) n = Math.min(n * 10 + d, 0xffffffff)
  }
  return n
}

/** CSeq = 1*DIGIT LWS Method (RFC 3261 §20.16: the number is below 2**31). */
export function parseCSeq (s: string): CSeq {
  const end = trimEnd(s, 0, s.length)
  let i = skipWs(s, 0, end)
  const numStart = i
  let seq = 0
  while (i < end) {
    const d = s.charCodeAt(i) - 0x30
    if (d < 0 || d > 9) break
    seq = seq * 10 + d
    i++
  }
  if (i === numStart) throw new SipParseError(`invalid CSeq ${quote(s)}`, numStart, 'SIP_ERR_BAD_CSEQ')
  if (seq > 0x7fffffff) throw new SipParseError(`CSeq number ${quote(s.slice(numStart, i))} is larger than ${0x7fffffff}`, numStart, 'SIP_ERR_NUMBER_TOO_LARGE')
  const mStart = skipWs(s, i, end)
  if (mStart === i) throw new SipParseError(`missing method in CSeq ${quote(s)}`, i, 'SIP_ERR_BAD_CSEQ')
  for (let j = mStart; j < end; j++) {
    if (IS_TOKEN[s.charCodeAt(j)] !== 1) throw new SipParseError(`invalid method ${quote(s.slice(mStart, end))} in CSeq`, j, 'SIP_ERR_BAD_CSEQ')
  }
  return { seq, method: internMethod(s, mStart, end) }
}

const METHODS = ['INVITE', 'ACK', 'BYE', 'CANCEL', 'OPTIONS', 'REGISTER', 'PRACK', 'SUBSCRIBE', 'NOTIFY', 'PUBLISH', 'INFO', 'REFER', 'MESSAGE', 'UPDATE']

/** Common method names as constants (no allocation), others sliced. */
export function internMethod (s: string, start: number, end: number): string {
  const len = end - start
  for (let m = 0; m < METHODS.length; m++) {
    const name = METHODS[m]!
    if (name.length !== len || name.charCodeAt(0) !== s.charCodeAt(start)) continue
    let i = 1
    while (i < len && name.charCodeAt(i) === s.charCodeAt(start + i)) i++
    if (i === len) return name
  }
  return s.slice(start, end)
}

/** The parameter list of a Via view, made on first read (see ParsedNameAddr's NameAddrRest). */
interface ViaRest {
  flat: FlatParams | undefined
  params: Params | undefined
}

/**
 * A parsed Via element. A view from the bytes grammar (ParsedVia.lazy) has
 * been checked whole, rport included, but keeps offsets into the message
 * text: host, branch, received and raw are cut when read, the parameter list
 * is read again from the checked text when asked for. Fields are set once,
 * in the constructor (see ParsedNameAddr).
 */
export class ParsedVia implements Via {
  protocol: string
  transport: string
  port: number | undefined
  rport: number | null | undefined
  /** The text the offsets point into (the message head), or the element itself. */
  #text: string
  /** The element, once cut from [#rawStart, #rawEnd) of #text. */
  #raw: string | undefined
  #rawStart: number
  #rawEnd: number
  /** The host, once cut from [#hostStart, #hostEnd) (pending while #hostStart >= 0; #hostEnd is ~end when it must be lower-cased). */
  #host: string | undefined
  #hostStart: number
  #hostEnd: number
  /** branch and received: pending at [start, end) while start >= 0. */
  #branch: string | undefined
  #branchStart: number
  #branchEnd: number
  #received: string | undefined
  #receivedStart: number
  #receivedEnd: number
  /** Where the parameters start in #text (they run to #rawEnd). */
  #pStart: number
  #rest: ViaRest | undefined

  /** @internal Use eager() or lazy(). */
  constructor (protocol: string, transport: string, port: number | undefined, rport: number | null | undefined, text: string, rawStart: number, rawEnd: number,
    host: string | undefined, hostStart: number, hostEnd: number, branch: string | undefined, branchStart: number, branchEnd: number,
    received: string | undefined, receivedStart: number, receivedEnd: number, pStart: number, rest: ViaRest | undefined) {
    this.protocol = protocol
    this.transport = transport
    this.port = port
    this.rport = rport
    this.#text = text
    this.#raw = rawStart === 0 && rawEnd === text.length ? text : undefined
    this.#rawStart = rawStart
    this.#rawEnd = rawEnd
    this.#host = host
    this.#hostStart = hostStart
    this.#hostEnd = hostEnd
    this.#branch = branch
    this.#branchStart = branchStart
    this.#branchEnd = branchEnd
    this.#received = received
    this.#receivedStart = receivedStart
    this.#receivedEnd = receivedEnd
    this.#pStart = pStart
    this.#rest = rest
  }

  /**
   * @internal A view with its host and parameter list given; the element is
   * `text`, or [rawStart, rawEnd) of it when rawStart >= 0.
   */
  static eager (protocol: string, transport: string, host: string, port: number | undefined, flat: FlatParams, text: string, rawStart = -1, rawEnd = 0): ParsedVia {
    const branch = flatParam(flat, 'branch')
    const received = flatParam(flat, 'received')
    const rp = flatParam(flat, 'rport')
    const rport = rp === null ? null : rp === undefined ? undefined : parseUint(rp, 'Via rport', 65535)
    return new ParsedVia(protocol, transport, port, rport, text, rawStart < 0 ? 0 : rawStart, rawStart < 0 ? text.length : rawEnd, host, -1, 0,
      branch === null ? '' : branch, -1, 0, received === null ? undefined : received, -1, 0, 0, { flat, params: undefined })
  }

  /**
   * @internal A view over `text` (offsets in it): the host at [hostStart,
   * hostEnd) (lower-cased when `hostLower`), the parameters in [pStart, pEnd)
   * (already checked: parseParams re-reads them on demand), branch and
   * received at their offsets (start -1: absent; branch -2: a flag, '').
   */
  static lazy (protocol: string, transport: string, text: string, hostStart: number, hostEnd: number, hostLower: boolean, port: number | undefined,
    pStart: number, pEnd: number, branchStart: number, branchEnd: number, receivedStart: number, receivedEnd: number, rport: number | null | undefined,
    rawStart: number, rawEnd: number): ParsedVia {
    return new ParsedVia(protocol, transport, port, rport, text, rawStart, rawEnd, undefined, hostStart, hostLower ? ~hostEnd : hostEnd,
      branchStart === -2 ? '' : undefined, branchStart, branchEnd, undefined, receivedStart, receivedEnd, pStart, undefined)
  }

  get host (): string {
    if (this.#hostStart >= 0) {
      const e = this.#hostEnd
      const h = this.#text.substring(this.#hostStart, e < 0 ? ~e : e)
      this.#host = e < 0 ? h.toLowerCase() : h
      this.#hostStart = -1
    }
    return this.#host!
  }

  set host (v: string) {
    this.#host = v
    this.#hostStart = -1
  }

  get branch (): string | undefined {
    if (this.#branchStart >= 0) {
      this.#branch = this.#text.substring(this.#branchStart, this.#branchEnd)
      this.#branchStart = -1
    }
    return this.#branch
  }

  set branch (v: string | undefined) {
    this.#branch = v
    this.#branchStart = -1
  }

  get received (): string | undefined {
    if (this.#receivedStart >= 0) {
      this.#received = this.#text.substring(this.#receivedStart, this.#receivedEnd)
      this.#receivedStart = -1
    }
    return this.#received
  }

  set received (v: string | undefined) {
    this.#received = v
    this.#receivedStart = -1
  }

  /** @internal The parameters as a flat list (see FlatParams). */
  get flat (): FlatParams {
    const r = this.#rest ??= { flat: undefined, params: undefined }
    let f = r.flat
    if (f === undefined) {
      // The text was checked when the view was made.
      f = r.flat = []
      parseParams(this.#text, this.#pStart, this.#rawEnd, f, 'Via', true)
    }
    return f
  }

  get params (): Params {
    const r = this.#rest ??= { flat: undefined, params: undefined }
    return r.params ??= paramsToMap(this.flat)
  }

  /** The Via element as received. */
  get raw (): string {
    let r = this.#raw
    if (r === undefined) r = this.#raw = this.#text.substring(this.#rawStart, this.#rawEnd)
    return r
  }
}

export function transportName (s: string, start: number, end: number): string {
  const len = end - start
  if (len === 3) {
    const a = s.charCodeAt(start) | 0x20
    const b = s.charCodeAt(start + 1) | 0x20
    const c = s.charCodeAt(start + 2) | 0x20
    if (a === 0x75 && b === 0x64 && c === 0x70) return 'UDP'
    if (a === 0x74 && b === 0x63 && c === 0x70) return 'TCP'
    if (a === 0x74 && b === 0x6c && c === 0x73) return 'TLS'
  }
  return s.slice(start, end).toUpperCase()
}

/** One Via element (RFC 3261 §20.42 / §25.1, RFC 3581 rport). */
export function parseVia (s: string, latin1 = false): Via {
  const end = trimEnd(s, 0, s.length)
  let i = skipWs(s, 0, end)
  const start = i
  // sent-protocol = protocol-name SLASH protocol-version SLASH transport, SLASH = SWS "/" SWS
  let protoEnd = 0
  let tStart = 0
  for (let k = 0; k < 3; k++) {
    i = skipWs(s, i, end)
    const t0 = i
    while (i < end && IS_TOKEN[s.charCodeAt(i)] === 1) i++
    if (i === t0) throw new SipParseError(`invalid sent-protocol in Via ${quote(s)}`, i, 'SIP_ERR_BAD_VIA')
    if (k === 1) protoEnd = i
    if (k === 2) tStart = t0
    if (k < 2) {
      i = skipWs(s, i, end)
      if (s.charCodeAt(i) !== SLASH) throw new SipParseError(`invalid sent-protocol in Via ${quote(s)}`, i, 'SIP_ERR_BAD_VIA')
      i++
    }
  }
  const transport = transportName(s, tStart, i)
  let protocol = s.slice(start, protoEnd)
  if (protocol !== 'SIP/2.0') protocol = stripWs(protocol)
  const afterProto = i
  i = skipWs(s, i, end)
  if (i === afterProto) throw new SipParseError(`missing space before sent-by in Via ${quote(s)}`, i, 'SIP_ERR_BAD_VIA')
  // sent-by = host [ COLON port ]
  const hStart = i
  let host: string
  if (s.charCodeAt(i) === LBRACKET) {
    const close = ipv6RefEnd(s, i, end)
    if (close < 0) throw new SipParseError(`invalid IPv6 reference in Via ${quote(s)}`, i, 'SIP_ERR_BAD_VIA')
    i = close
    host = s.slice(hStart, i).toLowerCase()
  } else {
    let upper = false
    while (i < end) {
      const c = s.charCodeAt(i)
      if (c === 0x2d || c === 0x2e || (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x7a) || c === 0x5f) i++
      else if (c >= 0x41 && c <= 0x5a) { upper = true; i++ } else break
    }
    if (i === hStart) throw new SipParseError(`missing sent-by host in Via ${quote(s)}`, i, 'SIP_ERR_BAD_VIA')
    host = upper ? s.slice(hStart, i).toLowerCase() : s.slice(hStart, i)
  }
  let port: number | undefined
  let j = skipWs(s, i, end)
  if (j < end && s.charCodeAt(j) === COLON) {
    j = skipWs(s, j + 1, end)
    const p0 = j
    let p = 0
    while (j < end) {
      const d = s.charCodeAt(j) - 0x30
      if (d < 0 || d > 9) break
      p = p * 10 + d
      j++
    }
    if (j === p0 || p > 65535) throw new SipParseError(`invalid port in Via ${quote(s)}`, p0, 'SIP_ERR_BAD_VIA')
    port = p
    i = j
  }
  const flat: FlatParams = []
  parseParams(s, i, end, flat, 'Via', latin1)
  return ParsedVia.eager(protocol, transport, host, port, flat, start === 0 && end === s.length ? s : s.slice(start, end))
}

/** Digest credentials (RFC 7616 §3.4, RFC 3261 §25.1 credentials). */
export function parseCredentials (s: string, what: string, latin1 = false): DigestCredentials {
  const end = trimEnd(s, 0, s.length)
  let i = skipWs(s, 0, end)
  const sStart = i
  while (i < end && IS_TOKEN[s.charCodeAt(i)] === 1) i++
  if (i === sStart) throw new SipParseError(`missing auth scheme in ${what}`, i, 'SIP_ERR_BAD_AUTH')
  const scheme = s.slice(sStart, i)
  const params = new Map<string, string>()
  for (;;) {
    i = skipWs(s, i, end)
    if (i >= end) break
    const nStart = i
    while (i < end && IS_TOKEN[s.charCodeAt(i)] === 1) i++
    if (i === nStart) throw new SipParseError(`invalid auth parameter in ${what}`, i, 'SIP_ERR_BAD_AUTH')
    const name = s.slice(nStart, i).toLowerCase()
    i = skipWs(s, i, end)
    if (s.charCodeAt(i) !== EQUAL) throw new SipParseError(`missing "=" after ${name} in ${what}`, i, 'SIP_ERR_BAD_AUTH')
    i = skipWs(s, i + 1, end)
    let value: string
    if (s.charCodeAt(i) === DQUOTE) {
      const [v, after] = readQuoted(s, i, end, what)
      value = latin1 ? decodeText(v) : v
      i = after
    } else {
      const vStart = i
      while (i < end && s.charCodeAt(i) !== COMMA && !isWs(s.charCodeAt(i))) i++
      value = s.slice(vStart, i)
    }
    params.set(name, value)
    i = skipWs(s, i, end)
    if (i < end) {
      if (s.charCodeAt(i) !== COMMA) throw new SipParseError(`expected "," between auth parameters in ${what}`, i, 'SIP_ERR_BAD_AUTH')
      i++
    }
  }
  return {
    scheme,
    username: params.get('username'),
    realm: params.get('realm'),
    nonce: params.get('nonce'),
    uri: params.get('uri'),
    response: params.get('response'),
    algorithm: params.get('algorithm'),
    cnonce: params.get('cnonce'),
    opaque: params.get('opaque'),
    qop: params.get('qop'),
    nc: params.get('nc'),
    params
  }
}
