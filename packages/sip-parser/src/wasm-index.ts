/**
 * The WebAssembly header indexer (module bytes from scripts/gen-wasm.mjs).
 * One call finds every line end (16 bytes per step, SIMD), the header name
 * ids (a perfect hash confirmed byte by byte), value spans, folding, and a
 * lone CR; the JS indexer takes over for anything unusual or defective, so
 * that errors are named in one place.
 */
import { INDEX_WASM, WASM_IN, WASM_NA_OUT, WASM_OUT, WASM_PT_OUT, WASM_SL_OUT, WASM_URI_OUT, WASM_VIA_OUT } from './index-wasm.js'

// The few WebAssembly names used here (lib ES2022 has none).
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object
  Instance: new (module: object, imports: object) => { exports: unknown }
}
interface IndexExports {
  index: (n: number, maxHeaders: number, base: number) => number
  nameAddr: (s: number, e: number, stopAtComma: number) => number
  via: (s: number, e: number, stopAtComma: number) => number
  sipUri: (s: number, e: number) => number
  mem: { buffer: ArrayBuffer, grow: (pages: number) => number } }

let exportsOf: IndexExports | undefined
try {
  exportsOf = new WebAssembly.Instance(new WebAssembly.Module(Buffer.from(INDEX_WASM, 'base64')), {}).exports as unknown as IndexExports
} catch {
  // No WebAssembly (or no SIMD): the JS indexer does all the work.
  exportsOf = undefined
}
const wasm = exportsOf
let u8 = wasm === undefined ? new Uint8Array(0) : new Uint8Array(wasm.mem.buffer)
/** The output slots as i32 (see gen-wasm.mjs); re-made when the memory grows. */
export let wasmOut = wasm === undefined ? new Int32Array(0) : new Int32Array(wasm.mem.buffer)
/** Index of the first output slot in wasmOut. */
export const OUT_I = WASM_OUT >> 2
/** Index in wasmOut of the usual request line's split (method end, URI end, URI ASCII; -1 first when not one), then the usual status line's code (-1 when not one). */
export const SL_I = WASM_SL_OUT >> 2
/** Header lines the prebuilt views of the store layout cover (see wasmStores). */
export const WASM_FIXED_LINES = 32
/**
 * The output in message.ts's store layout (16 hot slots, then the entries):
 * wasmStores[n] covers n lines, for n up to WASM_FIXED_LINES, so a message
 * copies just its own slots with one set() and makes no subarray.
 */
export let wasmStores = storeViews()
function storeViews (): Int32Array[] {
  const views: Int32Array[] = []
  if (wasm !== undefined) for (let n = 0; n <= WASM_FIXED_LINES; n++) views.push(new Int32Array(wasm.mem.buffer, WASM_OUT + 16, 16 + 4 * n))
  return views
}
/** Entries have room for this many header lines. */
export const WASM_MAX_HEADERS = ((WASM_IN - WASM_OUT) >> 4) - 8

let enabled = wasm !== undefined

/** @internal Turn the wasm indexer on or off (tests compare it with the JS indexer); returns whether it was on. */
export function useWasmIndexer (on: boolean): boolean {
  const was = enabled
  enabled = on && wasm !== undefined
  return was
}

/**
 * Index buf[start..limit) in wasm memory: the number of header lines (the
 * output in wasmOut), or -1 when the JS indexer must do it.
 */
export function wasmIndex (buf: Buffer, start: number, limit: number, maxHeaders: number): number {
  if (!enabled || wasm === undefined || maxHeaders > WASM_MAX_HEADERS) {
    heldBuf = undefined
    return -1
  }
  const n = limit - start
  // Room for the bytes and the 16 zero bytes the scans stop at.
  if (WASM_IN + n + 16 > u8.length) {
    wasm.mem.grow(Math.ceil((WASM_IN + n + 16 - u8.length) / 65536))
    u8 = new Uint8Array(wasm.mem.buffer)
    wasmOut = new Int32Array(wasm.mem.buffer)
    wasmStores = storeViews()
  }
  if (start === 0 && limit === buf.length) u8.set(buf, WASM_IN)
  else buf.copy(u8, WASM_IN, start, limit)
  heldBuf = buf
  heldStart = start
  heldEnd = limit
  wasmDelta = start - WASM_IN
  return wasm.index(n, maxHeaders, start)
}

/**
 * The message whose bytes are in wasm memory (the last one indexed): its
 * header grammars can run there while no other message has been indexed.
 */
let heldBuf: Buffer | undefined
let heldStart = 0
let heldEnd = 0
/** Message offset minus memory offset of the held message. */
export let wasmDelta = 0
/** Index in wasmOut of nameAddr's output. */
export const NA_I = WASM_NA_OUT >> 2
/** Index in wasmOut of the tracked parameters (tag, branch, received, rport: start/end pairs, start -1 absent, -2 without a value). */
export const PT_I = WASM_PT_OUT >> 2
/** Index in wasmOut of via's output. */
export const VIA_I = WASM_VIA_OUT >> 2

/**
 * grammar-bytes.ts parseNameAddrBytes (not a Contact) for buf[s..e) in wasm,
 * when those bytes are the held message's: where the element stopped (a
 * message offset; the spans in wasmOut from NA_I, as memory offsets), or -1
 * when the JS grammar must parse it (not held, an unusual form, a defect).
 */
export function wasmNameAddr (buf: Buffer, s: number, e: number, stopAtComma: boolean): number {
  if (buf !== heldBuf || s < heldStart || e > heldEnd || wasm === undefined) return -1
  const d = wasmDelta
  const r = wasm.nameAddr(s - d, e - d, stopAtComma ? 1 : 0)
  return r < 0 ? -1 : r + d
}

/** grammar-bytes.ts parseViaBytes for buf[s..e) in wasm, as wasmNameAddr does; the spans in wasmOut from VIA_I and PT_I. */
export function wasmVia (buf: Buffer, s: number, e: number, stopAtComma: boolean): number {
  if (buf !== heldBuf || s < heldStart || e > heldEnd || wasm === undefined) return -1
  const d = wasmDelta
  const r = wasm.via(s - d, e - d, stopAtComma ? 1 : 0)
  return r < 0 ? -1 : r + d
}

/** Index in wasmOut of sipUri's output (sips, user start/end, host start/end, host byte kinds, top label class, port, parameters' ';'). */
export const URI_I = WASM_URI_OUT >> 2

/**
 * uri.ts parseSipUriBytes for buf[s..e) in wasm, when those bytes are the
 * held message's: true with the spans in wasmOut from URI_I (memory
 * offsets), false when the JS grammar must read it.
 */
export function wasmSipUri (buf: Uint8Array, s: number, e: number): boolean {
  if (buf !== heldBuf || s < heldStart || e > heldEnd || wasm === undefined) return false
  const d = wasmDelta
  return wasm.sipUri(s - d, e - d) === 0
}
