/**
 * Property tests (fast-check, fixed seed so a failure reproduces; the
 * counterexample is printed in the failure message):
 *
 * - build → serialise → parse gives back the values that went in;
 * - random byte mutations, insertions, deletions and truncations of every
 *   torture fixture either parse (and then every accessor, validation,
 *   response building and forwarding either works or throws SipParseError)
 *   or throw SipParseError — never another exception. Runs are bounded by
 *   `numRuns`; the test ending at all is the "never a hang" check.
 */
import t from 'tap'
import fc from 'fast-check'
import { parseMessage, SipRequest, SipResponse } from '../src/message.js'
import { StreamParser } from '../src/stream.js'
import { SipParseError } from '../src/errors.js'
import { createRequest, createResponse, forwardRequest, stripTopVia } from '../src/build.js'
import { validateRequest, validateResponse } from '../src/validate.js'
import { FIXTURE_NAMES, fixture, readEverything } from './helpers/fixtures.js'

type Test = typeof t

const SEED = 20240611

/** Run a property; on failure the report (seed, path, counterexample) is the assertion message. */
function check<Ts extends [unknown, ...unknown[]]> (t: Test, name: string, prop: fc.IProperty<Ts>, numRuns: number): void {
  const out = fc.check(prop, { seed: SEED, numRuns })
  t.notOk(out.failed, out.failed ? `${name}\n${fc.defaultReportMessage(out) ?? ''}` : name)
}

// ---------------------------------------------------------------------------
// Generators

const TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~".split('')
const token = (max = 12): fc.Arbitrary<string> => fc.string({ unit: fc.constantFrom(...TOKEN_CHARS), minLength: 1, maxLength: max })
const label = fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789'.split('')), minLength: 1, maxLength: 10 })
const host = fc.oneof(
  fc.array(label, { minLength: 1, maxLength: 4 }).map(ls => ls.join('.') + '.example'),
  fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map(a => a.join('.')),
  fc.constantFrom('[2001:db8::1]', '[::1]', '[2001:db8::192.0.2.1]')
)
const userChars = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789-_.!~*\'()&=+$,;?/'.split(''))
/** RFC 3261 §25.1 paramchar without escapes and brackets. */
const paramText = fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!~*\'()/:&+$'.split('')), minLength: 1, maxLength: 8 })
const sipUri = fc.record({
  scheme: fc.constantFrom('sip', 'sips'),
  user: fc.option(fc.string({ unit: userChars, minLength: 1, maxLength: 12 }), { nil: undefined }),
  host,
  port: fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }),
  params: fc.array(fc.tuple(paramText, fc.option(paramText, { nil: undefined })), { maxLength: 3 })
}).map(u => `${u.scheme}:${u.user !== undefined ? u.user + '@' : ''}${u.host}${u.port !== undefined ? ':' + u.port : ''}${u.params.map(([n, v]) => ';' + n + (v !== undefined ? '=' + v : '')).join('')}`)

/** Display-name text: quotes, backslashes, spaces, UTF-8, controls other than CR/LF. */
const displayText = fc.string({
  unit: fc.oneof(
    fc.constantFrom('"', '\\', ' ', '\t', ',', ';', '<', '>', ':', '@', '\x00', '\x7f', 'é', '日', '😀'),
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 })
  ),
  maxLength: 16
}).filter(s => !s.includes('\r') && !s.includes('\n'))

function quoteString (s: string): string {
  let out = '"'
  for (const ch of s) out += ch === '"' || ch === '\\' ? '\\' + ch : ch
  return out + '"'
}

/** Header value text: printable, UTF-8, no CR/LF, no leading or trailing whitespace. */
const headerText = fc.string({ unit: fc.oneof(fc.constantFrom(' ', ',', ';', '"', 'ü', '中'), fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 })), maxLength: 30 })
  .map(s => s.trim())
  .filter(s => !s.includes('\r') && !s.includes('\n') && !s.includes('\t'))

const requestSpec = fc.record({
  method: token(16),
  uri: sipUri,
  viaHost: host,
  viaPort: fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }),
  transport: fc.constantFrom('UDP', 'TCP', 'TLS', 'SCTP', 'WS'),
  branch: token(20).map(s => 'z9hG4bK' + s),
  moreVias: fc.array(fc.tuple(host, token(10)), { maxLength: 3 }),
  fromName: fc.option(displayText, { nil: undefined }),
  fromUri: sipUri,
  fromTag: token(16),
  toName: fc.option(displayText, { nil: undefined }),
  toUri: sipUri,
  toTag: fc.option(token(16), { nil: undefined }),
  callId: fc.tuple(token(20), fc.option(token(10), { nil: undefined })).map(([a, b]) => b === undefined ? a : `${a}@${b}`),
  seq: fc.integer({ min: 0, max: 0x7fffffff }),
  maxForwards: fc.option(fc.integer({ min: 0, max: 255 }), { nil: undefined }),
  routes: fc.array(sipUri, { maxLength: 4 }),
  routesOnOneLine: fc.boolean(),
  custom: fc.array(fc.tuple(token(10).map(n => 'X-' + n), headerText), { maxLength: 4 }),
  body: fc.option(fc.uint8Array({ maxLength: 200 }), { nil: undefined })
})

type Spec = typeof requestSpec extends fc.Arbitrary<infer S> ? S : never

function nameAddr (name: string | undefined, uri: string): string {
  return (name !== undefined ? quoteString(name) + ' ' : '') + '<' + uri + '>'
}

function build (s: Spec): Buffer {
  const headers: Array<[string, string]> = []
  headers.push(['Via', `SIP/2.0/${s.transport} ${s.viaHost}${s.viaPort !== undefined ? ':' + s.viaPort : ''};branch=${s.branch};rport`])
  for (const [h, b] of s.moreVias) headers.push(['Via', `SIP/2.0/UDP ${h};branch=z9hG4bK${b}`])
  headers.push(['From', nameAddr(s.fromName, s.fromUri) + ';tag=' + s.fromTag])
  headers.push(['To', nameAddr(s.toName, s.toUri) + (s.toTag !== undefined ? ';tag=' + s.toTag : '')])
  headers.push(['Call-ID', s.callId])
  headers.push(['CSeq', `${s.seq} ${s.method}`])
  if (s.maxForwards !== undefined) headers.push(['Max-Forwards', String(s.maxForwards)])
  if (s.routes.length > 0) {
    if (s.routesOnOneLine) headers.push(['Route', s.routes.map(r => `<${r};lr>`).join(', ')])
    else for (const r of s.routes) headers.push(['Route', `<${r};lr>`])
  }
  for (const h of s.custom) headers.push(h)
  return createRequest({ method: s.method, uri: s.uri, headers, body: s.body === undefined ? undefined : Buffer.from(s.body), contentType: 'application/octet-stream' })
}

// ---------------------------------------------------------------------------

t.test('build → serialise → parse returns the same values', async t => {
  check(t, 'request round trip', fc.property(requestSpec, s => {
    const m = parseMessage(build(s))
    if (!(m instanceof SipRequest)) return false
    const ok = m.method === s.method && m.uri === s.uri &&
      m.topVia?.host === s.viaHost.toLowerCase() && m.topVia.port === s.viaPort && m.topVia.transport === s.transport &&
      m.topVia.branch === s.branch && m.topVia.rport === null &&
      m.via.length === 1 + s.moreVias.length && m.via.slice(1).every((v, i) => v.host === s.moreVias[i]![0] && v.branch === 'z9hG4bK' + s.moreVias[i]![1]) &&
      m.from.displayName === s.fromName && m.from.uri === s.fromUri && m.from.tag === s.fromTag &&
      m.to.displayName === s.toName && m.to.uri === s.toUri && m.to.tag === s.toTag &&
      m.callId === s.callId && m.cseq.seq === s.seq && m.cseq.method === s.method &&
      m.maxForwards === s.maxForwards &&
      m.route.length === s.routes.length && m.route.every((r, i) => r.uri === s.routes[i] + ';lr') &&
      m.headers('X-' + 'none-such').length === 0 &&
      m.body.equals(Buffer.from(s.body ?? [])) && m.contentLength === (s.body?.length ?? 0)
    if (!ok) return false
    // Custom headers, grouped by name (case-insensitive), in order.
    for (const [name] of s.custom) {
      const want = s.custom.filter(([n]) => n.toLowerCase() === name.toLowerCase()).map(([, v]) => v)
      if (JSON.stringify(m.headers(name)) !== JSON.stringify(want)) return false
    }
    // The parsed Request-URI is the one that went in.
    if (m.requestUri.raw !== s.uri) return false
    return validateRequest(m) === undefined || s.uri.includes('?')
  }), 500)

  check(t, 'response round trip (createResponse from the parsed request)', fc.property(requestSpec, fc.integer({ min: 100, max: 699 }), fc.option(headerText, { nil: undefined }), token(12), (s, status, reason, tag) => {
    const r = parseMessage(build(s))
    if (!(r instanceof SipRequest)) return false
    const m = parseMessage(createResponse(r, status, reason, { toTag: tag }))
    if (!(m instanceof SipResponse)) return false
    const wantTag = s.toTag ?? (status > 100 ? tag : undefined)
    return m.status === status && (reason === undefined || m.reason === reason) &&
      m.via.length === r.via.length && m.via.every((v, i) => v.raw === r.via[i]!.raw) &&
      m.from.raw === r.from.raw && m.to.tag === wantTag && m.to.displayName === s.toName && m.to.uri === s.toUri &&
      m.callId === s.callId && m.cseq.seq === s.seq && m.cseq.method === s.method &&
      validateResponse(m) === undefined
  }), 300)

  check(t, 'forward round trip', fc.property(requestSpec, token(20), sipUri, (s, branch, rr) => {
    const r = parseMessage(build(s))
    if (!(r instanceof SipRequest)) return false
    const out = forwardRequest(r, { via: `SIP/2.0/UDP proxy.example;branch=z9hG4bK${branch}`, maxForwards: 10, popRoute: true, recordRoute: [`<${rr};lr>`] })
    const m = parseMessage(out)
    if (!(m instanceof SipRequest)) return false
    return m.via.length === r.via.length + 1 && m.topVia?.branch === 'z9hG4bK' + branch &&
      m.via.slice(1).every((v, i) => v.raw === r.via[i]!.raw) &&
      m.route.length === Math.max(0, s.routes.length - 1) && m.route.every((x, i) => x.uri === s.routes[i + 1] + ';lr') &&
      m.recordRoute.length === 1 && m.recordRoute[0]!.uri === rr + ';lr' && m.maxForwards === 10 &&
      m.from.raw === r.from.raw && m.callId === r.callId && m.body.equals(r.body) &&
      stripTopVia(parseMessage(createResponse(m, 200))).equals(createResponse(r, 200))
  }), 300)
})

// ---------------------------------------------------------------------------

const INTERESTING = [0x0d, 0x0a, 0x20, 0x09, 0x3a, 0x3b, 0x2c, 0x22, 0x3c, 0x3e, 0x5c, 0x5b, 0x5d, 0x3d, 0x40, 0x25, 0x30, 0x39, 0x00, 0x7f, 0x80, 0xc3, 0xff]
const mutation = fc.record({
  op: fc.constantFrom('replace', 'insert', 'delete', 'duplicate'),
  at: fc.nat(),
  byte: fc.oneof(fc.constantFrom(...INTERESTING), fc.integer({ min: 0, max: 255 })),
  len: fc.integer({ min: 1, max: 40 })
})
const mutations = fc.record({
  ops: fc.array(mutation, { minLength: 1, maxLength: 8 }),
  truncate: fc.option(fc.nat(), { nil: undefined })
})

function mutate (src: Buffer, m: { ops: Array<{ op: string, at: number, byte: number, len: number }>, truncate: number | undefined }): Buffer {
  let b = Buffer.from(src)
  for (const { op, at, byte, len } of m.ops) {
    const i = b.length === 0 ? 0 : at % (b.length + (op === 'insert' ? 1 : 0))
    if (op === 'replace' && b.length > 0) b[i] = byte
    else if (op === 'insert') b = Buffer.concat([b.subarray(0, i), Buffer.from([byte]), b.subarray(i)])
    else if (op === 'delete') b = Buffer.concat([b.subarray(0, i), b.subarray(Math.min(b.length, i + len))])
    else if (op === 'duplicate') b = Buffer.concat([b.subarray(0, i), b.subarray(i, i + len), b.subarray(i)])
  }
  if (m.truncate !== undefined && b.length > 0) b = b.subarray(0, m.truncate % b.length)
  return b
}

/** Everything a server does with a received datagram; only SipParseError may escape. */
function exercise (bytes: Buffer): void {
  let m: SipRequest | SipResponse
  try {
    m = parseMessage(bytes)
  } catch (err) {
    if (!(err instanceof SipParseError)) throw err
    if (err.partial !== undefined) {
      readEverything(err.partial)
      attempt(() => createResponse(err.partial!, 400, 'Bad Request'))
    }
    return
  }
  readEverything(m)
  // topVia is the first element of via, whichever is read first.
  const fresh = parseMessage(bytes)
  let top: string | undefined
  try {
    top = fresh.topVia?.raw
  } catch (err) {
    if (!(err instanceof SipParseError)) throw err
  }
  let first: string | undefined
  try {
    first = m.via[0]?.raw
    if (top !== first) throw new Error(`topVia ${String(top)} is not via[0] ${String(first)}`)
  } catch (err) {
    if (!(err instanceof SipParseError)) throw err
  }
  if (m instanceof SipRequest) {
    const v = validateRequest(m)
    attempt(() => parseMessage(createResponse(m as SipRequest, v?.status ?? 200, undefined, { toTag: 'x', topViaParams: { received: '192.0.2.1', rport: 5060 } })))
    if (v === undefined) {
      // A request that validates forwards to one that validates, and a response to it validates.
      const f = parseMessage(forwardRequest(m, { via: 'SIP/2.0/UDP p.example;branch=z9hG4bKf', maxForwards: 9, popRoute: true, recordRoute: ['<sip:p.example;lr>'], topViaParams: { received: '192.0.2.1', rport: 5060 } }))
      if (!(f instanceof SipRequest)) throw new Error('forwarded a request, got a response')
      const fv = validateRequest(f)
      if (fv !== undefined) throw new Error(`forwarded request fails validation: ${fv.reason}`)
      const answer = parseMessage(createResponse(m, 200, 'OK', { toTag: 'x' }))
      if (!(answer instanceof SipResponse) || validateResponse(answer) !== undefined) throw new Error('response to a valid request does not validate')
    }
  } else {
    if (validateResponse(m) === undefined && m.via.length > 1) {
      const up = parseMessage(stripTopVia(m))
      if (!(up instanceof SipResponse) || validateResponse(up) !== undefined || up.via.length !== m.via.length - 1) throw new Error('stripTopVia broke a valid response')
    }
  }
  // The same bytes on a stream: callbacks or onError, never a throw.
  const p = new StreamParser({ onMessage: msg => { readEverything(msg) }, onError: () => {} })
  p.push(bytes)
  p.push(Buffer.from('\r\n\r\n'))
}

/** Run fn; SipParseError is an acceptable outcome, anything else propagates. */
function attempt (fn: () => unknown): void {
  try {
    fn()
  } catch (err) {
    if (!(err instanceof SipParseError)) throw err
  }
}

t.test('every fixture, unmutated, goes through everything', async t => {
  for (const name of FIXTURE_NAMES) t.doesNotThrow(() => exercise(fixture(name)), name)
})

t.test('mutated torture fixtures parse or throw SipParseError, nothing else', async t => {
  for (const name of FIXTURE_NAMES) {
    const src = fixture(name)
    check(t, `${name}: mutations`, fc.property(mutations, m => { exercise(mutate(src, m)) }), 150)
  }
})

t.test('every prefix of every fixture (truncation at each byte)', async t => {
  const failures: string[] = []
  for (const name of FIXTURE_NAMES) {
    const src = fixture(name)
    for (let i = 0; i <= src.length; i++) {
      try {
        exercise(src.subarray(0, i))
      } catch (err) {
        failures.push(`${name} cut at ${i}: ${String(err)}`)
        break
      }
    }
  }
  t.same(failures, [])
})

t.test('stream framing does not depend on where the chunks are cut, even for mutated input', async t => {
  const events = (chunks: Buffer[], maxMessageSize: number): string => {
    const ev: string[] = []
    const p = new StreamParser({
      onMessage: m => { ev.push('message ' + m.raw.toString('latin1')) },
      onKeepAlive: () => { ev.push('keep-alive') },
      onError: e => { ev.push(`error ${e.code} at ${e.offset}`) },
      maxMessageSize
    })
    for (const c of chunks) p.push(c)
    ev.push(`buffered ${p.bufferedBytes}`)
    return ev.join('\n')
  }
  const flip = fc.record({ at: fc.nat(), byte: fc.constantFrom(0x0d, 0x0a, 0x20, 0x3a, 0x30, 0x39) })
  for (const name of FIXTURE_NAMES) {
    const src = fixture(name)
    check(t, `${name}: split-invariant`, fc.property(fc.array(fc.nat(), { maxLength: 6 }), fc.array(flip, { maxLength: 4 }), fc.constantFrom(65535, 300), (cuts, flips, max) => {
      const b = Buffer.concat([src, Buffer.from('\r\n\r\n'), src])
      for (const { at, byte } of flips) b[at % b.length] = byte
      const points = [...new Set(cuts.map(c => c % (b.length + 1)))].sort((x, y) => x - y)
      const chunks: Buffer[] = []
      let prev = 0
      for (const p of points) { chunks.push(b.subarray(prev, p)); prev = p }
      chunks.push(b.subarray(prev))
      return events([b], max) === events(chunks, max)
    }), 60)
  }
})
