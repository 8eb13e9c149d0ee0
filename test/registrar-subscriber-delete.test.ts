// A subscriber deleted from PostgreSQL stops being reachable within the
// subscriber cache's TTL, not when its bindings expire: a media node's call
// for it gets 404 (was: still forked to the phone until the binding's
// expiry), and a refresh of its binding gets 403. Real PostgreSQL, the real
// sipd CLI (`sipd migrate`, `sipd user add/del`), a phone on a UDP socket
// that registers with digest and answers INVITEs 486.
import t from 'tap'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import dgram from 'node:dgram'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { createResponse, parseMessage } from '@sipd/sip-parser'
import type { SipRequest, SipResponse } from '@sipd/sip-parser'
import { createTestSchema } from '../packages/registrar/test/helpers/pg.js'
import { inviteStatuses } from './helpers/invite.js'
import { freePort } from './helpers/servers.js'
import { delay } from './helpers/process.js'
import { SIPD_CLI, spawnSipd } from './helpers/spawn-sipd.js'

const DOMAIN = 'example.test'
const PHONE = '127.0.0.74'
const MEDIA = '127.0.0.75'
const TTL_MS = 1000

function cli (args: string[], env: Record<string, string>): Promise<{ code: number, stderr: string }> {
  return new Promise(resolve => {
    execFile(process.execPath, [SIPD_CLI, ...args], { env: { ...process.env, ...env }, timeout: 20_000 }, (err, _stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1, stderr })
    })
  })
}

const md5 = (s: string): string => createHash('md5').update(s).digest('hex')

t.test('a subscriber deleted from PostgreSQL: calls and refreshes stop within subscribers.cache_ttl_ms', async t => {
  const schema = await createTestSchema('subdel')
  t.teardown(async () => { await schema.drop() })
  const dbUrl = schema.schemaUrl
  const port = await freePort('127.0.0.1', 'udp')
  const http = await freePort('127.0.0.1', 'tcp')
  const yaml = `
listen: ["udp:127.0.0.1:${port}"]
http: "127.0.0.1:${http}"
log_level: warn
domains: [${DOMAIN}]
subscribers: { cache_ttl_ms: ${TTL_MS} }
media:
  probe: { interval_ms: 3600000 }
  sets:
    - { id: 1, nodes: [{ uri: "sip:${MEDIA}:5999" }] }
`
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sipd-subdel-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  const config = path.join(dir, 'sipd.yaml')
  await writeFile(config, yaml)
  const env = { SIPD_DATABASE_URL: dbUrl }
  t.equal((await cli(['migrate', '--config', config], env)).code, 0, 'migrated')
  t.equal((await cli(['user', 'add', `gus@${DOMAIN}`, '--password', 'pw-gus', '--config', config], env)).code, 0, 'gus added')

  const sipd = await spawnSipd({ configYaml: yaml, env })
  t.teardown(async () => { await sipd.stop() })

  // The phone: REGISTERs with digest; answers every INVITE 486.
  const sock = dgram.createSocket('udp4')
  await new Promise<void>(resolve => sock.bind(0, PHONE, resolve))
  t.teardown(() => { sock.close() })
  const phonePort = sock.address().port
  let invites = 0
  let waiting: ((r: SipResponse) => void) | undefined
  sock.on('message', data => {
    const m = parseMessage(data)
    if (!m.isRequest) {
      if (m.status >= 200) waiting?.(m)
      return
    }
    const req = m as SipRequest
    if (req.method !== 'INVITE') return
    invites++
    sock.send(createResponse(req, 486, 'Busy Here', { toTag: 'busy' }), port, '127.0.0.1')
  })
  let cseq = 0
  const register = async (): Promise<number> => {
    const send = async (auth?: string): Promise<SipResponse | undefined> => await new Promise(resolve => {
      const timer = setTimeout(() => { waiting = undefined; resolve(undefined) }, 5000)
      waiting = r => { clearTimeout(timer); waiting = undefined; resolve(r) }
      const lines = [
        `REGISTER sip:${DOMAIN} SIP/2.0`,
        `Via: SIP/2.0/UDP ${PHONE}:${phonePort};branch=z9hG4bKreg${++cseq};rport`,
        'Max-Forwards: 70',
        `From: <sip:gus@${DOMAIN}>;tag=reg`,
        `To: <sip:gus@${DOMAIN}>`,
        `Call-ID: subdel-reg@${PHONE}`,
        `CSeq: ${cseq} REGISTER`,
        `Contact: <sip:gus@${PHONE}:${phonePort}>`,
        'Expires: 600',
        ...(auth === undefined ? [] : [auth]),
        'Content-Length: 0', '', ''
      ]
      sock.send(Buffer.from(lines.join('\r\n')), port, '127.0.0.1')
    })
    const challenge = await send()
    if (challenge?.status !== 401) return challenge?.status ?? 0
    const nonce = /nonce="([^"]+)"/.exec(challenge.header('WWW-Authenticate') ?? '')?.[1] ?? ''
    const response = md5(`${md5(`gus:${DOMAIN}:pw-gus`)}:${nonce}:${md5(`REGISTER:sip:${DOMAIN}`)}`)
    const r = await send(`Authorization: Digest username="gus", realm="${DOMAIN}", nonce="${nonce}", uri="sip:${DOMAIN}", response="${response}", algorithm=MD5`)
    return r?.status ?? 0
  }

  t.equal(await register(), 200, 'gus registered')
  t.same((await inviteStatuses(MEDIA, port, `sip:gus@${DOMAIN}`)).filter(s => s !== 100), [486], 'a call from media reaches the phone (its 486 comes back)')
  t.equal(invites, 1, 'the phone got the INVITE')

  t.equal((await cli(['user', 'del', `gus@${DOMAIN}`, '--config', config], env)).code, 0, 'gus deleted from PostgreSQL')
  await delay(TTL_MS + 300)
  const bindings = await (await fetch(`${sipd.httpUrl}/api/locations?aor=${encodeURIComponent(`sip:gus@${DOMAIN}`)}`)).json() as { bindings: unknown[] }
  t.equal(bindings.bindings.length, 1, 'the binding itself is still stored (it expires or is removed through the admin API)')
  t.same((await inviteStatuses(MEDIA, port, `sip:gus@${DOMAIN}`)).filter(s => s !== 100), [404], 'a call for the deleted subscriber: 404 once the cache forgot it')
  t.equal(invites, 1, 'the phone got no second INVITE')
  t.equal(await register(), 403, 'a refresh of its binding: 403')
})
