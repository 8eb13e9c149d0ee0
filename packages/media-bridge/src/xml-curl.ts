import { createHash, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { InvalidArgumentError, MediaBridgeError, quote } from './errors.js'

// FreeSWITCH's mod_xml_curl POSTs `application/x-www-form-urlencoded` fields
// describing what it is looking for (section, tag_name, key_name, key_value,
// plus the event headers of the lookup) and expects a `freeswitch/xml`
// document back. This module answers the `directory` lookups of sofia's digest
// authentication (action=sip_auth) and `dialplan` lookups.

/** What the subscriber store returns for one user. */
export interface SubscriberEntry {
  /** MD5(username ":" realm ":" password), 32 hex digits (RFC 2617 §3.2.2.2 H(A1)); never a clear password. */
  ha1Md5: string
  /** Extra `<variables>` of the user (e.g. `user_context`). @default {} */
  variables?: Readonly<Record<string, string>>
}

/**
 * Look a subscriber up in the same store the registrar uses. `fields` is the
 * whole mod_xml_curl request (e.g. `sip_auth_realm`, `ip`) for stores that care.
 */
export type LookupSubscriber = (user: string, domain: string, fields: URLSearchParams) => Promise<SubscriberEntry | undefined>

/** The dialplan served for `section=dialplan`. */
export interface DialplanOptions {
  /**
   * The FreeSWITCH context answered; a request for another context gets
   * not-found so FreeSWITCH falls back to its own files. @default 'public'
   */
  context: string
  /** Name of the catch-all extension. @default 'sipd' */
  extensionName: string
  /**
   * `data` of the `bridge` action, sent as is: FreeSWITCH expands `${...}`
   * channel variables when the call runs.
   * @default 'sofia/gateway/sipd/${destination_number}'
   */
  bridgeTemplate: string
}

/** Defaults of {@link DialplanOptions}. */
export const DEFAULT_DIALPLAN_OPTIONS: Readonly<DialplanOptions> = Object.freeze({
  context: 'public',
  extensionName: 'sipd',
  bridgeTemplate: 'sofia/gateway/sipd/${destination_number}'
})

/** Dependencies and settings of {@link handleXmlCurl}. */
export interface XmlCurlDeps {
  /** Subscriber lookup for `section=directory`. */
  lookupSubscriber: LookupSubscriber
  /** Dialplan for `section=dialplan`; `false` answers not-found. @default DEFAULT_DIALPLAN_OPTIONS */
  dialplan?: Partial<DialplanOptions> | false
  /** Called when the lookup fails (the answer is then HTTP 500). @default undefined */
  onError?: ((err: unknown) => void) | undefined
}

/** An HTTP answer, independent of any server framework. */
export interface XmlCurlResponse {
  status: number
  contentType: string
  body: string
}

const XML_CONTENT_TYPE = 'text/xml; charset=utf-8'
const XML_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'

/** Escape text for an XML attribute value or element content. */
export function escapeXml (s: string): string {
  let out = ''
  let last = 0
  for (let i = 0; i < s.length; i++) {
    let rep: string
    switch (s.charCodeAt(i)) {
      case 0x26: rep = '&amp;'; break
      case 0x3c: rep = '&lt;'; break
      case 0x3e: rep = '&gt;'; break
      case 0x22: rep = '&quot;'; break
      case 0x27: rep = '&apos;'; break
      default: continue
    }
    out += s.slice(last, i) + rep
    last = i + 1
  }
  return last === 0 ? s : out + s.slice(last)
}

/** The standard "not found" document: FreeSWITCH then falls back to its other sources. */
export const NOT_FOUND_DOCUMENT = XML_DECL +
  '<document type="freeswitch/xml">\n' +
  '  <section name="result">\n' +
  '    <result status="not found"/>\n' +
  '  </section>\n' +
  '</document>\n'

function notFound (status = 200): XmlCurlResponse {
  return { status, contentType: XML_CONTENT_TYPE, body: NOT_FOUND_DOCUMENT }
}

function isHa1 (s: unknown): s is string {
  if (typeof s !== 'string' || s.length !== 32) return false
  for (let i = 0; i < 32; i++) {
    const c = s.charCodeAt(i)
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46))) return false
  }
  return true
}

function resolveDialplan (dialplan: XmlCurlDeps['dialplan']): DialplanOptions | undefined {
  if (dialplan === false) return undefined
  const resolved = { ...DEFAULT_DIALPLAN_OPTIONS, ...dialplan }
  for (const key of ['context', 'extensionName', 'bridgeTemplate'] as const) {
    if (typeof resolved[key] !== 'string' || resolved[key].length === 0) {
      throw new InvalidArgumentError(`dialplan.${key}`, `must be a non-empty string, got ${quote(resolved[key])}`)
    }
  }
  return resolved
}

function directoryDocument (domain: string, user: string, entry: SubscriberEntry): string {
  let variables = ''
  if (entry.variables !== undefined) {
    for (const [name, value] of Object.entries(entry.variables)) {
      variables += `          <variable name="${escapeXml(name)}" value="${escapeXml(String(value))}"/>\n`
    }
  }
  return XML_DECL +
    '<document type="freeswitch/xml">\n' +
    '  <section name="directory">\n' +
    `    <domain name="${escapeXml(domain)}">\n` +
    `      <user id="${escapeXml(user)}">\n` +
    '        <params>\n' +
    `          <param name="a1-hash" value="${escapeXml(entry.ha1Md5.toLowerCase())}"/>\n` +
    '        </params>\n' +
    (variables === '' ? '' : `        <variables>\n${variables}        </variables>\n`) +
    '      </user>\n' +
    '    </domain>\n' +
    '  </section>\n' +
    '</document>\n'
}

function dialplanDocument (context: string, dp: DialplanOptions): string {
  return XML_DECL +
    '<document type="freeswitch/xml">\n' +
    '  <section name="dialplan" description="sipd">\n' +
    `    <context name="${escapeXml(context)}">\n` +
    `      <extension name="${escapeXml(dp.extensionName)}">\n` +
    '        <condition field="destination_number" expression="^(.+)$">\n' +
    `          <action application="bridge" data="${escapeXml(dp.bridgeTemplate)}"/>\n` +
    '        </condition>\n' +
    '      </extension>\n' +
    '    </context>\n' +
    '  </section>\n' +
    '</document>\n'
}

async function directory (fields: URLSearchParams, deps: XmlCurlDeps): Promise<XmlCurlResponse> {
  // sofia's sip_auth lookup sends key=id&user=<name>&domain=<domain>, the
  // domain also as tag_name=domain&key_name=name&key_value=<domain>. Lookups
  // without a user (purpose=gateways, purpose=network-list) are not ours.
  const user = fields.get('user') ?? ''
  const domain = fields.get('domain') ?? (fields.get('tag_name') === 'domain' ? fields.get('key_value') ?? '' : '')
  if (user.length === 0 || domain.length === 0) return notFound()
  let entry: SubscriberEntry | undefined
  try {
    entry = await deps.lookupSubscriber(user, domain, fields)
    if (entry !== undefined && !isHa1(entry.ha1Md5)) {
      throw new MediaBridgeError('MEDIA_ERR_BAD_HA1', `subscriber ${quote(user)}@${quote(domain)} has no valid MD5 HA1 (32 hex digits)`)
    }
  } catch (err) {
    deps.onError?.(err)
    // Not 200: mod_xml_curl logs the failure and tries its next source.
    return notFound(500)
  }
  if (entry === undefined) return notFound()
  return { status: 200, contentType: XML_CONTENT_TYPE, body: directoryDocument(domain, user, entry) }
}

/**
 * Answer one mod_xml_curl request. `formBody` is the POST body
 * (`application/x-www-form-urlencoded`) or already-parsed fields.
 *
 * - `section=directory` with a user and domain: the user with its `a1-hash`,
 *   or not-found for an unknown user.
 * - `section=dialplan`: the configured catch-all bridge for the configured
 *   context (the request's `Hunt-Context` / `Caller-Context`), else not-found.
 * - anything else: not-found.
 *
 * Never throws for request content; a failing lookup yields HTTP 500.
 */
export async function handleXmlCurl (formBody: string | URLSearchParams, deps: XmlCurlDeps): Promise<XmlCurlResponse> {
  const fields = typeof formBody === 'string' ? new URLSearchParams(formBody) : formBody
  switch (fields.get('section')) {
    case 'directory':
      return await directory(fields, deps)
    case 'dialplan': {
      const dp = resolveDialplan(deps.dialplan)
      if (dp === undefined) return notFound()
      const requested = fields.get('Hunt-Context') ?? fields.get('Caller-Context') ?? dp.context
      if (requested !== dp.context) return notFound()
      return { status: 200, contentType: XML_CONTENT_TYPE, body: dialplanDocument(dp.context, dp) }
    }
    default:
      return notFound()
  }
}

/** Options of {@link createXmlCurlHandler}. At least one of `secret` and `basicAuth` is required. */
export interface XmlCurlHandlerOptions extends XmlCurlDeps {
  /**
   * Shared secret, accepted as `?key=<secret>` in mod_xml_curl's `gateway-url`
   * or in the `X-Sipd-Key` header. @default undefined
   */
  secret?: string | undefined
  /**
   * HTTP basic credentials, as mod_xml_curl sends them with
   * `gateway-credentials` `user:password`. @default undefined
   */
  basicAuth?: { username: string, password: string } | undefined
  /** Largest request body accepted, in bytes (FreeSWITCH's are ~2 KiB). @default 65536 */
  maxBodyBytes?: number
}

/** Default of {@link XmlCurlHandlerOptions.maxBodyBytes}. */
export const DEFAULT_XML_CURL_MAX_BODY_BYTES = 65536

/** Header carrying the shared secret for clients that cannot put it in the URL. */
export const XML_CURL_SECRET_HEADER = 'x-sipd-key'

function digest (s: string): Buffer {
  return createHash('sha256').update(s).digest()
}

/** Constant-time comparison (of fixed-length digests, so lengths do not leak either). */
function safeEqual (a: string, b: Buffer): boolean {
  return timingSafeEqual(digest(a), b)
}

/**
 * A `node:http` request handler for mod_xml_curl: checks the shared secret or
 * basic auth, reads the form-encoded POST (GET with query fields also works),
 * and answers with {@link handleXmlCurl}. Mount it on the path configured as
 * `gateway-url`; it does not look at the path itself.
 */
export function createXmlCurlHandler (opts: XmlCurlHandlerOptions): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  if (typeof opts.lookupSubscriber !== 'function') throw new InvalidArgumentError('lookupSubscriber', 'must be a function')
  const { secret, basicAuth } = opts
  if (secret === undefined && basicAuth === undefined) {
    throw new InvalidArgumentError('secret', 'the mod_xml_curl endpoint needs a shared "secret" or "basicAuth": it serves password hashes')
  }
  if (secret !== undefined && (typeof secret !== 'string' || secret.length === 0)) {
    throw new InvalidArgumentError('secret', 'must be a non-empty string')
  }
  if (basicAuth !== undefined && (typeof basicAuth.username !== 'string' || basicAuth.username.length === 0 ||
    basicAuth.username.includes(':') || typeof basicAuth.password !== 'string')) {
    throw new InvalidArgumentError('basicAuth', 'needs a non-empty username without ":" and a password string')
  }
  const maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_XML_CURL_MAX_BODY_BYTES
  if (!(Number.isInteger(maxBodyBytes) && maxBodyBytes > 0)) {
    throw new InvalidArgumentError('maxBodyBytes', `must be a positive integer, got ${quote(maxBodyBytes)}`)
  }
  // Validate the dialplan now rather than on the first request.
  resolveDialplan(opts.dialplan)
  const secretDigest = secret === undefined ? undefined : digest(secret)
  const basicDigest = basicAuth === undefined
    ? undefined
    : digest(`Basic ${Buffer.from(`${basicAuth.username}:${basicAuth.password}`, 'utf8').toString('base64')}`)

  function authorized (req: IncomingMessage, query: URLSearchParams): boolean {
    if (secretDigest !== undefined) {
      const key = query.get('key') ?? req.headers[XML_CURL_SECRET_HEADER]
      if (typeof key === 'string' && safeEqual(key, secretDigest)) return true
    }
    if (basicDigest !== undefined) {
      const auth = req.headers.authorization
      if (typeof auth === 'string' && safeEqual(auth, basicDigest)) return true
    }
    return false
  }

  function send (res: ServerResponse, status: number, contentType: string, body: string, headers?: Record<string, string>): void {
    res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), ...headers })
    res.end(body)
  }

  /** The body as text, or undefined once it exceeds maxBodyBytes (the rest is discarded). */
  async function readBody (req: IncomingMessage): Promise<string | undefined> {
    return await new Promise((resolve, reject) => {
      const chunks: Buffer[] = []
      let size = 0
      const onData = (chunk: Buffer): void => {
        size += chunk.length
        if (size > maxBodyBytes) {
          req.off('data', onData)
          req.off('end', onEnd)
          // Keep draining so the 413 can be written before the connection closes.
          req.resume()
          resolve(undefined)
          return
        }
        chunks.push(chunk)
      }
      const onEnd = (): void => { resolve(Buffer.concat(chunks, size).toString('utf8')) }
      req.on('data', onData)
      req.on('end', onEnd)
      req.once('error', reject)
    })
  }

  return async function xmlCurlHandler (req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? '/', 'http://localhost')
      if (req.method !== 'POST' && req.method !== 'GET') {
        req.resume()
        send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { allow: 'GET, POST' })
        return
      }
      if (!authorized(req, url.searchParams)) {
        req.resume()
        send(res, 401, 'text/plain; charset=utf-8', 'unauthorized\n',
          basicDigest === undefined ? undefined : { 'www-authenticate': 'Basic realm="sipd xml_curl"' })
        return
      }
      let fields: URLSearchParams
      if (req.method === 'POST') {
        const body = await readBody(req)
        if (body === undefined) {
          send(res, 413, 'text/plain; charset=utf-8', `request body over ${maxBodyBytes} bytes\n`, { connection: 'close' })
          return
        }
        fields = new URLSearchParams(body)
      } else {
        fields = new URLSearchParams(url.searchParams)
        fields.delete('key')
      }
      const answer = await handleXmlCurl(fields, opts)
      send(res, answer.status, answer.contentType, answer.body)
    } catch (err) {
      opts.onError?.(err)
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', 'internal error\n')
      else res.destroy()
    }
  }
}
