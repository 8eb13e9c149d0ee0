// Media node health and operations end to end, under load from a trunk
// (sipp uac at 127.0.0.138) through sipd to media nodes (sipp uas at
// 127.0.0.134–137 that log every INVITE they get):
// - a node killed under load gets no new calls after one probe interval,
//   the calls that hit it fail over, the client sees no failed call; started
//   again, it is active after the success threshold and takes calls;
// - a draining node gets no new calls while its calls in progress finish;
// - reloading the set (admin API, then SIGHUP) to add and remove nodes
//   while calls flow fails no call and keeps the counts of unchanged nodes.
import t from 'tap'
import type { Test } from 'tap'
import dgram from 'node:dgram'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describeSipp, runSipp, startSippUas } from './helpers/sipp.js'
import type { SippResult, SippUasHandle } from './helpers/sipp.js'
import { freePort } from './helpers/servers.js'
import { spawnSipd } from './helpers/spawn-sipd.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const UAC = path.join(here, 'sipp', 'media-uac.xml')
const UAS = path.join(here, 'sipp', 'media-uas.xml')
const TRUNK = '127.0.0.138'
const BUFF = ['-buff_size', '4194304']
/** Probing: every 2 s, one missed probe (1 s) is a failure, two answered ones bring a node back. */
const PROBE_INTERVAL_MS = 2000
/** A media node that has not answered an INVITE at all after this long is failed over (and marked down). */
const RESPONSE_TIMEOUT_MS = 1000

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

/** Dialled numbers of the INVITEs a node logged. */
async function numbersSeen (logFile: string): Promise<string[]> {
  let text = ''
  try {
    text = await readFile(logFile, 'utf8')
  } catch {}
  return text.split('\n').filter(l => l.startsWith('INVITE|')).map(l => l.split('|')[1] ?? '')
}

interface NodeView { uri: string, state: string, health: string, adminState: string, activeCalls: number, lastProbe: { alive: boolean, status?: number, error?: string } | null }
interface MediaList { sets: Array<{ id: number | string, nodes: NodeView[] }>, retired: Array<{ uri: string, activeCalls: number }>, trackedCalls: number }

t.test('media nodes stopped, restarted, drained and reloaded under load', async t => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sipd-media-ops-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  const running = new Set<SippUasHandle>()
  t.teardown(async () => { for (const n of running) await n.stop() })
  const startNode = async (ip: string, log: string, localPort?: number, answerMs = 0): Promise<SippUasHandle> => {
    const n = await startSippUas({ scenario: UAS, localIp: ip, ...(localPort !== undefined ? { localPort } : {}), maxLifetimeSec: 110, extraArgs: ['-aa', '-trace_logs', '-log_file', log, '-d', String(answerMs), ...BUFF] })
    running.add(n)
    return n
  }
  const logOf = (name: string): string => path.join(dir, `${name}.log`)
  const nodeA = await startNode('127.0.0.134', logOf('a'))
  const nodeB = await startNode('127.0.0.135', logOf('b'))
  // C answers after 100 ms: see the kill below.
  let nodeC = await startNode('127.0.0.136', logOf('c'), undefined, 100)
  const nodeD = await startNode('127.0.0.137', logOf('d'))
  const [a, b, c, d] = [nodeA, nodeB, nodeC, nodeD].map(n => `sip:${n.address}`) as [string, string, string, string]

  const port = await freePort('127.0.0.1', 'udp')
  const http = await freePort('127.0.0.1', 'tcp')
  const config = (nodes: string[], algorithm = 'round-robin', weights: Record<string, number> = {}): string => `
listen: ["udp:127.0.0.1:${port}"]
http: "127.0.0.1:${http}"
log_level: warn
trusted: ["${TRUNK}/32"]
media:
  response_timeout_ms: ${RESPONSE_TIMEOUT_MS}
  probe: { interval_ms: ${PROBE_INTERVAL_MS}, timeout_ms: 1000, failure_threshold: 1, success_threshold: 2 }
  sets:
    - id: 1
      algorithm: ${algorithm}
      nodes: [${nodes.map(u => `{ uri: "${u}", weight: ${weights[u] ?? 1} }`).join(', ')}]
`
  // C starts as a small node (1 call in 41, one every 200 ms) so that moments without a call on it come often.
  const sipd = await spawnSipd({ configYaml: config([a, b, c], 'weighted', { [a]: 20, [b]: 20 }) })
  t.teardown(async () => { await sipd.stop() })

  const media = async (): Promise<MediaList> => await (await fetch(`${sipd.httpUrl}/api/media`)).json() as MediaList
  const node = async (uri: string): Promise<NodeView | undefined> => (await media()).sets[0]?.nodes.find(n => n.uri === uri)
  const callers = path.join(dir, 'caller.csv')
  await writeFile(callers, 'SEQUENTIAL\ntrunk;\n')
  const call = async (number: string, calls: number, rate: number, holdMs: number): Promise<SippResult> =>
    await runSipp({ scenario: UAC, remote: `127.0.0.1:${port}`, localIp: TRUNK, calls, rate, timeoutSec: 40, injectionFile: callers, extraArgs: ['-s', number, '-d', String(holdMs), '-max_non_invite_retrans', '3', ...BUFF] })
  const clean = (t: Test, r: SippResult, calls: number): void => {
    t.equal(r.code, 0, describeSipp(r))
    t.equal(r.stats?.successful, calls, `all ${calls} calls succeeded`)
    t.equal(r.stats?.failed, 0, 'the client saw no failed call')
  }
  const count = async (log: string, prefix: string): Promise<number> => (await numbersSeen(log)).filter(n => n.startsWith(prefix)).length

  await t.test('a node killed under load: failed over, no new calls after one probe interval; restarted: active again', async t => {
    const load = call('1000', 2000, 200, 0)
    await sleep(1500)
    const before = await count(logOf('c'), '1')
    t.ok(before > 0, `node C was taking its share before it died (${before} calls)`)
    // Kill it at a moment when sipd counts no call in progress on it. A call
    // a media node has already answered dies with it whatever the proxy does;
    // the ones that reach it from now on are what failover must save. C
    // answers 100 ms after the INVITE, longer than from this poll to the kill,
    // so a call reaching it in between is not answered yet: it fails over.
    const quietUntil = Date.now() + 5000
    let quiet = false
    while (!quiet && Date.now() < quietUntil) {
      quiet = (await node(c))?.activeCalls === 0
      if (!quiet) await sleep(2)
    }
    process.kill(nodeC.pid, 'SIGKILL')
    const killedAt = Date.now()
    t.ok(quiet, 'killed at a moment without a call in progress on it')
    // Watch the dead node's address: every call sent there from now on is seen
    // (by Call-ID, when its INVITE first arrives; retransmissions follow).
    const firstSeen = new Map<string, number>()
    const hole = dgram.createSocket('udp4')
    hole.on('message', msg => {
      const text = msg.toString('latin1')
      if (!text.startsWith('INVITE ')) return
      const callId = /\r\nCall-ID: *([^\r]+)/i.exec(text)?.[1] ?? ''
      if (!firstSeen.has(callId)) firstSeen.set(callId, Date.now())
    })
    for (let i = 0; ; i++) {
      try {
        await new Promise<void>((resolve, reject) => { hole.once('error', reject); hole.bind(nodeC.localPort, nodeC.localIp, () => { hole.off('error', reject); resolve() }) })
        break
      } catch (err) {
        if (i === 100) throw err
        await sleep(10)
      }
    }
    await nodeC.stop()
    running.delete(nodeC)
    const quietFrom = killedAt + PROBE_INTERVAL_MS
    const r = await load
    // Calls the node had taken when it died (INVITE logged, BYE never) are
    // either failed over (not answered yet) or lost with it (answered); every
    // other call must succeed.
    const cLog = await readFile(logOf('c'), 'utf8')
    const byed = new Set(cLog.split('\n').filter(l => l.startsWith('BYE|')).map(l => l.slice(4)))
    const onDeadNode = new Set(cLog.split('\n').filter(l => l.startsWith('INVITE|')).map(l => l.split('|')[3] ?? '').filter(id => !byed.has(id)))
    const failedIds = new Set([...(r.errors ?? '').matchAll(/Aborting call[^']*Call-I[Dd] '([^']+)'/g)].map(m => m[1]!))
    t.same([...failedIds].filter(id => !onDeadNode.has(id)), [], 'no call failed but one the node had taken before it died')
    t.equal(r.stats?.failed, 0, `the client saw no failed call: ${describeSipp(r)}`)
    t.equal(r.stats?.successful, 2000, 'all 2000 calls succeeded')
    t.ok(firstSeen.size > 0, `calls reached the dead node before it was marked down (${firstSeen.size}) and were failed over`)
    const late = [...firstSeen.values()].filter(at => at >= quietFrom).length
    t.equal(late, 0, 'no new call reached it later than one probe interval after it died')
    const dead = await node(c)
    t.equal(dead?.state, 'inactive', 'the dead node is inactive')
    t.equal(dead?.lastProbe?.alive, false, `its last probe failed (${JSON.stringify(dead?.lastProbe)})`)
    const metrics = await (await fetch(`${sipd.httpUrl}/metrics`)).text()
    t.match(metrics, /sipd_media_failovers_total\{set="1"\} [1-9]/, 'failovers are counted')
    t.match(metrics, new RegExp(`sipd_media_node_state\\{set="1",node="${c.replaceAll('.', '\\.')}",state="inactive"\\} 1`), 'the node state metric says inactive')
    const hits = [await count(logOf('a'), '1'), await count(logOf('b'), '1'), byed.size]
    t.equal(hits[0]! + hits[1]! + hits[2]!, 2000, `every call completed at exactly one node (A ${hits[0]}, B ${hits[1]}, C ${hits[2]})`)

    await new Promise<void>(resolve => hole.close(() => resolve()))
    nodeC = await startNode('127.0.0.136', logOf('c2'), nodeC.localPort)
    const states: string[] = []
    const deadline = Date.now() + 10 * PROBE_INTERVAL_MS
    while (Date.now() < deadline) {
      const s = (await node(c))?.state ?? 'gone'
      if (states[states.length - 1] !== s) states.push(s)
      if (s === 'active') break
      await sleep(50)
    }
    t.same(states.slice(-2), ['probing', 'active'], `restarted, the node went through probing to active (${states.join(' → ')})`)
    // From here on, round-robin over equal nodes: the reload keeps C's health.
    await writeFile(sipd.configFile, config([a, b, c]))
    const res = await fetch(`${sipd.httpUrl}/api/media/reload`, { method: 'POST' })
    t.same(await res.json(), { source: 'config', sets: 1, nodes: 3, added: [], removed: [] }, 'reloaded as round-robin')
    t.equal((await node(c))?.state, 'active', 'C still active')
    clean(t, await call('2000', 300, 300, 0), 300)
    t.equal(await count(logOf('c2'), '2'), 100, 'the restarted node takes its share again')
  })

  await t.test('a draining node gets no new calls while its calls in progress finish', async t => {
    const long = call('3000', 90, 300, 2500)
    const deadline = Date.now() + 10_000
    while ((await media()).trackedCalls < 90 && Date.now() < deadline) await sleep(50)
    const res = await fetch(`${sipd.httpUrl}/api/media/nodes/${encodeURIComponent(a)}`, { method: 'PUT', body: JSON.stringify({ state: 'draining' }) })
    t.equal(res.status, 200)
    const drained = await res.json() as NodeView
    t.equal(drained.state, 'draining')
    t.equal(drained.activeCalls, 30, 'it still has its 30 calls in progress')
    clean(t, await call('4000', 150, 300, 0), 150)
    t.equal(await count(logOf('a'), '4'), 0, 'the draining node got none of the 150 new calls')
    t.equal(await count(logOf('b'), '4'), 75, 'B took half')
    t.equal(await count(logOf('c2'), '4'), 75, 'C took half')
    clean(t, await long, 90)
    const after = await node(a)
    t.equal(after?.activeCalls, 0, 'its calls finished')
    t.equal(after?.state, 'draining', 'and it is still draining')
    const back = await fetch(`${sipd.httpUrl}/api/media/nodes/${encodeURIComponent(a)}`, { method: 'POST', body: JSON.stringify({ state: 'active' }) })
    t.equal((await back.json() as NodeView).state, 'active', 'set active again')
  })

  await t.test('reloading the set while calls flow (admin API, then SIGHUP): no failed call', async t => {
    const load = call('5000', 1500, 250, 200)
    await sleep(1000)
    const activeA = (await node(a))?.activeCalls ?? -1
    await writeFile(sipd.configFile, config([a, c, d]))
    const res = await fetch(`${sipd.httpUrl}/api/media/reload`, { method: 'POST' })
    t.equal(res.status, 200)
    const summary = await res.json() as { added: string[], removed: string[], nodes: number }
    t.same(summary, { source: 'config', sets: 1, nodes: 3, added: [d], removed: [b] }, 'D added, B removed')
    const mid = await media()
    t.same(mid.sets[0]?.nodes.map(n => n.uri), [a, c, d], 'the set is A, C, D now')
    const keptA = mid.sets[0]?.nodes.find(n => n.uri === a)?.activeCalls ?? -1
    t.ok(keptA >= 0 && Math.abs(keptA - activeA) <= 10, `A kept its active-call count across the reload (${activeA} → ${keptA})`)
    await sleep(1500)
    await writeFile(sipd.configFile, config([a, b, c, d]))
    process.kill(sipd.pid, 'SIGHUP')
    const deadline = Date.now() + 5000
    while ((await media()).sets[0]?.nodes.length !== 4 && Date.now() < deadline) await sleep(50)
    t.same((await media()).sets[0]?.nodes.map(n => n.uri), [a, b, c, d], 'after SIGHUP: B is back')
    clean(t, await load, 1500)
    const got = [await count(logOf('a'), '5'), await count(logOf('b'), '5'), await count(logOf('c2'), '5'), await count(logOf('d'), '5')]
    t.equal(got.reduce((x, y) => x + y, 0), 1500, `every call reached one node (${got.join(', ')})`)
    t.ok(got[3]! > 0, 'the added node took calls')
    t.ok(got[1]! < got[0]!, 'the node removed for a while took fewer calls than one that stayed')
    const end = await media()
    t.equal(end.trackedCalls, 0, 'every call was counted out, retired node included')
    t.same(end.retired, [], 'no retired node left')

    await writeFile(sipd.configFile, config([a], 'fastest'))
    const bad = await fetch(`${sipd.httpUrl}/api/media/reload`, { method: 'POST' })
    t.equal(bad.status, 400, 'an invalid file is refused')
    t.match((await bad.json() as { error: string }).error, /media\.sets\[0\]\.algorithm/)
    t.equal((await media()).sets[0]?.nodes.length, 4, 'and nothing changed')
  })
})
