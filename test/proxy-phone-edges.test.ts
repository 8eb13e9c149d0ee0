// Phone-side checks an operator makes in the first hour, every party a
// scripted socket (test/helpers/sip-party.ts), sipd on the walk-through
// config (a media node, subscribers with digest):
// - a phone behind NAT (its Via and Contact name a private address, its
//   packets come from another address and port, Via with rport) registers
//   and gets the media node's call at the address its REGISTER came from;
//   a reliable 183 (RFC 3262) and its PRACK, the 200, ACK, an UPDATE and a
//   re-INVITE from the phone, INFO and MESSAGE from the media node and the
//   phone's BYE all cross sipd by the Record-Route set, each request toward
//   the phone reaching it through its NAT binding although its Contact is
//   private (RFC 5626 flow token in sipd's Record-Route);
// - a phone behind NAT calls out: the media node's re-INVITE and BYE reach
//   it through its NAT binding (sipd's Record-Route toward it names the flow
//   its INVITE came on: its Via's sent-by was not its source);
// - phone to phone (a routing module forks to the callee's contacts): the
//   NATed phone calls the TCP phone, each side's requests reach the other on
//   its own flow (two Record-Route entries, one flow each);
// - a TCP caller that listens on its Contact and closes its connection
//   after the call is set up: the media node's BYE still reaches it, on a
//   new connection to its Contact (a caller's flow that is gone is not a
//   registered one: no 430);
// - a phone registered over TCP SUBSCRIBEs (digest, RFC 3261 §22.3) through
//   sipd to the media node, and the media node's NOTIFYs come down the
//   phone's own connection (RFC 6665 dialog, RFC 5626 §5.3 flow reuse).
import t from 'tap'
import { createHash } from 'node:crypto'
import net from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { StreamParser } from '@sipd/sip-parser'
import type { SipRequest } from '@sipd/sip-parser'
import { freePort } from './helpers/servers.js'
import { metricValue, spawnSipd } from './helpers/spawn-sipd.js'
import { SipParty } from './helpers/sip-party.js'
import type { Received } from './helpers/sip-party.js'

const FORK_MODULE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'phone-fork.mjs')
const SIPD = '127.0.0.210'
const MEDIA = '127.0.0.211'
const NAT_PHONE = '127.0.0.212'
const TCP_PHONE = '127.0.0.213'
/** The address the NATed phone believes it has. */
const PRIVATE = '192.168.1.10:5060'
const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n'

let n = 0
const id = (): string => `${++n}-${Math.random().toString(16).slice(2, 10)}`
const md5 = (s: string): string => createHash('md5').update(s).digest('hex')

/** Route lines for a request in the dialog: the Record-Route set as the caller (`reverse`) or callee sees it (RFC 3261 §12.1). */
function routeLines (m: Received, reverse: boolean): string[] {
  const rr = (m as SipRequest).recordRoute.map(r => r.raw)
  return (reverse ? rr.reverse() : rr).map(r => `Route: ${r}`)
}

/** An Authorization / Proxy-Authorization value answering `challenge` (MD5, qop=auth). */
function digest (challenge: string, user: string, password: string, method: string, uri: string): string {
  const p = (k: string): string | undefined => new RegExp(`${k}="?([^",]*)"?`).exec(challenge)?.[1]
  const realm = p('realm')!
  const nonce = p('nonce')!
  const opaque = p('opaque')
  const cnonce = id()
  const ha1 = md5(`${user}:${realm}:${password}`)
  const response = md5(`${ha1}:${nonce}:00000001:${cnonce}:auth:${md5(`${method}:${uri}`)}`)
  return `Digest username="${user}", realm="${realm}", nonce="${nonce}", uri="${uri}", response="${response}", algorithm=MD5, qop=auth, nc=00000001, cnonce="${cnonce}"` +
    (opaque !== undefined ? `, opaque="${opaque}"` : '')
}

t.test('phones behind NAT and on TCP through sipd', async t => {
  const port = await freePort(SIPD, 'both')
  const http = await freePort(SIPD, 'tcp')
  const mediaPort = await freePort(MEDIA, 'udp')
  const sipd = await spawnSipd({
    configYaml: `
listen: ["udp:${SIPD}:${port}", "tcp:${SIPD}:${port}"]
http: "${SIPD}:${http}"
log_level: warn
routing: ${JSON.stringify(FORK_MODULE)}
domains: ["example.test"]
subscribers:
  users:
    - { user: alice, domain: example.test, password: alice-secret }
    - { user: bob, domain: example.test, password: bob-secret }
media:
  probe: { interval_ms: 3600000 }
  sets:
    - { id: 1, nodes: [{ uri: "sip:${MEDIA}:${mediaPort}" }] }
`
  })
  t.teardown(async () => { await sipd.stop() })
  const node = await SipParty.udpAt(MEDIA, mediaPort, port, SIPD)
  t.teardown(() => { node.close() })

  /** REGISTER with digest from `phone`, whose Via / Contact say `sentBy`; the 200. */
  const register = async (phone: SipParty, user: string, password: string, sentBy: string): Promise<Received | undefined> => {
    const callId = `r-${id()}`
    const lines = (cseq: number): string[] => [
      'REGISTER sip:example.test SIP/2.0',
      `Via: SIP/2.0/${phone.transport.toUpperCase()} ${sentBy};branch=z9hG4bK${id()};rport`,
      'Max-Forwards: 70',
      `From: <sip:${user}@example.test>;tag=r${callId}`,
      `To: <sip:${user}@example.test>`,
      `Call-ID: ${callId}`,
      `CSeq: ${cseq} REGISTER`,
      `Contact: <sip:${user}@${sentBy}${phone.transport === 'tcp' ? ';transport=tcp' : ''}>;expires=300`
    ]
    phone.send(lines(1))
    const challenge = await phone.response('REGISTER', 401, 401, callId)
    if (challenge === undefined) return undefined
    phone.send([...lines(2), `Authorization: ${digest(challenge.header('WWW-Authenticate')!, user, password, 'REGISTER', 'sip:example.test')}`])
    return await phone.response('REGISTER', 200, 200, callId)
  }

  await t.test('a phone behind NAT: call with PRACK, UPDATE, INFO, MESSAGE, re-INVITE and BYE', async t => {
    const phone = await SipParty.udp(NAT_PHONE, port, SIPD)
    t.teardown(() => { phone.close() })
    const ok = await register(phone, 'alice', 'alice-secret', PRIVATE)
    t.ok(ok, 'registered with digest')
    t.match(ok?.header('Via'), new RegExp(`received=${NAT_PHONE.replace(/\./g, '\\.')};|received=${NAT_PHONE.replace(/\./g, '\\.')}$|rport=${phone.port}`), 'the 200 names the phone\'s public address (RFC 3581)')

    const callId = `nat-${id()}`
    const caller = `<sip:+15550100@${MEDIA}>;tag=m${callId}`
    const mediaContact = `<sip:fs@${MEDIA}:${mediaPort}>`
    const phoneContact = `<sip:alice@${PRIVATE}>`
    node.send([
      'INVITE sip:alice@example.test SIP/2.0',
      `Via: SIP/2.0/UDP ${MEDIA}:${mediaPort};branch=z9hG4bK${id()};rport`,
      'Max-Forwards: 70',
      `From: ${caller}`,
      'To: <sip:alice@example.test>',
      `Call-ID: ${callId}`,
      'CSeq: 1 INVITE',
      `Contact: ${mediaContact}`,
      'Supported: 100rel',
      'Content-Type: application/sdp'
    ], SDP)
    const inv = await phone.request('INVITE', callId)
    t.ok(inv, 'the INVITE reached the phone at the address and port its REGISTER came from', { unread: phone.unread })
    if (inv === undefined) return
    t.equal(inv.text.split(' ')[1], `sip:alice@${PRIVATE}`, 'Request-URI: the registered Contact (§16.5)')

    // A reliable provisional (RFC 3262): the media node PRACKs it by the Route set.
    phone.reply(inv, 183, 'Session Progress', { toTag: 'p1', headers: [['Contact', phoneContact], ['Require', '100rel'], ['RSeq', '1']], body: SDP, contentType: 'application/sdp' })
    const p183 = await node.response('INVITE', 183, 183, callId)
    t.ok(p183, 'the media node gets the 183')
    t.equal(p183?.header('RSeq'), '1', 'with its RSeq')
    t.equal(p183?.header('Require'), '100rel', 'and Require: 100rel')
    const toPhone = (method: string, cseq: number, extra: string[] = []): string[] => [
      `${method} sip:alice@${PRIVATE} SIP/2.0`,
      `Via: SIP/2.0/UDP ${MEDIA}:${mediaPort};branch=z9hG4bK${id()};rport`,
      'Max-Forwards: 70',
      `From: ${caller}`,
      `To: ${p183!.header('To')!}`,
      `Call-ID: ${callId}`,
      `CSeq: ${cseq} ${method}`,
      ...routeLines(p183!, true),
      ...extra
    ]
    node.send(toPhone('PRACK', 2, ['RAck: 1 1 INVITE']))
    const prack = await phone.request('PRACK', callId)
    t.ok(prack, 'the PRACK reaches the phone through its NAT binding (its Contact is private)', { unread: phone.unread, logs: prack === undefined ? sipd.logs().slice(-2000) : '' })
    if (prack === undefined) return
    t.equal(prack.header('RAck'), '1 1 INVITE', 'RAck intact')
    phone.reply(prack, 200, 'OK')
    t.equal((await node.response('PRACK', 100, 699, callId))?.status, 200, 'the PRACK\'s 200 back to the media node')

    phone.reply(inv, 200, 'OK', { toTag: 'p1', headers: [['Contact', phoneContact]], body: SDP, contentType: 'application/sdp' })
    const answered = await node.response('INVITE', 200, 299, callId)
    t.ok(answered, 'the 200 reaches the media node')
    node.send(toPhone('ACK', 1))
    t.ok(await phone.request('ACK', callId), 'the ACK reaches the phone')

    // The phone's requests in the dialog: to the media node's Contact by the Record-Route set.
    const fromPhone = (method: string, cseq: number, extra: string[] = []): string[] => [
      `${method} sip:fs@${MEDIA}:${mediaPort} SIP/2.0`,
      `Via: SIP/2.0/UDP ${PRIVATE};branch=z9hG4bK${id()};rport`,
      'Max-Forwards: 70',
      `From: ${answered!.header('To')!}`,
      `To: ${caller}`,
      `Call-ID: ${callId}`,
      `CSeq: ${cseq} ${method}`,
      ...routeLines(inv, false),
      ...extra
    ]
    phone.send([...fromPhone('UPDATE', 1), `Contact: ${phoneContact}`, 'Content-Type: application/sdp'], SDP)
    const update = await node.request('UPDATE', callId)
    t.ok(update, 'the phone\'s UPDATE reaches the media node')
    node.reply(update!, 200, 'OK', { body: SDP, contentType: 'application/sdp' })
    t.equal((await phone.response('UPDATE', 100, 699, callId))?.status, 200, 'its 200 back through the NAT binding')

    node.send([...toPhone('INFO', 3), 'Content-Type: application/dtmf-relay'], 'Signal=5\r\nDuration=160\r\n')
    const info = await phone.request('INFO', callId)
    t.ok(info, 'INFO from the media node reaches the phone')
    t.equal(info?.body.toString(), 'Signal=5\r\nDuration=160\r\n', 'body intact')
    phone.reply(info!, 200, 'OK')
    t.equal((await node.response('INFO', 100, 699, callId))?.status, 200, 'the INFO\'s 200')

    node.send([...toPhone('MESSAGE', 4), 'Content-Type: text/plain'], 'hello')
    const message = await phone.request('MESSAGE', callId)
    t.ok(message, 'MESSAGE in the dialog reaches the phone')
    phone.reply(message!, 200, 'OK')
    t.equal((await node.response('MESSAGE', 100, 699, callId))?.status, 200, 'the MESSAGE\'s 200')

    phone.send([...fromPhone('INVITE', 2), `Contact: ${phoneContact}`, 'Content-Type: application/sdp'], SDP)
    const re = await node.request('INVITE', callId)
    t.ok(re, 'the phone\'s re-INVITE reaches the media node')
    node.reply(re!, 200, 'OK', { headers: [['Contact', mediaContact]], body: SDP, contentType: 'application/sdp' })
    t.ok(await phone.response('INVITE', 200, 299, callId), 'its 200 reaches the phone')
    phone.send(fromPhone('ACK', 2))
    t.ok(await node.request('ACK', callId), 'and the ACK the media node')

    phone.send(fromPhone('BYE', 3))
    const bye = await node.request('BYE', callId)
    t.ok(bye, 'the phone hangs up: BYE to the media node')
    node.reply(bye!, 200, 'OK')
    t.equal((await phone.response('BYE', 100, 699, callId))?.status, 200, 'the call ends')
  })

  await t.test('a phone behind NAT calls out: the media node\'s re-INVITE and BYE reach it', async t => {
    const phone = await SipParty.udp(NAT_PHONE, port, SIPD)
    t.teardown(() => { phone.close() })
    t.ok(await register(phone, 'alice', 'alice-secret', PRIVATE), 'registered with digest')
    const callId = `out-${id()}`
    const phoneContact = `<sip:alice@${PRIVATE}>`
    const invite = (cseq: number, extra: string[] = []): string[] => [
      'INVITE sip:5551234@example.test SIP/2.0',
      `Via: SIP/2.0/UDP ${PRIVATE};branch=z9hG4bK${id()};rport`,
      'Max-Forwards: 70',
      `From: <sip:alice@example.test>;tag=a${callId}`,
      'To: <sip:5551234@example.test>',
      `Call-ID: ${callId}`,
      `CSeq: ${cseq} INVITE`,
      `Contact: ${phoneContact}`,
      ...extra,
      'Content-Type: application/sdp'
    ]
    phone.send(invite(1), SDP)
    const challenge = await phone.response('INVITE', 407, 407, callId)
    t.ok(challenge, 'challenged (407)')
    phone.send([
      `ACK sip:5551234@example.test SIP/2.0`,
      `Via: ${challenge!.header('Via')!.replace(/;received=[^;]*|;rport=\d+/g, '').replace(/;rport$/, '') + ';rport'}`,
      'Max-Forwards: 70',
      `From: <sip:alice@example.test>;tag=a${callId}`,
      `To: ${challenge!.header('To')!}`,
      `Call-ID: ${callId}`,
      'CSeq: 1 ACK'
    ])
    phone.send(invite(2, [`Proxy-Authorization: ${digest(challenge!.header('Proxy-Authenticate')!, 'alice', 'alice-secret', 'INVITE', 'sip:5551234@example.test')}`]), SDP)
    const inv = await node.request('INVITE', callId)
    t.ok(inv, 'the call reaches the media node')
    if (inv === undefined) return
    const mediaContact = `<sip:fs@${MEDIA}:${mediaPort}>`
    node.reply(inv, 200, 'OK', { toTag: 'm1', headers: [['Contact', mediaContact]], body: SDP, contentType: 'application/sdp' })
    const ok = await phone.response('INVITE', 200, 299, callId)
    t.ok(ok, 'the phone gets the 200')
    const fromMedia = (method: string, cseq: number): string[] => [
      `${method} sip:alice@${PRIVATE} SIP/2.0`,
      `Via: SIP/2.0/UDP ${MEDIA}:${mediaPort};branch=z9hG4bK${id()};rport`,
      'Max-Forwards: 70',
      `From: ${ok!.header('To')!}`,
      `To: <sip:alice@example.test>;tag=a${callId}`,
      `Call-ID: ${callId}`,
      `CSeq: ${cseq} ${method}`,
      ...routeLines(inv, false)
    ]
    phone.send([
      `ACK sip:fs@${MEDIA}:${mediaPort} SIP/2.0`,
      `Via: SIP/2.0/UDP ${PRIVATE};branch=z9hG4bK${id()};rport`,
      'Max-Forwards: 70',
      `From: <sip:alice@example.test>;tag=a${callId}`,
      `To: ${ok!.header('To')!}`,
      `Call-ID: ${callId}`,
      'CSeq: 2 ACK',
      ...routeLines(ok!, true)
    ])
    t.ok(await node.request('ACK', callId), 'the ACK reaches the media node')
    node.send([...fromMedia('INVITE', 1), `Contact: ${mediaContact}`, 'Content-Type: application/sdp'], SDP)
    const re = await phone.request('INVITE', callId)
    t.ok(re, 'the media node\'s re-INVITE reaches the phone through its NAT binding, not at its private Contact', { unread: phone.unread })
    if (re !== undefined) {
      phone.reply(re, 200, 'OK', { headers: [['Contact', phoneContact]], body: SDP, contentType: 'application/sdp' })
      t.ok(await node.response('INVITE', 200, 299, callId), 'its 200 back to the media node')
      node.send(fromMedia('ACK', 1))
      t.ok(await phone.request('ACK', callId), 'and the ACK to the phone')
    }
    node.send(fromMedia('BYE', 2))
    const bye = await phone.request('BYE', callId)
    t.ok(bye, 'the media node hangs up: the BYE reaches the phone')
    if (bye === undefined) return
    phone.reply(bye, 200, 'OK')
    t.equal((await node.response('BYE', 100, 699, callId))?.status, 200, 'the call ends')
  })

  await t.test('a TCP caller closes its connection: the BYE reaches its Contact on a new one', async t => {
    // What the caller listens on: its Via's sent-by and its Contact.
    const got: string[] = []
    const server = net.createServer(c => {
      const parser = new StreamParser({ onMessage: m => { got.push(m.raw.toString('latin1')) }, onError: () => { c.destroy() } })
      c.on('data', d => { parser.push(d) })
      c.on('error', () => {})
    })
    await new Promise<void>(resolve => server.listen(0, TCP_PHONE, resolve))
    t.teardown(() => { server.close() })
    const listenPort = (server.address() as net.AddressInfo).port
    const phone = await SipParty.tcp(TCP_PHONE, port, SIPD)
    const sentBy = `${TCP_PHONE}:${listenPort}`
    const callId = `tcpgone-${id()}`
    const branch1 = `z9hG4bK${id()}`
    const invite = (cseq: number, branch: string, extra: string[] = []): string[] => [
      'INVITE sip:5551234@example.test SIP/2.0',
      `Via: SIP/2.0/TCP ${sentBy};branch=${branch};rport`,
      'Max-Forwards: 70',
      `From: <sip:bob@example.test>;tag=b${callId}`,
      'To: <sip:5551234@example.test>',
      `Call-ID: ${callId}`,
      `CSeq: ${cseq} INVITE`,
      `Contact: <sip:bob@${sentBy};transport=tcp>`,
      ...extra,
      'Content-Type: application/sdp'
    ]
    phone.send(invite(1, branch1), SDP)
    const challenge = await phone.response('INVITE', 407, 407, callId)
    t.ok(challenge, 'challenged (407)')
    phone.send([
      'ACK sip:5551234@example.test SIP/2.0',
      `Via: SIP/2.0/TCP ${sentBy};branch=${branch1};rport`,
      'Max-Forwards: 70',
      `From: <sip:bob@example.test>;tag=b${callId}`,
      `To: ${challenge!.header('To')!}`,
      `Call-ID: ${callId}`,
      'CSeq: 1 ACK'
    ])
    phone.send(invite(2, `z9hG4bK${id()}`, [`Proxy-Authorization: ${digest(challenge!.header('Proxy-Authenticate')!, 'bob', 'bob-secret', 'INVITE', 'sip:5551234@example.test')}`]), SDP)
    const inv = await node.request('INVITE', callId)
    t.ok(inv, 'the call reaches the media node')
    if (inv === undefined) return
    t.match(inv.header('Record-Route'), /^<sip:[^@>]+@[^>]*;lr;nat>$/, 'sipd\'s Record-Route names the caller\'s flow, marked as a caller\'s')
    node.reply(inv, 200, 'OK', { toTag: 'm1', headers: [['Contact', `<sip:fs@${MEDIA}:${mediaPort}>`]], body: SDP, contentType: 'application/sdp' })
    const ok = await phone.response('INVITE', 200, 299, callId)
    t.ok(ok, 'the caller gets the 200')
    phone.send([
      `ACK sip:fs@${MEDIA}:${mediaPort} SIP/2.0`,
      `Via: SIP/2.0/TCP ${sentBy};branch=z9hG4bK${id()};rport`,
      'Max-Forwards: 70',
      `From: <sip:bob@example.test>;tag=b${callId}`,
      `To: ${ok!.header('To')!}`,
      `Call-ID: ${callId}`,
      'CSeq: 2 ACK',
      ...routeLines(ok!, true)
    ])
    t.ok(await node.request('ACK', callId), 'the ACK reaches the media node')
    phone.close()
    await new Promise(resolve => setTimeout(resolve, 200))
    node.send([
      `BYE sip:bob@${sentBy};transport=tcp SIP/2.0`,
      `Via: SIP/2.0/UDP ${MEDIA}:${mediaPort};branch=z9hG4bK${id()};rport`,
      'Max-Forwards: 70',
      `From: ${ok!.header('To')!}`,
      `To: <sip:bob@example.test>;tag=b${callId}`,
      `Call-ID: ${callId}`,
      'CSeq: 1 BYE',
      ...routeLines(inv, false)
    ])
    const until = Date.now() + 3000
    while (!got.some(m => m.startsWith('BYE ')) && Date.now() < until) await new Promise(resolve => setTimeout(resolve, 20))
    t.ok(got.some(m => m.startsWith('BYE ') && m.includes(callId)), 'the BYE reaches the caller\'s Contact on a new connection')
    t.notOk(await node.response('BYE', 430, 430, callId, 200), 'not 430 Flow Failed')
  })

  await t.test('through a proxy (two Vias), a sent-by that is not the source names no flow', async t => {
    const proxy = await SipParty.udp(NAT_PHONE, port, SIPD)
    t.teardown(() => { proxy.close() })
    const callId = `hop-${id()}`
    const invite = (cseq: number, branch: string, extra: string[] = []): string[] => [
      'INVITE sip:5551234@example.test SIP/2.0',
      `Via: SIP/2.0/UDP ${PRIVATE};branch=${branch};rport`,
      `Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK-ua-${callId};rport`,
      'Max-Forwards: 69',
      `From: <sip:alice@example.test>;tag=h${callId}`,
      'To: <sip:5551234@example.test>',
      `Call-ID: ${callId}`,
      `CSeq: ${cseq} INVITE`,
      'Contact: <sip:alice@192.168.1.20:5060>',
      ...extra
    ]
    const branch1 = `z9hG4bK${id()}`
    proxy.send(invite(1, branch1))
    const challenge = await proxy.response('INVITE', 407, 407, callId)
    t.ok(challenge, 'challenged (407)')
    proxy.send([
      'ACK sip:5551234@example.test SIP/2.0',
      `Via: SIP/2.0/UDP ${PRIVATE};branch=${branch1};rport`,
      `Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK-ua-${callId};rport`,
      'Max-Forwards: 69',
      `From: <sip:alice@example.test>;tag=h${callId}`,
      `To: ${challenge!.header('To')!}`,
      `Call-ID: ${callId}`,
      'CSeq: 1 ACK'
    ])
    proxy.send(invite(2, `z9hG4bK${id()}`, [`Proxy-Authorization: ${digest(challenge!.header('Proxy-Authenticate')!, 'alice', 'alice-secret', 'INVITE', 'sip:5551234@example.test')}`]))
    const inv = await node.request('INVITE', callId)
    t.ok(inv, 'the call reaches the media node')
    if (inv === undefined) return
    t.notMatch(inv.header('Record-Route'), /@/, 'a plain Record-Route: the flow of a hop that is no UA is not assumed to reach the UA')
    node.reply(inv, 486, 'Busy Here', { toTag: 'm1' })
    t.ok(await node.request('ACK', callId), 'sipd ACKs the 486')
  })

  await t.test('a phone on TCP: SUBSCRIBE with digest, NOTIFYs down its connection', async t => {
    const phone = await SipParty.tcp(TCP_PHONE, port, SIPD)
    t.teardown(() => { phone.close() })
    // Its Contact names a port nothing listens on: NOTIFYs can only come down this connection.
    const sentBy = `${TCP_PHONE}:9`
    t.ok(await register(phone, 'bob', 'bob-secret', sentBy), 'registered over TCP with digest')
    const connected = await metricValue(sipd, 'sipd_tcp_connection_events_total{event="connected"}')

    const callId = `sub-${id()}`
    const phoneContact = `<sip:bob@${sentBy};transport=tcp>`
    const subscribe = (cseq: number, extra: string[] = []): string[] => [
      'SUBSCRIBE sip:bob@example.test SIP/2.0',
      `Via: SIP/2.0/TCP ${sentBy};branch=z9hG4bK${id()};rport`,
      'Max-Forwards: 70',
      `From: <sip:bob@example.test>;tag=s${callId}`,
      'To: <sip:bob@example.test>',
      `Call-ID: ${callId}`,
      `CSeq: ${cseq} SUBSCRIBE`,
      `Contact: ${phoneContact}`,
      'Event: message-summary',
      'Accept: application/simple-message-summary',
      'Expires: 600',
      ...extra
    ]
    phone.send(subscribe(1))
    const challenge = await phone.response('SUBSCRIBE', 407, 407, callId)
    t.ok(challenge, 'the SUBSCRIBE is challenged (407)')
    phone.send(subscribe(2, [`Proxy-Authorization: ${digest(challenge!.header('Proxy-Authenticate')!, 'bob', 'bob-secret', 'SUBSCRIBE', 'sip:bob@example.test')}`]))
    const sub = await node.request('SUBSCRIBE', callId)
    t.ok(sub, 'the authenticated SUBSCRIBE reaches the media node', { unread: phone.unread })
    if (sub === undefined) return
    t.notMatch(sub.text, /Proxy-Authorization/i, 'without the credentials meant for sipd')
    t.ok(sub.recordRoute.length >= 1, 'sipd record-routes the subscription')
    const mediaContact = `<sip:mwi@${MEDIA}:${mediaPort}>`
    node.reply(sub, 200, 'OK', { toTag: 'n1', copyRecordRoute: true, headers: [['Contact', mediaContact], ['Expires', '600']] })
    const subOk = await phone.response('SUBSCRIBE', 200, 299, callId)
    t.ok(subOk, 'the 200 reaches the phone')

    const notify = (cseq: number, state: string): string[] => [
      `NOTIFY sip:bob@${sentBy};transport=tcp SIP/2.0`,
      `Via: SIP/2.0/UDP ${MEDIA}:${mediaPort};branch=z9hG4bK${id()};rport`,
      'Max-Forwards: 70',
      `From: <sip:bob@example.test>;tag=n1`,
      `To: <sip:bob@example.test>;tag=s${callId}`,
      `Call-ID: ${callId}`,
      `CSeq: ${cseq} NOTIFY`,
      `Contact: ${mediaContact}`,
      ...routeLines(sub, false),
      'Event: message-summary',
      `Subscription-State: ${state}`,
      'Content-Type: application/simple-message-summary'
    ]
    node.send(notify(1, 'active;expires=600'), 'Messages-Waiting: yes\r\n')
    const n1 = await phone.request('NOTIFY', callId)
    t.ok(n1, 'the NOTIFY comes down the phone\'s TCP connection', { unread: phone.unread, logs: n1 === undefined ? sipd.logs().slice(-2000) : '' })
    if (n1 === undefined) return
    t.equal(n1.body.toString(), 'Messages-Waiting: yes\r\n', 'body intact')
    phone.reply(n1, 200, 'OK')
    t.equal((await node.response('NOTIFY', 100, 699, callId))?.status, 200, 'the NOTIFY\'s 200 back to the media node')

    // The phone ends the subscription (Expires: 0) in the dialog; the final NOTIFY follows.
    phone.send([
      `SUBSCRIBE sip:mwi@${MEDIA}:${mediaPort} SIP/2.0`,
      `Via: SIP/2.0/TCP ${sentBy};branch=z9hG4bK${id()};rport`,
      'Max-Forwards: 70',
      `From: <sip:bob@example.test>;tag=s${callId}`,
      `To: ${subOk!.header('To')!}`,
      `Call-ID: ${callId}`,
      'CSeq: 3 SUBSCRIBE',
      `Contact: ${phoneContact}`,
      ...routeLines(subOk!, true),
      'Event: message-summary',
      'Expires: 0'
    ])
    const unsub = await node.request('SUBSCRIBE', callId)
    t.ok(unsub, 'the unsubscribe reaches the media node by the Route set')
    node.reply(unsub!, 200, 'OK', { headers: [['Expires', '0']] })
    t.equal((await phone.response('SUBSCRIBE', 100, 699, callId))?.status, 200, 'and is answered')
    node.send(notify(2, 'terminated;reason=timeout'))
    const n2 = await phone.request('NOTIFY', callId)
    t.ok(n2, 'the final NOTIFY reaches the phone')
    phone.reply(n2!, 200, 'OK')
    t.equal((await node.response('NOTIFY', 100, 699, callId))?.status, 200, 'and its 200 the media node')
    t.equal(await metricValue(sipd, 'sipd_tcp_connection_events_total{event="connected"}'), connected, 'sipd opened no connection: the phone\'s own carried every NOTIFY')
  })
  await t.test('phone to phone: the NATed phone calls the TCP phone, each reached on its own flow', async t => {
    const a = await SipParty.udp(NAT_PHONE, port, SIPD)
    t.teardown(() => { a.close() })
    const b = await SipParty.tcp(TCP_PHONE, port, SIPD)
    t.teardown(() => { b.close() })
    const bSentBy = `${TCP_PHONE}:9`
    t.ok(await register(a, 'alice', 'alice-secret', PRIVATE), 'alice registered (UDP, behind NAT)')
    t.ok(await register(b, 'bob', 'bob-secret', bSentBy), 'bob registered (TCP)')
    const callId = `p2p-${id()}`
    const aContact = `<sip:alice@${PRIVATE}>`
    const bContact = `<sip:bob@${bSentBy};transport=tcp>`
    const aFrom = `<sip:alice@example.test>;tag=a${callId}`
    a.send([
      'INVITE sip:bob@example.test SIP/2.0',
      `Via: SIP/2.0/UDP ${PRIVATE};branch=z9hG4bK${id()};rport`,
      'Max-Forwards: 70',
      `From: ${aFrom}`,
      'To: <sip:bob@example.test>',
      `Call-ID: ${callId}`,
      'CSeq: 1 INVITE',
      `Contact: ${aContact}`,
      'Content-Type: application/sdp'
    ], SDP)
    const inv = await b.request('INVITE', callId)
    t.ok(inv, 'bob gets the INVITE on his connection', { unread: b.unread })
    if (inv === undefined) return
    t.equal(inv.recordRoute.length, 2, 'two Record-Route entries: one names each phone\'s flow')
    b.reply(inv, 200, 'OK', { toTag: 'b1', headers: [['Contact', bContact]], body: SDP, contentType: 'application/sdp' })
    const ok = await a.response('INVITE', 200, 299, callId)
    t.ok(ok, 'alice gets the 200')
    if (ok === undefined) return
    const aRequest = (method: string, cseq: number): string[] => [
      `${method} sip:bob@${bSentBy};transport=tcp SIP/2.0`,
      `Via: SIP/2.0/UDP ${PRIVATE};branch=z9hG4bK${id()};rport`,
      'Max-Forwards: 70',
      `From: ${aFrom}`,
      `To: ${ok.header('To')!}`,
      `Call-ID: ${callId}`,
      `CSeq: ${cseq} ${method}`,
      ...routeLines(ok, true)
    ]
    const bRequest = (method: string, cseq: number): string[] => [
      `${method} sip:alice@${PRIVATE} SIP/2.0`,
      `Via: SIP/2.0/TCP ${bSentBy};branch=z9hG4bK${id()};rport`,
      'Max-Forwards: 70',
      `From: ${ok.header('To')!}`,
      `To: ${aFrom}`,
      `Call-ID: ${callId}`,
      `CSeq: ${cseq} ${method}`,
      ...routeLines(inv, false)
    ]
    a.send(aRequest('ACK', 1))
    t.ok(await b.request('ACK', callId), 'the ACK reaches bob on his connection')
    b.send([...bRequest('INVITE', 1), `Contact: ${bContact}`, 'Content-Type: application/sdp'], SDP)
    const re = await a.request('INVITE', callId)
    t.ok(re, 'bob\'s re-INVITE reaches alice through her NAT binding', { unread: a.unread })
    if (re !== undefined) {
      a.reply(re, 200, 'OK', { headers: [['Contact', aContact]], body: SDP, contentType: 'application/sdp' })
      t.ok(await b.response('INVITE', 200, 299, callId), 'its 200 reaches bob')
      b.send(bRequest('ACK', 1))
      t.ok(await a.request('ACK', callId), 'and the ACK alice')
    }
    a.send(aRequest('BYE', 2))
    const bye = await b.request('BYE', callId)
    t.ok(bye, 'alice hangs up: the BYE reaches bob')
    if (bye === undefined) return
    b.reply(bye, 200, 'OK')
    t.equal((await a.response('BYE', 100, 699, callId))?.status, 200, 'the call ends')
  })
})
