// The transaction layer on real transports: two TransportLayers on loopback,
// each with its own TransactionLayer (real clock), exchanging OPTIONS and an
// INVITE answered 486 (hop-by-hop ACK) over UDP and over TCP.

import t from 'tap'
import type { SipResponse } from '@sipd/sip-parser'
import { TransactionLayer } from '../src/transaction-layer.js'
import type { AnyServerTransaction } from '../src/transaction-layer.js'
import type { ClientTransaction } from '../src/transaction-client.js'
import type { ServerInviteTransaction } from '../src/transaction-server-invite.js'
import { newBranch } from '../src/transaction-ids.js'
import { TransportLayer } from '../src/transport-layer.js'
import type { TransportName } from '../src/transport-types.js'
import { requestText } from './helpers/transaction-harness.js'

interface Node {
  transport: TransportLayer
  transactions: TransactionLayer
  serverTxs: AnyServerTransaction[]
}

async function node (onRequest: (tx: AnyServerTransaction) => void): Promise<Node> {
  const serverTxs: AnyServerTransaction[] = []
  // The TransactionLayer needs the TransportLayer's send and vice versa: wire through a holder.
  const holder: { tx?: TransactionLayer } = {}
  const transport = new TransportLayer({
    onMessage: (msg, source) => { holder.tx!.receive(msg, source) }
  }, { listen: ['udp:127.0.0.1:0', 'tcp:127.0.0.1:0'] })
  holder.tx = new TransactionLayer({
    send: async (bytes, target) => await transport.send(bytes, target),
    onRequest: tx => {
      serverTxs.push(tx)
      onRequest(tx)
    }
  })
  await transport.listen()
  return { transport, transactions: holder.tx, serverTxs }
}

/** Wait for a condition, polling every 5 ms, failing after 5 s (bounded, no timing assertion). */
async function until (what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (cond()) return
    await new Promise(resolve => setTimeout(resolve, 5))
  }
  throw new Error(`timed out waiting for ${what}`)
}

for (const transport of ['udp', 'tcp'] as TransportName[]) {
  t.test(`OPTIONS and a rejected INVITE over ${transport.toUpperCase()}`, async t => {
    const server = await node(tx => {
      if (tx.method === 'OPTIONS') tx.respond(200, 'OK', { headers: [['Allow', 'INVITE, ACK, CANCEL, OPTIONS, BYE']] })
      else if (tx.method === 'INVITE') tx.respond(486)
    })
    const client = await node(() => {})
    t.teardown(async () => {
      client.transactions.close()
      server.transactions.close()
      await client.transport.close()
      await server.transport.close()
    })
    const serverPort = server.transport.listeners.find(l => l.transport === transport)!.port
    const clientPort = client.transport.listeners.find(l => l.transport === transport)!.port
    const target = { transport, address: '127.0.0.1', port: serverPort }
    const sentBy = `127.0.0.1:${clientPort}`

    const finals: SipResponse[] = []
    const provisionals: SipResponse[] = []
    const ended: ClientTransaction[] = []
    const handler = {
      onProvisional: (r: SipResponse) => { provisionals.push(r) },
      onFinal: (r: SipResponse) => { finals.push(r) },
      onTimeout: () => { t.fail('timeout') },
      onTransportError: (e: Error) => { t.fail(e.message) },
      onTerminated: (tx: ClientTransaction) => { ended.push(tx) }
    }

    const options = client.transactions.createClient(Buffer.from(requestText({
      method: 'OPTIONS', transport: transport.toUpperCase(), sentBy, branch: newBranch(), callId: `opt-${transport}`
    })), target, handler)
    await until('200 to OPTIONS', () => finals.length === 1)
    t.equal(finals[0]!.status, 200)
    t.same(finals[0]!.headers('allow'), ['INVITE', 'ACK', 'CANCEL', 'OPTIONS', 'BYE'])
    t.equal(finals[0]!.cseq.method, 'OPTIONS')
    t.equal(server.serverTxs.length, 1)
    if (transport === 'tcp') t.equal(options.state, 'terminated', 'Timer K = 0 over TCP')
    else t.equal(options.state, 'completed', 'Timer K running over UDP')

    const invite = client.transactions.createClient(Buffer.from(requestText({
      transport: transport.toUpperCase(), sentBy, branch: newBranch(), callId: `inv-${transport}`
    })), target, handler)
    await until('486 to INVITE', () => finals.length === 2)
    t.same(provisionals.map(r => r.status), [100], 'the server sent 100 Trying at once')
    t.equal(finals[1]!.status, 486)
    const serverInvite = server.serverTxs[1] as ServerInviteTransaction
    await until('the ACK to reach the server', () => serverInvite.state !== 'completed')
    t.equal(serverInvite.state, transport === 'tcp' ? 'terminated' : 'confirmed', 'the hop-by-hop ACK matched the INVITE server transaction')
    t.equal(invite.state, transport === 'tcp' ? 'terminated' : 'completed')
    t.equal(server.transactions.counters.strayAcks, 0)
    t.equal(client.transactions.counters.transportErrors, 0)
  })
}
