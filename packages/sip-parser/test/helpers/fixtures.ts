/**
 * The RFC 4475 / RFC 5118 torture messages, read as bytes (never through a
 * text or line-ending-normalising path: they hold NUL, DEL, bare LFs and
 * non-UTF-8 octets).
 */
import { readdirSync, readFileSync } from 'node:fs'
import { SipParseError } from '../../src/errors.js'
import type { SipMessage } from '../../src/message.js'

const DIR = new URL('../fixtures/torture/', import.meta.url)

/** Every fixture name (file name without `.dat`), sorted. */
export const FIXTURE_NAMES: readonly string[] = readdirSync(DIR)
  .filter(f => f.endsWith('.dat'))
  .map(f => f.slice(0, -4))
  .sort()

/** The exact bytes of a fixture. */
export function fixture (name: string): Buffer {
  return readFileSync(new URL(`${name}.dat`, DIR))
}

/** The bytes after the first empty line (CRLF CRLF), or an empty Buffer. */
export function bytesAfterHeaders (buf: Buffer): Buffer {
  const i = buf.indexOf('\r\n\r\n')
  return i < 0 ? Buffer.alloc(0) : buf.subarray(i + 4)
}

/** Replace the Content-Length value of a message with the real body length. */
export function withCorrectContentLength (buf: Buffer): Buffer {
  const text = buf.toString('latin1')
  const i = text.indexOf('\r\n\r\n')
  const body = buf.length - i - 4
  const head = text.slice(0, i).split('\r\n').map(l => /^(content-length|l)\s*:/i.test(l) ? `Content-Length: ${body}` : l).join('\r\n')
  return Buffer.concat([Buffer.from(head + '\r\n\r\n', 'latin1'), buf.subarray(i + 4)])
}

/**
 * Read every accessor of a message (typed views, generic headers, body,
 * the parsed Request-URI of a request). Each may throw only SipParseError;
 * returns the errors met, by accessor name.
 */
export function readEverything (m: SipMessage): Map<string, SipParseError> {
  const errors = new Map<string, SipParseError>()
  const read = (name: string, fn: () => unknown): void => {
    try {
      fn()
    } catch (err) {
      if (!(err instanceof SipParseError)) throw err
      errors.set(name, err)
    }
  }
  const msg = m as SipMessage & { requestUri?: unknown, uri?: string, method?: string, reason?: string, status?: number }
  read('via', () => m.via)
  read('topVia', () => m.topVia)
  read('cseq', () => m.cseq)
  read('callId', () => m.callId)
  read('from', () => m.from)
  read('to', () => m.to)
  read('contact', () => m.contact)
  read('maxForwards', () => m.maxForwards)
  read('expires', () => m.expires)
  read('contentLength', () => m.contentLength)
  read('route', () => m.route)
  read('recordRoute', () => m.recordRoute)
  read('authorization', () => m.authorization)
  read('proxyAuthorization', () => m.proxyAuthorization)
  read('credentials', () => [m.credentials(false), m.credentials(true)])
  read('require', () => m.require)
  read('proxyRequire', () => m.proxyRequire)
  read('supported', () => m.supported)
  read('headerEntries', () => m.headerEntries())
  read('headers', () => { for (const [name] of m.headerEntries()) { m.header(name); m.headers(name); m.hasHeader(name) } })
  read('body', () => m.body.length + m.raw.length)
  read('toString', () => m.toString())
  if (m.isRequest) {
    read('uri', () => msg.uri)
    read('method', () => msg.method)
    read('requestUri', () => msg.requestUri)
  } else {
    read('reason', () => msg.reason)
  }
  return errors
}
