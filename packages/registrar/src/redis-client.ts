/**
 * ioredis clients for the location store from sipd's `redis:` settings:
 * standalone (`url`), Sentinel (`sentinels` + `sentinelName`) or Cluster
 * (`cluster` seed nodes), all failing fast while disconnected.
 */
import type { Cluster, Redis } from 'ioredis'
import { ioredis } from './lazy-deps.js'
import { InvalidArgumentError } from './errors.js'
import { DEFAULT_REDIS_CLIENT_OPTIONS } from './location-redis.js'

/** Where Redis is; give `url`, `sentinels` or `cluster`. */
export interface RedisConnectionOptions {
  /** `redis://host:port[/db]` of a standalone server. @default undefined */
  url?: string | undefined
  /** Sentinel addresses, `host:port`; needs `sentinelName`. @default [] */
  sentinels?: readonly string[]
  /** The master name the sentinels monitor. @default undefined */
  sentinelName?: string | undefined
  /** Cluster seed nodes, `host:port`. @default [] */
  cluster?: readonly string[]
  /** Receives connection errors (ioredis prints them otherwise). @default ignore */
  onError?: (err: Error) => void
}

/**
 * A client with {@link DEFAULT_REDIS_CLIENT_OPTIONS} (no offline queue, so
 * a REGISTER answers 503 at once while Redis is away; background
 * reconnects). Cluster wins over Sentinel, Sentinel over `url`. The caller
 * owns the client and ends it with `quit()`/`disconnect()`.
 */
export function createRedisClient (o: RedisConnectionOptions): Redis | Cluster {
  const cluster = o.cluster ?? []
  const sentinels = o.sentinels ?? []
  let client: Redis | Cluster
  if (cluster.length > 0) {
    client = new (ioredis().Cluster)(cluster.map(s => hostPort(s, 'cluster')), {
      enableOfflineQueue: false,
      // Per-node settings; the Cluster itself owns the offline queue and the retries.
      redisOptions: { connectTimeout: DEFAULT_REDIS_CLIENT_OPTIONS.connectTimeout, commandTimeout: DEFAULT_REDIS_CLIENT_OPTIONS.commandTimeout, maxRetriesPerRequest: DEFAULT_REDIS_CLIENT_OPTIONS.maxRetriesPerRequest },
      clusterRetryStrategy: DEFAULT_REDIS_CLIENT_OPTIONS.retryStrategy
    })
  } else if (sentinels.length > 0) {
    if (o.sentinelName === undefined || o.sentinelName === '') throw new InvalidArgumentError('createRedisClient: "sentinels" needs "sentinelName" (redis.sentinel_name), the monitored master')
    client = new (ioredis().Redis)({ ...DEFAULT_REDIS_CLIENT_OPTIONS, sentinels: sentinels.map(s => hostPort(s, 'sentinels')), name: o.sentinelName })
  } else if (o.url !== undefined && o.url !== '') {
    client = new (ioredis().Redis)(o.url, { ...DEFAULT_REDIS_CLIENT_OPTIONS })
  } else {
    throw new InvalidArgumentError('createRedisClient: give "url", "sentinels" or "cluster"')
  }
  client.on('error', o.onError ?? (() => {}))
  return client
}

function hostPort (s: string, key: string): { host: string, port: number } {
  const c = s.lastIndexOf(':')
  const port = Number(s.slice(c + 1))
  if (c <= 0 || !Number.isInteger(port) || port < 1 || port > 65535) throw new InvalidArgumentError(`createRedisClient: ${key} entry ${JSON.stringify(s)} is not host:port`)
  let host = s.slice(0, c)
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1)
  return { host, port }
}
