// A whole dialog through sipd between sipp parties, as an operator checks a
// proxy: a trunk (trusted) calls a media node with a reliable 183 and its
// PRACK (RFC 3262), then INFO and MESSAGE in the dialog, a re-INVITE, a
// MESSAGE from the callee back to the caller, and BYE — every request after
// the INVITE by the Record-Route set. Over UDP and over TCP. (Not with
// sipp's -lost: a scenario cannot resend an ACK once it has moved on to the
// next request, so a lost ACK stalls the callee's script, not sipd.)
import t from 'tap'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describeSipp, runSipp, startSippUas } from './helpers/sipp.js'
import type { SippUasHandle } from './helpers/sipp.js'
import { freePort } from './helpers/servers.js'
import { spawnSipd } from './helpers/spawn-sipd.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const scenario = (name: string): string => path.join(here, 'sipp', name)

const TRUNK = '127.0.0.81'

t.test('a dialog with PRACK, INFO, MESSAGE and a re-INVITE through sipd', async t => {
  const port = await freePort('127.0.0.1', 'both')
  const http = await freePort('127.0.0.1', 'tcp')
  const uas: SippUasHandle[] = []
  t.teardown(async () => { for (const u of uas) await u.stop() })
  // A media node per transport, each in its own set, picked by the dialled prefix.
  for (const [ip, transport] of [['127.0.0.82', 'u1'], ['127.0.0.83', 't1']] as const) {
    uas.push(await startSippUas({ scenario: scenario('media-dialog-uas.xml'), localIp: ip, transport, maxLifetimeSec: 120, extraArgs: ['-aa', '-max_socket', '100'] }))
  }
  const sipd = await spawnSipd({
    configYaml: [
      `listen: ["udp:127.0.0.1:${port}", "tcp:127.0.0.1:${port}"]`,
      `http: "127.0.0.1:${http}"`,
      `trusted: ["${TRUNK}/32"]`,
      'media:',
      '  probe: { interval_ms: 3600000 }',
      '  sets:',
      `    - { id: 1, nodes: [{ uri: "sip:${uas[0]!.address}" }] }`,
      `    - { id: 2, nodes: [{ uri: "sip:${uas[1]!.address};transport=tcp" }] }`,
      '  did_sets: { "1": 1, "2": 2 }'
    ].join('\n') + '\n'
  })
  t.teardown(async () => { await sipd.stop() })

  const calls = async (number: string, transport: 'u1' | 't1', n: number): Promise<void> => {
    const r = await runSipp({
      scenario: scenario('trunk-dialog-uac.xml'),
      remote: `127.0.0.1:${port}`,
      localIp: TRUNK,
      transport,
      calls: n,
      rate: 10,
      timeoutSec: 90,
      extraArgs: ['-s', number, '-max_socket', '100']
    })
    t.equal(r.code, 0, describeSipp(r))
    t.equal(r.stats?.successful, n, 'every call went through all of its dialog')
  }

  await t.test('UDP', async () => { await calls('1000', 'u1', 5) })
  await t.test('TCP', async () => { await calls('2000', 't1', 5) })
})
