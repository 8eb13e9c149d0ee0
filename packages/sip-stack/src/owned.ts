/**
 * Strings and bytes a transaction keeps for its lifetime (keys, tags, a
 * final response to resend), detached from what they were cut from. The parser's header values are V8 sliced
 * strings over the message's decoded text, and keys joined from them are
 * cons strings over those slices: held for Timer J, L or M (32 s), one such
 * value keeps the whole header block alive, and a joined key keeps a tree of
 * small string objects the garbage collector walks on every mark.
 */

/**
 * A flat copy of `s` that shares no memory with it: slicing a fresh
 * concatenation makes V8 flatten it into one new sequential string.
 */
export function ownString (s: string): string {
  return (' ' + s).slice(1)
}

/**
 * `bytes` in memory of their own when they are a slice of a larger buffer:
 * the messages sipd writes are slices of Node's shared 8 KiB allocation
 * pool, and one kept for Timer J (32 s) keeps its whole pool chunk, with the
 * other messages written into it, alive.
 */
export function ownBytes (bytes: Buffer): Buffer {
  if (bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.length) return bytes
  const copy = Buffer.allocUnsafeSlow(bytes.length)
  bytes.copy(copy, 0, 0, bytes.length)
  return copy
}
