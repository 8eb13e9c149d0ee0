import t from 'tap'
import { createHash, createHmac } from 'node:crypto'
import { DigestAuthenticator, digestResponse, ha1, type DigestAlgorithm, type DigestCredentialsInput, type DigestVerifyResult } from '../src/digest.js'
import { InvalidArgumentError } from '../src/errors.js'

const SECRET = 'test-secret-0123456789abcdef'

/** An independent client-side computation (RFC 7616 §3.4.1), written apart from the code under test. */
function client (alg: 'md5' | 'sha256', o: { user: string, realm: string, pass: string, method: string, uri: string, nonce: string, cnonce?: string, nc?: string, qop?: string, sess?: boolean }): string {
  const h = (s: string): string => createHash(alg).update(s).digest('hex')
  let a1 = h(`${o.user}:${o.realm}:${o.pass}`)
  if (o.sess === true) a1 = h(`${a1}:${o.nonce}:${o.cnonce ?? ''}`)
  const a2 = h(`${o.method}:${o.uri}`)
  return o.qop === undefined ? h(`${a1}:${o.nonce}:${a2}`) : h(`${a1}:${o.nonce}:${o.nc ?? ''}:${o.cnonce ?? ''}:${o.qop}:${a2}`)
}

/** Pulls a quoted or token parameter out of a challenge value (test helper, not hot path). */
function param (challenge: string, name: string): string | undefined {
  for (const part of challenge.replace(/^Digest /, '').split(', ')) {
    const eq = part.indexOf('=')
    if (part.slice(0, eq) === name) {
      const v = part.slice(eq + 1)
      return v.startsWith('"') ? v.slice(1, -1) : v
    }
  }
  return undefined
}

function clock (start = 1_750_000_000_000): { now: () => number, advance: (ms: number) => void } {
  let n = start
  return { now: () => n, advance: (ms) => { n += ms } }
}

const users: Record<string, string> = { alice: 'wonderland', Mufasa: 'Circle of Life' }
function ha1Of (user: string, realm: string) {
  return (a: DigestAlgorithm): string | undefined => users[user] === undefined ? undefined : ha1(user, realm, users[user], a)
}

t.test('RFC 7616 §3.9.1 example: MD5 and SHA-256 with qop=auth', async t => {
  const base = {
    nonce: '7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v',
    cnonce: 'f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ',
    nc: '00000001',
    qop: 'auth',
    method: 'GET',
    uri: '/dir/index.html'
  }
  t.equal(digestResponse({ ...base, algorithm: 'MD5', ha1: ha1('Mufasa', 'http-auth@example.org', 'Circle of Life', 'MD5') }),
    '8ca523f5e9506fed4657c9700eebdbec')
  t.equal(digestResponse({ ...base, algorithm: 'SHA-256', ha1: ha1('Mufasa', 'http-auth@example.org', 'Circle of Life', 'SHA-256') }),
    '753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1')
})

t.test('a nonce ends with the first 16 bytes of HMAC-SHA256(secret, payload 0x00 realm), whatever the secret and realm length', async t => {
  // Computed here with createHmac, apart from the code under test (which builds the HMAC from two hashes).
  const secrets = [SECRET, 'k'.repeat(64), 'a much longer secret than one SHA-256 block of sixty-four bytes, hashed first by HMAC', 'sécret-ünïcode-0123456789']
  const realms = ['example.test', 'r', 'x'.repeat(300), 'ünï.example']
  for (const secret of secrets) {
    const a = new DigestAuthenticator({ secret })
    for (const realm of realms) {
      for (let n = 0; n < 3; n++) {
        const nonce = param(a.challenge(realm)[0]!, 'nonce')!
        const payload = Buffer.from(nonce.slice(0, 20), 'base64url')
        const mac = createHmac('sha256', Buffer.from(secret, 'utf8')).update(payload).update('\0').update(realm, 'utf8').digest().subarray(0, 16)
        t.equal(nonce.slice(20), mac.toString('base64url'), `secret of ${secret.length} chars, realm of ${realm.length}`)
        // Another node with the same secret checks it in full (not from its recent table).
        const other = new DigestAuthenticator({ secret })
        const response = client('md5', { user: 'alice', realm, pass: 'wonderland', method: 'REGISTER', uri: 'sip:x', nonce, cnonce: 'c', nc: '00000001', qop: 'auth' })
        const r = other.verify({ method: 'REGISTER', realm, ha1: ha1Of('alice', realm), credentials: { username: 'alice', realm, nonce, uri: 'sip:x', response, cnonce: 'c', nc: '00000001', qop: 'auth', algorithm: 'MD5' } })
        t.same(r, { ok: true, algorithm: 'MD5' })
      }
    }
  }
})

t.test('the response sipp 3.6 computes (MD5, qop=auth, RFC 2617)', async t => {
  // Captured from sipp 3.6.1 `[authentication username=alice password=wonderland]`
  // answering a 401 from a loopback UDP server; note uri is the remote address.
  const header = { username: 'alice', realm: 'example.test', cnonce: '6b8b4567', nc: '00000001', qop: 'auth', uri: 'sip:127.0.0.5:25070', nonce: 'AAGUyJ3nXy0abc-_xyz0123', response: '61f146e1a62ba46de8e6144253b88c6b', algorithm: 'MD5' }
  t.equal(digestResponse({ algorithm: 'MD5', ha1: ha1('alice', 'example.test', 'wonderland', 'MD5'), nonce: header.nonce, cnonce: header.cnonce, nc: header.nc, qop: header.qop, method: 'REGISTER', uri: header.uri }), header.response)
})

t.test('challenge: one value per algorithm in preference order, algorithm written out', async t => {
  const a = new DigestAuthenticator({ secret: SECRET })
  const md5 = a.challenge('example.test')
  t.equal(md5.length, 1)
  t.match(md5[0], /^Digest realm="example\.test", nonce="[A-Za-z0-9_-]{42}", opaque="[A-Za-z0-9_-]+", qop="auth", algorithm=MD5$/)

  const both = new DigestAuthenticator({ secret: SECRET, algorithms: ['SHA-256', 'MD5'] }).challenge('example.test', { stale: true })
  t.equal(both.length, 2)
  t.ok(both[0].endsWith('algorithm=SHA-256, stale=true'))
  t.ok(both[1].endsWith('algorithm=MD5, stale=true'))
  t.equal(param(both[0], 'nonce'), param(both[1], 'nonce'), 'the two challenges share a nonce')

  t.not(param(a.challenge('example.test')[0], 'nonce'), param(a.challenge('example.test')[0], 'nonce'), 'nonces differ')
  t.equal(param(md5[0], 'opaque'), param(new DigestAuthenticator({ secret: SECRET }).challenge('example.test')[0], 'opaque'), 'every node sends the same opaque')
  t.match(a.challenge('a"b\\c')[0], /^Digest realm="a\\"b\\\\c", /, 'realm is escaped as a quoted-string')
})

t.test('challenge: a User-Agent that stops at a first challenge it cannot answer gets MD5 alone', async t => {
  const both = new DigestAuthenticator({ secret: SECRET, algorithms: ['SHA-256', 'MD5'] })
  // The User-Agent of Debian 12's baresip; libre before v3.11 gives up (ENOSYS) on a first SHA-256 challenge.
  const old = both.challenge('example.test', { userAgent: 'baresip v1.0.0 (x86_64/linux)', stale: true })
  t.equal(old.length, 1)
  t.ok(old[0].endsWith('algorithm=MD5, stale=true'), old[0])
  t.equal(both.challenge('example.test', { userAgent: 'baresip v3.10.1 (x86_64/Linux)' }).length, 1, 'baresip 3.10 too')
  t.equal(both.challenge('example.test', { userAgent: 'baresip v3.11.0 (x86_64/Linux)' }).length, 2, 'baresip 3.11 answers SHA-256: both offered')
  t.equal(both.challenge('example.test', { userAgent: 'baresip v3.1.2' }).length, 1, 'v3.1. is not v3.11')
  t.equal(both.challenge('example.test', { userAgent: 'Linphone/5.2' }).length, 2)
  t.equal(both.challenge('example.test').length, 2, 'no User-Agent: every algorithm')

  const custom = new DigestAuthenticator({ secret: SECRET, algorithms: ['SHA-256', 'MD5'], md5OnlyUserAgents: ['OldPhone/'] })
  t.equal(custom.challenge('example.test', { userAgent: 'OldPhone/2.1' }).length, 1)
  t.equal(custom.challenge('example.test', { userAgent: 'baresip v1.0.0' }).length, 2, 'the option replaces the default list')

  const sha = new DigestAuthenticator({ secret: SECRET, algorithms: ['SHA-256'] }).challenge('example.test', { userAgent: 'baresip v1.0.0' })
  t.same(sha.map(v => param(v, 'algorithm')), ['SHA-256'], 'MD5 not offered: it is never added')
  const md5First = new DigestAuthenticator({ secret: SECRET, algorithms: ['MD5', 'SHA-256'] }).challenge('example.test', { userAgent: 'baresip v1.0.0' })
  t.same(md5First.map(v => param(v, 'algorithm')), ['MD5', 'SHA-256'], 'MD5 already first: unchanged')
  t.throws(() => new DigestAuthenticator({ secret: SECRET, md5OnlyUserAgents: [''] }), InvalidArgumentError)
})

t.test('realmFor: configured realm, else the domain', async t => {
  t.equal(new DigestAuthenticator({ secret: SECRET }).realmFor('example.test'), 'example.test')
  t.equal(new DigestAuthenticator({ secret: SECRET, realm: 'sipd' }).realmFor('example.test'), 'sipd')
})

/** Answers a fresh challenge the way a phone would. */
function answer (a: DigestAuthenticator, o: { user?: string, pass?: string, realm?: string, alg?: 'MD5' | 'SHA-256' | 'MD5-sess' | 'SHA-256-sess', qop?: boolean, nc?: string, method?: string, nonce?: string }): DigestCredentialsInput {
  const realm = o.realm ?? 'example.test'
  const alg = o.alg ?? 'MD5'
  const ch = a.challenge(realm)[0]
  const nonce = o.nonce ?? param(ch, 'nonce') ?? ''
  const user = o.user ?? 'alice'
  const uri = 'sip:example.test'
  const cnonce = 'c0ffee42'
  const qop = o.qop === false ? undefined : 'auth'
  const nc = qop === undefined ? undefined : (o.nc ?? '00000001')
  const response = client(alg.startsWith('MD5') ? 'md5' : 'sha256', { user, realm, pass: o.pass ?? users[user] ?? 'x', method: o.method ?? 'REGISTER', uri, nonce, cnonce, nc, qop, sess: alg.endsWith('-sess') })
  return { username: user, realm, nonce, uri, response, algorithm: alg, cnonce: qop === undefined && !alg.endsWith('-sess') ? undefined : cnonce, qop, nc, opaque: param(ch, 'opaque') }
}

/** The nonce of a fresh challenge for example.test. */
function freshNonce (a: DigestAuthenticator): string {
  return param(a.challenge('example.test')[0], 'nonce') ?? ''
}

/** alice's REGISTER answering `nonce` with nonce-count `nc`, verified by `a`. */
function verifier (a: DigestAuthenticator): (nonce: string, nc: string) => DigestVerifyResult {
  return (nonce, nc) => a.verify({ method: 'REGISTER', credentials: answer(a, { nonce, nc }), ha1: ha1Of('alice', 'example.test') })
}

t.test('verify: MD5 and SHA-256, qop=auth', async t => {
  for (const alg of ['MD5', 'SHA-256'] as const) {
    const a = new DigestAuthenticator({ secret: SECRET, algorithms: [alg] })
    const credentials = answer(a, { alg })
    t.same(a.verify({ method: 'REGISTER', credentials, realm: 'example.test', ha1: ha1Of('alice', 'example.test') }), { ok: true, algorithm: alg }, alg)
  }
})

t.test('verify: RFC 7616 example user and realm through our own nonce', async t => {
  const a = new DigestAuthenticator({ secret: SECRET, algorithms: ['SHA-256', 'MD5'] })
  for (const alg of ['SHA-256', 'MD5'] as const) {
    const credentials = answer(a, { user: 'Mufasa', realm: 'http-auth@example.org', alg, method: 'GET' })
    t.same(a.verify({ method: 'GET', credentials, ha1: ha1Of('Mufasa', 'http-auth@example.org') }), { ok: true, algorithm: alg }, alg)
  }
})

t.test('verify: -sess variants and RFC 2069 (no qop) responses', async t => {
  const a = new DigestAuthenticator({ secret: SECRET, algorithms: ['MD5', 'SHA-256'] })
  for (const alg of ['MD5-sess', 'SHA-256-sess'] as const) {
    t.same(a.verify({ method: 'REGISTER', credentials: answer(a, { alg }), ha1: ha1Of('alice', 'example.test') }), { ok: true, algorithm: alg }, alg)
  }
  const legacy = answer(a, { qop: false })
  t.equal(legacy.qop, undefined)
  t.same(a.verify({ method: 'REGISTER', credentials: legacy, ha1: ha1Of('alice', 'example.test') }), { ok: true, algorithm: 'MD5' })
  t.same(a.verify({ method: 'REGISTER', credentials: legacy, ha1: ha1Of('alice', 'example.test') }), { ok: true, algorithm: 'MD5' }, 'no nonce-count: the nonce may be reused until it expires')
  const noAlgorithm = { ...answer(a, {}), algorithm: undefined }
  t.same(a.verify({ method: 'REGISTER', credentials: noAlgorithm, ha1: ha1Of('alice', 'example.test') }), { ok: true, algorithm: 'MD5' }, 'absent algorithm means MD5')
  const upper = answer(a, {})
  upper.response = upper.response?.toUpperCase()
  t.same(a.verify({ method: 'REGISTER', credentials: upper, ha1: ha1Of('alice', 'example.test') }), { ok: true, algorithm: 'MD5' }, 'hex case does not matter')
})

t.test('verify: a nonce from another node with the same secret is accepted', async t => {
  const nodeA = new DigestAuthenticator({ secret: SECRET })
  const nodeB = new DigestAuthenticator({ secret: SECRET })
  const other = new DigestAuthenticator({ secret: 'another-secret-0123456789' })
  const credentials = answer(nodeA, {})
  t.same(nodeB.verify({ method: 'REGISTER', credentials, ha1: ha1Of('alice', 'example.test') }), { ok: true, algorithm: 'MD5' })
  t.same(other.verify({ method: 'REGISTER', credentials, ha1: ha1Of('alice', 'example.test') }), { ok: false, reason: 'bad-nonce' })
})

t.test('verify: wrong password, unknown user, realm mismatch', async t => {
  const a = new DigestAuthenticator({ secret: SECRET })
  t.same(a.verify({ method: 'REGISTER', credentials: answer(a, { pass: 'guess' }), ha1: ha1Of('alice', 'example.test') }), { ok: false, reason: 'wrong-password' })
  t.same(a.verify({ method: 'INVITE', credentials: answer(a, {}), ha1: ha1Of('alice', 'example.test') }), { ok: false, reason: 'wrong-password' }, 'the method is covered')
  let calls = 0
  t.same(a.verify({ method: 'REGISTER', credentials: answer(a, { user: 'mallory' }), ha1: () => { calls++; return undefined } }), { ok: false, reason: 'unknown-user' })
  t.equal(calls, 1)
  t.same(a.verify({ method: 'REGISTER', credentials: answer(a, { realm: 'other.test' }), realm: 'example.test', ha1: ha1Of('alice', 'other.test') }), { ok: false, reason: 'unknown-user' })
})

t.test('verify: stale nonce only when the digest is right', async t => {
  const c = clock()
  const a = new DigestAuthenticator({ secret: SECRET, nonceTtlSec: 30, now: c.now })
  const good = answer(a, {})
  const bad = answer(a, { pass: 'guess' })
  c.advance(29_999)
  const fresh = answer(a, {})
  c.advance(1)
  t.same(a.verify({ method: 'REGISTER', credentials: good, ha1: ha1Of('alice', 'example.test') }), { ok: false, reason: 'stale' })
  t.same(a.verify({ method: 'REGISTER', credentials: bad, ha1: ha1Of('alice', 'example.test') }), { ok: false, reason: 'wrong-password' })
  t.same(a.verify({ method: 'REGISTER', credentials: fresh, ha1: ha1Of('alice', 'example.test') }), { ok: true, algorithm: 'MD5' })
})

t.test('verify: nonce-count must increase (replay)', async t => {
  const a = new DigestAuthenticator({ secret: SECRET })
  const nonce = freshNonce(a)
  const v = (nc: string) => a.verify({ method: 'REGISTER', credentials: answer(a, { nonce, nc }), ha1: ha1Of('alice', 'example.test') })
  t.same(v('00000001'), { ok: true, algorithm: 'MD5' })
  t.same(v('00000001'), { ok: false, reason: 'replay' })
  t.same(v('00000002'), { ok: true, algorithm: 'MD5' })
  t.same(v('00000001'), { ok: false, reason: 'replay' })
  t.same(v('0000000a'), { ok: true, algorithm: 'MD5' })
  t.same(v('00000009'), { ok: false, reason: 'replay' })
  // A wrong response does not advance the count.
  t.same(a.verify({ method: 'REGISTER', credentials: answer(a, { nonce, nc: '00000010', pass: 'guess' }), ha1: ha1Of('alice', 'example.test') }), { ok: false, reason: 'wrong-password' })
  t.same(v('0000000b'), { ok: true, algorithm: 'MD5' })
})

t.test('verify: the nonce-count table is bounded and never lets a replay through', async t => {
  const c = clock()
  const a = new DigestAuthenticator({ secret: SECRET, maxNonceCounts: 2, now: c.now })
  const nonces: string[] = []
  for (let i = 0; i < 3; i++) {
    nonces.push(freshNonce(a))
    c.advance(10)
  }
  const v = verifier(a)
  t.same(v(nonces[0], '00000001'), { ok: true, algorithm: 'MD5' })
  t.same(v(nonces[1], '00000001'), { ok: true, algorithm: 'MD5' })
  t.same(v(nonces[2], '00000001'), { ok: true, algorithm: 'MD5' }, 'third nonce pushes the first out')
  t.same(v(nonces[0], '00000001'), { ok: false, reason: 'stale' }, 'a forgotten nonce is sent back for a fresh one, not replayed')
  t.same(v(nonces[2], '00000001'), { ok: false, reason: 'replay' })
  const later = freshNonce(a)
  t.same(v(later, '00000001'), { ok: true, algorithm: 'MD5' })
})

t.test('verify: nonce counts are let go once their nonces expire, not only when the table is full', async t => {
  // An idle registrar after a burst must not hold every count up to
  // maxNonceCounts (65,536): an expired nonce is answered stale anyway.
  const c = clock()
  const a = new DigestAuthenticator({ secret: SECRET, nonceTtlSec: 30, now: c.now })
  const v = verifier(a)
  const burst: string[] = []
  for (let i = 0; i < 50; i++) {
    const nonce = freshNonce(a)
    t.same(v(nonce, '00000001'), { ok: true, algorithm: 'MD5' })
    burst.push(nonce)
  }
  t.equal(a.rememberedNonceCounts, 50, 'the burst\'s counts are remembered while its nonces live')
  c.advance(30_001)
  const later = freshNonce(a)
  t.same(v(later, '00000001'), { ok: true, algorithm: 'MD5' })
  t.equal(a.rememberedNonceCounts, 1, 'the next use lets the expired ones go')
  t.same(v(burst[0] as string, '00000002'), { ok: false, reason: 'stale' }, 'an expired nonce is stale, as before')
  t.same(v(later, '00000001'), { ok: false, reason: 'replay' }, 'the live one still catches a replay')
})

t.test('verify: the bounded tables keep their order through many evictions (ring wrap-around)', async t => {
  // 3 nonce counts and 4,096 recent nonces, pushed round many times: the
  // newest three are remembered (replay caught), the one before is forgotten.
  const c = clock()
  const a = new DigestAuthenticator({ secret: SECRET, maxNonceCounts: 3, now: c.now })
  const v = verifier(a)
  const used: string[] = []
  let failures = 0
  for (let i = 0; i < 10_000; i++) {
    const nonce = freshNonce(a)
    if (v(nonce, '00000001').ok !== true) failures++
    used.push(nonce)
    c.advance(1)
  }
  t.equal(failures, 0, 'every fresh nonce verifies once')
  const n = used.length
  for (const k of [1, 2, 3]) t.same(v(used[n - k] as string, '00000001'), { ok: false, reason: 'replay' }, `the ${k}th newest is remembered`)
  t.same(v(used[n - 1] as string, '00000002'), { ok: true, algorithm: 'MD5' }, 'and its count advances')
  t.same(v(used[n - 4] as string, '00000002'), { ok: false, reason: 'stale' }, 'an older one is forgotten, never replayed')
})

t.test('verify: the nonce-count table grows past its first slots and keeps every count (1,500 of at most 1,700), then evicts in order', async t => {
  const c = clock()
  const a = new DigestAuthenticator({ secret: SECRET, maxNonceCounts: 1700, nonceTtlSec: 3600, now: c.now })
  const v = verifier(a)
  const used: string[] = []
  for (let i = 0; i < 1500; i++) {
    const nonce = freshNonce(a)
    v(nonce, '00000005')
    used.push(nonce)
    c.advance(1)
  }
  let replays = 0
  let advanced = 0
  for (const nonce of used) {
    if (v(nonce, '00000005').ok === false) replays++
    if (v(nonce, 'ffffffff').ok === true) advanced++
  }
  t.equal(replays, 1500, 'each nonce remembers its count across the growth')
  t.equal(advanced, 1500, 'and takes a higher one, up to the largest nc')
  t.same(v(used[0] as string, 'ffffffff'), { ok: false, reason: 'replay' })
  // 300 more fill the table (1,700) and push the 100 oldest out.
  for (let i = 0; i < 300; i++) {
    const nonce = freshNonce(a)
    v(nonce, '00000001')
    used.push(nonce)
    c.advance(1)
  }
  t.same(v(used[99] as string, 'ffffffff'), { ok: false, reason: 'stale' }, 'the 100th oldest is forgotten, never replayed')
  t.same(v(used[100] as string, 'ffffffff'), { ok: false, reason: 'replay' }, 'the 101st is still remembered')
})

t.test('verify: once full, expired nonce counts make room first (the live ones stay remembered)', async t => {
  const c = clock()
  const a = new DigestAuthenticator({ secret: SECRET, maxNonceCounts: 4, nonceTtlSec: 30, now: c.now })
  const v = verifier(a)
  const old: string[] = []
  for (let i = 0; i < 2; i++) {
    old.push(freshNonce(a))
    t.same(v(old[i] as string, '00000001'), { ok: true, algorithm: 'MD5' })
  }
  c.advance(20_000)
  const live: string[] = []
  for (let i = 0; i < 2; i++) {
    live.push(freshNonce(a))
    t.same(v(live[i] as string, '00000001'), { ok: true, algorithm: 'MD5' })
  }
  c.advance(15_000)
  // The table is full (4); the two old nonces have expired: a new one takes their room.
  const fresh = freshNonce(a)
  t.same(v(fresh, '00000001'), { ok: true, algorithm: 'MD5' })
  const fresh2 = freshNonce(a)
  t.same(v(fresh2, '00000001'), { ok: true, algorithm: 'MD5' })
  for (const nonce of live) t.same(v(nonce, '00000001'), { ok: false, reason: 'replay' }, 'a live nonce is still remembered')
  t.same(v(fresh, '00000001'), { ok: false, reason: 'replay' })
})

t.test('verify: malformed or foreign credentials', async t => {
  const a = new DigestAuthenticator({ secret: SECRET })
  const h = ha1Of('alice', 'example.test')
  const ok = answer(a, {})
  const bad = (over: Partial<DigestCredentialsInput>, reason: string, msg: string): void => {
    t.same(a.verify({ method: 'REGISTER', credentials: { ...ok, ...over }, ha1: h }), { ok: false, reason }, msg)
  }
  bad({ username: undefined }, 'bad-request', 'no username')
  bad({ response: '' }, 'bad-request', 'empty response')
  bad({ nonce: undefined }, 'bad-request', 'no nonce')
  bad({ uri: undefined }, 'bad-request', 'no uri')
  bad({ algorithm: 'SHA-512-256' }, 'bad-request', 'unsupported algorithm')
  bad({ algorithm: 'SHA-256' }, 'bad-request', 'algorithm not offered')
  bad({ qop: 'auth-int' }, 'bad-request', 'qop not offered')
  bad({ nc: undefined }, 'bad-request', 'qop without nc')
  bad({ cnonce: undefined }, 'bad-request', 'qop without cnonce')
  bad({ nc: '0000000g' }, 'bad-request', 'nc not hex')
  bad({ nc: '00000000' }, 'bad-request', 'nc zero')
  bad({ nc: '000000001' }, 'bad-request', 'nc longer than 8 digits')
  bad({ nonce: ok.nonce?.slice(1) }, 'bad-nonce', 'truncated nonce')
  const n = ok.nonce ?? ''
  bad({ nonce: n.slice(0, 5) + (n[5] === 'A' ? 'B' : 'A') + n.slice(6) }, 'bad-nonce', 'tampered timestamp or random part')
  bad({ nonce: n.slice(0, 41) + (n[41] === 'A' ? 'B' : 'A') }, 'bad-nonce', 'tampered MAC')
  bad({ nonce: n.slice(0, 20) + '!' + n.slice(21) }, 'bad-nonce', 'foreign character in nonce')
  bad({ opaque: 'other' }, 'bad-nonce', 'opaque not ours')
  t.same(a.verify({ method: 'REGISTER', credentials: { ...answer(a, { realm: 'other.test' }), realm: 'example.test' }, ha1: h }), { ok: false, reason: 'bad-nonce' }, 'nonce issued for another realm')
  t.same(a.verify({ method: 'REGISTER', credentials: { ...ok, opaque: undefined }, ha1: h }), { ok: true, algorithm: 'MD5' }, 'absent opaque is tolerated')
})

t.test('verify: a response whose lower-casing changes its length is a wrong password, not an exception', async t => {
  // 'İ'.toLowerCase() is two characters: compared as bytes, the lengths differed and timingSafeEqual threw.
  const a = new DigestAuthenticator({ secret: SECRET })
  const ok = answer(a, {})
  const r = a.verify({ method: 'REGISTER', credentials: { ...ok, response: '\u0130' + (ok.response ?? '').slice(1) }, ha1: ha1Of('alice', 'example.test') })
  t.same(r, { ok: false, reason: 'wrong-password' })
  t.same(a.verify({ method: 'REGISTER', credentials: { ...ok, response: 'G' + (ok.response ?? '').slice(1) }, ha1: ha1Of('alice', 'example.test') }), { ok: false, reason: 'wrong-password' }, 'a non-hex letter')
})

t.test('nonces: unique, one instance id per authenticator, issue numbers counting up; old ones verify in full', async t => {
  const c = clock()
  const a = new DigestAuthenticator({ secret: SECRET, now: c.now })
  const seen = new Set<string>()
  const nonces: string[] = []
  for (let i = 0; i < 6000; i++) {
    const nonce = param(a.challenge('example.test')[0]!, 'nonce')!
    seen.add(nonce)
    nonces.push(nonce)
  }
  t.equal(seen.size, 6000, 'no nonce issued twice')
  const bytes = (n: string): Buffer => Buffer.from(n.slice(0, 20), 'base64url')
  const first = bytes(nonces[0]!)
  const last = bytes(nonces[5999]!)
  t.equal(last.readUIntBE(6, 3), first.readUIntBE(6, 3), 'the same instance id')
  t.equal(last.readUIntBE(9, 6) - first.readUIntBE(9, 6), 5999, 'issue numbers one apart')
  t.not(bytes(param(new DigestAuthenticator({ secret: SECRET }).challenge('example.test')[0]!, 'nonce')!).subarray(6).toString('hex'), first.subarray(6).toString('hex'), 'another authenticator: another instance id or number')
  const v = (nonce: string): unknown => a.verify({ method: 'REGISTER', credentials: answer(a, { nonce }), ha1: ha1Of('alice', 'example.test') })
  // The first has left the recent table (4,096 newest): its MAC is checked again.
  t.same(v(nonces[0]!), { ok: true, algorithm: 'MD5' }, 'an old nonce of this instance')
  t.same(v(nonces[5999]!), { ok: true, algorithm: 'MD5' }, 'a recent one')
  t.same(v(nonces[0]!), { ok: false, reason: 'replay' }, 'counts kept for both')
  t.same(v(nonces[5999]!), { ok: false, reason: 'replay' })
  // A recent nonce presented for another realm.
  const other = param(a.challenge('other.test')[0]!, 'nonce')!
  t.same(v(other), { ok: false, reason: 'bad-nonce' }, 'a recent nonce of another realm')
})

t.test('verify: this instance\'s counts by issue number beside another node\'s by text; far more issued than used never lets a replay through', async t => {
  const c = clock()
  const a = new DigestAuthenticator({ secret: SECRET, maxNonceCounts: 2, now: c.now })
  const other = new DigestAuthenticator({ secret: SECRET, now: c.now })
  const v = (nonce: string, nc: string): unknown => a.verify({ method: 'REGISTER', credentials: answer(a, { nonce, nc }), ha1: ha1Of('alice', 'example.test') })
  const nonceOf = (x: DigestAuthenticator): string => param(x.challenge('example.test')[0]!, 'nonce')!
  const foreign = nonceOf(other)
  t.same(v(foreign, '00000001'), { ok: true, algorithm: 'MD5' }, "another node's nonce")
  t.same(v(foreign, '00000001'), { ok: false, reason: 'replay' }, 'and its replay')
  const first = nonceOf(a)
  t.same(v(first, '00000001'), { ok: true, algorithm: 'MD5' })
  t.same(v(first, '00000001'), { ok: false, reason: 'replay' }, 'ours, found by issue number')
  t.same(v(foreign, '00000002'), { ok: true, algorithm: 'MD5' }, "the other node's count is kept beside it")
  t.equal(a.rememberedNonceCounts, 2)
  // A ring of 2 has an index of 4: the three v() since `first` each issued a challenge, so the
  // next nonce has the same index as `first` while `first` is still in the ring.
  c.advance(1)
  const later = nonceOf(a)
  t.same(v(later, '00000001'), { ok: true, algorithm: 'MD5' })
  t.same(v(first, '00000002'), { ok: false, reason: 'stale' }, 'the entry it pushed out is forgotten: stale, never a first use')
  t.same(v(later, '00000001'), { ok: false, reason: 'replay' })
  // Many nonces issued, few used: every replay is still caught or answered stale.
  let let_through = 0
  const used: string[] = []
  for (let i = 0; i < 3000; i++) {
    const n = nonceOf(a)
    if (i % 7 === 0) {
      if ((v(n, '00000001') as { ok: boolean }).ok) used.push(n)
    }
    c.advance(1)
  }
  for (const n of used) if ((v(n, '00000001') as { ok: boolean }).ok) let_through++
  t.equal(let_through, 0, `no replay of ${used.length} used nonces accepted`)
})

t.test('verify: a nonce from the future beyond clock skew is forged', async t => {
  const c = clock()
  const ahead = new DigestAuthenticator({ secret: SECRET, now: () => c.now() + 120_000 })
  const a = new DigestAuthenticator({ secret: SECRET, now: c.now })
  const slightlyAhead = new DigestAuthenticator({ secret: SECRET, now: () => c.now() + 30_000 })
  t.same(a.verify({ method: 'REGISTER', credentials: answer(ahead, {}), ha1: ha1Of('alice', 'example.test') }), { ok: false, reason: 'bad-nonce' })
  t.same(a.verify({ method: 'REGISTER', credentials: answer(slightlyAhead, {}), ha1: ha1Of('alice', 'example.test') }), { ok: true, algorithm: 'MD5' })
})

t.test('options are validated at construction', async t => {
  const bad = (o: object, msg: string): void => {
    t.throws(() => new DigestAuthenticator(o as never), InvalidArgumentError, msg)
  }
  bad({}, 'no secret')
  bad({ secret: 'short' }, 'short secret')
  bad({ secret: SECRET, algorithms: [] }, 'no algorithm')
  bad({ secret: SECRET, algorithms: ['SHA-1'] }, 'unknown algorithm')
  bad({ secret: SECRET, algorithms: ['MD5', 'MD5'] }, 'duplicate algorithm')
  bad({ secret: SECRET, nonceTtlSec: 0 }, 'ttl zero')
  bad({ secret: SECRET, nonceTtlSec: 1.5 }, 'ttl fraction')
  bad({ secret: SECRET, qop: 'auth-int' }, 'qop')
  bad({ secret: SECRET, realm: '' }, 'empty realm')
  bad({ secret: SECRET, maxNonceCounts: 0 }, 'empty nonce table')
  const e = t.throws(() => new DigestAuthenticator({ secret: 'short' })) as InvalidArgumentError
  t.equal(e.code, 'SIPD_ERR_INVALID_ARGUMENT')
  t.match(e.message, /"secret"/)
})
