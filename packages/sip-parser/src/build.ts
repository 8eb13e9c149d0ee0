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

/** One growable output buffer per message (as in porsager/postgres bytes.js). */
class Out {
  buf: Buffer
  len = 0
  constructor (size: number) {
    this.buf = Buffer.allocUnsafe(size)
  }

  fit (n: number): void {
    if (this.len + n <= this.buf.length) return
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 1.5, this.len + n) | 0)
    this.buf.copy(grown, 0, 0, this.len)
    this.buf = grown
  }

  str (s: string): void {
    this.fit(s.length * 3)
    this.len += writeUtf8(this.buf, s, this.len)
  }

  bytes (src: Buffer, start: number, end: number): void {
    if (end <= start) return
    this.fit(end - start)
    src.copy(this.buf, this.len, start, end)
    this.len += end - start
  }

  done (): Buffer {
    return this.buf.subarray(0, this.len)
  }
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
  const out = new Out(req.headersEnd - req.start + 256)
  if (!Number.isInteger(status) || status < 100 || status > 699) throw new RangeError(`status must be an integer from 100 to 699, got ${status}`)
  out.str('SIP/2.0 ' + status + ' ' + (reason === undefined ? reasonPhrase(status) : line(reason, 'reason phrase')) + '\r\n')
  let firstVia = true
  for (let k = 0; k < req.headerCount; k++) {
    const id = req.idAt(k)
    if (id === H_VIA) {
      const edited = viaLine(req, k, opts.topViaParams, firstVia)
      firstVia = false
      if (edited !== undefined) out.str(edited)
      else out.bytes(req.buf, req.lineAt(k), req.nextAt(k))
      ensureCrlf(out)
    } else if (id === H_TO && opts.toTag !== undefined && status > 100 && !hasTag(req)) {
      if (!isToken(opts.toTag)) throw new TypeError(`toTag must be a token: ${quote(opts.toTag)}`)
      out.str(req.nameAt(k) + ': ' + req.valueAt(k) + ';tag=' + opts.toTag + '\r\n')
    } else if (id === H_FROM || id === H_TO || id === H_CALL_ID || id === H_CSEQ ||
      (id === H_TIMESTAMP && status === 100) || (id === H_RECORD_ROUTE && opts.copyRecordRoute === true)) {
      out.bytes(req.buf, req.lineAt(k), req.nextAt(k))
      ensureCrlf(out)
    }
  }
  if (req.bareCr === true) dropBareCr(out)
  return finish(out, opts.headers, opts.body, opts.contentType)
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
  out.str('\r\n')
}

function finish (out: Out, headers: ReadonlyArray<readonly [string, string]> | undefined, body: Buffer | string | undefined, contentType: string | undefined): Buffer {
  if (headers !== undefined) for (const [n, v] of headers) out.str(headerName(n) + ': ' + line(v, n) + '\r\n')
  const b = body === undefined ? undefined : typeof body === 'string' ? Buffer.from(body, 'utf8') : body
  if (b !== undefined && b.length > 0 && contentType !== undefined) out.str('Content-Type: ' + line(contentType, 'Content-Type') + '\r\n')
  out.str('Content-Length: ' + (b === undefined ? 0 : b.length) + '\r\n\r\n')
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
 * Splice-forward a request: the start line (or a new Request-URI), the new
 * Via, Record-Route and Route lines are written; every other header line and
 * the body are copied from the received bytes.
 */
export function forwardRequest (req: SipRequest, e: ForwardEdits): Buffer {
  const src = req.buf
  const out = new Out(req.end - req.start + 512)
  if (e.requestUri !== undefined) {
    out.str(req.method + ' ' + uriText(e.requestUri, 'Request-URI') + ' ' + req.version + '\r\n')
  } else {
    out.bytes(src, req.start, req.startLineNext)
    ensureCrlf(out)
  }
  if (e.maxForwards !== undefined && !(Number.isInteger(e.maxForwards) && e.maxForwards >= 0 && e.maxForwards <= 255)) {
    throw new RangeError(`maxForwards must be an integer from 0 to 255, got ${e.maxForwards}`)
  }
  if (e.via !== undefined) out.str('Via: ' + line(e.via, 'Via') + '\r\n')
  if (e.recordRoute !== undefined) for (const rr of e.recordRoute) out.str('Record-Route: ' + line(rr, 'Record-Route') + '\r\n')
  if (e.pushRoute !== undefined) for (const r of e.pushRoute) out.str('Route: ' + line(r, 'Route') + '\r\n')
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
  let copyFrom = req.startLineNext
  for (let k = 0; k < req.headerCount; k++) {
    const id = req.idAt(k)
    const lineStart = req.lineAt(k)
    const next = req.nextAt(k)
    let replacement: string | undefined
    let drop = false
    if (id === H_VIA && firstVia) {
      firstVia = false
      replacement = viaLine(req, k, e.topViaParams, true)
    } else if (id === H_MAX_FORWARDS && e.maxForwards !== undefined) {
      sawMaxForwards = true
      replacement = req.nameAt(k) + ': ' + e.maxForwards + '\r\n'
    } else if (id === H_ROUTE && !routePopped) {
      routePopped = true
      const v = req.valueAt(k)
      const rest = v.indexOf(',') >= 0 ? splitList(v).slice(1) : []
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
      out.bytes(src, copyFrom, lineStart)
      if (replacement !== undefined) out.str(replacement)
      copyFrom = next
    }
  }
  // Header lines up to the empty line are unchanged from here on.
  out.bytes(src, copyFrom, req.headersEnd)
  ensureCrlf(out)
  if (e.maxForwards !== undefined && !sawMaxForwards) out.str('Max-Forwards: ' + e.maxForwards + '\r\n')
  if (e.addHeaders !== undefined) for (const [n, v] of e.addHeaders) out.str(headerName(n) + ': ' + line(v, n) + '\r\n')
  // A stream transport needs Content-Length (RFC 3261 §18.3): add it when missing.
  if (!sawContentLength) out.str('Content-Length: ' + (req.end - req.bodyStart) + '\r\n')
  out.str('\r\n')
  out.bytes(src, req.bodyStart, req.end)
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
  const v = resp.valueAt(k)
  const out = new Out(resp.end - resp.start)
  out.bytes(src, resp.start, resp.lineAt(k))
  if (v.indexOf(',') >= 0) {
    const rest = splitList(v).slice(1)
    if (rest.length > 0) out.str(resp.nameAt(k) + ': ' + rest.join(', ') + '\r\n')
  }
  out.bytes(src, resp.nextAt(k), resp.end)
  return out.done()
}
