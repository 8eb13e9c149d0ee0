/**
 * Character-class lookup tables for the SIP grammar (RFC 3261 §25.1).
 *
 * Each table is a `Uint8Array(128)` indexed by char code: 1 means the
 * character belongs to the class. Non-ASCII characters belong to no class, so
 * test with `c < 128 && TABLE[c] === 1` (see {@link inClass}). Scanning char
 * codes against a table keeps RegExp off the per-message path.
 */

function table (chars: string, ...bases: Uint8Array[]): Uint8Array {
  const t = new Uint8Array(128)
  for (const base of bases) {
    for (let c = 0; c < 128; c++) if (base[c] === 1) t[c] = 1
  }
  for (let i = 0; i < chars.length; i++) t[chars.charCodeAt(i)] = 1
  return t
}

function range (from: string, to: string): string {
  let s = ''
  for (let c = from.charCodeAt(0); c <= to.charCodeAt(0); c++) s += String.fromCharCode(c)
  return s
}

/** RFC 5234 B.1: `ALPHA = %x41-5A / %x61-7A`. */
export const ALPHA = table(range('A', 'Z') + range('a', 'z'))

/** RFC 5234 B.1: `DIGIT = %x30-39`. */
export const DIGIT = table(range('0', '9'))

/** RFC 5234 B.1: `HEXDIG`, both cases (RFC 3261 §25.1 says hex is case-insensitive). */
export const HEX = table('abcdefABCDEF', DIGIT)

/** RFC 3261 §25.1: `alphanum = ALPHA / DIGIT`. */
export const ALPHANUM = table('', ALPHA, DIGIT)

/** RFC 3261 §25.1: `mark = "-" / "_" / "." / "!" / "~" / "*" / "'" / "(" / ")"`. */
export const MARK = table("-_.!~*'()")

/** RFC 3261 §25.1: `unreserved = alphanum / mark`. */
export const UNRESERVED = table('', ALPHANUM, MARK)

/** RFC 3261 §25.1: `reserved = ";" / "/" / "?" / ":" / "@" / "&" / "=" / "+" / "$" / ","`. */
export const RESERVED = table(';/?:@&=+$,')

/**
 * RFC 3261 §25.1: `token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")`.
 * Methods, header names, transport names and parameter names are tokens.
 */
export const TOKEN = table("-.!%*_+`'~", ALPHANUM)

/**
 * RFC 3261 §25.1: `word = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" /
 * "(" / ")" / "<" / ">" / ":" / "\" / DQUOTE / "/" / "[" / "]" / "?" / "{" / "}")` (Call-ID).
 */
export const WORD = table('()<>:\\"/[]?{}', TOKEN)

/** RFC 3261 §25.1: `user-unreserved = "&" / "=" / "+" / "$" / "," / ";" / "?" / "/"`. */
export const USER_UNRESERVED = table('&=+$,;?/')

/**
 * Characters allowed unescaped in a SIP-URI user part: `user = 1*(unreserved / escaped /
 * user-unreserved)` (RFC 3261 §25.1). `#` is added because `userinfo` may also be a
 * `telephone-subscriber` (RFC 3261 §19.1.1, RFC 2806 `dtmf-digit`), as in `sip:*72#@host`.
 */
export const USER = table('#', UNRESERVED, USER_UNRESERVED)

/** RFC 3261 §25.1: `password = *(unreserved / escaped / "&" / "=" / "+" / "$" / ",")`. */
export const PASSWORD = table('&=+$,', UNRESERVED)

/** RFC 3261 §25.1: `param-unreserved = "[" / "]" / "/" / ":" / "&" / "+" / "$"`. */
export const PARAM_UNRESERVED = table('[]/:&+$')

/** RFC 3261 §25.1: `paramchar = param-unreserved / unreserved / escaped` (without the escape). */
export const PARAMCHAR = table('', PARAM_UNRESERVED, UNRESERVED)

/** RFC 3261 §25.1: `hnv-unreserved = "[" / "]" / "/" / "?" / ":" / "+" / "$"`. */
export const HNV_UNRESERVED = table('[]/?:+$')

/** RFC 3261 §25.1: `hname` / `hvalue` = `*(hnv-unreserved / unreserved / escaped)` (without the escape). */
export const HNV = table('', HNV_UNRESERVED, UNRESERVED)

/** RFC 3261 §25.1: `uric = reserved / unreserved / escaped` (without the escape), for absoluteURI. */
export const URIC = table('', RESERVED, UNRESERVED)

/** RFC 3261 §25.1: `scheme = ALPHA *(ALPHA / DIGIT / "+" / "-" / ".")` (after the first character). */
export const SCHEME = table('+-.', ALPHANUM)

/** RFC 3261 §25.1: `hostname` characters: `alphanum`, `-` and the label separator `.`. */
export const HOSTNAME = table('-.', ALPHANUM)

/** RFC 3966 §3: `visual-separator = "-" / "." / "(" / ")"`. */
export const VISUAL_SEPARATOR = table('-.()')

/** RFC 3966 §3: `phonedigit-hex = HEXDIG / "*" / "#" / [visual-separator]` (local numbers). */
export const PHONEDIGIT_HEX = table('*#', HEX, VISUAL_SEPARATOR)

/** RFC 3966 §3: `pname = 1*(alphanum / "-")` (tel URI parameter names). */
export const TEL_PNAME = table('-', ALPHANUM)

/** Whether char code `c` belongs to the class `t`. */
export function inClass (t: Uint8Array, c: number): boolean {
  return c < 128 && t[c] === 1
}

/** Value of a hex digit char code, or -1. */
export function hexValue (c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30
  const l = c | 0x20
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10
  return -1
}
