// The sanity stage and proxy authentication on inputs that fuzzing sipd
// over the wire found: a lone CR inside From / To / Route (the parser now
// refuses it, RFC 3261 §25.1, with the request as `partial` so that the
// server answers 400; copiedFieldsClean stays as a second line), and
// Proxy-Authorization credentials that do not parse.
import t from 'tap'
import { parseMessage } from '@sipd/sip-parser'
import type { SipParseError, SipRequest, SipResponse } from '@sipd/sip-parser'
import { buildConfig } from '../src/config.js'
import { ProxyAuth } from '../src/proxy-auth.js'
import { checkRequest, copiedFieldsClean } from '../src/sanity.js'

function invite (edit: (lines: string[]) => string[] = l => l): SipRequest {
  const lines = [
    'INVITE sip:bob@example.test SIP/2.0',
    'Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKsanity',
    'Max-Forwards: 70',
    'From: <sip:alice@example.test>;tag=1',
    'To: <sip:bob@example.test>',
    'Call-ID: sanity@192.0.2.1',
    'CSeq: 1 INVITE',
    'Route: <sip:proxy.example.test;lr>'
  ]
  return parseMessage(edit(lines).join('\r\n') + '\r\nContent-Length: 0\r\n\r\n') as SipRequest
}

t.test('a control character in a field sipd copies into ACK / CANCEL is a 400', async t => {
  t.equal(checkRequest(invite(), false), undefined, 'the clean request passes')
  t.equal(copiedFieldsClean(invite()), true)
  for (const [name, edit] of [
    ['From', (l: string[]) => l.map(x => x.startsWith('From:') ? 'From: <sip:ali\rce@example.test>;tag=1' : x)],
    ['To', (l: string[]) => l.map(x => x.startsWith('To:') ? 'To: "B\rob" <sip:bob@example.test>' : x)],
    ['Route', (l: string[]) => l.map(x => x.startsWith('Route:') ? 'Route: <sip:proxy.example.test;lr;x=\r1>' : x)],
    ['Call-ID', (l: string[]) => l.map(x => x.startsWith('Call-ID:') ? 'Call-ID: san\rity@192.0.2.1' : x)]
  ] as const) {
    // The parser refuses it; the error's `partial` is what the server answers 400 with (server.ts #onParseError).
    let err: unknown
    try {
      invite(edit)
    } catch (e) {
      err = e
    }
    t.match(err, { name: 'SipParseError', code: 'SIP_ERR_BAD_HEADER', message: `bare CR in the value of header "${name}"` }, `${name}: refused`)
    t.equal((err as SipParseError).partial?.topVia?.branch, 'z9hG4bKsanity', `${name}: partial, enough to answer 400`)
  }
})

t.test('a response with a control character in To is not clean', async t => {
  const ok = parseMessage('SIP/2.0 486 Busy Here\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKr\r\nFrom: <sip:a@example.test>;tag=1\r\nTo: <sip:b@example.test>;tag=2\r\nCall-ID: r\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n') as SipResponse
  t.equal(copiedFieldsClean(ok), true)
  // Refused by the parser (a response has no `partial`: the server drops it, counted).
  t.throws(() => parseMessage(ok.raw.toString('latin1').replace('<sip:b@', '<sip:b\r@')), { name: 'SipParseError', code: 'SIP_ERR_BAD_HEADER' })
})

t.test('Proxy-Authorization that does not parse is a 400, not an exception', async t => {
  const config = buildConfig({ domains: ['example.test'], subscribers: { users: [{ user: 'alice', domain: 'example.test', password: 'pw' }] } })
  const auth = new ProxyAuth(config)
  const req = invite(l => [...l, 'Proxy-Authorization: Digest username="alice", realm="example.test", uri'])
  t.same(await auth.check(req, 'alice', 'example.test'), { ok: false, status: 400, reason: 'Bad Proxy-Authorization' })
  const none = await auth.check(invite(), 'alice', 'example.test')
  t.equal(none.ok ? 0 : none.status, 407, 'no credentials: the challenge')
})

function request (method: string, uri: string, edit: (lines: string[]) => string[] = l => l): SipRequest {
  const lines = [
    `${method} ${uri} SIP/2.0`,
    'Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKmethod',
    'Max-Forwards: 70',
    'From: <sip:alice@example.test>;tag=1',
    `To: <${uri}>`,
    'Call-ID: method@192.0.2.1',
    `CSeq: 1 ${method}`
  ]
  return parseMessage(edit(lines).join('\r\n') + '\r\nContent-Length: 0\r\n\r\n') as SipRequest
}

t.test('an unknown method addressed to sipd itself is 501 with Allow (RFC 3261 §8.2.1, §21.5.2)', async t => {
  for (const method of ['FOO', 'PUBLISH', 'invite']) {
    const v = checkRequest(request(method, 'sip:example.test'), true)
    t.equal(v?.status, 501, `${method}: 501`)
    t.match(v?.headers, [['Allow', /^INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER/]], `${method}: Allow lists what sipd does`)
  }
  t.equal(checkRequest(request('FOO', 'sip:bob@example.test'), false), undefined, 'for a user\'s URI the policy decides (a proxy forwards any method, §16)')
  t.equal(checkRequest(request('FOO', 'sip:example.test', l => l.map(x => x.startsWith('To:') ? x + ';tag=9' : x)), true), undefined, 'in a dialog: routed as such')
  t.equal(checkRequest(request('FOO', 'sip:example.test', l => [...l, 'Route: <sip:edge.example.test;lr>']), true), undefined, 'with a Route set: routed by it')
  for (const method of ['INFO', 'MESSAGE', 'SUBSCRIBE']) t.equal(checkRequest(request(method, 'sip:example.test'), true), undefined, `${method}: known, passes the sanity stage`)
  const mf0 = checkRequest(request('FOO', 'sip:example.test', l => l.map(x => x.startsWith('Max-Forwards:') ? 'Max-Forwards: 0' : x)), true)
  t.equal(mf0?.status, 501, 'the UAS answers 501 whatever Max-Forwards says')
})

t.test('Max-Forwards 0: 483 unless sipd is the final recipient (OPTIONS, a REGISTER the registrar takes)', async t => {
  const mf0 = (l: string[]): string[] => l.map(x => x.startsWith('Max-Forwards:') ? 'Max-Forwards: 0' : x)
  t.equal(checkRequest(request('REGISTER', 'sip:example.test', mf0), true), undefined, 'REGISTER to our registrar: processed (RFC 3261 §10.3; §16.3 step 3 binds forwarding)')
  t.equal(checkRequest(request('REGISTER', 'sip:elsewhere.test', mf0), false)?.status, 483, 'a REGISTER sipd would forward: 483')
  t.equal(checkRequest(request('OPTIONS', 'sip:example.test', mf0), true), undefined, 'OPTIONS to us: answered (§11)')
  t.equal(checkRequest(request('INVITE', 'sip:bob@example.test', mf0), false)?.status, 483, 'an INVITE to forward: 483')
  t.equal(checkRequest(request('INVITE', 'sip:example.test', mf0), true)?.status, 483, 'an INVITE to sipd itself goes on to the policy, which forwards: 483')
})
