/**
 * ioredis and pg, loaded on first use. A node on the embedded defaults
 * (memory locations, config-file subscribers) never needs them, and
 * importing them cost it about 19 MiB (ioredis) and 9 MiB (pg) of resident
 * memory, a third of such a node's footprint. Both are CommonJS, so
 * require() loads them synchronously where a client is built.
 */
import { createRequire } from 'node:module'
import type * as IoRedis from 'ioredis'
import type Pg from 'pg'

const requireDep = createRequire(import.meta.url)
let ioredisModule: typeof IoRedis | undefined
let pgModule: typeof Pg | undefined

/** The ioredis module (Redis, Cluster). */
export function ioredis (): typeof IoRedis {
  ioredisModule ??= requireDep('ioredis') as typeof IoRedis
  return ioredisModule
}

/** The pg module (Pool, Client). */
export function pg (): typeof Pg {
  pgModule ??= requireDep('pg') as typeof Pg
  return pgModule
}
