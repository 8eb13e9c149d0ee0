// Media node selection end to end: a trunk (sipp uac at 127.0.0.130, trusted)
// calls through sipd to three media nodes (sipp uas at 127.0.0.131–133) that
// log every INVITE they get (dialled number, caller, Call-ID), so each
// algorithm's spread is counted at the nodes themselves. Every set holds the
// same three nodes; the dialled number's first digit picks the set
// (media.did_sets). The probe interval is an hour: the nodes stay active.
import t from 'tap'
import type { Test } from 'tap'
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
const TRUNK = '127.0.0.130'
const NODE_IPS = ['127.0.0.131', '127.0.0.132', '127.0.0.133'] as const
const BUFF = ['-buff_size', '4194304']

/** One INVITE as a media node logged it. */
interface Seen { number: string, caller: string, callId: string }

async function seenBy (logFile: string): Promise<Seen[]> {
  let text: string
  try {
    text = await readFile(logFile, 'utf8')
  } catch {
    return []
  }
  const out: Seen[] = []
  for (const line of text.split('\n')) {
    if (!line.startsWith('INVITE|')) continue
    const [, number, caller, callId] = line.split('|')
    out.push({ number: number ?? '', caller: caller ?? '', callId: callId ?? '' })
  }
  return out
}

interface NodeView { uri: string, state: string, activeCalls: number }
interface MediaList { sets: Array<{ id: number | string, nodes: NodeView[] }>, trackedCalls: number }

t.test('selection algorithms spread real calls over three media nodes', async t => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sipd-media-bal-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  const nodes: SippUasHandle[] = []
  t.teardown(async () => { for (const n of nodes) await n.stop() })
  const logs: string[] = []
  for (const ip of NODE_IPS) {
    const log = path.join(dir, `${ip}.log`)
    logs.push(log)
    nodes.push(await startSippUas({ scenario: UAS, localIp: ip, maxLifetimeSec: 110, extraArgs: ['-aa', '-trace_logs', '-log_file', log, ...BUFF] }))
  }
  const [a, b, c] = nodes.map(n => `sip:${n.address}`) as [string, string, string]
  const port = await freePort('127.0.0.1', 'udp')
  const http = await freePort('127.0.0.1', 'tcp')
  const three = `[{ uri: "${a}" }, { uri: "${b}" }, { uri: "${c}" }]`
  const sipd = await spawnSipd({
    configYaml: `
listen: ["udp:127.0.0.1:${port}"]
http: "127.0.0.1:${http}"
log_level: warn
trusted: ["${TRUNK}/32"]
media:
  probe: { interval_ms: 3600000 }
  did_sets: { "1": rr, "2": weighted, "3": hash, "4": least, "5": preload }
  sets:
    - { id: rr, algorithm: round-robin, nodes: ${three} }
    - id: weighted
      algorithm: weighted
      nodes: [{ uri: "${a}", weight: 2 }, { uri: "${b}", weight: 1 }, { uri: "${c}", weight: 1 }]
    - { id: hash, algorithm: hash-from, nodes: ${three} }
    - { id: least, algorithm: least-calls, nodes: ${three} }
    - { id: preload, algorithm: round-robin, nodes: [{ uri: "${a}" }] }
`
  })
  t.teardown(async () => { await sipd.stop() })
  const media = async (): Promise<MediaList> => await (await fetch(`${sipd.httpUrl}/api/media`)).json() as MediaList
  const active = async (): Promise<Map<string, number>> => {
    const list = await media()
    return new Map(list.sets.find(s => s.id === 'least')!.nodes.map(n => [n.uri, n.activeCalls]))
  }
  /** Calls each node got for numbers starting with `prefix`, in node order. */
  const perNode = async (prefix: string): Promise<number[]> =>
    await Promise.all(logs.map(async l => (await seenBy(l)).filter(s => s.number.startsWith(prefix)).length))
  const callers = path.join(dir, 'one-caller.csv')
  await writeFile(callers, 'SEQUENTIAL\ntrunk;\n')
  /** `calls` calls to `number` at `rate` per second, each held `holdMs` between ACK and BYE. */
  const call = async (number: string, calls: number, rate: number, holdMs = 0, injectionFile = callers): Promise<SippResult> =>
    await runSipp({ scenario: UAC, remote: `127.0.0.1:${port}`, localIp: TRUNK, calls, rate, timeoutSec: 45, injectionFile, extraArgs: ['-s', number, '-d', String(holdMs), ...BUFF] })
  const clean = (t: Test, r: SippResult, calls: number): void => {
    t.equal(r.code, 0, describeSipp(r))
    t.equal(r.stats?.successful, calls, `all ${calls} calls succeeded`)
    t.equal(r.stats?.failed, 0, 'no call failed')
  }
  const within = (t: Test, got: number, expected: number, tolerance: number, what: string): void => {
    t.ok(Math.abs(got - expected) <= expected * tolerance, `${what}: ${got} calls, expected ${expected} ±${tolerance * 100}%`)
  }

  await t.test('round-robin: 3,000 calls, each node within ±2% of 1,000', async t => {
    clean(t, await call('1000', 3000, 300), 3000)
    const got = await perNode('1')
    t.equal(got.reduce((x, y) => x + y, 0), 3000, `every call reached a node once (${got.join(', ')})`)
    got.forEach((n, i) => { within(t, n, 1000, 0.02, NODE_IPS[i]!) })
  })

  await t.test('weighted 2:1:1: 1,200 calls within ±5% of 600 / 300 / 300', async t => {
    clean(t, await call('2000', 1200, 300), 1200)
    const got = await perNode('2')
    within(t, got[0]!, 600, 0.05, `${NODE_IPS[0]} (weight 2)`)
    within(t, got[1]!, 300, 0.05, `${NODE_IPS[1]} (weight 1)`)
    within(t, got[2]!, 300, 0.05, `${NODE_IPS[2]} (weight 1)`)
  })

  await t.test('hash of the From user: each of 60 callers always reaches the same node', async t => {
    const file = path.join(dir, 'callers.csv')
    // Sequential: caller k makes calls k, k+60, k+120, … (10 calls each).
    await writeFile(file, 'SEQUENTIAL\n' + Array.from({ length: 60 }, (_, i) => `caller${i};\n`).join(''))
    clean(t, await call('3000', 600, 300, 0, file), 600)
    const nodeOf = new Map<string, Set<number>>()
    const calls = new Map<string, number>()
    for (let i = 0; i < logs.length; i++) {
      for (const s of await seenBy(logs[i]!)) {
        if (!s.number.startsWith('3')) continue
        let set = nodeOf.get(s.caller)
        if (set === undefined) nodeOf.set(s.caller, set = new Set())
        set.add(i)
        calls.set(s.caller, (calls.get(s.caller) ?? 0) + 1)
      }
    }
    t.equal(nodeOf.size, 60, 'every caller reached a node')
    t.same([...calls.values()].filter(n => n !== 10), [], 'each caller made 10 calls')
    const split = [...nodeOf].filter(([, set]) => set.size !== 1).map(([caller]) => caller)
    t.same(split, [], 'no caller was split over two nodes')
    const callersPerNode = [0, 1, 2].map(i => [...nodeOf.values()].filter(set => set.has(i)).length)
    t.ok(callersPerNode.every(n => n >= 8), `the callers spread over the three nodes (${callersPerNode.join(', ')})`)
  })

  await t.test('least active calls: long calls balance a node that was already busy', async t => {
    // 60 long calls to node A alone, then 120 long calls to the least-calls set:
    // B and C catch up with A, so all three end with about 60 calls in progress.
    const preload = call('5000', 60, 200, 6000)
    const deadline = Date.now() + 10_000
    while ((await active()).get(a) !== 60 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 50))
    t.equal((await active()).get(a), 60, 'node A holds the 60 preload calls')
    const balanced = call('4000', 120, 300, 3000)
    let peak = new Map<string, number>()
    while (Date.now() < deadline + 5000) {
      const list = await media()
      peak = await active()
      if (list.trackedCalls === 180) break
      await new Promise(resolve => setTimeout(resolve, 50))
    }
    const counts = [a, b, c].map(u => peak.get(u) ?? -1)
    t.ok(Math.max(...counts) - Math.min(...counts) <= 3, `calls in progress per node are balanced: ${counts.join(', ')}`)
    const got = await perNode('4')
    t.ok(got[0]! <= 3, `busy node A got (almost) none of the 120 new calls: ${got[0]}`)
    within(t, got[1]!, 60, 0.05, `${NODE_IPS[1]}`)
    within(t, got[2]!, 60, 0.05, `${NODE_IPS[2]}`)
    clean(t, await balanced, 120)
    clean(t, await preload, 60)
    const after = await active()
    t.same([a, b, c].map(u => after.get(u)), [0, 0, 0], 'every ended call (BYE) was counted out')
    t.equal((await media()).trackedCalls, 0, 'no call left tracked')
  })
})
