/**
 * Trunk routing: numbers to carrier gateways by longest prefix
 * (`trunks.routes`), with gateways that fail (408, 5xx, transport error)
 * skipped for `trunks.down_for_ms`.
 */
import { parseUri } from '@sipd/sip-parser'

/** A carrier gateway as configured. */
export interface Gateway {
  id: string
  uri: string
}

/** A prefix route as configured: gateways tried in order. */
export interface TrunkRoute {
  prefix: string
  gateways: readonly string[]
}

/** Options of {@link TrunkRouter}. */
export interface TrunkRouterOptions {
  gateways: readonly Gateway[]
  routes: readonly TrunkRoute[]
  /**
   * How long a failing gateway is skipped, in ms.
   * @default 30000
   */
  downForMs?: number
  /**
   * Time source in ms.
   * @default Date.now
   */
  now?: () => number
}

/** Defaults of {@link TrunkRouterOptions}. */
export const DEFAULT_TRUNK_ROUTER_OPTIONS = Object.freeze({ downForMs: 30_000 })

/** A trunk configuration that cannot work (unknown gateway id, bad URI). */
export class TrunkConfigError extends Error {
  readonly code = 'SIPD_ERR_TRUNK_CONFIG'
  constructor (message: string) {
    super(message)
    this.name = 'TrunkConfigError'
  }
}

/** Longest-prefix routing of numbers to gateways, with down marking. */
export class TrunkRouter {
  readonly #byPrefix = new Map<string, Gateway[]>()
  readonly #longest: number
  readonly #downUntil = new Map<string, number>()
  readonly #downForMs: number
  readonly #now: () => number

  /** @throws TrunkConfigError for a route naming an unknown gateway or a gateway URI that does not parse */
  constructor (options: TrunkRouterOptions) {
    const byId = new Map<string, Gateway>()
    for (const g of options.gateways) {
      try {
        parseUri(g.uri)
      } catch {
        throw new TrunkConfigError(`gateway ${JSON.stringify(g.id)}: uri ${JSON.stringify(g.uri)} is not a SIP URI`)
      }
      byId.set(g.id, g)
    }
    let longest = 0
    for (const r of options.routes) {
      const gws = r.gateways.map(id => {
        const g = byId.get(id)
        if (g === undefined) throw new TrunkConfigError(`route ${JSON.stringify(r.prefix)}: gateway ${JSON.stringify(id)} is not in trunks.gateways`)
        return g
      })
      this.#byPrefix.set(r.prefix, gws)
      if (r.prefix.length > longest) longest = r.prefix.length
    }
    this.#longest = longest
    this.#downForMs = options.downForMs ?? DEFAULT_TRUNK_ROUTER_OPTIONS.downForMs
    if (!(Number.isFinite(this.#downForMs) && this.#downForMs >= 0)) throw new TrunkConfigError(`downForMs must be a non-negative number of ms, got ${String(options.downForMs)}`)
    this.#now = options.now ?? Date.now
  }

  /** Number of prefix routes. */
  get size (): number {
    return this.#byPrefix.size
  }

  /**
   * The gateways for a number by longest matching prefix (a leading `+` is
   * ignored), those not marked down first, in configured order; undefined
   * when no prefix matches. Down gateways stay at the end as a last resort.
   */
  gatewaysFor (number: string): Gateway[] | undefined {
    const n = number.charCodeAt(0) === 0x2b ? number.slice(1) : number
    for (let len = Math.min(n.length, this.#longest); len >= 0; len--) {
      const gws = this.#byPrefix.get(n.slice(0, len))
      if (gws === undefined) continue
      const up: Gateway[] = []
      const down: Gateway[] = []
      for (const g of gws) (this.isDown(g.id) ? down : up).push(g)
      return up.concat(down)
    }
    return undefined
  }

  /** Skip this gateway for `downForMs` (it answered 408/5xx or could not be reached). */
  markDown (id: string): void {
    this.#downUntil.set(id, this.#now() + this.#downForMs)
  }

  /** Whether a gateway is marked down now. */
  isDown (id: string): boolean {
    const until = this.#downUntil.get(id)
    if (until === undefined) return false
    if (this.#now() < until) return true
    this.#downUntil.delete(id)
    return false
  }
}

/** The Request-URI for a number sent to a gateway: the number as user part at the gateway's host, port and transport. */
export function gatewayRequestUri (gatewayUri: string, number: string): string {
  const u = parseUri(gatewayUri)
  const host = u.hostType === 'ipv6' && !u.host.startsWith('[') ? '[' + u.host + ']' : u.host
  const transport = u.params.get('transport')
  return 'sip:' + number + '@' + host + (u.port !== undefined ? ':' + String(u.port) : '') + (typeof transport === 'string' ? ';transport=' + transport : '')
}
