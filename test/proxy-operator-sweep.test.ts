// An operator's pass over call flows through sipd with the walk-through
// config (a trusted trunk, a media node, a registrar with an edge proxy in
// registrar.auth_exempt), every party a scripted socket that sees each
// message (test/helpers/sip-party.ts):
// - CANCEL before any provisional: sipd answers the CANCEL 200 at once but
//   holds its own CANCEL until the media node's 180 (RFC 3261 §9.1, §16.10),
//   then the caller gets 487;
// - CANCEL after the 200: 200, nothing forwarded, the call goes on;
// - CANCEL while the media node is silent: 487 (was 408) once the branch
//   times out, no CANCEL on a branch without a provisional;
// - UPDATE (RFC 3311) in the early and the confirmed dialog and a re-INVITE
//   from the callee, by the Record-Route set;
// - a 302 relayed with its Contact, the callee's hop ACKed by sipd;
// - a callee that rings and never answers: Timer C (§16.8) CANCELs it and
//   the caller gets 408 (was the branch's 487);
// - a phone registered through an edge proxy with Path (RFC 3327) gets its
//   call through that proxy, the Path pushed as the Route set;
// - two contacts answering 200 at once: both 2xx reach the caller (§16.7 step 5);
// - a phone registered over TCP whose connection is gone: 430 Flow Failed
//   (RFC 5626 §5.3) at once, no new connection (was 500 from the branch's 503);
// - an IPv4 trunk calling an IPv6 media node: Via, Record-Route (twice) and
//   the prober's OPTIONS use the IPv6 listener.
import t from 'tap'
import type { SipRequest } from '@sipd/sip-parser'
import { freePort } from './helpers/servers.js'
import { spawnSipd } from './helpers/spawn-sipd.js'
import { SipParty } from './helpers/sip-party.js'
import type { Received } from './helpers/sip-party.js'

const TRUNK = '127.0.0.91'
const MEDIA = '127.0.0.92'
const EDGE = '127.0.0.94'
const P1 = '127.0.0.95'
const P2 = '127.0.0.96'
const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n'

let n = 0
const id = (): string => `${++n}-${Math.random().toString(16).slice(2, 10)}`

/** Route lines for a request in the dialog: the Record-Route set as the caller (`reverse`) or callee sees it (RFC 3261 §12.1). */
function routeLines (m: Received, reverse: boolean): string[] {
  const rr = (m as SipRequest).recordRoute.map(r => r.raw)
  return (reverse ? rr.reverse() : rr).map(r => `Route: ${r}`)
}

t.test('call flows through sipd', async t => {
  const port = await freePort('127.0.0.1', 'both')
  const http = await freePort('127.0.0.1', 'tcp')
  const mediaPort = await freePort(MEDIA, 'udp')
  const sipd = await spawnSipd({
    configYaml: `
listen: ["udp:127.0.0.1:${port}", "tcp:127.0.0.1:${port}"]
http: "127.0.0.1:${http}"
log_level: warn
domains: ["example.test"]
trusted: ["${TRUNK}/32"]
registrar: { auth_exempt: ["${EDGE}/32", "${P1}/32", "${P2}/32"] }
timers: { timer_c: 3000 }
media:
  probe: { interval_ms: 3600000 }
  response_timeout_ms: 4000
  sets:
    - { id: 1, nodes: [{ uri: "sip:${MEDIA}:${mediaPort}" }] }
`
  })
  t.teardown(async () => { await sipd.stop() })
  const node = await SipParty.udpAt(MEDIA, mediaPort, port)
  t.teardown(() => { node.close() })

  const invite = (trunk: SipParty, user: string, callId: string, branch: string): string[] => [
    `INVITE sip:${user}@example.test SIP/2.0`,
    `Via: SIP/2.0/${trunk.transport.toUpperCase()} ${TRUNK}:${trunk.port};branch=${branch};rport`,
    'Max-Forwards: 70',
    `From: <sip:+15550100@${TRUNK}>;tag=t${callId}`,
    `To: <sip:${user}@example.test>`,
    `Call-ID: ${callId}`,
    'CSeq: 1 INVITE',
    `Contact: <sip:trunk@${TRUNK}:${trunk.port};transport=${trunk.transport}>`,
    'Content-Type: application/sdp'
  ]
  const cancelOf = (trunk: SipParty, user: string, callId: string, branch: string): string[] => [
    `CANCEL sip:${user}@example.test SIP/2.0`,
    `Via: SIP/2.0/${trunk.transport.toUpperCase()} ${TRUNK}:${trunk.port};branch=${branch};rport`,
    'Max-Forwards: 70',
    `From: <sip:+15550100@${TRUNK}>;tag=t${callId}`,
    `To: <sip:${user}@example.test>`,
    `Call-ID: ${callId}`,
    'CSeq: 1 CANCEL'
  ]
  const ackOf = (trunk: SipParty, user: string, callId: string, branch: string, final: Received): string[] => [
    `ACK sip:${user}@example.test SIP/2.0`,
    `Via: SIP/2.0/${trunk.transport.toUpperCase()} ${TRUNK}:${trunk.port};branch=${branch};rport`,
    'Max-Forwards: 70',
    `From: <sip:+15550100@${TRUNK}>;tag=t${callId}`,
    `To: ${final.header('To')!}`,
    `Call-ID: ${callId}`,
    'CSeq: 1 ACK'
  ]

  for (const transport of ['udp', 'tcp'] as const) {
    await t.test(`CANCEL before any provisional from the media node (trunk over ${transport})`, async t => {
      const trunk = transport === 'udp' ? await SipParty.udp(TRUNK, port) : await SipParty.tcp(TRUNK, port)
      t.teardown(() => { trunk.close() })
      const callId = `c1-${id()}`
      const branch = `z9hG4bK${id()}`
      trunk.send(invite(trunk, '4001', callId, branch), SDP)
      trunk.send(cancelOf(trunk, '4001', callId, branch))
      const inv = await node.request('INVITE', callId)
      t.ok(inv, 'the media node got the INVITE')
      t.ok(await trunk.response('CANCEL', 200, 200, callId), 'the caller\'s CANCEL answered 200 at once (§16.10)')
      t.notOk(await node.request('CANCEL', callId, 500), 'no CANCEL before a provisional response (§9.1)')
      node.reply(inv!, 180, 'Ringing', { toTag: 'm1' })
      const cancel = await node.request('CANCEL', callId)
      t.ok(cancel, 'the CANCEL follows the 180')
      node.reply(cancel!, 200, 'OK')
      node.reply(inv!, 487, 'Request Terminated', { toTag: 'm1' })
      t.ok(await node.request('ACK', callId), 'sipd ACKs the 487 hop by hop')
      const final = await trunk.response('INVITE', 200, 699, callId)
      t.equal(final?.status, 487, 'the caller gets 487')
      trunk.send(ackOf(trunk, '4001', callId, branch, final!))
    })
  }

  await t.test('CANCEL after the 200, then UPDATE and a re-INVITE in the dialog', async t => {
    const trunk = await SipParty.udp(TRUNK, port)
    t.teardown(() => { trunk.close() })
    const callId = `c2-${id()}`
    const branch = `z9hG4bK${id()}`
    trunk.send(invite(trunk, '4002', callId, branch), SDP)
    const inv = await node.request('INVITE', callId)
    t.ok(inv, 'the media node got the INVITE')
    t.ok(inv!.recordRoute.length >= 1, 'sipd record-routes')
    const contact = `<sip:fs@${MEDIA}:${mediaPort}>`
    node.reply(inv!, 200, 'OK', { toTag: 'm2', headers: [['Contact', contact]], body: SDP, contentType: 'application/sdp' })
    const ok = await trunk.response('INVITE', 200, 299, callId)
    t.ok(ok, 'the caller gets the 200', { unread: trunk.unread, logs: ok === undefined ? sipd.logs().slice(-3000) : '' })
    trunk.send(cancelOf(trunk, '4002', callId, branch))
    const cancelled = await trunk.response('CANCEL', 200, 699, callId)
    t.equal(cancelled?.status, 200, 'a CANCEL after the 200 is answered 200 and changes nothing (§9.2, §16.10)')
    t.notOk(await node.request('CANCEL', callId, 500), 'no CANCEL forwarded after a final response')

    const toward = routeLines(ok!, true)
    const inDialog = (method: string, cseq: number): string[] => [
      `${method} sip:fs@${MEDIA}:${mediaPort} SIP/2.0`,
      `Via: SIP/2.0/UDP ${TRUNK}:${trunk.port};branch=z9hG4bK${id()};rport`,
      'Max-Forwards: 70',
      `From: <sip:+15550100@${TRUNK}>;tag=t${callId}`,
      `To: ${ok!.header('To')!}`,
      `Call-ID: ${callId}`,
      `CSeq: ${cseq} ${method}`,
      ...toward
    ]
    trunk.send(inDialog('ACK', 1))
    t.ok(await node.request('ACK', callId), 'the ACK reaches the media node by the Route set')
    trunk.send([...inDialog('UPDATE', 2), `Contact: <sip:trunk@${TRUNK}:${trunk.port}>`, 'Content-Type: application/sdp'], SDP)
    const update = await node.request('UPDATE', callId)
    t.equal(update?.text.split(' ')[1], `sip:fs@${MEDIA}:${mediaPort}`, 'UPDATE at the media node\'s Contact')
    node.reply(update!, 200, 'OK', { body: SDP, contentType: 'application/sdp' })
    t.equal((await trunk.response('UPDATE', 100, 699, callId))?.status, 200, 'the UPDATE\'s 200 back to the caller')

    // The callee's re-INVITE: to the caller's Contact, by the Record-Route set in order.
    const reinvite = [
      `INVITE sip:trunk@${TRUNK}:${trunk.port} SIP/2.0`,
      `Via: SIP/2.0/UDP ${MEDIA}:${mediaPort};branch=z9hG4bK${id()};rport`,
      'Max-Forwards: 70',
      `From: ${ok!.header('To')!}`,
      `To: <sip:+15550100@${TRUNK}>;tag=t${callId}`,
      `Call-ID: ${callId}`,
      'CSeq: 1 INVITE',
      `Contact: ${contact}`,
      ...routeLines(inv!, false),
      'Content-Type: application/sdp'
    ]
    node.send(reinvite, SDP)
    const re = await trunk.request('INVITE', callId)
    t.ok(re, 'the re-INVITE reaches the caller')
    t.equal(re?.header('To'), `<sip:+15550100@${TRUNK}>;tag=t${callId}`, 'in the same dialog')
    trunk.reply(re!, 200, 'OK', { body: SDP, contentType: 'application/sdp', headers: [['Contact', `<sip:trunk@${TRUNK}:${trunk.port}>`]] })
    const reOk = await node.response('INVITE', 200, 299, callId)
    t.ok(reOk, 'its 200 back to the media node')
    node.send([
      `ACK sip:trunk@${TRUNK}:${trunk.port} SIP/2.0`,
      `Via: SIP/2.0/UDP ${MEDIA}:${mediaPort};branch=z9hG4bK${id()};rport`,
      'Max-Forwards: 70',
      `From: ${ok!.header('To')!}`,
      `To: <sip:+15550100@${TRUNK}>;tag=t${callId}`,
      `Call-ID: ${callId}`,
      'CSeq: 1 ACK',
      ...routeLines(inv!, false)
    ])
    t.ok(await trunk.request('ACK', callId), 'and the ACK to the caller')
    trunk.send(inDialog('BYE', 3))
    const bye = await node.request('BYE', callId)
    t.ok(bye, 'BYE reaches the media node')
    node.reply(bye!, 200, 'OK')
    t.equal((await trunk.response('BYE', 100, 699, callId))?.status, 200, 'the call ends')
  })

  await t.test('UPDATE in the early dialog (RFC 3311 §5.1), then CANCEL', async t => {
    const trunk = await SipParty.udp(TRUNK, port)
    t.teardown(() => { trunk.close() })
    const callId = `c8-${id()}`
    const branch = `z9hG4bK${id()}`
    trunk.send(invite(trunk, '4008', callId, branch), SDP)
    const inv = await node.request('INVITE', callId)
    node.reply(inv!, 183, 'Session Progress', { toTag: 'm8', headers: [['Contact', `<sip:fs@${MEDIA}:${mediaPort}>`]], body: SDP, contentType: 'application/sdp' })
    const early = await trunk.response('INVITE', 183, 183, callId)
    t.ok(early, 'the caller gets the 183 with the Record-Route set')
    trunk.send([
      `UPDATE sip:fs@${MEDIA}:${mediaPort} SIP/2.0`,
      `Via: SIP/2.0/UDP ${TRUNK}:${trunk.port};branch=z9hG4bK${id()};rport`,
      'Max-Forwards: 70',
      `From: <sip:+15550100@${TRUNK}>;tag=t${callId}`,
      `To: ${early!.header('To')!}`,
      `Call-ID: ${callId}`,
      'CSeq: 2 UPDATE',
      `Contact: <sip:trunk@${TRUNK}:${trunk.port}>`,
      ...routeLines(early!, true),
      'Content-Type: application/sdp'
    ], SDP)
    const update = await node.request('UPDATE', callId)
    t.ok(update, 'the UPDATE reaches the media node by the early dialog\'s Route set')
    node.reply(update!, 200, 'OK', { body: SDP, contentType: 'application/sdp' })
    t.equal((await trunk.response('UPDATE', 100, 699, callId))?.status, 200, 'its 200 comes back')
    trunk.send(cancelOf(trunk, '4008', callId, branch))
    t.equal((await trunk.response('CANCEL', 100, 699, callId))?.status, 200, 'CANCEL 200')
    const cancel = await node.request('CANCEL', callId)
    node.reply(cancel!, 200, 'OK')
    node.reply(inv!, 487, 'Request Terminated', { toTag: 'm8' })
    const final = await trunk.response('INVITE', 200, 699, callId)
    t.equal(final?.status, 487, 'the early dialog ends 487')
    trunk.send(ackOf(trunk, '4008', callId, branch, final!))
  })

  await t.test('CANCEL while the media node says nothing at all: 487 once the branch times out', async t => {
    const trunk = await SipParty.udp(TRUNK, port)
    t.teardown(() => { trunk.close() })
    const callId = `c9-${id()}`
    const branch = `z9hG4bK${id()}`
    trunk.send(invite(trunk, '4009', callId, branch), SDP)
    t.ok(await node.request('INVITE', callId), 'the media node got the INVITE and stays silent')
    trunk.send(cancelOf(trunk, '4009', callId, branch))
    t.equal((await trunk.response('CANCEL', 100, 699, callId))?.status, 200, 'CANCEL 200')
    // The branch times out after 3 s here (timer_c, below media.response_timeout_ms).
    const final = await trunk.response('INVITE', 200, 699, callId, 8000)
    t.equal(final?.status, 487, 'the cancelled INVITE ends 487, not 408')
    t.notOk(await node.request('CANCEL', callId, 100), 'no CANCEL was sent on a branch without a provisional (§9.1)')
    trunk.send(ackOf(trunk, '4009', callId, branch, final!))
    const media = await (await fetch(`${sipd.httpUrl}/api/media`)).json() as { sets: Array<{ nodes: Array<{ state: string }> }> }
    t.equal(media.sets[0]?.nodes[0]?.state, 'active', 'a branch the caller cancelled does not mark the node down')
  })

  await t.test('a 302 from the media node is relayed', async t => {
    const trunk = await SipParty.udp(TRUNK, port)
    t.teardown(() => { trunk.close() })
    const callId = `c3-${id()}`
    const branch = `z9hG4bK${id()}`
    trunk.send(invite(trunk, '4003', callId, branch), SDP)
    const inv = await node.request('INVITE', callId)
    node.reply(inv!, 302, 'Moved Temporarily', { toTag: 'm3', headers: [['Contact', '<sip:4003@192.0.2.33>']] })
    t.ok(await node.request('ACK', callId), 'sipd ACKs the 302 hop by hop')
    const final = await trunk.response('INVITE', 200, 699, callId)
    t.equal(final?.status, 302, 'the caller gets the 302')
    t.match(final?.header('Contact'), 'sip:4003@192.0.2.33', 'with its Contact')
    trunk.send(ackOf(trunk, '4003', callId, branch, final!))
  })

  await t.test('a callee that rings and never answers is CANCELled by Timer C', async t => {
    const trunk = await SipParty.udp(TRUNK, port)
    t.teardown(() => { trunk.close() })
    const callId = `c4-${id()}`
    const branch = `z9hG4bK${id()}`
    trunk.send(invite(trunk, '4004', callId, branch), SDP)
    const inv = await node.request('INVITE', callId)
    node.reply(inv!, 180, 'Ringing', { toTag: 'm4' })
    t.ok(await trunk.response('INVITE', 180, 180, callId), 'the caller hears ringing')
    const cancel = await node.request('CANCEL', callId, 6000)
    t.ok(cancel, 'Timer C (3 s here) sends CANCEL (§16.8)')
    node.reply(cancel!, 200, 'OK')
    node.reply(inv!, 487, 'Request Terminated', { toTag: 'm4' })
    const final = await trunk.response('INVITE', 200, 699, callId)
    t.equal(final?.status, 408, 'the caller gets 408 Request Timeout (no answer), not a 487 for a CANCEL it never sent')
    trunk.send(ackOf(trunk, '4004', callId, branch, final!))
  })

  await t.test('a phone registered through an edge proxy with Path', async t => {
    const edge = await SipParty.udp(EDGE, port)
    t.teardown(() => { edge.close() })
    const path = `<sip:${EDGE}:${edge.port};lr>`
    edge.send([
      'REGISTER sip:example.test SIP/2.0',
      `Via: SIP/2.0/UDP ${EDGE}:${edge.port};branch=z9hG4bK${id()}`,
      'Via: SIP/2.0/UDP 192.0.2.50:5060;branch=z9hG4bKphone;received=192.0.2.50',
      'Max-Forwards: 69',
      'From: <sip:erin@example.test>;tag=reg',
      'To: <sip:erin@example.test>',
      `Call-ID: path-${id()}`,
      'CSeq: 1 REGISTER',
      'Contact: <sip:erin@192.0.2.50:5060>',
      `Path: ${path}`,
      'Supported: path',
      'Expires: 300'
    ])
    const ok = await edge.response('REGISTER', 200, 699)
    t.equal(ok?.status, 200, 'registered (the edge is auth_exempt)')
    t.match(ok?.text, `Path: ${path}`, 'Path echoed (RFC 3327 §5.3)')
    // The media node calls erin: sipd sends the INVITE to the edge proxy, Route = the Path.
    const callId = `c5-${id()}`
    node.send([
      'INVITE sip:erin@example.test SIP/2.0',
      `Via: SIP/2.0/UDP ${MEDIA}:${mediaPort};branch=z9hG4bK${id()};rport`,
      'Max-Forwards: 70',
      `From: <sip:fs@${MEDIA}>;tag=f${callId}`,
      'To: <sip:erin@example.test>',
      `Call-ID: ${callId}`,
      'CSeq: 1 INVITE',
      `Contact: <sip:fs@${MEDIA}:${mediaPort}>`,
      'Content-Type: application/sdp'
    ], SDP)
    const atEdge = await edge.request('INVITE', callId)
    t.ok(atEdge, 'the INVITE goes to the edge proxy')
    t.equal(atEdge?.text.split(' ')[1], 'sip:erin@192.0.2.50:5060', 'Request-URI: the registered contact')
    t.equal(atEdge?.header('Route'), path, 'Route: the Path (RFC 3327 §5.3)')
    edge.reply(atEdge!, 486, 'Busy Here', { toTag: 'e1' })
    t.ok(await edge.request('ACK', callId), 'ACK for the 486 to the edge')
    t.equal((await node.response('INVITE', 200, 699, callId))?.status, 486, 'the 486 relayed to the media node')
  })

  const fromMedia = (user: string, callId: string, branch = `z9hG4bK${id()}`): string[] => [
    `INVITE sip:${user}@example.test SIP/2.0`,
    `Via: SIP/2.0/UDP ${MEDIA}:${mediaPort};branch=${branch};rport`,
    'Max-Forwards: 70',
    `From: <sip:fs@${MEDIA}>;tag=f${callId}`,
    `To: <sip:${user}@example.test>`,
    `Call-ID: ${callId}`,
    'CSeq: 1 INVITE',
    `Contact: <sip:fs@${MEDIA}:${mediaPort}>`,
    'Content-Type: application/sdp'
  ]

  await t.test('two contacts answer at once: both 2xx reach the caller', async t => {
    const p1 = await SipParty.udp(P1, port)
    const p2 = await SipParty.udp(P2, port)
    t.teardown(() => { p1.close(); p2.close() })
    t.equal(await register(p1, 'gail'), 200)
    t.equal(await register(p2, 'gail'), 200)
    const callId = `c6-${id()}`
    node.send(fromMedia('gail', callId), SDP)
    const i1 = await p1.request('INVITE', callId)
    const i2 = await p2.request('INVITE', callId)
    t.ok(i1 !== undefined && i2 !== undefined, 'both contacts ring')
    p1.reply(i1!, 200, 'OK', { toTag: 'g1', headers: [['Contact', `<sip:gail@${P1}:${p1.port}>`]], body: SDP, contentType: 'application/sdp' })
    p2.reply(i2!, 200, 'OK', { toTag: 'g2', headers: [['Contact', `<sip:gail@${P2}:${p2.port}>`]], body: SDP, contentType: 'application/sdp' })
    const tags = [(await node.response('INVITE', 200, 299, callId))?.to.tag, (await node.response('INVITE', 200, 299, callId))?.to.tag]
    t.same(tags.sort(), ['g1', 'g2'], 'the caller gets both 200s, one per dialog (RFC 3261 §16.7 step 5)')
  })

  await t.test('a TCP phone whose connection is gone: 430 Flow Failed, no new connection', async t => {
    const phone = await SipParty.tcp(P1, port)
    t.equal(await register(phone, 'hank'), 200, 'registered over TCP')
    phone.close()
    await new Promise(resolve => setTimeout(resolve, 200))
    const callId = `c7-${id()}`
    const branch = `z9hG4bK${id()}`
    node.send(fromMedia('hank', callId, branch), SDP)
    const final = await node.response('INVITE', 200, 699, callId)
    t.equal(final?.status, 430, 'the caller gets 430 (RFC 5626 §5.3), not 500 as if sipd had failed')
    t.equal(final?.reason, 'Flow Failed')
    // The ACK of a non-2xx final: the INVITE's branch, hop by hop (RFC 3261 §17.1.1.3).
    node.send(['ACK sip:hank@example.test SIP/2.0', `Via: SIP/2.0/UDP ${MEDIA}:${mediaPort};branch=${branch};rport`, 'Max-Forwards: 70',
      `From: <sip:fs@${MEDIA}>;tag=f${callId}`, `To: ${final!.header('To')!}`, `Call-ID: ${callId}`, 'CSeq: 1 ACK'])
  })
})

async function register (p: SipParty, user: string): Promise<number | undefined> {
  const tr = p.transport.toUpperCase()
  p.send([
    'REGISTER sip:example.test SIP/2.0',
    `Via: SIP/2.0/${tr} ${p.ip}:${p.port};branch=z9hG4bK${id()};rport`,
    'Max-Forwards: 70',
    `From: <sip:${user}@example.test>;tag=r${id()}`,
    `To: <sip:${user}@example.test>`,
    `Call-ID: reg-${id()}`,
    'CSeq: 1 REGISTER',
    `Contact: <sip:${user}@${p.ip}:${p.port};transport=${p.transport}>`,
    'Expires: 300'
  ])
  return (await p.response('REGISTER', 200, 699))?.status
}

t.test('an IPv4 trunk calls an IPv6 media node: sipd changes family and record-routes twice (RFC 5658)', async t => {
  const port = await freePort('127.0.0.1', 'udp')
  const port6 = await freePort('::1', 'udp')
  const http = await freePort('127.0.0.1', 'tcp')
  const mediaPort = await freePort('::1', 'udp')
  const sipd = await spawnSipd({
    configYaml: `
listen: ["udp:127.0.0.1:${port}", "udp:[::1]:${port6}"]
http: "127.0.0.1:${http}"
log_level: warn
domains: ["example.test"]
trusted: ["${TRUNK}/32"]
media:
  probe: { interval_ms: 1000 }
  sets:
    - { id: 1, nodes: [{ uri: "sip:[::1]:${mediaPort}" }] }
`
  })
  t.teardown(async () => { await sipd.stop() })
  // Each party sends where sipd's Via / Record-Route for its side say: the media node to [::1], the trunk to 127.0.0.1.
  const node = await SipParty.udpAt('::1', mediaPort, port6, '::1')
  t.teardown(() => { node.close() })
  const trunk = await SipParty.udp(TRUNK, port)
  t.teardown(() => { trunk.close() })
  const probe = await node.request('OPTIONS', undefined, 4000)
  t.equal(probe?.via[0]?.host, '[::1]', 'the media prober\'s OPTIONS too comes with an IPv6 Via (was 127.0.0.1: its answers could not come back)')
  if (probe !== undefined) node.reply(probe, 200, 'OK')
  const callId = `v6-${id()}`
  trunk.send([
    'INVITE sip:4006@example.test SIP/2.0',
    `Via: SIP/2.0/UDP ${TRUNK}:${trunk.port};branch=z9hG4bK${id()};rport`,
    'Max-Forwards: 70',
    `From: <sip:+15550100@${TRUNK}>;tag=t${callId}`,
    'To: <sip:4006@example.test>',
    `Call-ID: ${callId}`,
    'CSeq: 1 INVITE',
    `Contact: <sip:trunk@${TRUNK}:${trunk.port}>`,
    'Content-Type: application/sdp'
  ], SDP)
  const inv = await node.request('INVITE', callId)
  t.ok(inv, 'the IPv6 media node got the INVITE')
  t.equal(inv?.via[0]?.host, '[::1]', 'sipd\'s Via names its IPv6 listener, where the node can answer (was 127.0.0.1)')
  t.equal(inv?.via[0]?.port, port6)
  t.same(inv?.recordRoute.map(r => r.uri), [`sip:[::1]:${port6};transport=udp;lr`, `sip:127.0.0.1:${port};transport=udp;lr`],
    'two Record-Route entries: the IPv6 side for the callee, the IPv4 side for the caller')
  node.reply(inv!, 200, 'OK', { toTag: 'm6', headers: [['Contact', `<sip:fs@[::1]:${mediaPort}>`]], body: SDP, contentType: 'application/sdp' })
  const ok = await trunk.response('INVITE', 200, 299, callId)
  t.ok(ok, 'the caller gets the 200')
  const toward = ok!.recordRoute.map(r => `Route: ${r.raw}`).reverse()
  t.match(toward[0], '127.0.0.1', 'the caller\'s first Route is sipd\'s IPv4 side')
  trunk.send([`ACK sip:fs@[::1]:${mediaPort} SIP/2.0`, `Via: SIP/2.0/UDP ${TRUNK}:${trunk.port};branch=z9hG4bK${id()};rport`, 'Max-Forwards: 70',
    `From: <sip:+15550100@${TRUNK}>;tag=t${callId}`, `To: ${ok!.header('To')!}`, `Call-ID: ${callId}`, 'CSeq: 1 ACK', ...toward])
  const ack = await node.request('ACK', callId)
  t.equal(ack?.via[0]?.host, '[::1]', 'the ACK reaches the node from sipd\'s IPv6 side')
  node.send([`BYE sip:trunk@${TRUNK}:${trunk.port} SIP/2.0`, `Via: SIP/2.0/UDP [::1]:${mediaPort};branch=z9hG4bK${id()};rport`, 'Max-Forwards: 70',
    `From: ${ok!.header('To')!}`, `To: <sip:+15550100@${TRUNK}>;tag=t${callId}`, `Call-ID: ${callId}`, 'CSeq: 2 BYE', ...inv!.recordRoute.map(r => `Route: ${r.raw}`)])
  const bye = await trunk.request('BYE', callId)
  t.ok(bye, 'the callee\'s BYE reaches the caller by both entries')
  t.equal(bye?.via[0]?.host, '127.0.0.1', 'from sipd\'s IPv4 side')
  t.equal(bye?.header('Route'), undefined, 'with sipd\'s two Route entries removed')
  trunk.reply(bye!, 200, 'OK')
  t.equal((await node.response('BYE', 200, 699, callId))?.status, 200, 'the call ends')
})
