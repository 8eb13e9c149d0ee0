/**
 * The registrar side of sipd: location and subscriber stores built from the
 * config, the Registrar element bound to sipd's metrics, and the admin
 * routes over the location store.
 */
import { randomBytes } from 'node:crypto'
import type { SipRequest } from '@sipd/sip-parser'
import {
  CachedSubscriberStore, ConfigSubscriberStore, createRedisClient, DigestAuthenticator, FlowTokens, InvalidArgumentError, MemoryLocationStore,
  PgSubscriberStore, RedisLocationStore, Registrar, StoreUnavailableError
} from '@sipd/registrar'
import type { Binding, LocationStore, SubscriberStore } from '@sipd/registrar'
import type { Logger } from 'pino'
import { AddressList } from './acl.js'
import type { SipdConfig } from './config.js'
import { HttpError } from './http-server.js'
import type { RouteHandler } from './http-server.js'
import type { SipdMetrics } from './metrics.js'
import type { FlowRouting } from './proxy-core.js'

/**
 * The proxy core's flow tokens (RFC 5626 §5.2) over the registrar's
 * FlowTokens. The key is random per process: only the node that minted a
 * token reads it, and a token names a connection by its id, which a
 * restarted process would give to another connection; the flows die with
 * the process anyway, and its tokens with them (430 Flow Failed).
 * @param isFlowOpen whether a flow id of the transport layer is still open
 */
export function flowRouting (isFlowOpen?: (flowId: string) => boolean): FlowRouting {
  const tokens = new FlowTokens({ secret: randomBytes(32) })
  return {
    encode: flow => tokens.encode(flow),
    decode: token => {
      const f = tokens.decode(token)
      if (f === undefined || (f.transport !== 'udp' && f.transport !== 'tcp')) return undefined
      return f.flowId === undefined ? { transport: f.transport, address: f.address, port: f.port } : { transport: f.transport, address: f.address, port: f.port, flowId: f.flowId }
    },
    isOpen: flow => flow.flowId === undefined || isFlowOpen === undefined || isFlowOpen(flow.flowId)
  }
}

/** The stores and the registrar of one sipd process. */
export class LocationService {
  readonly locations: LocationStore
  readonly subscribers: SubscriberStore
  readonly registrar: Registrar
  /** Whether REGISTERs from `address` bind without authentication (registrar.auth_exempt); undefined when none do. */
  readonly authExempt: ((address: string) => boolean) | undefined
  readonly #client: { disconnect: () => void } | undefined
  readonly #logger: Logger

  constructor (config: SipdConfig, logger: Logger, metrics: SipdMetrics) {
    this.#logger = logger
    // Memory unless Redis is configured (SIPD_REDIS_URL): the embedded default for one node.
    // Cluster or Sentinel when configured: the client is ours to end on close.
    const onError = (err: Error): void => { logger.warn({ err: err.message }, 'redis connection error') }
    if (config.redis.cluster.length > 0 || config.redis.sentinels.length > 0) {
      const client = createRedisClient({ cluster: config.redis.cluster, sentinels: config.redis.sentinels, sentinelName: config.redis.sentinelName, onError })
      this.#client = client
      this.locations = new RedisLocationStore({ redis: client, prefix: config.redis.prefix })
    } else {
      this.locations = config.redis.url !== undefined
        ? new RedisLocationStore({ redis: config.redis.url, prefix: config.redis.prefix, onError })
        : new MemoryLocationStore()
    }
    // Config-file subscribers unless PostgreSQL is configured (SIPD_DATABASE_URL);
    // both realms are the domain, as PgSubscriberStore's HA1s are.
    const inner = config.database.url !== undefined
      ? new PgSubscriberStore({ connectionString: config.database.url })
      : new ConfigSubscriberStore(config.subscribers.users)
    this.subscribers = new CachedSubscriberStore(inner, { ttlMs: config.subscribers.cacheTtlMs })
    const storeLatency = metrics.storeLatency
    // registrar.auth_exempt: REGISTERs from these networks bind without digest.
    const exempt = config.registrar.authExempt.length > 0 ? new AddressList(config.registrar.authExempt) : undefined
    if (exempt !== undefined) this.authExempt = address => exempt.has(address)
    if (exempt !== undefined) logger.info({ networks: config.registrar.authExempt }, 'registrar: REGISTERs from these networks are accepted without authentication (registrar.auth_exempt)')
    this.registrar = new Registrar({
      domains: config.domains,
      locations: this.locations,
      subscribers: this.subscribers,
      authenticator: new DigestAuthenticator({ secret: config.auth.secret, algorithms: config.auth.algorithms, md5OnlyUserAgents: config.auth.md5OnlyUserAgents, nonceTtlSec: config.auth.nonceTtl }),
      minExpires: config.registrar.minExpires,
      maxExpires: config.registrar.maxExpires,
      defaultExpires: config.registrar.defaultExpires,
      maxContacts: config.registrar.maxContacts,
      flowTimer: config.registrar.flowTimer,
      nodeId: config.nodeId,
      authExempt: exempt === undefined ? undefined : source => exempt.has(source.address),
      // Plain numbers handed to prom-client at scrape time: a label child's inc() hashes its labels on every call.
      onOutcome: o => { metrics.registerOutcome(o) },
      onAuthFailure: r => { metrics.authFailure(r) },
      onStoreLatency: (_op, s) => { storeLatency.observe(s) },
      onError: err => {
        // Store failures are expected while Redis/PostgreSQL is down: warn without a stack.
        if (err instanceof StoreUnavailableError) logger.warn({ code: err.code, store: err.store, op: err.operation }, 'REGISTER answered 503: store unavailable')
        else logger.error({ err }, 'REGISTER failed')
      }
    })
  }

  /** True when this REGISTER's Request-URI names a domain the registrar serves (RFC 3261 §10.3 step 1). */
  servesRegister (req: SipRequest): boolean {
    try {
      return this.registrar.serves(req.requestUri.host)
    } catch {
      return false
    }
  }

  /** Current bindings of an AOR (`sip:user@domain`), best first. */
  async lookup (aor: string): Promise<Binding[]> {
    return await this.locations.lookup(aor)
  }

  /** Admin routes: `GET /api/locations` (`?aor=` or `?cursor=&limit=`) and `DELETE /api/locations/{aor}`. */
  routes (): Array<[string, RouteHandler]> {
    return [
      ['GET /api/locations', async (_req, url) => await adminCall(async () => {
        const aor = url.searchParams.get('aor')
        if (aor !== null) return { aor, bindings: await this.locations.lookup(aor) }
        const limitText = url.searchParams.get('limit')
        const limit = limitText === null ? undefined : Number(limitText)
        const cursor = url.searchParams.get('cursor') ?? undefined
        return await this.locations.list({ ...(cursor !== undefined ? { cursor } : {}), ...(limit !== undefined ? { limit } : {}) })
      })],
      ['DELETE /api/locations/*', async (_req, url) => await adminCall(async () => {
        const aor = decodeURIComponent(url.pathname.slice('/api/locations/'.length))
        return { aor, removed: await this.locations.remove(aor) }
      })]
    ]
  }

  /**
   * Waits (at most 2 s) for Redis to connect, so that the first REGISTERs
   * do not meet a fail-fast client still connecting. sipd starts anyway
   * when Redis is down: REGISTERs get 503 until it is back.
   */
  async start (): Promise<void> {
    if (!(this.locations instanceof RedisLocationStore)) return
    try {
      await this.locations.ready(2000)
    } catch (err) {
      this.#logger.warn({ err: (err as Error).message }, 'redis not reachable at start; REGISTERs get 503 until it is')
    }
  }

  async close (): Promise<void> {
    await Promise.allSettled([this.locations.close(), this.subscribers.close()])
    this.#client?.disconnect()
  }
}

async function adminCall<T> (fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    if (err instanceof InvalidArgumentError) throw new HttpError(400, err.message)
    if (err instanceof StoreUnavailableError) throw new HttpError(503, 'location store unavailable')
    throw err
  }
}
