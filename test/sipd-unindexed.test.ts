// Requests whose headers do not index (a header line without a colon, a
// start line that is no request line) sent to a running sipd over UDP and
// TCP: a 400 naming the defect whenever Via, From, To, Call-ID and CSeq can
// be read from the raw bytes (RFC 3261 §8.2, §16.3), nothing for an ACK, a
// response or a request without them, each one counted.
import t from 'tap'
import type { Test } from 'tap'
import dgram from 'node:dgram'
import net from 'node:net'
import { parseMessage } from '@sipd/sip-parser'
import type { SipResponse } from '@sipd/sip-parser'
import { freePort } from './helpers/servers.js'
import { metricValue, spawnSipd } from './helpers/spawn-sipd.js'
import { delay } from './helpers/process.js'

const PEER = '127.0.0.61'

function request (transport: 'UDP' | 'TCP', peerPort: number, n: number, edit: (lines: string[]) => string[]): Buffer {
  const lines = [
    'INVITE sip:bob@example.test SIP/2.0',
    `Via: SIP/2.0/${transport} ${PEER}:${peerPort};rport;branch=z9hG4bK-unindexed-${n}`,
    'Max-Forwards: 70',
    `From: <sip:alice@example.test>;tag=u${n}`,
    'To: <sip:bob@example.test>',
    `Call-ID: unindexed-${n}@test`,
    `CSeq: ${n} INVITE`,
    'Content-Length: 0'
  ]
  return Buffer.from(edit(lines).join('\r\n') + '\r\n\r\n', 'latin1')
}

const noColon = (l: string[]): string[] => [...l.slice(0, 3), 'This line has no colon', ...l.slice(3)]
const badStart = (l: string[]): string[] => ['\u0001NVITE sip:bob@example.test SIP/2.0', ...l.slice(1).map(x => x.startsWith('CSeq') ? x.replace('INVITE', 'OPTIONS') : x)]
const ack = (l: string[]): string[] => noColon(['ACK' + l[0]!.slice(6), ...l.slice(1).map(x => x.startsWith('CSeq') ? x.replace('INVITE', 'ACK') : x)])
const response = (l: string[]): string[] => noColon(['SIP/2.0 180 Ringing', ...l.slice(1)])
const noCseq = (l: string[]): string[] => noColon(l.filter(x => !x.startsWith('CSeq')))

/** Status lines and Call-IDs of what came back, in order. */
interface TcpPeer { sock: net.Socket, got: string, closed: boolean, closedWithin: (ms: number) => Promise<void> }

/** A TCP connection from PEER to sipd that collects what sipd sends and notices the close. */
async function tcpPeer (t: Test, port: number): Promise<TcpPeer> {
  const sock = net.connect({ host: '127.0.0.1', port, localAddress: PEER, noDelay: true })
  const peer: TcpPeer = {
    sock,
    got: '',
    closed: false,
    closedWithin: async ms => {
      const end = Date.now() + ms
      while (!peer.closed && Date.now() < end) await delay(10)
    }
  }
  sock.on('data', d => { peer.got += d.toString('latin1') })
  sock.on('close', () => { peer.closed = true })
  sock.on('error', () => {})
  await new Promise<void>((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject) })
  t.teardown(() => { sock.destroy() })
  return peer
}

/** A UDP socket on PEER collecting what sipd sends it, closed at the end of the test. */
interface UdpPeer { sock: dgram.Socket, port: number, got: string }

async function udpPeer (t: Test): Promise<UdpPeer> {
  const sock = dgram.createSocket('udp4')
  await new Promise<void>(resolve => sock.bind(0, PEER, resolve))
  t.teardown(() => { sock.close() })
  const peer: UdpPeer = { sock, port: sock.address().port, got: '' }
  sock.on('message', m => { peer.got += m.toString('latin1') })
  return peer
}

function answers (bytes: string): Array<{ status: number, reason: string, callId: string, cseq: string, toTag: string | undefined }> {
  const out = []
  for (const text of bytes.split(/(?=SIP\/2\.0 \d{3} )/).filter(s => s.length > 0)) {
    const r = parseMessage(Buffer.from(text, 'latin1')) as SipResponse
    out.push({ status: r.status, reason: r.reason, callId: r.callId, cseq: `${r.cseq.seq} ${r.cseq.method}`, toTag: r.to.tag })
  }
  return out
}

t.test('requests that do not index get a 400 when one can be built, over UDP and TCP', async t => {
  const port = await freePort('127.0.0.1', 'both')
  const http = await freePort('127.0.0.1', 'tcp')
  const sipd = await spawnSipd({ configYaml: `listen: ["udp:127.0.0.1:${port}", "tcp:127.0.0.1:${port}"]\nhttp: "127.0.0.1:${http}"\nlimits: { max_message_size: 4096 }\n` })
  t.teardown(async () => { await sipd.stop() })

  t.test('UDP', async t => {
    const peer = await udpPeer(t)
    const sock = peer.sock
    const peerPort = peer.port
    const send = async (b: Buffer): Promise<void> => { await new Promise<void>((resolve, reject) => sock.send(b, port, '127.0.0.1', e => { if (e != null) reject(e); else resolve() })) }
    const errorsBefore = await metricValue(sipd, 'sipd_parse_errors_total{reason="SIP_ERR_BAD_HEADER"}')

    await send(request('UDP', peerPort, 1, noColon))
    await send(request('UDP', peerPort, 2, badStart))
    const end = Date.now() + 3000
    while (answers(peer.got).length < 2 && Date.now() < end) await delay(10)
    const a = answers(peer.got)
    t.equal(a.length, 2, 'two answers')
    t.match(a[0], { status: 400, reason: /missing ":" in header line "This line has no colon"/, callId: 'unindexed-1@test', cseq: '1 INVITE' })
    t.ok(a[0]?.toTag, 'a To tag (RFC 3261 §8.2.6.2)')
    t.match(a[1], { status: 400, reason: /invalid start line/, callId: 'unindexed-2@test', cseq: '2 OPTIONS' })
    t.match(peer.got, `received=${PEER}`, 'the top Via gets received')
    t.match(peer.got, `rport=${peerPort}`, 'and rport (RFC 3581)')

    peer.got = ''
    for (const [i, edit] of [ack, response, noCseq].entries()) await send(request('UDP', peerPort, 10 + i, edit))
    await delay(300)
    t.equal(peer.got, '', 'an ACK, a response and a request without CSeq: nothing')
    const errorsAfter = await metricValue(sipd, 'sipd_parse_errors_total{reason="SIP_ERR_BAD_HEADER"}')
    t.equal(errorsAfter - errorsBefore, 4, 'every header line without a colon counted')
  })

  t.test('UDP: a broken Via as well (sipsak -R): the 400 goes back to the packet\'s source (RFC 4475 §3.1.2.1)', async t => {
    const peer = await udpPeer(t)
    const peerPort = peer.port
    // sipsak's random mode: "SIP/2.0" of the Via and a letter of a header name trashed.
    const bytes = request('UDP', peerPort, 20, l => l.map(x => x.startsWith('Via:') ? x.replace('SIP/2.0/UDP', 'SIP 2.0/UDP') : x).concat('Us\u00ffr-Agent: sipsak 0.9.8.1'))
    peer.sock.send(bytes, port, '127.0.0.1')
    const end = Date.now() + 3000
    while (answers(peer.got).length < 1 && Date.now() < end) await delay(10)
    const a = answers(peer.got)
    t.match(a[0], { status: 400, reason: /invalid character .* in header name/, callId: 'unindexed-20@test', cseq: '20 INVITE' }, 'answered 400 naming the header defect')
    t.match(peer.got, `Via: SIP 2.0/UDP ${PEER}:${peerPort};rport;branch=z9hG4bK-unindexed-20\r\n`, 'the Via copied as it came')
  })

  t.test('TCP: the 400 before the connection closes, whole and split across segments after a sound message', async t => {
    for (const split of [false, true]) {
      const peer = await tcpPeer(t, port)
      const sock = peer.sock
      const n = split ? 21 : 20
      const bad = request('TCP', 5060, n, noColon)
      if (split) {
        const options = Buffer.from(`OPTIONS sip:127.0.0.1:${port} SIP/2.0\r\nVia: SIP/2.0/TCP ${PEER};branch=z9hG4bK-unindexed-o\r\nFrom: <sip:p@example.test>;tag=o\r\nTo: <sip:127.0.0.1>\r\nCall-ID: unindexed-o@test\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n`)
        sock.write(Buffer.concat([options, bad.subarray(0, 50)]))
        await delay(50)
        sock.write(bad.subarray(50, 120))
        await delay(50)
        sock.write(bad.subarray(120))
      } else {
        sock.write(bad)
      }
      await peer.closedWithin(3000)
      t.ok(peer.closed, 'sipd closes the connection (framing is lost)')
      const a = answers(peer.got)
      t.same(a.map(x => [x.status, x.callId]), [...(split ? [[200, 'unindexed-o@test']] : []), [400, `unindexed-${n}@test`]], split ? 'split: OPTIONS 200, then 400' : 'whole: 400')
    }
  })

  t.test('TCP: a message over limits.max_message_size gets 513 before the connection closes (RFC 3261 §21.4.11)', async t => {
    const peer = await tcpPeer(t, port)
    const sock = peer.sock
    const big = request('TCP', 5060, 30, l => [...l.slice(0, -1), 'Content-Type: text/plain', 'Content-Length: 5000'])
    sock.write(Buffer.concat([big, Buffer.alloc(5000, 0x78)]))
    await peer.closedWithin(3000)
    t.ok(peer.closed, 'closed')
    t.same(answers(peer.got).map(x => [x.status, x.reason, x.callId]), [[513, 'Message Too Large', 'unindexed-30@test']])
  })

  t.test('sipd still serves', async t => {
    const sock = dgram.createSocket('udp4')
    await new Promise<void>(resolve => sock.bind(0, PEER, resolve))
    t.teardown(() => { sock.close() })
    const reply = new Promise<string>(resolve => sock.once('message', m => { resolve(m.toString('latin1')) }))
    sock.send(Buffer.from(`OPTIONS sip:127.0.0.1:${port} SIP/2.0\r\nVia: SIP/2.0/UDP ${PEER}:${sock.address().port};branch=z9hG4bK-unindexed-after\r\nFrom: <sip:p@example.test>;tag=a\r\nTo: <sip:127.0.0.1>\r\nCall-ID: unindexed-after@test\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n`), port, '127.0.0.1')
    t.match(await reply, /^SIP\/2\.0 200 /)
  })
})
