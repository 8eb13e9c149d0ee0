#!/usr/bin/env node
// Per-call cost at one fixed call rate, several servers side by side (issue 6):
// sipp trunk → server → sipp media node (bench/sipp/uac-call.xml, uas-call.xml:
// INVITE, 100, 180, 200, ACK, BYE, 200), every server started at once on its own
// loopback address, one shared media node; rounds alternate between the servers
// (the order rotates) so that the box's other load falls on all of them alike.
// Per round and server: CPU s per 1,000 calls (utime + stime from /proc, precise
// scheduler time: the user/system split alone is tick-sampled), split into the
// main thread and the other threads (V8's GC and compiler workers, libuv's
// pool); sleeps (voluntary context switches) and preemptions per call; with
// --syscalls, syscalls and scheduler events per call counted by `perf stat`
// tracepoints. Prints per-round lines, medians and each server's median ratio
// to the first server's figure of the same round.
//
//   node bench/percall.mjs [--rate 300] [--secs 8] [--rounds 5] [--warm 6] [--idle 0] [--syscalls] [--net 127.0.8] SERVER…
//   SERVER: NAME=CLI.js[|node-flag,node-flag][@ENV=V;ENV=V]   a sipd build (node CLI.js --config …)
//           kamailio                                          bench/kamailio/kamailio.cfg, 2 children
//
// e.g. an old build against the new one and Kamailio:
//   node bench/percall.mjs old=/path/to/old/packages/proxy/dist/cli.js new=packages/proxy/dist/cli.js kamailio
// --idle N first measures each server idle for N s after the warm-up (CPU and wake-ups per second).
// --register auth|noauth loads REGISTERs instead of calls (as the e2e register and
// register-noauth profiles: bench/sipp/register-auth.xml, register-noauth.xml, one
// AOR, memory store) and counts CPU s per 1,000 REGISTERs.
// Not a suite of `npm run bench`: nothing is written to bench/results.
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { REPO_ROOT, freePort } from './lib/sipd.mjs'
import { runSipp, startSipp } from './lib/sipp.mjs'
import { ensureKamailio, startKamailio } from './lib/kamailio.mjs'

const opt = { rate: 300, secs: 8, rounds: 5, warm: 6, idle: 0, syscalls: false, register: '', net: '127.0.8' }
const specs = []
const argv = process.argv.slice(2)
for (let i = 0; i < argv.length; i++) {
  const a = argv[i]
  if (a === '--syscalls') opt.syscalls = true
  else if (a === '--register') opt.register = argv[++i]
  else if (a === '--net') opt.net = argv[++i]
  else if (a.startsWith('--') && a.slice(2) in opt) opt[a.slice(2)] = Number(argv[++i])
  else if (a.startsWith('--')) { process.stderr.write(`percall: unknown option ${a}\n`); process.exit(2) }
  else specs.push(a)
}
if (!/^127\.\d{1,3}\.\d{1,3}$/.test(opt.net)) { process.stderr.write('percall: --net takes the first three numbers of a loopback address, e.g. 127.0.18\n'); process.exit(2) }
if (opt.register !== '' && opt.register !== 'auth' && opt.register !== 'noauth') { process.stderr.write('percall: --register takes auth or noauth\n'); process.exit(2) }
const UNIT = opt.register !== '' ? 'REGISTERs' : 'calls'
if (specs.length === 0 || ![opt.rate, opt.secs, opt.rounds, opt.warm, opt.idle].every(x => Number.isFinite(x) && x >= 0)) {
  process.stderr.write('usage: node bench/percall.mjs [--rate N] [--secs N] [--rounds N] [--warm N] [--idle N] [--syscalls] [--register auth|noauth] [--net 127.0.8] NAME=CLI.js[|flags][@ENV=V;…] | kamailio …\n')
  process.exit(2)
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))
const median = xs => { const s = [...xs].sort((a, b) => a - b); const n = s.length; return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2 }
const dir = mkdtempSync(path.join(os.tmpdir(), 'sipd-percall-'))
const SIPP = path.join(REPO_ROOT, 'bench', 'sipp')
// Own loopback addresses (bench/suites/e2e.mjs uses 127.0.6.x).
// --net moves them (and the servers, NET.1, NET.2, …) so that two runs can share a box.
const MEDIA = `${opt.net}.100`
const TRUNK = `${opt.net}.200`
const PHONE = `${opt.net}.201`
const DOMAIN = 'bench.test'
const SYSCALLS = ['epoll_pwait', 'epoll_wait', 'recvmsg', 'recvfrom', 'sendmsg', 'sendto', 'futex', 'read', 'write', 'mmap', 'munmap', 'madvise', 'mprotect']

/** CPU seconds, sleeps and preemptions of each thread of `pid`: main thread apart, the others summed. */
function threads (pid) {
  const out = { main: { cpu: 0, sleeps: 0, preempted: 0 }, other: { cpu: 0, sleeps: 0, preempted: 0 } }
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8')
      const g = out[Number(tid) === pid ? 'main' : 'other']
      g.cpu += (Number(f[11]) + Number(f[12])) / 100
      g.sleeps += Number(/\nvoluntary_ctxt_switches:\s+(\d+)/.exec(status)[1])
      g.preempted += Number(/\nnonvoluntary_ctxt_switches:\s+(\d+)/.exec(status)[1])
    } catch { /* thread ended meanwhile */ }
  }
  return out
}

/** A server's counters now: Kamailio's processes all count as "main" (each is single-threaded). */
function snapshot (srv) {
  const total = { main: { cpu: 0, sleeps: 0, preempted: 0 }, other: { cpu: 0, sleeps: 0, preempted: 0 } }
  for (const pid of srv.pids()) {
    let t
    try { t = threads(pid) } catch { continue }
    for (const g of ['main', 'other']) for (const k of ['cpu', 'sleeps', 'preempted']) total[srv.kamailio ? 'main' : g][k] += t[g][k]
  }
  return total
}
function minus (b, a) {
  const d = {}
  for (const g of ['main', 'other']) d[g] = { cpu: b[g].cpu - a[g].cpu, sleeps: b[g].sleeps - a[g].sleeps, preempted: b[g].preempted - a[g].preempted }
  return d
}

async function startSipdBuild (name, cli, flags, env, address) {
  const http = await freePort()
  const file = path.join(dir, `${name}.yaml`)
  writeFileSync(file, [
    `listen: ["udp:${address}:5060"]`, `http: "127.0.0.1:${http}"`, 'log_level: warn', 'node_id: percall',
    // REGISTER loads: the e2e register profiles' registrar (one subscriber, fixed nonce secret).
    ...(opt.register === '' ? [] : [`domains: [${DOMAIN}]`, 'subscribers:', '  users:', `    - { user: u7, domain: ${DOMAIN}, password: p7 }`, 'auth: { secret: "bench-secret-0123456789abcdef0123456789" }']),
    ...(opt.register === 'noauth' ? [`registrar: { auth_exempt: ["${PHONE}/32"] }`] : []),
    `trusted: ["${TRUNK}/32"]`, 'media:', '  probe: { interval_ms: 3600000 }', '  sets:',
    `    - { id: 1, algorithm: round-robin, nodes: [{ uri: "sip:${MEDIA}:5060" }] }`].join('\n') + '\n')
  const child = spawn(process.execPath, [...flags, path.resolve(cli), '--config', file], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] })
  const exited = new Promise(resolve => child.once('exit', resolve))
  const deadline = Date.now() + 15000
  for (;;) {
    try { if ((await fetch(`http://127.0.0.1:${http}/healthz`)).status === 200) break } catch {}
    if (Date.now() > deadline || child.exitCode !== null) { child.kill('SIGKILL'); throw new Error(`${name}: sipd did not start`) }
    await sleep(50)
  }
  return {
    name,
    address,
    pids: () => [child.pid],
    async stop () {
      if (child.exitCode === null) child.kill('SIGTERM')
      const t = setTimeout(() => { if (child.exitCode === null) child.kill('SIGKILL') }, 5000)
      await exited
      clearTimeout(t)
    }
  }
}

let seq = 0
/** `rate` calls/s for `secs` s from the trunk to `srv` (or REGISTERs from a phone); resolves with the calls that succeeded. */
async function load (srv, rate, secs) {
  const n = Math.max(1, Math.round(rate * secs))
  if (opt.register !== '') {
    const r = await runSipp([`${srv.address}:5060`, '-sf', path.join(SIPP, `register-${opt.register}.xml`), '-s', 'u7', '-au', 'u7', '-ap', 'p7', '-key', 'domain', DOMAIN,
      '-i', PHONE, '-p', '5060', '-m', String(n), '-r', String(rate), '-l', String(rate * 3 + 1000), '-timeout', `${secs + 10}s`, '-timeout_error'],
    { statFile: path.join(dir, `reg-${seq++}.csv`), timeoutMs: (secs + 15) * 1000 })
    return { offered: n, ok: r.stats?.SuccessfulCall ?? 0 }
  }
  const r = await runSipp([`${srv.address}:5060`, '-sf', path.join(SIPP, 'uac-call.xml'), '-aa', '-s', '5551000', '-i', TRUNK, '-p', '5060',
    '-m', String(n), '-r', String(rate), '-d', '0', '-l', String(rate * 3 + 1000), '-timeout', `${secs + 10}s`, '-timeout_error'],
  { statFile: path.join(dir, `uac-${seq++}.csv`), timeoutMs: (secs + 15) * 1000 })
  return { offered: n, ok: r.stats?.SuccessfulCall ?? 0 }
}

/** `perf stat` of the listed syscalls and scheduler events on `srv`'s processes until stop(); per-call counts. */
function countSyscalls (srv) {
  const file = path.join(dir, `perf-${seq}.txt`)
  const events = [...SYSCALLS.map(s => `syscalls:sys_enter_${s}`), 'sched:sched_switch', 'sched:sched_wakeup']
  const child = spawn('perf', ['stat', '-x', ',', '-o', file, '-e', events.join(','), '-p', srv.pids().join(',')], { stdio: 'ignore' })
  const exited = new Promise(resolve => { child.once('exit', resolve); child.once('error', resolve) })
  return {
    async stop (calls) {
      child.kill('SIGINT')
      await exited
      let text = ''
      try { text = readFileSync(file, 'utf8') } catch { return 'perf stat gave nothing (is perf installed, kernel.perf_event_paranoid <= 1 or root?)' }
      return text.split('\n').filter(l => /^\d/.test(l)).map(l => l.split(',')).filter(f => Number(f[0]) > 0)
        .map(f => `${f[2].replace(/^(syscalls:sys_enter_|sched:sched_)/, '')} ${(Number(f[0]) / calls).toFixed(2)}`).join(', ')
    }
  }
}

const servers = []
let uas
try {
  uas = await startSipp(['-sf', path.join(SIPP, 'uas-call.xml'), '-aa', '-i', MEDIA, '-p', '5060'], { statFile: path.join(dir, 'uas.csv') })
  let host = 1
  for (const spec of specs) {
    const address = `${opt.net}.${host++}`
    if (spec === 'kamailio') {
      ensureKamailio()
      const k = await startKamailio({ host: address, port: 5060, media: [`sip:${MEDIA}:5060`], auth: opt.register === 'auth' })
      servers.push({ ...k, name: 'kamailio', kamailio: true, address })
      continue
    }
    const [head, envPart = ''] = spec.split('@')
    const [nameCli, flagPart] = head.split('|')
    const eq = nameCli.indexOf('=')
    if (eq <= 0) throw new Error(`server ${JSON.stringify(spec)}: expected NAME=CLI.js[|flags][@ENV=V;…] or kamailio`)
    const flags = flagPart ? flagPart.split(',') : []
    const env = Object.fromEntries(envPart.split(';').filter(Boolean).map(kv => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]))
    servers.push(await startSipdBuild(nameCli.slice(0, eq), nameCli.slice(eq + 1), flags, env, address))
  }
  const [l1] = os.loadavg()
  console.log(`percall: ${opt.rate} ${UNIT}/s, ${opt.rounds} rounds of ${opt.secs} s, warm-up ${opt.warm} s; ${os.cpus().length} cores, load average ${l1.toFixed(2)}`)
  for (const srv of servers) { await load(srv, opt.rate, opt.warm); await sleep(1500) }
  if (opt.idle > 0) {
    const a = servers.map(snapshot)
    await sleep(opt.idle * 1000)
    servers.forEach((srv, i) => {
      const d = minus(snapshot(srv), a[i])
      console.log(`idle ${srv.name}: ${((d.main.cpu + d.other.cpu) / opt.idle * 1000).toFixed(1)} ms CPU/s, main-thread wake-ups ${(d.main.sleeps / opt.idle).toFixed(1)}/s`)
    })
  }
  const results = Object.fromEntries(servers.map(s => [s.name, []]))
  for (let r = 0; r < opt.rounds; r++) {
    for (let i = 0; i < servers.length; i++) {
      const srv = servers[(i + r) % servers.length]
      const perf = opt.syscalls ? countSyscalls(srv) : undefined
      if (perf) await sleep(300)
      const a = snapshot(srv)
      const l = await load(srv, opt.rate, opt.secs)
      await sleep(1000)
      const d = minus(snapshot(srv), a)
      const sc = perf ? await perf.stop(Math.max(1, l.ok)) : undefined
      const per = x => (x / Math.max(1, l.ok) * 1000)
      const row = { cpu: per(d.main.cpu + d.other.cpu), main: per(d.main.cpu), other: per(d.other.cpu), sleeps: d.main.sleeps / Math.max(1, l.ok), preempted: (d.main.preempted + d.other.preempted) / Math.max(1, l.ok), ok: l.ok, offered: l.offered }
      results[srv.name][r] = row
      console.log(`round ${r + 1} ${srv.name}: ${row.cpu.toFixed(3)} CPU s/1,000 ${UNIT} (main ${row.main.toFixed(3)}, other threads ${row.other.toFixed(3)}), ` +
        `main-thread sleeps ${row.sleeps.toFixed(2)}/${UNIT.slice(0, -1)}, preempted ${row.preempted.toFixed(2)}/${UNIT.slice(0, -1)}, ${l.ok}/${l.offered} ${UNIT} ok, load ${os.loadavg()[0].toFixed(2)}` +
        (sc !== undefined ? `\n  per call: ${sc}` : ''))
    }
  }
  const first = servers[0].name
  for (const srv of servers) {
    const rows = results[srv.name].filter(x => x.ok === x.offered)
    const ratio = srv.name === first ? '' : `, ÷ ${first} (paired by round) ${median(results[srv.name].map((x, i) => x.cpu / results[first][i].cpu)).toFixed(3)}`
    console.log(`median ${srv.name}: ${median(rows.map(x => x.cpu)).toFixed(3)} CPU s/1,000 ${UNIT} (${rows.length} clean rounds; main ${median(rows.map(x => x.main)).toFixed(3)}, other threads ${median(rows.map(x => x.other)).toFixed(3)}), sleeps ${median(rows.map(x => x.sleeps)).toFixed(2)}/${UNIT.slice(0, -1)}${ratio}`)
  }
} finally {
  for (const s of servers) await s.stop().catch(() => {})
  await uas?.stop()
  rmSync(dir, { recursive: true, force: true })
}
