/**
 * Strings a transaction keeps for its lifetime (keys, tags), detached from
 * the message they were read from. The parser's header values are V8 sliced
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
