/**
 * Address helpers: listen-address parsing and the normal forms used as keys
 * (IPv6 canonical per RFC 5952 without brackets, IPv4-mapped IPv6 unmapped).
 */
import { isIP, SocketAddress } from 'node:net'
import { InvalidTransportOptionError } from './transport-errors.js'
import type { TransportName } from './transport-types.js'

/** A parsed `udp:HOST:PORT` / `tcp:[V6]:PORT` listen address. */
export interface ListenAddress {
  transport: TransportName
  /** IP address without brackets. */
  address: string
  port: number
  family: 4 | 6
}

/** The default SIP port (RFC 3261 §19.1.2). */
export const SIP_PORT = 5060
/** The default SIPS/TLS port (RFC 3261 §19.1.2). */
export const SIPS_PORT = 5061

/**
 * Parse a listen address: `udp:127.0.0.1:5060`, `tcp:[::1]:5060`,
 * `udp:0.0.0.0` (port 5060), `tcp:127.0.0.1:0` (the OS picks the port).
 * The host must be an IP address; throws InvalidTransportOptionError otherwise.
 */
export function parseListenAddress (text: string): ListenAddress {
  const allowed = '"udp:HOST:PORT" or "tcp:HOST:PORT" with an IPv4 address or a bracketed IPv6 address and a port 0-65535'
  const colon = text.indexOf(':')
  const proto = colon > 0 ? text.slice(0, colon).toLowerCase() : ''
  if (proto !== 'udp' && proto !== 'tcp') throw new InvalidTransportOptionError('listen', text, allowed)
  const rest = text.slice(colon + 1)
  let host: string
  let portText: string | undefined
  if (rest.charCodeAt(0) === 0x5b /* [ */) {
    const close = rest.indexOf(']')
    if (close < 0) throw new InvalidTransportOptionError('listen', text, allowed)
    host = rest.slice(1, close)
    const after = rest.slice(close + 1)
    if (after.length > 0) {
      if (after.charCodeAt(0) !== 0x3a /* : */) throw new InvalidTransportOptionError('listen', text, allowed)
      portText = after.slice(1)
    }
    if (isIP(host) !== 6) throw new InvalidTransportOptionError('listen', text, allowed)
  } else {
    const pc = rest.lastIndexOf(':')
    // An unbracketed IPv6 address would be ambiguous with the port separator.
    if (pc >= 0 && rest.indexOf(':') !== pc) throw new InvalidTransportOptionError('listen', text, allowed)
    host = pc >= 0 ? rest.slice(0, pc) : rest
    portText = pc >= 0 ? rest.slice(pc + 1) : undefined
    if (isIP(host) !== 4) throw new InvalidTransportOptionError('listen', text, allowed)
  }
  let port = SIP_PORT
  if (portText !== undefined) {
    port = parsePort(portText)
    if (port < 0) throw new InvalidTransportOptionError('listen', text, allowed)
  }
  return { transport: proto, address: canonicalAddress(host), port, family: host.includes(':') ? 6 : 4 }
}

/** Digits-only port 0..65535, or -1. */
function parsePort (s: string): number {
  if (s.length === 0 || s.length > 5) return -1
  let n = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i) - 0x30
    if (c < 0 || c > 9) return -1
    n = n * 10 + c
  }
  return n <= 65535 ? n : -1
}

/** Remove the brackets of an IPv6 reference (`[::1]` → `::1`). */
export function stripBrackets (host: string): string {
  return host.charCodeAt(0) === 0x5b && host.charCodeAt(host.length - 1) === 0x5d ? host.slice(1, -1) : host
}

/**
 * `::ffff:1.2.3.4` → `1.2.3.4`. A dual-stack IPv6 socket reports IPv4 peers in
 * this form; keys, `received` and flows use the plain IPv4 form.
 */
export function unmapAddress (address: string): string {
  if (address.length > 7 && address.charCodeAt(0) === 0x3a && address.startsWith('::ffff:') && isIP(address.slice(7)) === 4) {
    return address.slice(7)
  }
  return address
}

/**
 * The normal form of an IP address for comparisons and map keys: brackets
 * removed, IPv4-mapped IPv6 unmapped, IPv6 in RFC 5952 canonical form. A
 * string that is not an IP address (a host name) is returned lower-cased.
 */
export function canonicalAddress (address: string): string {
  const a = stripBrackets(address)
  // IPv4 and names have no colon: the fast path of nearly every message.
  if (a.indexOf(':') < 0) return a.toLowerCase()
  try {
    return unmapAddress(new SocketAddress({ address: a, family: 'ipv6' }).address)
  } catch {
    return a.toLowerCase()
  }
}

/** 4, 6, or 0 when `address` (brackets allowed) is not an IP address. */
export function addressFamily (address: string): 0 | 4 | 6 {
  return isIP(stripBrackets(address)) as 0 | 4 | 6
}
