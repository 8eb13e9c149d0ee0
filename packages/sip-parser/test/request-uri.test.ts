import t from 'tap'
import fc from 'fast-check'
import { SipParseError } from '../src/errors.js'
import { parseMessage, SipRequest } from '../src/message.js'
import { parseUri } from '../src/uri.js'

/**
 * The Request-URI of a parsed request (read from the bytes when it is the
 * usual sip: URI) must be what parseUri gives for the same text, field for
 * field, or the same error at the same place in the message.
 */
function check (uri: string): string | undefined {
  const text = `INVITE ${uri} SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n`
  let want: ReturnType<typeof parseUri> | SipParseError
  try {
    want = parseUri(uri)
  } catch (err) {
    if (!(err instanceof SipParseError)) throw err
    want = err
  }
  let m: SipRequest
  try {
    const parsed = parseMessage(Buffer.from(text, 'latin1'))
    if (!(parsed instanceof SipRequest)) return 'not a request'
    m = parsed
  } catch {
    // The request line itself is refused (whitespace, control characters): no Request-URI to compare.
    return undefined
  }
  let got: ReturnType<typeof parseUri> | SipParseError
  try {
    got = m.requestUri
  } catch (err) {
    if (!(err instanceof SipParseError)) throw err
    got = err
  }
  if (want instanceof SipParseError || got instanceof SipParseError) {
    if (!(want instanceof SipParseError) || !(got instanceof SipParseError)) return `one throws: ${String(want)} / ${String(got)}`
    if (got.offset !== want.offset + 7 || got.code !== want.code || !got.message.startsWith(want.message)) return `errors differ: ${want.message}@${want.offset} / ${got.message}@${got.offset}`
    return undefined
  }
  const fields = ['scheme', 'user', 'password', 'host', 'hostType', 'port', 'raw'] as const
  for (const f of fields) if (got[f] !== want[f]) return `${f}: ${String(got[f])} ≠ ${String(want[f])}`
  if (JSON.stringify([...got.params]) !== JSON.stringify([...want.params])) return `params: ${JSON.stringify([...got.params])} ≠ ${JSON.stringify([...want.params])}`
  if (JSON.stringify([...got.headers]) !== JSON.stringify([...want.headers])) return 'headers differ'
  return undefined
}

t.test('Request-URI from the bytes equals parseUri on chosen URIs', async t => {
  const uris = [
    'sip:bob@biloxi.example.com', 'sip:bob@biloxi.example.com;transport=udp', 'SIP:Bob@BILOXI.Example.COM:5060;Transport=UDP;lr',
    'sips:alice@atlanta.example.com:0', 'sip:192.0.2.1', 'sip:192.0.2.1:65535', 'sip:192.0.2.256', 'sip:1.2.3', 'sip:10.0.0.1;lr',
    'sip:host.', 'sip:host..com', 'sip:-host.com', 'sip:host-.com', 'sip:host.1com', 'sip:h-1.x', 'sip:a;x=1@b', 'sip:a@b@c',
    'sip:u:pw@h', 'sip:%61@h', 'sip:u@[2001:db8::1]', 'sip:u@h:65536', 'sip:u@h:', 'sip:u@h:12a', 'sip:u@h;', 'sip:u@h;=1',
    'sip:u@h;a=', 'sip:u@h;a=b=c', 'sip:u@h;a;a=2;A=3', 'sip:u@h?x=y', 'sip:u@h;p?x=y', 'sip:@h', 'sip:', 'sips:', 'sip:u@',
    'sip:u@h;a%20b=c', 'sip:u@h;maddr=[::1]', 'sip:u;p@h', 'sip:+1-555@h;user=phone', 'tel:+15551234', 'mailto:a@b',
    'sipx:u@h', 'si:u@h', 'sip:u@h#f', 'sip:u@h:5060:5061', 'sip:u@ h', 'sip:u@h,x', 'sip:u#@h', 'sip:host.com.'
  ]
  for (const uri of uris) t.equal(check(uri), undefined, uri)
})

t.test('property: Request-URI from the bytes equals parseUri', async t => {
  const part = fc.string({ unit: fc.constantFrom(...'aZ09-.:;=@%?&[]_!~*\'()+$,/#'.split('')), maxLength: 12 })
  const uri = fc.tuple(fc.constantFrom('sip:', 'sips:', 'SIP:', 'sIpS:', 'tel:'), part, fc.constantFrom('', '@', 'u@'), part, part)
    .map(([s, a, at, b, c]) => s + a + at + b + c)
  t.doesNotThrow(() => fc.assert(fc.property(uri, u => check(u) === undefined), { numRuns: 3000, seed: 5060 }))
})
