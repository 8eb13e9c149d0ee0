/**
 * Strings and bytes a transaction keeps for its lifetime (keys, tags, a
 * final response to resend), detached from what they were cut from. The parser's header values are V8 sliced
 * strings over the message's decoded text, and keys joined from them are
 * cons strings over those slices: held for Timer J, L or M (32 s), one such
 * value keeps the whole header block alive, and a joined key keeps a tree of
 * small string objects the garbage collector walks on every mark.
 */

/** Buffer#latin1Write / #latin1Slice: on every Buffer in Node 20+, not in the typings. */
interface Latin1 { latin1Write(s: string, offset: number): number, latin1Slice(start: number, end: number): string }
/** ownString's round trip for text of one-byte characters. */
const SCRATCH = Buffer.allocUnsafeSlow(256) as unknown as Latin1

/**
 * A flat copy of `s` that shares no memory with it. Text of one-byte
 * characters (keys, branches, tags) goes through bytes: one sequential
 * string; a slice of 13 or more characters would be a 32-byte sliced
 * string over a flattened copy, two objects held for Timer J, L or M.
 * Short or other text: slicing a fresh concatenation makes V8 flatten it
 * (and copy a short slice).
 */
export function ownString (s: string): string {
  const n = s.length
  if (n >= 13 && n <= 256) {
    let i = 0
    while (i < n && s.charCodeAt(i) <= 0xff) i++
    if (i === n) {
      SCRATCH.latin1Write(s, 0)
      return SCRATCH.latin1Slice(0, n)
    }
  }
  return (' ' + s).slice(1)
}

/** Size of one arena of {@link ownBytes}. */
const ARENA_SIZE = 64 * 1024
let arena: Buffer | undefined
let arenaUsed = 0

/**
 * `bytes` in memory of their own when they are a slice of a larger buffer:
 * the messages sipd writes are slices of Node's shared 8 KiB allocation
 * pool, and one kept for Timer J (32 s) keeps its whole pool chunk, with the
 * short-lived messages written into it, alive. The copies go to an arena of
 * their own: what is kept for Timer J lives about equally long, so an arena
 * is freed about 32 s after it filled; a buffer per copy cost an ArrayBuffer
 * each (about 1 µs and tracked by the garbage collector).
 */
export function ownBytes (bytes: Buffer): Buffer {
  if (bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.length) return bytes
  const n = bytes.length
  if (n > ARENA_SIZE >>> 3) {
    const copy = Buffer.allocUnsafeSlow(n)
    bytes.copy(copy, 0, 0, n)
    return copy
  }
  if (arena === undefined || arenaUsed + n > ARENA_SIZE) {
    arena = Buffer.allocUnsafeSlow(ARENA_SIZE)
    arenaUsed = 0
  }
  bytes.copy(arena, arenaUsed, 0, n)
  const copy = arena.subarray(arenaUsed, arenaUsed + n)
  // 8-byte aligned, as Node's pool does.
  arenaUsed += (n + 7) & ~7
  return copy
}

/** The buffer the last {@link keepBytes} copied into: an arena, or a buffer of the bytes' own. */
let kept: Buffer | undefined

/**
 * {@link ownBytes} without a Buffer object for the copy: the bytes go to an
 * arena (or, when large or already alone in their memory, stay a buffer of
 * their own); the return value says where, and {@link keptBytes} gives the
 * buffer. A transaction waiting out Timer J keeps the two and makes a Buffer
 * over the arena only when it resends (a Buffer object held for 32 s was
 * 96 B of heap per transaction). The position is `-1` for a whole buffer,
 * else the offset / 8 (arena copies are 8-byte aligned and an arena is
 * 64 KiB: 13 bits) times 16,384 plus the length (at most 8 KiB: 14 bits), a
 * small integer.
 */
export function keepBytes (bytes: Buffer): number {
  const n = bytes.length
  if ((bytes.byteOffset === 0 && bytes.buffer.byteLength === n) || n > ARENA_SIZE >>> 3) {
    kept = ownBytes(bytes)
    return -1
  }
  const copy = ownBytes(bytes)
  kept = arena
  return (copy.byteOffset - arena!.byteOffset) / 8 * 16384 + n
}

/** The buffer of the last {@link keepBytes}. */
export function keptBytes (): Buffer {
  return kept!
}

/** The offset in its arena of bytes placed by {@link keepBytes} at `at` (>= 0). */
export function keptOffset (at: number): number {
  return (at >>> 14) * 8
}

/** The length of bytes placed by {@link keepBytes} at `at` (>= 0). */
export function keptLength (at: number): number {
  return at & 16383
}
