// A routing module written in TypeScript (`routing: route-module.ts`, no
// build step) replaces the default policy, and each of its decisions is
// carried out by sipd's stateful proxy: reply, drop, forward to explicit
// targets, fork to an AOR's registered contacts, a media set, a trunk route
// and the default policy (issue 4: "reply, forward to targets, fork, use a
// media set, use a trunk route").
//
// Loopback addresses 127.0.0.160–127.0.0.166 are this file's own.
import t from 'tap'
import type { Test } from 'tap'
import dgram from 'node:dgram'
import { createHash } from 'node:crypto'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort } from './helpers/servers.js'
import { spawnSipd } from './helpers/spawn-sipd.js'
import { delay } from './helpers/process.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const moduleFile = path.join(here, 'fixtures', 'route-module.ts')

/** A UDP SIP endpoint on its own loopback address that records what it receives and may answer requests. */
interface Peer {
  readonly address: string
  readonly port: number
  readonly received: string[]
  send (text: string, port: number, host?: string): void
  /** Resolves with the first received message matching `pred`, or undefined after `ms`. */
  waitFor (pred: (m: string) => boolean, ms?: number): Promise<string | undefined>
}

function headerOf (msg: string, name: string): string | undefined {
  for (const line of msg.split('\r\n')) {
    const c = line.indexOf(':')
    if (c > 0 && line.slice(0, c).trim().toLowerCase() === name.toLowerCase()) return line.slice(c + 1).trim()
  }
  return undefined
}

/** Answer every request but ACK with `status` (INVITE 200 with a To tag and Contact), copying Via/From/To/Call-ID/CSeq. */
function answer (msg: string, status: number, self: { address: string, port: number }): string {
  const lines = msg.split('\r\n')
  const out = [`SIP/2.0 ${status} ${status === 200 ? 'OK' : 'Whatever'}`]
  for (const l of lines.slice(1)) {
    const name = l.slice(0, l.indexOf(':')).trim().toLowerCase()
    if (name === 'via' || name === 'from' || name === 'call-id' || name === 'cseq' || name === 'record-route') out.push(l)
    else if (name === 'to') out.push(l.includes(';tag=') ? l : l + ';tag=peer' + self.port)
  }
  out.push(`Contact: <sip:peer@${self.address}:${self.port}>`, 'Content-Length: 0', '', '')
  return out.join('\r\n')
}

/** Answers requests: a status for every request but ACK, or a function that replies as it likes. */
type Responder = number | ((text: string, reply: (status: number, to?: string) => void, received: string[]) => void)

async function peer (t: Test, address: string, status?: Responder): Promise<Peer> {
  const sock = dgram.createSocket('udp4')
  await new Promise<void>(resolve => sock.bind(0, address, () => resolve()))
  t.teardown(() => { sock.close() })
  const received: string[] = []
  const waiters: Array<() => void> = []
  const port = sock.address().port
  sock.on('message', (m, rinfo) => {
    const text = m.toString('latin1')
    received.push(text)
    if (status !== undefined && !text.startsWith('SIP/2.0') && !text.startsWith('ACK ')) {
      const reply = (code: number, to = text): void => { sock.send(answer(to, code, { address, port }), rinfo.port, rinfo.address) }
      if (typeof status === 'number') reply(status)
      else status(text, reply, received)
    }
    for (const w of waiters.splice(0)) w()
  })
  return {
    address,
    port,
    received,
    send (text, p, host = '127.0.0.1') { sock.send(text, p, host) },
    async waitFor (pred, ms = 4000) {
      const end = Date.now() + ms
      for (;;) {
        const hit = received.find(pred)
        if (hit !== undefined || Date.now() >= end) return hit
        await Promise.race([new Promise<void>(resolve => waiters.push(resolve)), delay(Math.max(1, end - Date.now()))])
      }
    }
  }
}

let seq = 0
function request (method: string, uri: string, from: Peer, extra: string[] = []): { text: string, callId: string } {
  const n = ++seq
  const callId = `rm-${n}-${process.pid}@test`
  const text = [
    `${method} ${uri} SIP/2.0`,
    `Via: SIP/2.0/UDP ${from.address}:${from.port};branch=z9hG4bK-rm-${n}-${process.pid};rport`,
    `From: <sip:caller@elsewhere.test>;tag=c${n}`,
    `To: <${uri}>`,
    `Call-ID: ${callId}`,
    `CSeq: 1 ${method}`,
    'Max-Forwards: 70',
    `Contact: <sip:caller@${from.address}:${from.port}>`,
    ...extra,
    'Content-Length: 0',
    '', ''
  ].join('\r\n')
  return { text, callId }
}

const md5 = (s: string): string => createHash('md5').update(s).digest('hex')

t.test('a TypeScript routing module: every decision carried out by the proxy', async t => {
  const port = await freePort('127.0.0.1', 'udp')
  const http = await freePort('127.0.0.1', 'tcp')
  const caller = await peer(t, '127.0.0.160')
  const media = await peer(t, '127.0.0.161', 200)
  const gateway = await peer(t, '127.0.0.162', 200)
  const direct = await peer(t, '127.0.0.164', 200)
  const phone = await peer(t, '127.0.0.165', 200)
  const sipd = await spawnSipd({
    configYaml: [
      `listen: ["udp:127.0.0.1:${port}"]`,
      `http: "127.0.0.1:${http}"`,
      'domains: ["example.test"]',
      'subscribers: { users: [{ user: alice, domain: example.test, password: alice-secret }] }',
      `media: { sets: [{ id: b, algorithm: round-robin, nodes: [{ uri: "sip:${media.address}:${media.port}" }] }], probe: { interval_ms: 600000 } }`,
      `trunks: { gateways: [{ id: gw, uri: "sip:${gateway.address}:${gateway.port}" }], routes: [{ prefix: "1", gateways: [gw] }] }`,
      `routing: ${JSON.stringify(moduleFile)}`
    ].join('\n') + '\n',
    env: { ROUTE_DIRECT: `${direct.address}:${direct.port}` }
  })
  t.teardown(async () => { await sipd.stop() })

  /** Sends `req` from the caller and waits for its final response. */
  async function call (req: { text: string, callId: string }, ms = 4000): Promise<string | undefined> {
    caller.send(req.text, port)
    return await caller.waitFor(m => m.startsWith('SIP/2.0 ') && !m.startsWith('SIP/2.0 1') && m.includes(req.callId), ms)
  }

  await t.test('reply: the module answers with its own header', async t => {
    const res = await call(request('OPTIONS', 'sip:ping@elsewhere.test', caller))
    t.match(res, /^SIP\/2\.0 200 /, '200')
    t.equal(headerOf(res ?? '', 'X-Routed-By'), 'route-module.ts', 'the header the module added')
  })

  await t.test('trunk: the number after the 9 goes to the route\'s gateway', async t => {
    const req = request('INVITE', 'sip:91555@127.0.0.1', caller)
    const res = await call(req)
    t.match(res, /^SIP\/2\.0 200 /, 'the gateway\'s 200 comes back')
    const got = await gateway.waitFor(m => m.includes(req.callId))
    t.match(got, new RegExp(`^INVITE sip:1555@${gateway.address.replaceAll('.', '\\.')}:${gateway.port} SIP/2\\.0`), 'Request-URI rewritten to the number at the gateway')
    t.match(headerOf(got ?? '', 'Record-Route'), /;lr/, 'sipd record-routes')
  })

  await t.test('media: the named set', async t => {
    const req = request('INVITE', 'sip:media@127.0.0.1', caller)
    t.match(await call(req), /^SIP\/2\.0 200 /, '200')
    t.ok(await media.waitFor(m => m.startsWith('INVITE ') && m.includes(req.callId)), 'the media node of set b got the INVITE')
  })

  await t.test('forward: to the explicit target', async t => {
    const req = request('INVITE', 'sip:direct@127.0.0.1', caller)
    t.match(await call(req), /^SIP\/2\.0 200 /, '200')
    const got = await direct.waitFor(m => m.includes(req.callId))
    t.match(got, /^INVITE sip:direct@127\.0\.0\.164:\d+ SIP\/2\.0/, 'the target\'s Request-URI')
    t.equal(headerOf(got ?? '', 'Max-Forwards'), '69', 'Max-Forwards decremented')
  })

  await t.test('fork: the module looks alice up; without bindings it answers, with one it forks', async t => {
    t.match(await call(request('INVITE', 'sip:alice@127.0.0.1', caller)), /^SIP\/2\.0 480 Alice Away/, 'no bindings: the module\'s 480')

    // The phone registers with digest (RFC 3261 §22.4).
    const reg = (extra: string[]): { text: string, callId: string } => {
      const r = request('REGISTER', 'sip:example.test', phone, ['Expires: 300', ...extra])
      return { text: r.text.replace(/^To: .*$/m, 'To: <sip:alice@example.test>').replace(/^From: .*$/m, 'From: <sip:alice@example.test>;tag=reg').replace(/^Call-ID: .*$/m, `Call-ID: reg-${process.pid}@test`).replace(/^CSeq: 1/m, `CSeq: ${seq}`), callId: `reg-${process.pid}@test` }
    }
    phone.send(reg([]).text, port)
    const challenge = await phone.waitFor(m => m.startsWith('SIP/2.0 401'))
    const www = headerOf(challenge ?? '', 'WWW-Authenticate') ?? ''
    const realm = /realm="([^"]+)"/.exec(www)?.[1] ?? ''
    const nonce = /nonce="([^"]+)"/.exec(www)?.[1] ?? ''
    const opaque = /opaque="([^"]+)"/.exec(www)?.[1]
    const ha1 = md5(`alice:${realm}:alice-secret`)
    const response = md5(`${ha1}:${nonce}:00000001:abc:auth:${md5('REGISTER:sip:example.test')}`)
    phone.send(reg([`Authorization: Digest username="alice", realm="${realm}", nonce="${nonce}", uri="sip:example.test", response="${response}", algorithm=MD5, qop=auth, nc=00000001, cnonce="abc"${opaque !== undefined ? `, opaque="${opaque}"` : ''}`]).text, port)
    t.ok(await phone.waitFor(m => m.startsWith('SIP/2.0 200')), 'registered')

    const req = request('INVITE', 'sip:alice@127.0.0.1', caller)
    t.match(await call(req), /^SIP\/2\.0 200 /, 'the phone\'s 200 comes back')
    const got = await phone.waitFor(m => m.startsWith('INVITE ') && m.includes(req.callId))
    t.match(got, new RegExp(`^INVITE sip:caller@${phone.address.replaceAll('.', '\\.')}:${phone.port} SIP/2\\.0`), 'the registered contact is the Request-URI')
  })

  await t.test('default: the default policy (an unknown caller to a foreign domain gets 403)', async t => {
    t.match(await call(request('INVITE', 'sip:someone@elsewhere.test', caller)), /^SIP\/2\.0 403 /, '403 from the default policy')
  })

  await t.test('drop: no final answer', async t => {
    const req = request('MESSAGE', 'sip:quiet@127.0.0.1', caller)
    t.equal(await call(req, 1200), undefined, 'nothing within 1.2 s')
  })

  await t.test('an unknown decision is a 500 and a logged module error', async t => {
    t.match(await call(request('INVITE', 'sip:bogus@127.0.0.1', caller)), /^SIP\/2\.0 500 /, '500')
    // pino writes asynchronously: the line may follow the response by a moment.
    const end = Date.now() + 3000
    while (!/routing module failed/.test(sipd.logs()) && Date.now() < end) await delay(20)
    t.match(sipd.logs(), /routing module failed/, 'logged')
  })

  await t.test('CANCEL is sipd\'s: the pending branch is cancelled and the INVITE ends 487', async t => {
    // A node that rings and only ends the INVITE when it is CANCELled (RFC 3261 §9.2).
    const ringing = await peer(t, '127.0.0.166', (text, reply, received) => {
      if (text.startsWith('INVITE ')) reply(180)
      if (text.startsWith('CANCEL ')) {
        reply(200)
        const invite = received.find(m => m.startsWith('INVITE ') && m.includes(headerOf(text, 'Call-ID')!))
        if (invite !== undefined) reply(487, invite)
      }
    })
    const req = request('INVITE', 'sip:direct@127.0.0.1', caller, [`X-Target: ${ringing.address}:${ringing.port}`])
    caller.send(req.text, port)
    t.ok(await caller.waitFor(m => m.startsWith('SIP/2.0 180') && m.includes(req.callId)), '180 from the node comes back')
    const cancel = req.text.split('\r\n').filter(l => !l.startsWith('Contact:') && !l.startsWith('X-Target:')).join('\r\n')
      .replace(/^INVITE /, 'CANCEL ').replace(/^CSeq: 1 INVITE/m, 'CSeq: 1 CANCEL')
    caller.send(cancel, port)
    t.ok(await caller.waitFor(m => m.startsWith('SIP/2.0 200') && m.includes('CSeq: 1 CANCEL') && m.includes(req.callId)), 'the CANCEL gets 200 from sipd')
    t.ok(await ringing.waitFor(m => m.startsWith('CANCEL ') && m.includes(req.callId)), 'sipd CANCELled the branch at the node')
    t.ok(await caller.waitFor(m => m.startsWith('SIP/2.0 487') && m.includes(req.callId)), 'the INVITE ends 487')
  })
})
