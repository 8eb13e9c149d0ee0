// sipp's built-in uac against a sipd whose routing module answers as a UAS
// (test/fixtures/uas-element.mjs): over UDP, over TCP, and over UDP with 10%
// packet loss, where calls complete through the RFC 3261 §17 retransmissions
// of sipd's transactions and its UAS-core 2xx retransmissions (§13.3.1.4).
import t from 'tap'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describeSipp, runSipp } from './helpers/sipp.js'
import { freePort } from './helpers/servers.js'
import { spawnSipd } from './helpers/spawn-sipd.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const element = path.join(here, 'fixtures', 'uas-element.mjs')

async function metrics (url: string): Promise<string> {
  return await (await fetch(`${url}/metrics`)).text()
}

function counter (text: string, name: string, label: string): number {
  let sum = 0
  for (const line of text.split('\n')) {
    if (line.startsWith(name + '{') && line.includes(label)) sum += Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return sum
}

t.test('sipp uac against sipd as UAS', async t => {
  const port = await freePort('127.0.0.1', 'both')
  const http = await freePort('127.0.0.1', 'tcp')
  const sipd = await spawnSipd({
    configYaml: [
      `listen: ["udp:127.0.0.1:${port}", "tcp:127.0.0.1:${port}"]`,
      `http: "127.0.0.1:${http}"`,
      `routing: ${JSON.stringify(element)}`
    ].join('\n') + '\n'
  })
  t.teardown(async () => { await sipd.stop() })

  await t.test('UDP', async t => {
    const r = await runSipp({ builtin: 'uac', remote: `127.0.0.1:${port}`, localIp: '127.0.0.21', calls: 50, rate: 25, timeoutSec: 60 })
    t.equal(r.code, 0, describeSipp(r))
    t.equal(r.stats?.successful, 50, 'every call succeeded')
    t.equal(r.stats?.failed, 0, 'no call failed')
  })

  await t.test('TCP', async t => {
    const r = await runSipp({ builtin: 'uac', remote: `127.0.0.1:${port}`, localIp: '127.0.0.22', transport: 't1', calls: 50, rate: 25, timeoutSec: 60 })
    t.equal(r.code, 0, describeSipp(r))
    t.equal(r.stats?.successful, 50, 'every call succeeded')
  })

  await t.test('UDP with 10% packet loss', async t => {
    const before = counter(await metrics(sipd.httpUrl), 'sipd_retransmissions_total', 'direction="out"')
    const r = await runSipp({ builtin: 'uac', remote: `127.0.0.1:${port}`, localIp: '127.0.0.23', calls: 40, rate: 20, timeoutSec: 120, extraArgs: ['-lost', '10'] })
    t.equal(r.code, 0, describeSipp(r))
    t.equal(r.stats?.successful, 40, 'every call completed despite the losses')
    t.ok((r.stats?.retransmissions ?? 0) > 0, 'sipp retransmitted lost messages')
    const after = counter(await metrics(sipd.httpUrl), 'sipd_retransmissions_total', 'direction="out"')
    t.ok(after > before, `sipd retransmitted 2xx responses whose ACK was lost (${after - before})`)
  })

  const health = await fetch(`${sipd.httpUrl}/healthz`)
  t.equal(health.status, 200, 'sipd is healthy after the runs')
  const text = await metrics(sipd.httpUrl)
  t.ok(counter(text, 'sipd_requests_received_total', 'method="INVITE"') >= 140, 'INVITEs counted by method')
  const ok2xx = counter(text, 'sipd_responses_sent_total', 'class="2xx"')
  t.ok(ok2xx >= 140, `2xx responses counted by class (${ok2xx}; at least one per call)`)
  t.equal(await sipd.stop(), 0, 'SIGTERM: sipd exits 0')
})
