// sipd on the IPv6 loopback: sipp's built-in uac over UDP and TCP against a
// routing module answering as UAS, an OPTIONS to sipd itself with rport
// (RFC 3581 §4: received and rport filled in even when the address matches),
// and the listen addresses logged as they are configured ([::1]:port).
import t from 'tap'
import dgram from 'node:dgram'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseMessage } from '@sipd/sip-parser'
import type { SipResponse } from '@sipd/sip-parser'
import { describeSipp, runSipp } from './helpers/sipp.js'
import { freePort } from './helpers/servers.js'
import { spawnSipd } from './helpers/spawn-sipd.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const element = path.join(here, 'fixtures', 'uas-element.mjs')

t.test('sipd on [::1]', async t => {
  const port = await freePort('::1', 'both')
  const http = await freePort('127.0.0.1', 'tcp')
  const sipd = await spawnSipd({
    configYaml: [
      `listen: ["udp:[::1]:${port}", "tcp:[::1]:${port}"]`,
      `http: "127.0.0.1:${http}"`,
      `routing: ${JSON.stringify(element)}`
    ].join('\n') + '\n'
  })
  t.teardown(async () => { await sipd.stop() })

  t.match(sipd.logs(), `"udp:[::1]:${port}","tcp:[::1]:${port}"`, 'the listen addresses are logged with brackets')

  for (const transport of ['u1', 't1'] as const) {
    await t.test(`sipp uac over ${transport === 'u1' ? 'UDP' : 'TCP'}`, async t => {
      const r = await runSipp({ builtin: 'uac', remote: `[::1]:${port}`, localIp: '::1', transport, calls: 20, rate: 20, timeoutSec: 60 })
      t.equal(r.code, 0, describeSipp(r))
      t.equal(r.stats?.successful, 20, 'every call succeeded')
    })
  }

  await t.test('OPTIONS to sipd itself with rport', async t => {
    const sock = dgram.createSocket('udp6')
    await new Promise<void>(resolve => sock.bind(0, '::1', resolve))
    t.teardown(() => { sock.close() })
    const local = sock.address().port
    const reply = new Promise<Buffer>(resolve => sock.once('message', m => { resolve(m) }))
    sock.send(Buffer.from([
      `OPTIONS sip:[::1]:${port} SIP/2.0`,
      `Via: SIP/2.0/UDP [::1]:${local};rport;branch=z9hG4bK-v6-options`,
      'From: <sip:probe@example.test>;tag=v6',
      `To: <sip:[::1]:${port}>`,
      'Call-ID: v6-options@test',
      'CSeq: 1 OPTIONS',
      'Max-Forwards: 70',
      'Content-Length: 0',
      '', ''
    ].join('\r\n')), port, '::1')
    const resp = parseMessage(await reply) as SipResponse
    t.equal(resp.status, 200)
    t.ok(resp.header('Allow')?.includes('INVITE'), 'Allow (sipd answered, not the routing module)')
    t.equal(resp.topVia?.rport, local, 'rport filled in')
    t.equal(resp.topVia?.received, '::1', 'received added (RFC 3581 §4)')
  })
})
