/**
 * SIP messages over the received Buffer.
 *
 * Parsing indexes the start line and every header line once (offsets into
 * the Buffer); a header's value is decoded and parsed only when read, then
 * cached. Forwarding uses the same offsets to splice the original bytes.
 */
import { decodeText, latin1, utf8 } from './bytes.js'
import { SipLimitError, SipParseError, quote } from './errors.js'
import {
  H_AUTHORIZATION, H_CALL_ID, H_CONTACT, H_CONTENT_LENGTH, H_CSEQ, H_EXPIRES, H_FROM, H_MAX_FORWARDS,
  H_PROXY_AUTHORIZATION, H_PROXY_REQUIRE, H_RECORD_ROUTE, H_REQUIRE, H_ROUTE, H_SUPPORTED, H_TO, H_UNKNOWN,
  H_VIA, IS_LIST_HEADER, headerId, lookupHeaderBytes, matchCommonName
} from './header-names.js'
import {
  IS_TOKEN as SHARED_IS_TOKEN, parseAddressHeader, parseContact, parseCredentials, parseCSeq, parseExpires, parseNameAddr, parseUint,
  parseVia, splitList, splitListRanges
} from './grammar.js'
import { parseSipUriBytes, parseUri } from './uri.js'
import { OUT_I, SL_I, WASM_FIXED_LINES, wasmIndex, wasmOut, wasmStores } from './wasm-index.js'
import { elementStop, firstElement, firstElementStart, parseContactBytes, parseNameAddrBytes, parseViaBytes, splitListBytes } from './grammar-bytes.js'
import type { ParsedNameAddr } from './grammar.js'
import type { AddressHeader, Contact, CSeq, DigestCredentials, NameAddr, SipUri, Via } from './types.js'

// A module's own const is embedded in optimised code; an import is loaded through its cell (see grammar-bytes.ts).
const IS_TOKEN = SHARED_IS_TOKEN

const CR = 0x0d
const LF = 0x0a
const SP = 0x20
const HT = 0x09
const COLON = 0x3a

/**
 * Header index layout: four ints per header line. Where a line ends is
 * where the next one starts (or the headers end), and a name ends at its
 * first non-token byte: neither is stored.
 */
export const F_ID = 0 // header id (H_*), or H_UNKNOWN; FOLDED bit when the value spans lines
export const F_LINE = 1 // offset of the first byte of the header line (its name)
export const F_VALUE = 2 // offset of the value (after HCOLON)
export const F_VALUE_END = 3 // offset just past the value (trailing whitespace trimmed)
export const STRIDE = 4
const FOLDED = 0x10000
/** Set on a Call-ID line whose value is bytes 0x21..0x7e only (not folded unless FOLDED): callId reads it without a check. */
const CLEAN = 0x20000
const ID_MASK = 0xffff
/**
 * Before each message's entries (at `ix - HOT`): the first line of each
 * header id below HOT_DUPS (-1 when absent), then at `ix - HOT + HOT_DUPS`
 * a bit mask of the ids that occur more than once. The accessors of the
 * common headers find their line without scanning the index.
 */
const HOT = 16
const HOT_DUPS = 15

/**
 * Header offsets of every message live in shared Int32Array blocks: a
 * message keeps a reference to its block and its base offset. A typed array
 * per message would cost more than the rest of indexing (measured ~280 ns
 * for `new Int32Array(96)` against ~1 µs for a whole INVITE). Blocks are
 * 64 KiB, under glibc's mmap threshold (128 KiB): a new block reuses freed
 * heap memory instead of faulting in fresh pages (256 KiB blocks cost ~5%
 * of indexing).
 */
const STORE_BLOCK = 16 * 1024
/**
 * A store block of `ints` slots, not zero-filled (Buffer.allocUnsafeSlow):
 * every slot a message reads is written first (hot slots and entries).
 */
function newBlock (ints: number): Int32Array {
  const b = Buffer.allocUnsafeSlow(ints * 4)
  return new Int32Array(b.buffer, b.byteOffset, ints)
}
let store = newBlock(STORE_BLOCK)
let storeUsed = 0

/** Limits applied while indexing. */
export interface IndexLimits {
  /** Maximum number of header lines. @default 256 */
  maxHeaders: number
}

/** Messages up to this size are decoded whole before indexing (see indexMessage). */
const HEAD_DECODE_MAX = 16 * 1024

/** Default maximum number of header lines per message. */
export const DEFAULT_MAX_HEADERS = 256


/** The caches of SipMessage's seldom read views (undefined: not read yet; null: absent). */
interface RareViews {
  via: Via[] | undefined
  contact: Contact[] | '*' | undefined
  recordRoute: NameAddr[] | undefined
  expires: number | null | undefined
  contentLength: number | null | undefined
}

/** Base of SipRequest and SipResponse. */
export abstract class SipMessage {
  // Fields set by the constructor are `declare`d: no define-then-assign per
  // message (class fields have define semantics in ES2022).
  /** The Buffer the message was parsed from (may hold other bytes around it). */
  declare readonly buf: Buffer
  /** Offset of the start line in `buf`. */
  declare readonly start: number
  /** Offset just past the message (past the body) in `buf`. */
  declare end: number
  /** Offset just past the start line's line break. */
  declare readonly startLineNext: number
  /** Offset of the empty line that ends the headers (or `end` when absent). */
  declare readonly headersEnd: number
  /** Offset of the body. */
  declare bodyStart: number
  /** Header index storage (shared between messages), STRIDE ints per header line from `ix`. */
  declare readonly index: Int32Array
  /** Offset of this message's first header entry in `index`. */
  declare readonly ix: number
  /** Number of header lines. */
  declare readonly headerCount: number
  /** @internal Set on the `partial` of a request refused for a bare CR in a header line (createResponse drops it). */
  declare bareCr?: true
  /** SIP version from the start line, e.g. `SIP/2.0`. */
  abstract readonly version: string
  /** True for requests. */
  abstract readonly isRequest: boolean

  #head?: string
  #topVia?: Via | null
  #cseq?: CSeq
  #callId?: string
  #from?: AddressHeader
  #to?: AddressHeader
  #route?: NameAddr[]
  #maxForwards?: number | null
  /** The views a proxy seldom reads, in one record made on first use: the message itself stays small (each field is stored on every parse). */
  #rare?: RareViews

  /** @internal Built by the parser; use parseMessage(). */
  constructor (buf: Buffer, start: number, startLineNext: number, index: Int32Array, ix: number, headerCount: number, headersEnd: number, bodyStart: number, end: number) {
    this.buf = buf
    this.start = start
    this.startLineNext = startLineNext
    this.index = index
    this.ix = ix
    this.headerCount = headerCount
    this.headersEnd = headersEnd
    this.bodyStart = bodyStart
    this.end = end
  }

  /** The exact bytes of this message. */
  get raw (): Buffer {
    return this.buf.subarray(this.start, this.end)
  }

  /** The message body (empty Buffer when none). */
  get body (): Buffer {
    return this.buf.subarray(this.bodyStart, this.end)
  }

  /**
   * @internal Value of header line `k` as latin1 text, one char per byte
   * (folded lines joined by one SP). The header block is decoded once and
   * values are substrings of it. The typed views parse these: their grammars
   * are ASCII, and byte-exact text keeps Call-IDs and tags comparable.
   */
  rawAt (k: number): string {
    const o = this.ix + k * STRIDE
    const idx = this.index
    const vs = idx[o + F_VALUE]!
    const ve = idx[o + F_VALUE_END]!
    if ((idx[o + F_ID]! & FOLDED) !== 0) return unfold(this.buf, vs, ve)
    return this.#headText().substring(vs - this.start, ve - this.start)
  }

  /** @internal Value of header line `k` decoded as UTF-8 (RFC 3261 §7.3.1: TEXT-UTF8). */
  valueAt (k: number): string {
    return decodeText(this.rawAt(k))
  }

  /** @internal Id of header line `k`. */
  idAt (k: number): number {
    const id = this.index[this.ix + k * STRIDE + F_ID]! & ID_MASK
    return id === ID_MASK ? H_UNKNOWN : id
  }

  /** @internal Name of header line `k` as written. */
  nameAt (k: number): string {
    const s = this.lineAt(k)
    return latin1(this.buf, s, nameEndAt(this.buf, s))
  }

  /** @internal Offset just past header line `k`'s name (its token bytes). */
  nameEndAt (k: number): number {
    return nameEndAt(this.buf, this.lineAt(k))
  }

  /** @internal Offset of header line `k`'s value: past its name, the colon and the whitespace around it. */
  valueStartAt (k: number): number {
    return this.index[this.ix + k * STRIDE + F_VALUE]!
  }

  /** @internal Offset of header line `k` (its name). */
  lineAt (k: number): number {
    return this.index[this.ix + k * STRIDE + F_LINE]!
  }

  /** @internal Offset just past header line `k` and its continuation lines: the next line, or the end of the headers. */
  nextAt (k: number): number {
    return k + 1 < this.headerCount ? this.index[this.ix + (k + 1) * STRIDE + F_LINE]! : this.headersEnd
  }

  /** @internal Index of the first header line with this id at or after `from`, or -1. */
  findId (id: number, from = 0): number {
    const idx = this.index
    if (id >= 0 && id < HOT_DUPS) {
      const first = idx[this.ix - HOT + id]!
      if (first < 0 || first >= from) return first
      if ((idx[this.ix - HOT + HOT_DUPS]! & (1 << id)) === 0) return -1
    }
    for (let k = from, n = this.headerCount; k < n; k++) {
      if ((idx[this.ix + k * STRIDE + F_ID]! & ID_MASK) === id) return k
    }
    return -1
  }

  #findName (name: string, from: number): number {
    const id = headerId(name)
    if (id !== H_UNKNOWN) return this.findId(id, from)
    const lower = name.toLowerCase()
    const len = lower.length
    const idx = this.index
    const buf = this.buf
    for (let k = from, n = this.headerCount; k < n; k++) {
      const o = this.ix + k * STRIDE
      if ((idx[o + F_ID]! & ID_MASK) !== ID_MASK) continue
      const s = idx[o + F_LINE]!
      if (nameEndAt(buf, s) - s !== len) continue
      let i = 0
      while (i < len && (buf[s + i]! | 0x20) === (lower.charCodeAt(i) | 0x20)) i++
      if (i === len) return k
    }
    return -1
  }

  /** True when at least one header of that name is present (case-insensitive, compact forms mapped). */
  hasHeader (name: string): boolean {
    return this.#findName(name, 0) >= 0
  }

  /**
   * First value of a header: for list headers (Via, Contact, Route...) the
   * first comma-separated element, else the first header line's value.
   */
  header (name: string): string | undefined {
    const k = this.#findName(name, 0)
    if (k < 0) return undefined
    const v = this.valueAt(k)
    const id = this.idAt(k)
    if (id !== H_UNKNOWN && IS_LIST_HEADER[id] === true && hasTopLevelComma(v)) return splitList(v)[0]
    return v
  }

  /** Every value of a header, list headers split on top-level commas. */
  headers (name: string): string[] {
    const out: string[] = []
    let k = this.#findName(name, 0)
    while (k >= 0) {
      const v = this.valueAt(k)
      const id = this.idAt(k)
      if (id !== H_UNKNOWN && IS_LIST_HEADER[id] === true) {
        for (const e of splitList(v)) out.push(e)
      } else {
        out.push(v)
      }
      k = this.#findName(name, k + 1)
    }
    return out
  }

  /** Every header line as [name as written, value], in order. */
  headerEntries (): Array<[string, string]> {
    const out: Array<[string, string]> = []
    for (let k = 0; k < this.headerCount; k++) out.push([this.nameAt(k), this.valueAt(k)])
    return out
  }

  #listById (id: number): string[] {
    const out: string[] = []
    for (let k = this.findId(id); k >= 0; k = this.findId(id, k + 1)) {
      const v = this.rawAt(k)
      if (hasTopLevelComma(v)) for (const e of splitList(v)) out.push(e)
      else if (v.length > 0) out.push(v)
    }
    return out
  }

  /** @internal Bytes [s, e) of the header block (start line included) as latin1 text. */
  headSlice (s: number, e: number): string {
    return this.#headText().substring(s - this.start, e - this.start)
  }

  /** @internal The message decoded as latin1 from `start` (at least up to headersEnd), made while indexing. */
  adoptHead (head: string): void {
    this.#head = head
  }

  /** The head as latin1 text from `start` (at least up to headersEnd), decoded on first use. */
  #headText (): string {
    let head = this.#head
    if (head === undefined) head = this.#head = latin1(this.buf, this.start, this.headersEnd)
    return head
  }

  /**
   * Every element of every header line with this id, parsed from the bytes
   * (grammar-bytes.ts) unless the line is folded (then from its unfolded text).
   * Error offsets point into the message.
   */
  #parseList<T> (id: number, what: string, parseB: (buf: Buffer, head: string, base: number, s: number, e: number, stopAtComma?: boolean) => T, parseS: (v: string) => T): T[] {
    const out: T[] = []
    const idx = this.index
    for (let k = this.findId(id); k >= 0; k = this.findId(id, k + 1)) {
      const o = this.ix + k * STRIDE
      const vs = idx[o + F_VALUE]!
      if ((idx[o + F_ID]! & FOLDED) === 0 && this.#parseLine(k, parseB, out)) continue
      if ((idx[o + F_ID]! & FOLDED) !== 0) {
        const v = this.rawAt(k)
        const r = splitListRanges(v)
        if (r.length === 0) throw emptyList(what, vs)
        for (let j = 0; j < r.length; j += 2) {
          try {
            out.push(parseS(v.slice(r[j], r[j + 1])))
          } catch (err) {
            throw this.#atText(err, k, r[j]!)
          }
        }
        continue
      }
      const head = this.#headText()
      const r = splitListBytes(this.buf, vs, idx[o + F_VALUE_END]!)
      if (r.length === 0) throw emptyList(what, vs)
      for (let j = 0; j < r.length; j += 2) {
        try {
          out.push(parseB(this.buf, head, this.start, r[j]!, r[j + 1]!))
        } catch (err) {
          throw at(err, r[j]!)
        }
      }
    }
    return out
  }

  /**
   * The elements of header line `k` parsed in one pass, each parse stopping
   * at the comma after its element. False (with `out` as it was) on any
   * error or empty element: the caller then splits the list first, which
   * names the defect where the RFC 3261 §7.3.1 split puts it.
   */
  #parseLine<T> (k: number, parseB: (buf: Buffer, head: string, base: number, s: number, e: number, stopAtComma?: boolean) => T, out: T[]): boolean {
    const o = this.ix + k * STRIDE
    const buf = this.buf
    const ve = this.index[o + F_VALUE_END]!
    const head = this.#headText()
    const n = out.length
    let i = this.index[o + F_VALUE]!
    try {
      for (;;) {
        if (i >= ve || buf[i] === 0x2c) break
        out.push(parseB(buf, head, this.start, i, ve, true))
        const stop = elementStop
        if (stop >= ve) return true
        i = stop + 1
        while (i < ve && (buf[i] === SP || buf[i] === HT)) i++
      }
    } catch {}
    out.length = n
    return false
  }

  /** The value of the only header line with this id, parsed like #parseList; undefined when absent. */
  #parseOne<T> (id: number, what: string, parseB: (buf: Buffer, head: string, base: number, s: number, e: number) => T, parseS: (v: string) => T): T | undefined {
    const k = this.#onlyLine(id, what)
    if (k < 0) return undefined
    const o = this.ix + k * STRIDE
    if ((this.index[o + F_ID]! & FOLDED) !== 0) {
      try {
        return parseS(this.rawAt(k))
      } catch (err) {
        throw this.#atText(err, k, 0)
      }
    }
    const vs = this.index[o + F_VALUE]!
    try {
      return parseB(this.buf, this.#headText(), this.start, vs, this.index[o + F_VALUE_END]!)
    } catch (err) {
      throw at(err, vs)
    }
  }

  /**
   * A SipParseError from a grammar run over the text of header line `k`
   * (rawAt), `base` chars into it, with its offset made a message offset:
   * folded lines map back through the joined line breaks.
   */
  #atText (err: unknown, k: number, base: number): unknown {
    if (!(err instanceof SipParseError)) return err
    const o = this.ix + k * STRIDE
    const vs = this.index[o + F_VALUE]!
    const off = base + err.offset
    const abs = (this.index[o + F_ID]! & FOLDED) !== 0 ? unfoldedOffset(this.buf, vs, this.index[o + F_VALUE_END]!, off) : vs + off
    return new SipParseError(err.message, abs, err.code)
  }

  // The string grammars over the text of header line `k`, their errors with
  // message offsets. No closure: a getter that created one would allocate a
  // context for its locals on every call, the fast path's too (measured
  // ~35 ns per CSeq read).

  /** parseUint over header line `k`. */
  #uintAt (k: number, what: string, max: number): number {
    try {
      return parseUint(this.rawAt(k), what, max)
    } catch (err) {
      throw this.#atText(err, k, 0)
    }
  }

  /** parseCSeq over header line `k`. */
  #cseqAt (k: number): CSeq {
    try {
      return parseCSeq(this.rawAt(k))
    } catch (err) {
      throw this.#atText(err, k, 0)
    }
  }

  /** parseCredentials over header line `k`. */
  #credentialsAt (k: number, what: string): DigestCredentials {
    try {
      return parseCredentials(this.rawAt(k), what, true)
    } catch (err) {
      throw this.#atText(err, k, 0)
    }
  }

  #rareViews (): RareViews {
    return this.#rare ??= { via: undefined, contact: undefined, recordRoute: undefined, expires: undefined, contentLength: undefined }
  }

  /** Every Via element, top first. */
  get via (): Via[] {
    const r = this.#rareViews()
    return r.via ??= this.#parseList(H_VIA, 'Via', parseViaBytes, viaText)
  }

  /** The top Via, parsed without parsing the others; undefined when there is none. */
  get topVia (): Via | undefined {
    if (this.#topVia === undefined) {
      const all = this.#rare?.via
      if (all !== undefined) {
        this.#topVia = all[0] ?? null
      } else {
        const k = this.findId(H_VIA)
        if (k < 0) {
          this.#topVia = null
        } else {
          const o = this.ix + k * STRIDE
          const vs = this.index[o + F_VALUE]!
          if ((this.index[o + F_ID]! & FOLDED) !== 0) {
            const v = this.rawAt(k)
            const r = splitListRanges(v)
            if (r.length === 0) throw emptyList('Via', vs)
            const s0 = r[0]!
            try {
              this.#topVia = viaText(v.slice(s0, r.length > 0 ? r[1]! : 0))
            } catch (err) {
              throw this.#atText(err, k, s0)
            }
          } else {
            // Only the first element of the first Via line is parsed, in
            // one pass that stops at its comma; anything unusual (an empty
            // element, a defect) takes the list split, which names the defect.
            const ve = this.index[o + F_VALUE_END]!
            try {
              this.#topVia = parseViaBytes(this.buf, this.#headText(), this.start, vs, ve, true)
              return this.#topVia
            } catch {}
            const e0 = firstElement(this.buf, vs, ve)
            if (e0 < 0) throw emptyList('Via', vs)
            const s0 = firstElementStart
            try {
              this.#topVia = parseViaBytes(this.buf, this.#headText(), this.start, s0, e0)
            } catch (err) {
              throw at(err, s0)
            }
          }
        }
      }
    }
    return this.#topVia ?? undefined
  }

  /** Index of the only header line with this id, -1 when absent; throws for duplicates. */
  #onlyLine (id: number, what: string): number {
    const k = this.findId(id)
    if (k >= 0 && (id >= HOT_DUPS || (this.index[this.ix - HOT + HOT_DUPS]! & (1 << id)) !== 0)) {
      const k2 = this.findId(id, k + 1)
      if (k2 >= 0) throw new SipParseError(`more than one ${what} header`, this.index[this.ix + k2 * STRIDE + F_LINE]!, 'SIP_ERR_DUPLICATE_HEADER')
    }
    return k
  }

  /**
   * CSeq; throws SipParseError when absent or malformed. Read from the bytes:
   * the number and a common method need no string work (RFC 3261 §20.16:
   * the number is below 2**31).
   */
  get cseq (): CSeq {
    if (this.#cseq === undefined) {
      const k = this.#onlyLine(H_CSEQ, 'CSeq')
      if (k < 0) throw new SipParseError('missing CSeq header', this.start, 'SIP_ERR_MISSING_HEADER')
      const o = this.ix + k * STRIDE
      const buf = this.buf
      const vs = this.index[o + F_VALUE]!
      const ve = this.index[o + F_VALUE_END]!
      let i = vs
      let seq = 0
      while (i < ve) {
        const d = buf[i]! - 0x30
        if (d < 0 || d > 9) break
        seq = seq * 10 + d
        if (seq > 0x7fffffff) break
        i++
      }
      const numEnd = i
      while (i < ve && (buf[i] === SP || buf[i] === HT)) i++
      const mStart = i
      const usual = numEnd > vs && seq <= 0x7fffffff && mStart > numEnd && mStart < ve && (this.index[o + F_ID]! & FOLDED) === 0
      // A known method is a token: only another needs the token check.
      let method = usual ? knownMethodAt(buf, mStart, ve) : undefined
      if (usual && method === undefined) {
        while (i < ve && IS_TOKEN[buf[i]!] === 1) i++
        if (i === ve) method = latin1(buf, mStart, ve)
      }
      if (method === undefined) {
        // Anything unusual takes the string grammar, which names the defect.
        this.#cseq = this.#cseqAt(k)
      } else {
        this.#cseq = { seq, method }
      }
    }
    return this.#cseq
  }

  /** Call-ID (RFC 3261 §25.1 callid = word ["@" word]); throws SipParseError when absent or malformed. */
  get callId (): string {
    if (this.#callId === undefined) {
      const k = this.#onlyLine(H_CALL_ID, 'Call-ID')
      if (k < 0) throw new SipParseError('missing Call-ID header', this.start, 'SIP_ERR_MISSING_HEADER')
      const o = this.ix + k * STRIDE
      const vs = this.index[o + F_VALUE]!
      const ve = this.index[o + F_VALUE_END]!
      if (ve === vs) throw new SipParseError('empty Call-ID header', vs, 'SIP_ERR_BAD_CALL_ID')
      if ((this.index[o + F_ID]! & (CLEAN | FOLDED)) === CLEAN) {
        this.#callId = this.rawAt(k)
        return this.#callId
      }
      const buf = this.buf
      // One sign test per byte: negative when any byte is outside 0x21..0x7e;
      // only then the precise loop (a defect, or non-ASCII).
      let out = 0
      for (let i = vs; i < ve; i++) {
        const c = buf[i]!
        out |= (c - 0x21) | (0x7e - c)
      }
      let ascii = true
      if (out < 0) {
        for (let i = vs; i < ve; i++) {
          const c = buf[i]!
          if (c <= SP || c === 0x7f) throw new SipParseError(`invalid Call-ID ${quote(this.valueAt(k))}`, i, 'SIP_ERR_BAD_CALL_ID')
          if (c > 0x7f) ascii = false
        }
      }
      // Non-ASCII octets (outside RFC 3261 word, but seen) read as UTF-8, as header('Call-ID') does.
      this.#callId = ascii ? this.rawAt(k) : utf8(buf, vs, ve)
    }
    return this.#callId
  }

  /** From; throws SipParseError when absent or malformed. */
  get from (): AddressHeader {
    if (this.#from === undefined) {
      const v = this.#parseOne(H_FROM, 'From', fromBytes, fromText)
      if (v === undefined) throw new SipParseError('missing From header', this.start, 'SIP_ERR_MISSING_HEADER')
      this.#from = v
    }
    return this.#from
  }

  /** To; throws SipParseError when absent or malformed. */
  get to (): AddressHeader {
    if (this.#to === undefined) {
      const v = this.#parseOne(H_TO, 'To', toBytes, toText)
      if (v === undefined) throw new SipParseError('missing To header', this.start, 'SIP_ERR_MISSING_HEADER')
      this.#to = v
    }
    return this.#to
  }

  /** Contact elements, or `*` (RFC 3261 §10.2.2); an empty list when absent. */
  get contact (): Contact[] | '*' {
    const r = this.#rareViews()
    if (r.contact === undefined) {
      const values = this.#listById(H_CONTACT)
      if (values.length === 1 && values[0] === '*') r.contact = '*'
      else r.contact = this.#parseList(H_CONTACT, 'Contact', parseContactBytes, contactText)
    }
    return r.contact
  }

  /** Route elements, top first. */
  get route (): NameAddr[] {
    if (this.#route === undefined) this.#route = this.#parseList(H_ROUTE, 'Route', routeBytes, routeText)
    return this.#route
  }

  /** Record-Route elements, top first. */
  get recordRoute (): NameAddr[] {
    const r = this.#rareViews()
    return r.recordRoute ??= this.#parseList(H_RECORD_ROUTE, 'Record-Route', recordRouteBytes, recordRouteText)
  }

  /** Max-Forwards (0..255), undefined when absent. */
  get maxForwards (): number | undefined {
    if (this.#maxForwards === undefined) {
      const k = this.#onlyLine(H_MAX_FORWARDS, 'Max-Forwards')
      if (k < 0) {
        this.#maxForwards = null
      } else {
        const o = this.ix + k * STRIDE
        const n = digitsAt(this.buf, this.index[o + F_VALUE]!, this.index[o + F_VALUE_END]!)
        this.#maxForwards = n >= 0 && n <= 255 ? n : this.#uintAt(k, 'Max-Forwards', 255)
      }
    }
    return this.#maxForwards ?? undefined
  }

  /** Expires header in seconds (RFC 3261 §20.19: up to 2**32-1; malformed is 3600, see parseExpires), undefined when absent. */
  get expires (): number | undefined {
    const r = this.#rareViews()
    if (r.expires === undefined) {
      const k = this.#onlyLine(H_EXPIRES, 'Expires')
      r.expires = k < 0 ? null : parseExpires(this.rawAt(k))
    }
    return r.expires ?? undefined
  }

  /** Content-Length header value, undefined when absent. */
  get contentLength (): number | undefined {
    const r = this.#rareViews()
    if (r.contentLength === undefined) {
      const k = this.#onlyLine(H_CONTENT_LENGTH, 'Content-Length')
      if (k < 0) {
        r.contentLength = null
      } else {
        // One unfolded line of up to 9 digits (below 2**31) is read from its bytes, as Max-Forwards: no value string.
        const o = this.ix + k * STRIDE
        const n = (this.index[o + F_ID]! & FOLDED) === 0 ? digitsAt(this.buf, this.index[o + F_VALUE]!, this.index[o + F_VALUE_END]!) : -2
        r.contentLength = n >= 0 ? n : this.#uintAt(k, 'Content-Length', 0x7fffffff)
      }
    }
    return r.contentLength ?? undefined
  }

  /** Authorization credentials (first header), undefined when absent. */
  get authorization (): DigestCredentials | undefined {
    const k = this.findId(H_AUTHORIZATION)
    return k < 0 ? undefined : this.#credentialsAt(k, 'Authorization')
  }

  /** Proxy-Authorization credentials (first header), undefined when absent. */
  get proxyAuthorization (): DigestCredentials | undefined {
    const k = this.findId(H_PROXY_AUTHORIZATION)
    return k < 0 ? undefined : this.#credentialsAt(k, 'Proxy-Authorization')
  }

  /** Every Authorization / Proxy-Authorization credential (one per header line). */
  credentials (proxy: boolean): DigestCredentials[] {
    const id = proxy ? H_PROXY_AUTHORIZATION : H_AUTHORIZATION
    const out: DigestCredentials[] = []
    for (let k = this.findId(id); k >= 0; k = this.findId(id, k + 1)) {
      out.push(this.#credentialsAt(k, proxy ? 'Proxy-Authorization' : 'Authorization'))
    }
    return out
  }

  /** Option tags of Require. */
  get require (): string[] {
    return this.#tokenList(H_REQUIRE, 'Require')
  }

  /** Option tags of Proxy-Require. */
  get proxyRequire (): string[] {
    return this.#tokenList(H_PROXY_REQUIRE, 'Proxy-Require')
  }

  /** Option tags of Supported. */
  get supported (): string[] {
    return this.#tokenList(H_SUPPORTED, 'Supported')
  }

  /** Every element of every line with this id, each a token (RFC 3261 §25.1 option-tag); errors point at the bad character. */
  #tokenList (id: number, what: string): string[] {
    const out: string[] = []
    for (let k = this.findId(id); k >= 0; k = this.findId(id, k + 1)) {
      const v = this.rawAt(k)
      const r = splitListRanges(v)
      for (let j = 0; j < r.length; j += 2) {
        const a = r[j]!
        const b = r[j + 1]!
        for (let i = a; i < b; i++) {
          const c = v.charCodeAt(i)
          if (c > 0xff || IS_TOKEN[c] !== 1) {
            throw this.#atText(new SipParseError(`invalid option tag ${quote(v.slice(a, b))} in ${what}`, i, 'SIP_ERR_BAD_TOKEN'), k, 0)
          }
        }
        out.push(a === 0 && b === v.length ? v : v.slice(a, b))
      }
    }
    return out
  }

  /** The message as a string (UTF-8). */
  toString (): string {
    return this.buf.toString('utf8', this.start, this.end)
  }
}

/** A SIP request. */
export class SipRequest extends SipMessage {
  /** Method, case-sensitive as received (RFC 3261 §7.1). */
  declare readonly method: string
  /** @internal Offsets of the Request-URI. */
  declare readonly uriStart: number
  declare readonly uriEnd: number
  declare readonly version: string
  /** @internal The Request-URI is ASCII (its text is then a slice of the decoded head). */
  declare uriAscii: boolean
  #uri?: string
  #requestUri?: SipUri

  /** @internal */
  constructor (buf: Buffer, start: number, startLineNext: number, index: Int32Array, ix: number, headerCount: number, headersEnd: number, bodyStart: number, end: number,
    method: string, uriStart: number, uriEnd: number, version: string) {
    super(buf, start, startLineNext, index, ix, headerCount, headersEnd, bodyStart, end)
    this.method = method
    this.uriStart = uriStart
    this.uriEnd = uriEnd
    this.version = version
    this.uriAscii = false
  }

  /** True for requests (on the prototype: no field per message). */
  get isRequest (): true {
    return true
  }

  /** The Request-URI text as received. */
  get uri (): string {
    if (this.#uri === undefined) {
      this.#uri = this.uriAscii ? this.headSlice(this.uriStart, this.uriEnd) : utf8(this.buf, this.uriStart, this.uriEnd)
    }
    return this.#uri
  }

  /** The parsed Request-URI; throws SipParseError when malformed. */
  get requestUri (): SipUri {
    if (this.#requestUri === undefined) {
      try {
        const text = this.uri
        // The usual sip: URI is read from the bytes; anything else (or a defect) takes parseUri.
        this.#requestUri = (this.uriAscii ? parseSipUriBytes(this.buf, text, this.uriStart) : undefined) ?? parseUri(text)
      } catch (err) {
        if (err instanceof SipParseError) throw new SipParseError(`${err.message} (Request-URI)`, this.uriStart + err.offset, err.code)
        throw err
      }
    }
    return this.#requestUri
  }
}

/** A SIP response. */
export class SipResponse extends SipMessage {
  /** Status code, 100..699. */
  declare readonly status: number
  declare readonly version: string
  readonly #reasonStart: number
  readonly #reasonEnd: number
  #reason?: string

  /** @internal */
  constructor (buf: Buffer, start: number, startLineNext: number, index: Int32Array, ix: number, headerCount: number, headersEnd: number, bodyStart: number, end: number,
    status: number, reasonStart: number, reasonEnd: number, version: string) {
    super(buf, start, startLineNext, index, ix, headerCount, headersEnd, bodyStart, end)
    this.status = status
    this.#reasonStart = reasonStart
    this.#reasonEnd = reasonEnd
    this.version = version
  }

  /** False for responses (on the prototype: no field per message). */
  get isRequest (): false {
    return false
  }

  /** Reason phrase (may be empty), UTF-8 decoded on first read. */
  get reason (): string {
    if (this.#reason === undefined) this.#reason = utf8(this.buf, this.#reasonStart, this.#reasonEnd)
    return this.#reason
  }
}

/**
 * A list header line without any element (RFC 3261 §25.1: Via, Route,
 * Record-Route and Contact hold at least one). Refused rather than skipped:
 * forwarding edits the first line, which must then hold the first element.
 */
function emptyList (what: string, at: number): SipParseError {
  return new SipParseError(`empty ${what} header`, at, 'SIP_ERR_BAD_HEADER')
}

/** A SipParseError from a grammar, with its offset made absolute from `base`. */
function at (err: unknown, base: number): unknown {
  if (!(err instanceof SipParseError)) return err
  const e = new SipParseError(err.message, base + err.offset, err.code)
  return e
}

const fromBytes = (buf: Buffer, head: string, base: number, s: number, e: number): AddressHeader => parseNameAddrBytes(buf, head, base, s, e, 'From', false) as ParsedNameAddr & AddressHeader
const toBytes = (buf: Buffer, head: string, base: number, s: number, e: number): AddressHeader => parseNameAddrBytes(buf, head, base, s, e, 'To', false) as ParsedNameAddr & AddressHeader
// The text variants parse folded lines: rawAt() text, one char per byte (latin1).
const fromText = (v: string): AddressHeader => parseAddressHeader(v, 'From', true)
const toText = (v: string): AddressHeader => parseAddressHeader(v, 'To', true)
const viaText = (v: string): Via => parseVia(v, true)
const contactText = (v: string): Contact => parseContact(v, true)
const routeBytes = (buf: Buffer, head: string, base: number, s: number, e: number, stop?: boolean): NameAddr => parseNameAddrBytes(buf, head, base, s, e, 'Route', false, stop)
const routeText = (v: string): NameAddr => parseNameAddr(v, 'Route', true)
const recordRouteBytes = (buf: Buffer, head: string, base: number, s: number, e: number, stop?: boolean): NameAddr => parseNameAddrBytes(buf, head, base, s, e, 'Record-Route', false, stop)
const recordRouteText = (v: string): NameAddr => parseNameAddr(v, 'Record-Route', true)

function hasTopLevelComma (v: string): boolean {
  return v.indexOf(',') >= 0
}

/** Offset in `buf` of char `off` of unfold(buf, s, e): the inverse mapping, for error offsets. */
function unfoldedOffset (buf: Buffer, s: number, e: number, off: number): number {
  let n = 0
  let from = s
  for (let i = s; i < e; i++) {
    const c = buf[i]!
    if (c === CR || c === LF) {
      let j = i
      while (j > from && (buf[j - 1] === SP || buf[j - 1] === HT)) j--
      if (off < n + (j - from)) return from + (off - n)
      n += j - from
      // The SP that stands for the line break.
      if (off === n) return j
      n++
      while (i < e && (buf[i] === CR || buf[i] === LF || buf[i] === SP || buf[i] === HT)) i++
      from = i
      i--
    }
  }
  return Math.min(from + (off - n), e)
}

/** Join a folded header value: each line break plus the whitespace after it becomes one SP. */
function unfold (buf: Buffer, s: number, e: number): string {
  let out = ''
  let from = s
  for (let i = s; i < e; i++) {
    const c = buf[i]!
    if (c === CR || c === LF) {
      let j = i
      while (j > from && (buf[j - 1] === SP || buf[j - 1] === HT)) j--
      out += latin1(buf, from, j)
      while (i < e && (buf[i] === CR || buf[i] === LF || buf[i] === SP || buf[i] === HT)) i++
      out += ' '
      from = i
      i--
    }
  }
  return out + latin1(buf, from, e)
}

/** The methods methodAt() returns as constants, with their bytes as little-endian words (bytes 0-3, 4-7, and byte 8). */
const METHODS = ['ACK', 'BYE', 'INFO', 'PRACK', 'REFER', 'INVITE', 'CANCEL', 'NOTIFY', 'UPDATE', 'OPTIONS', 'PUBLISH', 'MESSAGE', 'REGISTER', 'SUBSCRIBE']
const M_W0 = new Int32Array(METHODS.length)
const M_W1 = new Int32Array(METHODS.length)
const M_B8 = new Int32Array(METHODS.length)
/** Candidates by length: first and one-past-last index in METHODS (which is sorted by length). */
const M_FROM = new Int32Array(11)
const M_TO = new Int32Array(11)
for (let k = 0; k < METHODS.length; k++) {
  const m = METHODS[k]!
  for (let i = 0; i < m.length && i < 4; i++) M_W0[k]! |= m.charCodeAt(i) << (8 * i)
  for (let i = 4; i < m.length && i < 8; i++) M_W1[k]! |= m.charCodeAt(i) << (8 * (i - 4))
  M_B8[k] = m.length > 8 ? m.charCodeAt(8) : 0
  if (M_TO[m.length] === 0) M_FROM[m.length] = k
  M_TO[m.length] = k + 1
}

/**
 * Interned method string for the methods of RFC 3261 and its extensions
 * (no allocation), else a new string. Methods are case-sensitive (§7.1).
 * Compared four bytes at a time: a loop of charCodeAt compares per method
 * cost ~20 ns per CSeq read.
 */
function methodAt (buf: Buffer, s: number, e: number): string {
  return knownMethodAt(buf, s, e) ?? latin1(buf, s, e)
}

/** The interned method string for buf[s..e) (see methodAt), undefined when it is not one of them. */
function knownMethodAt (buf: Buffer, s: number, e: number): string | undefined {
  const n = e - s
  if (n < 3 || n > 9) return undefined
  const w0 = buf[s]! | buf[s + 1]! << 8 | buf[s + 2]! << 16 | (n > 3 ? buf[s + 3]! << 24 : 0)
  let w1 = 0
  for (let i = 4; i < n && i < 8; i++) w1 |= buf[s + i]! << (8 * (i - 4))
  const b8 = n > 8 ? buf[s + 8]! : 0
  for (let k = M_FROM[n]!, to = M_TO[n]!; k < to; k++) {
    if (M_W0[k] === w0 && M_W1[k] === w1 && M_B8[k] === b8) return METHODS[k]!
  }
  return undefined
}

/** Find the end of a line starting at `pos`: returns the offset of its line break (CR of CRLF, or LF), or -1. */
/** lineEndAt over the decoded text `head` of the bytes from `base`. */
function lineEndIn (head: string, buf: Buffer, base: number, pos: number): number {
  let lf = head.indexOf('\n', pos - base)
  if (lf < 0) return -1
  lf += base
  return lf > pos && buf[lf - 1] === CR ? lf - 1 : lf
}

function lineEndAt (buf: Buffer, pos: number, limit: number): number {
  const lf = buf.indexOf(LF, pos)
  if (lf < 0 || lf >= limit) return -1
  return lf > pos && buf[lf - 1] === CR ? lf - 1 : lf
}

function nextLine (buf: Buffer, eol: number): number {
  return buf[eol] === CR ? eol + 2 : eol + 1
}

/** End of the line at `pos` (its line break, or `limit`). */
function lineEndOr (buf: Buffer, pos: number, limit: number): number {
  const eol = lineEndAt(buf, pos, limit)
  return eol < 0 ? limit : eol
}

/** End of the header name that starts at `s` (its first non-token byte). */
function nameEndAt (buf: Buffer, s: number): number {
  let i = s
  while (IS_TOKEN[buf[i]!] === 1) i++
  return i
}

/** Offset of the colon of the header line at `pos`; throws when the line has none. */
function headerColon (buf: Buffer, pos: number, limit: number): number {
  const lineEnd = lineEndOr(buf, pos, limit)
  let colon = pos
  while (colon < lineEnd && buf[colon] !== COLON) colon++
  if (colon >= lineEnd) {
    throw new SipParseError(`missing ":" in header line ${quote(latin1(buf, pos, Math.min(lineEnd, pos + 40)))}`, pos, 'SIP_ERR_BAD_HEADER')
  }
  return colon
}

/** The SIP version text of a valid version; `SIP/2.0` without allocating. */
function versionText (buf: Buffer, s: number, e: number): string {
  if (e - s === 7 && buf[s] === 0x53 && buf[s + 1] === 0x49 && buf[s + 2] === 0x50 && buf[s + 3] === 0x2f &&
      buf[s + 4] === 0x32 && buf[s + 5] === 0x2e && buf[s + 6] === 0x30) return 'SIP/2.0'
  return latin1(buf, s, e)
}

function versionOk (buf: Buffer, s: number, e: number): boolean {
  // SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT (case-insensitive "SIP", RFC 3261 §25.1)
  if (e - s < 7) return false
  if ((buf[s]! | 0x20) !== 0x73 || (buf[s + 1]! | 0x20) !== 0x69 || (buf[s + 2]! | 0x20) !== 0x70 || buf[s + 3] !== 0x2f) return false
  let i = s + 4
  const d0 = i
  while (i < e && buf[i]! >= 0x30 && buf[i]! <= 0x39) i++
  if (i === d0 || i >= e || buf[i] !== 0x2e) return false
  i++
  const d1 = i
  while (i < e && buf[i]! >= 0x30 && buf[i]! <= 0x39) i++
  return i > d1 && i === e
}

/**
 * Index a message in `buf` from `start`. `limit` is where the available
 * bytes end. For a datagram (`datagram` true) the headers may end at `limit`
 * without an empty line and the body is the rest, cut to Content-Length.
 * For a stream, the caller has already found the empty line; Content-Length
 * is mandatory (RFC 3261 §18.3) and `end` is set from it (may lie past `limit`).
 */
export function indexMessage (buf: Buffer, start: number, limit: number, datagram: boolean, maxHeaders: number): SipRequest | SipResponse {
  // RFC 3261 §7.5: ignore CRLFs before the start line.
  while (start < limit && (buf[start] === CR || buf[start] === LF)) start++
  if (start >= limit) throw new SipParseError('empty message', start, 'SIP_ERR_EMPTY')
  // The wasm indexer (wasm-index.ts) takes the usual message and needs no
  // decoded text: the head is then decoded when a header is first read
  // (SipMessage#headText). Anything else, and every defect, is indexed here.
  const wasmCount = wasmIndex(buf, start, limit, maxHeaders)
  if (wasmCount >= 0) {
    const msg = fromWasm(buf, start, limit, datagram, wasmCount)
    if (msg !== undefined) return msg
  }
  // The message is decoded as latin1 once (a memcpy): header values are
  // substrings of it, and String#indexOf finds line ends with memchr and no
  // call into C++ (Buffer#indexOf costs more per line than the scan).
  // A large datagram is indexed over its bytes and only its head decoded later.
  const head = limit - start <= HEAD_DECODE_MAX ? latin1(buf, start, limit) : undefined
  const slEnd = head !== undefined ? lineEndIn(head, buf, start, start) : lineEndAt(buf, start, limit)
  const startLineEnd = slEnd < 0 ? limit : slEnd
  const startLineNext = slEnd < 0 ? limit : nextLine(buf, slEnd)

  // The first bare CR in a header line and where that line starts: an
  // error once the message is built (it then carries `partial`).
  let crAt = -1
  let crLine = 0
  // The next CR at or after the last search (`limit` when none): one search
  // per CRLF line, and the searches never overlap.
  let nextCr = -1
  // Index the header lines into the shared store (no allocation per message).
  if (storeUsed + HOT + STRIDE * 32 > store.length) {
    store = newBlock(STORE_BLOCK)
    storeUsed = 0
  }
  let index = store
  let ix = storeUsed + HOT
  for (let h = ix - HOT; h < ix - 1; h++) index[h] = -1
  let dups = 0
  let count = 0
  let pos = startLineNext
  let headersEnd = -1
  let bodyStart = limit
  while (pos < limit) {
    const c0 = buf[pos]!
    if (c0 === LF || (c0 === CR && pos + 1 < limit && buf[pos + 1] === LF)) {
      headersEnd = pos
      bodyStart = c0 === LF ? pos + 1 : pos + 2
      break
    }
    if (c0 === SP || c0 === HT) {
      // RFC 3261 §7.3.1: a line starting with whitespace continues the previous value.
      if (count === 0) throw new SipParseError('continuation line before the first header', pos, 'SIP_ERR_BAD_HEADER')
      const eol = lineEndAt(buf, pos, limit)
      const lineEnd = eol < 0 ? limit : eol
      const next = eol < 0 ? limit : nextLine(buf, eol)
      if (crAt < 0) {
        if (nextCr < pos) nextCr = crFrom(head, buf, start, pos, limit)
        if (nextCr < lineEnd) {
          crAt = nextCr
          crLine = index[ix + (count - 1) * STRIDE + F_LINE]!
        }
      }
      const o = ix + (count - 1) * STRIDE
      let ve = lineEnd
      while (ve > pos && (buf[ve - 1] === SP || buf[ve - 1] === HT)) ve--
      if (ve > pos) {
        // A value that was empty on its first line starts on this one.
        if (index[o + F_VALUE] === index[o + F_VALUE_END]) {
          let vs = pos
          while (vs < ve && (buf[vs] === SP || buf[vs] === HT)) vs++
          index[o + F_VALUE] = vs
        } else {
          index[o + F_ID] = index[o + F_ID]! | FOLDED
        }
        index[o + F_VALUE_END] = ve
      }
      pos = next
      continue
    }
    if (count >= maxHeaders) {
      throw new SipLimitError(`more than ${maxHeaders} header lines (option maxHeaders)`, pos, 'SIP_ERR_TOO_MANY_HEADERS')
    }
    // The usual line starts with a common name and its colon, matched in one
    // pass (matchCommonName). Any other: token, optional whitespace, colon;
    // anything else takes headerColon(), which finds the colon as RFC 3261
    // §7.3.1 allows and names the defect.
    // No bound checks: a header line ends in CR or LF before `limit` (a
    // stream's limit is past the empty line), or the datagram's Buffer ends
    // (buf[i] is then undefined): both stop these scans.
    let id: number
    let i: number
    const m = matchCommonName(buf, pos)
    if (m >= 0) {
      id = m >> 5
      i = pos + (m & 31)
    } else {
      i = pos
      while (IS_TOKEN[buf[i]!] === 1) i++
      let nameEnd = i
      while (buf[i] === SP || buf[i] === HT) i++
      if (nameEnd > pos && i < limit && buf[i] === COLON) {
        id = lookupHeaderBytes(buf, pos, nameEnd)
      } else {
        i = headerColon(buf, pos, limit)
        nameEnd = i
        while (nameEnd > pos && (buf[nameEnd - 1] === SP || buf[nameEnd - 1] === HT)) nameEnd--
        if (nameEnd === pos) throw new SipParseError(`header line without a name: ${quote(latin1(buf, pos, Math.min(lineEndOr(buf, pos, limit), pos + 40)))}`, pos, 'SIP_ERR_BAD_HEADER')
        id = lookupHeaderBytes(buf, pos, nameEnd)
        if (id === H_UNKNOWN) {
          // Known names matched byte for byte; any other must be a token (RFC 3261 §7.3.1).
          for (let j = pos; j < nameEnd; j++) {
            if (IS_TOKEN[buf[j]!] !== 1) {
              throw new SipParseError(`invalid character ${quote(String.fromCharCode(buf[j]!))} in header name ${quote(latin1(buf, pos, nameEnd))}`, j, 'SIP_ERR_BAD_HEADER')
            }
          }
        }
      }
    }
    i++
    let lf: number
    if (head !== undefined) {
      lf = head.indexOf('\n', i - start)
      if (lf >= 0) lf += start
    } else {
      lf = buf.indexOf(LF, i)
    }
    let lineEnd: number
    let next: number
    if (lf < 0 || lf >= limit) {
      lineEnd = next = limit
    } else {
      lineEnd = buf[lf - 1] === CR ? lf - 1 : lf
      next = lf + 1
    }
    if (crAt < 0) {
      if (nextCr < i) nextCr = crFrom(head, buf, start, i, limit)
      if (nextCr < lineEnd) {
        crAt = nextCr
        crLine = pos
      }
    }
    while (i < lineEnd && (buf[i] === SP || buf[i] === HT)) i++
    let ve = lineEnd
    while (ve > i && (buf[ve - 1] === SP || buf[ve - 1] === HT)) ve--
    if (index.length < ix + (count + 1) * STRIDE) {
      // Start a new block; earlier messages keep theirs.
      const grown = newBlock(Math.max(STORE_BLOCK, HOT + (count + 1) * STRIDE * 2))
      grown.set(index.subarray(ix - HOT, ix + count * STRIDE))
      index = store = grown
      ix = HOT
    }
    const o = ix + count * STRIDE
    index[o + F_ID] = id === H_UNKNOWN ? ID_MASK : id === H_CALL_ID && ve > i && visibleAscii(buf, i, ve) ? id | CLEAN : id
    index[o + F_LINE] = pos
    index[o + F_VALUE] = i
    index[o + F_VALUE_END] = ve
    if (id >= 0 && id < HOT_DUPS) {
      if (index[ix - HOT + id]! < 0) index[ix - HOT + id] = count
      else dups |= 1 << id
    }
    count++
    pos = next
  }
  if (headersEnd < 0) {
    if (!datagram) throw new SipParseError('message headers not terminated by an empty line', limit, 'SIP_ERR_INCOMPLETE')
    // A datagram without the empty line: the headers run to its end.
    headersEnd = limit
    bodyStart = limit
  }

  index[ix - HOT + HOT_DUPS] = dups
  storeUsed = ix + count * STRIDE
  return finish(buf, start, limit, datagram, startLineEnd, startLineNext, index, ix, count, headersEnd, bodyStart, head, crAt, crLine)
}

/**
 * The message from the wasm indexer's output (wasm-index.ts): its entries
 * copied into the shared store, offsets made absolute. Undefined when the
 * JS indexer must run (a stream message without the empty line).
 */
function fromWasm (buf: Buffer, start: number, limit: number, datagram: boolean, count: number): SipRequest | SipResponse | undefined {
  const W = wasmOut
  let headersEnd = W[OUT_I + 2]!
  let bodyStart = W[OUT_I + 3]!
  if (headersEnd < 0) {
    if (!datagram) return undefined
    headersEnd = bodyStart = limit
  }
  // The output is in the store's layout: hot slots, then the entries.
  let index = store
  if (count <= WASM_FIXED_LINES) {
    if (storeUsed + HOT + STRIDE * count > index.length) {
      index = store = newBlock(STORE_BLOCK)
      storeUsed = 0
    }
    index.set(wasmStores[count]!, storeUsed)
  } else {
    if (storeUsed + HOT + STRIDE * count > index.length) {
      index = store = newBlock(Math.max(STORE_BLOCK, HOT + count * STRIDE * 2))
      storeUsed = 0
    }
    index.set(W.subarray(OUT_I + 4, OUT_I + 4 + HOT + count * STRIDE), storeUsed)
  }
  const ix = storeUsed + HOT
  storeUsed = ix + count * STRIDE
  const startLineNext = W[OUT_I + 1]!
  const methodEnd = W[SL_I]!
  if (methodEnd >= 0) {
    // The usual request line, split by the wasm: no checks left to make.
    const req = new SipRequest(buf, start, startLineNext, index, ix, count, headersEnd, bodyStart, limit, methodAt(buf, start, methodEnd), methodEnd + 1, W[SL_I + 1]!, 'SIP/2.0')
    if (W[SL_I + 2] === 1) req.uriAscii = true
    return frame(buf, limit, datagram, req, index, ix, headersEnd, bodyStart)
  }
  const status = W[SL_I + 3]!
  if (status >= 0) {
    // The usual status line ("SIP/2.0" SP 3DIGIT, then SP or its end), checked by the wasm.
    const sle = W[OUT_I]!
    const res = new SipResponse(buf, start, startLineNext, index, ix, count, headersEnd, bodyStart, limit, status, start + 11 < sle ? start + 12 : sle, sle, 'SIP/2.0')
    return frame(buf, limit, datagram, res, index, ix, headersEnd, bodyStart)
  }
  return finish(buf, start, limit, datagram, W[OUT_I]!, startLineNext, index, ix, count, headersEnd, bodyStart, undefined, -1, 0)
}

/** The message from its index: start line, then body framing by Content-Length (RFC 3261 §18.3, §20.14). */
function finish (buf: Buffer, start: number, limit: number, datagram: boolean, startLineEnd: number, startLineNext: number, index: Int32Array, ix: number, count: number,
  headersEnd: number, bodyStart: number, head: string | undefined, crAt: number, crLine: number): SipRequest | SipResponse {
  const msg = buildStartLine(buf, start, startLineEnd, startLineNext, index, ix, count, headersEnd, bodyStart, limit)
  if (head !== undefined) msg.adoptHead(head)
  if (crAt >= 0) {
    // RFC 3261 §25.1: only CRLF ends a line, and LWS folds with CRLF; a bare
    // CR kept in a value could end a line for the next hop. A request keeps
    // `partial`: enough to answer 400.
    msg.bareCr = true
    throw withPartial(new SipParseError(`bare CR in the value of header ${quote(latin1(buf, crLine, nameEndAt(buf, crLine)))}`, crAt, 'SIP_ERR_BAD_HEADER'), msg)
  }
  return frame(buf, limit, datagram, msg, index, ix, headersEnd, bodyStart)
}

/** Body framing of an indexed message by Content-Length (RFC 3261 §18.3, §20.14). */
function frame (buf: Buffer, limit: number, datagram: boolean, msg: SipRequest | SipResponse, index: Int32Array, ix: number, headersEnd: number, bodyStart: number): SipRequest | SipResponse {
  // Framing needs Content-Length at once: its digits read from the bytes;
  // -1 absent, -2 not plain digits (or folded), -3 more than one.
  let contentLength = -1
  let clValue = -1
  const kl = index[ix - HOT + H_CONTENT_LENGTH]!
  if (kl >= 0) {
    const o = ix + kl * STRIDE
    clValue = index[o + F_VALUE]!
    contentLength = (index[ix - HOT + HOT_DUPS]! & (1 << H_CONTENT_LENGTH)) !== 0 ? -3 : digitsAt(buf, clValue, index[o + F_VALUE_END]!)
  }

  let cl: number | undefined = contentLength
  if (contentLength === -1) {
    cl = undefined
  } else if (contentLength < 0) {
    try {
      cl = msg.contentLength // throws the precise error
    } catch (err) {
      throw withPartial(err as SipParseError, msg)
    }
  }
  if (cl === undefined) {
    if (!datagram) throw withPartial(new SipParseError('missing Content-Length on a stream transport', headersEnd, 'SIP_ERR_NO_CONTENT_LENGTH'), msg)
    msg.end = limit
  } else if (datagram) {
    const available = limit - bodyStart
    if (cl > available) {
      // RFC 3261 §18.3: a datagram shorter than its Content-Length is an error (400 for a request).
      throw withPartial(new SipParseError(`Content-Length ${cl} exceeds body of ${available} bytes`, clValue, 'SIP_ERR_CONTENT_LENGTH'), msg)
    }
    // RFC 3261 §18.3: octets past Content-Length in a datagram are discarded.
    msg.end = bodyStart + cl
  } else {
    msg.end = bodyStart + cl
  }
  return msg
}

/** Offset of the first CR in buf[s..limit) (searched in `head`, the text from `start`, when there is one), or `limit`. */
function crFrom (head: string | undefined, buf: Buffer, start: number, s: number, limit: number): number {
  if (head !== undefined) {
    const r = head.indexOf('\r', s - start)
    return r < 0 ? limit : r + start
  }
  for (let j = s; j < limit; j++) if (buf[j] === CR) return j
  return limit
}

/** Whether buf[s..e) holds only bytes 0x21..0x7e. */
function visibleAscii (buf: Buffer, s: number, e: number): boolean {
  for (let i = s; i < e; i++) {
    const c = buf[i]!
    if (c < 0x21 || c > 0x7e) return false
  }
  return true
}

/** Decimal digits in buf[s..e) as a number; -2 when not all digits or too large. */
function digitsAt (buf: Buffer, s: number, e: number): number {
  if (e <= s || e - s > 9) return -2
  let n = 0
  for (let i = s; i < e; i++) {
    const d = buf[i]! - 0x30
    if (d < 0 || d > 9) return -2
    n = n * 10 + d
  }
  return n
}

function withPartial (err: SipParseError, msg: SipRequest | SipResponse): SipParseError {
  if (msg.isRequest) (err as SipParseError & { partial?: SipRequest }).partial = msg
  return err
}

/** A request-line error carrying `partial`: enough is known to answer 400 when the headers indexed fine. */
function badRequestLine (buf: Buffer, start: number, startLineEnd: number, startLineNext: number, index: Int32Array, ix: number, count: number,
  headersEnd: number, bodyStart: number, limit: number, methodEnd: number, what: string, at: number, code = 'SIP_ERR_BAD_START_LINE'): SipParseError {
  const err = new SipParseError(`${what} in request line ${quote(latin1(buf, start, Math.min(startLineEnd, start + 80)))}`, at, code)
  const partial = new SipRequest(buf, start, startLineNext, index, ix, count, headersEnd, bodyStart, limit, latin1(buf, start, methodEnd), methodEnd, methodEnd, 'SIP/2.0')
  ;(err as SipParseError & { partial?: SipRequest }).partial = partial
  return err
}

function buildStartLine (buf: Buffer, start: number, startLineEnd: number, startLineNext: number, index: Int32Array, ix: number, count: number, headersEnd: number, bodyStart: number, limit: number): SipRequest | SipResponse {
  // Status-Line starts with SIP-Version; no method token contains "/".
  if (startLineEnd - start >= 4 && (buf[start]! | 0x20) === 0x73 && (buf[start + 1]! | 0x20) === 0x69 &&
      (buf[start + 2]! | 0x20) === 0x70 && buf[start + 3] === 0x2f) {
    let sp1 = start + 4
    while (sp1 < startLineEnd && buf[sp1] !== SP) sp1++
    if (sp1 >= startLineEnd) throw new SipParseError(`invalid status line ${quote(latin1(buf, start, Math.min(startLineEnd, start + 80)))}`, start, 'SIP_ERR_BAD_START_LINE')
    if (!versionOk(buf, start, sp1)) throw new SipParseError(`invalid SIP version ${quote(latin1(buf, start, sp1))}`, start, 'SIP_ERR_BAD_VERSION')
    const c0 = sp1 + 1
    let status = 0
    let i = c0
    while (i < startLineEnd && buf[i]! >= 0x30 && buf[i]! <= 0x39 && i - c0 < 4) status = status * 10 + buf[i++]! - 0x30
    if (i - c0 !== 3 || status < 100 || status > 699 || (i < startLineEnd && buf[i] !== SP)) {
      throw new SipParseError(`invalid status code in ${quote(latin1(buf, start, Math.min(startLineEnd, start + 80)))}`, c0, 'SIP_ERR_BAD_STATUS')
    }
    return new SipResponse(buf, start, startLineNext, index, ix, count, headersEnd, bodyStart, limit, status, i < startLineEnd ? i + 1 : startLineEnd, startLineEnd, versionText(buf, start, sp1))
  }
  // Request-Line = Method SP Request-URI SP SIP-Version CRLF (exactly one SP each, §25.1).
  let i = start
  while (i < startLineEnd && IS_TOKEN[buf[i]!] === 1) i++
  const methodEnd = i
  if (methodEnd === start) throw new SipParseError(`invalid start line ${quote(latin1(buf, start, Math.min(startLineEnd, start + 80)))}`, start, 'SIP_ERR_BAD_START_LINE')
  if (methodEnd >= startLineEnd || buf[methodEnd] !== SP) throw badRequestLine(buf, start, startLineEnd, startLineNext, index, ix, count, headersEnd, bodyStart, limit, methodEnd, 'invalid method', methodEnd)
  const uriStart = methodEnd + 1
  if (buf[uriStart] === SP || buf[uriStart] === HT) throw badRequestLine(buf, start, startLineEnd, startLineNext, index, ix, count, headersEnd, bodyStart, limit, methodEnd, 'more than one SP before the Request-URI', uriStart)
  // The Request-URI's bytes are walked once: its end, its first control
  // character, whether it is ASCII (then its text is a slice of the head).
  let sp2 = uriStart
  let ctl = -1
  let high = 0
  for (; sp2 < startLineEnd; sp2++) {
    const c = buf[sp2]!
    if (c === SP) break
    if ((c < 0x21 || c === 0x7f) && ctl < 0) ctl = sp2
    high |= c
  }
  if (sp2 >= startLineEnd) throw badRequestLine(buf, start, startLineEnd, startLineNext, index, ix, count, headersEnd, bodyStart, limit, methodEnd, 'missing SIP version', startLineEnd)
  const vStart = sp2 + 1
  if (buf[vStart] === SP) throw badRequestLine(buf, start, startLineEnd, startLineNext, index, ix, count, headersEnd, bodyStart, limit, methodEnd, 'more than one SP before the SIP version', vStart)
  // An SP inside the Request-URI (RFC 4475 §3.1.2.8) leaves a non-version third field.
  let sp3 = vStart
  while (sp3 < startLineEnd && buf[sp3] !== SP) sp3++
  if (sp3 < startLineEnd) {
    // The third field is the version followed by whitespace (RFC 4475 §3.1.2.10),
    // or the tail of a Request-URI that holds whitespace (§3.1.2.8).
    let j = sp3
    while (j < startLineEnd && (buf[j] === SP || buf[j] === HT)) j++
    if (j === startLineEnd && versionOk(buf, vStart, sp3)) throw badRequestLine(buf, start, startLineEnd, startLineNext, index, ix, count, headersEnd, bodyStart, limit, methodEnd, 'whitespace after the SIP version', sp3)
    throw badRequestLine(buf, start, startLineEnd, startLineNext, index, ix, count, headersEnd, bodyStart, limit, methodEnd, 'whitespace inside the Request-URI', sp2)
  }
  if (buf[uriStart] === 0x3c) throw badRequestLine(buf, start, startLineEnd, startLineNext, index, ix, count, headersEnd, bodyStart, limit, methodEnd, 'Request-URI enclosed in <>', uriStart)
  if (!versionOk(buf, vStart, startLineEnd)) throw badRequestLine(buf, start, startLineEnd, startLineNext, index, ix, count, headersEnd, bodyStart, limit, methodEnd, 'invalid SIP version', vStart, 'SIP_ERR_BAD_VERSION')
  if (ctl >= 0) throw badRequestLine(buf, start, startLineEnd, startLineNext, index, ix, count, headersEnd, bodyStart, limit, methodEnd, 'control character in the Request-URI', ctl)
  const req = new SipRequest(buf, start, startLineNext, index, ix, count, headersEnd, bodyStart, limit,
    methodAt(buf, start, methodEnd), uriStart, sp2, versionText(buf, vStart, startLineEnd))
  if (high < 0x80) req.uriAscii = true
  return req
}

/**
 * Parse one whole message (one UDP datagram). Throws SipParseError for
 * malformed input; for a request whose headers could be indexed the error
 * carries `partial`, enough to answer 400.
 */
export function parseMessage (data: Buffer | string, options?: Partial<IndexLimits>): SipRequest | SipResponse {
  const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data
  return indexMessage(buf, 0, buf.length, true, options?.maxHeaders ?? DEFAULT_MAX_HEADERS)
}
