// Writes src/index-wasm.ts: the WebAssembly header indexer (see
// src/wasm-index.ts) as base64 module bytes. No toolchain: the module is
// assembled here, opcode by opcode (WebAssembly core spec 1.0 + SIMD).
//
//   node packages/sip-parser/scripts/gen-wasm.mjs           (after tsc -b: reads dist/header-names.js)
//   node packages/sip-parser/scripts/gen-wasm.mjs --check   exits 1 when src/index-wasm.ts is not what it would write
//
// Exports (offsets below are message offsets: memory offset - IN + base):
// - index(n, maxHeaders, base): the message's bytes are at IN..IN+n. Writes
//   at OUT (i32 slots) the start line end, next line, headers end (-1 if
//   none), body start, then in the layout of message.ts's header store: the
//   first line of each header id below 15 (-1 when absent), the mask of those
//   ids seen twice, then 4 i32 per header line: id (0xffff unknown, bit 16
//   folded, bit 17 a CLEAN Call-ID), line start, value start, value end.
//   Returns the number of header lines, or -1 when the message needs the JS
//   indexer (anything unusual, every defect, a bare CR in a header line):
//   that one then names the defect.
// - nameAddr(s, e, stopAtComma), via(s, e, stopAtComma), sipUri(s, e): the
//   usual forms of a name-addr, a Via element and a sip:/sips: URI over
//   memory offsets of the message still in memory (see src/wasm-index.ts);
//   -1 sends the caller to the JS grammar.
import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const names = await import(path.join(here, '..', 'dist', 'header-names.js'))
const chars = await import(path.join(here, '..', 'dist', 'chars.js'))

// Memory layout (must match src/wasm-index.ts).
const TOKEN = 0 // 256 bytes: 1 for RFC 3261 token characters
const SLOTS = 1024 // 1024 slots x 4 bytes: id + 1, length, u16 offset of the name's record
const NSLOT = 1024
const LENMASK = 5120 // 17 x 16 bytes: 0xff in the first `len` bytes
const RECORDS = 5632 // per name 48 bytes: lower-case name padded to 32, then its case-fold vector (0x20 on letters)
const ANGLE = 256 // 256 bytes: URI bytes inside <>: 0 ordinary, 1 '>', 2 not allowed (SP, HT, '<'), 3 ':'
const PVAL = 512 // 256 bytes: gen-value bytes: 1 token or ':', 2 '['
const NA_OUT = 12032 // nameAddr's output: 8 i32
const PT_OUT = 12096 // params' tracked values: tag, branch, received, rport as start/end pairs (start -1 absent, -2 no value)
const VIA_OUT = 12160 // via's output: 9 i32
const SL_OUT = 12224 // index's start line: method end, URI end, URI is ASCII (a request); the status code (a response)
const URI_OUT = 12240 // sipUri's output: 9 i32
const URI_USER = 9472 // 256 bytes: 1 for USER bytes but '%' (uri.ts USER_BYTE)
const URI_HOST = 9728 // 256 bytes: hostname bytes, 1 digit, 2 lower-case, 3 upper-case, 4 '-', 5 '.' (uri.ts HOST_BYTE)
const URI_PARAM = 9984 // 256 bytes: 1 for PARAMCHAR bytes but '%' (uri.ts PARAM_BYTE)
const VIA_HOST = 768 // 256 bytes: Via sent-by host bytes: 1 for '-' '.' '_', digits, lower-case; 2 upper-case
const OUT = 12288
// 48 bytes: nibble tables of the token set (RFC 3261 §25.1) for 16-byte
// scans (see nibbleScan): the low nibble's classes, the high nibble's for a
// token, the high nibble's for a token or ':' (a gen-value here).
const NIB = 10240
const IN = 65536
const HOT_N = 15

// ---- the name table: a perfect hash of (length, first, middle and last byte) ----
const entries = [] // [lower name, id]
for (let id = 0; id < names.HEADER_NAMES.length; id++) {
  entries.push([names.HEADER_NAMES[id].toLowerCase(), id])
}
for (let c = 0x61; c <= 0x7a; c++) {
  const id = names.headerId(String.fromCharCode(c))
  if (id !== names.H_UNKNOWN) entries.push([String.fromCharCode(c), id])
}
const K_LEN = 0x9e3779b1 | 0
const keyOf = s => Math.imul(s.length, K_LEN) ^ ((s.charCodeAt(0) | 0x20) << 8) ^ ((s.charCodeAt(s.length - 1) | 0x20) << 16) ^ ((s.charCodeAt(s.length >> 1) | 0x20) << 24)
let MUL = 0
for (let seed = 1; MUL === 0; seed++) {
  if (seed > 100000) throw new Error('no perfect hash for the header names')
  const m = Math.imul(seed, 0x85ebca6b) | 1
  const used = new Set()
  let ok = true
  for (const [s] of entries) {
    const slot = (Math.imul(keyOf(s), m) >>> 22) & (NSLOT - 1)
    if (used.has(slot)) { ok = false; break }
    used.add(slot)
  }
  if (ok) MUL = m
}

const data = new Uint8Array(OUT)
const TOKEN_CHARS = '-.!%*_+`\'~'
for (let c = 0x30; c <= 0x39; c++) data[TOKEN + c] = 1
for (let c = 0x41; c <= 0x5a; c++) data[TOKEN + c] = 1
for (let c = 0x61; c <= 0x7a; c++) data[TOKEN + c] = 1
for (const ch of TOKEN_CHARS) data[TOKEN + ch.charCodeAt(0)] = 1
data[ANGLE + 0x3e] = 1
data[ANGLE + 0x20] = data[ANGLE + 0x09] = data[ANGLE + 0x3c] = 2
data[ANGLE + 0x3a] = 3
for (let c = 0; c < 256; c++) if (data[TOKEN + c] === 1) data[PVAL + c] = 1
data[PVAL + 0x3a] = 1
data[PVAL + 0x5b] = 2
for (let c = 0x30; c <= 0x39; c++) data[VIA_HOST + c] = 1
for (let c = 0x61; c <= 0x7a; c++) data[VIA_HOST + c] = 1
for (let c = 0x41; c <= 0x5a; c++) data[VIA_HOST + c] = 2
data[VIA_HOST + 0x2d] = data[VIA_HOST + 0x2e] = data[VIA_HOST + 0x5f] = 1
// Token bytes as product classes (high nibble x low nibbles): a byte is in
// the set when lo[its low nibble] & hi[its high nibble] is not 0.
{
  for (let h = 2; h <= 7; h++) {
    let lo = 0
    for (let l = 0; l < 16; l++) if (data[TOKEN + h * 16 + l] === 1) lo |= 1 << l
    const bit = 1 << (h - 2)
    data[NIB + 16 + h] = bit
    data[NIB + 32 + h] = bit
    for (let l = 0; l < 16; l++) if ((lo >> l) & 1) data[NIB + l] |= bit
  }
  // ':' (0x3a): its own class, for the high-nibble table of gen-values.
  data[NIB + 0x0a] |= 0x40
  data[NIB + 32 + 3] |= 0x40
  for (let ch = 0; ch < 256; ch++) {
    const inT = (data[NIB + (ch & 15)] & (ch < 128 ? data[NIB + 16 + (ch >> 4)] : 0)) !== 0
    const inP = (data[NIB + (ch & 15)] & (ch < 128 ? data[NIB + 32 + (ch >> 4)] : 0)) !== 0
    if (inT !== (data[TOKEN + ch] === 1) || inP !== (data[PVAL + ch] === 1)) throw new Error(`nibble tables disagree at ${ch}`)
  }
}
for (let len = 0; len <= 16; len++) for (let i = 0; i < len; i++) data[LENMASK + len * 16 + i] = 0xff
for (let ch = 0; ch < 128; ch++) {
  if (ch === 0x25) continue
  if (chars.USER[ch] === 1) data[URI_USER + ch] = 1
  if (chars.PARAMCHAR[ch] === 1) data[URI_PARAM + ch] = 1
}
for (let ch = 0x30; ch <= 0x39; ch++) data[URI_HOST + ch] = 1
for (let ch = 0x61; ch <= 0x7a; ch++) data[URI_HOST + ch] = 2
for (let ch = 0x41; ch <= 0x5a; ch++) data[URI_HOST + ch] = 3
data[URI_HOST + 0x2d] = 4
data[URI_HOST + 0x2e] = 5
let rec = RECORDS
for (const [s, id] of entries) {
  if (s.length > 32 || !/^[a-z-]+$/.test(s)) throw new Error(`name ${s} does not fit the records`)
  const slot = (Math.imul(keyOf(s), MUL) >>> 22) & (NSLOT - 1)
  const a = SLOTS + slot * 4
  data[a] = id + 1
  data[a + 1] = s.length
  data[a + 2] = rec & 0xff
  data[a + 3] = rec >> 8
  for (let i = 0; i < s.length; i++) {
    data[rec + i] = s.charCodeAt(i)
    // Letters compare case-folded, '-' exactly (so that no CR, which is '-' | 0x20, matches it).
    if (i < 16 && s[i] !== '-') data[rec + 32 + i] = 0x20
  }
  rec += 48
}
if (rec > URI_USER) throw new Error('name table overflows')

// ---- encoding helpers ----
function uleb (v) {
  const out = []
  do {
    let b = v & 0x7f
    v >>>= 7
    if (v !== 0) b |= 0x80
    out.push(b)
  } while (v !== 0)
  return out
}
function sleb (v) {
  const out = []
  for (;;) {
    const b = v & 0x7f
    v >>= 7
    if ((v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0)) { out.push(b); return out }
    out.push(b | 0x80)
  }
}
const vec = items => [...uleb(items.length), ...items.flat()]
const section = (id, bytes) => [id, ...uleb(bytes.length), ...bytes]
const str = s => vec([...s].map(c => c.charCodeAt(0)))

const I32 = 0x7f
const V128 = 0x7b
const EMPTY = 0x40

// Instructions, flattened as they are written.
const get = x => [0x20, x]
const set = x => [0x21, x]
const tee = x => [0x22, x]
const c = v => [0x41, ...sleb(v)]
const load8 = (off = 0) => [0x2d, 0, ...uleb(off)]
const load32 = (off = 0) => [0x28, 2, ...uleb(off)]
const store32 = (off = 0) => [0x36, 2, ...uleb(off)]
const store8 = (off = 0) => [0x3a, 0, ...uleb(off)]
const load16 = (off = 0) => [0x2f, 1, ...uleb(off)]
// Eight bytes compared as one i64 (little-endian, as wasm loads them).
const slebBig = v => {
  const out = []
  for (;;) {
    const b = Number(v & 0x7fn)
    v >>= 7n
    if ((v === 0n && (b & 0x40) === 0) || (v === -1n && (b & 0x40) !== 0)) { out.push(b); return out }
    out.push(b | 0x80)
  }
}
const load64 = (off = 0) => [0x29, 3, ...uleb(off)]
const c64 = str => [0x42, ...slebBig(BigInt.asIntN(64, [...str].reduce((a, ch, k) => a | (BigInt(ch.charCodeAt(0)) << BigInt(8 * k)), 0n)))]
const ne64 = [0x52]
const eqz = [0x45]; const eq = [0x46]; const ne = [0x47]; const ltS = [0x48]; const ltU = [0x49]
const gtS = [0x4a]; const gtU = [0x4b]; const geS = [0x4e]; const geU = [0x4f]; const leS = [0x4c]
const ctz = [0x68]; const add = [0x6a]; const sub = [0x6b]; const mul = [0x6c]
const and = [0x71]; const or = [0x72]; const xor = [0x73]; const shl = [0x74]; const shrU = [0x76]
const br = d => [0x0c, d]
const brIf = d => [0x0d, d]
const ret = [0x0f]
const block = (...body) => [0x02, EMPTY, ...body.flat(), 0x0b]
const loop = (...body) => [0x03, EMPTY, ...body.flat(), 0x0b]
const if_ = (...body) => [0x04, EMPTY, ...body.flat(), 0x0b]
const ifElse = (a, b) => [0x04, EMPTY, ...a.flat(), 0x05, ...b.flat(), 0x0b]
const call = f => [0x10, f]
const simd = op => [0xfd, ...uleb(op)]
const v128load = [...simd(0x00), 0, 0]
const v128store = [...simd(0x0b), 0, 0]
const splat8 = simd(0x0f)
const i8eq = simd(0x23)
const i8ltU = simd(0x26)
const i8gtU = simd(0x28)
const bitmask = simd(0x64)
const v128zero = [...simd(0x0c), ...new Array(16).fill(0)]
const v128ones = [...simd(0x0c), ...new Array(16).fill(0xff)]
const v128loadAt = off => [...simd(0x00), 0, ...uleb(off)]
const swizzle = simd(0x0e)
const v128const = bytes => [...simd(0x0c), ...bytes]
const i8shrU = simd(0x6d)
const vAnd = simd(0x4e)
const vOr = simd(0x50)
const vXor = simd(0x51)
const anyTrue = simd(0x53)

const CR = 0x0d; const LF = 0x0a; const SP = 0x20; const HT = 0x09; const COLON = 0x3a

// ---- func 1: findLF(p, end, strict) -> lf, `end` when none, -1 for a lone CR (strict) ----
// 16 bytes per step: the masks of LF and CR; a CR is allowed only right before the LF.
const F = { p: 0, end: 1, strict: 2, mLF: 3, mCR: 4, t: 5, pend: 6, v: 7 }
const findLF = {
  params: [I32, I32, I32],
  results: [I32],
  locals: [[4, I32], [1, V128]],
  body: [] // set below, once the opcodes it uses are named
}
findLF.body = [
  loop(
    get(F.p), get(F.end), geS,
    if_(
      get(F.pend), get(F.strict), and, if_(c(-1), ret),
      get(F.end), ret
    ),
    get(F.p), v128load, set(F.v),
    get(F.v), c(LF), splat8, i8eq, bitmask, set(F.mLF),
    get(F.v), c(CR), splat8, i8eq, bitmask, set(F.mCR),
    get(F.mLF),
    if_(
      get(F.mLF), ctz, set(F.t),
      get(F.strict),
      if_(
        // bad = CRs below bit t, except bit t-1; and a pending CR needs t = 0.
        get(F.mCR), c(1), get(F.t), shl, c(1), sub, and,
        c(1), get(F.t), shl, c(1), shrU, c(-1), xor, and,
        get(F.pend), get(F.t), c(0), ne, and, or,
        if_(c(-1), ret)
      ),
      get(F.p), get(F.t), add, ret
    ),
    get(F.strict), get(F.mCR), c(0), ne, and,
    if_(
      get(F.pend), if_(c(-1), ret),
      get(F.mCR), c(0x8000), ne, if_(c(-1), ret),
      c(1), set(F.pend)
    ),
    get(F.p), c(16), add, set(F.p),
    br(0)
  ),
  c(-1)
]

// ---- func 0: index(n, maxHeaders) -> count, or -1 (use the JS indexer) ----
const X = {
  n: 0, maxH: 1, base: 2, pos: 3, end: 4, i: 5, ch: 6, lf: 7, lineEnd: 8, next: 9, count: 10, ve: 11, vs: 12, h: 13,
  nameEnd: 14, id: 15, e: 16, slot: 17, k: 18, noff: 19, dups: 20, len: 21, adj: 22, v: 23
}
const E0 = OUT + 80 // first entry
const isWs = x => [get(x), c(SP), eq, get(x), c(HT), eq, or].flat()
// lineEnd/next from lf (`end` when none): a CR right before the LF is part of the line break.
const lineFromLf = [
  get(X.lf), get(X.end), geS,
  ifElse(
    [get(X.end), set(X.lineEnd), get(X.end), set(X.next)],
    [
      get(X.lf), c(1), add, set(X.next),
      get(X.lf), c(1), sub, load8(), c(CR), eq,
      ifElse([get(X.lf), c(1), sub, set(X.lineEnd)], [get(X.lf), set(X.lineEnd)])
    ]
  )
].flat()
// ve = lineEnd trimmed of SP/HT back to `floor`.
const trimVe = floor => [
  get(X.lineEnd), set(X.ve),
  block(loop(
    get(X.ve), get(floor), leS, brIf(1),
    get(X.ve), c(1), sub, load8(), set(X.ch),
    isWs(X.ch), eqz, brIf(1),
    get(X.ve), c(1), sub, set(X.ve),
    br(0)
  ))
].flat()

// slot = byte offset of the name's slot, from len and the name at pos (see keyOf).
const slotOf = [
  get(X.len), c(K_LEN), mul,
  get(X.pos), load8(), c(0x20), or, c(8), shl, xor,
  get(X.pos), get(X.len), add, c(1), sub, load8(), c(0x20), or, c(16), shl, xor,
  get(X.pos), get(X.len), c(1), shrU, add, load8(), c(0x20), or, c(24), shl, xor,
  c(MUL), mul, c(22), shrU, c(NSLOT - 1), and, c(2), shl, set(X.slot)
].flat()

const index = {
  params: [I32, I32, I32],
  results: [I32],
  locals: [[20, I32], [1, V128]],
  body: [
    // Offsets written are message offsets: memory offset + adj.
    get(X.base), c(IN), sub, set(X.adj),
    c(IN), set(X.pos),
    c(IN), get(X.n), add, set(X.end),
    // Zeros after the message: the scans stop there and the 16-byte loads see no CR/LF.
    get(X.end), v128zero, v128store,
    // Hot ids absent: 16 slots of -1 (the last, the dups mask, is written at the end).
    [0, 16, 32, 48].map(o => [c(OUT + 16 + o), v128ones, v128store]),
    c(0), set(X.dups),
    c(0), set(X.count),
    // The start line (its bytes are checked by the JS start-line parser).
    get(X.pos), get(X.end), c(0), call(1), set(X.lf),
    get(X.lf), get(X.end), geS,
    ifElse(
      [c(0), get(X.end), get(X.adj), add, store32(OUT), c(0), get(X.end), get(X.adj), add, store32(OUT + 4), get(X.end), set(X.pos)],
      [
        c(0), get(X.lf), get(X.lf), c(1), sub, load8(), c(CR), eq, sub, get(X.adj), add, store32(OUT),
        get(X.lf), c(1), add, set(X.pos),
        c(0), get(X.pos), get(X.adj), add, store32(OUT + 4)
      ]
    ),
    c(0), c(-1), store32(OUT + 8),
    c(0), get(X.end), get(X.adj), add, store32(OUT + 12),
    // The usual request line, Method SP Request-URI SP "SIP/2.0" (RFC 3261
    // §25.1): SL_OUT gets the method end, the URI end and whether the URI is
    // ASCII; -1 first (a response, or anything else) leaves it to the JS.
    c(0), c(-1), store32(SL_OUT),
    get(X.lf), get(X.end), geS,
    ifElse([get(X.end), set(X.lineEnd)], [get(X.lf), get(X.lf), c(1), sub, load8(), c(CR), eq, sub, set(X.lineEnd)]),
    block(
      c(IN), set(X.i),
      block(loop(
        get(X.i), get(X.lineEnd), geS, brIf(1),
        get(X.i), load8(), load8(TOKEN), eqz, brIf(1),
        get(X.i), c(1), add, set(X.i), br(0)
      )),
      get(X.i), c(IN), eq, brIf(0),
      get(X.i), get(X.lineEnd), geS, brIf(0),
      get(X.i), load8(), c(SP), ne, brIf(0),
      get(X.i), set(X.nameEnd),
      get(X.i), c(1), add, tee(X.i), load8(), set(X.ch),
      isWs(X.ch), get(X.ch), c(0x3c), eq, or, brIf(0),
      // The URI up to its first byte below 0x21 or 0x7f, 16 bytes per step
      // (the line's CR or LF, or the zeros after the message, end it), h
      // gathering the high bits of its bytes; it must stop at SP.
      c(0), set(X.h),
      block(loop(
        get(X.i), v128load, tee(X.v), c(0x21), splat8, i8ltU, get(X.v), c(0x7f), splat8, i8eq, vOr, bitmask, tee(X.k),
        if_(
          get(X.h), get(X.v), bitmask, c(1), get(X.k), ctz, tee(X.k), shl, c(1), sub, and, or, set(X.h),
          get(X.i), get(X.k), add, set(X.i),
          br(2)
        ),
        get(X.h), get(X.v), bitmask, or, set(X.h),
        get(X.i), c(16), add, set(X.i), br(0)
      )),
      get(X.i), load8(), c(SP), ne, brIf(0),
      get(X.lineEnd), get(X.i), sub, c(8), ne, brIf(0),
      get(X.i), load64(), c64(' SIP/2.0'), ne64, brIf(0),
      c(0), get(X.nameEnd), get(X.adj), add, store32(SL_OUT),
      c(0), get(X.i), get(X.adj), add, store32(SL_OUT + 4),
      c(0), get(X.h), eqz, store32(SL_OUT + 8)
    ),
    // The usual status line, "SIP/2.0" SP 3DIGIT [SP Reason-Phrase] (RFC
    // 3261 §25.1, status 100..699): SL_OUT + 12 gets the code; -1 leaves
    // the line to the JS.
    c(0), c(-1), store32(SL_OUT + 12),
    block(
      c(0), load32(SL_OUT), c(0), geS, brIf(0),
      get(X.lineEnd), c(IN + 11), ltS, brIf(0),
      c(IN), load64(), c64('SIP/2.0 '), ne64, brIf(0),
      c(IN + 8), load8(), c(0x31), sub, tee(X.k), c(5), gtU, brIf(0),
      c(IN + 9), load8(), c(0x30), sub, tee(X.ch), c(9), gtU, brIf(0),
      c(IN + 10), load8(), c(0x30), sub, tee(X.h), c(9), gtU, brIf(0),
      get(X.lineEnd), c(IN + 11), gtS, if_(c(IN + 11), load8(), c(SP), ne, brIf(1)),
      c(0), get(X.k), c(1), add, c(100), mul, get(X.ch), c(10), mul, add, get(X.h), add, store32(SL_OUT + 12)
    ),
    block(loop(
      get(X.pos), get(X.end), geS, brIf(1),
      get(X.pos), load8(), set(X.ch),
      // A byte below '!' starts the empty line, a continuation, or a defect
      // (which the name scan below sends to the JS indexer): one test for the usual line.
      get(X.ch), c(0x21), ltU,
      if_(
        // The empty line: LF, or CRLF.
        get(X.ch), c(LF), eq,
        if_(c(0), get(X.pos), get(X.adj), add, store32(OUT + 8), c(0), get(X.pos), c(1), add, get(X.adj), add, store32(OUT + 12), br(3)),
        get(X.ch), c(CR), eq,
        if_(
          get(X.pos), load8(1), c(LF), ne, if_(c(-1), ret),
          c(0), get(X.pos), get(X.adj), add, store32(OUT + 8), c(0), get(X.pos), c(2), add, get(X.adj), add, store32(OUT + 12), br(3)
        ),
        isWs(X.ch),
        if_(
          // RFC 3261 §7.3.1 continuation line.
          get(X.count), eqz, if_(c(-1), ret),
          get(X.pos), get(X.end), c(1), call(1), tee(X.lf), c(0), ltS, if_(c(-1), ret),
          lineFromLf,
          trimVe(X.pos),
          get(X.ve), get(X.pos), gtS,
          if_(
            get(X.count), c(4), shl, c(E0 - 16), add, set(X.e),
            get(X.e), load32(8), get(X.e), load32(12), eq,
            ifElse(
              [
                get(X.pos), set(X.vs),
                block(loop(
                  get(X.vs), get(X.ve), geS, brIf(1),
                  get(X.vs), load8(), set(X.ch), isWs(X.ch), eqz, brIf(1),
                  get(X.vs), c(1), add, set(X.vs), br(0)
                )),
                get(X.e), get(X.vs), get(X.adj), add, store32(8)
              ],
              [get(X.e), get(X.e), load32(0), c(0x10000), or, store32(0)]
            ),
            get(X.e), get(X.ve), get(X.adj), add, store32(12)
          ),
          get(X.next), set(X.pos),
          br(2)
        ),
      ),
      get(X.count), get(X.maxH), geS, if_(c(-1), ret),
      c(0xffff), set(X.id),
      block(
        block(
          // The usual line: a known name directly followed by ':' in the first 16 bytes, confirmed in one compare.
          get(X.pos), v128load, tee(X.v), c(COLON), splat8, i8eq, bitmask, tee(X.k), eqz, brIf(0),
          get(X.k), ctz, tee(X.len), eqz, brIf(0),
          // (SP or HT before the ':' never matches: the compare below folds only letters.)
          slotOf,
          get(X.slot), load8(SLOTS + 1), get(X.len), ne, brIf(0),
          get(X.slot), load16(SLOTS + 2), set(X.noff),
          get(X.v), get(X.noff), v128loadAt(32), vOr, get(X.len), c(4), shl, v128loadAt(LENMASK), vAnd,
          get(X.noff), v128loadAt(0), vXor, anyTrue, brIf(0),
          get(X.slot), load8(SLOTS), c(1), sub, set(X.id),
          get(X.pos), get(X.len), add, set(X.i),
          br(1)
        ),
        // Any other: token, optional whitespace, ':'; the name looked up byte by byte.
        get(X.pos), set(X.i),
        block(loop(
          get(X.i), load8(), load8(TOKEN), eqz, brIf(1),
          get(X.i), c(1), add, set(X.i),
          br(0)
        )),
        get(X.i), set(X.nameEnd),
        get(X.nameEnd), get(X.pos), eq, if_(c(-1), ret),
        block(loop(
          get(X.i), load8(), set(X.ch), isWs(X.ch), eqz, brIf(1),
          get(X.i), c(1), add, set(X.i), br(0)
        )),
        get(X.i), get(X.end), geS, if_(c(-1), ret),
        get(X.i), load8(), c(COLON), ne, if_(c(-1), ret),
        get(X.nameEnd), get(X.pos), sub, set(X.len),
        slotOf,
        get(X.slot), load8(SLOTS + 1), get(X.len), eq,
        if_(
          get(X.slot), load16(SLOTS + 2), set(X.noff),
          c(0), set(X.k),
          block(loop(
            get(X.k), get(X.len), geS,
            if_(get(X.slot), load8(SLOTS), c(1), sub, set(X.id), br(2)),
            // Token bytes only here: '| 0x20' folds letters and leaves '-'.
            get(X.pos), get(X.k), add, load8(), c(0x20), or,
            get(X.noff), get(X.k), add, load8(), ne, brIf(1),
            get(X.k), c(1), add, set(X.k), br(0)
          ))
        )
      ),
      get(X.i), c(1), add, set(X.i),
      // The line's end (findLF, strict, inline): 16 bytes per step, one mask
      // of CR and LF (a swizzle: bytes 0..15 index the table, the others
      // read 0). The first is the line's end: an LF, or a CR right before
      // one (any other CR sends the message to the JS indexer, which names it).
      get(X.i), set(X.lf),
      block(loop(
        get(X.lf), get(X.end), geS, if_(get(X.end), set(X.lineEnd), get(X.end), set(X.next), br(2)),
        v128const(Array.from({ length: 16 }, (_, b) => (b === LF || b === CR) ? 0x80 : 0)), get(X.lf), v128load, swizzle, bitmask, tee(X.k),
        if_(
          get(X.lf), get(X.k), ctz, add, tee(X.lineEnd), load8(), c(LF), eq,
          if_(get(X.lineEnd), c(1), add, set(X.next), br(3)),
          get(X.lineEnd), load8(1), c(LF), ne, if_(c(-1), ret),
          get(X.lineEnd), c(2), add, set(X.next), br(2)
        ),
        get(X.lf), c(16), add, set(X.lf),
        br(0)
      )),
      // The usual ": value": one SP then a byte that is not SP or HT (the
      // line's CR counts; a value is never past lineEnd).
      get(X.i), load8(), c(SP), eq, get(X.i), load8(1), c(0x21), geU, and,
      ifElse(
        [get(X.i), c(1), add, set(X.i)],
        [block(loop(
          get(X.i), get(X.lineEnd), geS, brIf(1),
          get(X.i), load8(), set(X.ch), isWs(X.ch), eqz, brIf(1),
          get(X.i), c(1), add, set(X.i), br(0)
        ))]
      ),
      // The usual value ends in a byte that is not SP or HT.
      get(X.lineEnd), c(1), sub, load8(), c(0x21), geU, get(X.lineEnd), get(X.i), gtS, and,
      ifElse([get(X.lineEnd), set(X.ve)], [trimVe(X.i)]),
      get(X.count), c(4), shl, c(E0), add, set(X.e),
      get(X.e), get(X.id), store32(0),
      get(X.e), get(X.pos), get(X.adj), add, store32(4),
      get(X.e), get(X.i), get(X.adj), add, store32(8),
      get(X.e), get(X.ve), get(X.adj), add, store32(12),
      // A Call-ID of 0x21..0x7e bytes only (RFC 3261 §25.1 word chars are
      // among them) is marked CLEAN (bit 17): its getter skips that check.
      get(X.id), c(3), eq, get(X.ve), get(X.i), gtS, and,
      if_(
        get(X.i), set(X.k),
        block(loop(
          get(X.k), get(X.ve), geS, if_(get(X.e), get(X.e), load32(0), c(0x20000), or, store32(0), br(2)),
          get(X.k), v128load, tee(X.v), c(0x21), splat8, i8ltU, get(X.v), c(0x7e), splat8, i8gtU, vOr, bitmask,
          c(1), get(X.ve), get(X.k), sub, shl, c(1), sub, get(X.ve), get(X.k), sub, c(16), geS, c(0xffff), mul, or, and, brIf(1),
          get(X.k), c(16), add, set(X.k), br(0)
        ))
      ),
      get(X.id), c(HOT_N), ltU,
      if_(
        get(X.id), c(2), shl, load32(OUT + 16), c(0), ltS,
        ifElse(
          [get(X.id), c(2), shl, get(X.count), store32(OUT + 16)],
          [get(X.dups), c(1), get(X.id), shl, or, set(X.dups)]
        )
      ),
      get(X.count), c(1), add, set(X.count),
      get(X.next), set(X.pos),
      br(0)
    )),
    c(0), get(X.dups), store32(OUT + 16 + HOT_N * 4),
    get(X.count)
  ]
}


// ---- func 2: nameAddr(s, e, stopAtComma) -> stop, or -1 (use the JS grammar) ----
// grammar-bytes.ts parseNameAddrBytes (not a Contact) over the message copy
// at IN, for the usual forms: an optional display name (quoted without
// escapes, or tokens), <URI>, then ;name[=token] parameters with the first
// tag tracked. Writes at NA_OUT: raw start, raw end, display name start (-1
// none), its end, its high bit, URI start, URI end, parameters start; the
// tag at PT_OUT (see params).
const N = {
  s: 0, e: 1, stop: 2, end: 3, i: 4, ch: 5, rawStart: 6, j: 7, high: 8, lt: 9, gt: 10, colon: 11, t: 12,
  ms: 13, mc: 14, dnS: 15, dnE: 16, dnHigh: 17, dnStop: 18, v: 19
}
const DQ = 0x22; const BS = 0x5c; const LT = 0x3c; const SEMI = 0x3b; const COMMA = 0x2c; const EQ = 0x3d
// The whitespace tests below first ask whether the byte is above SP (the usual case: one test).
const ws4 = x => [get(x), c(SP), eq, get(x), c(HT), eq, or, get(x), c(CR), eq, or, get(x), c(LF), eq, or].flat()
// x = first non-whitespace at or after x, below lim
const skipWs4 = (x, lim) => block(loop(
  get(x), get(lim), geS, brIf(1),
  get(x), load8(), tee(N.ch), c(0x20), gtU, brIf(1), ws4(N.ch), eqz, brIf(1),
  get(x), c(1), add, set(x), br(0)
))
// y = end of [x, y) trimmed of whitespace
const trim4 = (x, y) => block(loop(
  get(y), get(x), leS, brIf(1),
  get(y), c(1), sub, load8(), tee(N.ch), c(0x20), gtU, brIf(1), ws4(N.ch), eqz, brIf(1),
  get(y), c(1), sub, set(y), br(0)
))
const bail = [c(-1), ret]
const nameAddr = {
  params: [I32, I32, I32],
  results: [I32],
  locals: [[16, I32], [1, V128]],
  body: [
    get(N.e), set(N.end), trim4(N.s, N.end),
    get(N.s), set(N.i), skipWs4(N.i, N.end),
    get(N.i), set(N.rawStart),
    get(N.i), get(N.end), geS, if_(bail),
    c(-1), set(N.dnS), c(0), set(N.dnE), c(0), set(N.dnHigh),
    get(N.i), load8(), set(N.ch),
    get(N.ch), c(DQ), eq,
    ifElse(
      [
        get(N.i), c(1), add, set(N.j), c(0), set(N.high),
        block(loop(
          get(N.j), get(N.end), geS, brIf(1),
          get(N.j), load8(), tee(N.ch), c(DQ), eq, get(N.ch), c(BS), eq, or, brIf(1),
          get(N.high), get(N.ch), or, set(N.high),
          get(N.j), c(1), add, set(N.j), br(0)
        )),
        get(N.j), get(N.end), geS, if_(bail),
        get(N.j), load8(), c(DQ), ne, if_(bail),
        get(N.i), c(1), add, set(N.dnS), get(N.j), set(N.dnE), get(N.high), c(0x80), geU, set(N.dnHigh),
        get(N.j), c(1), add, set(N.i), skipWs4(N.i, N.end),
        get(N.i), get(N.end), geS, if_(bail),
        get(N.i), load8(), c(LT), ne, if_(bail)
      ],
      [
        get(N.ch), c(LT), ne,
        if_(
          get(N.i), set(N.lt),
          block(loop(
            get(N.lt), get(N.end), geS, brIf(1),
            get(N.lt), load8(), tee(N.ch), c(LT), eq, get(N.ch), c(SEMI), eq, or, brIf(1),
            get(N.lt), c(1), add, set(N.lt), br(0)
          )),
          // An addr-spec without <>: the JS grammar.
          get(N.lt), get(N.end), geS, if_(bail),
          get(N.lt), load8(), c(LT), ne, if_(bail),
          get(N.lt), set(N.dnStop), trim4(N.i, N.dnStop),
          c(0), set(N.high),
          get(N.i), set(N.j),
          block(loop(
            get(N.j), get(N.dnStop), geS, brIf(1),
            get(N.j), load8(), set(N.ch),
            get(N.ch), load8(TOKEN), get(N.ch), c(SP), eq, or, get(N.ch), c(HT), eq, or, get(N.ch), c(0x80), geU, or, eqz, if_(bail),
            get(N.high), get(N.ch), or, set(N.high),
            get(N.j), c(1), add, set(N.j), br(0)
          )),
          get(N.dnStop), get(N.i), gtS,
          if_(get(N.i), set(N.dnS), get(N.dnStop), set(N.dnE), get(N.high), c(0x80), geU, set(N.dnHigh)),
          get(N.lt), set(N.i)
        )
      ]
    ),
    // <URI>: up to '>', no SP, HT or '<'; a ':' after the first byte (the
    // scheme's end). 16 bytes per step: the stop bytes' mask and the colons'.
    get(N.i), c(1), add, set(N.gt), c(-1), set(N.colon),
    block(loop(
      get(N.gt), get(N.end), geS, if_(bail),
      get(N.gt), v128load, tee(N.v), c(0x3e), splat8, i8eq,
      get(N.v), c(SP), splat8, i8eq, vOr,
      get(N.v), c(HT), splat8, i8eq, vOr,
      get(N.v), c(LT), splat8, i8eq, vOr, bitmask, set(N.ms),
      get(N.v), c(COLON), splat8, i8eq, bitmask, set(N.mc),
      get(N.ms),
      if_(
        get(N.colon), c(0), ltS, get(N.mc), c(1), get(N.ms), ctz, shl, c(1), sub, and, c(0), ne, and,
        if_(get(N.gt), get(N.mc), ctz, add, set(N.colon)),
        get(N.gt), get(N.ms), ctz, add, set(N.gt),
        br(2)
      ),
      get(N.colon), c(0), ltS, get(N.mc), c(0), ne, and,
      if_(get(N.gt), get(N.mc), ctz, add, set(N.colon)),
      get(N.gt), c(16), add, set(N.gt),
      br(0)
    )),
    get(N.gt), get(N.end), geS, if_(bail),
    get(N.gt), load8(), c(0x3e), ne, if_(bail),
    c(1), set(N.t),
    get(N.t), c(1), ne, if_(bail),
    get(N.colon), get(N.i), c(1), add, leS, if_(bail),
    c(0), get(N.i), c(1), add, store32(NA_OUT + 20),
    c(0), get(N.gt), store32(NA_OUT + 24),
    c(0), get(N.gt), c(1), add, tee(N.i), store32(NA_OUT + 28),
    get(N.i), get(N.end), get(N.stop), call(3), tee(N.i), c(0), ltS, if_(bail),
    // Here i is where the element stopped: the end, or a comma.
    c(0), get(N.rawStart), store32(NA_OUT),
    get(N.i), get(N.end), ltS,
    ifElse([get(N.i), set(N.j), trim4(N.rawStart, N.j), c(0), get(N.j), store32(NA_OUT + 4)], [c(0), get(N.end), store32(NA_OUT + 4)]),
    c(0), get(N.dnS), store32(NA_OUT + 8),
    c(0), get(N.dnE), store32(NA_OUT + 12),
    c(0), get(N.dnHigh), store32(NA_OUT + 16),
    get(N.i)
  ]
}


// ---- func 3: params(i, end, stopAtComma) -> stop, or -1 ----
// grammar-bytes.ts parseParamsBytes without `out`: ;name[=value] checked,
// the first tag, branch, received and rport tracked at PT_OUT (start/end;
// start -1 absent, -2 present without a value). Quoted values and IPv6
// references take the JS grammar.
const Q = { i: 0, end: 1, stop: 2, ch: 3, ns: 4, k: 5, t: 6, vs: 7, len: 8, m: 9, v: 10 }
// i = the first byte at or after i, below end, outside the set whose
// high-nibble table is at `hi` (NIB + 16: tokens, NIB + 32: gen-values): 16
// bytes per step, two table lookups (swizzle) and one mask.
const nibbleScan = hi => block(loop(
  get(Q.i), get(Q.end), geS, if_(get(Q.end), set(Q.i), br(2)),
  c(0), v128loadAt(NIB), get(Q.i), v128load, tee(Q.v), c(15), splat8, vAnd, swizzle,
  c(0), v128loadAt(hi), get(Q.v), c(4), i8shrU, swizzle,
  vAnd, v128zero, i8eq, bitmask, tee(Q.m),
  if_(get(Q.i), get(Q.m), ctz, add, tee(Q.i), get(Q.end), gtS, if_(get(Q.end), set(Q.i)), br(2)),
  get(Q.i), c(16), add, set(Q.i), br(0)
))
const qWs = x => block(loop(
  get(x), get(Q.end), geS, brIf(1),
  get(x), load8(), tee(Q.ch), c(0x20), gtU, brIf(1), [get(Q.ch), c(SP), eq, get(Q.ch), c(HT), eq, or, get(Q.ch), c(CR), eq, or, get(Q.ch), c(LF), eq, or].flat(), eqz, brIf(1),
  get(x), c(1), add, set(x), br(0)
))
// The name at ns (length len) is `word` (ASCII letters, case-folded).
const nameIs = word => [get(Q.len), c(word.length), eq, ...[...word].flatMap((ch, k) => [get(Q.ns), load8(k), c(0x20), or, c(ch.charCodeAt(0)), eq, and])]
const params = {
  params: [I32, I32, I32],
  results: [I32],
  locals: [[7, I32], [1, V128]],
  body: [
    c(0), c(-1), store32(PT_OUT), c(0), c(-1), store32(PT_OUT + 8), c(0), c(-1), store32(PT_OUT + 16), c(0), c(-1), store32(PT_OUT + 24),
    loop(
      qWs(Q.i),
      get(Q.i), get(Q.end), geS, if_(get(Q.i), ret),
      get(Q.i), load8(), set(Q.ch),
      get(Q.ch), c(0x3b), ne,
      if_(
        get(Q.stop), get(Q.ch), c(0x2c), eq, and, if_(get(Q.i), ret),
        c(-1), ret
      ),
      get(Q.i), c(1), add, set(Q.i), qWs(Q.i),
      get(Q.i), set(Q.ns),
      nibbleScan(NIB + 16),
      get(Q.i), get(Q.ns), sub, tee(Q.len), eqz, if_(c(-1), ret),
      c(-1), set(Q.k),
      get(Q.len), c(3), eq, if_(nameIs('tag'), if_(c(0), set(Q.k))),
      get(Q.len), c(6), eq, if_(nameIs('branch'), if_(c(8), set(Q.k))),
      get(Q.len), c(8), eq, if_(nameIs('received'), if_(c(16), set(Q.k))),
      get(Q.len), c(5), eq, if_(nameIs('rport'), if_(c(24), set(Q.k))),
      // Only the first of each name counts.
      get(Q.k), c(0), geS, if_(get(Q.k), load32(PT_OUT), c(-1), ne, if_(c(-1), set(Q.k))),
      qWs(Q.i),
      get(Q.i), get(Q.end), ltS, get(Q.i), load8(), c(0x3d), eq, and,
      ifElse(
        [
          get(Q.i), c(1), add, set(Q.i), qWs(Q.i),
          get(Q.i), get(Q.end), ltS, get(Q.i), load8(), c(0x22), eq, and, if_(c(-1), ret),
          get(Q.i), set(Q.vs),
          nibbleScan(NIB + 32),
          // An IPv6 reference: the JS grammar.
          get(Q.i), get(Q.end), ltS, get(Q.i), load8(), c(0x5b), eq, and, if_(c(-1), ret),
          get(Q.i), get(Q.vs), eq, if_(c(-1), ret),
          get(Q.k), c(0), geS, if_(get(Q.k), get(Q.vs), store32(PT_OUT), get(Q.k), get(Q.i), store32(PT_OUT + 4))
        ],
        [get(Q.k), c(0), geS, if_(get(Q.k), c(-2), store32(PT_OUT))]
      ),
      br(0)
    ),
    c(-1)
  ]
}

// ---- func 4: via(s, e, stopAtComma) -> stop, or -1 ----
// grammar-bytes.ts parseViaBytes for "SIP/2.0/" transport, a host name or
// IPv4 address, an optional port, parameters (see params). Writes at
// VIA_OUT: start, raw end, transport start, end, host start, end, host has
// upper case, port (-1 none), parameters start.
const V = { s: 0, e: 1, stop: 2, end: 3, i: 4, ch: 5, start: 6, tS: 7, tE: 8, hS: 9, kinds: 10, j: 11, p: 12, p0: 13, t: 14 }
const vWs = x => block(loop(
  get(x), get(V.end), geS, brIf(1),
  get(x), load8(), tee(V.ch), c(0x20), gtU, brIf(1), [get(V.ch), c(SP), eq, get(V.ch), c(HT), eq, or, get(V.ch), c(CR), eq, or, get(V.ch), c(LF), eq, or].flat(), eqz, brIf(1),
  get(x), c(1), add, set(x), br(0)
))
const vTrim = (x, y) => block(loop(
  get(y), get(x), leS, brIf(1),
  get(y), c(1), sub, load8(), tee(V.ch), c(0x20), gtU, brIf(1), [get(V.ch), c(SP), eq, get(V.ch), c(HT), eq, or, get(V.ch), c(CR), eq, or, get(V.ch), c(LF), eq, or].flat(), eqz, brIf(1),
  get(y), c(1), sub, set(y), br(0)
))
const via = {
  params: [I32, I32, I32],
  results: [I32],
  locals: [[12, I32]],
  body: [
    get(V.e), set(V.end), vTrim(V.s, V.end),
    get(V.s), set(V.i), vWs(V.i),
    get(V.i), set(V.start),
    // "SIP/2.0/" then a token (as the JS fast path reads it).
    get(V.end), get(V.i), sub, c(8), leS, if_(c(-1), ret),
    get(V.i), load64(), c64('SIP/2.0/'), ne64, if_(c(-1), ret),
    get(V.i), c(8), add, tee(V.i), set(V.tS),
    block(loop(
      get(V.i), get(V.end), geS, brIf(1),
      get(V.i), load8(), load8(TOKEN), eqz, brIf(1),
      get(V.i), c(1), add, set(V.i), br(0)
    )),
    get(V.i), get(V.tS), eq, if_(c(-1), ret),
    get(V.i), set(V.tE),
    vWs(V.i),
    get(V.i), get(V.tE), eq, if_(c(-1), ret),
    get(V.i), set(V.hS),
    c(0), set(V.kinds),
    block(loop(
      get(V.i), get(V.end), geS, brIf(1),
      get(V.i), load8(), load8(VIA_HOST), tee(V.t), eqz, brIf(1),
      get(V.kinds), get(V.t), or, set(V.kinds),
      get(V.i), c(1), add, set(V.i), br(0)
    )),
    get(V.i), get(V.hS), eq, if_(c(-1), ret),
    c(0), get(V.hS), store32(VIA_OUT + 16),
    c(0), get(V.i), store32(VIA_OUT + 20),
    c(0), get(V.kinds), c(1), shrU, store32(VIA_OUT + 24),
    c(0), c(-1), store32(VIA_OUT + 28),
    get(V.i), set(V.j), vWs(V.j),
    get(V.j), get(V.end), ltS, get(V.j), load8(), c(COLON), eq, and,
    if_(
      get(V.j), c(1), add, set(V.j), vWs(V.j),
      get(V.j), set(V.p0), c(0), set(V.p),
      block(loop(
        get(V.j), get(V.end), geS, brIf(1),
        get(V.j), load8(), c(0x30), sub, tee(V.t), c(9), gtU, brIf(1),
        get(V.p), c(10), mul, get(V.t), add, tee(V.p), c(65535), gtS, if_(c(-1), ret),
        get(V.j), c(1), add, set(V.j), br(0)
      )),
      get(V.j), get(V.p0), eq, if_(c(-1), ret),
      c(0), get(V.p), store32(VIA_OUT + 28),
      get(V.j), set(V.i)
    ),
    c(0), get(V.i), store32(VIA_OUT + 32),
    get(V.i), get(V.end), get(V.stop), call(3), tee(V.i), c(0), ltS, if_(c(-1), ret),
    c(0), get(V.start), store32(VIA_OUT),
    get(V.i), get(V.end), ltS, if_(get(V.i), set(V.end), vTrim(V.start, V.end)),
    c(0), get(V.end), store32(VIA_OUT + 4),
    c(0), get(V.tS), store32(VIA_OUT + 8),
    c(0), get(V.tE), store32(VIA_OUT + 12),
    get(V.i)
  ]
}

// ---- func 5: sipUri(s, e) -> 0, or -1 (use the JS grammar) ----
// uri.ts parseSipUriBytes over memory offsets of the message still in
// memory: sip:/sips:, a user (USER bytes, no escapes), a host name or IPv4
// candidate, a port, ;name[=value] parameters. Writes at URI_OUT: 1 for
// sips, user start (-1 none), user end, host start, end, the host's byte
// kinds (1 << HOST class), the class of its top label's first byte, the port
// (-1 none), the parameters' ';' (-1 none).
const U = { s: 0, e: 1, i: 2, ch: 3, start: 4, at: 5, t: 6, hs: 7, ls: 8, kinds: 9, prev: 10, top: 11, v: 12, ns: 13, sch: 14 }
const uBail = [c(-1), ret]
// i = first byte at or after i, below e, whose URI_PARAM class is not 1
const uParamScan = block(loop(
  get(U.i), get(U.e), geS, brIf(1),
  get(U.i), load8(), load8(URI_PARAM), c(1), ne, brIf(1),
  get(U.i), c(1), add, set(U.i), br(0)
))
const sipUri = {
  params: [I32, I32],
  results: [I32],
  locals: [[13, I32]],
  body: [
    get(U.s), set(U.i),
    get(U.e), get(U.i), sub, c(5), ltS, if_(uBail),
    get(U.i), load8(0), c(0x20), or, c(0x73), ne, if_(uBail),
    get(U.i), load8(1), c(0x20), or, c(0x69), ne, if_(uBail),
    get(U.i), load8(2), c(0x20), or, c(0x70), ne, if_(uBail),
    get(U.i), load8(3), c(COLON), eq,
    ifElse(
      [c(0), set(U.sch), get(U.i), c(4), add, set(U.i)],
      [
        get(U.i), load8(3), c(0x20), or, c(0x73), ne, if_(uBail),
        get(U.i), load8(4), c(COLON), ne, if_(uBail),
        c(1), set(U.sch), get(U.i), c(5), add, set(U.i)
      ]
    ),
    get(U.i), set(U.start),
    // userinfo ends at the URI's first '@'.
    // 16 bytes per step; past e it reads e (the '@' of another part is not this URI's).
    get(U.i), set(U.at),
    block(loop(
      get(U.at), get(U.e), geS, if_(get(U.e), set(U.at), br(2)),
      get(U.at), v128load, c(0x40), splat8, i8eq, bitmask, tee(U.t),
      if_(
        get(U.at), get(U.t), ctz, add, tee(U.at), get(U.e), gtS, if_(get(U.e), set(U.at)),
        br(2)
      ),
      get(U.at), c(16), add, set(U.at), br(0)
    )),
    c(0), c(-1), store32(URI_OUT + 4),
    get(U.at), get(U.e), ltS,
    if_(
      block(loop(
        get(U.i), get(U.at), geS, brIf(1),
        get(U.i), load8(), load8(URI_USER), eqz, brIf(1),
        get(U.i), c(1), add, set(U.i), br(0)
      )),
      get(U.i), get(U.at), ne, if_(uBail),
      get(U.i), get(U.start), eq, if_(uBail),
      c(0), get(U.start), store32(URI_OUT + 4),
      c(0), get(U.at), store32(URI_OUT + 8),
      get(U.at), c(1), add, set(U.i)
    ),
    // hostname = *(domainlabel ".") toplabel ["."]: no empty label, none ends in '-' or starts with it.
    get(U.i), set(U.hs), get(U.i), set(U.ls), c(0), set(U.kinds), c(0), set(U.prev), c(0), set(U.top),
    block(loop(
      get(U.i), get(U.e), geS, brIf(1),
      get(U.i), load8(), load8(URI_HOST), tee(U.t), eqz, brIf(1),
      get(U.t), c(5), eq,
      ifElse(
        [get(U.i), get(U.ls), eq, get(U.prev), c(4), eq, or, if_(uBail), get(U.i), c(1), add, set(U.ls)],
        [
          get(U.i), get(U.ls), eq, if_(get(U.t), c(4), eq, if_(uBail), get(U.t), set(U.top)),
          get(U.kinds), c(1), get(U.t), shl, or, set(U.kinds)
        ]
      ),
      get(U.t), set(U.prev),
      get(U.i), c(1), add, set(U.i), br(0)
    )),
    get(U.i), get(U.hs), eq, get(U.prev), c(4), eq, or, if_(uBail),
    c(0), get(U.hs), store32(URI_OUT + 12),
    c(0), get(U.i), store32(URI_OUT + 16),
    c(0), get(U.kinds), store32(URI_OUT + 20),
    c(0), get(U.top), store32(URI_OUT + 24),
    c(0), c(-1), store32(URI_OUT + 28),
    get(U.i), get(U.e), ltS, get(U.i), load8(), c(COLON), eq, and,
    if_(
      get(U.i), c(1), add, tee(U.i), set(U.ns), c(0), set(U.v),
      block(loop(
        get(U.i), get(U.e), geS, brIf(1),
        get(U.i), load8(), c(0x30), sub, tee(U.t), c(9), gtU, brIf(1),
        get(U.v), c(10), mul, get(U.t), add, tee(U.v), c(65535), gtS, if_(uBail),
        get(U.i), c(1), add, set(U.i), br(0)
      )),
      get(U.i), get(U.ns), eq, if_(uBail),
      c(0), get(U.v), store32(URI_OUT + 28)
    ),
    c(0), get(U.sch), store32(URI_OUT),
    c(0), c(-1), store32(URI_OUT + 32),
    get(U.i), get(U.e), geS, if_(c(0), ret),
    get(U.i), load8(), c(SEMI), ne, if_(uBail),
    c(0), get(U.i), store32(URI_OUT + 32),
    // uri-parameters: each ';' pname ['=' pvalue], both non-empty.
    block(loop(
      get(U.i), get(U.e), geS, brIf(1),
      get(U.i), c(1), add, tee(U.i), set(U.ns),
      uParamScan,
      get(U.i), get(U.ns), eq, if_(uBail),
      get(U.i), get(U.e), ltS, get(U.i), load8(), c(EQ), eq, and,
      if_(
        get(U.i), c(1), add, tee(U.i), set(U.ns),
        uParamScan,
        get(U.i), get(U.ns), eq, if_(uBail)
      ),
      get(U.i), get(U.e), ltS, get(U.i), load8(), c(SEMI), ne, and, if_(uBail),
      br(0)
    )),
    c(0)
  ]
}

// ---- the module ----
const funcs = [index, findLF, nameAddr, params, via, sipUri]
const types = funcs.map(f => [0x60, ...vec(f.params.map(t => [t])), ...vec(f.results.map(t => [t]))])
const typeSec = section(1, vec(types))
const funcSec = section(3, vec(funcs.map((_, i) => uleb(i))))
const memSec = section(5, vec([[0x00, ...uleb(2)]]))
const exportSec = section(7, vec([[...str('index'), 0x00, 0], [...str('nameAddr'), 0x00, 2], [...str('via'), 0x00, 4], [...str('sipUri'), 0x00, 5], [...str('mem'), 0x02, 0]]))
const bodies = funcs.map(f => {
  const b = [...vec(f.locals.map(([n, t]) => [...uleb(n), t])), ...f.body.flat(Infinity), 0x0b]
  return [...uleb(b.length), ...b]
})
const codeSec = section(10, vec(bodies))
let last = OUT
while (last > 0 && data[last - 1] === 0) last--
const seg = [0x00, ...c(0), 0x0b, ...vec([...data.subarray(0, last)].map(x => [x]))]
const dataSec = section(11, vec([seg]))
const bytes = Uint8Array.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, ...typeSec, ...funcSec, ...memSec, ...exportSec, ...codeSec, ...dataSec])
new WebAssembly.Module(bytes) // validates

const out = path.join(here, '..', 'src', 'index-wasm.ts')
const text = `// Generated by scripts/gen-wasm.mjs: do not edit. The WebAssembly header indexer
// (${bytes.length} bytes; name table hash multiplier 0x${(MUL >>> 0).toString(16)}).
export const INDEX_WASM = '${Buffer.from(bytes).toString('base64')}'
export const WASM_OUT = ${OUT}
export const WASM_IN = ${IN}
export const WASM_NA_OUT = ${NA_OUT}
export const WASM_PT_OUT = ${PT_OUT}
export const WASM_VIA_OUT = ${VIA_OUT}
export const WASM_SL_OUT = ${SL_OUT}
export const WASM_URI_OUT = ${URI_OUT}
`
if (process.argv.includes('--check')) {
  let now = ''
  try { now = readFileSync(out, 'utf8') } catch {}
  if (now !== text) {
    console.error(`${path.relative(process.cwd(), out)} differs from what scripts/gen-wasm.mjs writes: run it`)
    process.exit(1)
  }
  process.exit(0)
}
writeFileSync(out, text)
console.log(`wrote ${path.relative(process.cwd(), out)}: ${bytes.length} bytes, ${entries.length} names`)
