// Config validation: defaults with no file, env overrides, and errors that
// name the key, the value and what is allowed; the CLI exits non-zero on them.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { buildConfig, ConfigError } from '../src/config.js'

const cli = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'cli.js')

t.test('defaults: sipd starts with no config at all', async t => {
  const c = buildConfig(undefined, {})
  t.same(c.listen, ['udp:0.0.0.0:5060', 'tcp:0.0.0.0:5060'])
  t.equal(c.http, '127.0.0.1:9090')
  t.same(c.domains, [])
  t.same(c.auth.algorithms, ['MD5'])
  t.ok(c.auth.md5OnlyUserAgents.includes('baresip v1.'), 'Debian 12\'s baresip 1.0 is challenged with MD5 alone by default')
  t.same(buildConfig({ auth: { md5_only_user_agents: ['OldPhone/'] } }, {}).auth.md5OnlyUserAgents, ['OldPhone/'])
  t.equal(c.auth.secretFromConfig, false)
  t.equal(c.registrar.minExpires, 60)
  t.equal(c.registrar.flowTimer, 0, 'no Flow-Timer unless configured')
  t.equal(buildConfig({ registrar: { flow_timer: 20 } }, {}).registrar.flowTimer, 20)
  t.same(c.registrar.authExempt, [], 'every REGISTER is authenticated unless configured')
  t.same(buildConfig({ registrar: { auth_exempt: ['10.0.0.0/8', '0.0.0.0/0', '::/0'] } }, {}).registrar.authExempt, ['10.0.0.0/8', '0.0.0.0/0', '::/0'])
  t.equal(c.timers.t1, 500)
  t.equal(c.limits.maxMessageSize, 65535)
})

t.test('environment overrides', async t => {
  const c = buildConfig({ listen: ['udp:10.0.0.1:5060'], http: '10.0.0.1:1' }, {
    SIPD_LISTEN: 'udp:127.0.0.1:5070, tcp:127.0.0.1:5070',
    SIPD_HTTP: '127.0.0.1:9191',
    SIPD_REDIS_URL: 'redis://127.0.0.1:6390',
    SIPD_DATABASE_URL: 'postgres://x@127.0.0.1/db',
    SIPD_LOG_LEVEL: 'debug'
  })
  t.same(c.listen, ['udp:127.0.0.1:5070', 'tcp:127.0.0.1:5070'])
  t.equal(c.http, '127.0.0.1:9191')
  t.equal(c.redis.url, 'redis://127.0.0.1:6390')
  t.equal(c.database.url, 'postgres://x@127.0.0.1/db')
  t.equal(c.logLevel, 'debug')
})

t.test('the example config of the proxy issue loads', async t => {
  const c = buildConfig({
    listen: ['udp:127.0.0.1:5060', 'tcp:127.0.0.1:5060'],
    http: '127.0.0.1:9090',
    domains: ['example.test'],
    subscribers: { users: [{ user: 'alice', domain: 'example.test', password: 'alice-secret' }] },
    trusted: ['127.0.0.2/32'],
    media: { sets: [{ id: 1, algorithm: 'round-robin', nodes: [{ uri: 'sip:127.0.0.3:5080' }, { uri: 'sip:127.0.0.4:5080' }] }] },
    trunks: {
      gateways: [{ id: 'carrier-a', uri: 'sip:127.0.0.5:5090' }, { id: 'carrier-b', uri: 'sip:127.0.0.6:5090' }],
      routes: [{ prefix: '1', gateways: ['carrier-a', 'carrier-b'] }]
    }
  }, {})
  t.equal(c.media.sets[0]!.nodes.length, 2)
  t.equal(c.media.sets[0]!.nodes[0]!.weight, 1)
  t.same(c.trunks.routes[0]!.gateways, ['carrier-a', 'carrier-b'])
  t.same(c.trusted, ['127.0.0.2/32'])
})

const BAD: Array<[string, unknown, RegExp]> = [
  ['listen', { listen: ['sctp:1.2.3.4:5060'] }, /config listen\[0\]: value "sctp:1\.2\.3\.4:5060" must start with udp: or tcp:/],
  ['unknown key', { lisen: [] }, /config lisen: unknown key; allowed here: listen, http/],
  ['algorithm', { media: { sets: [{ id: 1, algorithm: 'fastest', nodes: [{ uri: 'sip:a' }] }] } }, /config media\.sets\[0\]\.algorithm: value "fastest" is not one of round-robin, weighted/],
  ['gateway id', { trunks: { gateways: [{ id: 'a', uri: 'sip:1.2.3.4' }], routes: [{ prefix: '1', gateways: ['b'] }] } }, /config trunks\.routes\[0\]\.gateways\[0\]: value "b" is not a gateway id \(known: a\)/],
  ['port', { http: '127.0.0.1:99999' }, /config http: value "127\.0\.0\.1:99999" is not HOST:PORT/],
  ['number', { registrar: { min_expires: -1 } }, /config registrar\.min_expires: value -1 is not an integer from 0 to 86400/],
  ['cidr', { trusted: ['300.1.1.1/8'] }, /config trusted\[0\]: value "300\.1\.1\.1\/8" is not an IP address or CIDR/],
  ['auth_exempt cidr', { registrar: { auth_exempt: ['all'] } }, /config registrar\.auth_exempt\[0\]: value "all" is not an IP address or CIDR/],
  ['digest', { auth: { algorithms: ['SHA-1'] } }, /config auth\.algorithms\[0\]: value "SHA-1" is not one of MD5, SHA-256/],
  ['user agent prefix', { auth: { md5_only_user_agents: ['x', ''] } }, /config auth\.md5_only_user_agents\[1\]: an empty prefix would match every User-Agent/]
]

t.test('invalid values name the key, the value and what is allowed', async t => {
  for (const [what, doc, re] of BAD) {
    let caught: unknown
    try {
      buildConfig(doc, {})
    } catch (err) {
      caught = err
    }
    t.ok(caught instanceof ConfigError, `${what}: ConfigError`)
    t.match((caught as Error | undefined)?.message ?? '', re, what)
  }
})

t.test('the CLI exits non-zero with the message', async t => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sipd-config-'))
  const file = path.join(dir, 'bad.yaml')
  writeFileSync(file, 'media:\n  sets:\n    - id: 1\n      algorithm: fastest\n      nodes: [{ uri: "sip:127.0.0.3" }]\n')
  const r = spawnSync(process.execPath, [cli, '--config', file], { encoding: 'utf8', timeout: 20000 })
  t.equal(r.status, 2, 'exit code 2')
  t.match(r.stderr, /sipd: config media\.sets\[0\]\.algorithm: value "fastest" is not one of/)
  writeFileSync(file, 'listen: [\n')
  const y = spawnSync(process.execPath, [cli, '--config', file], { encoding: 'utf8', timeout: 20000 })
  t.equal(y.status, 2)
  t.match(y.stderr, /is not valid YAML/)
})
