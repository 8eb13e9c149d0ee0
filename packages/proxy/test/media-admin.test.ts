// sipd's media side in process, on loopback UDP: a trunk's INVITE to a media
// node that never answers fails over after media.response_timeout_ms (not
// Timer B) and marks the node inactive at once; the admin API lists state and
// active calls; reloads from the config file add and retire nodes (a retired
// node keeps its call counted), refuse sets that break default_set/did_sets
// and change nothing then; without a config file or database, reload says
// why. Config keys of the media source are validated.
import t from 'tap'
import dgram from 'node:dgram'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import pino from 'pino'
import { newBranch, TransactionLayer, TransportLayer } from '@sipd/sip-stack'
import type { AnyServerTransaction } from '@sipd/sip-stack'
import { buildConfig, ConfigError, loadConfig } from '../src/config.js'
import { Sipd } from '../src/server.js'

const silent = pino({ level: 'silent' })

interface Party { transport: TransportLayer, transactions: TransactionLayer, port: number }

/** A SIP party on 127.0.0.1 with its own transaction layer. */
async function party (onRequest: (tx: AnyServerTransaction) => void): Promise<Party> {
  const holder: { p?: Party } = {}
  const transport = new TransportLayer({ onMessage: (msg, source) => { holder.p!.transactions.receive(msg, source) } }, { listen: ['udp:127.0.0.1:0'] })
  const transactions = new TransactionLayer({ send: async (bytes, target) => await transport.send(bytes, target), onRequest })
  const listeners = await transport.listen()
  holder.p = { transport, transactions, port: listeners[0]!.port }
  return holder.p
}

async function until (what: string, cond: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (await cond()) return
    await new Promise(resolve => setTimeout(resolve, 5))
  }
  throw new Error(`timed out waiting for ${what}`)
}

interface NodeView { uri: string, state: string, health: string, activeCalls: number }
interface MediaList { source: string, sets: Array<{ id: number | string, nodes: NodeView[] }>, retired: Array<{ uri: string, activeCalls: number }>, trackedCalls: number, lastReload: { ok: boolean, error?: string } | null }

t.test('config: the media source and response timeout', async t => {
  const c = buildConfig({})
  t.equal(c.media.source, 'config')
  t.equal(c.media.responseTimeoutMs, 2000)
  t.equal(c.configFile, undefined)
  t.throws(() => buildConfig({ media: { source: 'ldap' } }), /config media\.source: value "ldap" is not one of config, postgres/)
  t.throws(() => buildConfig({ media: { source: 'postgres' } }), /config media\.source: value "postgres" needs database\.url/)
  t.throws(() => buildConfig({ database: { url: 'postgres://x/y' }, media: { source: 'postgres', sets: [{ id: 1, nodes: [{ uri: 'sip:127.0.0.3' }] }] } }), ConfigError)
  t.throws(() => buildConfig({ media: { response_timeout_ms: 10 } }), /config media\.response_timeout_ms: value 10 is not an integer from 100 to 180000/)
  const pg = buildConfig({ database: { url: 'postgres://x/y' }, media: { source: 'postgres', default_set: 'inbound', did_sets: { 1: 'inbound' } } })
  t.equal(pg.media.defaultSet, 'inbound', 'set ids from PostgreSQL are checked when loaded, not here')
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sipd-media-cfg-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  await writeFile(path.join(dir, 'sipd.yaml'), 'media: { response_timeout_ms: 700 }\n')
  const loaded = loadConfig(path.join(dir, 'sipd.yaml'), {})
  t.equal(loaded.configFile, path.join(dir, 'sipd.yaml'), 'the file is remembered for reloads')
  t.equal(loaded.media.responseTimeoutMs, 700)
})

t.test('failover on no response, call counting and reloads through the admin API', async t => {
  // A node that takes the INVITE and never answers (no 100 either), and one that answers 200.
  const mute = dgram.createSocket('udp4')
  let muteInvites = 0
  mute.on('message', m => { if (m.subarray(0, 7).toString() === 'INVITE ') muteInvites++ })
  await new Promise<void>(resolve => mute.bind(0, '127.0.0.1', resolve))
  const answering = await party(tx => { if (tx.method === 'INVITE') tx.respond(200, undefined, { copyRecordRoute: true }) })
  const trunk = await party(() => {})
  const muteUri = `sip:127.0.0.1:${mute.address().port}`
  const okUri = `sip:127.0.0.1:${answering.port}`

  const dir = await mkdtemp(path.join(os.tmpdir(), 'sipd-media-admin-'))
  const file = path.join(dir, 'sipd.yaml')
  const yaml = (nodes: string[], extra = ''): string => `
listen: ["udp:127.0.0.1:0"]
http: "127.0.0.1:0"
trusted: ["127.0.0.1/32"]
media:
  response_timeout_ms: 300
  probe: { interval_ms: 3600000 }
  default_set: 1
${extra}
  sets:
    - id: 1
      algorithm: round-robin
      nodes: [${nodes.map(u => `{ uri: "${u}" }`).join(', ')}]
`
  await writeFile(file, yaml([muteUri, okUri]))
  const sipd = new Sipd(loadConfig(file, {}), silent)
  await sipd.start()
  t.teardown(async () => {
    await sipd.stop(0)
    for (const p of [answering, trunk]) {
      p.transactions.close()
      await p.transport.close()
    }
    mute.close()
    await rm(dir, { recursive: true, force: true })
  })
  const base = `http://127.0.0.1:${sipd.httpPort}`
  const media = async (): Promise<MediaList> => await (await fetch(`${base}/api/media`)).json() as MediaList
  const sipPort = sipd.listeners[0]!.port

  // The call reaches the mute node first (round-robin); its startup probe is
  // still pending (timeout_ms 2000, failure_threshold 2), so only the call's
  // own failure can take it out of selection.
  const finals: number[] = []
  const invite = [
    `INVITE sip:100@127.0.0.1:${sipPort} SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:${trunk.port};branch=${newBranch()}`,
    'Max-Forwards: 70',
    'From: <sip:trunk@127.0.0.1>;tag=t1',
    `To: <sip:100@127.0.0.1:${sipPort}>`,
    'Call-ID: media-admin-1',
    'CSeq: 1 INVITE',
    `Contact: <sip:trunk@127.0.0.1:${trunk.port}>`,
    'Content-Length: 0',
    '', ''
  ].join('\r\n')
  trunk.transactions.createClient(Buffer.from(invite), { transport: 'udp', address: '127.0.0.1', port: sipPort }, {
    onFinal: r => { finals.push(r.status) },
    onTimeout: () => { finals.push(-408) },
    onTransportError: () => { finals.push(-503) }
  })
  // Timer B with T1 = 500 ms would take 32 s; the response timeout fails over in 300 ms.
  await until('the answer through the second node', () => finals.length > 0)
  t.same(finals, [200], 'the call was answered by the other node')
  t.equal(muteInvites, 1, 'the mute node got the INVITE first')
  let list = await media()
  t.match(list.sets[0]!.nodes, [{ uri: muteUri, state: 'inactive' }, { uri: okUri, state: 'active', activeCalls: 1 }],
    'the mute node was marked down at once; the call counts on the node that answered')
  t.equal(list.trackedCalls, 1)
  const metrics = await (await fetch(`${base}/metrics`)).text()
  t.match(metrics, /sipd_media_failovers_total\{set="1"\} 1/)
  t.match(metrics, /sipd_media_selections_total\{set="1",algorithm="round-robin"\} 2/)
  t.match(metrics, new RegExp(`sipd_media_node_active_calls\\{node="${okUri.replaceAll('.', '\\.')}"\\} 1`))

  await writeFile(file, yaml([muteUri]))
  let res = await fetch(`${base}/api/media/reload`, { method: 'POST' })
  t.same(await res.json(), { source: 'config', sets: 1, nodes: 1, added: [], removed: [okUri] })
  list = await media()
  t.same(list.retired, [{ uri: okUri, activeCalls: 1 }], 'the removed node keeps its call in progress counted')
  t.match(list.sets[0]!.nodes, [{ uri: muteUri, state: 'inactive' }], 'an unchanged node keeps its health')

  await writeFile(file, yaml([muteUri], '  did_sets: { "9": 2 }'))
  res = await fetch(`${base}/api/media/reload`, { method: 'POST' })
  t.equal(res.status, 400, 'did_sets naming a set that does not exist')
  t.match((await res.json() as { error: string }).error, /did_sets/)
  await writeFile(file, yaml([muteUri]).replace('id: 1', 'id: 2').replace('default_set: 1\n', ''))
  res = await fetch(`${base}/api/media/reload`, { method: 'POST' })
  t.equal(res.status, 400, 'the default set gone from the file')
  t.match((await res.json() as { error: string }).error, /default_set/)
  list = await media()
  t.same(list.sets.map(s => s.id), [1], 'nothing changed')
  t.equal(list.lastReload?.ok, false)
})

t.test('reload without a config file, and with PostgreSQL unreachable', async t => {
  const noFile = new Sipd(buildConfig({ listen: ['udp:127.0.0.1:0'], http: '127.0.0.1:0', media: { sets: [{ id: 1, nodes: [{ uri: 'sip:127.0.0.1:9' }] }], probe: { interval_ms: 3600000 } } }), silent)
  await noFile.start()
  t.teardown(async () => { await noFile.stop(0) })
  let res = await fetch(`http://127.0.0.1:${noFile.httpPort}/api/media/reload`, { method: 'POST' })
  t.equal(res.status, 400)
  t.match((await res.json() as { error: string }).error, /without a config file/)

  // Port 1 on loopback: nothing listens, the connection is refused at once.
  const pg = new Sipd(buildConfig({ listen: ['udp:127.0.0.1:0'], http: '127.0.0.1:0', database: { url: 'postgres://sipd@127.0.0.1:1/sipd' }, media: { source: 'postgres' } }), silent)
  await pg.start()
  t.teardown(async () => { await pg.stop(0) })
  const list = await (await fetch(`http://127.0.0.1:${pg.httpPort}/api/media`)).json() as MediaList
  t.same(list.sets, [], 'sipd started without sets')
  t.match(list.lastReload, { ok: false, error: /cannot read media sets from PostgreSQL/ })
  res = await fetch(`http://127.0.0.1:${pg.httpPort}/api/media/reload`, { method: 'POST' })
  t.equal(res.status, 503, 'the database is unavailable')
})
