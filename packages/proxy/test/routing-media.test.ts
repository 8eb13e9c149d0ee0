// The default policy's calls into a media set, in process (fake clock, no
// sockets): failover to another node of the set after a 5xx, and the
// dispatcher's call count (least-calls balancing) taken back when the call
// fails and kept while it is answered.
import t from 'tap'
import { parseMessage } from '@sipd/sip-parser'
import type { SipRequest } from '@sipd/sip-parser'
import { FakeClock, TransactionLayer } from '@sipd/sip-stack'
import type { SendTarget, Source } from '@sipd/sip-stack'
import { buildConfig } from '../src/config.js'
import { createLogger } from '../src/logger.js'
import { ProxyCore } from '../src/proxy-core.js'
import { DefaultRouting } from '../src/routing-default.js'

const LOCAL = { address: '127.0.0.1', port: 5060 }
const TRUNK: Source = { transport: 'udp', address: '127.0.0.2', port: 5060, local: LOCAL, flowId: 'udp/0/127.0.0.2/5060' }
const NODE_A = 'sip:127.0.0.3:5080'
const NODE_B = 'sip:127.0.0.4:5080'

function harness (): { sent: Array<{ bytes: Buffer, target: SendTarget }>, tl: TransactionLayer, policy: DefaultRouting } {
  const sent: Array<{ bytes: Buffer, target: SendTarget }> = []
  const send = (bytes: Buffer, target: SendTarget): { ok: true, flowId: string, local: typeof LOCAL } => {
    sent.push({ bytes, target })
    return { ok: true, flowId: 'x', local: LOCAL }
  }
  const holder: { core?: ProxyCore, policy?: DefaultRouting } = {}
  const tl = new TransactionLayer({
    send,
    onRequest: tx => { holder.policy!.route(tx) },
    onStrayResponse: r => { holder.core!.relayStray(r) },
    clock: new FakeClock(),
    detectMergedRequests: false
  })
  const listeners = [{ transport: 'udp' as const, address: '127.0.0.1', port: 5060, family: 4 as const }]
  holder.core = new ProxyCore({ transactions: tl, listeners: () => listeners, sendResponse: send })
  const config = buildConfig({
    trusted: ['127.0.0.2/32'],
    media: { sets: [{ id: 1, algorithm: 'round-robin', nodes: [{ uri: NODE_A }, { uri: NODE_B }] }] }
  })
  holder.policy = new DefaultRouting({ config, core: holder.core, transactions: tl, logger: createLogger('silent'), servedHosts: new Set(['127.0.0.1']), probe: false })
  return { sent, tl, policy: holder.policy }
}

function invite (callId: string): SipRequest {
  return parseMessage(`INVITE sip:5551000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bK-${callId}\r\nMax-Forwards: 70\r\nFrom: <sip:trunk@127.0.0.2>;tag=f1\r\nTo: <sip:5551000@127.0.0.1>\r\nCall-ID: ${callId}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n`) as SipRequest
}

/** A node's answer to the INVITE sipd forwarded (its Vias copied, as a UAS does). */
function answer (forwarded: Buffer, status: number): Buffer {
  const fwd = parseMessage(forwarded) as SipRequest
  const vias = fwd.headers('via').map(v => `Via: ${v}\r\n`).join('')
  return Buffer.from(`SIP/2.0 ${status} X\r\n${vias}From: ${fwd.header('from')!}\r\nTo: ${fwd.header('to')!};tag=n\r\nCall-ID: ${fwd.callId}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n`, 'latin1')
}

function nodeSource (uri: string): Source {
  const address = uri.slice(4, uri.lastIndexOf(':'))
  return { transport: 'udp', address, port: 5080, local: LOCAL, flowId: `udp/0/${address}/5080` }
}

function invitesTo (sent: Array<{ bytes: Buffer, target: SendTarget }>): Array<{ bytes: Buffer, address: string }> {
  return sent.filter(s => s.bytes.subarray(0, 7).toString() === 'INVITE ').map(s => ({ bytes: s.bytes, address: s.target.address }))
}

function finals (sent: Array<{ bytes: Buffer, target: SendTarget }>): number[] {
  return sent.filter(s => s.bytes.subarray(0, 8).toString() === 'SIP/2.0 ').map(s => Number(s.bytes.subarray(8, 11).toString())).filter(s => s >= 200)
}

t.test('a 503 from a media node fails over to the next node; a failed call is counted out, an answered one stays counted', async t => {
  const h = harness()
  h.tl.receive(invite('call-1'), TRUNK)
  const first = invitesTo(h.sent)
  t.equal(first.length, 1)
  const a = `sip:${first[0]!.address}:5080`
  const b = a === NODE_A ? NODE_B : NODE_A
  t.equal(h.policy.dispatcher.activeCalls(a), 1, 'the call counts on the node it went to')
  h.tl.receive(parseMessage(answer(first[0]!.bytes, 503)), nodeSource(a))
  const both = invitesTo(h.sent)
  t.same(both.map(i => `sip:${i.address}:5080`), [a, b], 'failed over to the other node')
  t.equal(h.sent.filter(s => s.target.address === '127.0.0.2').length, 1, 'only the 100 Trying upstream so far')
  h.tl.receive(parseMessage(answer(both[1]!.bytes, 486)), nodeSource(b))
  t.same(finals(h.sent).filter(s => s !== 503), [486], 'the 486 goes upstream')
  t.equal(h.policy.dispatcher.activeCalls(b), 0, 'a failed call is counted out')
  t.equal(h.policy.dispatcher.activeCalls(a), 0)

  const before = h.sent.length
  h.tl.receive(invite('call-2'), TRUNK)
  const next = invitesTo(h.sent.slice(before))
  t.equal(next.length, 1)
  const node = `sip:${next[0]!.address}:5080`
  h.tl.receive(parseMessage(answer(next[0]!.bytes, 200)), nodeSource(node))
  t.same(finals(h.sent.slice(before)), [200])
  t.equal(h.policy.dispatcher.activeCalls(node), 1, 'an answered call stays counted until its BYE')
})
