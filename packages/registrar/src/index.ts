/**
 * @sipd/registrar: digest authentication, subscriber stores and location
 * stores for the sipd registrar (RFC 3261 §10, RFC 7616, RFC 5626).
 */
export {
  RegistrarError,
  InvalidArgumentError,
  StoreUnavailableError,
  SubscriberExistsError,
  MigrationError
} from './errors.js'

export {
  DigestAuthenticator,
  DEFAULT_DIGEST_OPTIONS,
  MD5_ONLY_USER_AGENTS,
  ha1,
  type DigestAlgorithm,
  type DigestAlgorithmVariant,
  type DigestAuthenticatorOptions,
  type DigestCredentialsInput,
  type DigestVerifyRequest,
  type DigestVerifyResult,
  type DigestFailureReason
} from './digest.js'

export { subscriberHa1, type Subscriber, type SubscriberStore } from './subscriber-store.js'
export { ConfigSubscriberStore, type ConfigSubscriber } from './subscriber-config.js'
export {
  CachedSubscriberStore,
  DEFAULT_CACHED_SUBSCRIBER_STORE_OPTIONS,
  type CachedSubscriberStoreOptions
} from './subscriber-cache.js'
export {
  PgSubscriberStore,
  DEFAULT_PG_SUBSCRIBER_STORE_OPTIONS,
  type PgSubscriberStoreOptions,
  type SubscriberListEntry
} from './subscriber-pg.js'
export { runMigrations, REGISTRAR_MIGRATIONS, type Migration } from './pg-migrations.js'

export {
  bindingKey,
  DEFAULT_MAX_CONTACTS,
  type Binding,
  type BindingChange,
  type BindingOutcome,
  type FlowAddress,
  type LocationPage,
  type LocationStore,
  type LocationUpdate,
  type LocationUpdateResult
} from './location-store.js'
export {
  MemoryLocationStore,
  DEFAULT_MEMORY_LOCATION_STORE_OPTIONS,
  type MemoryLocationStoreOptions
} from './location-memory.js'
export {
  RedisLocationStore,
  DEFAULT_REDIS_CLIENT_OPTIONS,
  DEFAULT_REDIS_LOCATION_STORE_OPTIONS,
  type RedisLocationStoreOptions
} from './location-redis.js'

export {
  Registrar,
  DEFAULT_REGISTRAR_OPTIONS,
  type RegistrarOptions,
  type RegisterSource,
  type RegisterResponse,
  type RegisterOutcome
} from './registrar.js'
export { FlowTokens, DEFAULT_FLOW_TOKENS_OPTIONS, type FlowTokensOptions, type TokenFlow } from './flow-token.js'
export { createRedisClient, type RedisConnectionOptions } from './redis-client.js'
