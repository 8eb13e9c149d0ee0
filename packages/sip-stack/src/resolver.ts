/**
 * RFC 3263 §4 target resolution: a SIP URI becomes an ordered list of
 * (transport, address, port) targets to try in turn.
 *
 * NAPTR (RFC 3263 §4.1 first step) is not queried: the client goes straight
 * to SRV for the transports it supports, which §4.1 prescribes when no NAPTR
 * records exist. The SIP deployments sipd serves publish SRV (or nothing).
 */
import * as nodeDns from 'node:dns/promises'
import { isIP } from 'node:net'
import { parseUri } from '@sipd/sip-parser'
import type { SipUri } from '@sipd/sip-parser'
import { canonicalAddress, SIP_PORT, SIPS_PORT, stripBrackets } from './transport-address.js'
import { InvalidTransportOptionError, ResolverError } from './transport-errors.js'

/** A transport a target can name; sipd itself sends over `udp` and `tcp`. */
export type TargetTransport = 'udp' | 'tcp' | 'tls'

/** One place to send a request to (RFC 3263 §4.3: try them in order). */
export interface Target {
  transport: TargetTransport
  /** IP address, IPv6 without brackets. */
  address: string
  port: number
  family: 4 | 6
}

/** The DNS functions the resolver uses; `node:dns/promises` and `dns.promises.Resolver` fit. */
export interface DnsClient {
  resolve4: (hostname: string, options: { ttl: true }) => Promise<Array<{ address: string, ttl: number }>>
  resolve6: (hostname: string, options: { ttl: true }) => Promise<Array<{ address: string, ttl: number }>>
  resolveSrv: (hostname: string) => Promise<Array<{ name: string, port: number, priority: number, weight: number }>>
}

/** Options of `Resolver`. */
export interface ResolverOptions {
  /**
   * The DNS client.
   * @default the `node:dns/promises` module (system resolver configuration)
   */
  dns: DnsClient
  /**
   * Transports to look up SRV records for, in order of preference, for a
   * `sip:` URI with a name, no port and no `transport` parameter.
   * @default ['udp', 'tcp']
   * @see RFC 3263 §4.1
   */
  transports: readonly TargetTransport[]
  /**
   * Cache lifetime of SRV answers in seconds: node's `resolveSrv` does not
   * report the record TTL.
   * @default 300
   */
  srvTtl: number
  /**
   * Cache lifetime of "no such name / no records" answers, in seconds.
   * @default 30
   */
  negativeTtl: number
  /**
   * Upper bound on any cache lifetime, in seconds.
   * @default 3600
   */
  maxTtl: number
  /**
   * Maximum number of cached DNS answers; the least recently used go first,
   * 1/16 of them at a time once the cache is full.
   * @default 1024
   */
  maxCacheEntries: number
  /**
   * Query AAAA records as well as A records.
   * @default true
   */
  ipv6: boolean
  /**
   * Put IPv6 addresses of a name before its IPv4 addresses.
   * @default false
   */
  preferIPv6: boolean
  /**
   * Milliseconds since the epoch; injectable so tests can age the cache.
   * @default Date.now
   */
  now: () => number
  /**
   * Uniform random number in [0, 1) for RFC 2782 weighted selection.
   * @default Math.random
   */
  random: () => number
}

/** Defaults of `ResolverOptions`. */
export const DEFAULT_RESOLVER_OPTIONS: Readonly<ResolverOptions> = Object.freeze({
  dns: nodeDns as DnsClient,
  transports: Object.freeze(['udp', 'tcp'] as TargetTransport[]),
  srvTtl: 300,
  negativeTtl: 30,
  maxTtl: 3600,
  maxCacheEntries: 1024,
  ipv6: true,
  preferIPv6: false,
  now: Date.now,
  random: Math.random
})

interface SrvRecord { name: string, port: number, priority: number, weight: number }
interface AddrRecord { address: string, ttl: number }

interface CacheEntry {
  expires: number
  value: SrvRecord[] | AddrRecord[]
}

/** DNS answers that mean "nothing there"; cached for `negativeTtl`. Others (timeouts, SERVFAIL) are not cached. */
const NEGATIVE_CODES = new Set(['ENOTFOUND', 'ENODATA', 'ENONAME', 'NXDOMAIN'])

/**
 * Resolves SIP URIs to targets per RFC 3263 §4, caching DNS answers by TTL.
 *
 * `resolve` rejects with a ResolverError only for input it cannot handle at
 * all (unparseable URI, scheme other than sip/sips, unsupported transport);
 * a name that does not resolve gives an empty list.
 */
export class Resolver {
  readonly #opts: ResolverOptions
  readonly #cache = new Map<string, CacheEntry>()
  readonly #inflight = new Map<string, Promise<SrvRecord[] | AddrRecord[]>>()
  /** DNS queries sent (cache misses), for metrics and tests. */
  queries = 0
  /** Answers served from the cache. */
  cacheHits = 0

  constructor (options: Partial<ResolverOptions> = {}) {
    this.#opts = resolveOptions(options)
  }

  /** RFC 3263 §4: the ordered targets for a `sip:`/`sips:` URI. */
  async resolve (uri: SipUri | string): Promise<Target[]> {
    let u: SipUri
    if (typeof uri === 'string') {
      try {
        u = parseUri(uri)
      } catch (err) {
        throw new ResolverError(`cannot resolve ${quote(uri)}: not a valid URI`, 'SIP_ERR_BAD_URI', { cause: err })
      }
    } else {
      u = uri
    }
    if (u.scheme !== 'sip' && u.scheme !== 'sips') {
      throw new ResolverError(`cannot resolve ${quote(u.raw)}: scheme "${u.scheme}" is not sip or sips`, 'SIP_ERR_UNSUPPORTED_SCHEME')
    }
    const secure = u.scheme === 'sips'
    // RFC 3263 §4: maddr, when present, is the host to resolve.
    const maddr = u.params.get('maddr')
    const host = maddr !== undefined && maddr !== null && maddr.length > 0 ? maddr : u.host
    const tp = u.params.get('transport')
    let transport: TargetTransport | undefined
    if (tp !== undefined && tp !== null) {
      transport = transportFromParam(tp, secure)
      if (transport === undefined) {
        throw new ResolverError(`cannot resolve ${quote(u.raw)}: transport "${tp}" is not supported (udp, tcp, tls)`, 'SIP_ERR_UNSUPPORTED_TRANSPORT')
      }
    }
    return await this.resolveHost(host, u.port, transport, secure)
  }

  /**
   * RFC 3263 §4 for a host, port and transport given apart (also RFC 3263 §5
   * for a Via sent-by). `transport` undefined means "not specified".
   */
  async resolveHost (hostIn: string, port: number | undefined, transport: TargetTransport | undefined, secure = false): Promise<Target[]> {
    const host = stripBrackets(hostIn)
    const family = isIP(host)
    // §4.1: numeric host or explicit port: UDP for sip, TLS for sips, unless specified.
    const chosen = transport ?? (secure ? 'tls' : 'udp')
    if (family !== 0) {
      return [{ transport: chosen, address: canonicalAddress(host), port: port ?? defaultPort(chosen), family: family === 6 ? 6 : 4 }]
    }
    const name = host.toLowerCase()
    // §4.2: a name with an explicit port is looked up with A/AAAA only.
    if (port !== undefined) return await this.#addresses(name, chosen, port)

    // §4.2: no port: SRV for the transport(s), ordered per RFC 2782.
    const wanted: TargetTransport[] = transport !== undefined
      ? [transport]
      : secure ? ['tls'] : this.#opts.transports.slice()
    const lists = await Promise.all(wanted.map(async t => await this.#srv(srvName(t, secure, name))))
    let anySrv = false
    const out: Target[] = []
    for (let i = 0; i < wanted.length; i++) {
      const records = lists[i] as SrvRecord[]
      if (records.length === 0) continue
      anySrv = true
      for (const rec of orderSrv(records, this.#opts.random)) {
        // RFC 2782: a target of "." means the service is decidedly not available.
        if (rec.name === '.' || rec.name === '') continue
        out.push(...await this.#addresses(rec.name.toLowerCase(), wanted[i] as TargetTransport, rec.port))
      }
    }
    if (anySrv) return out
    // §4.2: no SRV records: A/AAAA of the name with the default port.
    return await this.#addresses(name, chosen, defaultPort(chosen))
  }

  /** Drop every cached answer. */
  clearCache (): void {
    this.#cache.clear()
  }

  /** Number of cached answers. */
  get cacheSize (): number {
    return this.#cache.size
  }

  async #addresses (name: string, transport: TargetTransport, port: number): Promise<Target[]> {
    const v4p = this.#lookup('A', name)
    const v6p = this.#opts.ipv6 ? this.#lookup('AAAA', name) : undefined
    const v4 = await v4p as AddrRecord[]
    const v6 = v6p !== undefined ? await v6p as AddrRecord[] : []
    const a: Target[] = v4.map(r => ({ transport, address: r.address, port, family: 4 }))
    const b: Target[] = v6.map(r => ({ transport, address: canonicalAddress(r.address), port, family: 6 }))
    return this.#opts.preferIPv6 ? b.concat(a) : a.concat(b)
  }

  async #srv (qname: string): Promise<SrvRecord[]> {
    return await this.#lookup('SRV', qname) as SrvRecord[]
  }

  async #lookup (type: 'A' | 'AAAA' | 'SRV', name: string): Promise<SrvRecord[] | AddrRecord[]> {
    const key = type + ' ' + name
    const now = this.#opts.now()
    const hit = this.#cache.get(key)
    if (hit !== undefined) {
      this.#cache.delete(key)
      if (hit.expires > now) {
        // Re-insert: Map order is the LRU order.
        this.#cache.set(key, hit)
        this.cacheHits++
        return hit.value
      }
    }
    const pending = this.#inflight.get(key)
    if (pending !== undefined) return await pending
    const p = this.#query(type, name).finally(() => this.#inflight.delete(key))
    this.#inflight.set(key, p)
    return await p
  }

  async #query (type: 'A' | 'AAAA' | 'SRV', name: string): Promise<SrvRecord[] | AddrRecord[]> {
    const dns = this.#opts.dns
    this.queries++
    let value: SrvRecord[] | AddrRecord[]
    let ttl: number
    try {
      if (type === 'SRV') {
        value = await dns.resolveSrv(name)
        ttl = this.#opts.srvTtl
      } else {
        const recs = type === 'A' ? await dns.resolve4(name, { ttl: true }) : await dns.resolve6(name, { ttl: true })
        value = recs
        ttl = Infinity
        for (const r of recs) if (r.ttl < ttl) ttl = r.ttl
        if (recs.length === 0) ttl = this.#opts.negativeTtl
      }
    } catch (err) {
      const code = (err as { code?: unknown }).code
      if (typeof code === 'string' && NEGATIVE_CODES.has(code)) {
        this.#store(type + ' ' + name, [], this.#opts.negativeTtl)
      }
      // Timeouts and server failures are not cached: the next request asks again.
      return []
    }
    this.#store(type + ' ' + name, value, ttl)
    return value
  }

  #store (key: string, value: SrvRecord[] | AddrRecord[], ttlSeconds: number): void {
    const ttl = Math.min(ttlSeconds, this.#opts.maxTtl)
    if (!(ttl > 0)) return
    const cache = this.#cache
    cache.set(key, { expires: this.#opts.now() + ttl * 1000, value })
    const max = this.#opts.maxCacheEntries
    if (cache.size <= max) return
    // The least recently used go in a batch of 1/16 of the cache, from one iterator: every
    // new iterator walks all the entries deleted before the first live one (each cache hit
    // deletes and re-inserts) until the map rehashes, so evicting one per insert from
    // `keys().next()` cost O(cache size) per insert once the cache was full.
    let n = cache.size - max + (max >>> 4)
    for (const oldest of cache.keys()) {
      cache.delete(oldest)
      if (--n === 0) break
    }
  }
}

/**
 * RFC 2782 ordering: by priority ascending; within a priority, weighted
 * random selection (records of weight 0 first in the running sum, so they are
 * picked only rarely when others have weight).
 */
export function orderSrv<T extends { priority: number, weight: number }> (records: readonly T[], random: () => number = Math.random): T[] {
  const byPrio = records.slice().sort((a, b) => a.priority - b.priority)
  const out: T[] = []
  let i = 0
  while (i < byPrio.length) {
    let j = i
    const prio = (byPrio[i] as T).priority
    while (j < byPrio.length && (byPrio[j] as T).priority === prio) j++
    // Weight-0 records go to the front of the list (RFC 2782 "Usage rules").
    const group = byPrio.slice(i, j).sort((a, b) => (a.weight === 0 ? 0 : 1) - (b.weight === 0 ? 0 : 1))
    while (group.length > 0) {
      let total = 0
      for (const r of group) total += r.weight
      // A uniform integer in [0, total]; the first running sum >= it wins.
      const pick = Math.floor(random() * (total + 1))
      let sum = 0
      let k = 0
      for (; k < group.length - 1; k++) {
        sum += (group[k] as T).weight
        if (sum >= pick) break
      }
      out.push(group[k] as T)
      group.splice(k, 1)
    }
    i = j
  }
  return out
}

function srvName (t: TargetTransport, secure: boolean, name: string): string {
  // RFC 3263 §4.1: _sips._tcp for TLS, _sip._udp / _sip._tcp otherwise.
  if (t === 'tls' || secure) return '_sips._tcp.' + name
  return (t === 'udp' ? '_sip._udp.' : '_sip._tcp.') + name
}

function transportFromParam (param: string, secure: boolean): TargetTransport | undefined {
  const p = param.toLowerCase()
  if (p === 'udp') return secure ? undefined : 'udp'
  // RFC 3261 §26.2.2: sips over TCP means TLS.
  if (p === 'tcp') return secure ? 'tls' : 'tcp'
  if (p === 'tls') return 'tls'
  return undefined
}

function defaultPort (t: TargetTransport): number {
  return t === 'tls' ? SIPS_PORT : SIP_PORT
}

function quote (s: string): string {
  return JSON.stringify(s.length > 80 ? s.slice(0, 80) + '…' : s)
}

function resolveOptions (o: Partial<ResolverOptions>): ResolverOptions {
  const r: ResolverOptions = { ...DEFAULT_RESOLVER_OPTIONS }
  for (const [k, v] of Object.entries(o)) {
    if (v !== undefined) (r as unknown as Record<string, unknown>)[k] = v
  }
  const d = r.dns as unknown as Record<string, unknown>
  if (d === null || typeof d !== 'object' || typeof d.resolve4 !== 'function' || typeof d.resolve6 !== 'function' || typeof d.resolveSrv !== 'function') {
    throw new InvalidTransportOptionError('dns', typeof r.dns, 'an object with resolve4, resolve6 and resolveSrv')
  }
  if (!Array.isArray(r.transports) || r.transports.length === 0 || !r.transports.every(t => t === 'udp' || t === 'tcp' || t === 'tls')) {
    throw new InvalidTransportOptionError('transports', r.transports, 'a non-empty list of "udp", "tcp", "tls"')
  }
  for (const k of ['srvTtl', 'negativeTtl', 'maxTtl'] as const) {
    if (typeof r[k] !== 'number' || !(r[k] >= 0) || !Number.isFinite(r[k])) throw new InvalidTransportOptionError(k, r[k], 'a number of seconds >= 0')
  }
  if (!Number.isInteger(r.maxCacheEntries) || r.maxCacheEntries < 1) {
    throw new InvalidTransportOptionError('maxCacheEntries', r.maxCacheEntries, 'an integer >= 1')
  }
  if (typeof r.ipv6 !== 'boolean') throw new InvalidTransportOptionError('ipv6', r.ipv6, 'true or false')
  if (typeof r.preferIPv6 !== 'boolean') throw new InvalidTransportOptionError('preferIPv6', r.preferIPv6, 'true or false')
  if (typeof r.now !== 'function') throw new InvalidTransportOptionError('now', typeof r.now, 'a function returning milliseconds')
  if (typeof r.random !== 'function') throw new InvalidTransportOptionError('random', typeof r.random, 'a function returning [0, 1)')
  return r
}
