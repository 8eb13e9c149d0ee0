// A trunk over TCP, media nodes over UDP: sipd changes transport, so it
// record-routes twice (RFC 5658) and the trunk's ACK and BYE over TCP and the
// media node's answers over UDP each find their side.
import t from 'tap'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describeSipp, runSipp, startSippUas } from './helpers/sipp.js'
import { freePort } from './helpers/servers.js'
import { spawnSipd } from './helpers/spawn-sipd.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const scenario = (name: string): string => path.join(here, 'sipp', name)

t.test('trunk over TCP → sipd → media node over UDP', async t => {
  const port = await freePort('127.0.0.1', 'both')
  const http = await freePort('127.0.0.1', 'tcp')
  const node = await startSippUas({ scenario: scenario('proxy-uas.xml'), localIp: '127.0.0.3', maxLifetimeSec: 120, extraArgs: ['-aa'] })
  t.teardown(async () => { await node.stop() })
  const sipd = await spawnSipd({
    configYaml: `
listen: ["udp:127.0.0.1:${port}", "tcp:127.0.0.1:${port}"]
http: "127.0.0.1:${http}"
log_level: warn
trusted: ["127.0.0.2/32"]
media:
  probe: { interval_ms: 3600000 }
  sets:
    - id: 1
      algorithm: round-robin
      nodes:
        - { uri: "sip:${node.address}" }
`
  })
  t.teardown(async () => { await sipd.stop() })

  const r = await runSipp({ scenario: scenario('proxy-uac.xml'), remote: `127.0.0.1:${port}`, localIp: '127.0.0.2', transport: 't1', calls: 10, rate: 10, timeoutSec: 60, extraArgs: ['-s', '5551000'] })
  t.equal(r.code, 0, describeSipp(r))
  t.equal(r.stats?.successful, 10, 'every call set up and hung up across the transport change')
  // One OPTIONS probe at start is counted as a call by sipp too.
  t.equal(((await node.stop()).stats?.incoming ?? 0) - 1, 10, 'the media node got the 10 calls over UDP')
})
