// Calls out of a media node to carriers: a media node (sipp uac at
// 127.0.0.3) calls a number; sipd picks the trunk route by longest prefix and
// tries its gateways in order: carrier-a answers 503, so carrier-b gets the
// call and carrier-a is skipped for down_for_ms. A number without a route
// gets 404.
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

t.test('media node → sipd → carriers by longest prefix with failover', async t => {
  const port = await freePort('127.0.0.1', 'udp')
  const http = await freePort('127.0.0.1', 'tcp')
  const mediaPort = await freePort(MEDIA, 'udp')
  const uas: SippUasHandle[] = []
  t.teardown(async () => { for (const u of uas) await u.stop() })
  const carrierA = await startSippUas({ scenario: scenario('proxy-uas-503.xml'), localIp: '127.0.0.5', maxLifetimeSec: 120 })
  uas.push(carrierA)
  const carrierB = await startSippUas({ scenario: scenario('proxy-uas.xml'), localIp: '127.0.0.6', maxLifetimeSec: 120 })
  uas.push(carrierB)
  const sipd = await spawnSipd({
    configYaml: `
listen: ["udp:127.0.0.1:${port}"]
http: "127.0.0.1:${http}"
log_level: warn
media:
  probe: { interval_ms: 3600000 }
  sets:
    - id: 1
      algorithm: round-robin
      nodes:
        - { uri: "sip:${MEDIA}:${mediaPort}" }
trunks:
  down_for_ms: 600000
  gateways:
    - { id: carrier-a, uri: "sip:${carrierA.address}" }
    - { id: carrier-b, uri: "sip:${carrierB.address}" }
    - { id: carrier-c, uri: "sip:127.0.0.8:5090" }
  routes:
    - { prefix: "1", gateways: [carrier-a, carrier-b] }
    - { prefix: "44", gateways: [carrier-c] }
`
  })
  t.teardown(async () => { await sipd.stop() })

  await t.test('carrier-a answers 503, carrier-b gets every call', async t => {
    const r = await runSipp({ scenario: scenario('proxy-uac.xml'), remote: `127.0.0.1:${port}`, localIp: MEDIA, localPort: mediaPort, calls: 3, rate: 2, timeoutSec: 60, extraArgs: ['-s', '15551234567'] })
    t.equal(r.code, 0, describeSipp(r))
    t.equal(r.stats?.successful, 3, 'every call was answered by carrier-b')
  })

  await t.test('a number without a trunk route gets 404', async t => {
    t.same((await inviteStatuses(MEDIA, port, 'sip:2000@127.0.0.1')).filter(s => s !== 100), [404])
  })

  const a = (await carrierA.stop()).stats?.incoming
  const b = (await carrierB.stop()).stats?.incoming
  t.equal(a, 1, 'carrier-a got the first call only, then was skipped while marked down')
  t.equal(b, 3, 'carrier-b got all three calls')
})
