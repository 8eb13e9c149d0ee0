// A media node calling a registered subscriber through sipd: two phones
// (sipp) register alice's contacts, the media node (sipp uac at 127.0.0.3)
// calls sip:alice@example.test, sipd forks to both contacts in parallel, the
// first to answer wins and the other gets CANCEL (200 + 487). A subscriber
// without contacts gets 480, an unknown number without a trunk route 404.
import t from 'tap'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describeSipp, runSipp, startSippUas } from './helpers/sipp.js'
import type { SippUasHandle } from './helpers/sipp.js'
import { freePort } from './helpers/servers.js'
import { spawnSipd } from './helpers/spawn-sipd.js'
import { inviteStatuses } from './helpers/invite.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const scenario = (name: string): string => path.join(here, 'sipp', name)
const MEDIA = '127.0.0.3'

t.test('media node → sipd → registered phones (parallel fork)', async t => {
  const port = await freePort('127.0.0.1', 'udp')
  const http = await freePort('127.0.0.1', 'tcp')
  const mediaPort = await freePort(MEDIA, 'udp')
  const sipd = await spawnSipd({
    configYaml: `
listen: ["udp:127.0.0.1:${port}"]
http: "127.0.0.1:${http}"
log_level: warn
domains: ["example.test"]
subscribers:
  users:
    - { user: alice, domain: example.test, password: alice-secret }
    - { user: bob, domain: example.test, password: bob-secret }
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

  const phones = [{ ip: '127.0.0.12', port: await freePort('127.0.0.12', 'udp') }, { ip: '127.0.0.13', port: await freePort('127.0.0.13', 'udp') }]
  for (const p of phones) {
    const r = await runSipp({ scenario: scenario('register-auth-once.xml'), remote: `127.0.0.1:${port}`, localIp: p.ip, localPort: p.port, calls: 1, timeoutSec: 20, extraArgs: ['-s', 'alice', '-au', 'alice', '-ap', 'alice-secret', '-key', 'domain', 'example.test', '-key', 'expires', '300'] })
    t.equal(r.code, 0, `phone ${p.ip} registered: ${describeSipp(r)}`)
  }

  const uas: SippUasHandle[] = []
  t.teardown(async () => { for (const u of uas) await u.stop() })
  const answering = await startSippUas({ scenario: scenario('proxy-uas.xml'), localIp: phones[0]!.ip, localPort: phones[0]!.port, calls: 1, maxLifetimeSec: 60 })
  uas.push(answering)
  const ringing = await startSippUas({ scenario: scenario('proxy-uas-cancel.xml'), localIp: phones[1]!.ip, localPort: phones[1]!.port, calls: 1, maxLifetimeSec: 60 })
  uas.push(ringing)

  await t.test('both contacts ring, the first answer wins', async t => {
    const r = await runSipp({ scenario: scenario('proxy-uac-aor.xml'), remote: `127.0.0.1:${port}`, localIp: MEDIA, localPort: mediaPort, calls: 1, timeoutSec: 30, extraArgs: ['-s', 'alice', '-key', 'domain', 'example.test'] })
    t.equal(r.code, 0, describeSipp(r))
    t.equal(r.stats?.successful, 1, 'the call was answered, ACKed and hung up through sipd')
  })

  await t.test('a subscriber without contacts gets 480', async t => {
    t.same((await inviteStatuses(MEDIA, port, 'sip:bob@example.test')).filter(s => s !== 100), [480])
  })

  await t.test('a number that is neither a subscriber nor on a trunk route gets 404', async t => {
    t.same((await inviteStatuses(MEDIA, port, 'sip:4420@example.test')).filter(s => s !== 100), [404])
  })

  // Each phone exits by itself after its one call (-m 1), once its scenario has run to the end.
  const a = await answering.finished
  const b = await ringing.finished
  t.equal(a.stats?.incoming, 1, 'the answering phone got the INVITE')
  t.equal(b.stats?.incoming, 1, 'the other phone got the INVITE too')
  t.equal(a.stats?.successful, 1, `the answering phone's call completed (200, ACK, BYE)\n${describeSipp(a)}`)
  t.equal(b.stats?.successful, 1, `the other phone was CANCELled: it answered 200 to the CANCEL and 487, and got the ACK\n${describeSipp(b)}`)
})
