/**
 * Framing of SIP messages on a stream transport (TCP, TLS): RFC 3261 §18.3
 * (Content-Length is mandatory) and RFC 5626 §3.5.1 CRLF keep-alives.
 *
 * Messages that arrive whole inside one chunk are parsed over that chunk
 * without copying. Bytes of an unfinished message are kept in one growable
 * buffer, never more than `maxMessageSize` of them.
 */
import { TOKEN } from './chars.js'
import { SipLimitError, SipParseError } from './errors.js'
import { DEFAULT_MAX_HEADERS, indexMessage } from './message.js'
import type { SipRequest, SipResponse } from './message.js'

const CR = 0x0d
const LF = 0x0a

/** Options of StreamParser. */
export interface StreamParserOptions {
  /** Called for each complete message, in order. */
  onMessage: (msg: SipRequest | SipResponse) => void
  /** Called for a double-CRLF keep-alive ping; answer it with one CRLF (RFC 5626 §3.5.1). */
  onKeepAlive?: () => void
  /** Called once for a framing error or exceeded limit; the parser then ignores further input. */
  onError: (err: SipParseError) => void
  /** Largest message accepted, headers and body. @default 65535 */
  maxMessageSize?: number
  /** Most header lines in one message. @default 256 */
  maxHeaders?: number
}

/** Default cap of one message on a stream. */
export const DEFAULT_MAX_MESSAGE_SIZE = 65535

/** Frames a byte stream into SIP messages. One per connection. */
export class StreamParser {
  readonly #onMessage: (msg: SipRequest | SipResponse) => void
  readonly #onKeepAlive: (() => void) | undefined
  readonly #onError: (err: SipParseError) => void
  readonly #maxSize: number
  readonly #maxHeaders: number
  /** Bytes kept from earlier chunks (an unfinished message), or undefined. */
  #pending: Buffer | undefined
  #pendingLen = 0
  /** Where to resume looking for the end of the headers within the pending bytes. */
  #scanFrom = 0
  /** Total size of the unfinished message once its headers are known, else -1. */
  #needed = -1
  /** CRLFs seen in a row between messages (a ping is two). */
  #crlfRun = 0
  #crSeen = false
  #failed = false
  /** The first exception a callback threw during this push, rethrown when the push is done. */
  #callbackError: { err: unknown } | undefined
  /** Bytes consumed so far, for error offsets. */
  #consumed = 0

  constructor (opts: StreamParserOptions) {
    this.#onMessage = opts.onMessage
    this.#onKeepAlive = opts.onKeepAlive
    this.#onError = opts.onError
    this.#maxSize = opts.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE
    this.#maxHeaders = opts.maxHeaders ?? DEFAULT_MAX_HEADERS
    if (!(this.#maxSize > 0)) throw new RangeError(`maxMessageSize must be positive, got ${String(opts.maxMessageSize)}`)
  }

  /** True after an error: the connection should be closed. */
  get failed (): boolean {
    return this.#failed
  }

  /** Bytes held for an unfinished message. */
  get bufferedBytes (): number {
    return this.#pendingLen
  }

  /**
   * Feed bytes from the stream. Callbacks run synchronously; if one throws,
   * the parser still consumes the message (its state stays consistent) and
   * the first such exception is rethrown once the chunk is processed.
   */
  push (chunk: Buffer): void {
    this.#push(chunk)
    const thrown = this.#callbackError
    if (thrown !== undefined) {
      this.#callbackError = undefined
      throw thrown.err
    }
  }

  #push (chunk: Buffer): void {
    if (this.#failed || chunk.length === 0) return
    let buf: Buffer
    let len: number
    if (this.#pending === undefined) {
      buf = chunk
      len = chunk.length
    } else {
      this.#append(chunk)
      buf = this.#pending
      len = this.#pendingLen
    }
    let pos = 0
    try {
      pos = this.#drain(buf, len)
    } catch (err) {
      this.#fail(err instanceof SipParseError ? err : new SipParseError(String(err), this.#consumed + pos))
      return
    }
    const rest = len - pos
    this.#consumed += pos
    if (rest === 0) {
      this.#pending = undefined
      this.#pendingLen = 0
      this.#scanFrom = 0
      return
    }
    if (rest > this.#maxSize) {
      this.#fail(new SipLimitError(`message larger than ${this.#maxSize} bytes`, this.#consumed, 'SIP_ERR_MESSAGE_TOO_LARGE'))
      return
    }
    // Keep the unfinished tail in a fresh buffer: messages already delivered
    // may still point into `buf`, so it is never written again.
    if (pos > 0 || buf !== this.#pending) {
      const keep = Buffer.allocUnsafe(Math.min(Math.max(rest * 2, 4096), this.#maxSize + 4))
      buf.copy(keep, 0, pos, len)
      this.#pending = keep
      this.#pendingLen = rest
      this.#scanFrom = Math.max(0, this.#scanFrom - pos)
    }
  }

  #append (chunk: Buffer): void {
    const pending = this.#pending!
    const need = this.#pendingLen + chunk.length
    if (need > pending.length) {
      // Never hold more than one maximal message plus this chunk.
      const grown = Buffer.allocUnsafe(Math.max(Math.min(pending.length * 2, this.#maxSize + 4), need))
      pending.copy(grown, 0, 0, this.#pendingLen)
      this.#pending = grown
    }
    chunk.copy(this.#pending!, this.#pendingLen)
    this.#pendingLen = need
  }

  #call<A> (fn: ((a: A) => void) | undefined, a: A): void {
    if (fn === undefined) return
    try {
      fn(a)
    } catch (err) {
      this.#callbackError ??= { err }
    }
  }

  #fail (err: SipParseError): void {
    this.#failed = true
    this.#pending = undefined
    this.#pendingLen = 0
    this.#onError(err)
  }

  /** Deliver every complete message in buf[0..len); return the offset of the first unconsumed byte. */
  #drain (buf: Buffer, len: number): number {
    let pos = 0
    while (pos < len) {
      if (this.#needed < 0) {
        // Between messages: CRLFs are keep-alives (RFC 5626 §3.5.1) or ignorable (§7.5).
        const c = buf[pos]!
        if (c === CR) {
          if (this.#crSeen) this.#crlfRun = 0
          this.#crSeen = true
          pos++
          continue
        }
        if (c === LF) {
          // Only CRLF CRLF is a ping; a bare LF is ignored and breaks the run.
          if (this.#crSeen && ++this.#crlfRun === 2) {
            this.#crlfRun = 0
            this.#call(this.#onKeepAlive, undefined)
          } else if (!this.#crSeen) {
            this.#crlfRun = 0
          }
          this.#crSeen = false
          pos++
          continue
        }
        this.#crSeen = false
        this.#crlfRun = 0
        // Bytes that cannot start a SIP message fail at once (a first byte no
        // start line has: a TLS ClientHello, binary) or as soon as their first
        // line is complete, not when max_message_size or idle ends the wait
        // for an empty line. Checked the same way however the bytes were cut.
        if (TOKEN[c] !== 1) throw new SipParseError(`not a SIP message: starts with byte 0x${c.toString(16).padStart(2, '0')}`, this.#consumed + pos, 'SIP_ERR_BAD_START_LINE')
        const lf = buf.indexOf(LF, pos)
        if (lf >= 0 && lf < len && lf - pos <= this.#maxSize && !looksLikeStartLine(buf, pos, lf)) {
          throw new SipParseError(`invalid start line ${JSON.stringify(buf.toString('latin1', pos, Math.min(lf, pos + 80)))}`, this.#consumed + pos, 'SIP_ERR_BAD_START_LINE')
        }
        const headEnd = this.#findHeadersEnd(buf, pos, len)
        if (headEnd < 0) {
          if (len - pos > this.#maxSize) throw new SipLimitError(`message headers longer than ${this.#maxSize} bytes`, this.#consumed + pos, 'SIP_ERR_MESSAGE_TOO_LARGE')
          return pos
        }
        if (headEnd - pos > this.#maxSize) throw new SipLimitError(`message headers longer than ${this.#maxSize} bytes`, this.#consumed + pos, 'SIP_ERR_MESSAGE_TOO_LARGE')
        const msg = this.#index(buf, pos, headEnd)
        const size = msg.end - pos
        if (size > this.#maxSize) throw new SipLimitError(`message of ${size} bytes is larger than ${this.#maxSize}`, this.#consumed + pos, 'SIP_ERR_MESSAGE_TOO_LARGE')
        if (msg.end > len) {
          this.#needed = size
          return pos
        }
        this.#scanFrom = 0
        pos = msg.end
        this.#call(this.#onMessage, msg)
      } else {
        if (len - pos < this.#needed) return pos
        // The body has arrived: index the headers again over the joined bytes.
        const headEnd = this.#findHeadersEnd(buf, pos, len)
        const msg = this.#index(buf, pos, headEnd)
        this.#needed = -1
        this.#scanFrom = 0
        pos = msg.end
        this.#call(this.#onMessage, msg)
      }
    }
    return pos
  }

  #index (buf: Buffer, pos: number, headEnd: number): SipRequest | SipResponse {
    try {
      return indexMessage(buf, pos, headEnd, false, this.#maxHeaders)
    } catch (err) {
      if (err instanceof SipParseError) {
        const off = this.#consumed + err.offset
        const e = err instanceof SipLimitError
          ? new SipLimitError(err.message, off, err.code as 'SIP_ERR_TOO_MANY_HEADERS')
          : new SipParseError(err.message, off, err.code)
        if (err.partial !== undefined) e.partial = err.partial
        throw e
      }
      throw err
    }
  }

  /** Offset just past the empty line ending the headers that start at `pos`, or -1. */
  #findHeadersEnd (buf: Buffer, pos: number, len: number): number {
    let i = Math.max(pos, this.#scanFrom)
    for (;;) {
      const lf = buf.indexOf(LF, i)
      if (lf < 0 || lf >= len) {
        // Resume just before the last bytes next time (a CRLF may be split).
        this.#scanFrom = Math.max(pos, len - 3)
        return -1
      }
      const n1 = lf + 1
      if (n1 < len && buf[n1] === LF) return n1 + 1
      if (n1 + 1 < len && buf[n1] === CR && buf[n1 + 1] === LF) return n1 + 2
      if (n1 >= len || (n1 + 1 >= len && buf[n1] === CR)) {
        this.#scanFrom = lf
        return -1
      }
      i = n1
    }
  }
}

/** buf[at..end) starts with "SIP/", in any case. */
function sipVersionAt (buf: Buffer, at: number, end: number): boolean {
  return end - at >= 4 && (buf[at]! | 0x20) === 0x73 && (buf[at + 1]! | 0x20) === 0x69 && (buf[at + 2]! | 0x20) === 0x70 && buf[at + 3] === 0x2f
}

/**
 * Whether the line buf[s..lf) could be a start line (its first byte, a token
 * character, is checked before): a status line ("SIP/") or a request line
 * with " SIP/" somewhere. Deliberately much looser than the grammar: a
 * request line the full parse refuses still gets its headers indexed, so
 * that sipd can answer it 400. This only gives up early on bytes that no SIP
 * message starts with (HTTP, text).
 */
function looksLikeStartLine (buf: Buffer, s: number, lf: number): boolean {
  if (sipVersionAt(buf, s, lf)) return true
  for (let i = s + 1; i + 4 <= lf; i++) {
    if (buf[i] === 0x20 && sipVersionAt(buf, i + 1, lf)) return true
  }
  return false
}
