/**
 * HTTP digest authentication for SIP (RFC 3261 §22.4, RFC 2617, RFC 7616,
 * RFC 8760): challenges with stateless, self-validating nonces and
 * verification of Authorization credentials.
 */
import * as crypto from 'node:crypto'
import { createHash, createHmac, randomBytes, randomInt, timingSafeEqual } from 'node:crypto'
import { ownString } from '@sipd/sip-stack'
import { InvalidArgumentError } from './errors.js'
import { definedOnly } from './options.js'

/** A hash algorithm that can be offered in a challenge. */
export type DigestAlgorithm = 'MD5' | 'SHA-256'

/** An algorithm a client may answer with: the offered ones and their session variants. */
export type DigestAlgorithmVariant = DigestAlgorithm | 'MD5-sess' | 'SHA-256-sess'

/** Options of {@link DigestAuthenticator}. */
export interface DigestAuthenticatorOptions {
  /**
   * Realm put in every challenge. Unset, the realm is the domain of the request
   * (see {@link DigestAuthenticator.realmFor}), which is what the subscriber
   * stores hash passwords with.
   * @default undefined
   */
  realm?: string
  /**
   * HMAC key for nonces, the same on every sipd node so that any node accepts
   * a nonce another node issued. At least 16 characters. Required.
   */
  secret: string
  /**
   * Algorithms offered, most preferred first; each becomes its own
   * WWW-Authenticate value (RFC 8760 §2.3).
   * @default ['MD5']
   */
  algorithms?: readonly DigestAlgorithm[]
  /**
   * User-Agent prefixes (compared case-sensitively from the start) of clients
   * that give up on a challenge list whose first algorithm they do not know
   * instead of answering a later one they do (RFC 8760 §2.4 asks them to take
   * the topmost they support). When `algorithms` has MD5 but not first, such a
   * client is challenged with MD5 alone: what it would have answered anyway,
   * so an operator's `[SHA-256, MD5]` costs these phones nothing. The default
   * names baresip before v3.11.0 (libre's sip/auth.c stops at the first
   * challenge that is not MD5, fixed in baresip/re#1103), Debian 12 ships 1.0.
   * @default {@link MD5_ONLY_USER_AGENTS}
   */
  md5OnlyUserAgents?: readonly string[]
  /**
   * Lifetime of a nonce in seconds; an older nonce with a valid response is
   * answered `stale` (RFC 7616 §3.3).
   * @default 300
   */
  nonceTtlSec?: number
  /**
   * Quality of protection offered. Only `auth`: SIP bodies are not covered
   * (auth-int is not offered; RFC 3261 §22.4 does not require it).
   * @default 'auth'
   */
  qop?: 'auth'
  /**
   * Most nonces whose highest nonce-count is remembered (replay protection,
   * RFC 7616 §3.4). When full, the oldest is forgotten and nonces issued
   * before it are answered `stale` on first use, which costs the client one
   * extra round trip and never lets a replay through.
   * @default 65536
   */
  maxNonceCounts?: number
  /**
   * Clock in milliseconds since the epoch.
   * @default Date.now
   */
  now?: () => number
}

/**
 * User-Agent prefixes of the clients known to stop at a first challenge that
 * is not MD5: baresip v0.x to v3.10.x (`User-Agent: baresip v1.0.0 (x86_64/linux)`).
 */
export const MD5_ONLY_USER_AGENTS: readonly string[] = Object.freeze([
  'baresip v0.', 'baresip v1.', 'baresip v2.',
  'baresip v3.0.', 'baresip v3.1.', 'baresip v3.2.', 'baresip v3.3.', 'baresip v3.4.', 'baresip v3.5.',
  'baresip v3.6.', 'baresip v3.7.', 'baresip v3.8.', 'baresip v3.9.', 'baresip v3.10.'
])

/** Defaults of {@link DigestAuthenticatorOptions} (all but `secret`). */
export const DEFAULT_DIGEST_OPTIONS = Object.freeze({
  realm: undefined as string | undefined,
  algorithms: Object.freeze(['MD5']) as readonly DigestAlgorithm[],
  md5OnlyUserAgents: MD5_ONLY_USER_AGENTS,
  nonceTtlSec: 300,
  qop: 'auth' as const,
  maxNonceCounts: 65536,
  now: Date.now as () => number
})

/**
 * The digest parameters of an Authorization header, as the parser gives them
 * (`SipMessage.authorization`): names lower-case, quotes removed.
 */
export interface DigestCredentialsInput {
  username?: string | undefined
  realm?: string | undefined
  nonce?: string | undefined
  uri?: string | undefined
  response?: string | undefined
  algorithm?: string | undefined
  cnonce?: string | undefined
  qop?: string | undefined
  nc?: string | undefined
  opaque?: string | undefined
}

/** Input of {@link DigestAuthenticator.verify}. */
export interface DigestVerifyRequest {
  /** Method of the request line (`REGISTER`), the A2 method (RFC 7616 §3.4.3). */
  method: string
  /** The client's credentials. */
  credentials: DigestCredentialsInput
  /**
   * The realm the request must be authenticated in, normally
   * `realmFor(domain)`. Credentials for another realm fail with
   * `unknown-user`: issue 7 answers them like an unknown user (403).
   * Unset, the credentials' realm is taken as is.
   */
  realm?: string
  /**
   * The subscriber's HA1 for an algorithm (lower-case hex), or `undefined`
   * when there is no such (enabled) subscriber. Called at most once.
   */
  ha1: (algorithm: DigestAlgorithm) => string | undefined
}

/**
 * Why credentials were refused. Suggested answers:
 * `stale` → 401 with `stale=true`; `bad-nonce`, `wrong-password`, `replay` →
 * 401 with a fresh challenge; `unknown-user` → 403; `bad-request` → 400.
 */
export type DigestFailureReason = 'stale' | 'bad-nonce' | 'wrong-password' | 'replay' | 'bad-request' | 'unknown-user'

/** Outcome of {@link DigestAuthenticator.verify}. */
export type DigestVerifyResult =
  | { ok: true, algorithm: DigestAlgorithmVariant }
  | { ok: false, reason: DigestFailureReason }

// Nonce layout: base64url(payload) followed by base64url(first 16 bytes of
// HMAC-SHA256(secret, payload 0x00 realm)); 15 and 16 bytes encode to
// exactly 20 and 22 characters, so no separator. Other nodes read only the
// payload's timestamp (bytes 0-5, ms); bytes 6-14 are the issuer's own: a
// random 24-bit instance id (bytes 6-8, characters 8-11) and a 48-bit issue
// number (bytes 9-14, characters 12-19), counting up from a random start.
// They replaced 9 random bytes: a nonce must be unique (the instance and
// number make it so, with the timestamp across nodes) and unforgeable (the
// MAC, unchanged); it need not be secret, and with the MAC's 128 bits it is
// no more predictable than before. The number indexes the recent-nonce
// table directly, without hashing the nonce's text.
const NONCE_PAYLOAD_BYTES = 15
const NONCE_PAYLOAD_CHARS = 20
const NONCE_MAC_BYTES = 16
const NONCE_LENGTH = 42
const NONCE_INSTANCE_CHAR = 8
const NONCE_SEQ_CHAR = 12
const SEQ_LIMIT = 2 ** 48
// Nodes' clocks differ a little; a nonce "from the future" within this margin
// was issued by a node whose clock is ahead, beyond it the nonce is forged.
const MAX_CLOCK_SKEW_MS = 60_000
// Bounded work per insertion when dropping expired nonce-count entries.
const NONCE_SWEEP_PER_INSERT = 64
const MAX_REALMS_CACHED = 1024
// The last nonces this node issued, by issue number: the answer to a
// challenge usually comes back to the node that sent it within
// milliseconds, and a nonce found here needs no decoding and no HMAC. A
// nonce not found (older, or another node's) is checked in full, as before.
const RECENT_NONCES = 4096
const HMAC_BLOCK = 64

/**
 * Issues digest challenges and verifies the answers.
 *
 * Nonces are stateless: a timestamp and the issuer's instance id and issue
 * number signed with an HMAC over the realm, so any node holding the secret
 * validates any node's nonce.
 * Replay protection (RFC 7616 §3.4: a nonce-count must increase) is kept per
 * node in a bounded table; a client that moves to another node with the same
 * nonce is not detected as a replay there, its response is still bound to
 * the nonce and expires with it.
 */
export class DigestAuthenticator {
  readonly #realm: string | undefined
  readonly #secret: Buffer
  readonly #algorithms: readonly DigestAlgorithm[]
  // Empty unless MD5 is offered but not first: only then does a client's User-Agent matter.
  readonly #md5OnlyUserAgents: readonly string[]
  readonly #ttlMs: number
  readonly #qop: 'auth'
  readonly #now: () => number
  readonly #counts: NonceCountTable
  readonly #realms = new Map<string, RealmInfo>()
  // HMAC-SHA256 as two one-shot hashes (the same MAC): createHmac made and
  // keyed an HMAC object per nonce, about a third of a challenge's CPU.
  // Inner block: (key ^ ipad) then per realm the payload, 0x00 and the realm
  // (RealmInfo.inner); outer: (key ^ opad) then the inner hash.
  readonly #ipad: Buffer
  readonly #outer: Buffer
  // A nonce's bytes as it is built: payload, then the MAC's first bytes.
  readonly #nonceBytes = Buffer.allocUnsafeSlow(NONCE_PAYLOAD_BYTES + NONCE_MAC_BYTES)
  readonly #noncePayload = this.#nonceBytes.subarray(0, NONCE_PAYLOAD_BYTES)
  #instance = 0
  #seq = 0
  #firstSeq = 0
  // The recent nonces by issue number modulo RECENT_NONCES: text, issue time, realm.
  readonly #recentText = new Array<string | undefined>(RECENT_NONCES).fill(undefined)
  readonly #recentAt = new Float64Array(RECENT_NONCES)
  readonly #recentRealm = new Array<string | undefined>(RECENT_NONCES).fill(undefined)
  // What #checkNonce found besides the issue time: a copy of the nonce's
  // text of our own (the parsed one is a slice of the request's text and
  // would keep all of it alive for the nonce's lifetime in the count table),
  // and its issue number when this instance issued it (else -1).
  #checkedText = ''
  #checkedSeq = -1
  // A fixed HA1 used when the user is unknown, so that an unknown user costs
  // the same hashing as a wrong password.
  readonly #dummyHa1: Record<DigestAlgorithm, string>

  constructor (options: DigestAuthenticatorOptions) {
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError('DigestAuthenticator: options must be an object')
    const o = { ...DEFAULT_DIGEST_OPTIONS, ...definedOnly(options) }
    if (typeof o.secret !== 'string' || o.secret.length < 16) {
      throw new InvalidArgumentError('DigestAuthenticator: option "secret" must be a string of at least 16 characters, the same on every node')
    }
    if (o.realm !== undefined && (typeof o.realm !== 'string' || o.realm.length === 0)) {
      throw new InvalidArgumentError('DigestAuthenticator: option "realm" must be a non-empty string or unset')
    }
    if (!Array.isArray(o.algorithms) || o.algorithms.length === 0) {
      throw new InvalidArgumentError('DigestAuthenticator: option "algorithms" must be a non-empty list of "MD5" and "SHA-256"')
    }
    const seen = new Set<string>()
    for (const a of o.algorithms) {
      if (a !== 'MD5' && a !== 'SHA-256') throw new InvalidArgumentError(`DigestAuthenticator: option "algorithms" has ${JSON.stringify(a)}; supported are "MD5" and "SHA-256"`)
      if (seen.has(a)) throw new InvalidArgumentError(`DigestAuthenticator: option "algorithms" lists ${a} twice`)
      seen.add(a)
    }
    if (!Array.isArray(o.md5OnlyUserAgents) || !o.md5OnlyUserAgents.every(u => typeof u === 'string' && u.length > 0)) {
      throw new InvalidArgumentError('DigestAuthenticator: option "md5OnlyUserAgents" must be a list of non-empty strings (User-Agent prefixes)')
    }
    if (!Number.isInteger(o.nonceTtlSec) || o.nonceTtlSec < 1 || o.nonceTtlSec > 86_400) {
      throw new InvalidArgumentError(`DigestAuthenticator: option "nonceTtlSec" must be an integer from 1 to 86400, got ${String(o.nonceTtlSec)}`)
    }
    if (o.qop !== 'auth') throw new InvalidArgumentError(`DigestAuthenticator: option "qop" must be "auth", got ${JSON.stringify(o.qop)}`)
    if (!Number.isInteger(o.maxNonceCounts) || o.maxNonceCounts < 1) {
      throw new InvalidArgumentError(`DigestAuthenticator: option "maxNonceCounts" must be a positive integer, got ${String(o.maxNonceCounts)}`)
    }
    if (typeof o.now !== 'function') throw new InvalidArgumentError('DigestAuthenticator: option "now" must be a function')
    this.#realm = o.realm
    this.#secret = Buffer.from(o.secret, 'utf8')
    this.#algorithms = Object.freeze([...o.algorithms])
    this.#md5OnlyUserAgents = o.algorithms.indexOf('MD5') > 0 ? Object.freeze([...o.md5OnlyUserAgents]) : []
    this.#ttlMs = o.nonceTtlSec * 1000
    this.#qop = o.qop
    this.#now = o.now
    this.#counts = new NonceCountTable(o.maxNonceCounts, this.#ttlMs)
    const key = this.#secret.length > HMAC_BLOCK ? createHash('sha256').update(this.#secret).digest() : this.#secret
    this.#ipad = Buffer.alloc(HMAC_BLOCK, 0x36)
    this.#outer = Buffer.alloc(HMAC_BLOCK + 32, 0x5c)
    for (let i = 0; i < key.length; i++) {
      this.#ipad[i]! ^= key[i]!
      this.#outer[i]! ^= key[i]!
    }
    this.#newInstance()
    this.#dummyHa1 = {
      MD5: ha1('\0', '\0', randomBytes(16).toString('hex'), 'MD5'),
      'SHA-256': ha1('\0', '\0', randomBytes(16).toString('hex'), 'SHA-256')
    }
  }

  /** The algorithms offered, most preferred first. */
  get algorithms (): readonly DigestAlgorithm[] {
    return this.#algorithms
  }

  /** The realm to challenge a request for `domain` with: the configured realm, else the domain. */
  realmFor (domain: string): string {
    return this.#realm ?? domain
  }

  /**
   * WWW-Authenticate (or Proxy-Authenticate) values, one per offered
   * algorithm in preference order (RFC 8760 §2.3), all with the same nonce.
   * `algorithm=MD5` is written out even though MD5 is the RFC 2617 default:
   * issue 7 records that baresip 1.0 and sipp 3.6 give up on a challenge
   * naming any other algorithm, and an explicit MD5 keeps them working.
   * A request whose `userAgent` starts with one of `md5OnlyUserAgents` gets
   * the MD5 challenge alone (when MD5 is offered).
   */
  challenge (realm: string, opts?: { stale?: boolean, userAgent?: string | undefined }): string[] {
    const r = this.#realmInfo(realm)
    const nonce = this.#issueNonce(r, this.#now())
    const head = `Digest realm="${r.quoted}", nonce="${nonce}", opaque="${r.opaque}", qop="${this.#qop}", algorithm=`
    const tail = opts?.stale === true ? ', stale=true' : ''
    if (this.#md5Only(opts?.userAgent)) return [head + 'MD5' + tail]
    const out: string[] = []
    for (const a of this.#algorithms) out.push(head + a + tail)
    return out
  }

  #md5Only (userAgent: string | undefined): boolean {
    if (userAgent === undefined) return false
    const prefixes = this.#md5OnlyUserAgents
    for (let i = 0; i < prefixes.length; i++) if (userAgent.startsWith(prefixes[i] as string)) return true
    return false
  }

  /**
   * Checks credentials against a challenge this node or any node with the
   * same secret issued. Never throws for bad input; the reason says what to
   * answer.
   */
  verify (req: DigestVerifyRequest): DigestVerifyResult {
    const c = req.credentials
    if (c === undefined || c === null) return BAD_REQUEST
    const { username, realm, nonce, uri, response } = c
    if (!nonEmpty(username) || !nonEmpty(realm) || !nonEmpty(nonce) || !nonEmpty(uri) || !nonEmpty(response)) return BAD_REQUEST
    // RFC 7616 §3.4: an absent algorithm means MD5.
    const variant = parseAlgorithm(c.algorithm)
    if (variant === undefined) return BAD_REQUEST
    const base = baseAlgorithm(variant)
    // Accepting an algorithm we did not offer would let a client downgrade
    // to MD5 where the operator asked for SHA-256 only.
    if (!this.#algorithms.includes(base)) return BAD_REQUEST
    const sess = variant !== base
    let nc = 0
    if (c.qop !== undefined) {
      // RFC 7616 §3.4: with qop, cnonce and nc are required. Only auth was offered.
      if (c.qop.toLowerCase() !== 'auth') return BAD_REQUEST
      if (!nonEmpty(c.cnonce) || c.nc === undefined) return BAD_REQUEST
      nc = parseNonceCount(c.nc)
      if (nc <= 0) return BAD_REQUEST
    } else if (sess && !nonEmpty(c.cnonce)) {
      // RFC 2617 §3.2.2.2: the -sess A1 needs a cnonce.
      return BAD_REQUEST
    }
    if (req.realm !== undefined && req.realm !== realm) return UNKNOWN_USER

    const issuedAt = this.#checkNonce(nonce, realm)
    if (issuedAt < 0) return BAD_NONCE
    const text = this.#checkedText
    const seq = this.#checkedSeq
    if (c.opaque !== undefined && c.opaque !== this.#realmInfo(realm).opaque) return BAD_NONCE

    const stored = req.ha1(base)
    const known = typeof stored === 'string' && stored.length > 0
    const key = known ? stored.toLowerCase() : this.#dummyHa1[base]
    const expected = digestResponse({
      algorithm: variant,
      ha1: key,
      nonce,
      cnonce: c.cnonce,
      nc: c.nc,
      qop: c.qop,
      method: req.method,
      uri
    })
    // Deliberately not compared with the Request-URI: sipp 3.6 puts the
    // remote address there (uri="sip:127.0.0.5:5060" for a REGISTER to
    // sip:example.test), and the response already covers the uri it sent.
    const matches = constantTimeHexEqual(expected, response)
    if (!known) return UNKNOWN_USER
    if (!matches) return WRONG_PASSWORD
    // RFC 7616 §3.3: stale only when the digest itself is right, so the
    // client retries with the new nonce without asking the user again.
    const now = this.#now()
    const expiresAt = issuedAt + this.#ttlMs
    if (now >= expiresAt) return STALE
    if (c.qop !== undefined) {
      const verdict = this.#counts.advance(text, issuedAt, nc, now, seq)
      if (verdict === 'replay') return REPLAY
      if (verdict === 'forgotten') return STALE
    }
    return OK[variant]
  }

  /** Nonces whose highest nonce-count is remembered (replay protection): those used within their lifetime, at most `maxNonceCounts`. */
  get rememberedNonceCounts (): number {
    return this.#counts.size
  }

  /** A new random instance id and issue numbers from a random start. */
  #newInstance (): void {
    this.#instance = randomInt(0x1000000)
    this.#seq = randomInt(2 ** 40)
    this.#firstSeq = this.#seq
    this.#recentText.fill(undefined)
    this.#recentRealm.fill(undefined)
    const p = this.#noncePayload
    p[6] = this.#instance >>> 16
    p[7] = (this.#instance >>> 8) & 0xff
    p[8] = this.#instance & 0xff
  }

  #issueNonce (r: RealmInfo, now: number): string {
    // Payload and MAC side by side, encoded at once: 15 bytes are a whole
    // number of base64 groups, so the text is the two encodings joined, one
    // flat string instead of a join of two.
    if (this.#seq >= SEQ_LIMIT) this.#newInstance()
    const payload = this.#noncePayload
    // The 48-bit timestamp as 16 + 32 bits: writeUIntBE(…, 6) costs more than a hash.
    const at = Math.max(0, Math.floor(now))
    const high = Math.floor(at / 0x1_0000_0000)
    payload.writeUInt16BE(high & 0xffff, 0)
    payload.writeUInt32BE(at - high * 0x1_0000_0000, 2)
    // Bytes 6-8 are the instance id (written once); 9-14 the issue number as 24 + 24 bits.
    const seq = this.#seq++
    const hi = Math.floor(seq / 0x100_0000)
    const lo = seq - hi * 0x100_0000
    payload[9] = hi >>> 16
    payload[10] = (hi >>> 8) & 0xff
    payload[11] = hi & 0xff
    payload[12] = lo >>> 16
    payload[13] = (lo >>> 8) & 0xff
    payload[14] = lo & 0xff
    this.#mac(r, payload).copy(this.#nonceBytes, NONCE_PAYLOAD_BYTES, 0, NONCE_MAC_BYTES)
    const nonce = this.#nonceBytes.toString('base64url')
    const slot = lo % RECENT_NONCES
    this.#recentText[slot] = nonce
    this.#recentAt[slot] = at
    this.#recentRealm[slot] = r.name
    return nonce
  }

  /** The issue time of a nonce signed for this realm, or -1; sets #checkedText. */
  #checkNonce (nonce: string, realm: string): number {
    if (nonce.length !== NONCE_LENGTH) return -1
    // One of the last nonces this instance issued: found by its issue number, no hashing.
    const mine = decode64(nonce, NONCE_INSTANCE_CHAR, 4) === this.#instance
    const hi = mine ? decode64(nonce, NONCE_SEQ_CHAR, 4) : -1
    const lo = mine ? decode64(nonce, NONCE_SEQ_CHAR + 4, 4) : -1
    const seq = hi >= 0 && lo >= 0 ? hi * 0x100_0000 + lo : -1
    if (seq >= 0) {
      const slot = lo % RECENT_NONCES
      const text = this.#recentText[slot]
      if (text === nonce) {
        if (this.#recentRealm[slot] !== realm) return -1
        this.#checkedText = text
        this.#checkedSeq = seq
        return this.#recentAt[slot]!
      }
    }
    const p = nonce.slice(0, NONCE_PAYLOAD_CHARS)
    const m = nonce.slice(NONCE_PAYLOAD_CHARS)
    const payload = Buffer.from(p, 'base64url')
    const mac = Buffer.from(m, 'base64url')
    // Buffer's base64url decoder skips foreign characters; re-encoding makes
    // sure exactly one spelling of a nonce is accepted.
    if (payload.length !== NONCE_PAYLOAD_BYTES || mac.length !== NONCE_MAC_BYTES) return -1
    const p2 = payload.toString('base64url')
    const m2 = mac.toString('base64url')
    if (p2 !== p || m2 !== m) return -1
    if (!timingSafeEqual(mac, this.#mac(this.#realmInfo(realm), payload).subarray(0, NONCE_MAC_BYTES))) return -1
    const issuedAt = payload.readUIntBE(0, 6)
    if (issuedAt > this.#now() + MAX_CLOCK_SKEW_MS) return -1
    // p2 + m2 are strings of our own, not slices of the request's text.
    this.#checkedText = p2 + m2
    // Ours only if this instance has issued that number: a node that drew the same instance id is another issuer.
    this.#checkedSeq = seq >= this.#firstSeq && seq < this.#seq ? seq : -1
    return issuedAt
  }

  /** HMAC-SHA256(secret, payload 0x00 realm), whole (32 bytes; a nonce takes the first 16). The result is only valid until the next call. */
  #mac (r: RealmInfo, payload: Buffer): Buffer {
    if (oneShotBuffer === undefined) return createHmac('sha256', this.#secret).update(payload).update('\0').update(r.name, 'utf8').digest()
    payload.copy(r.inner, HMAC_BLOCK)
    oneShotBuffer('sha256', r.inner, 'buffer').copy(this.#outer, HMAC_BLOCK)
    return oneShotBuffer('sha256', this.#outer, 'buffer')
  }

  /**
   * The realm's opaque value (derived from the secret, so every node sends
   * the same), its quoted form and a copy of its name that keeps no request
   * text alive (the realm is often the request's domain, a slice of it).
   */
  #realmInfo (realm: string): RealmInfo {
    let v = this.#realms.get(realm)
    if (v === undefined) {
      const name = ownString(realm)
      const realmBytes = Buffer.from(name, 'utf8')
      const inner = Buffer.allocUnsafeSlow(HMAC_BLOCK + NONCE_PAYLOAD_BYTES + 1 + realmBytes.length)
      this.#ipad.copy(inner, 0)
      inner[HMAC_BLOCK + NONCE_PAYLOAD_BYTES] = 0
      realmBytes.copy(inner, HMAC_BLOCK + NONCE_PAYLOAD_BYTES + 1)
      v = {
        name,
        quoted: quote(name),
        opaque: createHmac('sha256', this.#secret).update('opaque\0').update(realm, 'utf8').digest().subarray(0, 12).toString('base64url'),
        inner
      }
      if (this.#realms.size >= MAX_REALMS_CACHED) this.#realms.clear()
      this.#realms.set(name, v)
    }
    return v
  }
}

interface RealmInfo {
  readonly name: string
  readonly quoted: string
  readonly opaque: string
  /** The HMAC's inner block for this realm: key ^ ipad, room for the payload, 0x00, the realm's UTF-8. */
  readonly inner: Buffer
}

/**
 * HA1 = H(username ":" realm ":" password) in lower-case hex (RFC 7616
 * §3.4.2), what the subscriber stores keep instead of the password.
 */
export function ha1 (user: string, realm: string, password: string, algorithm: DigestAlgorithm): string {
  return hash(algorithm, `${user}:${realm}:${password}`)
}

/** Inputs of {@link digestResponse}. */
export interface DigestResponseInput {
  algorithm: DigestAlgorithmVariant
  /** H(user:realm:password), lower-case hex. */
  ha1: string
  nonce: string
  cnonce?: string | undefined
  nc?: string | undefined
  qop?: string | undefined
  method: string
  uri: string
}

/**
 * The request-digest a client must send (RFC 7616 §3.4.1; without qop the
 * RFC 2069 form of RFC 2617 §3.2.2.1), lower-case hex.
 * @internal exported for tests.
 */
export function digestResponse (i: DigestResponseInput): string {
  const base = baseAlgorithm(i.algorithm)
  // RFC 7616 §3.4.2: for -sess, A1 = H(user:realm:pass) ":" nonce ":" cnonce.
  const a1Hash = i.algorithm === base ? i.ha1 : hash(base, `${i.ha1}:${i.nonce}:${i.cnonce ?? ''}`)
  const a2Hash = hash(base, `${i.method}:${i.uri}`)
  if (i.qop === undefined) return hash(base, `${a1Hash}:${i.nonce}:${a2Hash}`)
  return hash(base, `${a1Hash}:${i.nonce}:${i.nc ?? ''}:${i.cnonce ?? ''}:${i.qop}:${a2Hash}`)
}

const BAD_REQUEST: DigestVerifyResult = Object.freeze({ ok: false, reason: 'bad-request' })
const BAD_NONCE: DigestVerifyResult = Object.freeze({ ok: false, reason: 'bad-nonce' })
const STALE: DigestVerifyResult = Object.freeze({ ok: false, reason: 'stale' })
const WRONG_PASSWORD: DigestVerifyResult = Object.freeze({ ok: false, reason: 'wrong-password' })
const REPLAY: DigestVerifyResult = Object.freeze({ ok: false, reason: 'replay' })
const UNKNOWN_USER: DigestVerifyResult = Object.freeze({ ok: false, reason: 'unknown-user' })
const OK: Readonly<Record<DigestAlgorithmVariant, DigestVerifyResult>> = Object.freeze({
  MD5: Object.freeze({ ok: true, algorithm: 'MD5' }),
  'MD5-sess': Object.freeze({ ok: true, algorithm: 'MD5-sess' }),
  'SHA-256': Object.freeze({ ok: true, algorithm: 'SHA-256' }),
  'SHA-256-sess': Object.freeze({ ok: true, algorithm: 'SHA-256-sess' })
})

// crypto.hash (Node 20.12+) hashes in one call without a Hash object: a
// digest REGISTER hashes two or three times, and each Hash object was a
// C++ wrapper to build and, at the next GC, to destroy.
const oneShot: ((algorithm: string, data: string, encoding: 'hex') => string) | undefined =
  typeof (crypto as { hash?: unknown }).hash === 'function' ? crypto.hash : undefined
const oneShotBuffer = oneShot as unknown as ((algorithm: string, data: Buffer, encoding: 'buffer') => Buffer) | undefined

// base64url character -> 6-bit value, -1 for any other character.
const B64URL = new Int8Array(128).fill(-1)
for (let i = 0; i < 64; i++) B64URL['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.charCodeAt(i)] = i

/** The 6·n-bit number the n base64url characters of `s` from `at` spell (n ≤ 5), or -1. */
function decode64 (s: string, at: number, n: number): number {
  let v = 0
  for (let i = at; i < at + n; i++) {
    const c = s.charCodeAt(i)
    const d = c < 128 ? B64URL[c]! : -1
    if (d < 0) return -1
    v = v * 64 + d
  }
  return v
}

function hash (algorithm: DigestAlgorithm, text: string): string {
  const name = algorithm === 'MD5' ? 'md5' : 'sha256'
  // crypto.hash takes a string as UTF-8, as update(text, 'utf8') does.
  return oneShot !== undefined ? oneShot(name, text, 'hex') : createHash(name).update(text, 'utf8').digest('hex')
}

function baseAlgorithm (a: DigestAlgorithmVariant): DigestAlgorithm {
  return a === 'MD5' || a === 'MD5-sess' ? 'MD5' : 'SHA-256'
}

function parseAlgorithm (text: string | undefined): DigestAlgorithmVariant | undefined {
  if (text === undefined) return 'MD5'
  // RFC 7616 §3.3: algorithm names are case-insensitive.
  switch (text.toUpperCase()) {
    case 'MD5': return 'MD5'
    case 'MD5-SESS': return 'MD5-sess'
    case 'SHA-256': return 'SHA-256'
    case 'SHA-256-SESS': return 'SHA-256-sess'
    default: return undefined
  }
}

/** nc is 8 hex digits (RFC 7616 §3.4); 1 to 8 are accepted. Returns 0 when invalid. */
function parseNonceCount (text: string): number {
  if (text.length === 0 || text.length > 8) return 0
  let v = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    let d: number
    if (c >= 0x30 && c <= 0x39) d = c - 0x30
    else if (c >= 0x61 && c <= 0x66) d = c - 0x57
    else if (c >= 0x41 && c <= 0x46) d = c - 0x37
    else return 0
    v = v * 16 + d
  }
  return v
}

/**
 * Whether `got` is the lower-case hex `expected`, upper-case hex digits
 * allowed, in time that does not depend on where they differ. Character by
 * character: two Buffers per REGISTER before, and a got whose lower-casing
 * changed its length (U+0130) made timingSafeEqual throw.
 */
function constantTimeHexEqual (expected: string, got: string): boolean {
  if (got.length !== expected.length) return false
  let diff = 0
  for (let i = 0; i < expected.length; i++) {
    let g = got.charCodeAt(i)
    if (g >= 0x41 && g <= 0x46) g |= 0x20
    diff |= g ^ expected.charCodeAt(i)
  }
  return diff === 0
}

function nonEmpty (s: string | undefined): s is string {
  return typeof s === 'string' && s.length > 0
}

/** Escape for a quoted-string (RFC 3261 §25.1). */
function quote (s: string): string {
  let out = ''
  for (let i = 0; i < s.length; i++) {
    const c = s[i]
    out += c === '"' || c === '\\' ? '\\' + c : c
  }
  return out
}

/**
 * Highest nonce-count seen per nonce, bounded in size. Entries sit in a ring
 * in first-use order, which is close to issue order, so expired entries are
 * dropped from the front a few at a time. A slot's nonce, count and issue
 * time are parallel arrays and the map holds the slot: up to
 * `maxNonceCounts` nonces (65,536 by default) are held for their lifetime,
 * and an object with two heap numbers each was about 80 B of heap apiece
 * and 200,000 objects for the garbage collector to mark.
 */
class NonceCountTable {
  readonly #max: number
  readonly #ttlMs: number
  /** Ring slot of another issuer's nonce, by its text. */
  readonly #map = new Map<string, number>()
  /** The ring: `#head` is the oldest slot, `#count` used; grown by doubling up to `#max`. */
  #keys: Array<string | undefined>
  #nc: Uint32Array
  #issuedAt: Float64Array
  /** Per slot: this instance's issue number of the nonce, OTHER for another issuer's, DEAD for a dropped one. */
  #seqs: Float64Array
  /**
   * Ring slot + 1 of this instance's nonces by issue number modulo its
   * length (a power of two, at least twice the ring's): no hashing of the
   * text and, as issue numbers count up, neighbouring entries.
   */
  #own: Int32Array
  #head = 0
  #count = 0
  /** Slots in the ring dropped out of order (see #index). */
  #dead = 0
  // Issue time of the newest nonce forgotten for lack of room; a nonce issued
  // no later than this may have been used already, so it cannot be trusted.
  #forgottenUpTo = -1

  constructor (max: number, ttlMs: number) {
    this.#max = max
    this.#ttlMs = ttlMs
    const n = Math.min(max, 1024)
    this.#keys = new Array<string | undefined>(n).fill(undefined)
    this.#nc = new Uint32Array(n)
    this.#issuedAt = new Float64Array(n)
    this.#seqs = new Float64Array(n)
    this.#own = new Int32Array(ownIndexLength(n))
  }

  /**
   * Records `nc` for `nonce` (issued at `issuedAt`; `seq` its issue number
   * when this instance issued it, else -1): 'replay' when not above the
   * last one seen, 'forgotten' when the nonce may have been evicted.
   */
  advance (nonce: string, issuedAt: number, nc: number, now: number, seq = -1): 'ok' | 'replay' | 'forgotten' {
    const slot = seq >= 0 ? this.#ownSlot(nonce, seq) : this.#map.get(nonce)
    if (slot !== undefined) {
      if (nc <= this.#nc[slot]!) return 'replay'
      this.#nc[slot] = nc
      return 'ok'
    }
    if (issuedAt <= this.#forgottenUpTo) return 'forgotten'
    // Expired entries go as new ones come, not only once the table is full:
    // after a burst an idle registrar kept every count until the bound. An
    // expired nonce is answered stale before its count is looked at, so
    // dropping it forgets nothing.
    this.#dropExpired(now)
    if (this.#count === this.#keys.length) {
      if (this.#count < this.#max) this.#grow()
      else this.#makeRoom()
    }
    const cap = this.#keys.length
    const i = this.#head + this.#count
    const at = i >= cap ? i - cap : i
    this.#keys[at] = nonce
    this.#nc[at] = nc
    this.#issuedAt[at] = issuedAt
    this.#count++
    if (seq >= 0) {
      this.#seqs[at] = seq
      this.#index(seq, at)
    } else {
      this.#seqs[at] = OTHER
      this.#map.set(nonce, at)
    }
    return 'ok'
  }

  /** Entries remembered. */
  get size (): number {
    return this.#count - this.#dead
  }

  /** The slot of this instance's nonce `seq` (with that text), or undefined. */
  #ownSlot (nonce: string, seq: number): number | undefined {
    const slot = this.#own[seq & (this.#own.length - 1)]! - 1
    return slot >= 0 && this.#seqs[slot] === seq && this.#keys[slot] === nonce ? slot : undefined
  }

  /**
   * Points the index at `at` for `seq`. A live entry of another issue
   * number with the same index (at least twice the ring's length apart:
   * only when far more nonces are issued than used) is dropped in place and
   * counts as forgotten, so it is answered stale and never taken as a
   * first use.
   */
  #index (seq: number, at: number): void {
    const idx = seq & (this.#own.length - 1)
    const prev = this.#own[idx]! - 1
    if (prev >= 0 && prev !== at && this.#seqs[prev]! >= 0 && (this.#seqs[prev]! & (this.#own.length - 1)) === idx) {
      const cap = this.#keys.length
      if ((prev - this.#head + cap) % cap < this.#count) {
        if (this.#issuedAt[prev]! > this.#forgottenUpTo) this.#forgottenUpTo = this.#issuedAt[prev]!
        this.#keys[prev] = undefined
        this.#seqs[prev] = DEAD
        this.#dead++
      }
    }
    this.#own[idx] = at + 1
  }

  /** Up to NONCE_SWEEP_PER_INSERT expired entries, oldest first (first use follows issue order closely). */
  #dropExpired (now: number): void {
    for (let n = 0; n < NONCE_SWEEP_PER_INSERT && this.#count > 0; n++) {
      if (this.#issuedAt[this.#head]! + this.#ttlMs > now) break
      this.#dropOldest()
    }
  }

  /** Full of live entries: the oldest is forgotten (its nonce then answered stale). */
  #makeRoom (): void {
    const h = this.#head
    const issuedAt = this.#issuedAt[h]!
    const live = this.#seqs[h] !== DEAD
    this.#dropOldest()
    if (live && issuedAt > this.#forgottenUpTo) this.#forgottenUpTo = issuedAt
  }

  #dropOldest (): void {
    const h = this.#head
    const seq = this.#seqs[h]!
    if (seq >= 0) {
      const idx = seq & (this.#own.length - 1)
      if (this.#own[idx] === h + 1) this.#own[idx] = 0
    } else if (seq === OTHER) {
      this.#map.delete(this.#keys[h]!)
    } else {
      this.#dead--
    }
    this.#keys[h] = undefined
    this.#seqs[h] = DEAD
    this.#head = h + 1 === this.#keys.length ? 0 : h + 1
    this.#count--
  }

  /** Twice the slots (at most `#max`), oldest first from slot 0; the map and the index get the new slots. */
  #grow (): void {
    const cap = this.#keys.length
    const n = Math.min(this.#max, cap * 2)
    const keys = new Array<string | undefined>(n).fill(undefined)
    const nc = new Uint32Array(n)
    const issuedAt = new Float64Array(n)
    const seqs = new Float64Array(n)
    // A longer index: issue numbers apart by a multiple of it were apart by a multiple of the shorter one too, so none collide.
    const own = new Int32Array(ownIndexLength(n))
    for (let k = 0; k < this.#count; k++) {
      const from = (this.#head + k) % cap
      const key = this.#keys[from]
      const seq = this.#seqs[from]!
      keys[k] = key
      nc[k] = this.#nc[from]!
      issuedAt[k] = this.#issuedAt[from]!
      seqs[k] = seq
      if (seq >= 0) own[seq & (own.length - 1)] = k + 1
      else if (seq === OTHER) this.#map.set(key!, k)
    }
    this.#keys = keys
    this.#nc = nc
    this.#issuedAt = issuedAt
    this.#seqs = seqs
    this.#own = own
    this.#head = 0
  }
}

/** #seqs of another issuer's nonce, and of a slot dropped out of order. */
const OTHER = -1
const DEAD = -2

/** The own-nonce index for a ring of `n` slots: a power of two, at least 2n. */
function ownIndexLength (n: number): number {
  let p = 1
  while (p < 2 * n) p *= 2
  return p
}
