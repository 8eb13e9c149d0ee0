// sipd as a stateful proxy between a trunk and media nodes, with real sipp
// parties on their own loopback addresses: the trunk (127.0.0.2, trusted)
// calls through sipd to media nodes picked by the dispatcher; ACK and BYE
// follow the Record-Route set; CANCEL before the answer gets 487; a media
// node answering 503 is failed over; Max-Forwards 0 gets 483, a loop 482,
// an unknown source calling a foreign domain 403, and a subscriber's phone
// 407 until it authenticates.
import t from 'tap'
import dgram from 'node:dgram'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseMessage } from '@sipd/sip-parser'
import type { SipResponse } from '@sipd/sip-parser'
import { describeSipp, runSipp, startSippUas } from './helpers/sipp.js'
import type { SippUasHandle } from './helpers/sipp.js'
import { freePort } from './helpers/servers.js'
import { spawnSipd } from './helpers/spawn-sipd.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const scenario = (name: string): string => path.join(here, 'sipp', name)

const TRUNK = '127.0.0.2'

/** Sends one request from `localIp` and collects the response statuses until a final one (bounded). */
async function exchange (localIp: string, port: number, build: (localPort: number) => string): Promise<SipResponse[]> {
  const sock = dgram.createSocket('udp4')
  await new Promise<void>(resolve => sock.bind(0, localIp, resolve))
  const localPort = sock.address().port
  const got: SipResponse[] = []
  try {
    return await new Promise<SipResponse[]>(resolve => {
      const timer = setTimeout(() => resolve(got), 5000)
      sock.on('message', (data) => {
        const m = parseMessage(data)
        if (m.isRequest) return
        got.push(m)
        if (m.status >= 200) {
          clearTimeout(timer)
          resolve(got)
        }
      })
      sock.send(Buffer.from(build(localPort).replace(/\n/g, '\r\n')), port, '127.0.0.1')
    })
  } finally {
    sock.close()
  }
}

function invite (localIp: string, localPort: number, uri: string, opts: { maxForwards?: number, to?: string } = {}): string {
  const tag = Math.random().toString(16).slice(2)
  return `INVITE ${uri} SIP/2.0
Via: SIP/2.0/UDP ${localIp}:${localPort};branch=z9hG4bK${tag}
Max-Forwards: ${opts.maxForwards ?? 70}
From: <sip:caller@${localIp}>;tag=${tag}
To: <${opts.to ?? uri}>
Call-ID: ${tag}@${localIp}
CSeq: 1 INVITE
Contact: <sip:caller@${localIp}:${localPort}>
Content-Length: 0

`
}

t.test('trunk → sipd → media nodes', async t => {
  const port = await freePort('127.0.0.1', 'udp')
  const http = await freePort('127.0.0.1', 'tcp')
  const uas: SippUasHandle[] = []
  t.teardown(async () => { for (const u of uas) await u.stop() })
  const start = async (ip: string, file: string): Promise<SippUasHandle> => {
    const u = await startSippUas({ scenario: scenario(file), localIp: ip, maxLifetimeSec: 120, extraArgs: ['-aa'] })
    uas.push(u)
    return u
  }
  const nodeA = await start('127.0.0.3', 'proxy-uas.xml')
  const nodeB = await start('127.0.0.4', 'proxy-uas.xml')
  const down = await start('127.0.0.5', 'proxy-uas-503.xml')
  const spare = await start('127.0.0.6', 'proxy-uas.xml')
  const ringer = await start('127.0.0.7', 'proxy-uas-cancel.xml')

  const sipd = await spawnSipd({
    configYaml: `
listen: ["udp:127.0.0.1:${port}"]
http: "127.0.0.1:${http}"
log_level: warn
domains: ["example.test"]
subscribers:
  users:
    - { user: alice, domain: example.test, password: alice-secret }
trusted: ["${TRUNK}/32", "127.0.0.1/32"]
media:
  probe: { interval_ms: 3600000 }
  did_sets: { "7": 4, "8": 3, "9": 2 }
  sets:
    - id: 1
      algorithm: round-robin
      nodes:
        - { uri: "sip:${nodeA.address}" }
        - { uri: "sip:${nodeB.address}" }
    - id: 2
      algorithm: round-robin
      nodes:
        - { uri: "sip:127.0.0.1:${port}" }
    - id: 3
      algorithm: priority
      nodes:
        - { uri: "sip:${down.address}", priority: 0 }
        - { uri: "sip:${spare.address}", priority: 1 }
    - id: 4
      algorithm: round-robin
      nodes:
        - { uri: "sip:${ringer.address}" }
`
  })
  t.teardown(async () => { await sipd.stop() })

  await t.test('calls complete; ACK and BYE follow the Record-Route set', async t => {
    const r = await runSipp({ scenario: scenario('proxy-uac.xml'), remote: `127.0.0.1:${port}`, localIp: TRUNK, calls: 20, rate: 10, timeoutSec: 60, extraArgs: ['-s', '5551000'] })
    t.equal(r.code, 0, describeSipp(r))
    t.equal(r.stats?.successful, 20, 'every call succeeded')
    t.equal(r.stats?.failed, 0, 'no call failed')
  })

  await t.test('CANCEL before the answer reaches the media node; 487 comes back', async t => {
    const r = await runSipp({ scenario: scenario('proxy-uac-cancel.xml'), remote: `127.0.0.1:${port}`, localIp: TRUNK, calls: 5, rate: 5, timeoutSec: 60, extraArgs: ['-s', '7001'] })
    t.equal(r.code, 0, describeSipp(r))
    t.equal(r.stats?.successful, 5, 'every call was cancelled with 200 and 487')
  })

  await t.test('a media node answering 503 is failed over to the next', async t => {
    const r = await runSipp({ scenario: scenario('proxy-uac.xml'), remote: `127.0.0.1:${port}`, localIp: TRUNK, calls: 3, rate: 3, timeoutSec: 60, extraArgs: ['-s', '8001'] })
    t.equal(r.code, 0, describeSipp(r))
    t.equal(r.stats?.successful, 3, 'every call was answered by the spare node')
  })

  await t.test('Max-Forwards 0 gets 483', async t => {
    const got = await exchange(TRUNK, port, p => invite(TRUNK, p, 'sip:5551000@127.0.0.1', { maxForwards: 0 }))
    t.same(got.map(r => r.status).filter(s => s !== 100), [483])
  })

  await t.test('a request that loops back to sipd gets 482', async t => {
    const got = await exchange(TRUNK, port, p => invite(TRUNK, p, `sip:9000@127.0.0.1:${port}`))
    t.same(got.map(r => r.status).filter(s => s !== 100), [482])
  })

  await t.test('an unknown source calling a foreign domain gets 403', async t => {
    const got = await exchange('127.0.0.9', port, p => invite('127.0.0.9', p, 'sip:bob@elsewhere.test'))
    t.same(got.map(r => r.status).filter(s => s !== 100), [403])
  })

  await t.test('a phone gets 407, authenticates as a subscriber, and reaches a media node', async t => {
    const r = await runSipp({ scenario: scenario('proxy-uac-auth.xml'), remote: `127.0.0.1:${port}`, localIp: '127.0.0.10', calls: 2, rate: 2, timeoutSec: 60, extraArgs: ['-s', '5552000', '-au', 'alice', '-ap', 'alice-secret'] })
    t.equal(r.code, 0, describeSipp(r))
    t.equal(r.stats?.successful, 2, 'both calls were challenged, authenticated and answered')
  })

  await t.test('a phone with a wrong password gets challenged again, not through', async t => {
    const r = await runSipp({ scenario: scenario('proxy-uac-auth.xml'), remote: `127.0.0.1:${port}`, localIp: '127.0.0.11', calls: 1, timeoutSec: 5, extraArgs: ['-s', '5552000', '-au', 'alice', '-ap', 'wrong'] })
    t.not(r.code, 0, 'the call failed')
    t.equal(r.stats?.successful, 0, 'no call got through (the media node counts below include none from it)')
  })

  const health = await fetch(`${sipd.httpUrl}/healthz`)
  t.equal(health.status, 200, 'sipd is healthy after the runs')

  // What each media node saw. sipp counts a call per INVITE and one for the
  // OPTIONS probe sipd sent each node at start (answered by sipp's -aa; the
  // probe interval is an hour, so there is exactly one).
  const seen = async (u: SippUasHandle): Promise<number> => ((await u.stop()).stats?.incoming ?? 0) - 1
  const a = await seen(nodeA)
  const b = await seen(nodeB)
  t.equal(a + b, 22, `the 20 trunk calls and 2 authenticated phone calls reached set 1 (${a} + ${b})`)
  t.ok(a >= 10 && b >= 10, `round-robin spread them over both nodes (${a}, ${b})`)
  t.equal(await seen(down), 1, 'the 503 node got the first failover call only, then was taken out of selection')
  t.equal(await seen(spare), 3, 'the spare node answered every failover call')
  t.equal(await seen(ringer), 5, 'every CANCELled call had reached its media node')
})
