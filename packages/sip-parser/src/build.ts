/**
 * Writing messages: new requests and responses, and forwarding edits that
 * splice the received bytes (the unchanged ranges are copied, only edited
 * header lines are written anew; nothing is re-serialised from objects).
 */
import { writeUtf8 } from './bytes.js'
import {
  H_CALL_ID, H_CONTENT_LENGTH, H_CSEQ, H_FROM, H_MAX_FORWARDS, H_RECORD_ROUTE, H_ROUTE, H_TIMESTAMP, H_TO, H_VIA,
  headerId
} from './header-names.js'
import { isToken, splitList } from './grammar.js'
import { quote } from './errors.js'
import type { SipMessage, SipRequest } from './message.js'

/** Reason phrases of RFC 3261 §21 and common extensions. */
const REASONS: Record<number, string> = {
  100: 'Trying', 180: 'Ringing', 181: 'Call Is Being Forwarded', 182: 'Queued', 183: 'Session Progress',
  200: 'OK', 202: 'Accepted', 300: 'Multiple Choices', 301: 'Moved Permanently', 302: 'Moved Temporarily',
  305: 'Use Proxy', 380: 'Alternative Service', 400: 'Bad Request', 401: 'Unauthorized', 402: 'Payment Required',
  403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 406: 'Not Acceptable',
  407: 'Proxy Authentication Required', 408: 'Request Timeout', 410: 'Gone', 413: 'Request Entity Too Large',
  414: 'Request-URI Too Long', 415: 'Unsupported Media Type', 416: 'Unsupported URI Scheme', 420: 'Bad Extension',
  421: 'Extension Required', 423: 'Interval Too Brief', 480: 'Temporarily Unavailable',
  481: 'Call/Transaction Does Not Exist', 482: 'Loop Detected', 483: 'Too Many Hops', 484: 'Address Incomplete',
  485: 'Ambiguous', 486: 'Busy Here', 487: 'Request Terminated', 488: 'Not Acceptable Here', 491: 'Request Pending',
  493: 'Undecipherable', 500: 'Server Internal Error', 501: 'Not Implemented', 502: 'Bad Gateway',
  503: 'Service Unavailable', 504: 'Server Time-out', 505: 'Version Not Supported', 513: 'Message Too Large',
  600: 'Busy Everywhere', 603: 'Decline', 604: 'Does Not Exist Anywhere', 606: 'Not Acceptable'
}

/** The standard reason phrase for a status code. */
export function reasonPhrase (status: number): string {
  return REASONS[status] ?? (status < 200 ? 'Provisional' : status < 300 ? 'Success' : status < 400 ? 'Redirect' : status < 500 ? 'Client Error' : status < 600 ? 'Server Error' : 'Global Failure')
}

/** Status lines with the standard reason phrase, by status, made once (100 Trying goes out for every INVITE). */
const STATUS_LINES: string[] = []

/** `SIP/2.0 <status> <standard reason>` CRLF; ASCII, so its length is its byte length. */
function statusLine (status: number): string {
  return STATUS_LINES[status] ??= 'SIP/2.0 ' + status + ' ' + reasonPhrase(status) + '\r\n'
}

/**
 * Text written into a header or start line must not hold CR or LF: it would
 * end the line early and let a caller-supplied value inject header lines.
 */
function line (s: string, what: string): string {
  // Two native searches: ~5x faster than a charCodeAt loop over a sliced string.
  if (s.indexOf('\r') !== -1 || s.indexOf('\n') !== -1) throw new TypeError(`${what} must not contain CR or LF: ${quote(s)}`)
  return s
}

function headerName (n: string): string {
  if (!isToken(n)) throw new TypeError(`invalid header name ${quote(n)}`)
  return n
}

function uriText (s: string, what: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c <= 0x20 || c === 0x7f) throw new TypeError(`${what} must not contain whitespace or control characters: ${quote(s)}`)
  }
  return s
}

/** Copies up to this many bytes are made by a loop (see Out#bytes). */
const SHORT_COPY = 32
/** Text up to this many characters is written by a loop when it is ASCII (see Out#str). */
const SHORT_TEXT = 32

/**
 * The slab small outputs are cut from, as Buffer.allocUnsafe cuts from its
 * pool, but 64 KiB instead of 8 KiB: a new pool per ~8 forwards cost 2-3% of
 * a stateless ACK (an ArrayBuffer made and later freed each time). A slab
 * lives as long as any Buffer cut from it; so does a pool.
 */
const SLAB_SIZE = 64 * 1024
let slab = new ArrayBuffer(0)
let slabUsed = 0

/** An uninitialised Buffer of `size` bytes (every byte is written by the caller). */
function outBuffer (size: number): Buffer {
  if (size > 4096) return Buffer.allocUnsafe(size)
  if (slabUsed + size > slab.byteLength) {
    slab = Buffer.allocUnsafeSlow(SLAB_SIZE).buffer
    slabUsed = 0
  }
  const b = Buffer.from(slab, slabUsed, size)
  // Eight-byte aligned, as Node's pool.
  slabUsed += (size + 7) & ~7
  return b
}

/**
 * One output buffer per message, sized by the caller from what it will
 * write (the copied byte ranges and Buffer.byteLength of the written text):
 * one allocation of the exact size, no regrowth, no subarray at the end.
 * `fit` stays as a guard, so a size planned short costs a copy, never bytes.
 */
class Out {
  buf: Buffer
  len = 0
  constructor (size: number) {
    this.buf = outBuffer(size)
  }

  fit (n: number): void {
    if (this.len + n <= this.buf.length) return
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 1.5, this.len + n) | 0)
    this.buf.copy(grown, 0, 0, this.len)
    this.buf = grown
  }

  /** Write `s` as UTF-8; `n`, when given, is its Buffer.byteLength. */
  str (s: string, n = s.length * 3): void {
    this.fit(n)
    const len = s.length
    if (len <= SHORT_TEXT) {
      // ASCII text (status lines, a Via, Content-Length) by a loop: the
      // native encoder is a call into C++ that costs more than the loop for
      // text this short. A non-ASCII character sends the whole text to it.
      const b = this.buf
      let o = this.len
      let i = 0
      for (; i < len; i++) {
        const c = s.charCodeAt(i)
        if (c >= 0x80) break
        b[o++] = c
      }
      if (i === len) {
        this.len = o
        return
      }
    }
    this.len += writeUtf8(this.buf, s, this.len)
  }

  /** `: N` and CRLF after a header name (N of 0..255, as Max-Forwards): bytes, no string. */
  colonNumberLine (v: number): void {
    this.fit(7)
    const b = this.buf
    let i = this.len
    b[i++] = 0x3a
    b[i++] = 0x20
    if (v >= 100) b[i++] = 0x30 + ((v / 100) | 0)
    if (v >= 10) b[i++] = 0x30 + (((v / 10) | 0) % 10)
    b[i++] = 0x30 + (v % 10)
    b[i++] = 0x0d
    b[i++] = 0x0a
    this.len = i
  }

  crlf (): void {
    this.fit(2)
    this.buf[this.len++] = 0x0d
    this.buf[this.len++] = 0x0a
  }

  bytes (src: Buffer, start: number, end: number): void {
    const n = end - start
    if (n <= 0) return
    this.fit(n)
    if (n <= SHORT_COPY) {
      // A short range by a loop: Buffer#copy of part of a Buffer makes a
      // Uint8Array view of it first (Node 20 _copyActual), garbage per call.
      const b = this.buf
      let o = this.len
      for (let i = start; i < end; i++) b[o++] = src[i]!
    } else {
      // A view of the range and TypedArray#set: what Buffer#copy does after its argument checks.
      this.buf.set(new Uint8Array(src.buffer, src.byteOffset + start, n), this.len)
    }
    this.len += n
  }

  done (): Buffer {
    return this.len === this.buf.length ? this.buf : this.buf.subarray(0, this.len)
  }
}

/**
 * Bytes ensureCrlf will add after copying [s, e) that ends a run of header
 * lines: 0 when it ends in CRLF, 1 for a bare LF (made CRLF), 2 when it
 * ends in neither (a datagram's end); 0 for an empty range (what was
 * written before it decides; it ends in CRLF but in rare cases, which
 * `fit` then covers).
 */
function crlfFix (buf: Buffer, s: number, e: number): number {
  if (e <= s) return 0
  if (buf[e - 1] === 0x0a) return e - 2 >= s && buf[e - 2] === 0x0d ? 0 : 1
  return 2
}

/**
 * Received/rport values to write into the top Via (RFC 3261 §18.2.1, RFC
 * 3581 §4). Written as given: the caller decides when they are due.
 */
export interface TopViaParams {
  /** Source address of the request; replaces an existing `received` or is appended. */
  received?: string
  /** Source port; written only into a Via that carries `rport` (RFC 3581 §4), in its place. */
  rport?: number
}

/** Options of createResponse. */
export interface ResponseOptions {
  /** To tag to add when the request's To has none (not for 100). */
  toTag?: string
  /** Extra header lines, in order. */
  headers?: ReadonlyArray<readonly [string, string]>
  /** Body; Content-Length is computed. */
  body?: Buffer | string
  /** Content-Type for the body. */
  contentType?: string
  /** received/rport to set on the top Via. */
  topViaParams?: TopViaParams
  /** Copy Record-Route (RFC 3261 §12.1.1, for dialog-creating responses by a UAS). */
  copyRecordRoute?: boolean
}

/**
 * Rewrite one Via element with received/rport (RFC 3581 §4: an `rport`
 * without value gets the source port, in place; `received` replaces an
 * existing one or is appended). Other parameters are copied as written.
 */
export function editViaElement (raw: string, p: TopViaParams): string {
  if (p.received !== undefined) uriText(p.received, 'received')
  let out = ''
  let wroteReceived = false
  let segStart = 0
  let first = true
  let inQuote = false
  const n = raw.length
  for (let i = 0; i <= n; i++) {
    const c = i < n ? raw.charCodeAt(i) : 0x3b
    if (inQuote) {
      if (c === 0x5c) i++
      else if (c === 0x22) inQuote = false
      continue
    }
    if (c === 0x22) { inQuote = true; continue }
    if (c !== 0x3b) continue
    const seg = raw.slice(segStart, i)
    segStart = i + 1
    if (first) {
      // sent-protocol and sent-by
      out = seg
      first = false
      continue
    }
    const eq = seg.indexOf('=')
    const name = (eq < 0 ? seg : seg.slice(0, eq)).trim().toLowerCase()
    if (name === 'received' && p.received !== undefined) {
      if (!wroteReceived) out += ';received=' + p.received
      wroteReceived = true
    } else if (name === 'rport' && p.rport !== undefined) {
      out += ';rport=' + p.rport
    } else {
      out += ';' + seg
    }
  }
  if (p.received !== undefined && !wroteReceived) out += ';received=' + p.received
  return out
}

function viaLine (msg: SipMessage, k: number, p: TopViaParams | undefined, first: boolean): string | undefined {
  if (!first || p === undefined || (p.received === undefined && p.rport === undefined)) return undefined
  const v = msg.valueAt(k)
  const parts = v.indexOf(',') >= 0 ? splitList(v) : [v]
  parts[0] = editViaElement(parts[0]!, p)
  return msg.nameAt(k) + ': ' + parts.join(', ') + '\r\n'
}

/**
 * Build a response to `req` (RFC 3261 §8.2.6): Via (all, in order), From,
 * To (with `toTag` when it has none), Call-ID and CSeq are copied, plus
 * Timestamp for 100 (§8.2.6.1).
 */
export function createResponse (req: SipRequest, status: number, reason?: string, opts: ResponseOptions = {}): Buffer {
  if (!Number.isInteger(status) || status < 100 || status > 699) throw new RangeError(`status must be an integer from 100 to 699, got ${status}`)
  const src = req.buf
  const first = reason === undefined ? statusLine(status) : 'SIP/2.0 ' + status + ' ' + line(reason, 'reason phrase') + '\r\n'
  const firstLen = reason === undefined ? first.length : Buffer.byteLength(first)
  let size = firstLen
  // Plan (editLines / editTexts / editLens): the lines to copy (text
  // undefined) or to write anew, so the output is sized once.
  let n = 0
  let firstVia = true
  for (let k = 0; k < req.headerCount; k++) {
    const id = req.idAt(k)
    let text: string | undefined
    if (id === H_VIA) {
      text = viaLine(req, k, opts.topViaParams, firstVia)
      firstVia = false
    } else if (id === H_TO && opts.toTag !== undefined && status > 100 && !hasTag(req)) {
      if (!isToken(opts.toTag)) throw new TypeError(`toTag must be a token: ${quote(opts.toTag)}`)
      text = req.nameAt(k) + ': ' + req.valueAt(k) + ';tag=' + opts.toTag + '\r\n'
    } else if (!(id === H_FROM || id === H_TO || id === H_CALL_ID || id === H_CSEQ ||
      (id === H_TIMESTAMP && status === 100) || (id === H_RECORD_ROUTE && opts.copyRecordRoute === true))) {
      continue
    }
    const len = text === undefined ? req.nextAt(k) - req.lineAt(k) + crlfFix(src, req.lineAt(k), req.nextAt(k)) : Buffer.byteLength(text)
    size += len
    editLines[n] = k
    editTexts[n] = text
    editLens[n++] = len
  }
  const b = opts.body === undefined ? undefined : typeof opts.body === 'string' ? Buffer.from(opts.body, 'utf8') : opts.body
  const tail = finishText(opts.headers, b, opts.contentType)
  const tailLen = Buffer.byteLength(tail)
  size += tailLen + (b === undefined ? 0 : b.length)
  const out = new Out(size)
  out.str(first, firstLen)
  // Copied lines that follow each other in the request (Via, From, To,
  // Call-ID, CSeq often do) and end in CRLF go out as one copy.
  let from = 0
  let to = 0
  for (let j = 0; j < n; j++) {
    const k = editLines[j]!
    const text = editTexts[j]
    if (text === undefined) {
      const s = req.lineAt(k)
      const e = req.nextAt(k)
      if (s !== to || to === from) {
        out.bytes(src, from, to)
        from = s
      }
      to = e
      if (editLens[j] !== e - s) {
        // A bare LF or no line end: written as CRLF.
        out.bytes(src, from, to)
        ensureCrlf(out)
        from = to
      }
    } else {
      out.bytes(src, from, to)
      from = to
      out.str(text, editLens[j])
      editTexts[j] = undefined
    }
  }
  out.bytes(src, from, to)
  if (req.bareCr === true) dropBareCr(out)
  out.str(tail, tailLen)
  if (b !== undefined) out.bytes(b, 0, b.length)
  return out.done()
}

/**
 * Remove each CR not followed by LF from what `out` holds: the copied lines
 * of a request refused for a bare CR (its `partial`, answered 400) must not
 * carry it on (RFC 3261 §25.1).
 */
function dropBareCr (out: Out): void {
  const b = out.buf
  let w = 0
  for (let r = 0; r < out.len; r++) {
    if (b[r] === 0x0d && (r + 1 >= out.len || b[r + 1] !== 0x0a)) continue
    b[w++] = b[r]!
  }
  out.len = w
}

function hasTag (req: SipRequest): boolean {
  try {
    return req.to.tag !== undefined
  } catch {
    return false
  }
}

/** A copied header line may end in a bare LF (or nothing, at a datagram's end): write CRLF. */
function ensureCrlf (out: Out): void {
  const b = out.buf
  const n = out.len
  if (n >= 2 && b[n - 2] === 0x0d && b[n - 1] === 0x0a) return
  if (n >= 1 && b[n - 1] === 0x0a) {
    out.len--
  }
  out.crlf()
}

const NO_BODY_END = 'Content-Length: 0\r\n\r\n'

/** The header lines a new message ends with, the empty line included: `headers`, Content-Type when there is a body, Content-Length. */
function finishText (headers: ReadonlyArray<readonly [string, string]> | undefined, b: Buffer | undefined, contentType: string | undefined): string {
  // The usual end of a 100 Trying or a bodiless answer: one constant, no number turned to text.
  if (headers === undefined && (b === undefined || b.length === 0)) return NO_BODY_END
  let t = ''
  if (headers !== undefined) for (const [n, v] of headers) t += headerName(n) + ': ' + line(v, n) + '\r\n'
  if (b !== undefined && b.length > 0 && contentType !== undefined) t += 'Content-Type: ' + line(contentType, 'Content-Type') + '\r\n'
  return t + 'Content-Length: ' + (b === undefined ? 0 : b.length) + '\r\n\r\n'
}

function finish (out: Out, headers: ReadonlyArray<readonly [string, string]> | undefined, body: Buffer | string | undefined, contentType: string | undefined): Buffer {
  const b = body === undefined ? undefined : typeof body === 'string' ? Buffer.from(body, 'utf8') : body
  out.str(finishText(headers, b, contentType))
  if (b !== undefined) out.bytes(b, 0, b.length)
  return out.done()
}

/** What createRequest needs. */
export interface RequestSpec {
  method: string
  uri: string
  /** Header lines in order (Via first, as usual). Content-Length is added. */
  headers: ReadonlyArray<readonly [string, string]>
  body?: Buffer | string
  contentType?: string
}

/** Build a request from parts. */
export function createRequest (spec: RequestSpec): Buffer {
  const out = new Out(512)
  if (!isToken(spec.method)) throw new TypeError(`method must be a token: ${quote(spec.method)}`)
  out.str(spec.method + ' ' + uriText(spec.uri, 'Request-URI') + ' SIP/2.0\r\n')
  return finish(out, spec.headers, spec.body, spec.contentType)
}

/** Edits for forwarding a request (RFC 3261 §16.6). */
export interface ForwardEdits {
  /** New top Via value, e.g. `SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK...`. */
  via?: string
  /** New Max-Forwards value (added when the header is absent). */
  maxForwards?: number
  /** Remove the top Route element (§16.4 / §16.6 step 6). */
  popRoute?: boolean
  /** Record-Route values to add on top, first written first, e.g. `<sip:192.0.2.1;lr>`. */
  recordRoute?: readonly string[]
  /** New Request-URI. */
  requestUri?: string
  /** received/rport to set on the previous top Via. */
  topViaParams?: TopViaParams
  /** Route values to put on top of the (remaining) Route set, e.g. a Path. */
  pushRoute?: readonly string[]
  /** Header names to drop (any case). */
  removeHeaders?: readonly string[]
  /** Header lines to add after the edited ones. */
  addHeaders?: ReadonlyArray<readonly [string, string]>
}

/**
 * Edits of the header lines of the message being forwarded, planned before
 * the output is sized: line index and its replacement (undefined: dropped).
 * Module scratch, reused: forwardRequest runs to its end without yielding.
 */
const editLines: number[] = []
const editTexts: Array<string | undefined> = []
const editLens: number[] = []
/** `Via: `, before forwardRequest's new Via value. */
const VIA_COLON = Buffer.from('Via: ', 'latin1')
/** forwardRequest's Max-Forwards lines: the name is copied, the value written as bytes (editLens holds the name's end). */
const MF_LINE = '\u0000mf'

/**
 * Splice-forward a request: the start line (or a new Request-URI), the new
 * Via, Record-Route and Route lines are written; every other header line and
 * the body are copied from the received bytes. The edits are planned first
 * and the output sized from them exactly; the usual forward (no line added
 * after the headers) copies the last edited line's end through the body in
 * one piece.
 */
export function forwardRequest (req: SipRequest, e: ForwardEdits): Buffer {
  const src = req.buf
  if (e.maxForwards !== undefined && !(Number.isInteger(e.maxForwards) && e.maxForwards >= 0 && e.maxForwards <= 255)) {
    throw new RangeError(`maxForwards must be an integer from 0 to 255, got ${e.maxForwards}`)
  }
  // The start line and the lines put on top, as one string.
  // The start line (when new) and the lines put on top, as one string: one
  // write (writing them in pieces, name bytes and value, measured slower).
  let head = ''
  if (e.requestUri !== undefined) head = req.method + ' ' + uriText(e.requestUri, 'Request-URI') + ' ' + req.version + '\r\n'
  // The new Via line goes in its own place when the Request-URI stays (every
  // forward but a strict route's): its value is written as it is, flat after
  // line()'s search; joined into `head` it was flattened a second time and
  // its bytes counted over the joined text (~100 ns of a stateless ACK).
  const via = e.via === undefined ? undefined : line(e.via, 'Via')
  const viaLen = via === undefined || e.requestUri !== undefined ? 0 : Buffer.byteLength(via)
  if (via !== undefined && e.requestUri !== undefined) head += 'Via: ' + via + '\r\n'
  if (e.recordRoute !== undefined) for (const rr of e.recordRoute) head += 'Record-Route: ' + line(rr, 'Record-Route') + '\r\n'
  if (e.pushRoute !== undefined) for (const r of e.pushRoute) head += 'Route: ' + line(r, 'Route') + '\r\n'
  let removeIds: number[] | undefined
  let removeNames: string[] | undefined
  if (e.removeHeaders !== undefined) {
    for (const name of e.removeHeaders) {
      const id = headerId(name)
      if (id >= 0) (removeIds ??= []).push(id)
      else (removeNames ??= []).push(name.toLowerCase())
    }
  }
  let firstVia = true
  let routePopped = e.popRoute !== true
  let sawMaxForwards = false
  let sawContentLength = false
  let edits = 0
  // Bytes of the header lines that are copied, less the edited lines, plus their replacements.
  const headLen = head === '' ? 0 : Buffer.byteLength(head)
  let size = (e.requestUri !== undefined ? 0 : req.startLineNext - req.start + crlfFix(src, req.start, req.startLineNext) + (via === undefined ? 0 : VIA_COLON.length + viaLen + 2)) + headLen
  let copyFrom = req.startLineNext
  for (let k = 0; k < req.headerCount; k++) {
    const id = req.idAt(k)
    let replacement: string | undefined
    let drop = false
    if (id === H_VIA && firstVia) {
      firstVia = false
      replacement = viaLine(req, k, e.topViaParams, true)
    } else if (id === H_MAX_FORWARDS && e.maxForwards !== undefined) {
      sawMaxForwards = true
      replacement = MF_LINE
    } else if (id === H_ROUTE && !routePopped) {
      routePopped = true
      // One element (no comma in the line): the line goes, no text made.
      const rest = hasComma(src, req.lineAt(k), req.nextAt(k)) ? splitList(req.valueAt(k)).slice(1) : []
      if (rest.length === 0) drop = true
      else replacement = req.nameAt(k) + ': ' + rest.join(', ') + '\r\n'
    } else if (id === H_CONTENT_LENGTH) {
      sawContentLength = true
    } else if (removeIds !== undefined && removeIds.includes(id)) {
      drop = true
    } else if (removeNames !== undefined && id < 0 && removeNames.includes(req.nameAt(k).toLowerCase())) {
      drop = true
    }
    if (drop || replacement !== undefined) {
      let n = 0
      if (replacement === MF_LINE) {
        // Name as received (token bytes), ': ', the number, CRLF.
        n = req.nameEndAt(k)
        size += n - req.lineAt(k) + 4 + (e.maxForwards! >= 100 ? 3 : e.maxForwards! >= 10 ? 2 : 1)
      } else if (replacement !== undefined) {
        n = Buffer.byteLength(replacement)
        size += n
      }
      size += req.lineAt(k) - copyFrom
      editLines[edits] = k
      editLens[edits] = n
      editTexts[edits++] = replacement
      copyFrom = req.nextAt(k)
    }
  }
  // Header lines up to the empty line are unchanged from copyFrom on.
  const lastFix = crlfFix(src, copyFrom, req.headersEnd)
  let tail = ''
  if (e.maxForwards !== undefined && !sawMaxForwards) tail += 'Max-Forwards: ' + e.maxForwards + '\r\n'
  if (e.addHeaders !== undefined) for (const [n, v] of e.addHeaders) tail += headerName(n) + ': ' + line(v, n) + '\r\n'
  // A stream transport needs Content-Length (RFC 3261 §18.3): add it when missing.
  if (!sawContentLength) tail += 'Content-Length: ' + (req.end - req.bodyStart) + '\r\n'
  // The usual end: nothing to add, and the received empty line is CRLF, so
  // the rest of the headers, the empty line and the body are one copy.
  const oneCopy = tail === '' && lastFix === 0 && copyFrom < req.headersEnd && req.bodyStart === req.headersEnd + 2 &&
    src[req.headersEnd] === 0x0d && src[req.headersEnd + 1] === 0x0a
  tail += '\r\n'
  const tailLen = oneCopy ? 0 : Buffer.byteLength(tail)
  size += req.headersEnd - copyFrom + lastFix + (oneCopy ? 2 : tailLen) + req.end - req.bodyStart
  const out = new Out(size)
  if (e.requestUri === undefined) {
    out.bytes(src, req.start, req.startLineNext)
    ensureCrlf(out)
    if (via !== undefined) {
      out.bytes(VIA_COLON, 0, VIA_COLON.length)
      out.str(via, viaLen)
      out.crlf()
    }
  }
  if (head !== '') out.str(head, headLen)
  copyFrom = req.startLineNext
  for (let j = 0; j < edits; j++) {
    const k = editLines[j]!
    const r = editTexts[j]
    if (r === MF_LINE) {
      out.bytes(src, copyFrom, editLens[j]!)
      out.colonNumberLine(e.maxForwards!)
    } else {
      out.bytes(src, copyFrom, req.lineAt(k))
      if (r !== undefined) out.str(r, editLens[j])
    }
    editTexts[j] = undefined
    copyFrom = req.nextAt(k)
  }
  if (oneCopy) {
    out.bytes(src, copyFrom, req.end)
  } else {
    out.bytes(src, copyFrom, req.headersEnd)
    ensureCrlf(out)
    out.str(tail, tailLen)
    out.bytes(src, req.bodyStart, req.end)
  }
  return out.done()
}

/**
 * Remove the top Via element of a response before sending it upstream
 * (RFC 3261 §16.7 step 3); everything else is copied.
 */
export function stripTopVia (resp: SipMessage): Buffer {
  const k = resp.findId(H_VIA)
  if (k < 0) return resp.raw
  const src = resp.buf
  const lineStart = resp.lineAt(k)
  const next = resp.nextAt(k)
  // The usual Via line holds one element (no comma): it goes, no text made.
  let text = ''
  if (hasComma(src, lineStart, next)) {
    const rest = splitList(resp.valueAt(k)).slice(1)
    if (rest.length > 0) text = resp.nameAt(k) + ': ' + rest.join(', ') + '\r\n'
  }
  const textLen = text === '' ? 0 : Buffer.byteLength(text)
  const out = new Out(lineStart - resp.start + textLen + resp.end - next)
  out.bytes(src, resp.start, lineStart)
  if (textLen > 0) out.str(text, textLen)
  out.bytes(src, next, resp.end)
  return out.done()
}

/** True when bytes [s, e) hold a comma (a list of more than one element, or a comma in a quoted string: then the list is split). */
function hasComma (buf: Buffer, s: number, e: number): boolean {
  for (let i = s; i < e; i++) if (buf[i] === 0x2c) return true
  return false
}
