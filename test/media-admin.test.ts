// sipd with its media sets in PostgreSQL and FreeSWITCH's mod_xml_curl
// endpoint, against the real PostgreSQL of the test runner (a schema of its
// own): `sipd migrate` creates the media tables, the admin API lists the
// sets and nodes read from them (state, active calls, last probe), a changed
// table is applied by POST /api/media/reload while node states set through
// the API stay, and mod_xml_curl's form posts get the subscriber's HA1 from
// the registrar's store and the dialplan, parsed as XML.
import t from 'tap'
import type { Test } from 'tap'
import { createHash } from 'node:crypto'
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { createTestSchema } from '../packages/registrar/test/helpers/pg.js'
import { kids, only, parseXml } from '../packages/media-bridge/test/helpers/xml.js'
import { describeSipp, runSipp, startSippUas } from './helpers/sipp.js'
import type { SippUasHandle } from './helpers/sipp.js'
import { freePort } from './helpers/servers.js'
import { SIPD_CLI, spawnSipd } from './helpers/spawn-sipd.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const UAC = path.join(here, 'sipp', 'media-uac.xml')
const UAS = path.join(here, 'sipp', 'media-uas.xml')
const TRUNK = '127.0.0.141'
const DOMAIN = 'example.test'
const SECRET = 'xml-curl-secret-0123456789'
const md5 = (s: string): string => createHash('md5').update(s).digest('hex')

/** Runs `node cli.js ARGS` to completion, bounded to 20 s. */
function cli (args: string[], env: Record<string, string>): Promise<{ code: number, stdout: string, stderr: string }> {
  return new Promise(resolve => {
    execFile(process.execPath, [SIPD_CLI, ...args], { env: { ...process.env, ...env }, timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1
      resolve({ code, stdout, stderr })
    })
  })
}

/** Form-encode like FreeSWITCH's switch_url_encode. */
const fsEncode = (pairs: Array<[string, string]>): string => pairs.map(([k, v]) => `${k}=${encodeURIComponent(v).replaceAll('%2C', ',')}`).join('&')

/** The fields sofia posts when it challenges a REGISTER (sofia_reg_parse_auth → directory, action=sip_auth). */
function sipAuthFields (user: string, domain: string): string {
  return fsEncode([
    ['hostname', 'fs1'], ['section', 'directory'], ['tag_name', 'domain'], ['key_name', 'name'], ['key_value', domain],
    ['Event-Name', 'REQUEST_PARAMS'], ['Core-UUID', '5c2d4a36-1c1e-4b7e-9d5b-0f2f6f0c0a11'], ['FreeSWITCH-Hostname', 'fs1'],
    ['FreeSWITCH-Switchname', 'fs1'], ['FreeSWITCH-IPv4', '127.0.0.139'], ['Event-Calling-File', 'sofia_reg.c'],
    ['Event-Calling-Function', 'sofia_reg_parse_auth'], ['action', 'sip_auth'], ['sip_profile', 'internal'],
    ['sip_user_agent', 'Yealink SIP-T46S 66.86.0.15'], ['sip_auth_username', user], ['sip_auth_realm', domain],
    ['sip_auth_nonce', '0b4c1a2e-0000-4000-8000-7f2a9a1b2c3d'], ['sip_auth_uri', `sip:${domain};transport=udp`],
    ['sip_contact_user', user], ['sip_contact_host', '192.0.2.10'], ['sip_to_user', user], ['sip_to_host', domain],
    ['sip_from_user', user], ['sip_from_host', domain], ['sip_request_host', domain], ['sip_auth_qop', 'auth'],
    ['sip_auth_cnonce', '0a4f113b'], ['sip_auth_nc', '00000001'], ['sip_auth_response', '6629fae49393a05397450978507c4ef1'],
    ['sip_auth_method', 'REGISTER'], ['key', 'id'], ['user', user], ['domain', domain], ['ip', '192.0.2.10']
  ])
}

/** What mod_dialplan_xml posts for an inbound call. */
function dialplanFields (context: string, destination: string): string {
  return fsEncode([
    ['hostname', 'fs1'], ['section', 'dialplan'], ['tag_name', ''], ['key_name', ''], ['key_value', ''],
    ['Event-Name', 'CHANNEL_DATA'], ['Channel-State', 'CS_ROUTING'], ['Channel-Name', `sofia/internal/alice@${DOMAIN}`],
    ['Unique-ID', 'b1e0c3f2-8a9d-4c4e-9f00-3d2c1b0a9e8f'], ['Call-Direction', 'inbound'],
    ['Caller-Username', 'alice'], ['Caller-Dialplan', 'XML'], ['Caller-Caller-ID-Number', 'alice'],
    ['Caller-Destination-Number', destination], ['Caller-Context', context], ['Hunt-Username', 'alice'],
    ['Hunt-Dialplan', 'XML'], ['Hunt-Destination-Number', destination], ['Hunt-Context', context]
  ])
}

interface NodeView { uri: string, weight: number, priority: number, attributes: Record<string, string>, adminState: string, health: string, state: string, activeCalls: number, lastProbe: { at: string, latencyMs: number, alive: boolean, status?: number } | null }
interface MediaList { source: string, sets: Array<{ id: number | string, algorithm: string, nodes: NodeView[] }>, trackedCalls: number, lastReload: { trigger: string, ok: boolean } | null }

t.test('media sets from PostgreSQL, the admin API, and mod_xml_curl', async t => {
  const schema = await createTestSchema('media_admin')
  t.teardown(async () => { await schema.drop() })
  const dbUrl = schema.schemaUrl
  const env = { SIPD_DATABASE_URL: dbUrl }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sipd-media-admin-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })

  const nodes: SippUasHandle[] = []
  t.teardown(async () => { for (const n of nodes) await n.stop() })
  const logs = ['127.0.0.139', '127.0.0.140', '127.0.0.142'].map(ip => path.join(dir, `${ip}.log`))
  for (const [i, ip] of ['127.0.0.139', '127.0.0.140', '127.0.0.142'].entries()) {
    nodes.push(await startSippUas({ scenario: UAS, localIp: ip, maxLifetimeSec: 100, extraArgs: ['-aa', '-trace_logs', '-log_file', logs[i]!] }))
  }
  const [a, b, c] = nodes.map(n => `sip:${n.address}`) as [string, string, string]
  const invites = async (i: number): Promise<number> => {
    try {
      return (await readFile(logs[i]!, 'utf8')).split('\n').filter(l => l.startsWith('INVITE|')).length
    } catch {
      return 0
    }
  }

  const port = await freePort('127.0.0.1', 'udp')
  const http = await freePort('127.0.0.1', 'tcp')
  const yaml = `
listen: ["udp:127.0.0.1:${port}"]
http: "127.0.0.1:${http}"
log_level: warn
domains: [${DOMAIN}]
subscribers: { cache_ttl_ms: 0 }
trusted: ["${TRUNK}/32"]
media:
  source: postgres
  probe: { interval_ms: 500, timeout_ms: 300 }
xml_curl:
  enabled: true
  secret: "${SECRET}"
  basic_user: fs
  basic_password: fs-pass
  dialplan_context: public
  bridge_template: "sofia/gateway/sipd/\${destination_number}"
`
  const config = path.join(dir, 'sipd.yaml')
  await writeFile(config, yaml)

  let r = await cli(['migrate', '--config', config], env)
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /applied media 1:media_nodes/, 'sipd migrate creates the media tables')
  r = await cli(['migrate', '--config', config], env)
  t.match(r.stdout, /up to date/, 'and is idempotent')
  r = await cli(['user', 'add', `alice@${DOMAIN}`, '--password', 'alice-pw', '--config', config], env)
  t.equal(r.code, 0, r.stderr)
  await schema.pool.query("INSERT INTO media_sets (set_id, algorithm) VALUES ('1', 'round-robin')")
  await schema.pool.query('INSERT INTO media_nodes (set_id, uri, weight, priority, attributes) VALUES ($1, $2, 1, 0, $3), ($1, $4, 1, 0, $5)',
    ['1', a, JSON.stringify({ zone: 'east' }), b, JSON.stringify({ zone: 'west', capacity: 200 })])

  const sipd = await spawnSipd({ configYaml: yaml, env })
  t.teardown(async () => { await sipd.stop() })
  const media = async (): Promise<MediaList> => await (await fetch(`${sipd.httpUrl}/api/media`)).json() as MediaList

  await t.test('GET /api/media lists the sets read from media_nodes, with state, calls and the last probe', async t => {
    const deadline = Date.now() + 5000
    let list = await media()
    while (list.sets[0]?.nodes.some(n => n.lastProbe === null) !== false && Date.now() < deadline) {
      await new Promise(resolve => setTimeout(resolve, 50))
      list = await media()
    }
    t.equal(list.source, 'postgres')
    t.equal(list.lastReload?.trigger, 'start')
    t.same(list.sets.map(s => [s.id, s.algorithm]), [[1, 'round-robin']])
    const [na, nb] = list.sets[0]!.nodes
    t.match(na, { uri: a, weight: 1, priority: 0, attributes: { zone: 'east' }, adminState: 'enabled', health: 'active', state: 'active', activeCalls: 0 })
    t.same(nb?.attributes, { zone: 'west', capacity: '200' }, 'jsonb attributes as strings')
    t.match(na?.lastProbe, { alive: true, status: 200 }, 'the OPTIONS probe was answered 200')
    t.ok(typeof na?.lastProbe?.latencyMs === 'number' && !Number.isNaN(Date.parse(na.lastProbe.at)), 'with its latency and time')
    const metrics = await (await fetch(`${sipd.httpUrl}/metrics`)).text()
    const esc = (u: string): string => u.replaceAll('.', '\\.')
    t.match(metrics, new RegExp(`sipd_media_probe_latency_seconds_count\\{node="${esc(a)}"\\} [1-9]`), 'probe latencies are observed')
    t.match(metrics, new RegExp(`sipd_media_node_state\\{set="1",node="${esc(b)}",state="active"\\} 1`), 'node states are exported')
    t.match(metrics, new RegExp(`sipd_media_node_active_calls\\{node="${esc(a)}"\\} 0`), 'and active calls')
  })

  const call = async (t: Test, number: string, calls: number): Promise<void> => {
    const callers = path.join(dir, 'caller.csv')
    await writeFile(callers, 'SEQUENTIAL\ntrunk;\n')
    const res = await runSipp({ scenario: UAC, remote: `127.0.0.1:${port}`, localIp: TRUNK, calls, rate: 100, timeoutSec: 30, injectionFile: callers, extraArgs: ['-s', number, '-d', '0'] })
    t.equal(res.code, 0, describeSipp(res))
    t.equal(res.stats?.successful, calls, `all ${calls} calls succeeded`)
  }

  await t.test('calls go to the nodes of the table', async t => {
    await call(t, '100', 20)
    t.same([await invites(0), await invites(1), await invites(2)], [10, 10, 0])
    const metrics = await (await fetch(`${sipd.httpUrl}/metrics`)).text()
    t.match(metrics, /sipd_media_selections_total\{set="1",algorithm="round-robin"\} 20/, 'selections are counted')
  })

  await t.test('admin state through the API: errors named, state applied', async t => {
    const put = async (uri: string, body: string, query = ''): Promise<Response> => await fetch(`${sipd.httpUrl}/api/media/nodes/${encodeURIComponent(uri)}${query}`, { method: 'PUT', body })
    let res = await put(a, JSON.stringify({ state: 'sleepy' }))
    t.equal(res.status, 400)
    t.match((await res.json() as { error: string }).error, /active, disabled, draining/)
    res = await put('sip:127.0.0.99:5060', JSON.stringify({ state: 'disabled' }))
    t.equal(res.status, 404, 'an unknown node')
    res = await put(a, 'not json')
    t.equal(res.status, 400)
    res = await put(a, '', '?state=draining')
    t.equal(res.status, 200)
    t.match(await res.json(), { uri: a, state: 'draining', adminState: 'draining', sets: [{ id: 1, algorithm: 'round-robin' }] })
    const one = await fetch(`${sipd.httpUrl}/api/media/nodes/${encodeURIComponent(a)}`)
    t.match(await one.json(), { uri: a, state: 'draining' }, 'GET one node')
    t.equal((await fetch(`${sipd.httpUrl}/api/media/nodes/${encodeURIComponent('sip:127.0.0.99:5060')}`)).status, 404)
  })

  await t.test('POST /api/media/reload applies the changed table; the API-set state stays', async t => {
    await schema.pool.query('INSERT INTO media_nodes (set_id, uri) VALUES ($1, $2)', ['1', c])
    await schema.pool.query("UPDATE media_nodes SET admin_state = 'disabled' WHERE uri = $1", [b])
    const res = await fetch(`${sipd.httpUrl}/api/media/reload`, { method: 'POST' })
    t.equal(res.status, 200)
    t.same(await res.json(), { source: 'postgres', sets: 1, nodes: 3, added: [c], removed: [] })
    const list = await media()
    t.same(list.sets[0]?.nodes.map(n => [n.uri, n.state]), [[a, 'draining'], [b, 'disabled'], [c, 'active']],
      'A keeps the draining state set through the API (the table did not change it); B is disabled by the table')
    t.equal(list.lastReload?.trigger, 'admin')
    await call(t, '200', 10)
    t.same([await invites(0), await invites(1), await invites(2)], [10, 10, 10], 'only the new node took the 10 new calls')
  })

  await t.test('mod_xml_curl: directory from the subscriber store, dialplan, auth', async t => {
    const post = async (body: string, opts: { query?: string, headers?: Record<string, string> } = {}): Promise<Response> =>
      await fetch(`${sipd.httpUrl}/xml_curl${opts.query ?? ''}`, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded', ...opts.headers } })
    t.equal((await post(sipAuthFields('alice', DOMAIN))).status, 401, 'no secret, no answer')
    t.equal((await post(sipAuthFields('alice', DOMAIN), { query: '?key=wrong' })).status, 401, 'a wrong secret')

    const res = await post(sipAuthFields('alice', DOMAIN), { query: `?key=${SECRET}` })
    t.equal(res.status, 200)
    t.match(res.headers.get('content-type'), /xml/)
    const text = await res.text()
    t.notMatch(text, /alice-pw/, 'never the password')
    const doc = parseXml(text)
    t.equal(doc.name, 'document')
    t.equal(doc.attrs.type, 'freeswitch/xml')
    const section = only(doc, 'section')
    t.equal(section?.attrs.name, 'directory')
    const domain = only(section, 'domain')
    t.equal(domain?.attrs.name, DOMAIN)
    const user = only(domain, 'user')
    t.equal(user?.attrs.id, 'alice')
    const params = kids(only(user, 'params'), 'param')
    t.same(params.map(p => [p.attrs.name, p.attrs.value]), [['a1-hash', md5(`alice:${DOMAIN}:alice-pw`)]], 'the HA1 the registrar stored, as a1-hash')

    const basic = await post(sipAuthFields('alice', DOMAIN), { headers: { authorization: `Basic ${Buffer.from('fs:fs-pass').toString('base64')}` } })
    t.equal(basic.status, 200, 'basic auth (gateway-credentials) works too')

    const unknown = parseXml(await (await post(sipAuthFields('mallory', DOMAIN), { query: `?key=${SECRET}` })).text())
    t.equal(only(only(unknown, 'section'), 'result')?.attrs.status, 'not found', 'an unknown user is not found')
    const otherRealm = parseXml(await (await post(sipAuthFields('alice', 'other.test'), { query: `?key=${SECRET}` })).text())
    t.equal(only(only(otherRealm, 'section'), 'result')?.attrs.status, 'not found', 'nor a user of another domain')

    const dp = parseXml(await (await post(dialplanFields('public', '15551234567'), { query: `?key=${SECRET}` })).text())
    const dpSection = only(dp, 'section')
    t.equal(dpSection?.attrs.name, 'dialplan')
    const context = only(dpSection, 'context')
    t.equal(context?.attrs.name, 'public')
    const condition = only(only(context, 'extension'), 'condition')
    t.equal(condition?.attrs.field, 'destination_number')
    const action = only(condition, 'action')
    t.same([action?.attrs.application, action?.attrs.data], ['bridge', 'sofia/gateway/sipd/${destination_number}'])
    const otherContext = parseXml(await (await post(dialplanFields('default', '100'), { query: `?key=${SECRET}` })).text())
    t.equal(only(only(otherContext, 'section'), 'result')?.attrs.status, 'not found', 'another context falls back to FreeSWITCH\'s own files')
  })
})
