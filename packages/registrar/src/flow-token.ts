/**
 * Flow tokens (RFC 5626 §5.2): the user part of a sipd node's own Path or
 * Record-Route URI that names the flow a phone registered on. A request
 * that comes back to the node with such a Route goes down that flow, so a
 * phone behind NAT or on TCP is reachable from every node of the cluster.
 *
 * A token is `<payload>.<mac>`: the flow's transport, address, port and
 * (optionally) connection id, `~`-separated, in base64url, and an
 * HMAC-SHA256 of the payload, truncated. Only the node that minted a token
 * needs to read it; the MAC stops anyone else from pointing the node at an
 * address of their choosing.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import { InvalidArgumentError } from './errors.js'
import type { FlowAddress } from './location-store.js'
import { definedOnly } from './options.js'

/** What a flow token names: the phone's end of the flow and, optionally, the transport layer's id of the connection. */
export interface TokenFlow extends FlowAddress {
  /** The transport layer's flow id (RFC 5626 §3), e.g. `tcp/12`; no `~` in it. */
  readonly flowId?: string
}

/** Options of {@link FlowTokens}. */
export interface FlowTokensOptions {
  /** HMAC secret (e.g. `auth.secret`); at least 16 characters or bytes. */
  secret: string | Buffer
  /**
   * Characters of base64url MAC kept in a token (6 bits each).
   * @default 16
   */
  macLength?: number
}

/** Defaults of {@link FlowTokensOptions}. */
export const DEFAULT_FLOW_TOKENS_OPTIONS = Object.freeze({ macLength: 16 })

/** Between the fields of the payload (not in addresses, ports or flow ids). */
const SEP = '~'
// Tokens minted lately, by payload text: a token is a pure function of the
// flow, and a phone's REGISTERs keep coming from the same flow, so most
// encodes are a Map hit instead of an HMAC (most of a REGISTER's crypto).
const ENCODED_CACHE = 4096

/** Mints and checks flow tokens. */
export class FlowTokens {
  readonly #key: Buffer
  readonly #macLength: number
  readonly #encoded = new Map<string, string>()

  constructor (options: FlowTokensOptions) {
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError('FlowTokens: options must be an object')
    const o = { ...DEFAULT_FLOW_TOKENS_OPTIONS, ...definedOnly(options) }
    if (!(typeof o.secret === 'string' || Buffer.isBuffer(o.secret)) || o.secret.length < 16) {
      throw new InvalidArgumentError('FlowTokens: option "secret" must be a string or Buffer of at least 16 characters')
    }
    if (!Number.isInteger(o.macLength) || o.macLength < 8 || o.macLength > 43) {
      throw new InvalidArgumentError(`FlowTokens: option "macLength" must be an integer from 8 to 43, got ${String(o.macLength)}`)
    }
    // A key of its own, so that a token's MAC is never a valid nonce MAC and the other way round.
    this.#key = createHmac('sha256', o.secret).update('sipd flow token').digest()
    this.#macLength = o.macLength
  }

  /** The token naming `flow`: characters that RFC 3261 §25.1 allows unescaped in a URI user part. */
  encode (flow: TokenFlow): string {
    let text = flow.transport + '~' + flow.address + '~' + String(flow.port)
    if (flow.flowId !== undefined) {
      if (flow.flowId.indexOf('~') >= 0) throw new InvalidArgumentError(`FlowTokens: a flow id must not contain "~", got ${JSON.stringify(flow.flowId)}`)
      text += '~' + flow.flowId
    }
    const cache = this.#encoded
    let token = cache.get(text)
    if (token !== undefined) return token
    const payload = Buffer.from(text, 'utf8').toString('base64url')
    token = payload + '.' + this.#mac(payload)
    if (cache.size >= ENCODED_CACHE) cache.clear()
    // The key is built from the flow's fields by concatenation; flattening it
    // for the Map copies them, so no request text is kept alive by it.
    cache.set(text, token)
    return token
  }

  /** The flow a token names, or undefined when it is not a token of this key (forged, cut, or another node's). */
  decode (token: string): TokenFlow | undefined {
    const dot = token.lastIndexOf('.')
    if (dot <= 0 || token.length - dot - 1 !== this.#macLength) return undefined
    const payload = token.slice(0, dot)
    const expected = Buffer.from(this.#mac(payload), 'latin1')
    const given = Buffer.from(token.slice(dot + 1), 'latin1')
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined
    const text = Buffer.from(payload, 'base64url').toString('utf8')
    const a = text.indexOf(SEP)
    const b = a < 0 ? -1 : text.indexOf(SEP, a + 1)
    if (a <= 0 || b <= a + 1) return undefined
    const c = text.indexOf(SEP, b + 1)
    const port = Number(text.slice(b + 1, c < 0 ? text.length : c))
    if (!Number.isInteger(port) || port < 1 || port > 65535) return undefined
    const flow = { transport: text.slice(0, a), address: text.slice(a + 1, b), port }
    if (c < 0) return flow
    if (c === text.length - 1) return undefined
    return { ...flow, flowId: text.slice(c + 1) }
  }

  #mac (payload: string): string {
    return createHmac('sha256', this.#key).update(payload).digest('base64url').slice(0, this.#macLength)
  }
}
