// ForwardOptions.responseTimeoutMs on real loopback UDP: a branch with no
// response at all fails over after it (not after Timer B), but a response
// that reached the socket while sipd's own event loop was blocked past the
// deadline is read before deciding: the node is not failed over for
// sipd's delay. The callee runs in a child process so that it answers while
// this process is busy.
import t from 'tap'
import { spawn } from 'node:child_process'
import dgram from 'node:dgram'
import { once } from 'node:events'
import { newBranch, TransactionLayer, TransportLayer } from '@sipd/sip-stack'
import type { AnyServerTransaction } from '@sipd/sip-stack'
import { ProxyCore } from '../src/proxy-core.js'
import type { BranchOutcome, ForwardTarget } from '../src/proxy-core.js'

interface Party { transport: TransportLayer, transactions: TransactionLayer, port: number }

async function party (onRequest: (tx: AnyServerTransaction) => void): Promise<Party> {
  const holder: { p?: Party } = {}
  const transport = new TransportLayer({ onMessage: (msg, source) => { holder.p!.transactions.receive(msg, source) } }, { listen: ['udp:127.0.0.1:0'] })
  const transactions = new TransactionLayer({ send: async (bytes, target) => await transport.send(bytes, target), onRequest })
  const listeners = await transport.listen()
  holder.p = { transport, transactions, port: listeners[0]!.port }
  return holder.p
}

async function until (what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (cond()) return
    await new Promise(resolve => setTimeout(resolve, 5))
  }
  throw new Error(`timed out waiting for ${what}`)
}

/** A callee in its own process: 180 after 50 ms, 200 after 700 ms, to every INVITE. */
const CALLEE = `
const dgram = require('node:dgram')
const s = dgram.createSocket('udp4')
s.on('message', (m, r) => {
  const text = m.toString('latin1')
  if (!text.startsWith('INVITE ')) return
  const head = text.slice(0, text.indexOf('\\r\\n\\r\\n')).split('\\r\\n')
  const keep = head.filter(l => /^(via|from|call-id|cseq|record-route):/i.test(l))
  const to = head.find(l => /^to:/i.test(l)) + ';tag=callee'
  const reply = (status) => s.send(Buffer.from(['SIP/2.0 ' + status, ...keep, to, 'Content-Length: 0', '', ''].join('\\r\\n')), r.port, r.address)
  setTimeout(() => reply('180 Ringing'), 50)
  setTimeout(() => reply('200 OK'), 700)
})
s.bind(0, '127.0.0.1', () => { process.stdout.write(String(s.address().port) + '\\n') })
`

function invite (callerPort: number, proxyPort: number, callId: string): Buffer {
  return Buffer.from([
    `INVITE sip:100@127.0.0.1:${proxyPort} SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:${callerPort};branch=${newBranch()}`,
    'Max-Forwards: 70',
    'From: <sip:trunk@127.0.0.1>;tag=c1',
    `To: <sip:100@127.0.0.1:${proxyPort}>`,
    `Call-ID: ${callId}`,
    'CSeq: 1 INVITE',
    `Contact: <sip:trunk@127.0.0.1:${callerPort}>`,
    'Content-Length: 0',
    '', ''
  ].join('\r\n'))
}

t.test('response timeout: failover when nothing came, none when sipd itself was late', async t => {
  const child = spawn(process.execPath, ['-e', CALLEE], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { if (child.exitCode === null) process.kill(child.pid!, 'SIGKILL') })
  const [line] = await once(child.stdout!, 'data') as [Buffer]
  const calleePort = Number(line.toString().trim())
  const mute = dgram.createSocket('udp4')
  await new Promise<void>(resolve => mute.bind(0, '127.0.0.1', resolve))
  const spare = await party(tx => { if (tx.method === 'INVITE') tx.respond(200) })

  const failovers: BranchOutcome[] = []
  let blockMs = 0
  const holder: { core?: ProxyCore } = {}
  const proxy = await party(tx => {
    const first: ForwardTarget = { destination: tx.request.callId.startsWith('mute') ? `sip:127.0.0.1:${mute.address().port}` : `sip:127.0.0.1:${calleePort}` }
    holder.core!.forward(tx, [first], {
      responseTimeoutMs: 100,
      failover: o => {
        failovers.push(o)
        return o.target === first ? { destination: `sip:127.0.0.1:${spare.port}` } : undefined
      }
    })
    if (blockMs > 0) {
      // Block this process from 20 ms after the INVITE left until well past the
      // response timeout: the callee's 180 (at 50 ms) waits unread in the
      // socket. Blocked in the check phase, so the next loop iteration runs
      // its timers (the expired response timeout) before it polls the socket.
      const ms = blockMs
      setTimeout(() => { setImmediate(() => { const end = Date.now() + ms; while (Date.now() < end); }) }, 20)
    }
  })
  holder.core = new ProxyCore({
    transactions: proxy.transactions,
    listeners: () => proxy.transport.listeners,
    sendResponse: async (bytes, via) => await proxy.transport.sendResponse(bytes, via)
  })
  const caller = await party(() => {})
  t.teardown(async () => {
    for (const p of [caller, proxy, spare]) {
      p.transactions.close()
      await p.transport.close()
    }
    mute.close()
  })
  const call = (callId: string): number[] => {
    const finals: number[] = []
    caller.transactions.createClient(invite(caller.port, proxy.port, callId), { transport: 'udp', address: '127.0.0.1', port: proxy.port }, {
      onFinal: r => { finals.push(r.status) },
      onTimeout: () => { finals.push(-408) },
      onTransportError: () => { finals.push(-503) }
    })
    return finals
  }

  await t.test('a node that sends nothing is failed over after the response timeout', async t => {
    const finals = call('mute-1')
    // Timer B (64·T1 = 32 s) would be far beyond this wait.
    await until('the spare node\'s answer', () => finals.length > 0)
    t.same(finals, [200])
    t.equal(failovers.length, 1)
    t.match(failovers[0], { status: 408, received: false, provisional: false })
  })

  await t.test('a 180 that arrived while sipd was blocked past the timeout is read first: no failover', async t => {
    failovers.length = 0
    blockMs = 480
    const finals = call('busy-1')
    await until('the callee\'s 200', () => finals.length > 0)
    blockMs = 0
    t.same(finals, [200], 'answered by the callee')
    t.same(failovers, [], 'never failed over')
  })
})
