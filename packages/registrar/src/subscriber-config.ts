import { ha1 } from './digest.js'
import { InvalidArgumentError } from './errors.js'
import { subscriberKey, type Subscriber, type SubscriberStore } from './subscriber-store.js'

/** A subscriber as written in the configuration file (`subscribers.users`). */
export interface ConfigSubscriber {
  user: string
  domain: string
  /** Clear-text password from the file; hashed at load and then dropped. */
  password: string
  /** @default true */
  enabled?: boolean
}

/**
 * Subscribers from the configuration file, the embedded default. Passwords
 * are hashed into HA1s when the store is built and are not retained.
 */
export class ConfigSubscriberStore implements SubscriberStore {
  readonly #byKey = new Map<string, Subscriber>()

  /**
   * @param users the configured subscribers
   * @param realmOf realm used for a domain's HA1s; must match the realm the
   *   authenticator challenges with. Default: the domain itself.
   */
  constructor (users: readonly ConfigSubscriber[], realmOf: (domain: string) => string = (d) => d) {
    if (!Array.isArray(users)) throw new InvalidArgumentError('ConfigSubscriberStore: users must be an array of {user, domain, password}')
    users.forEach((u, i) => {
      const where = `subscribers.users[${i}]`
      if (u === null || typeof u !== 'object') throw new InvalidArgumentError(`${where} must be an object with user, domain and password`)
      if (typeof u.user !== 'string' || u.user.length === 0) throw new InvalidArgumentError(`${where}.user must be a non-empty string`)
      if (typeof u.domain !== 'string' || u.domain.length === 0) throw new InvalidArgumentError(`${where}.domain must be a non-empty string`)
      if (typeof u.password !== 'string' || u.password.length === 0) throw new InvalidArgumentError(`${where}.password must be a non-empty string`)
      if (u.enabled !== undefined && typeof u.enabled !== 'boolean') throw new InvalidArgumentError(`${where}.enabled must be true or false`)
      const domain = u.domain.toLowerCase()
      const key = subscriberKey(u.user, domain)
      if (this.#byKey.has(key)) throw new InvalidArgumentError(`${where}: ${u.user}@${domain} is listed twice`)
      const realm = realmOf(domain)
      this.#byKey.set(key, Object.freeze({
        user: u.user,
        domain,
        realm,
        ha1Md5: ha1(u.user, realm, u.password, 'MD5'),
        ha1Sha256: ha1(u.user, realm, u.password, 'SHA-256'),
        enabled: u.enabled ?? true
      }))
    })
  }

  /** Number of configured subscribers. */
  get size (): number {
    return this.#byKey.size
  }

  async lookup (user: string, domain: string): Promise<Subscriber | undefined> {
    return this.#byKey.get(subscriberKey(user, domain))
  }

  async close (): Promise<void> {}
}
