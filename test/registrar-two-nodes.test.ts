// Two sipd nodes on loopback sharing the test Redis (issue 7, "many nodes"):
// a phone (sipp, -t t1: one TCP connection for the whole run) registers at
// node A; a media node (sipp uac) calls the phone's AOR at node B. B finds the
// binding in Redis, sees that node A holds its flow and sends the INVITE
// through A's flow URI (RFC 5626 §5.3); A sends it down the phone's own TCP
// connection. The phone's Contact names a port where nothing listens, so
// every request it gets (INVITE, ACK, BYE) can only have come over the
// connection it registered on; node A's metrics say it opened none.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { delay } from './helpers/process.js'
import { describeSipp, runSipp } from './helpers/sipp.js'
import { freePort } from './helpers/servers.js'
import { metricValue, spawnSipd } from './helpers/spawn-sipd.js'
import type { SipdHandle } from './helpers/spawn-sipd.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const scenario = (name: string): string => path.join(here, 'sipp', name)
const DOMAIN = 'example.test'
const NODE_A = '127.0.0.140'
const PHONE = '127.0.0.141'
const NODE_B = '127.0.0.142'
const MEDIA = '127.0.0.143'
/** The port of the phone's Contact: TCP port 9 (discard) on the phone's address, where nothing listens. */
const DEAD_PORT = 9

interface ApiBinding { contact: string, received?: { transport: string, address: string, port: number }, node?: string, flowUri?: string, path: string[] }

const redisUrl = process.env.SIPD_TEST_REDIS_URL
if (redisUrl === undefined || redisUrl === '') throw new Error('SIPD_TEST_REDIS_URL is not set: run through scripts/run-tests.mjs')

t.test('a phone registered over TCP at node A is called through node B', async t => {
  const prefix = `sipd-test:two-nodes:${randomBytes(4).toString('hex')}:`
  const mediaPort = await freePort(MEDIA, 'udp')
  const config = async (name: string, ip: string): Promise<{ yaml: string, port: number }> => {
    const port = await freePort(ip, 'both')
    const http = await freePort(ip, 'tcp')
    return {
      port,
      yaml: [
        `listen: ["udp:${ip}:${port}", "tcp:${ip}:${port}"]`,
        `http: "${ip}:${http}"`,
        `node_id: ${name}`,
        'log_level: warn',
        `domains: [${DOMAIN}]`,
        'subscribers:',
        '  users:',
        `    - { user: alice, domain: ${DOMAIN}, password: alice-secret }`,
        'redis:',
        `  url: ${JSON.stringify(redisUrl)}`,
        `  prefix: ${JSON.stringify(prefix)}`,
        'auth:',
        '  secret: "two-nodes-secret-0123456789abcdef"',
        'media:',
        '  probe: { interval_ms: 3600000 }',
        '  sets:',
        '    - id: 1',
        '      algorithm: round-robin',
        '      nodes:',
        `        - { uri: "sip:${MEDIA}:${mediaPort}" }`
      ].join('\n') + '\n'
    }
  }
  const a = await config('node-a', NODE_A)
  const b = await config('node-b', NODE_B)
  const nodeA = await spawnSipd({ configYaml: a.yaml })
  t.teardown(async () => { await nodeA.stop() })
  const nodeB = await spawnSipd({ configYaml: b.yaml })
  t.teardown(async () => { await nodeB.stop() })

  const bindingsAt = async (node: SipdHandle): Promise<ApiBinding[]> => {
    const res = await fetch(`${node.httpUrl}/api/locations?aor=${encodeURIComponent(`sip:alice@${DOMAIN}`)}`)
    return (await res.json() as { bindings: ApiBinding[] }).bindings
  }

  // The phone: registers at A over TCP and holds its connection open for 8 s; the call is answered by the out-of-call scenario.
  const logDir = await mkdtemp(path.join(os.tmpdir(), 'sipd-two-nodes-'))
  t.teardown(async () => { await rm(logDir, { recursive: true, force: true }) })
  const phoneLog = path.join(logDir, 'phone-messages.log')
  const phone = runSipp({
    scenario: scenario('phone-register-hold.xml'),
    remote: `${NODE_A}:${a.port}`,
    localIp: PHONE,
    transport: 't1',
    calls: 1,
    timeoutSec: 30,
    extraArgs: [
      '-oocsf', scenario('phone-answer-ooc.xml'),
      '-s', 'alice', '-au', 'alice', '-ap', 'alice-secret',
      '-key', 'domain', DOMAIN, '-key', 'cport', String(DEAD_PORT), '-key', 'q', '1.0',
      '-d', '8000',
      '-trace_msg', '-message_file', phoneLog
    ]
  })

  let seen: ApiBinding[] = []
  for (let i = 0; i < 200 && seen.length === 0; i++) {
    seen = await bindingsAt(nodeB)
    if (seen.length === 0) await delay(50)
  }
  await t.test('node B reads the binding from Redis: held by node A, with A\'s flow URI', async t => {
    t.equal(seen.length, 1, 'one binding, read at node B')
    const binding = seen[0]!
    t.equal(binding.node, 'node-a', 'held by node A')
    t.equal(binding.received?.transport, 'tcp')
    t.equal(binding.received?.address, PHONE)
    t.equal(binding.contact, `sip:alice@${PHONE}:${DEAD_PORT};transport=tcp`)
    t.match(binding.flowUri, new RegExp(`^sip:[A-Za-z0-9_.-]+@${NODE_A.replace(/\./g, '\\.')}:${a.port};transport=tcp;lr$`), 'A\'s flow URI: a flow token at A\'s TCP listener')
    t.same(binding.path, [], 'no Path: the phone registered directly')
  })

  const acceptedBefore = await metricValue(nodeA, 'sipd_tcp_connection_events_total{event="accepted"}')
  await t.test('the media node\'s call to node B reaches the phone over its TCP connection at A', async t => {
    const r = await runSipp({
      scenario: scenario('proxy-uac-aor.xml'),
      remote: `${NODE_B}:${b.port}`,
      localIp: MEDIA,
      localPort: mediaPort,
      calls: 1,
      timeoutSec: 20,
      extraArgs: ['-s', 'alice', '-key', 'domain', DOMAIN]
    })
    t.equal(r.code, 0, describeSipp(r))
    t.equal(r.stats?.successful, 1, 'answered by the phone, ACKed, and the BYE answered by the phone')
  })

  const p = await phone
  t.equal(p.code, 0, `the phone registered and held on: ${describeSipp(p)}`)
  const log = await readFile(phoneLog, 'utf8')
  const received = (method: string): number => log.split(/message received \[\d+\] bytes :\s*\n\s*\n?/).slice(1).filter(m => m.startsWith(`${method} `)).length
  t.equal(received('INVITE'), 1, 'the phone got the INVITE')
  t.equal(received('ACK'), 1, 'and the ACK for its 200')
  t.equal(received('BYE'), 1, 'and the BYE')
  t.equal(await metricValue(nodeA, 'sipd_tcp_connection_events_total{event="connected"}'), 0, 'node A opened no TCP connection (to the phone or anyone)')
  t.equal(await metricValue(nodeA, 'sipd_tcp_connection_events_total{event="accepted"}'), acceptedBefore + 1, 'node A accepted one connection during the call: node B\'s')
  t.ok(acceptedBefore >= 1, 'the phone\'s own connection was accepted before the call')
  t.equal(await metricValue(nodeB, 'sipd_tcp_connection_events_total{event="connected"}'), 1, 'node B opened one TCP connection: to node A, not to the phone')
})
