// registrar.auth_exempt: REGISTERs from the listed networks bind without
// digest (a sipp phone gets 200 at once, also for a user sipd does not
// know), while any other source is still challenged; and the challenge of a
// REGISTER without credentials leaves no server transaction behind (RFC 3261
// §8.2.7: a stateless UAS issues challenges), where an accepted REGISTER's
// transaction waits out Timer J.
import t from 'tap'
import dgram from 'node:dgram'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describeSipp, runSipp } from './helpers/sipp.js'
import { freePort } from './helpers/servers.js'
import { metricValue, spawnSipd } from './helpers/spawn-sipd.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const NOAUTH = path.join(here, 'sipp', 'register-noauth.xml')
const DOMAIN = 'example.test'
const EXEMPT = '127.0.0.51'
const OTHER = '127.0.0.52'
const MEDIA = '127.0.0.53'

/** One REGISTER without credentials from `from`; resolves with the response's text (bounded wait). */
async function registerOnce (from: string, port: number, user: string, branch: string): Promise<string> {
  const sock = dgram.createSocket('udp4')
  await new Promise<void>(resolve => sock.bind(0, from, resolve))
  const local = sock.address().port
  try {
    const msg = [
      `REGISTER sip:${DOMAIN} SIP/2.0`,
      `Via: SIP/2.0/UDP ${from}:${local};branch=z9hG4bK-${branch}`,
      'Max-Forwards: 70',
      `From: <sip:${user}@${DOMAIN}>;tag=t-${branch}`,
      `To: <sip:${user}@${DOMAIN}>`,
      `Call-ID: ${branch}@${from}`,
      'CSeq: 1 REGISTER',
      `Contact: <sip:${user}@${from}:${local}>`,
      'Expires: 300',
      'Content-Length: 0',
      '', ''
    ].join('\r\n')
    const answer = new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer to the REGISTER from ${from} within 5 s`)), 5000)
      sock.once('message', m => { clearTimeout(timer); resolve(m.toString('latin1')) })
    })
    sock.send(msg, port, '127.0.0.1')
    return await answer
  } finally {
    sock.close()
  }
}

t.test('registrar.auth_exempt over sipp, and stateless challenges', async t => {
  const port = await freePort('127.0.0.1', 'both')
  const http = await freePort('127.0.0.1', 'tcp')
  const mediaPort = await freePort(MEDIA, 'udp')
  const sipd = await spawnSipd({
    configYaml: [
      `listen: ["udp:127.0.0.1:${port}"]`,
      `http: "127.0.0.1:${http}"`,
      `domains: [${DOMAIN}]`,
      'subscribers:',
      '  users:',
      `    - { user: alice, domain: ${DOMAIN}, password: pw-alice }`,
      'registrar:',
      `  auth_exempt: ["${EXEMPT}/32"]`,
      'auth:',
      '  secret: "e2e-secret-0123456789abcdef0123456789"',
      'media:',
      '  probe: { interval_ms: 3600000 }',
      `  sets: [{ id: 1, nodes: [{ uri: "sip:${MEDIA}:${mediaPort}" }] }]`
    ].join('\n') + '\n'
  })
  t.teardown(async () => { await sipd.stop() })
  const metric = async (series: string): Promise<number> => await metricValue(sipd, series)
  const serverTx = 'sipd_transactions_active{kind="server-non-invite"}'

  await t.test('a REGISTER without credentials from elsewhere gets 401 and holds no transaction', async t => {
    const answer = await registerOnce(OTHER, port, 'alice', 'other-1')
    t.match(answer, /^SIP\/2\.0 401 /, 'challenged')
    t.match(answer, /\r\nWWW-Authenticate: Digest realm="example\.test", nonce="[^"]+"/)
    t.match(answer, /\r\nTo: <sip:alice@example\.test>;tag=/, 'with a To tag')
    t.equal(await metric(serverTx), 0, 'no server transaction waits out Timer J for a challenge')
    t.equal(await metric('sipd_register_requests_total{outcome="challenged"}'), 1, 'the challenge is counted')
  })

  await t.test('sipp from an exempt network registers without digest, for any user of the domain', async t => {
    const r = await runSipp({
      scenario: NOAUTH,
      remote: `127.0.0.1:${port}`,
      localIp: EXEMPT,
      calls: 1,
      timeoutSec: 20,
      extraArgs: ['-s', 'zoe', '-key', 'domain', DOMAIN, '-key', 'expires', '300']
    })
    t.equal(r.code, 0, describeSipp(r))
    t.equal(r.stats?.successful, 1, 'REGISTER → 200')
    const body = await (await fetch(`${sipd.httpUrl}/api/locations?aor=${encodeURIComponent(`sip:zoe@${DOMAIN}`)}`)).json() as { bindings: Array<{ contact: string, userAgent?: string, received?: { address: string } }> }
    t.equal(body.bindings.length, 1, 'zoe is bound though she is no subscriber')
    t.match(body.bindings[0]?.contact, `sip:zoe@${EXEMPT}:`)
    t.equal(body.bindings[0]?.received?.address, EXEMPT)
    t.equal(body.bindings[0]?.userAgent, 'sipp register-noauth')
    t.equal(await metric(serverTx), 1, 'the accepted REGISTER went through a server transaction (Timer J, RFC 3261 §17.2.2)')
    t.equal(await metric('sipd_register_requests_total{outcome="ok"}'), 1)
  })

  await t.test('the exemption is by source: the same REGISTER from another address is challenged', async t => {
    const answer = await registerOnce(OTHER, port, 'zoe', 'other-2')
    t.match(answer, /^SIP\/2\.0 401 /)
    const direct = await registerOnce(EXEMPT, port, 'carl', 'exempt-1')
    t.match(direct, /^SIP\/2\.0 200 /, 'from the exempt address: 200')
    t.match(direct, /\r\nContact: <sip:carl@127\.0\.0\.51:\d+>;expires=300\r\n/)
  })

  await t.test('a call from a media node reaches a user bound from an exempt network, subscriber or not', async t => {
    const phone = dgram.createSocket('udp4')
    const media = dgram.createSocket('udp4')
    await new Promise<void>(resolve => phone.bind(0, EXEMPT, resolve))
    await new Promise<void>(resolve => media.bind(mediaPort, MEDIA, resolve))
    t.teardown(() => { phone.close(); media.close() })
    const crlf = (lines: string[]): Buffer => Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1')
    const local = phone.address().port
    const registered = new Promise<string>(resolve => phone.once('message', m => { resolve(m.toString('latin1')) }))
    phone.send(crlf([
      `REGISTER sip:${DOMAIN} SIP/2.0`, `Via: SIP/2.0/UDP ${EXEMPT}:${local};branch=z9hG4bK-dora-reg`, 'Max-Forwards: 70',
      `From: <sip:dora@${DOMAIN}>;tag=d1`, `To: <sip:dora@${DOMAIN}>`, 'Call-ID: dora-reg@test', 'CSeq: 1 REGISTER',
      `Contact: <sip:dora@${EXEMPT}:${local}>`, 'Expires: 300', 'Content-Length: 0'
    ]), port, '127.0.0.1')
    t.match(await registered, /^SIP\/2\.0 200 /, 'dora (no subscriber) registered')
    // The phone answers the call busy; the media node collects what comes back.
    const atPhone: string[] = []
    phone.on('message', m => {
      const text = m.toString('latin1')
      atPhone.push(text)
      if (!text.startsWith('INVITE ')) return
      const lines = text.split('\r\n')
      const keep = (name: string): string[] => lines.filter(l => l.toLowerCase().startsWith(name))
      phone.send(crlf(['SIP/2.0 486 Busy Here', ...keep('via:'), ...keep('from:'), `${keep('to:')[0]!};tag=dora`, ...keep('call-id:'), ...keep('cseq:'), 'Content-Length: 0']), port, '127.0.0.1')
    })
    const atMedia: string[] = []
    media.on('message', m => { atMedia.push(m.toString('latin1')) })
    media.send(crlf([
      `INVITE sip:dora@${DOMAIN} SIP/2.0`, `Via: SIP/2.0/UDP ${MEDIA}:${mediaPort};branch=z9hG4bK-dora-call`, 'Max-Forwards: 70',
      `From: <sip:fs@${MEDIA}>;tag=m1`, `To: <sip:dora@${DOMAIN}>`, 'Call-ID: dora-call@test', 'CSeq: 1 INVITE',
      `Contact: <sip:fs@${MEDIA}:${mediaPort}>`, 'Content-Length: 0'
    ]), port, '127.0.0.1')
    const end = Date.now() + 5000
    while (!atMedia.some(m => /^SIP\/2\.0 [2-6]\d\d /.test(m)) && Date.now() < end) await new Promise(resolve => setTimeout(resolve, 10))
    t.ok(atPhone.some(m => m.startsWith(`INVITE sip:dora@${EXEMPT}:${local}`)), 'the INVITE reached her contact')
    t.match(atMedia.find(m => /^SIP\/2\.0 [2-6]\d\d /.test(m)), /^SIP\/2\.0 486 /, 'her answer came back to the media node (not 404)')
  })
})
