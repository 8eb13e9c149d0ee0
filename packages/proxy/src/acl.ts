/**
 * Address lists by CIDR (`trusted:` sources, media nodes): an address is
 * matched against prefixes compared as bytes, no RegExp and no DNS.
 */
import { isIP } from 'node:net'

/** One parsed CIDR prefix. */
interface Prefix {
  family: 4 | 6
  bytes: Uint8Array
  bits: number
}

/** An invalid CIDR in a list given to {@link AddressList}. */
export class AclError extends Error {
  readonly code = 'SIPD_ERR_ACL'
  constructor (entry: string, problem: string) {
    super(`address list entry ${JSON.stringify(entry)}: ${problem}`)
    this.name = 'AclError'
  }
}

/** The 4 or 16 bytes of an IP address (IPv4-mapped IPv6 becomes IPv4), or undefined for anything else. */
export function addressBytes (address: string): Uint8Array | undefined {
  let a = address
  if (a.length > 2 && a.charCodeAt(0) === 0x5b && a.charCodeAt(a.length - 1) === 0x5d) a = a.slice(1, -1)
  const family = isIP(a)
  if (family === 4) return ipv4Bytes(a)
  if (family !== 6) return undefined
  const v6 = ipv6Bytes(a)
  if (v6 === undefined) return undefined
  // ::ffff:a.b.c.d is the IPv4 address for matching purposes.
  let mapped = v6[10] === 0xff && v6[11] === 0xff
  for (let i = 0; i < 10 && mapped; i++) if (v6[i] !== 0) mapped = false
  return mapped ? v6.slice(12) : v6
}

function ipv4Bytes (a: string): Uint8Array {
  const out = new Uint8Array(4)
  let part = 0
  let n = 0
  for (let i = 0; i < a.length; i++) {
    const c = a.charCodeAt(i)
    if (c === 0x2e) {
      out[part++] = n
      n = 0
    } else {
      n = n * 10 + (c - 0x30)
    }
  }
  out[part] = n
  return out
}

function ipv6Bytes (a: string): Uint8Array | undefined {
  const out = new Uint8Array(16)
  // An embedded IPv4 tail (::ffff:1.2.3.4) fills the last four bytes.
  let text = a
  let tail: Uint8Array | undefined
  const lastColon = text.lastIndexOf(':')
  if (text.indexOf('.', lastColon) >= 0) {
    tail = ipv4Bytes(text.slice(lastColon + 1))
    text = text.slice(0, lastColon + 1) + '0:0'
  }
  const gap = text.indexOf('::')
  const head = gap >= 0 ? text.slice(0, gap) : text
  const rest = gap >= 0 ? text.slice(gap + 2) : ''
  const headParts = head === '' ? [] : head.split(':')
  const restParts = rest === '' ? [] : rest.split(':')
  const write = (parts: string[], at: number): void => {
    for (let i = 0; i < parts.length; i++) {
      const v = parseInt(parts[i]!, 16)
      out[at + i * 2] = v >> 8
      out[at + i * 2 + 1] = v & 0xff
    }
  }
  write(headParts, 0)
  write(restParts, 16 - restParts.length * 2)
  if (tail !== undefined) out.set(tail, 12)
  return out
}

function parsePrefix (entry: string): Prefix {
  const slash = entry.indexOf('/')
  const addr = slash >= 0 ? entry.slice(0, slash) : entry
  const bytes = addressBytes(addr.trim())
  if (bytes === undefined) throw new AclError(entry, 'is not an IPv4 or IPv6 address or CIDR prefix')
  const family = bytes.length === 4 ? 4 : 6
  const max = family === 4 ? 32 : 128
  let bits = max
  if (slash >= 0) {
    const text = entry.slice(slash + 1).trim()
    bits = Number(text)
    if (text === '' || !Number.isInteger(bits) || bits < 0 || bits > max) throw new AclError(entry, `prefix length must be an integer from 0 to ${max}`)
    // An IPv4-mapped prefix given in IPv6 form counts in IPv4 bits.
    if (family === 4 && isIP(addr.trim()) === 6) bits = Math.max(0, bits - 96)
  }
  return { family, bytes, bits }
}

function covers (p: Prefix, b: Uint8Array): boolean {
  if (b.length !== p.bytes.length) return false
  const whole = p.bits >> 3
  for (let i = 0; i < whole; i++) if (b[i] !== p.bytes[i]) return false
  const partial = p.bits & 7
  if (partial === 0) return true
  const mask = (0xff << (8 - partial)) & 0xff
  return (b[whole]! & mask) === (p.bytes[whole]! & mask)
}

/** A list of CIDR prefixes (`192.0.2.0/24`, `2001:db8::/32`, or a bare address). */
export class AddressList {
  readonly #prefixes: Prefix[]
  /** Exact addresses (full-length prefixes) for the common case: one lookup. */
  readonly #exact = new Set<string>()
  /**
   * Verdicts by address as written. Sources repeat (trunks, media nodes,
   * phones), and a verdict cost an address parse (node's isIP is a RegExp)
   * and a joined key per request. Bounded: cleared when full.
   */
  readonly #verdicts = new Map<string, boolean>()

  /** @throws AclError naming the first invalid entry */
  constructor (entries: readonly string[]) {
    this.#prefixes = []
    for (const e of entries) {
      const p = parsePrefix(e)
      if (p.bits === p.bytes.length * 8) this.#exact.add(p.bytes.join(','))
      else this.#prefixes.push(p)
    }
  }

  /** Number of entries. */
  get size (): number {
    return this.#prefixes.length + this.#exact.size
  }

  /** True when `address` (IPv4, IPv6, bracketed or IPv4-mapped) is inside one of the prefixes. */
  has (address: string): boolean {
    if (this.#exact.size === 0 && this.#prefixes.length === 0) return false
    let verdict = this.#verdicts.get(address)
    if (verdict === undefined) {
      verdict = this.#lookup(address)
      if (this.#verdicts.size >= 4096) this.#verdicts.clear()
      this.#verdicts.set(address, verdict)
    }
    return verdict
  }

  #lookup (address: string): boolean {
    const b = addressBytes(address)
    if (b === undefined) return false
    if (this.#exact.size > 0 && this.#exact.has(b.join(','))) return true
    for (const p of this.#prefixes) if (covers(p, b)) return true
    return false
  }
}
