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
 * Rendezvous (highest random weight) score of one node for one key: the key
 * goes to the node with the highest score. Removing a node only moves the keys
 * whose top score was that node's, i.e. about 1/N of them.
 */
export function rendezvousScore (keyHash: number, nodeSeed: number): number {
  return fmix32(Math.imul(keyHash ^ nodeSeed, 0x9e3779b1) + nodeSeed)
}

const TWO_POW_32 = 4294967296

/**
 * Weighted rendezvous score (Schindelhauer & Schomaker): `-w / ln(u)` with `u`
 * uniform in (0, 1) from the integer score. A node then wins a key with
 * probability proportional to its weight, and removal still moves only its keys.
 */
export function weightedRendezvousScore (score: number, weight: number): number {
  return -weight / Math.log((score + 0.5) / TWO_POW_32)
}
