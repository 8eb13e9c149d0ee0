// Register suite (issue 7): sipp REGISTERs with digest authentication
// (REGISTER → 401 → REGISTER with credentials → 200) against sipd at a fixed
// rate, with the memory location store and with Redis, reporting the rate
// achieved and sipd's CPU seconds per 1,000 registrations; then the memory
// held by 100,000 bindings in the memory store, measured in this process.
import { spawn } from 'node:child_process'
import path from 'node:path'
import { MemoryLocationStore } from '@sipd/registrar'
import { cpuSeconds, rssBytes } from '../lib/machine.mjs'
import { startRedis } from '../lib/redis.mjs'
import { REPO_ROOT, freePort, startSipd } from '../lib/sipd.mjs'

const DOMAIN = 'bench.test'
const USERS = 1000
// sipp 3.6 does not expand injection fields inside [authentication], so the
// load registers one subscriber (of USERS configured) again and again.
const USER = 'u7'
const SCENARIO = path.join(REPO_ROOT, 'bench', 'sipp', 'register-auth.xml')

export const timeLimit = { full: 300, quick: 120 }

function sipp (args, timeoutMs) {
  return new Promise(resolve => {
    const child = spawn('sipp', args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', d => { out += d })
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('exit', code => { clearTimeout(t); resolve({ code, out }) })
  })
}


async function registerRun (ctx, label, redisUrl) {
  const port = await freePort()
  const http = await freePort()
  const users = Array.from({ length: USERS }, (_, i) => `    - { user: u${i}, domain: ${DOMAIN}, password: p${i} }`)
  const yaml = [
    `listen: ["udp:127.0.0.1:${port}"]`,
    `http: "127.0.0.1:${http}"`,
    `domains: [${DOMAIN}]`,
    'subscribers:',
    '  users:',
    ...users,
    ...(redisUrl !== undefined ? [`redis: { url: "${redisUrl}" }`] : []),
    'auth: { secret: "bench-secret-0123456789abcdef0123456789" }'
  ].join('\n') + '\n'
  const sipd = await startSipd(yaml)
  try {
    const rate = ctx.quick ? 500 : 1000
    const calls = ctx.quick ? 5000 : 20000
    ctx.progress(`${label}: ${calls} registrations at ${rate}/s`)
    const c0 = cpuSeconds(sipd.pid)
    const t0 = performance.now()
    const r = await sipp([`127.0.0.1:${port}`, '-sf', SCENARIO, '-s', USER, '-au', USER, '-ap', 'p7', '-key', 'domain', DOMAIN, '-i', '127.0.0.61', '-m', String(calls), '-r', String(rate), '-nostdin', '-timeout', '120s', '-timeout_error', '-buff_size', '4194304'], 150000)
    const elapsed = (performance.now() - t0) / 1000
    const c1 = cpuSeconds(sipd.pid)
    const ok = Number(/Successful call\s*\|\s*\d+\s*\|\s*(\d+)/.exec(r.out)?.[1] ?? 0)
    const failed = Number(/Failed call\s*\|\s*\d+\s*\|\s*(\d+)/.exec(r.out)?.[1] ?? calls)
    return [
      { name: `${label}: registrations (401 + 200) at ${rate}/s offered`, unit: 'reg/s', median: ok / elapsed, samples: 1, successful: ok, failed },
      { name: `${label}: sipd CPU per 1,000 registrations`, unit: 'CPU s', median: (c1 - c0) / Math.max(1, ok) * 1000, samples: 1 },
      { name: `${label}: sipd resident memory after the run`, unit: 'MiB', median: rssBytes(sipd.pid) / 1048576, samples: 1 }
    ]
  } finally {
    await sipd.stop()
  }
}

/** Heap and RSS growth for `n` bindings shaped like a phone's, in this process. */
async function memoryPerBindings (n) {
  const store = new MemoryLocationStore({ sweepIntervalMs: 0 })
  globalThis.gc?.()
  const h0 = process.memoryUsage()
  const now = Date.now()
  for (let i = 0; i < n; i++) {
    await store.update(`sip:user${i}@${DOMAIN}`, {
      callId: `${i.toString(16)}-a84b4c76e66710@192.0.2.4`,
      cseq: 2,
      changes: [{
        contact: `sip:user${i}@10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:5060;transport=udp`,
        expires: 3600,
        received: { transport: 'udp', address: `198.51.${(i >> 8) & 255}.${i & 255}`, port: 5060 },
        node: 'sipd-node-1',
        flowToken: `udp/0/198.51.${(i >> 8) & 255}.${i & 255}/5060`,
        userAgent: 'Yealink SIP-T46S 66.86.0.15'
      }]
    }, now)
  }
  globalThis.gc?.()
  const h1 = process.memoryUsage()
  const count = await store.count(now)
  await store.close()
  return { heap: h1.heapUsed - h0.heapUsed, rss: h1.rss - h0.rss, count }
}

export async function run (ctx) {
  const rows = []
  rows.push(...await registerRun(ctx, 'memory store', undefined))
  const redis = await startRedis()
  try {
    rows.push(...await registerRun(ctx, 'Redis store', redis.url))
  } finally {
    await redis.stop()
  }
  ctx.progress('memory store: 100,000 bindings')
  const m = await memoryPerBindings(100_000)
  rows.push({ name: 'memory store: heap per 100,000 bindings (one per AOR)', unit: 'MiB', median: m.heap / 1048576, samples: 1, aors: m.count })
  rows.push({ name: 'memory store: RSS growth for 100,000 bindings', unit: 'MiB', median: m.rss / 1048576, samples: 1 })
  return {
    name: 'register',
    rows,
    notes: [
      `a registration is REGISTER → 401 → REGISTER with MD5 digest (qop=auth) → 200 over UDP at a fixed sipp rate; ${USERS} subscribers in the config file, one of them registering again and again (sipp 3.6 cannot take digest credentials from an injection file)`,
      'CPU seconds are sipd\'s own (utime + stime from /proc/PID/stat)',
      'bindings memory is measured in the bench process (gc before and after) with realistic contact, flow, node and User-Agent fields'
    ]
  }
}
