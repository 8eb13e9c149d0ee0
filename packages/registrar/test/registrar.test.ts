// The Registrar element against real parsed REGISTERs, the memory location
// store and config subscribers; the store-down case uses a RedisLocationStore
// pointed at a closed port.
import t from 'tap'
import { createHash } from 'node:crypto'
import net from 'node:net'
import { createRequest, parseMessage, type SipRequest } from '@sipd/sip-parser'
import { DigestAuthenticator } from '../src/digest.js'
import { MemoryLocationStore } from '../src/location-memory.js'
import { RedisLocationStore } from '../src/location-redis.js'
import { Registrar, type RegisterOutcome, type RegistrarOptions, type RegisterResponse } from '../src/registrar.js'
import { ConfigSubscriberStore } from '../src/subscriber-config.js'

const DOMAIN = 'example.test'
const T0 = 1_750_000_000_000
const SOURCE = { transport: 'udp', address: '127.0.0.9', port: 5099, flowId: 'udp/0/127.0.0.9/5099' }

interface Rig {
  registrar: Registrar
  store: MemoryLocationStore
  outcomes: RegisterOutcome[]
  authFailures: string[]
  clock: { now: number }
}

function rig (t: Tap.Test, opts: Partial<RegistrarOptions> = {}, algorithms: Array<'MD5' | 'SHA-256'> = ['MD5']): Rig {
  const clock = { now: T0 }
  const store = new MemoryLocationStore({ sweepIntervalMs: 0 })
  t.teardown(async () => { await store.close() })
  const outcomes: RegisterOutcome[] = []
  const authFailures: string[] = []
  const registrar = new Registrar({
    domains: [DOMAIN],
    locations: store,
    subscribers: new ConfigSubscriberStore([
      { user: 'alice', domain: DOMAIN, password: 'wonderland' },
      { user: 'bob', domain: DOMAIN, password: 'builder' }
    ]),
    authenticator: new DigestAuthenticator({ secret: 'registrar-test-secret-0123456789', algorithms, now: () => clock.now }),
    minExpires: 60,
    maxExpires: 3600,
    defaultExpires: 1800,
    maxContacts: 3,
    nodeId: 'node-a',
    onOutcome: o => { outcomes.push(o) },
    onAuthFailure: r => { authFailures.push(r) },
    ...opts
  })
  return { registrar, store, outcomes, authFailures, clock }
}

let cseq = 0
interface Msg { user?: string, toDomain?: string, contacts?: string[], expires?: number, callId?: string, cseq?: number, extra?: Array<[string, string]>, auth?: string }

function register (m: Msg): SipRequest {
  const user = m.user ?? 'alice'
  const domain = m.toDomain ?? DOMAIN
  const headers: Array<[string, string]> = [
    ['Via', `SIP/2.0/UDP 127.0.0.9:5099;branch=z9hG4bK-${++cseq}`],
    ['Max-Forwards', '70'],
    ['From', `<sip:${user}@${domain}>;tag=f${cseq}`],
    ['To', `<sip:${user}@${domain}>`],
    ['Call-ID', m.callId ?? 'call-1@127.0.0.9'],
    ['CSeq', `${m.cseq ?? cseq} REGISTER`]
  ]
  for (const c of m.contacts ?? ['<sip:alice@127.0.0.9:5099>']) headers.push(['Contact', c])
  if (m.expires !== undefined) headers.push(['Expires', String(m.expires)])
  if (m.auth !== undefined) headers.push(['Authorization', m.auth])
  headers.push(...(m.extra ?? []))
  return parseMessage(createRequest({ method: 'REGISTER', uri: `sip:${domain}`, headers })) as SipRequest
}

function challengeParam (value: string, name: string): string | undefined {
  for (const part of value.slice('Digest '.length).split(', ')) {
    const eq = part.indexOf('=')
    if (part.slice(0, eq) === name) {
      const v = part.slice(eq + 1)
      return v.startsWith('"') ? v.slice(1, -1) : v
    }
  }
  return undefined
}

/** The client side of RFC 7616 §3.4.1, computed independently of the code under test. */
function authorization (challenge: string, user: string, password: string, nc = 1, uri = `sip:${DOMAIN}`): string {
  const algorithm = challengeParam(challenge, 'algorithm') ?? 'MD5'
  const h = (s: string): string => createHash(algorithm === 'SHA-256' ? 'sha256' : 'md5').update(s).digest('hex')
  const realm = challengeParam(challenge, 'realm')!
  const nonce = challengeParam(challenge, 'nonce')!
  const opaque = challengeParam(challenge, 'opaque')!
  const ncs = nc.toString(16).padStart(8, '0')
  const cnonce = 'c0ffee'
  const response = h(`${h(`${user}:${realm}:${password}`)}:${nonce}:${ncs}:${cnonce}:auth:${h(`REGISTER:${uri}`)}`)
  return `Digest username="${user}", realm="${realm}", nonce="${nonce}", uri="${uri}", response="${response}", algorithm=${algorithm}, cnonce="${cnonce}", nc=${ncs}, qop=auth, opaque="${opaque}"`
}

function header (r: RegisterResponse, name: string): string[] {
  return r.headers.filter(([n]) => n.toLowerCase() === name.toLowerCase()).map(([, v]) => v)
}

/** REGISTER → 401 → REGISTER with credentials; returns the second answer. */
async function authed (r: Rig, m: Msg, password = 'wonderland'): Promise<RegisterResponse> {
  const first = await r.registrar.handleRegister(register(m), SOURCE, r.clock.now)
  if (first.status !== 401) return first
  const ch = header(first, 'WWW-Authenticate')[0]!
  return await r.registrar.handleRegister(register({ ...m, auth: authorization(ch, m.user ?? 'alice', password) }), SOURCE, r.clock.now)
}

t.test('first REGISTER is challenged, once per configured algorithm', async t => {
  const r = rig(t, {}, ['SHA-256', 'MD5'])
  const res = await r.registrar.handleRegister(register({}), SOURCE, r.clock.now)
  t.equal(res.status, 401)
  const ch = header(res, 'WWW-Authenticate')
  t.equal(ch.length, 2, 'one challenge per algorithm')
  t.match(ch[0], /algorithm=SHA-256/)
  t.match(ch[1], /algorithm=MD5/)
  t.equal(challengeParam(ch[0]!, 'realm'), DOMAIN)
  t.equal(challengeParam(ch[0]!, 'qop'), 'auth')
  t.same(await r.store.lookup(`sip:alice@${DOMAIN}`, r.clock.now), [], 'nothing stored before authentication')
  t.same(r.outcomes, ['challenged'])
})

t.test('[SHA-256, MD5]: baresip 1.0 is challenged with MD5 alone and registers with it', async t => {
  const r = rig(t, {}, ['SHA-256', 'MD5'])
  const ua: [string, string] = ['User-Agent', 'baresip v1.0.0 (x86_64/linux)']
  const res = await r.registrar.handleRegister(register({ extra: [ua] }), SOURCE, r.clock.now)
  const ch = header(res, 'WWW-Authenticate')
  t.equal(ch.length, 1)
  t.equal(challengeParam(ch[0]!, 'algorithm'), 'MD5')
  const ok = await r.registrar.handleRegister(register({ extra: [ua], auth: authorization(ch[0]!, 'alice', 'wonderland') }), SOURCE, r.clock.now)
  t.equal(ok.status, 200)
  const wrong = await r.registrar.handleRegister(register({ extra: [ua], auth: authorization(ch[0]!, 'alice', 'nope') }), SOURCE, r.clock.now)
  t.same(header(wrong, 'WWW-Authenticate').map(v => challengeParam(v, 'algorithm')), ['MD5'], 'a new challenge after a wrong password is MD5 alone too')
})

t.test('authenticated REGISTER stores the binding with flow and node, and the 200 lists it', async t => {
  for (const alg of ['MD5', 'SHA-256'] as const) {
    const r = rig(t, {}, [alg])
    const res = await authed(r, { contacts: ['<sip:alice@127.0.0.9:5099;transport=udp>;q=0.7'], expires: 600, extra: [['User-Agent', 'test-phone/1']] })
    t.equal(res.status, 200, alg)
    t.same(header(res, 'Contact'), ['<sip:alice@127.0.0.9:5099;transport=udp>;expires=600;q=0.7'])
    t.equal(header(res, 'Date').length, 1, 'Date header')
    t.equal(header(res, 'Date')[0], new Date(T0).toUTCString())
    const [b] = await r.store.lookup(`sip:alice@${DOMAIN}`, r.clock.now)
    t.equal(b?.contact, 'sip:alice@127.0.0.9:5099;transport=udp')
    t.equal(b?.q, 0.7)
    t.equal(b?.expiresAt, T0 + 600_000)
    t.same(b?.received, { transport: 'udp', address: '127.0.0.9', port: 5099 })
    t.equal(b?.flowToken, SOURCE.flowId)
    t.equal(b?.node, 'node-a')
    t.equal(b?.userAgent, 'test-phone/1')
    t.same(r.outcomes, ['challenged', 'ok'])
  }
})

t.test('the AOR is canonical: To host case does not matter, user case does', async t => {
  const r = rig(t)
  const res = await authed(r, { toDomain: 'EXAMPLE.test', expires: 120 })
  t.equal(res.status, 200)
  t.equal((await r.store.lookup(`sip:alice@${DOMAIN}`, r.clock.now)).length, 1)
})

t.test('wrong password: 401 again; unknown user and foreign AOR: 403 with the same wording', async t => {
  const r = rig(t)
  const wrong = await authed(r, {}, 'not-it')
  t.equal(wrong.status, 401)
  t.equal(header(wrong, 'WWW-Authenticate').length, 1, 'a fresh challenge')
  const unknown = await authed(r, { user: 'mallory' }, 'whatever')
  t.equal(unknown.status, 403)
  // alice's credentials used for bob's AOR.
  const first = await r.registrar.handleRegister(register({ user: 'bob' }), SOURCE, r.clock.now)
  const foreign = await r.registrar.handleRegister(register({ user: 'bob', auth: authorization(header(first, 'WWW-Authenticate')[0]!, 'alice', 'wonderland') }), SOURCE, r.clock.now)
  t.equal(foreign.status, 403)
  t.same([unknown.reason, unknown.headers], [foreign.reason, foreign.headers], 'unknown user and foreign AOR answered alike')
  t.same(r.authFailures, ['wrong-password', 'unknown-user', 'unknown-user'])
  t.same(await r.store.lookup(`sip:bob@${DOMAIN}`, r.clock.now), [])
})

t.test('expired nonce: 401 with stale=true', async t => {
  const r = rig(t)
  const first = await r.registrar.handleRegister(register({}), SOURCE, r.clock.now)
  const auth = authorization(header(first, 'WWW-Authenticate')[0]!, 'alice', 'wonderland')
  r.clock.now += 301_000
  const res = await r.registrar.handleRegister(register({ auth }), SOURCE, r.clock.now)
  t.equal(res.status, 401)
  t.match(header(res, 'WWW-Authenticate')[0], /stale=true/)
  t.same(r.authFailures, ['stale'])
})

t.test('a replayed nonce count is refused with a fresh challenge; an algorithm not offered is a 400', async t => {
  const r = rig(t)
  const first = await r.registrar.handleRegister(register({}), SOURCE, r.clock.now)
  const auth = authorization(header(first, 'WWW-Authenticate')[0]!, 'alice', 'wonderland')
  t.equal((await r.registrar.handleRegister(register({ expires: 600, auth }), SOURCE, r.clock.now)).status, 200)
  const replay = await r.registrar.handleRegister(register({ expires: 600, auth }), SOURCE, r.clock.now)
  t.equal(replay.status, 401, 'same nonce and nc again')
  t.equal(header(replay, 'WWW-Authenticate').length, 1)
  const sha = auth.replace('algorithm=MD5', 'algorithm=SHA-256')
  t.equal((await r.registrar.handleRegister(register({ expires: 600, auth: sha }), SOURCE, r.clock.now)).status, 400, 'SHA-256 was not offered')
  t.same(r.authFailures, ['replay', 'bad-request'])
})

t.test('store latency is reported per update', async t => {
  const seen: number[] = []
  const r = rig(t, { onStoreLatency: (op, s) => { if (op === 'update') seen.push(s) } })
  await authed(r, { expires: 600 })
  t.equal(seen.length, 1, 'one update, one sample')
  t.ok(seen[0]! >= 0, 'seconds, not negative')
})

t.test('a REGISTER for another domain gets 403 before any challenge', async t => {
  const r = rig(t)
  const res = await r.registrar.handleRegister(register({ toDomain: 'elsewhere.test' }), SOURCE, r.clock.now)
  t.equal(res.status, 403)
  t.equal(res.reason, 'Domain Not Served')
  t.same(header(res, 'WWW-Authenticate'), [])
  // RFC 4475 §3.3.9 (unksm2): an unknown scheme in To, for a domain not served.
  const unksm2 = parseMessage('REGISTER sip:example.com SIP/2.0\r\nTo: isbn:2983792873\r\nFrom: <http://www.example.com>;tag=3234233\r\n' +
    'Call-ID: unksm2@h\r\nCSeq: 234902 REGISTER\r\nMax-Forwards: 70\r\nVia: SIP/2.0/UDP 192.0.2.21:5060;branch=z9hG4bKkdjuw\r\nContact: <name:John_Smith>\r\nl: 0\r\n\r\n') as SipRequest
  t.equal((await r.registrar.handleRegister(unksm2, SOURCE, r.clock.now)).status, 403, 'Request-URI domain checked first (§10.3 step 1)')
  const badTo = parseMessage(createRequest({ method: 'REGISTER', uri: `sip:${DOMAIN}`, headers: [['Via', 'SIP/2.0/UDP 127.0.0.9;branch=z9hG4bK-isbn'], ['From', '<sip:alice@example.test>;tag=1'], ['To', '<isbn:2983792873>'], ['Call-ID', 'isbn@h'], ['CSeq', '1 REGISTER'], ['Max-Forwards', '70']] })) as SipRequest
  t.equal((await r.registrar.handleRegister(badTo, SOURCE, r.clock.now)).status, 400, 'a served domain with a non-SIP To is a 400')
})

t.test('expiry: contact param over Expires header over default; 423 below the minimum; clamp to the maximum', async t => {
  const r = rig(t)
  let res = await authed(r, { contacts: ['<sip:alice@127.0.0.9:1>;expires=300', '<sip:alice@127.0.0.9:2>'], expires: 900 })
  t.equal(res.status, 200)
  const byUri = new Map((await r.store.lookup(`sip:alice@${DOMAIN}`, r.clock.now)).map(b => [b.contact, b.expiresAt - T0]))
  t.equal(byUri.get('sip:alice@127.0.0.9:1'), 300_000, 'contact parameter wins')
  t.equal(byUri.get('sip:alice@127.0.0.9:2'), 900_000, 'Expires header next')

  res = await authed(r, { contacts: ['<sip:alice@127.0.0.9:3>'] })
  t.equal(res.status, 200)
  t.match(header(res, 'Contact').find(c => c.includes(':3>')), /expires=1800$/, 'default when neither says')

  res = await authed(r, { contacts: ['<sip:bob@127.0.0.9:4>'], user: 'bob', expires: 30 }, 'builder')
  t.equal(res.status, 423)
  t.same(header(res, 'Min-Expires'), ['60'])
  t.same(await r.store.lookup(`sip:bob@${DOMAIN}`, r.clock.now), [], 'nothing stored on 423')

  res = await authed(r, { contacts: ['<sip:bob@127.0.0.9:4>'], user: 'bob', expires: 86_400 }, 'builder')
  t.equal(res.status, 200)
  t.same(header(res, 'Contact'), ['<sip:bob@127.0.0.9:4>;expires=3600'], 'clamped to the maximum')
})

t.test('expiry: a malformed expires (parameter or header) binds for 3600 s, an overlarge one is clamped (RFC 3261 §20.10, §20.19)', async t => {
  // Kamailio binds such phones too; a 400 left them unregistered.
  const r = rig(t, { maxExpires: 7200 })
  let res = await authed(r, { contacts: ['<sip:alice@127.0.0.9:1>;expires=soon', '<sip:alice@127.0.0.9:2>;expires=99999999999'] })
  t.equal(res.status, 200)
  let byUri = new Map((await r.store.lookup(`sip:alice@${DOMAIN}`, r.clock.now)).map(b => [b.contact, b.expiresAt - T0]))
  t.equal(byUri.get('sip:alice@127.0.0.9:1'), 3_600_000, 'expires=soon is 3600')
  t.equal(byUri.get('sip:alice@127.0.0.9:2'), 7_200_000, 'beyond 2**32-1 is clamped to max_expires')
  res = await authed(r, { contacts: ['<sip:bob@127.0.0.9:3>'], user: 'bob', extra: [['Expires', 'Thu, 01 Dec 2026 16:00:00 GMT']] }, 'builder')
  t.equal(res.status, 200, 'an RFC 2543 date in Expires')
  byUri = new Map((await r.store.lookup(`sip:bob@${DOMAIN}`, r.clock.now)).map(b => [b.contact, b.expiresAt - T0]))
  t.equal(byUri.get('sip:bob@127.0.0.9:3'), 3_600_000, 'reads as 3600')
})

t.test('bindings expire: the 200 shows the time left and an expired one is gone', async t => {
  const r = rig(t)
  let res = await authed(r, { contacts: ['<sip:alice@127.0.0.9:1>'], expires: 60 })
  t.equal(res.status, 200)
  r.clock.now += 20_000
  res = await authed(r, { contacts: ['<sip:alice@127.0.0.9:2>'], expires: 600 })
  t.same(header(res, 'Contact').sort(), ['<sip:alice@127.0.0.9:1>;expires=40', '<sip:alice@127.0.0.9:2>;expires=600'])
  r.clock.now += 41_000
  t.same((await r.store.lookup(`sip:alice@${DOMAIN}`, r.clock.now)).map(b => b.contact), ['sip:alice@127.0.0.9:2'])
})

t.test('Contact: * with Expires: 0 removes every binding; other forms are 400', async t => {
  const r = rig(t)
  await authed(r, { contacts: ['<sip:alice@127.0.0.9:1>', '<sip:alice@127.0.0.9:2>'], expires: 600, callId: 'c-a' })
  t.equal((await r.store.lookup(`sip:alice@${DOMAIN}`, r.clock.now)).length, 2)
  let res = await authed(r, { contacts: ['*'], expires: 60, callId: 'c-b' })
  t.equal(res.status, 400, '* with a non-zero Expires')
  res = await authed(r, { contacts: ['*'], callId: 'c-b' })
  t.equal(res.status, 400, '* without Expires')
  res = await authed(r, { contacts: ['*', '<sip:alice@127.0.0.9:3>'], expires: 0, callId: 'c-b' })
  t.equal(res.status, 400, '* with another contact')
  t.equal((await r.store.lookup(`sip:alice@${DOMAIN}`, r.clock.now)).length, 2, 'the 400s changed nothing')
  res = await authed(r, { contacts: ['*'], expires: 0, callId: 'c-b' })
  t.equal(res.status, 200)
  t.same(header(res, 'Contact'), [], 'no binding left in the 200')
  t.same(await r.store.lookup(`sip:alice@${DOMAIN}`, r.clock.now), [])
})

t.test('Expires: 0 on one contact removes only that binding', async t => {
  const r = rig(t)
  await authed(r, { contacts: ['<sip:alice@127.0.0.9:1>', '<sip:alice@127.0.0.9:2>'], expires: 600 })
  const res = await authed(r, { contacts: ['<sip:alice@127.0.0.9:1>;expires=0'] })
  t.equal(res.status, 200)
  t.same(header(res, 'Contact'), ['<sip:alice@127.0.0.9:2>;expires=600'])
})

t.test('a REGISTER with no Contact is a query', async t => {
  const r = rig(t)
  await authed(r, { contacts: ['<sip:alice@127.0.0.9:1>'], expires: 600 })
  const res = await authed(r, { contacts: [] })
  t.equal(res.status, 200)
  t.same(header(res, 'Contact'), ['<sip:alice@127.0.0.9:1>;expires=600'])
})

t.test('same Call-ID with a CSeq not above the stored one is refused and changes nothing', async t => {
  const r = rig(t)
  let res = await authed(r, { contacts: ['<sip:alice@127.0.0.9:1>'], expires: 600, callId: 'ordered', cseq: 10 })
  t.equal(res.status, 200)
  res = await authed(r, { contacts: ['<sip:alice@127.0.0.9:1>'], expires: 120, callId: 'ordered', cseq: 9 })
  t.equal(res.status, 500)
  t.equal(res.reason, 'Request Out Of Order')
  const [b] = await r.store.lookup(`sip:alice@${DOMAIN}`, r.clock.now)
  t.equal(b?.expiresAt, T0 + 600_000, 'the older request did not overwrite')
})

t.test('max contacts: 403 Too Many Contacts and nothing stored', async t => {
  const r = rig(t)
  let res = await authed(r, { contacts: ['<sip:alice@h:1>', '<sip:alice@h:2>', '<sip:alice@h:3>'], expires: 600 })
  t.equal(res.status, 200)
  res = await authed(r, { contacts: ['<sip:alice@h:4>'], expires: 600 })
  t.equal(res.status, 403)
  t.equal(res.reason, 'Too Many Contacts')
  t.equal((await r.store.lookup(`sip:alice@${DOMAIN}`, r.clock.now)).length, 3)
  res = await authed(r, { contacts: ['<sip:alice@h:3>'], expires: 900 })
  t.equal(res.status, 200, 'a refresh at the limit still passes')
})

t.test('Path is stored always and echoed only with Supported: path (RFC 3327)', async t => {
  const r = rig(t)
  const path = [['Path', '<sip:edge1.example.test;lr>'], ['Path', '<sip:edge2.example.test;lr>']] as Array<[string, string]>
  let res = await authed(r, { contacts: ['<sip:alice@127.0.0.9:1>'], expires: 600, extra: [...path, ['Supported', 'path']] })
  t.equal(res.status, 200)
  t.same(header(res, 'Path'), ['<sip:edge1.example.test;lr>', '<sip:edge2.example.test;lr>'])
  t.same((await r.store.lookup(`sip:alice@${DOMAIN}`, r.clock.now))[0]?.path, ['<sip:edge1.example.test;lr>', '<sip:edge2.example.test;lr>'])
  res = await authed(r, { contacts: ['<sip:alice@127.0.0.9:1>'], expires: 600, extra: path })
  t.equal(res.status, 200)
  t.same(header(res, 'Path'), [], 'not echoed without Supported: path')
})

t.test('the node\'s flow URI is stored with the binding and never echoed as a Path', async t => {
  const r = rig(t)
  const flowUri = 'sip:dGNw.abc@127.0.0.140:5060;transport=tcp;lr'
  const source = { ...SOURCE, flowUri }
  const first = await r.registrar.handleRegister(register({ contacts: ['<sip:alice@127.0.0.9:1>'], expires: 600 }), source, r.clock.now)
  const auth = authorization(header(first, 'WWW-Authenticate')[0]!, 'alice', 'wonderland')
  const res = await r.registrar.handleRegister(register({ contacts: ['<sip:alice@127.0.0.9:1>'], expires: 600, auth, extra: [['Supported', 'path']] }), source, r.clock.now)
  t.equal(res.status, 200)
  t.same(header(res, 'Path'), [], 'our own flow URI is not a Path the phone sent')
  const [b] = await r.store.lookup(`sip:alice@${DOMAIN}`, r.clock.now)
  t.equal(b?.flowUri, flowUri)
  t.equal(b?.node, 'node-a')
  t.same(b?.path, [])
})

t.test('RFC 5626: +sip.instance and reg-id keep flows apart and replace on the same flow', async t => {
  const r = rig(t)
  const inst = '"<urn:uuid:00000000-0000-1000-8000-000a95a0e128>"'
  let res = await authed(r, { contacts: [`<sip:alice@10.0.0.1:1>;+sip.instance=${inst};reg-id=1`, `<sip:alice@10.0.0.1:2>;+sip.instance=${inst};reg-id=2`], expires: 600 })
  t.equal(res.status, 200)
  t.equal(header(res, 'Contact').length, 2, 'two flows of one instance')
  res = await authed(r, { contacts: [`<sip:alice@10.0.0.2:9>;+sip.instance=${inst};reg-id=1`], expires: 600 })
  t.equal(res.status, 200)
  const bindings = await r.store.lookup(`sip:alice@${DOMAIN}`, r.clock.now)
  t.same(bindings.map(b => b.contact).sort(), ['sip:alice@10.0.0.1:2', 'sip:alice@10.0.0.2:9'], 'reg-id 1 replaced, reg-id 2 kept')
  t.ok(bindings.every(b => b.instanceId === inst.slice(1, -1)), 'instance stored without its quotes')
  t.ok(header(res, 'Contact').some(c => c.endsWith(`;+sip.instance=${inst};reg-id=1`)))
})

t.test('RFC 5626 §6: Require: outbound for a reg-id binding when this registrar is the first hop or the first Path has ob', async t => {
  const r = rig(t)
  const inst = '"<urn:uuid:00000000-0000-1000-8000-000a95a0e129>"'
  const ob: [string, string] = ['Supported', 'gruu, outbound, path']
  // Each case on a contact of its own; at most 3 per AOR (rig's maxContacts), so alice then bob.
  const reg = (contact: string, extra: Array<[string, string]>, user = 'alice') => authed(r, { user, contacts: [contact], expires: 600, extra }, user === 'bob' ? 'builder' : 'wonderland')
  // What baresip 1.0 sends with sipnat=outbound.
  let res = await reg(`<sip:alice@10.0.0.1:1;transport=tcp>;+sip.instance=${inst};reg-id=1`, [ob])
  t.equal(res.status, 200)
  t.same(header(res, 'Require'), ['outbound'], 'first hop, reg-id, Supported: outbound')
  res = await reg(`<sip:alice@10.0.0.1:1;transport=tcp>;+sip.instance=${inst};reg-id=1`, [])
  t.same(header(res, 'Require'), [], 'no Require of an extension the phone did not list in Supported')
  res = await reg(`<sip:alice@10.0.0.1:3>;+sip.instance=${inst}`, [ob])
  t.same(header(res, 'Require'), [], 'no reg-id: no outbound')
  res = await reg(`<sip:alice@10.0.0.1:4>;+sip.instance=${inst};reg-id=2`, [ob, ['Via', 'SIP/2.0/UDP 192.0.2.50:5060;branch=z9hG4bK-edge']])
  t.equal(res.status, 200)
  t.same(header(res, 'Require'), [], 'a proxy in between that added no Path: not the first hop')
  res = await reg(`<sip:bob@10.0.0.1:5>;+sip.instance=${inst};reg-id=3`, [ob, ['Via', 'SIP/2.0/UDP 192.0.2.50:5060;branch=z9hG4bK-edge2'], ['Path', '<sip:edge.example.test;lr>']], 'bob')
  t.equal(res.status, 200)
  t.same(header(res, 'Require'), [], 'the first Path without ob')
  res = await reg(`<sip:bob@10.0.0.1:6>;+sip.instance=${inst};reg-id=4`, [ob, ['Via', 'SIP/2.0/UDP 192.0.2.50:5060;branch=z9hG4bK-edge3'], ['Path', '<sip:edge.example.test;lr;ob>']], 'bob')
  t.equal(res.status, 200)
  t.same(header(res, 'Require'), ['outbound'], 'the first Path with ob: that edge proxy does outbound')
})

t.test('RFC 5626 §5.4: Flow-Timer goes with Require: outbound when configured', async t => {
  const inst = '"<urn:uuid:00000000-0000-1000-8000-000a95a0e130>"'
  const extra: Array<[string, string]> = [['Supported', 'outbound']]
  const timed = rig(t, { flowTimer: 25 })
  let res = await authed(timed, { contacts: [`<sip:alice@10.0.0.1:1>;+sip.instance=${inst};reg-id=1`], expires: 600, extra })
  t.same(header(res, 'Require'), ['outbound'])
  t.same(header(res, 'Flow-Timer'), ['25'])
  res = await authed(timed, { contacts: ['<sip:alice@10.0.0.1:2>'], expires: 600, extra })
  t.same(header(res, 'Flow-Timer'), [], 'not without outbound')
  const untimed = rig(t)
  res = await authed(untimed, { contacts: [`<sip:alice@10.0.0.1:1>;+sip.instance=${inst};reg-id=1`], expires: 600, extra })
  t.same(header(res, 'Flow-Timer'), [], 'not by default')
  t.throws(() => rig(t, { flowTimer: -1 }), /flowTimer/)
})

t.test('location store down: 503 with Retry-After, never a 500', async t => {
  const port = await closedPort()
  const store = new RedisLocationStore({ redis: `redis://127.0.0.1:${port}`, prefix: 'sipd-test:down:' })
  t.teardown(async () => { await store.close() })
  const errors: unknown[] = []
  const outcomes: RegisterOutcome[] = []
  const clock = { now: T0 }
  const registrar = new Registrar({
    domains: [DOMAIN],
    locations: store,
    subscribers: new ConfigSubscriberStore([{ user: 'alice', domain: DOMAIN, password: 'wonderland' }]),
    authenticator: new DigestAuthenticator({ secret: 'registrar-test-secret-0123456789', now: () => clock.now }),
    retryAfterSec: 7,
    onError: err => { errors.push(err) },
    onOutcome: o => { outcomes.push(o) }
  })
  const first = await registrar.handleRegister(register({}), SOURCE, clock.now)
  t.equal(first.status, 401, 'the challenge needs no store')
  const res = await registrar.handleRegister(register({ expires: 600, auth: authorization(header(first, 'WWW-Authenticate')[0]!, 'alice', 'wonderland') }), SOURCE, clock.now)
  t.equal(res.status, 503)
  t.same(header(res, 'Retry-After'), ['7'])
  t.equal(outcomes.at(-1), 'unavailable')
  t.equal((errors[0] as { code?: string }).code, 'SIPD_ERR_STORE_UNAVAILABLE')
})

t.test('invalid options throw at construction', async t => {
  const base = { domains: [DOMAIN], locations: new MemoryLocationStore({ sweepIntervalMs: 0 }), subscribers: new ConfigSubscriberStore([]), authenticator: new DigestAuthenticator({ secret: 'registrar-test-secret-0123456789' }) }
  t.throws(() => new Registrar({ ...base, minExpires: 100, maxExpires: 50 }), { code: 'SIPD_ERR_INVALID_ARGUMENT' })
  t.throws(() => new Registrar({ ...base, maxContacts: 0 }), { code: 'SIPD_ERR_INVALID_ARGUMENT' })
  t.throws(() => new Registrar({ ...base, defaultExpires: 99_999 }), { code: 'SIPD_ERR_INVALID_ARGUMENT' })
})

t.test('answerStateless: a REGISTER without credentials is challenged or refused at once, one with credentials is left to handleRegister', async t => {
  const r = rig(t)
  const ch = r.registrar.answerStateless(register({}), SOURCE)
  t.equal(ch?.status, 401)
  t.equal(header(ch!, 'WWW-Authenticate').length, 1)
  t.same(r.outcomes, ['challenged'], 'the outcome is counted')
  t.same(await r.store.lookup(`sip:alice@${DOMAIN}`, r.clock.now), [], 'nothing stored')
  // RFC 3261 §8.2.7: the retransmission of the same request is simply challenged again.
  const again = r.registrar.answerStateless(register({}), SOURCE)
  t.equal(again?.status, 401)
  t.not(challengeParam(header(again!, 'WWW-Authenticate')[0]!, 'nonce'), challengeParam(header(ch!, 'WWW-Authenticate')[0]!, 'nonce'), 'a fresh nonce')
  t.equal(r.registrar.answerStateless(register({ toDomain: 'elsewhere.test' }), SOURCE)?.status, 403, 'a foreign domain is refused statelessly too')
  // A challenge answered statelessly is verified by the stateful path like any other.
  const auth = authorization(header(ch!, 'WWW-Authenticate')[0]!, 'alice', 'wonderland')
  t.equal(r.registrar.answerStateless(register({ auth }), SOURCE), undefined, 'credentials: a transaction is needed (no stateless registrar, §8.2.7)')
  const ok = await r.registrar.handleRegister(register({ auth, expires: 600 }), SOURCE, r.clock.now)
  t.equal(ok.status, 200)
  t.equal((await r.store.lookup(`sip:alice@${DOMAIN}`, r.clock.now)).length, 1)
})

t.test('a flowUri given as a function is called only when a binding is written', async t => {
  const r = rig(t)
  let calls = 0
  const source = { ...SOURCE, flowUri: () => { calls++; return 'sip:dGNw.abc@127.0.0.140:5060;lr' } }
  const first = await r.registrar.handleRegister(register({}), source, r.clock.now)
  t.equal(first.status, 401)
  t.equal(calls, 0, 'not for the challenge')
  const ok = await r.registrar.handleRegister(register({ expires: 600, auth: authorization(header(first, 'WWW-Authenticate')[0]!, 'alice', 'wonderland') }), source, r.clock.now)
  t.equal(ok.status, 200)
  t.equal(calls, 1)
  t.equal((await r.store.lookup(`sip:alice@${DOMAIN}`, r.clock.now))[0]?.flowUri, 'sip:dGNw.abc@127.0.0.140:5060;lr')
})

t.test('authExempt: REGISTERs from exempt sources bind without digest, others are still challenged', async t => {
  const exemptAddress = '10.1.2.3'
  const seen: string[] = []
  const r = rig(t, { authExempt: s => { seen.push(s.address); return s.address === exemptAddress } })
  const open = { ...SOURCE, address: exemptAddress }
  t.equal(r.registrar.answerStateless(register({ user: 'zoe' }), open), undefined, 'an exempt REGISTER is never answered statelessly: it binds')
  const res = await r.registrar.handleRegister(register({ user: 'zoe', contacts: ['<sip:zoe@10.1.2.3:5060>'], expires: 600 }), open, r.clock.now)
  t.equal(res.status, 200, 'no challenge, and zoe is no subscriber: without digest any user of a served domain binds')
  t.same(header(res, 'Contact'), ['<sip:zoe@10.1.2.3:5060>;expires=600'])
  t.equal((await r.store.lookup(`sip:zoe@${DOMAIN}`, r.clock.now))[0]?.received?.address, exemptAddress)
  t.equal(r.authFailures.length, 0)
  // The rest of §10.3 still applies to exempt sources.
  t.equal((await r.registrar.handleRegister(register({ user: 'zoe', toDomain: 'elsewhere.test' }), open, r.clock.now)).status, 403, 'foreign domain')
  t.equal((await r.registrar.handleRegister(register({ user: 'zoe', expires: 5 }), open, r.clock.now)).status, 423, 'Min-Expires')
  t.equal((await r.registrar.handleRegister(register({ user: 'zoe', contacts: ['<sip:zoe@10.1.2.3:5060>'], expires: 600, cseq: 1 }), open, r.clock.now)).status, 500, 'same Call-ID, lower CSeq: out of order (§10.3 step 7)')
  // Everyone else: digest as before.
  const other = await r.registrar.handleRegister(register({ user: 'zoe' }), SOURCE, r.clock.now)
  t.equal(other.status, 401)
  t.ok(seen.includes(SOURCE.address) && seen.includes(exemptAddress), 'the predicate is asked with the source')
  t.throws(() => new Registrar({ domains: [DOMAIN], locations: r.store, subscribers: new ConfigSubscriberStore([]), authenticator: new DigestAuthenticator({ secret: 'registrar-test-secret-0123456789' }), authExempt: 'all' as unknown as () => boolean }), { code: 'SIPD_ERR_INVALID_ARGUMENT' })
})

t.test('a refresh writes a new binding with the new CSeq; unchanged fields carry over', async t => {
  const r = rig(t)
  const first = await authed(r, { expires: 600, extra: [['User-Agent', 'Phone/1.0']] })
  t.equal(first.status, 200)
  const [a] = await r.store.lookup(`sip:alice@${DOMAIN}`, r.clock.now)
  r.clock.now += 1000
  const second = await authed(r, { expires: 600, cseq: 1000, extra: [['User-Agent', 'Phone/1.0']] })
  t.equal(second.status, 200)
  const [b] = await r.store.lookup(`sip:alice@${DOMAIN}`, r.clock.now)
  t.not(a, b, 'a new binding')
  t.equal(b?.contact, a?.contact)
  t.equal(b?.userAgent, 'Phone/1.0')
  t.equal(b?.cseq, 1000)
  t.equal(b?.updatedAt, r.clock.now)
})

/** A loopback port nothing listens on (bound, noted, released). */
async function closedPort (): Promise<number> {
  const s = net.createServer()
  await new Promise<void>(resolve => s.listen(0, '127.0.0.1', resolve))
  const port = (s.address() as net.AddressInfo).port
  await new Promise<void>(resolve => s.close(() => resolve()))
  return port
}
