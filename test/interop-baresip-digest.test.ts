// Digest over time (RFC 7616 §3.3, §3.4) with a nonce lifetime of 10 s.
// baresip (Debian 12's 1.0) registers over UDP and refreshes after the
// nonce has expired: it sends each refresh without credentials (libre keeps
// no nonce between REGISTERs), so each costs a fresh 401 and must then
// succeed without the registration ever failing. A client that does reuse
// its nonce (a raw socket, as many hardware phones do) gets, once the nonce
// has expired, 401 with stale=true for credentials that are otherwise right,
// then 200 on the fresh nonce; a replayed nc is refused. A phone with a
// wrong password is refused (401 again, never stale, counted) and gives up.
// interop-baresip.test.ts covers calls, TCP, outbound and SHA-256.
//
// Addresses: sipd 127.0.0.200, erin 127.0.0.201, frank 127.0.0.202, the raw client 127.0.0.203.
import t from 'tap'
import { createHash } from 'node:crypto'
import dgram from 'node:dgram'
import { requireBaresip, startBaresip } from './helpers/baresip.js'
import { freePort } from './helpers/servers.js'
import { metricValue, spawnSipd } from './helpers/spawn-sipd.js'
import type { SipdHandle } from './helpers/spawn-sipd.js'
import { delay } from './helpers/process.js'

const SIPD = '127.0.0.200'
const ERIN = '127.0.0.201'
const FRANK = '127.0.0.202'
const RAW = '127.0.0.203'

const md5 = (s: string): string => createHash('md5').update(s).digest('hex')

/** A REGISTER client on a UDP socket that keeps its nonce between requests, as many desk phones do. */
async function rawClient (port: number): Promise<{ register: (auth?: { nonce: string, nc: number }) => Promise<string>, close: () => void }> {
  const sock = dgram.createSocket('udp4')
  await new Promise<void>(resolve => sock.bind(0, RAW, resolve))
  const local = sock.address().port
  let cseq = 0
  const register = async (auth?: { nonce: string, nc: number }): Promise<string> => {
    cseq++
    const lines = [
      'REGISTER sip:example.test SIP/2.0',
      `Via: SIP/2.0/UDP ${RAW}:${local};rport;branch=z9hG4bK-stale-${cseq}-${process.pid}`,
      'Max-Forwards: 70',
      'From: <sip:frank@example.test>;tag=raw',
      'To: <sip:frank@example.test>',
      `Call-ID: stale-${process.pid}@test`,
      `CSeq: ${cseq} REGISTER`,
      `Contact: <sip:frank@${RAW}:${local}>`,
      'Expires: 60'
    ]
    if (auth !== undefined) {
      const nc = auth.nc.toString(16).padStart(8, '0')
      const ha1 = md5('frank:example.test:frank-secret')
      const ha2 = md5('REGISTER:sip:example.test')
      const response = md5(`${ha1}:${auth.nonce}:${nc}:c0ffee:auth:${ha2}`)
      lines.push(`Authorization: Digest username="frank", realm="example.test", nonce="${auth.nonce}", uri="sip:example.test", response="${response}", algorithm=MD5, qop=auth, nc=${nc}, cnonce="c0ffee"`)
    }
    const answer = new Promise<string>(resolve => {
      const timer = setTimeout(() => { sock.off('message', on); resolve('no answer') }, 3000)
      const on = (m: Buffer): void => { clearTimeout(timer); sock.off('message', on); resolve(m.toString('latin1')) }
      sock.on('message', on)
    })
    sock.send([...lines, 'Content-Length: 0', '', ''].join('\r\n'), port, SIPD)
    return await answer
  }
  return { register, close: () => { sock.close() } }
}

const nonceOf = (res: string): string => /nonce="([^"]+)"/.exec(res)?.[1] ?? ''
const statusOf = (res: string): string => res.slice(0, res.indexOf('\r\n'))

interface Binding { cseq: number }

async function bindings (sipd: SipdHandle, aor: string): Promise<Binding[]> {
  const res = await fetch(`${sipd.httpUrl}/api/locations?aor=${encodeURIComponent(aor)}`)
  return ((await res.json()) as { bindings: Binding[] }).bindings
}

/** The SIP responses in baresip's trace (`-s`), in order: status line plus whether it says stale=true. */
function responses (trace: string): Array<{ status: number, stale: boolean }> {
  const out: Array<{ status: number, stale: boolean }> = []
  for (const block of trace.split(/\r?\n\r?\n/)) {
    const at = block.indexOf('SIP/2.0 ')
    if (at < 0 || !/CSeq: \d+ REGISTER/.test(block)) continue
    const status = Number(block.slice(at + 8, at + 11))
    if (Number.isInteger(status)) out.push({ status, stale: /stale=true/i.test(block) })
  }
  return out
}

t.test('digest over time: baresip refreshes past the nonce lifetime; a reused expired nonce gets stale=true; replay and wrong password refused', async t => {
  requireBaresip()
  const port = await freePort(SIPD, 'both')
  const http = await freePort(SIPD, 'tcp')
  const sipd = await spawnSipd({
    configYaml: [
      `listen: ["udp:${SIPD}:${port}"]`,
      `http: "${SIPD}:${http}"`,
      'log_level: warn',
      'domains: ["example.test"]',
      'auth: { nonce_ttl: 10 }',
      'registrar: { min_expires: 5 }',
      'subscribers:',
      '  users:',
      '    - { user: erin, domain: example.test, password: erin-secret }',
      '    - { user: frank, domain: example.test, password: frank-secret }'
    ].join('\n') + '\n'
  })
  t.teardown(async () => { await sipd.stop() })

  // regint=12: baresip refreshes after about 11 s, when the nonce of its first 401 is a second past its 10 s.
  const erin = await startBaresip({
    name: 'erin',
    localIp: ERIN,
    sipPort: await freePort(ERIN, 'both'),
    ctrlPort: await freePort(ERIN, 'tcp'),
    lifetimeSec: 40,
    account: `<sip:erin@example.test>;auth_pass=erin-secret;outbound="sip:${SIPD}:${port};transport=udp";regint=12`
  })
  t.teardown(async () => { await erin.stop() })
  const frank = await startBaresip({
    name: 'frank',
    localIp: FRANK,
    sipPort: await freePort(FRANK, 'both'),
    ctrlPort: await freePort(FRANK, 'tcp'),
    lifetimeSec: 40,
    account: `<sip:frank@example.test>;auth_pass=not-franks;outbound="sip:${SIPD}:${port};transport=udp";regint=600`
  })
  t.teardown(async () => { await frank.stop() })

  // The raw client's first nonce: challenged and used once now, used again once it has expired.
  const raw = await rawClient(port)
  t.teardown(() => { raw.close() })
  const challenge = await raw.register()
  const oldNonce = nonceOf(challenge)
  t.equal(statusOf(challenge), 'SIP/2.0 401 Unauthorized', 'the raw client is challenged')
  t.equal(statusOf(await raw.register({ nonce: oldNonce, nc: 1 })), 'SIP/2.0 200 OK', 'and registers with nc=1')
  const issuedAt = Date.now()

  const aor = 'sip:erin@example.test'
  let first: Binding | undefined
  for (const end = Date.now() + 10_000; first === undefined && Date.now() < end; await delay(50)) first = (await bindings(sipd, aor))[0]
  t.ok(first !== undefined, 'erin registered (401, then 200)', { trace: erin.output().slice(-4000) })
  if (first === undefined) return

  // Wait for the refresh with the expired nonce, bounded.
  let refreshed: Binding | undefined
  for (const end = Date.now() + 20_000; refreshed === undefined && Date.now() < end; await delay(100)) {
    const b = (await bindings(sipd, aor))[0]
    if (b !== undefined && b.cseq > first.cseq) refreshed = b
  }
  const seen = responses(erin.output())
  t.ok(refreshed !== undefined, `erin's binding was refreshed after the nonce's lifetime (CSeq ${first.cseq} -> ${refreshed?.cseq})`, { trace: erin.output().slice(-6000) })
  t.same(seen.slice(0, 4).map(r => r.status), [401, 200, 401, 200], 'baresip: 401 then 200 at start and again for the refresh', { seen })
  t.notOk(erin.events.some(e => e.type === 'REGISTER_FAIL'), 'baresip never saw its registration fail')

  // The raw client's old nonce, past its 10 s: right credentials, so stale=true (no new password needed).
  await delay(Math.max(0, issuedAt + 10_500 - Date.now()))
  const stale = await raw.register({ nonce: oldNonce, nc: 2 })
  t.equal(statusOf(stale), 'SIP/2.0 401 Unauthorized', 'the expired nonce is refused')
  t.match(stale, /WWW-Authenticate: Digest [^\r\n]*stale=true/, 'with stale=true')
  const fresh = nonceOf(stale)
  t.not(fresh, oldNonce, 'and a new nonce')
  t.equal(statusOf(await raw.register({ nonce: fresh, nc: 1 })), 'SIP/2.0 200 OK', 'the same password on the new nonce registers')
  const replay = await raw.register({ nonce: fresh, nc: 1 })
  t.equal(statusOf(replay), 'SIP/2.0 401 Unauthorized', 'the same nc again (a replay) is refused')
  t.notMatch(replay, /stale=true/, 'not as stale')
  t.ok(await metricValue(sipd, 'sipd_auth_failures_total{reason="stale"}') >= 1, 'the stale nonce is counted')
  t.ok(await metricValue(sipd, 'sipd_auth_failures_total{reason="replay"}') >= 1, 'the replay is counted')

  // frank: the right user, the wrong password.
  t.notOk((await bindings(sipd, 'sip:frank@example.test')).some(b => JSON.stringify(b).includes(FRANK)), 'frank\'s baresip, with a wrong password, is not registered')
  const frankSeen = responses(frank.output())
  t.ok(frankSeen.length >= 2 && frankSeen.every(r => r.status === 401 && !r.stale), 'frank got 401 for his REGISTER and 401 again for his wrong credentials, never stale', { seen: frankSeen })
  t.ok(await metricValue(sipd, 'sipd_auth_failures_total{reason="wrong-password"}') >= 1, 'the wrong password is counted')
})
