/**
 * Proxy authentication of subscribers (RFC 3261 §22.3): 407 with
 * Proxy-Authenticate, verified with the registrar's DigestAuthenticator
 * against the subscriber store, so phones answer the same challenge as for
 * REGISTER.
 */
import { ConfigSubscriberStore, DigestAuthenticator, subscriberHa1 } from '@sipd/registrar'
import type { SubscriberStore } from '@sipd/registrar'
import { SipParseError } from '@sipd/sip-parser'
import type { SipRequest } from '@sipd/sip-parser'
import type { SipdConfig } from './config.js'

/** What to do with a request after the proxy-authentication check. */
export type ProxyAuthOutcome =
  | { ok: true, user: string, domain: string }
  | { ok: false, status: number, reason: string, headers?: Array<[string, string]> }

/** Options of {@link ProxyAuth}. */
export interface ProxyAuthOptions {
  /** Verifies digest responses and issues challenges. @default one built from `config.auth` */
  authenticator?: DigestAuthenticator | undefined
  /** Where subscribers' HA1s come from. @default the config's embedded `subscribers.users` */
  subscribers?: SubscriberStore | undefined
}

/** Digest proxy authentication of requests from subscribers' phones. */
export class ProxyAuth {
  readonly #auth: DigestAuthenticator
  readonly #store: SubscriberStore

  constructor (config: SipdConfig, options: ProxyAuthOptions = {}) {
    this.#auth = options.authenticator ?? new DigestAuthenticator({ secret: config.auth.secret, algorithms: config.auth.algorithms, md5OnlyUserAgents: config.auth.md5OnlyUserAgents, nonceTtlSec: config.auth.nonceTtl })
    this.#store = options.subscribers ?? new ConfigSubscriberStore(config.subscribers.users)
  }

  /**
   * Check the request's Proxy-Authorization in the realm of `domain` (the
   * From domain: the subscriber's). No or failed credentials get a 407
   * challenge; an unknown user 403 (as the registrar answers it); a stale
   * nonce a 407 with `stale=true`.
   */
  async check (req: SipRequest, user: string, domain: string): Promise<ProxyAuthOutcome> {
    const realm = this.#auth.realmFor(domain)
    const challenge = (stale: boolean): ProxyAuthOutcome => ({
      ok: false,
      status: 407,
      reason: 'Proxy Authentication Required',
      headers: this.#auth.challenge(realm, { stale, userAgent: req.header('User-Agent') }).map(v => ['Proxy-Authenticate', v] as [string, string])
    })
    let creds
    try {
      creds = req.proxyAuthorization
    } catch (err) {
      // Credentials that do not parse are the client's error (RFC 3261 §21.4.1), not ours.
      if (err instanceof SipParseError) return { ok: false, status: 400, reason: 'Bad Proxy-Authorization' }
      throw err
    }
    if (creds === undefined || creds.realm !== realm) return challenge(false)
    // The credentials name the subscriber; it must be the From user (no calling as someone else).
    if (creds.username !== user) return { ok: false, status: 403, reason: 'Credentials Do Not Match From' }
    const sub = await this.#store.lookup(user, domain)
    const result = this.#auth.verify({ method: req.method, credentials: creds, realm, ha1: subscriberHa1(sub, realm) })
    if (result.ok) return { ok: true, user, domain }
    switch (result.reason) {
      case 'stale': return challenge(true)
      case 'unknown-user': return { ok: false, status: 403, reason: 'Forbidden' }
      case 'bad-request': return { ok: false, status: 400, reason: 'Bad Proxy-Authorization' }
      default: return challenge(false)
    }
  }
}
