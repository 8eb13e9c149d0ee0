// RFC 3261 §16.4 / §16.6 step 6 on the forwarded bytes: our own Route
// entries leave the Route set, every other entry stays, in order, whether
// the request is forwarded statelessly (an ACK for a 2xx) or through a
// transaction (an in-dialog BYE); in process, no sockets.
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
const PEER: Source = { transport: 'udp', address: '127.0.0.2', port: 5060, local: LOCAL, flowId: 'udp/0/127.0.0.2/5060' }
const OURS = '<sip:127.0.0.1:5060;transport=udp;lr>'

function harness (): { sent: Array<{ bytes: Buffer, target: SendTarget }>, tl: TransactionLayer, core: ProxyCore } {
  const sent: Array<{ bytes: Buffer, target: SendTarget }> = []
  const send = (bytes: Buffer, target: SendTarget): { ok: true, flowId: string, local: typeof LOCAL } => {
    sent.push({ bytes, target })
    return { ok: true, flowId: 'x', local: LOCAL }
  }
  const holder: { core?: ProxyCore, policy?: DefaultRouting } = {}
  const tl = new TransactionLayer({ send, onRequest: tx => { holder.policy!.route(tx) }, clock: new FakeClock(), detectMergedRequests: false })
  const listeners = [{ transport: 'udp' as const, address: '127.0.0.1', port: 5060, family: 4 as const }]
  holder.core = new ProxyCore({ transactions: tl, listeners: () => listeners, sendResponse: send })
  holder.policy = new DefaultRouting({ config: buildConfig({ trusted: ['127.0.0.2/32'] }), core: holder.core, transactions: tl, logger: createLogger('silent'), servedHosts: new Set(['127.0.0.1']), probe: false })
  return { sent, tl, core: holder.core }
}

function request (method: string, routeLines: string[]): SipRequest {
  const routes = routeLines.map(r => `Route: ${r}\r\n`).join('')
  return parseMessage(`${method} sip:node@127.0.0.9:5080 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bK-${method}${routeLines.length}\r\n${routes}Max-Forwards: 70\r\nFrom: <sip:a@127.0.0.2>;tag=f\r\nTo: <sip:b@127.0.0.9>;tag=t\r\nCall-ID: rs@127.0.0.2\r\nCSeq: ${method === 'ACK' ? 1 : 2} ${method}\r\nContent-Length: 0\r\n\r\n`) as SipRequest
}

const cases: Array<[string, string[], string[], string]> = [
  ['ours alone', [OURS], [], '127.0.0.9'],
  ['ours first in a line with another', [`${OURS}, <sip:127.0.0.7;lr>`], ['<sip:127.0.0.7;lr>'], '127.0.0.7'],
  ['ours in its own line, two more after it', [OURS, '<sip:127.0.0.7;lr>, <sip:127.0.0.8;lr>'], ['<sip:127.0.0.7;lr>', '<sip:127.0.0.8;lr>'], '127.0.0.7'],
  ['ours twice (RFC 5658), then another', [`${OURS}, ${OURS}`, '<sip:127.0.0.7;lr>'], ['<sip:127.0.0.7;lr>'], '127.0.0.7'],
  ['someone else first: nothing popped', ['<sip:127.0.0.7;lr>', OURS], ['<sip:127.0.0.7;lr>', OURS], '127.0.0.7']
]

for (const [name, lines, left, hop] of cases) {
  t.test(`Route set after forwarding: ${name}`, async t => {
    for (const method of ['ACK', 'BYE']) {
      const h = harness()
      if (method === 'ACK') t.ok(h.core.forwardStateless(request(method, lines), PEER), 'forwarded statelessly')
      else h.tl.receive(request(method, lines), PEER)
      const out = h.sent.filter(s => s.bytes.subarray(0, method.length).toString() === method)
      t.equal(out.length, 1, `${method} forwarded once`)
      const fwd = parseMessage(out[0]!.bytes) as SipRequest
      t.same(fwd.route.map(r => r.raw), left, `${method}: the Route set left`)
      t.equal(out[0]!.target.address, hop, `${method}: sent to the next hop`)
      t.equal(fwd.maxForwards, 69)
    }
  })
}
