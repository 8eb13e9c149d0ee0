/**
 * The hot header grammars (Via, name-addr and their parameters) scanning the
 * received bytes instead of strings. In V8 a `buf[i]` loop costs about a
 * third of a `str.charCodeAt(i)` loop (measured 0.8 vs 2.4 ns per char here),
 * and these grammars run on every message a proxy forwards. Strings are
 * taken as substrings of the message's header block, decoded once as latin1
 * (`head`, whose char offsets are the byte offsets minus `base`).
 *
 * Offsets in errors are relative to the value start `s`, as in grammar.ts.
 * Anything unusual (a quoted string with escapes) takes the string grammar.
 */
import { decodeText } from './bytes.js'
import { SipParseError, quote } from './errors.js'
import {
  IS_IPV6 as SHARED_IS_IPV6, IS_TOKEN as SHARED_IS_TOKEN, ParsedContact, ParsedNameAddr, ParsedVia, TAG_FROM_LIST, TAG_NONE, contactParams, parseUint, readQuoted, transportName
} from './grammar.js'
import { hostTypeOf } from './uri.js'
import { NA_I, PT_I, VIA_I, wasmDelta, wasmNameAddr, wasmOut, wasmVia } from './wasm-index.js'
import type { FlatParams } from './grammar.js'

// The tables as this module's own consts: V8 embeds a module's own const in
// optimised code, while an imported binding is loaded through its module
// cell (measured ~25% more per byte in a token scan).
const IS_TOKEN = SHARED_IS_TOKEN
const IS_IPV6 = SHARED_IS_IPV6

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

/** Via sent-by host bytes: 1 for `-` `.` `_`, digits and lower-case letters, 2 for upper-case letters. */
const VIA_HOST = new Uint8Array(256)
for (let c = 0x30; c <= 0x39; c++) VIA_HOST[c] = 1
for (let c = 0x61; c <= 0x7a; c++) VIA_HOST[c] = 1
for (let c = 0x41; c <= 0x5a; c++) VIA_HOST[c] = 2
VIA_HOST[0x2d] = VIA_HOST[0x2e] = VIA_HOST[0x5f] = 1

/** URI bytes inside `<>`: 0 ordinary, 1 `>`, 2 not allowed (SP, HT, `<`), 3 `:` (the scheme's end). */
const IN_ANGLE = new Uint8Array(256)
IN_ANGLE[RAQUOT] = 1
IN_ANGLE[SP] = IN_ANGLE[HT] = IN_ANGLE[LAQUOT] = 2
IN_ANGLE[COLON] = 3

/** gen-value bytes (RFC 3261 §25.1: token / host): 1 token or `:`, 2 `[` (an IPv6 reference). */
const PARAM_VALUE = new Uint8Array(256)
for (let c = 0; c < 256; c++) if (IS_TOKEN[c] === 1) PARAM_VALUE[c] = 1
PARAM_VALUE[COLON] = 1
PARAM_VALUE[LBRACKET] = 2

/** grammar.ts ipv6RefEnd over the bytes. */
function ipv6RefEndBytes (buf: Buffer, head: string, base: number, i: number, end: number): number {
  let j = i + 1
  while (j < end && IS_IPV6[buf[j]!] === 1) j++
  if (j >= end || buf[j] !== 0x5d || hostTypeOf(head.substring(i - base, j + 1 - base)) !== 'ipv6') return -1
  return j + 1
}

function isWs (c: number): boolean {
  return c === SP || c === HT || c === 0x0d || c === 0x0a
}

function skipWs (buf: Buffer, i: number, end: number): number {
  while (i < end && isWs(buf[i]!)) i++
  return i
}

function trimEnd (buf: Buffer, start: number, end: number): number {
  while (end > start && isWs(buf[end - 1]!)) end--
  return end
}

/**
 * Element ranges of a list header value in buf[s..e): top-level commas
 * (outside quotes and `<>`) separate elements, RFC 3261 §7.3.1. Returns
 * [start0, end0, start1, end1, ...], trimmed, empty elements dropped.
 */
export function splitListBytes (buf: Buffer, s: number, e: number): number[] {
  const out: number[] = []
  let from = s
  let inQuote = false
  let inAngle = false
  for (let i = s; i < e; i++) {
    const c = buf[i]!
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
      pushRange(out, buf, from, i)
      from = i + 1
    }
  }
  pushRange(out, buf, from, e)
  return out
}

/** Where the last element parse with `stopAtComma` stopped: the value's end, or the comma that ends the element. */
export let elementStop = 0

/** Start of the element firstElement() found last (a second return value, to avoid an allocation). */
export let firstElementStart = 0

/**
 * End of the first non-empty element of a list header value in buf[s..e)
 * (as splitListBytes would give it first), or -1 when there is none; its
 * start is left in firstElementStart.
 */
export function firstElement (buf: Buffer, s: number, e: number): number {
  let from = s
  let inQuote = false
  let inAngle = false
  for (let i = s; i < e; i++) {
    const c = buf[i]!
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
      const a = skipWs(buf, from, i)
      const b = trimEnd(buf, a, i)
      if (b > a) {
        firstElementStart = a
        return b
      }
      from = i + 1
    }
  }
  const a = skipWs(buf, from, e)
  const b = trimEnd(buf, a, e)
  if (b > a) {
    firstElementStart = a
    return b
  }
  return -1
}

function pushRange (out: number[], buf: Buffer, a: number, b: number): void {
  a = skipWs(buf, a, b)
  b = trimEnd(buf, a, b)
  if (b > a) out.push(a, b)
}

/**
 * The parameter names a proxy reads, as constant strings: no allocation per
 * message, and comparisons against them are pointer compares. Bytes compare
 * with `| 0x20` (ASCII case folding) where the name has a letter, exactly
 * elsewhere ("-", ".", "+").
 */
function knownParamName (buf: Buffer, a: number, b: number): string | undefined {
  const c0 = buf[a]! | 0x20
  switch (b - a) {
    case 1: return c0 === 0x71 ? 'q' : undefined
    case 2: {
      const c1 = buf[a + 1]! | 0x20
      if (c0 === 0x6c) return c1 === 0x72 ? 'lr' : undefined
      return c0 === 0x6f && c1 === 0x62 ? 'ob' : undefined
    }
    case 3:
      if (c0 !== 0x74) return undefined
      if ((buf[a + 1]! | 0x20) === 0x61 && (buf[a + 2]! | 0x20) === 0x67) return 'tag'
      return (buf[a + 1]! | 0x20) === 0x74 && (buf[a + 2]! | 0x20) === 0x6c ? 'ttl' : undefined
    case 5:
      if (c0 === 0x72) {
        return (buf[a + 1]! | 0x20) === 0x70 && (buf[a + 2]! | 0x20) === 0x6f && (buf[a + 3]! | 0x20) === 0x72 && (buf[a + 4]! | 0x20) === 0x74 ? 'rport' : undefined
      }
      return c0 === 0x6d && (buf[a + 1]! | 0x20) === 0x61 && (buf[a + 2]! | 0x20) === 0x64 && (buf[a + 3]! | 0x20) === 0x64 && (buf[a + 4]! | 0x20) === 0x72 ? 'maddr' : undefined
    case 6:
      if (c0 === 0x62) {
        return (buf[a + 1]! | 0x20) === 0x72 && (buf[a + 2]! | 0x20) === 0x61 && (buf[a + 3]! | 0x20) === 0x6e && (buf[a + 4]! | 0x20) === 0x63 && (buf[a + 5]! | 0x20) === 0x68 ? 'branch' : undefined
      }
      if (c0 === 0x72) {
        return (buf[a + 1]! | 0x20) === 0x65 && (buf[a + 2]! | 0x20) === 0x67 && buf[a + 3] === 0x2d && (buf[a + 4]! | 0x20) === 0x69 && (buf[a + 5]! | 0x20) === 0x64 ? 'reg-id' : undefined
      }
      return c0 === 0x6d && (buf[a + 1]! | 0x20) === 0x65 && (buf[a + 2]! | 0x20) === 0x74 && (buf[a + 3]! | 0x20) === 0x68 && (buf[a + 4]! | 0x20) === 0x6f && (buf[a + 5]! | 0x20) === 0x64 ? 'method' : undefined
    case 7:
      return c0 === 0x65 && (buf[a + 1]! | 0x20) === 0x78 && (buf[a + 2]! | 0x20) === 0x70 && (buf[a + 3]! | 0x20) === 0x69 && (buf[a + 4]! | 0x20) === 0x72 &&
        (buf[a + 5]! | 0x20) === 0x65 && (buf[a + 6]! | 0x20) === 0x73 ? 'expires' : undefined
    case 8:
      return c0 === 0x72 && (buf[a + 1]! | 0x20) === 0x65 && (buf[a + 2]! | 0x20) === 0x63 && (buf[a + 3]! | 0x20) === 0x65 && (buf[a + 4]! | 0x20) === 0x69 &&
        (buf[a + 5]! | 0x20) === 0x76 && (buf[a + 6]! | 0x20) === 0x65 && (buf[a + 7]! | 0x20) === 0x64 ? 'received' : undefined
    case 9:
      return c0 === 0x74 && (buf[a + 1]! | 0x20) === 0x72 && (buf[a + 2]! | 0x20) === 0x61 && (buf[a + 3]! | 0x20) === 0x6e && (buf[a + 4]! | 0x20) === 0x73 &&
        (buf[a + 5]! | 0x20) === 0x70 && (buf[a + 6]! | 0x20) === 0x6f && (buf[a + 7]! | 0x20) === 0x72 && (buf[a + 8]! | 0x20) === 0x74 ? 'transport' : undefined
    case 13:
      return buf[a] === 0x2b && (buf[a + 1]! | 0x20) === 0x73 && (buf[a + 2]! | 0x20) === 0x69 && (buf[a + 3]! | 0x20) === 0x70 && buf[a + 4] === 0x2e &&
        (buf[a + 5]! | 0x20) === 0x69 && (buf[a + 6]! | 0x20) === 0x6e && (buf[a + 7]! | 0x20) === 0x73 && (buf[a + 8]! | 0x20) === 0x74 &&
        (buf[a + 9]! | 0x20) === 0x61 && (buf[a + 10]! | 0x20) === 0x6e && (buf[a + 11]! | 0x20) === 0x63 && (buf[a + 12]! | 0x20) === 0x65 ? '+sip.instance' : undefined
  }
  return undefined
}

function lowerName (buf: Buffer, head: string, base: number, a: number, b: number): string {
  const known = knownParamName(buf, a, b)
  if (known !== undefined) return known
  for (let i = a; i < b; i++) {
    const c = buf[i]!
    if (c >= 0x41 && c <= 0x5a) return head.substring(a - base, b - base).toLowerCase()
  }
  return head.substring(a - base, b - base)
}

/**
 * Parameters are collected here and copied into an array of their exact
 * size: a `[]` grown by push() allocates room for 17 entries, and most
 * elements carry one or two parameters. Elements without any share NO_PARAMS
 * (the flat lists are never written after parsing).
 */
const scratch: FlatParams = []
const NO_PARAMS: FlatParams = []
let scratchLen = 0

/** The parameters collected in `scratch` up to `n` as their own array. */
function takeParams (n: number): FlatParams {
  if (n === 0) return NO_PARAMS
  if (n === 2) return [scratch[0]!, scratch[1]!]
  if (n === 4) return [scratch[0]!, scratch[1]!, scratch[2]!, scratch[3]!]
  return scratch.slice(0, n)
}

/**
 * Where a scan without `out` (see parseParamsBytes) found the values of the
 * parameters the views read at once: [tag, branch, received, rport] as
 * start/end byte pairs. A start of T_ABSENT: not present; T_FLAG: present
 * without a value; T_QUOTED: a quoted value (the view then takes the list).
 * Only the first of each name counts, as flatParam() finds it.
 */
export const tracked = new Int32Array(8)
export const T_TAG = 0
export const T_BRANCH = 2
export const T_RECEIVED = 4
export const T_RPORT = 6
export const T_ABSENT = -1
export const T_FLAG = -2
export const T_QUOTED = -3

function track (name: string | undefined, vs: number, ve: number): void {
  let k: number
  if (name === 'tag') k = T_TAG
  else if (name === 'branch') k = T_BRANCH
  else if (name === 'received') k = T_RECEIVED
  else if (name === 'rport') k = T_RPORT
  else return
  if (tracked[k] === T_ABSENT) {
    tracked[k] = vs
    tracked[k + 1] = ve
  }
}

/**
 * `;name[=value]` parameters in buf[i..end) into `out` from `scratchLen`; returns where parsing
 * stopped: `end`, or with `stopAtComma` the offset of a comma after a
 * parameter (the end of a list element, RFC 3261 §7.3.1). With `out` null
 * the parameters are checked, not collected: no string is made, and the
 * values views read at once are left in `tracked`.
 */
export function parseParamsBytes (buf: Buffer, head: string, base: number, s: number, i: number, end: number, out: FlatParams | null, what: string, stopAtComma = false): number {
  if (out === null) tracked[T_TAG] = tracked[T_BRANCH] = tracked[T_RECEIVED] = tracked[T_RPORT] = T_ABSENT
  for (;;) {
    i = skipWs(buf, i, end)
    if (i >= end) return i
    if (buf[i] !== SEMI) {
      if (stopAtComma && buf[i] === COMMA) return i
      throw new SipParseError(`unexpected ${quote(head.substring(i - base, Math.min(end, i + 20) - base))} in ${what} parameters`, i - s, 'SIP_ERR_BAD_PARAM')
    }
    i = skipWs(buf, i + 1, end)
    const nameStart = i
    while (i < end && IS_TOKEN[buf[i]!] === 1) i++
    if (i === nameStart) throw new SipParseError(`empty parameter name in ${what}`, i - s, 'SIP_ERR_BAD_PARAM')
    const nameEnd = i
    // Without `out`, only the names views read are needed (others are named in errors only).
    const name = out !== null ? lowerName(buf, head, base, nameStart, i) : knownParamName(buf, nameStart, i)
    i = skipWs(buf, i, end)
    if (i < end && buf[i] === EQUAL) {
      i = skipWs(buf, i + 1, end)
      if (i < end && buf[i] === DQUOTE) {
        // Quoted value: a substring when it has no escapes, else the string grammar.
        let j = i + 1
        let high = 0
        for (; j < end; j++) {
          const c = buf[j]!
          if (c === DQUOTE || c === BACKSLASH) break
          high |= c
        }
        if (j < end && buf[j] === DQUOTE) {
          // RFC 3261 §25.1: qdtext includes UTF8-NONASCII.
          if (out === null) {
            track(name, T_QUOTED, 0)
          } else {
            const v = head.substring(i + 1 - base, j - base)
            out[scratchLen++] = name!
            out[scratchLen++] = high < 0x80 ? v : decodeText(v)
          }
          i = j + 1
        } else {
          const text = head.substring(0, end - base)
          try {
            const [v, after] = readQuoted(text, i - base, end - base, what)
            if (out === null) {
              track(name, T_QUOTED, 0)
            } else {
              out[scratchLen++] = name!
              out[scratchLen++] = decodeText(v)
            }
            i = after + base
          } catch (err) {
            if (err instanceof SipParseError) throw new SipParseError(err.message, i - s, err.code)
            throw err
          }
        }
      } else {
        const vStart = i
        while (i < end) {
          const t = PARAM_VALUE[buf[i]!]
          if (t === 1) { i++; continue }
          if (t === 2) {
            const close = ipv6RefEndBytes(buf, head, base, i, end)
            if (close < 0) throw new SipParseError(`invalid IPv6 reference in ${what} parameter ${lowerName(buf, head, base, nameStart, nameEnd)}`, i - s, 'SIP_ERR_BAD_PARAM')
            i = close
            continue
          }
          break
        }
        if (i === vStart) throw new SipParseError(`empty value for parameter ${lowerName(buf, head, base, nameStart, nameEnd)} in ${what}`, i - s, 'SIP_ERR_BAD_PARAM')
        if (out === null) {
          track(name, vStart, i)
        } else {
          out[scratchLen++] = name!
          out[scratchLen++] = head.substring(vStart - base, i - base)
        }
      }
    } else if (out === null) {
      track(name, T_FLAG, 0)
    } else {
      out[scratchLen++] = name!
      out[scratchLen++] = null
    }
  }
}

/**
 * One name-addr / addr-spec element in buf[s..e) (see grammar.ts
 * parseNameAddr). With `stopAtComma` the parse ends at the comma after the
 * element's parameters (see elementStop); a comma anywhere else is an error.
 */
export function parseNameAddrBytes (buf: Buffer, head: string, base: number, s: number, e: number, what: string, contact: boolean, stopAtComma = false): ParsedNameAddr {
  if (!contact) {
    // The usual forms are parsed in wasm while the message is the one held there (wasm-index.ts).
    const stop = wasmNameAddr(buf, s, e, stopAtComma)
    if (stop >= 0) {
      const W = wasmOut
      const d = wasmDelta - base
      elementStop = stop
      const tagS = W[PT_I]!
      return ParsedNameAddr.lazy(head, W[NA_I]! + d, W[NA_I + 1]! + d, W[NA_I + 5]! + d, W[NA_I + 6]! + d, undefined, tagS >= 0 ? tagS + d : TAG_NONE, W[PT_I + 1]! + d)
    }
  }
  const end = trimEnd(buf, s, e)
  let i = skipWs(buf, s, end)
  const rawStart = i
  // The display name is checked here and cut from the text when read (ParsedNameAddr).
  if (i >= end) throw new SipParseError(`empty ${what}`, i - s, 'SIP_ERR_BAD_ADDRESS')
  const first = buf[i]!
  if (first === DQUOTE) {
    let j = i + 1
    for (; j < end; j++) {
      const c = buf[j]!
      if (c === DQUOTE || c === BACKSLASH) break
    }
    let after: number
    if (j < end && buf[j] === DQUOTE) {
      after = j + 1
    } else {
      const text = head.substring(0, end - base)
      try {
        after = readQuoted(text, i - base, end - base, what)[1] + base
      } catch (err) {
        if (err instanceof SipParseError) throw new SipParseError(err.message, i - s, err.code)
        throw err
      }
    }
    i = skipWs(buf, after, end)
    if (i >= end || buf[i] !== LAQUOT) throw new SipParseError(`expected "<" after display name in ${what}`, i - s, 'SIP_ERR_BAD_ADDRESS')
  } else if (first !== LAQUOT) {
    // A '<' before the first ';' starts the bracketed URI; a ';' first means
    // addr-spec with header params (whose quoted values may hold '<').
    let lt = i
    while (lt < end) {
      const c = buf[lt]!
      if (c === LAQUOT || c === SEMI) break
      lt++
    }
    if (lt < end && buf[lt] === LAQUOT) {
      const dnStop = trimEnd(buf, i, lt)
      // *(token LWS), plus UTF-8 letters (see grammar.ts).
      for (let j = i; j < dnStop; j++) {
        const c = buf[j]!
        if (!(IS_TOKEN[c] === 1 || c === SP || c === HT || c >= 0x80)) {
          throw new SipParseError(`invalid character ${quote(head[j - base]!)} in display name of ${what}`, j - s, 'SIP_ERR_BAD_DISPLAY_NAME')
        }
      }
      i = lt
    } else {
      let j = i
      let colon = -1
      while (j < end) {
        const c = buf[j]!
        if (c === SEMI) break
        if (c === SP || c === HT) {
          const k = skipWs(buf, j, end)
          if (k < end && buf[k] !== SEMI) throw new SipParseError(`whitespace inside URI of ${what}`, j - s, 'SIP_ERR_BAD_ADDRESS')
          break
        }
        if (c === 0x3f || c === COMMA) {
          throw new SipParseError(`URI with ${quote(String.fromCharCode(c))} must be enclosed in <> in ${what}`, j - s, 'SIP_ERR_BAD_ADDRESS')
        }
        if (c === COLON && colon < 0) colon = j
        j++
      }
      const uriEnd = trimEnd(buf, i, j)
      if (colon <= i || colon >= uriEnd) throw new SipParseError(`missing URI scheme in ${what}: ${quote(head.substring(i - base, uriEnd - base))}`, i - s, 'SIP_ERR_BAD_ADDRESS')
      return nameAddrView(buf, head, base, s, end, rawStart, i, uriEnd, j, what, contact, stopAtComma)
    }
  }
  // Here buf[i] is '<'. One table read per URI byte, and no bound check:
  // the scan stops at '>', SP, HT or '<' (a line ends in them or CRLF SP,
  // or at the end of the Buffer), and a stop at or past `end` means '>' is missing.
  let gt = i + 1
  let colon = -1
  let t: number | undefined
  for (;;) {
    t = IN_ANGLE[buf[gt]!]
    if (t === 0) {
      gt++
    } else if (t === 3 && gt < end) {
      if (colon < 0) colon = gt
      gt++
    } else {
      break
    }
  }
  if (gt >= end) throw new SipParseError(`missing ">" in ${what}`, i - s, 'SIP_ERR_BAD_ADDRESS')
  if (t !== 1) throw new SipParseError(`invalid character ${quote(String.fromCharCode(buf[gt]!))} inside <> in ${what}`, gt - s, 'SIP_ERR_BAD_ADDRESS')
  if (colon <= i + 1) throw new SipParseError(`missing URI scheme in ${what}: ${quote(head.substring(i + 1 - base, gt - base))}`, i + 1 - s, 'SIP_ERR_BAD_ADDRESS')
  return nameAddrView(buf, head, base, s, end, rawStart, i + 1, gt, gt + 1, what, contact, stopAtComma)
}

/**
 * The view of a name-addr whose URI is buf[uriStart..uriEnd) and whose
 * parameters start at `paramsFrom`: they are checked here, and collected
 * only for a Contact (its expires and q are read at once).
 */
function nameAddrView (buf: Buffer, head: string, base: number, s: number, end: number, rawStart: number,
  uriStart: number, uriEnd: number, paramsFrom: number, what: string, contact: boolean, stopAtComma: boolean): ParsedNameAddr {
  if (contact) {
    scratchLen = 0
    const stop = parseParamsBytes(buf, head, base, s, paramsFrom, end, scratch, what, stopAtComma)
    const flat = takeParams(scratchLen)
    elementStop = stop
    const rawEnd = stop < end ? trimEnd(buf, rawStart, stop) : end
    return ParsedContact.lazy(head, rawStart - base, rawEnd - base, uriStart - base, uriEnd - base, flat, TAG_FROM_LIST, 0)
  }
  const stop = parseParamsBytes(buf, head, base, s, paramsFrom, end, null, what, stopAtComma)
  elementStop = stop
  const rawEnd = stop < end ? trimEnd(buf, rawStart, stop) : end
  let tagStart = tracked[T_TAG]!
  let tagEnd = 0
  if (tagStart >= 0) {
    tagStart -= base
    tagEnd = tracked[T_TAG + 1]! - base
  } else {
    // A quoted tag value (not a token, but taken) is read from the parameter list.
    tagStart = tagStart === T_QUOTED ? TAG_FROM_LIST : TAG_NONE
  }
  return ParsedNameAddr.lazy(head, rawStart - base, rawEnd - base, uriStart - base, uriEnd - base, undefined, tagStart, tagEnd)
}

/** One Contact element in buf[s..e) (not `*`). */
export function parseContactBytes (buf: Buffer, head: string, base: number, s: number, e: number, stopAtComma = false): ParsedContact {
  const c = parseNameAddrBytes(buf, head, base, s, e, 'Contact', true, stopAtComma) as ParsedContact
  if (c.flat.length > 0) contactParams(c, skipWs(buf, s, e) - s)
  return c
}

/**
 * One Via element in buf[s..e) (RFC 3261 §20.42 / §25.1, RFC 3581). With
 * `stopAtComma`, buf[s..e) is a whole list value and the parse ends at the
 * comma after the first element (see elementStop): the caller's fast path
 * for the top Via, which falls back to splitting the list on any error.
 */
export function parseViaBytes (buf: Buffer, head: string, base: number, s: number, e: number, stopAtComma = false): ParsedVia {
  // The usual form is parsed in wasm while the message is the one held there (wasm-index.ts).
  const wstop = wasmVia(buf, s, e, stopAtComma)
  if (wstop >= 0) {
    const W = wasmOut
    const d = wasmDelta - base
    elementStop = wstop
    let rport: number | null | undefined
    const p0 = W[PT_I + 6]!
    if (p0 === T_FLAG) {
      rport = null
    } else if (p0 >= 0) {
      const p1 = W[PT_I + 7]! + wasmDelta
      rport = 0
      for (let k = p0 + wasmDelta; k < p1 && rport <= 65535; k++) {
        const c = buf[k]! - 0x30
        rport = c >= 0 && c <= 9 ? rport * 10 + c : 65536
      }
      if (rport > 65535) rport = parseUint(head.substring(p0 + d, p1 - base), 'Via rport', 65535)
    }
    const port = W[VIA_I + 7]!
    const b0 = W[PT_I + 2]!
    const r0 = W[PT_I + 4]!
    return ParsedVia.lazy('SIP/2.0', transportName(head, W[VIA_I + 2]! + d, W[VIA_I + 3]! + d), head, W[VIA_I + 4]! + d, W[VIA_I + 5]! + d, W[VIA_I + 6]! !== 0,
      port < 0 ? undefined : port, W[VIA_I + 8]! + d, wstop - base, b0 >= 0 ? b0 + d : b0, W[PT_I + 3]! + d, r0 >= 0 ? r0 + d : r0, W[PT_I + 5]! + d, rport,
      W[VIA_I]! + d, W[VIA_I + 1]! + d)
  }
  let end = trimEnd(buf, s, e)
  let i = skipWs(buf, s, end)
  const start = i
  let protoEnd = 0
  let tStart = 0
  let spaced = false
  // The usual sent-protocol, "SIP/2.0/" then the transport, read at once.
  let k = 0
  if (end - i > 8 && buf[i] === 0x53 && buf[i + 1] === 0x49 && buf[i + 2] === 0x50 && buf[i + 3] === SLASH &&
      buf[i + 4] === 0x32 && buf[i + 5] === 0x2e && buf[i + 6] === 0x30 && buf[i + 7] === SLASH && IS_TOKEN[buf[i + 8]!] === 1) {
    protoEnd = i + 7
    i += 8
    k = 2
  }
  for (; k < 3; k++) {
    const w = i
    i = skipWs(buf, i, end)
    if (i !== w) spaced = true
    const t0 = i
    while (i < end && IS_TOKEN[buf[i]!] === 1) i++
    if (i === t0) throw new SipParseError(`invalid sent-protocol in Via ${quote(head.substring(s - base, e - base))}`, i - s, 'SIP_ERR_BAD_VIA')
    if (k === 1) protoEnd = i
    if (k === 2) tStart = t0
    if (k < 2) {
      const w2 = i
      i = skipWs(buf, i, end)
      if (i !== w2) spaced = true
      if (buf[i] !== SLASH) throw new SipParseError(`invalid sent-protocol in Via ${quote(head.substring(s - base, e - base))}`, i - s, 'SIP_ERR_BAD_VIA')
      i++
    }
  }
  const transport = transportName(head, tStart - base, i - base)
  let protocol = !spaced && protoEnd - start === 7 && buf[start] === 0x53 && buf[start + 1] === 0x49 && buf[start + 2] === 0x50 &&
    buf[start + 4] === 0x32 && buf[start + 5] === 0x2e && buf[start + 6] === 0x30
    ? 'SIP/2.0'
    : head.substring(start - base, protoEnd - base)
  if (spaced) {
    let p = ''
    for (let j = 0; j < protocol.length; j++) if (!isWs(protocol.charCodeAt(j))) p += protocol[j]
    protocol = p
  }
  const afterProto = i
  i = skipWs(buf, i, end)
  if (i === afterProto) throw new SipParseError(`missing space before sent-by in Via ${quote(head.substring(s - base, e - base))}`, i - s, 'SIP_ERR_BAD_VIA')
  const hStart = i
  // The host is cut on read; IPv6 references and names with upper-case letters lower-cased then.
  let hostLower = true
  if (buf[i] === LBRACKET) {
    const close = ipv6RefEndBytes(buf, head, base, i, end)
    if (close < 0) throw new SipParseError(`invalid IPv6 reference in Via ${quote(head.substring(s - base, e - base))}`, i - s, 'SIP_ERR_BAD_VIA')
    i = close
  } else {
    let kinds = 0
    while (i < end) {
      const t = VIA_HOST[buf[i]!]!
      if (t === 0) break
      kinds |= t
      i++
    }
    hostLower = (kinds & 2) !== 0
    if (i === hStart) throw new SipParseError(`missing sent-by host in Via ${quote(head.substring(s - base, e - base))}`, i - s, 'SIP_ERR_BAD_VIA')
  }
  const hEnd = i
  let port: number | undefined
  let j = skipWs(buf, i, end)
  if (j < end && buf[j] === COLON) {
    j = skipWs(buf, j + 1, end)
    const p0 = j
    let p = 0
    while (j < end) {
      const d = buf[j]! - 0x30
      if (d < 0 || d > 9) break
      p = p * 10 + d
      j++
    }
    if (j === p0 || p > 65535) throw new SipParseError(`invalid port in Via ${quote(head.substring(s - base, e - base))}`, p0 - s, 'SIP_ERR_BAD_VIA')
    port = p
    i = j
  }
  const stop = parseParamsBytes(buf, head, base, s, i, end, null, 'Via', stopAtComma)
  elementStop = stop
  if (stop < end) end = trimEnd(buf, start, stop)
  const b0 = tracked[T_BRANCH]!
  const r0 = tracked[T_RECEIVED]!
  const p0 = tracked[T_RPORT]!
  if (b0 === T_QUOTED || r0 === T_QUOTED || p0 === T_QUOTED) {
    // A quoted branch, received or rport (not tokens, but taken): the view from the parameter list.
    scratchLen = 0
    parseParamsBytes(buf, head, base, s, i, stop, scratch, 'Via')
    const host = head.substring(hStart - base, hEnd - base)
    return ParsedVia.eager(protocol, transport, hostLower ? host.toLowerCase() : host, port, takeParams(scratchLen), head, start - base, end - base)
  }
  let rport: number | null | undefined
  if (p0 === T_FLAG) {
    rport = null
  } else if (p0 >= 0) {
    const p1 = tracked[T_RPORT + 1]!
    rport = 0
    for (let k = p0; k < p1 && rport <= 65535; k++) {
      const d = buf[k]! - 0x30
      rport = d >= 0 && d <= 9 ? rport * 10 + d : 65536
    }
    // Not a port: parseUint names the defect.
    if (rport > 65535) rport = parseUint(head.substring(p0 - base, p1 - base), 'Via rport', 65535)
  }
  return ParsedVia.lazy(protocol, transport, head, hStart - base, hEnd - base, hostLower, port, i - base, stop - base,
    b0 >= 0 ? b0 - base : b0, tracked[T_BRANCH + 1]! - base, r0 >= 0 ? r0 - base : r0, tracked[T_RECEIVED + 1]! - base, rport, start - base, end - base)
}
