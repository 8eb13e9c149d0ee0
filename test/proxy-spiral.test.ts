// A spiral is not a loop (RFC 3261 §16.3 step 4): a request that comes back
// through sipd with a new Request-URI is routed again, while one that comes
// back unchanged gets 482 (test/proxy-trunk.test.ts). Here a "media node"
// (127.0.0.13) acts as a proxy: it sends sipd's INVITE back to sipd for
// another DID, with the same Call-ID, From tag and CSeq. A proxy that
// applied the UAS rule for merged requests (§8.2.2.2) would answer 482.
import t from 'tap'
import dgram from 'node:dgram'
import { parseMessage } from '@sipd/sip-parser'
import type { SipRequest, SipResponse } from '@sipd/sip-parser'
import { freePort } from './helpers/servers.js'
import { spawnSipd } from './helpers/spawn-sipd.js'

const TRUNK = '127.0.0.12'
const SPIRAL = '127.0.0.13'
const NODE = '127.0.0.14'

async function bound (address: string): Promise<dgram.Socket> {
  const sock = dgram.createSocket('udp4')
  await new Promise<void>(resolve => sock.bind(0, address, resolve))
  return sock
}

const crlf = (lines: string[]): Buffer => Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1')

/** A response to `req` built by hand (Via, From, To with tag, Call-ID, CSeq copied). */
function answer (req: SipRequest, status: number, reason: string): Buffer {
  return crlf([
    `SIP/2.0 ${status} ${reason}`,
    ...req.headers('Via').map(v => `Via: ${v}`),
    `From: ${req.header('From') ?? ''}`,
    `To: ${req.header('To') ?? ''};tag=node-tag`,
    `Call-ID: ${req.callId}`,
    `CSeq: ${req.header('CSeq') ?? ''}`,
    'Content-Length: 0'
  ])
}

/** The response without its top Via line (a proxy relaying it upstream). */
function withoutTopVia (resp: SipResponse): Buffer {
  const text = resp.buf.toString('latin1', resp.start, resp.end)
  return Buffer.from(text.replace(/\r\nVia:[^\r]*/i, ''), 'latin1')
}

t.test('a request spiralling back through sipd with a new Request-URI is routed again', async t => {
  const port = await freePort('127.0.0.1', 'udp')
  const http = await freePort('127.0.0.1', 'tcp')
  const trunk = await bound(TRUNK)
  const spiral = await bound(SPIRAL)
  const node = await bound(NODE)
  t.teardown(() => { trunk.close(); spiral.close(); node.close() })

  const sipd = await spawnSipd({
    configYaml: `
listen: ["udp:127.0.0.1:${port}"]
http: "127.0.0.1:${http}"
log_level: warn
trusted: ["${TRUNK}/32", "${SPIRAL}/32"]
media:
  probe: { interval_ms: 3600000 }
  did_sets: { "6": 1, "5": 2 }
  sets:
    - { id: 1, algorithm: round-robin, nodes: [{ uri: "sip:${SPIRAL}:${spiral.address().port}" }] }
    - { id: 2, algorithm: round-robin, nodes: [{ uri: "sip:${NODE}:${node.address().port}" }] }
`
  })
  t.teardown(async () => { await sipd.stop() })

  // The spiralling hop: the INVITE goes back to sipd for DID 5000 with a Via
  // of its own; the final response comes back and is relayed up (and ACKed).
  let spiralled = 0
  spiral.on('message', data => {
    const m = parseMessage(data)
    if (m.isRequest) {
      if (m.method !== 'INVITE' || spiralled++ > 0) return
      const text = m.buf.toString('latin1', m.start, m.end)
        .replace(/^INVITE \S+/, `INVITE sip:5000@127.0.0.1:${port}`)
        .replace('\r\n', `\r\nVia: SIP/2.0/UDP ${SPIRAL}:${spiral.address().port};branch=z9hG4bK-spiral-1\r\n`)
      spiral.send(Buffer.from(text, 'latin1'), port, '127.0.0.1')
      return
    }
    if (m.status < 200 || m.topVia?.branch !== 'z9hG4bK-spiral-1') return
    spiral.send(crlf([
      `ACK sip:5000@127.0.0.1:${port} SIP/2.0`,
      `Via: SIP/2.0/UDP ${SPIRAL}:${spiral.address().port};branch=z9hG4bK-spiral-1`,
      'Max-Forwards: 70',
      `From: ${m.header('From') ?? ''}`,
      `To: ${m.header('To') ?? ''}`,
      `Call-ID: ${m.callId}`,
      `CSeq: ${m.cseq.seq} ACK`,
      'Content-Length: 0'
    ]), port, '127.0.0.1')
    spiral.send(withoutTopVia(m), port, '127.0.0.1')
  })

  // The media node of DID 5: busy.
  const reached: SipRequest[] = []
  node.on('message', data => {
    const m = parseMessage(data)
    if (!m.isRequest || m.method !== 'INVITE') return
    reached.push(m)
    node.send(answer(m, 486, 'Busy Here'), port, '127.0.0.1')
  })

  const callId = `spiral-${process.pid}@${TRUNK}`
  const finals = new Promise<SipResponse>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no final response within 10 s')), 10_000)
    trunk.on('message', data => {
      const m = parseMessage(data)
      if (m.isRequest || m.status < 200) return
      clearTimeout(timer)
      resolve(m)
    })
  })
  trunk.send(crlf([
    `INVITE sip:6000@127.0.0.1:${port} SIP/2.0`,
    `Via: SIP/2.0/UDP ${TRUNK}:${trunk.address().port};branch=z9hG4bK-trunk-1`,
    'Max-Forwards: 70',
    `From: <sip:caller@${TRUNK}>;tag=trunk-tag`,
    `To: <sip:6000@127.0.0.1:${port}>`,
    `Call-ID: ${callId}`,
    'CSeq: 1 INVITE',
    `Contact: <sip:caller@${TRUNK}:${trunk.address().port}>`,
    'Content-Length: 0'
  ]), port, '127.0.0.1')

  const final = await finals
  t.equal(final.status, 486, 'the busy media node\'s answer reached the trunk, not 482')
  t.equal(reached.length, 1, 'the spiralled INVITE was forwarded to the node of DID 5')
  t.equal(reached[0]?.callId, callId, 'the same call')
  t.equal(reached[0]?.requestUri.user, '5000', 'with the spiral\'s Request-URI')
  t.equal(reached[0]?.via.length, 4, 'through sipd twice: sipd, the spiral hop, sipd, the trunk')
  t.equal(final.via.length, 1, 'the trunk gets its own Via only')
})
