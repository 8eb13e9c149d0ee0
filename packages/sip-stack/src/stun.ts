/**
 * The STUN Binding responder on the SIP UDP port: RFC 5626 §4.4.2 makes STUN
 * (RFC 5389) the keep-alive of UDP flows, and §8 asks the edge proxy to
 * answer it on the port it takes SIP on. A phone that registered with
 * `reg-id` and got `Require: outbound` (baresip does) sends Binding requests
 * every ~25 s and re-registers when they go unanswered; the XOR-MAPPED-ADDRESS
 * in the answer also tells it when its NAT binding changed.
 */

/** RFC 5389 §6: the fixed magic cookie of every STUN message. */
const MAGIC_COOKIE = 0x2112a442
const HEADER_BYTES = 20
const BINDING_REQUEST = 0x0001
const BINDING_SUCCESS = 0x0101
const ATTR_XOR_MAPPED_ADDRESS = 0x0020

/**
 * True for a datagram that can only be STUN: SIP starts with a letter, a STUN
 * message with two zero bits and the magic cookie at bytes 4-7 (RFC 5389 §6,
 * RFC 7983 §7: the first byte tells them apart on a shared port).
 */
export function isStunMessage (buf: Buffer): boolean {
  return buf.length >= HEADER_BYTES && buf[0]! < 0x04 && buf.readUInt32BE(4) === MAGIC_COOKIE
}

/**
 * The Binding success response to a Binding request, with the sender's
 * address as XOR-MAPPED-ADDRESS (RFC 5389 §15.2); undefined for any other
 * STUN message (responses, indications, other methods: ignored, §7.3).
 * No authentication: RFC 5626 §8 keep-alives carry none.
 */
export function stunBindingResponse (request: Buffer, address: string, port: number): Buffer | undefined {
  if (!isStunMessage(request) || request.readUInt16BE(0) !== BINDING_REQUEST) return undefined
  const declared = request.readUInt16BE(2)
  // §6: the length counts the attributes after the header, in 4-byte units.
  if ((declared & 3) !== 0 || HEADER_BYTES + declared > request.length) return undefined
  const v6 = address.includes(':')
  const value = v6 ? 20 : 8
  const out = Buffer.alloc(HEADER_BYTES + 4 + value)
  out.writeUInt16BE(BINDING_SUCCESS, 0)
  out.writeUInt16BE(4 + value, 2)
  out.writeUInt32BE(MAGIC_COOKIE, 4)
  // The transaction id, copied from the request.
  request.copy(out, 8, 8, HEADER_BYTES)
  out.writeUInt16BE(ATTR_XOR_MAPPED_ADDRESS, 20)
  out.writeUInt16BE(value, 22)
  out[24] = 0
  out[25] = v6 ? 0x02 : 0x01
  out.writeUInt16BE((port ^ (MAGIC_COOKIE >>> 16)) & 0xffff, 26)
  if (v6) {
    // §15.2: an IPv6 address is XORed with the cookie followed by the transaction id.
    const bytes = ipv6Bytes(address)
    if (bytes === undefined) return undefined
    for (let i = 0; i < 16; i++) out[28 + i] = bytes[i]! ^ out[4 + i]!
  } else {
    const parts = address.split('.')
    if (parts.length !== 4) return undefined
    let ip = 0
    for (const p of parts) ip = ip * 256 + (Number(p) & 0xff)
    out.writeUInt32BE((ip ^ MAGIC_COOKIE) >>> 0, 28)
  }
  return out
}

/** The 16 bytes of an IPv6 literal (with `::` and an optional embedded IPv4 tail), or undefined. */
function ipv6Bytes (address: string): Buffer | undefined {
  const out = Buffer.alloc(16)
  const halves = address.split('::')
  if (halves.length > 2) return undefined
  const words = (s: string): number[] | undefined => {
    if (s === '') return []
    const r: number[] = []
    for (const part of s.split(':')) {
      if (part.includes('.')) {
        const v4 = part.split('.').map(Number)
        if (v4.length !== 4) return undefined
        r.push(((v4[0]! & 0xff) << 8) | (v4[1]! & 0xff), ((v4[2]! & 0xff) << 8) | (v4[3]! & 0xff))
      } else {
        const n = parseInt(part, 16)
        if (!Number.isInteger(n) || n < 0 || n > 0xffff) return undefined
        r.push(n)
      }
    }
    return r
  }
  const head = words(halves[0] as string)
  const tail = halves.length === 2 ? words(halves[1] as string) : []
  if (head === undefined || tail === undefined) return undefined
  if (halves.length === 1 ? head.length !== 8 : head.length + tail.length > 7) return undefined
  head.forEach((w, i) => out.writeUInt16BE(w, i * 2))
  tail.forEach((w, i) => out.writeUInt16BE(w, 16 - (tail.length - i) * 2))
  return out
}
