/**
 * The From / To / Route / Via views read from the message bytes check the
 * whole element when the accessor is read but cut their strings (URI,
 * display name, tag, host, branch, received, parameter list) only when
 * those are read. Their values must equal the string grammar's
 * (parseNameAddr / parseVia) on the same text, whatever order they are
 * read in, and a malformed element must still throw at the accessor.
 */
import t from 'tap'
import fc from 'fast-check'
import { parseMessage, SipRequest } from '../src/message.js'
import { SipParseError } from '../src/errors.js'
import { parseNameAddr, parseVia } from '../src/grammar.js'
import type { NameAddr, Via } from '../src/types.js'

const SEED = 20261207

/** JSON replacer that keeps undefined apart from null. */
const keepUndefined = (_k: string, v: unknown): unknown => v === undefined ? '<undefined>' : v

function req (from: string, to: string, via: string, route?: string): SipRequest {
  const lines = ['INVITE sip:bob@example.com SIP/2.0', `Via: ${via}`, `From: ${from}`, `To: ${to}`, 'Call-ID: c1', 'CSeq: 1 INVITE', 'Max-Forwards: 70']
  if (route !== undefined) lines.push(`Route: ${route}`)
  const m = parseMessage(Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'utf8'))
  if (!(m instanceof SipRequest)) throw new Error('expected a request')
  return m
}

/** Every field of a name-addr, read in the given order (0: tag first, 1: params first, 2: raw first). */
function nameAddrFields (n: NameAddr & { tag?: string }, order: number): unknown[] {
  if (order === 1) {
    const params = [...n.params]
    return [n.tag, n.raw, n.uri, n.displayName, params]
  }
  if (order === 2) {
    const raw = n.raw
    return [n.tag, raw, n.uri, n.displayName, [...n.params]]
  }
  const tag = n.tag
  return [tag, n.raw, n.uri, n.displayName, [...n.params]]
}

function viaFields (v: Via, order: number): unknown[] {
  if (order === 1) {
    const params = [...v.params]
    return [v.protocol, v.transport, v.host, v.port, v.branch, v.received, v.rport, v.raw, params]
  }
  const branch = v.branch
  return [v.protocol, v.transport, v.host, v.port, branch, v.received, v.rport, v.raw, [...v.params]]
}

const NAME_ADDRS = [
  '"Alice" <sip:alice@atlanta.example.com>;tag=1928301774',
  'Alice <sip:alice@atlanta.example.com>;tag=1928301774',
  '<sip:bob@biloxi.example.com>',
  'sip:bob@biloxi.example.com;tag=a6c85cf;x-p',
  '"J\\"o" <sip:j@example.com>;tag=1',
  '"Jürgen" <sip:j@example.com>;tag=x1',
  'Jürgen Müller <sip:j@example.com>;TAG=Abc;tag=second',
  '<sip:j@example.com>;tag="quoted value"',
  '<sip:j@example.com>;tag',
  '<sip:j@example.com> ; tag = x1 ; Foo = "a;b,c" ; bar',
  '<sip:j@example.com;lr>;maddr=[2001:db8::1]'
]

const VIAS = [
  'SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;received=192.0.2.101;rport=5060',
  'SIP/2.0/UDP Host.Example.COM;branch=z9hG4bKa;rport;received=10.0.0.1;X-Flag',
  'SIP/2.0/TCP [2001:DB8::1]:5070;rport=01234;branch',
  'SIP / 2.0 / tls proxy.example.com ; branch = z9hG4bKc ; received',
  'SIP/2.0/UDP a;branch="z9hG4bK q";rport="5060";received="10.0.0.2"',
  'SIP/2.0/UDP a;branch=z9hG4bK1;branch=z9hG4bK2;rport=1;rport=2'
]

t.test('name-addr views read from the bytes equal the string grammar, in any read order', async t => {
  for (const text of NAME_ADDRS) {
    for (let order = 0; order < 3; order++) {
      const m = req(text, text, VIAS[0]!, text)
      const want = nameAddrFields(parseNameAddr(Buffer.from(text, 'utf8').toString('latin1'), 'From', true) as NameAddr & { tag?: string }, order)
      t.same(nameAddrFields(m.from, order), want, `From ${text} (order ${order})`)
      t.same(nameAddrFields(m.to, order), want, `To ${text} (order ${order})`)
      const route = m.route[0]!
      const wantRoute = nameAddrFields(parseNameAddr(Buffer.from(text, 'utf8').toString('latin1'), 'Route', true), order)
      t.same(nameAddrFields(route, order).slice(1), wantRoute.slice(1), `Route ${text} (order ${order})`)
    }
  }
})

t.test('Via views read from the bytes equal the string grammar, in any read order', async t => {
  for (const text of VIAS) {
    for (let order = 0; order < 2; order++) {
      const want = viaFields(parseVia(text, true), order)
      t.same(viaFields(req('<sip:a@b>', '<sip:a@b>', text).topVia!, order), want, `topVia ${text} (order ${order})`)
      t.same(viaFields(req('<sip:a@b>', '<sip:a@b>', text).via[0]!, order), want, `via[0] ${text} (order ${order})`)
    }
  }
})

t.test('a malformed element still throws SipParseError when the accessor is read', async t => {
  const bad = (fn: () => unknown, what: string): void => {
    try {
      fn()
      t.fail(`${what}: no error`)
    } catch (err) {
      t.ok(err instanceof SipParseError, `${what}: ${(err as Error).message}`)
    }
  }
  bad(() => req('<sip:a@b>;tag=', '<sip:a@b>', VIAS[0]!).from, 'From tag without value')
  bad(() => req('<sip:a@b>', '<sip:a@b>;;tag=1', VIAS[0]!).to, 'To empty parameter name')
  bad(() => req('<sip:a@b>', '<sip:a@b>', 'SIP/2.0/UDP a;rport=70000').topVia, 'rport too large')
  bad(() => req('<sip:a@b>', '<sip:a@b>', 'SIP/2.0/UDP a;rport=5x').topVia, 'rport not a number')
  bad(() => req('<sip:a@b>', '<sip:a@b>', 'SIP/2.0/UDP a;received=[::1').topVia, 'unterminated IPv6 received')
})

t.test('property: random parameter lists read the same from the bytes as from the string grammar', async t => {
  const name = fc.constantFrom('tag', 'TAG', 'branch', 'received', 'rport', 'lr', 'x-y', 'q', 'expires')
  const value = fc.oneof(
    fc.constant(undefined),
    fc.stringMatching(/^[a-zA-Z0-9.!%*_+`'~-]{1,8}$/),
    fc.stringMatching(/^[0-9]{1,6}$/),
    fc.stringMatching(/^"[a-z ;,]{0,6}"$/)
  )
  const params = fc.array(fc.tuple(name, value, fc.constantFrom('', ' ')), { maxLength: 6 })
  const render = (ps: Array<[string, string | undefined, string]>): string => ps.map(([n, v, sp]) => `${sp};${sp}${n}${v === undefined ? '' : `${sp}=${sp}${v}`}`).join('')
  const out = fc.check(fc.property(params, fc.nat(2), (ps, order) => {
    const p = render(ps)
    const na = `"A" <sip:a@example.com>${p}`
    const via = `SIP/2.0/UDP h.example.com:5060${p}`
    let wantNa: unknown[] | SipParseError
    let wantVia: unknown[] | SipParseError
    try { wantNa = nameAddrFields(parseNameAddr(na, 'From', true) as NameAddr & { tag?: string }, order) } catch (err) { wantNa = err as SipParseError }
    try { wantVia = viaFields(parseVia(via, true), order & 1) } catch (err) { wantVia = err as SipParseError }
    let gotNa: unknown[] | SipParseError
    let gotVia: unknown[] | SipParseError
    try { gotNa = nameAddrFields(req(na, '<sip:b@c>', 'SIP/2.0/UDP x').from, order) } catch (err) { gotNa = err as SipParseError }
    try { gotVia = viaFields(req('<sip:b@c>', '<sip:b@c>', via).topVia!, order & 1) } catch (err) { gotVia = err as SipParseError }
    const same = (a: unknown, b: unknown): boolean => (a instanceof SipParseError || b instanceof SipParseError)
      ? a instanceof SipParseError && b instanceof SipParseError
      : JSON.stringify(a, keepUndefined) === JSON.stringify(b, keepUndefined)
    return same(gotNa, wantNa) && same(gotVia, wantVia)
  }), { seed: SEED, numRuns: 400 })
  t.notOk(out.failed, out.failed ? fc.defaultReportMessage(out) ?? '' : 'ok')
})

t.test('every accessor read in any order reads the same, for lines before and after the ones a proxy reads', async t => {
  // Hot lines first, then lines past them (a second Via among them); and the
  // same headers with the hot lines last; and a message with no hot line.
  const texts = [
    ['INVITE sip:bob@example.com SIP/2.0', 'Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1', 'From: <sip:a@example.com>;tag=f1', 'To: <sip:bob@example.com>',
      'Call-ID: c1@example.com', 'CSeq: 7 INVITE', 'Max-Forwards: 70', 'Route: <sip:p.example.com;lr>', 'Contact: <sip:a@10.0.0.1>;expires=60',
      'User-Agent: Phone/1.0 (é)', 'Via: SIP/2.0/TCP b.example.com;branch=z9hG4bK2', 'Subject: last line', 'Content-Length: 0'],
    ['INVITE sip:bob@example.com SIP/2.0', 'User-Agent: Phone/1.0 (é)', 'Contact: <sip:a@10.0.0.1>;expires=60', 'Subject: last line',
      'Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1', 'Via: SIP/2.0/TCP b.example.com;branch=z9hG4bK2', 'Route: <sip:p.example.com;lr>',
      'From: <sip:a@example.com>;tag=f1', 'To: <sip:bob@example.com>', 'Max-Forwards: 70', 'CSeq: 7 INVITE', 'Call-ID: c1@example.com', 'Content-Length: 0'],
    ['SIP/2.0 200 OK', 'User-Agent: Phone/1.0 (é)', 'Subject: last line', 'Content-Length: 0']
  ]
  type Read = [string, (m: SipRequest) => unknown]
  const reads: Read[] = [
    ['callId', m => m.callId],
    ['branches', m => m.via.map(v => v.branch)],
    ['topVia', m => m.topVia?.host],
    ['fromTag', m => m.from.tag],
    ['contact', m => { const c = m.contact; return c === '*' ? c : c.map(x => [x.uri, x.expires]) }],
    ['userAgent', m => m.header('User-Agent')],
    ['subject', m => m.header('subject')],
    ['uri', m => m.uri],
    ['entries', m => m.headerEntries()]
  ]
  const expected = (i: number): Record<string, unknown> => {
    const resp = i === 2
    return {
      callId: resp ? 'throws' : 'c1@example.com',
      branches: resp ? [] : ['z9hG4bK1', 'z9hG4bK2'],
      topVia: resp ? undefined : 'a.example.com',
      fromTag: resp ? 'throws' : 'f1',
      contact: resp ? [] : [['sip:a@10.0.0.1', 60]],
      userAgent: 'Phone/1.0 (é)',
      subject: 'last line',
      uri: resp ? undefined : 'sip:bob@example.com',
      entries: texts[i]!.slice(1).map(l => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)])
    }
  }
  const rnd = fc.sample(fc.array(fc.nat(reads.length - 1), { minLength: 1, maxLength: 12 }), { numRuns: 200, seed: SEED })
  const orders = [reads.map((_, i) => i), reads.map((_, i) => reads.length - 1 - i), ...rnd]
  for (let i = 0; i < texts.length; i++) {
    const bytes = Buffer.from(texts[i]!.join('\r\n') + '\r\n\r\n', 'utf8')
    const want = expected(i)
    for (const order of orders) {
      const m = parseMessage(bytes) as SipRequest
      const got: unknown[] = []
      for (const r of order) {
        try {
          got.push(reads[r]![1](m))
        } catch (err) {
          if (!(err instanceof SipParseError)) throw err
          got.push('throws')
        }
      }
      t.same(got, order.map(r => want[reads[r]![0]]), `message ${i}, read in order ${order.map(r => reads[r]![0]).join(', ')}`)
    }
  }
})
