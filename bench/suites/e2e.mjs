// End-to-end suite (issue 6): real sipp on loopback against a running sipd
// (and, with --with-kamailio, Kamailio 5.6 doing the same job, alternating
// with sipd profile by profile in the same run).
//
// Profiles — for each, the offered rate is stepped up (each step a few
// seconds of load) until a step has a failed call or an unexpected message;
// the highest clean step is reported with the server's CPU seconds per
// 1,000 calls / REGISTERs (utime + stime of the server's own processes from
// /proc, so that sipp's CPU use does not blur it) at a common rate and at
// that peak, and its memory (PSS) after the climb:
//   calls          trunk uac → server → media node uas, no hold time
//   calls-hold     the same with the call held HOLD_S seconds
//   register       REGISTER → 401 → REGISTER with MD5 digest → 200, memory store
//   register-redis the same, sipd with its Redis location store
//   register-noauth REGISTER → 200 without authentication (sipd with
//                  registrar.auth_exempt for the phone's address)
//   mixed          calls and digest REGISTERs at the same rate at once
// Scaling (sipd):
//   bindings       media node → sipd → registered phone calls (location
//                  lookup in Redis) with 1k, 10k, 100k bindings preloaded
//                  through the Redis location store; Redis memory per binding
//   dialogs        1k and 10k calls held at once; memory per held call
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import os from 'node:os'
import path from 'node:path'
import { RedisLocationStore } from '@sipd/registrar'
import { stats } from '../lib/sample.mjs'
import { REPO_ROOT, SIPD_CLI, freePort, startSipd } from '../lib/sipd.mjs'
import { startRedis } from '../lib/redis.mjs'
import { startPostgres } from '../lib/postgres.mjs'
import { ensureKamailio, startKamailio } from '../lib/kamailio.mjs'
import { problems, runSipp, startSipp } from '../lib/sipp.mjs'

export const timeLimit = { full: 1500, quick: 480 }

const DOMAIN = 'bench.test'
const USERS = 1000
const HOLD_S = 5
// Loopback addresses of our own (SIPP-NOTES.md: one per party, so that the
// proxy tells a trunk from a media node by source address).
const HOST = { server: '127.0.6.1', trunk: '127.0.6.2', media: '127.0.6.3', phoneReg: '127.0.6.4', mediaUac: '127.0.6.5', phone: '127.0.6.6' }
const SIPP = path.join(REPO_ROOT, 'bench', 'sipp')
const SCENARIO = {
  uac: path.join(SIPP, 'uac-call.xml'),
  uas: path.join(SIPP, 'uas-call.xml'),
  uacAor: path.join(SIPP, 'uac-aor.xml'),
  regAuth: path.join(SIPP, 'register-auth.xml'),
  regNoAuth: path.join(SIPP, 'register-noauth.xml')
}
// Common rates at which CPU per 1,000 is compared like for like.
const COMMON = { calls: 300, register: 1000, mixed: 300 }
const LADDER = {
  full: {
    calls: [300, 600, 1000, 1500, 2000, 3000, 4500, 6500, 9000],
    register: [1000, 2000, 4000, 8000, 16000, 32000],
    mixed: [300, 600, 1000, 1500, 2000, 3000, 4000, 5000]
  },
  quick: {
    calls: [300, 1000, 2000, 4000],
    register: [1000, 4000, 8000, 16000],
    mixed: [300, 1000, 2000]
  }
}
const STEP_S = { full: 5, quick: 2 }
// Warm-up before a server's first counted step (s).
const WARM_S = { full: 40, quick: 5 }
// Repeats of the common-rate step for the headline profiles (the ratio the
// issue asks for); the climb continues after them.
const REPEATS = { full: 3, quick: 1 }
// Stop starting ladder steps after this much of the run (seconds), so that
// the suite ends well inside its time limit.
const BUDGET_S = { full: 870, quick: 240 }
// The bindings sizes start until this much of the run has passed (s).
const BINDINGS_BUDGET_S = { full: 1030, quick: 330 }
const SETTLE_MS = 1500
// A step keeps up when its sipp runs end within the offered time plus the
// hold time plus this (s): a server that answers late, after retransmissions,
// may still complete every call, but not at the offered rate.
const LAG_S = 3

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))
const MiB = 1048576

function profiles (withKamailio) {
  const both = withKamailio ? ['sipd', 'kamailio'] : ['sipd']
  return [
    { id: 'calls', title: 'calls trunk → proxy → media node, no hold', kind: 'calls', holdMs: 0, servers: both, headline: true, unit: 'calls/s', per: 'calls' },
    { id: 'calls-hold', title: `calls held ${HOLD_S} s`, kind: 'calls', holdMs: HOLD_S * 1000, servers: both, unit: 'calls/s', per: 'calls' },
    { id: 'register', title: 'REGISTER with digest (401 + 200), memory store', kind: 'register', auth: true, store: 'memory', servers: both, headline: true, unit: 'REGISTER/s', per: 'REGISTERs' },
    { id: 'mixed', title: 'mixed: calls + digest REGISTERs at the same rate', kind: 'mixed', holdMs: 0, auth: true, store: 'memory', servers: both, unit: 'calls/s (+ as many REGISTER/s)', per: 'calls (+ 1 REGISTER each)' },
    { id: 'register-redis', title: 'REGISTER with digest (401 + 200), Redis store', kind: 'register', auth: true, store: 'redis', servers: ['sipd'], unit: 'REGISTER/s', per: 'REGISTERs' },
    { id: 'register-noauth', title: 'REGISTER without auth (200), memory store', kind: 'register', auth: false, store: 'memory', servers: both, unit: 'REGISTER/s', per: 'REGISTERs', commonOnly: true },
  ]
}

/**
 * sipd's config for a profile: trunk trusted, the media node as set 1,
 * subscribers u0…u999 (password pN); with `noAuth`, the REGISTER phone's
 * address is exempt from digest (registrar.auth_exempt).
 */
function sipdYaml ({ port, http, mediaUri, redisUrl, databaseUrl, noAuth = false }) {
  return [
    `listen: ["udp:${HOST.server}:${port}"]`,
    `http: "127.0.0.1:${http}"`,
    'log_level: warn',
    'node_id: bench',
    `domains: [${DOMAIN}]`,
    ...(databaseUrl !== undefined
      ? [`database: { url: "${databaseUrl}" }`]
      : ['subscribers:', '  users:', ...Array.from({ length: USERS }, (_, i) => `    - { user: u${i}, domain: ${DOMAIN}, password: p${i} }`)]),
    ...(redisUrl !== undefined ? [`redis: { url: "${redisUrl}" }`] : []),
    'auth: { secret: "bench-secret-0123456789abcdef0123456789" }',
    ...(noAuth ? [`registrar: { auth_exempt: ["${HOST.phoneReg}/32"] }`] : []),
    `trusted: ["${HOST.trunk}/32"]`,
    'media:',
    '  probe: { interval_ms: 3600000 }',
    '  sets:',
    `    - { id: 1, algorithm: round-robin, nodes: [{ uri: "${mediaUri}" }] }`
  ].join('\n') + '\n'
}

/** Start the server under test for a profile; returns { name, cpu(), memory(), port, stop() }. */
async function startServer (which, profile, { mediaUri, redisUrl }) {
  const port = await freePort(HOST.server)
  if (which === 'sipd') {
    const http = await freePort()
    const s = await startSipd(sipdYaml({ port, http, mediaUri, redisUrl: profile.store === 'redis' ? redisUrl : undefined, noAuth: profile.kind === 'register' && profile.auth === false }), { graceMs: 3000 })
    return { ...s, port }
  }
  const k = await startKamailio({ host: HOST.server, port, media: [mediaUri], auth: profile.auth === true })
  return { ...k, port }
}

/**
 * One step: `rate` per second for `seconds` (calls, REGISTERs or both),
 * bounded; clean when every sipp party saw no failed call and no unexpected
 * message. CPU is the server's own over the step and SETTLE_MS after it.
 */
async function step (ctx, env, rate, seconds) {
  const { srv, profile, uas, dir } = env
  const n = Math.max(1, Math.round(rate * seconds))
  const holdS = (profile.holdMs ?? 0) / 1000
  const timeoutS = Math.ceil(seconds + holdS + LAG_S + 3)
  const target = `${HOST.server}:${srv.port}`
  const uas0 = uas?.stats()
  const c0 = srv.cpu()
  const t0 = performance.now()
  const runs = []
  if (profile.kind === 'calls' || profile.kind === 'mixed') {
    runs.push(runSipp([target, '-sf', SCENARIO.uac, '-aa', '-s', '5551000', '-i', HOST.trunk, '-p', String(env.trunkPort),
      '-m', String(n), '-r', String(rate), '-d', String(profile.holdMs ?? 0), '-l', String(Math.ceil(rate * (holdS + 3)) + 1000),
      '-timeout', `${timeoutS}s`, '-timeout_error'], { statFile: path.join(dir, `uac-${env.seq}.csv`), timeoutMs: (timeoutS + 5) * 1000 }))
  }
  if (profile.kind === 'aor') {
    runs.push(runSipp([target, '-sf', SCENARIO.uacAor, '-aa', '-inf', env.users, '-key', 'domain', DOMAIN, '-i', HOST.mediaUac, '-p', String(env.mediaPort),
      '-m', String(n), '-r', String(rate), '-l', String(rate * 3 + 1000), '-timeout', `${timeoutS}s`, '-timeout_error'],
    { statFile: path.join(dir, `aor-${env.seq}.csv`), timeoutMs: (timeoutS + 5) * 1000 }))
  }
  if (profile.kind === 'register' || profile.kind === 'mixed') {
    const scenario = profile.auth ? SCENARIO.regAuth : SCENARIO.regNoAuth
    runs.push(runSipp([target, '-sf', scenario, '-s', 'u7', '-au', 'u7', '-ap', 'p7', '-key', 'domain', DOMAIN, '-i', HOST.phoneReg, '-p', String(env.regPort),
      '-m', String(n), '-r', String(rate), '-l', String(rate * 3 + 1000), '-timeout', `${timeoutS}s`, '-timeout_error'],
    { statFile: path.join(dir, `reg-${env.seq}.csv`), timeoutMs: (timeoutS + 5) * 1000 }))
  }
  env.seq++
  const results = await Promise.all(runs)
  const wall = (performance.now() - t0) / 1000
  await sleep(SETTLE_MS)
  const cpu = srv.cpu() - c0
  const uas1 = uas?.stats()
  let failed = 0
  let unexpected = 0
  let ok = 0
  let retrans = 0
  let rtdMs
  for (const r of results) {
    const p = problems(r.stats)
    const done = r.stats?.SuccessfulCall ?? 0
    // Calls that did not succeed are failed, also those cut off by -timeout or a kill.
    failed += Math.max(p.failed, n - done)
    unexpected += p.unexpected
    retrans += r.stats?.Retransmissions ?? 0
    if (r === results[0]) { ok = done; rtdMs = r.stats?.ResponseTime1 }
  }
  if (uas0 !== undefined && uas1 !== undefined) {
    const a = problems(uas0)
    const b = problems(uas1)
    failed += b.failed - a.failed
    unexpected += b.unexpected - a.unexpected
  }
  const keptUp = wall <= seconds + holdS + LAG_S
  return {
    rate,
    offered: n,
    successful: ok,
    failed,
    unexpected,
    retransmissions: retrans,
    keptUp,
    clean: failed === 0 && unexpected === 0 && ok === n && keptUp,
    seconds: Math.round(wall * 10) / 10,
    cpuSeconds: Math.round(cpu * 100) / 100,
    cpuPer1000: ok > 0 ? cpu / ok * 1000 : null,
    responseTimeMs: Number.isFinite(rtdMs) ? rtdMs : undefined
  }
}

/**
 * Wait until the server is idle (under 5 % of a core over 500 ms), at most
 * `maxMs`: after a failed step it is still retransmitting and timing out
 * transactions, which would be charged to the next step.
 */
async function quiet (srv, maxMs = 10000) {
  const until = Date.now() + maxMs
  for (;;) {
    const c0 = srv.cpu()
    await sleep(500)
    if (srv.cpu() - c0 < 0.025 || Date.now() > until) return
  }
}

/**
 * The climb for one server: the common rate (repeated for the headline
 * profiles), then the ladder until a step is not clean; then one step
 * halfway between the last clean and the first failed rate (full run).
 */
async function climb (ctx, env, { ladder, common, repeats, stepS, deadline, label }) {
  // Warm-up (not counted): the server's code paths compiled, sipp's sockets
  // open. Long enough for a JIT-compiled server to reach its steady state
  // (sipd's optimising compiler was still using ~0.2 ms per call on its
  // background thread in the second 2 s at 300/s), then wait until the
  // server is idle, so that no compilation or clean-up is charged to the
  // first counted step. Both servers get the same warm-up. A full run warms
  // up for longer than 64·T1 (32 s): sipd ends its transactions' final waits
  // (Timers J, L, M) 32 s after their calls, Kamailio its own after 5 s, so
  // the common-rate steps pay for the clean-up of calls made at the same rate
  // earlier, as a server in service does (and V8's recompilation after the
  // first expiries is behind them).
  const warm = Math.min(common, 300)
  ctx.progress(`${label}: warm-up, ${warm}/s for ${WARM_S[ctx.quick ? 'quick' : 'full']} s`)
  await step(ctx, env, warm, WARM_S[ctx.quick ? 'quick' : 'full'])
  await quiet(env.srv, 5000)
  const steps = []
  let memoryAtPeak
  const rates = [...Array(repeats).fill(common), ...ladder.filter(r => r > common)]
  let best
  let firstFailed
  let stopped
  for (const rate of rates) {
    // The first step (the common rate) always runs, so that every profile that starts has its CPU figure.
    if (steps.length > 0 && Date.now() > deadline) { stopped = 'time budget'; break }
    ctx.progress(`${label}: ${rate}/s for ${stepS} s (step ${steps.length + 1}; highest clean so far ${best?.rate ?? '—'})`)
    const s = await step(ctx, env, rate, stepS)
    steps.push(s)
    if (!s.clean) { firstFailed = rate; break }
    best = s
    memoryAtPeak = env.srv.memory()
  }
  if (firstFailed !== undefined && best !== undefined && !ctx.quick && firstFailed / best.rate > 1.2 && Date.now() < deadline) {
    const mid = Math.round((best.rate + firstFailed) / 2 / 50) * 50
    if (env.restart !== undefined) {
      ctx.progress(`${label}: restarting the server after the failed step`)
      await env.restart()
      await step(ctx, env, Math.min(common, 300), 3)
    } else {
      ctx.progress(`${label}: waiting for the server to be idle after the failed step`)
      await quiet(env.srv)
    }
    ctx.progress(`${label}: ${mid}/s for ${stepS} s (between ${best.rate} and ${firstFailed})`)
    const s = await step(ctx, env, mid, stepS)
    steps.push(s)
    if (s.clean) { best = s; memoryAtPeak = undefined }
    else firstFailed = mid
  }
  const atCommon = steps.filter(s => s.rate === common && s.clean && s.cpuPer1000 !== null).map(s => s.cpuPer1000)
  return { steps, best, firstFailed, stopped, memoryAtPeak, common: atCommon.length > 0 ? stats(atCommon) : undefined, topOfLadder: firstFailed === undefined && stopped === undefined }
}

async function runProfile (ctx, profile, index, shared) {
  const order = index % 2 === 0 ? profile.servers : [...profile.servers].reverse()
  const out = {}
  const kind = profile.kind
  for (const which of order) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sipd-bench-e2e-'))
    const mediaPort = await freePort(HOST.media)
    const mediaUri = `sip:${HOST.media}:${mediaPort}`
    const env = { profile, dir, seq: 0, trunkPort: await freePort(HOST.trunk), regPort: await freePort(HOST.phoneReg) }
    let boots = 0
    const boot = async () => {
      boots++
      if (kind !== 'register') env.uas = await startSipp(['-sf', SCENARIO.uas, '-aa', '-i', HOST.media, '-p', String(mediaPort)], { statFile: path.join(dir, `uas-${boots}.csv`) })
      env.srv = await startServer(which, profile, { mediaUri, redisUrl: shared.redisUrl })
    }
    const halt = async () => {
      await env.srv?.stop()
      await env.uas?.stop()
      env.srv = env.uas = undefined
    }
    // After a failed step the server may have marked the media node down (sipd
    // does, on timeouts) and is still retransmitting: a fresh start for the retry.
    env.restart = async () => { await halt(); await boot() }
    try {
      await boot()
      const mem0 = env.srv.memory()
      const label = `${profile.id} · ${env.srv.name}`
      const r = await climb(ctx, env, {
        ladder: profile.commonOnly ? [] : LADDER[ctx.quick ? 'quick' : 'full'][kind],
        common: COMMON[kind],
        repeats: profile.headline ? REPEATS[ctx.quick ? 'quick' : 'full'] : 1,
        stepS: STEP_S[ctx.quick ? 'quick' : 'full'],
        deadline: shared.deadline,
        label
      })
      out[which] = { ...r, memoryBefore: mem0, memoryAfter: r.memoryAtPeak ?? env.srv.memory() }
    } finally {
      await halt()
      rmSync(dir, { recursive: true, force: true })
    }
  }
  return out
}

const round = (x, d = 3) => (x === undefined || x === null ? x : Math.round(x * 10 ** d) / 10 ** d)
const ratio = (a, b) => (typeof a === 'number' && typeof b === 'number' && b > 0 ? a / b : undefined)

/** Table rows of one profile: highest clean rate, CPU per 1,000 at the common rate and at the peak, memory. */
function profileRows (profile, r) {
  const s = r.sipd
  const k = r.kamailio
  const rows = []
  const na = s === undefined ? (profile.sipdNa ?? 'not run') : undefined
  const peak = x => (x?.best === undefined || profile.commonOnly ? null : x.best.rate)
  const peakNote = x => (x === undefined ? undefined : profile.commonOnly ? 'common rate only (no climb)' : x.topOfLadder ? 'top of the ladder (no failure found)' : x.stopped !== undefined ? `stopped: ${x.stopped}` : `next step ${x.firstFailed}/s failed`)
  const withK = (row, sv, kv) => {
    if (k !== undefined) {
      row.kamailio = kv ?? null
      const q = ratio(sv, kv)
      if (q !== undefined) row.ratios = { Kamailio: q }
    }
    if (na !== undefined) { row.median = null; row.na = na }
    return row
  }
  rows.push(withK({ name: `${profile.title}: highest clean rate`, unit: profile.unit, median: peak(s), samples: 1, detail: { sipd: peakNote(s), kamailio: peakNote(k) } }, peak(s), peak(k)))
  const cs = s?.common
  const ck = k?.common
  const c = COMMON[profile.kind]
  rows.push(withK({
    name: `${profile.title}: server CPU s / 1,000 ${profile.per} at ${c}/s`,
    unit: 'CPU s',
    median: cs === undefined ? null : round(cs.median),
    ...(cs !== undefined && cs.samples > 1 ? { spread: { min: round(cs.min), max: round(cs.max), p25: round(cs.p25), p75: round(cs.p75) } } : {}),
    samples: cs?.samples ?? 0,
    ...(ck !== undefined && ck.samples > 1 ? { kamailioSpread: { min: round(ck.min), max: round(ck.max) } } : {})
  }, cs?.median, ck?.median))
  rows.push(withK({
    name: `${profile.title}: server CPU s / 1,000 ${profile.per} at its highest clean rate`,
    unit: 'CPU s',
    median: round(s?.best?.cpuPer1000 ?? null),
    samples: s?.best !== undefined ? 1 : 0
  }, s?.best?.cpuPer1000, k?.best?.cpuPer1000))
  if (k !== undefined) rows[rows.length - 1].kamailio = round(rows[rows.length - 1].kamailio)
  rows.push(withK({
    name: `${profile.title}: server memory (PSS) after its highest clean step`,
    unit: 'MiB',
    median: s === undefined ? null : round(s.memoryAfter.pss / MiB, 1),
    samples: s === undefined ? 0 : 1
  }, s?.memoryAfter.pss, k?.memoryAfter.pss))
  if (k !== undefined) rows[rows.length - 1].kamailio = round(k.memoryAfter.pss / MiB, 1)
  if (k !== undefined && rows[1].kamailio !== null) rows[1].kamailio = round(rows[1].kamailio)
  // The steps themselves, for the JSON.
  rows[0].steps = { sipd: s?.steps, kamailio: k?.steps }
  rows[rows.length - 1].memory = { sipd: s && { before: s.memoryBefore, after: s.memoryAfter }, kamailio: k && { before: k.memoryBefore, after: k.memoryAfter } }
  return rows
}

// ---------------------------------------------------------------- scaling: bindings

/** Preload bindings sip:uI@DOMAIN (I from `from` to `to` − 1), each with one contact at the phone uas, through the Redis location store. */
async function preloadBindings (redisUrl, from, to, phoneUri) {
  const store = new RedisLocationStore({ redis: redisUrl })
  try {
    await store.ready(5000)
    const now = Date.now()
    const phone = new URL(phoneUri.replace('sip:', 'http://'))
    let next = from
    const worker = async () => {
      while (next < to) {
        const i = next++
        const r = await store.update(`sip:u${i}@${DOMAIN}`, {
          callId: `bench-${i}@${HOST.phone}`,
          cseq: 1,
          changes: [{
            contact: `sip:u${i}@${phone.hostname}:${phone.port};transport=udp`,
            expires: 3600,
            received: { transport: 'udp', address: phone.hostname, port: Number(phone.port) },
            node: 'bench',
            userAgent: 'Yealink SIP-T46S 66.86.0.15'
          }]
        }, now)
        if (!r.ok) throw new Error(`preloading binding ${i} failed: ${JSON.stringify(r)}`)
      }
    }
    await Promise.all(Array.from({ length: 256 }, worker))
  } finally {
    await store.close()
  }
}

/** Subscribers uI (password pI, HA1s with realm = domain, as `sipd user add` stores them) for I from `from` to `to` − 1. */
async function addSubscribers (url, from, to) {
  const { default: pg } = await import('pg')
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try {
    await c.query(`INSERT INTO subscribers (username, domain, ha1_md5, ha1_sha256, enabled)
      SELECT 'u' || i, $1::text, md5('u' || i || ':' || $1 || ':p' || i), encode(sha256(convert_to('u' || i || ':' || $1 || ':p' || i, 'UTF8')), 'hex'), true
      FROM generate_series($2::int, $3::int - 1) AS i`, [DOMAIN, from, to])
  } finally {
    await c.end()
  }
}

/** Redis's own count of the memory it holds (INFO memory, used_memory). */
async function redisUsedMemory (redisUrl) {
  const { default: Redis } = await import('ioredis')
  const c = new Redis(redisUrl)
  try {
    const info = await c.info('memory')
    return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? NaN)
  } finally {
    c.disconnect()
  }
}

async function scalingBindings (ctx, shared) {
  const sizes = ctx.quick ? [1000, 10000] : [1000, 10000, 100000]
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipd-bench-e2e-'))
  ctx.progress('bindings: starting redis-server and PostgreSQL')
  const redis = await startRedis()
  // Subscribers in PostgreSQL, as a large site keeps them (a config file of
  // 100,000 users takes sipd half a minute to load).
  const db = await startPostgres().catch(async err => { await redis.stop(); throw err })
  const out = []
  // One phone address for every size: the preloaded contacts point at it.
  const phonePort = await freePort(HOST.phone)
  try {
    const migrate = path.join(dir, 'migrate.yaml')
    writeFileSync(migrate, `database: { url: "${db.url}" }\n`)
    const m = spawnSync(process.execPath, [SIPD_CLI, 'migrate', '--config', migrate], { encoding: 'utf8', timeout: 60000 })
    if (m.status !== 0) throw new Error(`sipd migrate failed: ${m.stderr}`)
    let loaded = 0
    const used0 = await redisUsedMemory(redis.url)
    for (const size of sizes) {
      if (Date.now() > shared.deadline) break
      // A fresh sipd and phone per size (the bindings stay in Redis), so that a
      // failed step of the previous size does not weigh on this one.
      const mediaPort = await freePort(HOST.mediaUac)
      ctx.progress(`bindings: preloading ${size.toLocaleString('en-US')} bindings into Redis`)
      const t0 = performance.now()
      await preloadBindings(redis.url, loaded, size, `sip:${HOST.phone}:${phonePort}`)
      await addSubscribers(db.url, loaded, size)
      const loadS = (performance.now() - t0) / 1000
      loaded = size
      const used = await redisUsedMemory(redis.url)
      const users = path.join(dir, `users-${size}.csv`)
      writeFileSync(users, 'RANDOM\n' + Array.from({ length: size }, (_, i) => `u${i}`).join('\n') + '\n')
      const env = { profile: { id: 'bindings', kind: 'aor', holdMs: 0 }, dir, seq: 0, mediaPort, users }
      let boots = 0
      const boot = async () => {
        boots++
        env.uas = await startSipp(['-sf', SCENARIO.uas, '-aa', '-i', HOST.phone, '-p', String(phonePort)], { statFile: path.join(dir, `phone-${size}-${boots}.csv`) })
        const port = await freePort(HOST.server)
        const http = await freePort()
        // The media node is the calling sipp: sipd knows media nodes by their address in media.sets.
        env.srv = { ...await startSipd(sipdYaml({ port, http, mediaUri: `sip:${HOST.mediaUac}:${mediaPort}`, redisUrl: redis.url, databaseUrl: db.url }), { graceMs: 3000 }), port }
      }
      const halt = async () => {
        await env.srv?.stop()
        await env.uas?.stop()
        env.srv = env.uas = undefined
      }
      env.restart = async () => { await halt(); await boot() }
      try {
        await boot()
        const r = await climb(ctx, env, {
          ladder: LADDER[ctx.quick ? 'quick' : 'full'].calls.slice(0, ctx.quick ? 3 : 5),
          common: COMMON.calls,
          repeats: 1,
          stepS: STEP_S[ctx.quick ? 'quick' : 'full'],
          deadline: shared.deadline,
          label: `bindings ${size.toLocaleString('en-US')} · sipd + Redis + PostgreSQL`
        })
        out.push({ size, loadSeconds: round(loadS, 1), redisBytesPerBinding: (used - used0) / size, sipdPss: env.srv.memory().pss, ...r })
      } finally {
        await halt()
      }
    }
  } finally {
    await redis.stop()
    await db.stop()
    rmSync(dir, { recursive: true, force: true })
  }
  const rows = []
  for (const b of out) {
    const n = b.size.toLocaleString('en-US')
    rows.push({ name: `${n} bindings (Redis, subscribers in PostgreSQL): media node → sipd → phone, highest clean rate`, unit: 'calls/s', median: b.best?.rate ?? null, samples: 1, detail: { sipd: b.topOfLadder ? 'top of the short ladder (no failure found)' : b.stopped ? `stopped: ${b.stopped}` : `next step ${b.firstFailed}/s failed` }, steps: b.steps })
    rows.push({ name: `${n} bindings: sipd CPU s / 1,000 calls at ${COMMON.calls}/s`, unit: 'CPU s', median: round(b.common?.median ?? null), samples: b.common?.samples ?? 0 })
    rows.push({ name: `${n} bindings: Redis memory per binding (INFO used_memory)`, unit: 'bytes', median: Math.round(b.redisBytesPerBinding), samples: 1, preloadSeconds: b.loadSeconds })
  }
  return rows
}

// ---------------------------------------------------------------- scaling: dialogs

/** Calls held at once: `rate` cps held `holdS` s; memory sampled while they are up. */
async function heldCalls (ctx, which, { rate, holdS, shared }) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipd-bench-e2e-'))
  const mediaPort = await freePort(HOST.media)
  const mediaUri = `sip:${HOST.media}:${mediaPort}`
  const uas = await startSipp(['-sf', SCENARIO.uas, '-aa', '-i', HOST.media, '-p', String(mediaPort)], { statFile: path.join(dir, 'uas.csv') })
  const profile = { id: 'dialogs', kind: 'calls', holdMs: holdS * 1000 }
  let srv
  try {
    srv = await startServer(which, profile, { mediaUri })
    const env = { srv, profile, uas, dir, seq: 0, trunkPort: await freePort(HOST.trunk) }
    // A few calls first so that the code paths are loaded before the baseline.
    await step(ctx, { ...env, profile: { ...profile, holdMs: 0 } }, 100, 1)
    await sleep(500)
    const base = srv.memory().pss
    let peak = base
    const seconds = holdS * 1.2
    const sampler = setInterval(() => { try { peak = Math.max(peak, srv.memory().pss) } catch { /* stopped */ } }, 250)
    const held = Math.round(rate * holdS)
    ctx.progress(`dialogs · ${srv.name}: ${held.toLocaleString('en-US')} calls held (${rate} cps, ${holdS} s hold)`)
    let s
    try {
      s = await step(ctx, env, rate, seconds)
    } finally {
      clearInterval(sampler)
    }
    return { which, held, rate, holdS, base, peak, perDialog: (peak - base) / held, ...s }
  } finally {
    await srv?.stop()
    await uas.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

async function scalingDialogs (ctx, shared) {
  const sets = ctx.quick ? [{ rate: 200, holdS: 5 }] : [{ rate: 200, holdS: 5 }, { rate: 500, holdS: 20 }]
  const rows = []
  for (const set of sets) {
    if (Date.now() > shared.deadline) break
    const r = {}
    for (const which of shared.withKamailio ? ['sipd', 'kamailio'] : ['sipd']) r[which] = await heldCalls(ctx, which, { ...set, shared })
    const held = r.sipd.held.toLocaleString('en-US')
    const k = r.kamailio
    const row = (name, unit, sv, kv, d = 3) => {
      const x = { name, unit, median: round(sv, d), samples: 1 }
      if (k !== undefined) {
        x.kamailio = round(kv, d)
        const q = ratio(sv, kv)
        if (q !== undefined) x.ratios = { Kamailio: q }
      }
      return x
    }
    const clean = row(`${held} calls held (${set.rate} cps × ${set.holdS} s): failed calls + unexpected messages`, 'count', r.sipd.failed + r.sipd.unexpected, k && k.failed + k.unexpected, 0)
    delete clean.ratios
    rows.push({ ...clean, steps: { sipd: r.sipd, kamailio: k } })
    rows.push(row(`${held} calls held: server CPU s / 1,000 calls`, 'CPU s', r.sipd.cpuPer1000, k?.cpuPer1000))
    rows.push(row(`${held} calls held: memory growth per held call (PSS peak − before)`, 'KiB', r.sipd.perDialog / 1024, k && k.perDialog / 1024, 2))
  }
  return rows
}

// ---------------------------------------------------------------- run

function sippVersion () {
  const r = spawnSync('sipp', ['-v'], { encoding: 'utf8' })
  return /SIPp\s+v?([\d.]+)/i.exec((r.stdout ?? '') + (r.stderr ?? ''))?.[1] ?? 'unknown'
}

export async function run (ctx) {
  const started = Date.now()
  const shared = { deadline: started + BUDGET_S[ctx.quick ? 'quick' : 'full'] * 1000, withKamailio: ctx.withKamailio === true }
  const peers = { sipp: sippVersion() }
  if (shared.withKamailio) {
    const k = ensureKamailio(ctx.progress)
    peers.kamailio = k.version + (k.installed ? ' (installed by this run)' : '')
  }
  const rows = []
  const redis = await startRedis()
  shared.redisUrl = redis.url
  try {
    // SIPD_BENCH_E2E_ONLY=calls,mixed,bindings,dialogs runs only those parts (for working on one).
    const only = process.env.SIPD_BENCH_E2E_ONLY?.split(',')
    const list = profiles(shared.withKamailio).filter(p => only === undefined || only.includes(p.id))
    shared.only = only
    for (let i = 0; i < list.length; i++) {
      const r = await runProfile(ctx, list[i], i, shared)
      rows.push(...profileRows(list[i], r))
    }
  } finally {
    await redis.stop()
  }
  // Bindings sizes start until their own budget; held calls are bounded
  // (under 2 minutes with Kamailio) and always run.
  if (shared.only === undefined || shared.only.includes('bindings')) rows.push(...await scalingBindings(ctx, { ...shared, deadline: started + BINDINGS_BUDGET_S[ctx.quick ? 'quick' : 'full'] * 1000 }))
  if (shared.only === undefined || shared.only.includes('dialogs')) rows.push(...await scalingDialogs(ctx, { ...shared, deadline: Infinity }))
  const notes = [
    `each step offers a fixed rate for ${STEP_S[ctx.quick ? 'quick' : 'full']} s with sipp ${peers.sipp} over UDP on loopback (trunk ${HOST.trunk}, media node ${HOST.media}, phones ${HOST.phoneReg}/${HOST.phone}, server ${HOST.server}); a step is clean when every call completed with no failed call and no unexpected or out-of-call message at any sipp party, within the offered time + hold time + ${LAG_S} s; the climb stops at the first step that is not, then tries once halfway (full run); a rate is "highest clean" at the ladder's resolution`,
    `CPU s / 1,000 = the server's utime + stime from /proc/PID/stat over the step and ${SETTLE_MS / 1000} s after it, divided by the successful calls (REGISTERs); for Kamailio summed over its main process and every child; sipp's own CPU is not in it. Common rates: ${COMMON.calls} calls/s, ${COMMON.register} REGISTER/s${ctx.quick ? '' : `; the headline profiles repeat the common-rate step ${REPEATS.full} times (median, spread)`}`,
    'memory is PSS from /proc/PID/smaps_rollup (summed over Kamailio\'s processes, so its shared memory counts once; for sipd PSS ≈ VmRSS, both in the JSON)',
    `÷ Kamailio = sipd / Kamailio in the same run: above 1 is better for rates, below 1 is better for CPU and memory; the servers alternate (the first profile starts with sipd, the next with Kamailio, …), each freshly started per profile${shared.withKamailio ? `; Kamailio: ${peers.kamailio}, 2 children, bench/kamailio/kamailio.cfg (tm, rr, dispatcher round-robin, usrloc in memory; digest via auth's pv_www_authenticate where the profile has auth)` : ''}`,
    'REGISTER load: sipp registers one subscriber again and again (sipp 3.6 cannot take digest credentials from an injection file); the mixed profile runs the calls and REGISTER sipps at the same rate at once, CPU per 1,000 calls counts the REGISTERs\' cost in',
    'bindings: sip:uN@bench.test preloaded through @sipd/registrar\'s RedisLocationStore (the store sipd reads) in this process and the subscribers uN inserted into PostgreSQL (own throw-away server, `sipd migrate`), then a sipp media node calls random users of the loaded set; sipd checks the subscriber (PostgreSQL behind a 5 s cache), looks the bindings up in Redis and forwards to the phone uas; sipd (and the phone) are started afresh per size',
    'held calls: sipd keeps no dialog state beyond transactions (RFC 6026 keeps an INVITE client transaction 32 s after its 2xx), so memory per held call is memory per call in flight at that rate; a profile\'s memory is read after its highest clean step (a failed step restarts the server before the retry halfway)'
  ]
  if (Date.now() > shared.deadline) notes.push('the time budget ran out: later steps or scaling sizes were skipped (see steps in the JSON)')
  return { name: 'e2e', rows, notes, peers }
}
