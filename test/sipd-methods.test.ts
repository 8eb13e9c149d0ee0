// Methods and Max-Forwards at sipd itself, over the wire (RFC 3261 §8.2.1,
// §21.4.6, §21.5.2, §16.3 step 3, §10.3):
// - a method sipd does not know, addressed to sipd itself: 501 with Allow,
//   before any authentication, whatever the policy;
// - Allow (of the OPTIONS 200, the 405 and the 501) lists what sipd serves: a
//   registrar only on its defaults, every proxied method once it routes;
// - a known method sipd does not serve at that URI: 405 with Allow (sipd on
//   its defaults; a phone's out-of-dialog INFO through the default policy);
// - a REGISTER with Max-Forwards 0 for a domain our registrar serves is
//   processed (the registrar is the UAS), while a request to forward still
//   gets 483.
import t from 'tap'
import { createHash } from 'node:crypto'
import dgram from 'node:dgram'
import { parseMessage } from '@sipd/sip-parser'
import type { SipResponse } from '@sipd/sip-parser'
import { freePort } from './helpers/servers.js'
import { spawnSipd } from './helpers/spawn-sipd.js'

const PHONE = '127.0.0.71'

/** One UDP phone that sends requests and collects the responses until a final one (5 s at most). */
async function udpPeer (ip: string): Promise<{ port: number, ask: (lines: string[], sipdPort: number) => Promise<SipResponse[]>, close: () => void }> {
  const sock = dgram.createSocket('udp4')
  await new Promise<void>(resolve => sock.bind(0, ip, resolve))
  const port = sock.address().port
  let waiting: ((r: SipResponse) => void) | undefined
  sock.on('message', data => {
    const m = parseMessage(data)
    if (!m.isRequest) waiting?.(m)
  })
  return {
    port,
    ask: async (lines, sipdPort) => await new Promise<SipResponse[]>(resolve => {
      const got: SipResponse[] = []
      const timer = setTimeout(() => { waiting = undefined; resolve(got) }, 5000)
      waiting = r => {
        got.push(r)
        if (r.status >= 200) {
          clearTimeout(timer)
          waiting = undefined
          resolve(got)
        }
      }
      sock.send(Buffer.from(lines.join('\r\n') + '\r\nContent-Length: 0\r\n\r\n'), sipdPort, '127.0.0.1')
    }),
    close: () => { sock.close() }
  }
}

let seq = 0
function request (method: string, uri: string, port: number, extra: string[] = [], maxForwards = 70, user = 'alice'): string[] {
  const id = `m${++seq}-${Math.random().toString(16).slice(2)}`
  return [
    `${method} ${uri} SIP/2.0`,
    `Via: SIP/2.0/UDP ${PHONE}:${port};branch=z9hG4bK${id};rport`,
    `Max-Forwards: ${maxForwards}`,
    `From: <sip:${user}@example.test>;tag=${id}`,
    `To: <${method === 'REGISTER' ? `sip:${user}@example.test` : uri}>`,
    `Call-ID: ${id}@${PHONE}`,
    `CSeq: ${seq} ${method}`,
    ...extra
  ]
}

const finalOf = (rs: SipResponse[]): SipResponse | undefined => rs.find(r => r.status >= 200)

/** The Allow line as sent (header() gives one element of a comma list). */
const allowOf = (r: SipResponse | undefined): string | undefined => /^Allow: *(.*)\r$/m.exec(r?.raw.toString('latin1') ?? '')?.[1]

t.test('sipd on its defaults (a registrar only)', async t => {
  const port = await freePort('127.0.0.1', 'udp')
  const http = await freePort('127.0.0.1', 'tcp')
  const sipd = await spawnSipd({ configYaml: `listen: ["udp:127.0.0.1:${port}"]\nhttp: "127.0.0.1:${http}"\nlog_level: warn\n` })
  t.teardown(async () => { await sipd.stop() })
  const phone = await udpPeer(PHONE)
  t.teardown(phone.close)
  const self = `sip:127.0.0.1:${port}`

  const foo = finalOf(await phone.ask(request('FOO', self, phone.port), port))
  t.equal(foo?.status, 501, 'FOO to sipd itself: 501 Not Implemented')
  t.equal(allowOf(foo), 'OPTIONS, REGISTER', 'with the methods sipd serves here, a registrar only')
  const invite = finalOf(await phone.ask(request('INVITE', self, phone.port), port))
  t.equal(invite?.status, 405, 'an INVITE to sipd itself, which only registers: 405 Method Not Allowed')
  t.equal(allowOf(invite), 'OPTIONS, REGISTER', 'with what sipd does at its own URI')
  const user = finalOf(await phone.ask(request('FOO', `sip:bob@127.0.0.1:${port}`, phone.port), port))
  t.equal(user?.status, 404, 'FOO to a user: not sipd itself, 404 as before')
  const opts = finalOf(await phone.ask(request('OPTIONS', self, phone.port), port))
  t.equal(opts?.status, 200, 'sipd still answers OPTIONS')
  t.equal(allowOf(opts), 'OPTIONS, REGISTER', 'its Allow says what the 405 says (RFC 3261 §11.2)')
})

t.test('sipd with a domain, subscribers and a media set (the default policy)', async t => {
  const port = await freePort('127.0.0.1', 'udp')
  const http = await freePort('127.0.0.1', 'tcp')
  const sipd = await spawnSipd({
    configYaml: `
listen: ["udp:127.0.0.1:${port}"]
http: "127.0.0.1:${http}"
log_level: warn
domains: ["example.test"]
subscribers:
  users:
    - { user: alice, domain: example.test, password: alice-secret }
media:
  probe: { interval_ms: 3600000 }
  sets:
    - { id: 1, nodes: [{ uri: "sip:127.0.0.72:5999" }] }
`
  })
  t.teardown(async () => { await sipd.stop() })
  const phone = await udpPeer(PHONE)
  t.teardown(phone.close)

  for (const uri of ['sip:example.test', `sip:127.0.0.1:${port}`]) {
    for (const method of ['FOO', 'PUBLISH']) {
      const r = finalOf(await phone.ask(request(method, uri, phone.port), port))
      t.equal(r?.status, 501, `${method} ${uri}: 501, not a 407 challenge`)
      t.match(allowOf(r), /^INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER/, 'with Allow: every method sipd proxies')
    }
  }
  const opts = finalOf(await phone.ask(request('OPTIONS', `sip:127.0.0.1:${port}`, phone.port), port))
  t.equal(allowOf(opts), allowOf(finalOf(await phone.ask(request('FOO', `sip:127.0.0.1:${port}`, phone.port), port))), 'OPTIONS and 501 agree on Allow')
  const info = finalOf(await phone.ask(request('INFO', 'sip:bob@example.test', phone.port), port))
  t.equal(info?.status, 405, 'a phone\'s INFO outside a dialog: 405, the policy does not take it')
  t.equal(allowOf(info), 'INVITE, ACK, CANCEL, MESSAGE, SUBSCRIBE, REFER')
  const call = finalOf(await phone.ask(request('INVITE', 'sip:bob@example.test', phone.port), port))
  t.equal(call?.status, 407, 'an INVITE from a phone is still challenged')
  const foreign = finalOf(await phone.ask(request('FOO', 'sip:bob@example.test', phone.port, [], 70, 'mallory').map(l => l.replace('@example.test>;tag', '@evil.test>;tag')), port))
  t.equal(foreign?.status, 403, 'an unknown method for a user, From another domain: still refused as a relay')

  await t.test('REGISTER with Max-Forwards 0 to our registrar is processed', async t => {
    const contact = `Contact: <sip:alice@${PHONE}:${phone.port}>`
    const first = finalOf(await phone.ask(request('REGISTER', 'sip:example.test', phone.port, [contact, 'Expires: 60'], 0), port))
    t.equal(first?.status, 401, 'challenged (RFC 3261 §10.3), not 483')
    const challenge = first?.header('WWW-Authenticate') ?? ''
    const nonce = /nonce="([^"]+)"/.exec(challenge)?.[1] ?? ''
    const md5 = (s: string): string => createHash('md5').update(s).digest('hex')
    const ha1 = md5('alice:example.test:alice-secret')
    const response = md5(`${ha1}:${nonce}:${md5('REGISTER:sip:example.test')}`)
    const auth = `Authorization: Digest username="alice", realm="example.test", nonce="${nonce}", uri="sip:example.test", response="${response}", algorithm=MD5`
    const ok = finalOf(await phone.ask(request('REGISTER', 'sip:example.test', phone.port, [contact, 'Expires: 60', auth], 0), port))
    t.equal(ok?.status, 200, 'registered with Max-Forwards 0')
    t.match(ok?.header('Contact'), `sip:alice@${PHONE}:${phone.port}`, 'the binding is stored')
    const fwd = finalOf(await phone.ask(request('INVITE', 'sip:alice@example.test', phone.port, [], 0), port))
    t.equal(fwd?.status, 483, 'an INVITE sipd would forward with Max-Forwards 0: 483 (§16.3 step 3)')
    const elsewhere = finalOf(await phone.ask(request('REGISTER', 'sip:elsewhere.test', phone.port, [contact], 0), port))
    t.equal(elsewhere?.status, 403, 'a REGISTER for a domain not served is the registrar\'s too (403), nothing is forwarded')
  })
})
