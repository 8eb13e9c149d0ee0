/**
 * Errors of the registrar package. Every error carries a stable `code`;
 * match on `code`, not on the class or the message.
 */

/** Base class of every error thrown by `@sipd/registrar`. */
export class RegistrarError extends Error {
  /** Stable machine-readable code, `SIPD_ERR_*`. */
  readonly code: string

  constructor (code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = new.target.name
    this.code = code
  }
}

/** An option or argument is invalid; thrown at construction or call time, never for network input. */
export class InvalidArgumentError extends RegistrarError {
  constructor (message: string) {
    super('SIPD_ERR_INVALID_ARGUMENT', message)
  }
}

/**
 * A backing store (Redis, PostgreSQL) did not answer or answered with an error.
 * A REGISTER that meets this error should be answered 503 with Retry-After
 * (RFC 3261 §21.5.4), never 500 with details.
 */
export class StoreUnavailableError extends RegistrarError {
  /** Which store failed. */
  readonly store: 'redis' | 'postgres'
  /** The operation that failed, e.g. `update`, `lookup`. */
  readonly operation: string

  constructor (store: 'redis' | 'postgres', operation: string, cause: unknown) {
    const detail = cause instanceof Error ? cause.message : String(cause)
    super('SIPD_ERR_STORE_UNAVAILABLE', `${store} store unavailable during ${operation}: ${truncate(detail, 200)}`, { cause })
    this.store = store
    this.operation = operation
  }
}

/** `addUser` for a username and domain that already exist. */
export class SubscriberExistsError extends RegistrarError {
  readonly user: string
  readonly domain: string

  constructor (user: string, domain: string) {
    super('SIPD_ERR_SUBSCRIBER_EXISTS', `subscriber ${truncate(user, 80)}@${truncate(domain, 80)} already exists`)
    this.user = user
    this.domain = domain
  }
}

/** A database migration failed; nothing of the failed batch was applied. */
export class MigrationError extends RegistrarError {
  /** `component/version name` of the migration that failed. */
  readonly migration: string

  constructor (migration: string, cause: unknown) {
    const detail = cause instanceof Error ? cause.message : String(cause)
    super('SIPD_ERR_MIGRATION', `migration ${migration} failed: ${truncate(detail, 200)}`, { cause })
    this.migration = migration
  }
}

/** @internal Quote-safe truncation for messages that include input. */
export function truncate (s: string, max: number): string {
  return s.length <= max ? s : s.slice(0, max) + '…'
}
