/**
 * Subscribers: who may register, with their digest HA1s. Passwords are hashed
 * when a subscriber is created or loaded and never kept in clear.
 */

/** One subscriber as the registrar needs it for digest verification. */
export interface Subscriber {
  /** User part of the AOR, case-sensitive (RFC 3261 §19.1.4). */
  readonly user: string
  /** Domain of the AOR, lower-case. */
  readonly domain: string
  /** Realm the HA1s were computed with; the authenticator must challenge with it. */
  readonly realm: string
  /** MD5(user:realm:password), lower-case hex. */
  readonly ha1Md5: string
  /** SHA-256(user:realm:password), lower-case hex. */
  readonly ha1Sha256: string
  /** A disabled subscriber is refused like an unknown one. */
  readonly enabled: boolean
}

/** Read access to subscribers, the only thing REGISTER handling needs. */
export interface SubscriberStore {
  /**
   * The subscriber `user@domain` (domain compared case-insensitively), or
   * `undefined`. Disabled subscribers are returned with `enabled: false`.
   * Rejects with `StoreUnavailableError` when the backing store fails.
   */
  lookup (user: string, domain: string): Promise<Subscriber | undefined>
  /** Releases connections the store opened itself. */
  close (): Promise<void>
}

/** @internal Map key of a subscriber. */
export function subscriberKey (user: string, domain: string): string {
  return user + '\0' + domain.toLowerCase()
}

/**
 * The `ha1` callback of `DigestAuthenticator.verify` for a looked-up
 * subscriber: `undefined` (→ `unknown-user`) when there is no subscriber,
 * when it is disabled, or when its HA1s were computed for another realm than
 * the one challenged, so all three get the same answer.
 */
export function subscriberHa1 (sub: Subscriber | undefined, realm: string): (algorithm: 'MD5' | 'SHA-256') => string | undefined {
  if (sub === undefined || !sub.enabled || sub.realm !== realm) return () => undefined
  return (algorithm) => algorithm === 'MD5' ? sub.ha1Md5 : sub.ha1Sha256
}
