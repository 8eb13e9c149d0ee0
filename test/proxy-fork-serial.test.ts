// Forking to an AOR's contacts by q (issue 4: "highest q first as serial
// groups"), with sipp phones on loopback: alice has two contacts at q=1.0
// (UDP phones that ring, then answer 486 after a while) and one at q=0.5 (a
// TCP phone). A media node's call rings both q=1.0 phones in parallel; only
// when both have failed does the q=0.5 phone ring, and it answers. Had it
// rung in parallel, its 200 would have CANCELled the ringing phones, whose
// scenarios fail on a CANCEL. The q=0.5 phone gets INVITE, ACK and BYE over
// the TCP connection it registered on (its Contact port has no listener),
// and sipd opens no connection to it (RFC 5626 §5.3 flow reuse on one node).
import t from 'tap'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { delay } from './helpers/process.js'
import { describeSipp, runSipp, startSippUas } from './helpers/sipp.js'
import type { SippUasHandle } from './helpers/sipp.js'
import { freePort } from './helpers/servers.js'
import { metricValue, spawnSipd } from './helpers/spawn-sipd.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const scenario = (name: string): string => path.join(here, 'sipp', name)
const DOMAIN = 'example.test'
const MEDIA = '127.0.0.150'
const BUSY_1 = '127.0.0.151'
const BUSY_2 = '127.0.0.152'
const TCP_PHONE = '127.0.0.153'
const SIPD = '127.0.0.159'
/** TCP port 9 (discard) on the phone's address: nothing listens there. */
const DEAD_PORT = 9

t.test('contacts of one AOR: q=1.0 in parallel, then q=0.5 over its TCP flow', async t => {
  const port = await freePort(SIPD, 'both')
  const http = await freePort(SIPD, 'tcp')
  const mediaPort = await freePort(MEDIA, 'udp')
  const sipd = await spawnSipd({
    configYaml: `
listen: ["udp:${SIPD}:${port}", "tcp:${SIPD}:${port}"]
http: "${SIPD}:${http}"
log_level: warn
domains: ["${DOMAIN}"]
subscribers:
  users:
    - { user: alice, domain: ${DOMAIN}, password: alice-secret }
media:
  probe: { interval_ms: 3600000 }
  sets:
    - id: 1
      algorithm: round-robin
      nodes:
        - { uri: "sip:${MEDIA}:${mediaPort}" }
`
  })
  t.teardown(async () => { await sipd.stop() })
  const auth = ['-s', 'alice', '-au', 'alice', '-ap', 'alice-secret', '-key', 'domain', DOMAIN]

  // The two q=1.0 phones: registered over UDP, then answering on the same port.
  const busy: SippUasHandle[] = []
  t.teardown(async () => { for (const u of busy) await u.stop() })
  for (const [ip, ringMs] of [[BUSY_1, 1500], [BUSY_2, 300]] as const) {
    const p = await freePort(ip, 'udp')
    const r = await runSipp({ scenario: scenario('register-auth-q.xml'), remote: `${SIPD}:${port}`, localIp: ip, localPort: p, calls: 1, timeoutSec: 20, extraArgs: [...auth, '-key', 'expires', '300', '-key', 'q', '1.0'] })
    t.equal(r.code, 0, `phone ${ip} registered with q=1.0: ${describeSipp(r)}`)
    busy.push(await startSippUas({ scenario: scenario('proxy-uas-busy-late.xml'), localIp: ip, localPort: p, calls: 1, maxLifetimeSec: 60, extraArgs: ['-d', String(ringMs)] }))
  }

  // The q=0.5 phone: registers over TCP and holds its connection; the call is answered by the out-of-call scenario.
  const logDir = await mkdtemp(path.join(os.tmpdir(), 'sipd-fork-serial-'))
  t.teardown(async () => { await rm(logDir, { recursive: true, force: true }) })
  const phoneLog = path.join(logDir, 'phone-messages.log')
  const tcpPhone = runSipp({
    scenario: scenario('phone-register-hold.xml'),
    remote: `${SIPD}:${port}`,
    localIp: TCP_PHONE,
    transport: 't1',
    calls: 1,
    timeoutSec: 30,
    extraArgs: ['-oocsf', scenario('phone-answer-ooc.xml'), ...auth, '-key', 'cport', String(DEAD_PORT), '-key', 'q', '0.5', '-d', '8000', '-trace_msg', '-message_file', phoneLog]
  })
  let bindings: Array<{ contact: string, q?: number }> = []
  for (let i = 0; i < 200 && bindings.length < 3; i++) {
    const res = await fetch(`${sipd.httpUrl}/api/locations?aor=${encodeURIComponent(`sip:alice@${DOMAIN}`)}`)
    bindings = (await res.json() as { bindings: typeof bindings }).bindings
    if (bindings.length < 3) await delay(50)
  }
  t.same(bindings.map(b => b.q), [1, 1, 0.5], 'three bindings, best q first')

  const connectedBefore = await metricValue(sipd, 'sipd_tcp_connection_events_total{event="connected"}')
  const r = await runSipp({ scenario: scenario('proxy-uac-aor.xml'), remote: `${SIPD}:${port}`, localIp: MEDIA, localPort: mediaPort, calls: 1, timeoutSec: 30, extraArgs: ['-s', 'alice', '-key', 'domain', DOMAIN] })
  t.equal(r.code, 0, describeSipp(r))
  t.equal(r.stats?.successful, 1, 'the call was answered (by the q=0.5 phone), ACKed and hung up')

  for (const [i, u] of busy.entries()) {
    const done = await u.finished
    t.equal(done.stats?.successful, 1, `q=1.0 phone ${i + 1} rang and answered 486 with no CANCEL meanwhile: ${describeSipp(done)}`)
  }
  const p = await tcpPhone
  t.equal(p.code, 0, `the TCP phone registered and held on: ${describeSipp(p)}`)
  const log = await readFile(phoneLog, 'utf8')
  const received = (method: string): number => log.split(/message received \[\d+\] bytes :\s*\n\s*\n?/).slice(1).filter(m => m.startsWith(`${method} `)).length
  t.equal(received('INVITE'), 1, 'the q=0.5 phone got the INVITE')
  t.equal(received('ACK'), 1, 'and the ACK')
  t.equal(received('BYE'), 1, 'and the BYE')
  t.equal(await metricValue(sipd, 'sipd_tcp_connection_events_total{event="connected"}'), connectedBefore, 'sipd opened no TCP connection: the phone\'s own carried the call')
})
