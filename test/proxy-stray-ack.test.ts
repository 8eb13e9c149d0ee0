// An ACK that matches no transaction is forwarded statelessly by its Route
// set or Request-URI (RFC 3261 §16.11) — but never to sipd's own socket:
// sipp's built-in uac sends its ACK to sip:service@<proxy> without a Route,
// and such an ACK used to come back to sipd hop after hop (70 times, one
// Via more each time) until Max-Forwards ran out. Such an ACK, and a
// response that matches no transaction and is not ours to relay (§16.7
// step 3), end at sipd: each is a counted drop (sipd_dropped_total), so an
// operator sees where sipp's built-in uac's ACKs went.
import t from 'tap'
import dgram from 'node:dgram'
import { parseMessage } from '@sipd/sip-parser'
import type { SipRequest } from '@sipd/sip-parser'
import { freePort } from './helpers/servers.js'
import { metricValue, spawnSipd } from './helpers/spawn-sipd.js'
import { delay } from './helpers/process.js'

const TRUNK = '127.0.0.71'
const NEXT = '127.0.0.72'

function ack (requestUri: string, n: number, route?: string): Buffer {
  return Buffer.from([
    `ACK ${requestUri} SIP/2.0`,
    `Via: SIP/2.0/UDP ${TRUNK}:5060;branch=z9hG4bK-stray-ack-${n}`,
    ...(route !== undefined ? [`Route: ${route}`] : []),
    `From: <sip:trunk@${TRUNK}>;tag=a${n}`,
    `To: <sip:5551000@example.test>;tag=b${n}`,
    `Call-ID: stray-ack-${n}@test`,
    'CSeq: 1 ACK',
    'Max-Forwards: 70',
    'Content-Length: 0',
    '', ''
  ].join('\r\n'))
}

t.test('a stray ACK is forwarded by its Route set, never to sipd itself', async t => {
  const port = await freePort('127.0.0.1', 'both')
  const http = await freePort('127.0.0.1', 'tcp')
  const sipd = await spawnSipd({
    configYaml: [
      `listen: ["udp:127.0.0.1:${port}"]`,
      `http: "127.0.0.1:${http}"`,
      `trusted: ["${TRUNK}/32"]`,
      'media:',
      '  probe: { interval_ms: 3600000 }',
      `  sets: [{ id: 1, nodes: [{ uri: "sip:${NEXT}:5999" }] }]`
    ].join('\n') + '\n'
  })
  t.teardown(async () => { await sipd.stop() })

  const trunk = dgram.createSocket('udp4')
  await new Promise<void>(resolve => trunk.bind(0, TRUNK, resolve))
  const next = dgram.createSocket('udp4')
  await new Promise<void>(resolve => next.bind(0, NEXT, resolve))
  t.teardown(() => { trunk.close(); next.close() })
  const atNext: SipRequest[] = []
  next.on('message', m => { atNext.push(parseMessage(m) as SipRequest) })
  const send = (b: Buffer): void => { trunk.send(b, port, '127.0.0.1') }
  const acks = async (): Promise<number> => await metricValue(sipd, 'sipd_requests_received_total{method="ACK"}')

  // Positive control: a Route to another element is followed (§16.11).
  send(ack(`sip:5551000@${NEXT}:5998`, 1, `<sip:${NEXT}:${next.address().port};lr>`))
  const end = Date.now() + 3000
  while (atNext.length === 0 && Date.now() < end) await delay(10)
  t.equal(atNext.length, 1, 'forwarded to the Route')
  t.equal(atNext[0]?.maxForwards, 69, 'Max-Forwards decremented')

  const before = await acks()
  // sipp's built-in uac: the Request-URI names sipd's address with a user part, no Route.
  send(ack(`sip:5551000@127.0.0.1:${port}`, 2))
  // The same with sipd's own Route on top (popped, then the Request-URI is sipd again).
  send(ack(`sip:5551000@127.0.0.1:${port}`, 3, `<sip:127.0.0.1:${port};lr>`))
  await delay(500)
  t.equal(await acks() - before, 2, 'each ACK received once: not sent back to sipd')
  t.equal(atNext.length, 1, 'nothing else forwarded')
  t.equal(await metricValue(sipd, 'sipd_dropped_total{reason="ack-no-next-hop"}'), 2, 'both counted as dropped ACKs')

  // A response to nothing of ours (its top Via is the trunk's, not sipd's): not relayed, counted.
  const dropped = async (): Promise<number> => await metricValue(sipd, 'sipd_dropped_total{reason="stray-response"}')
  t.equal(await dropped(), 0, 'no stray response yet')
  send(Buffer.from([
    'SIP/2.0 200 OK',
    `Via: SIP/2.0/UDP ${TRUNK}:5060;branch=z9hG4bK-stray-resp-1`,
    `From: <sip:trunk@${TRUNK}>;tag=a9`,
    'To: <sip:5551000@example.test>;tag=b9',
    'Call-ID: stray-resp-1@test',
    'CSeq: 1 INVITE',
    'Content-Length: 0',
    '', ''
  ].join('\r\n')))
  const until = Date.now() + 3000
  while (await dropped() === 0 && Date.now() < until) await delay(20)
  t.equal(await dropped(), 1, 'a stray response not ours to relay is a counted drop')
  t.equal(atNext.length, 1, 'and goes nowhere')
})
