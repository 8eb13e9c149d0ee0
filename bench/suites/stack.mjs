// Stack suite: OPTIONS per second through sipd's transport, parser and
// transaction layer on loopback UDP, with sipd's own CPU seconds per 1,000
// transactions (utime + stime from /proc/PID/stat), two ways:
//   - OPTIONS to sipd itself: answered statelessly (the keep-alive path:
//     transport, parser, sanity stage, stateless 200 with Allow/Accept/Supported);
//   - OPTIONS to a user: a non-INVITE server transaction per request (branch
//     lookup, a new transaction, the routing module's 200, Timer J kept).
// Then sipp's built-in uac (INVITE/ACK/BYE) against sipd acting as UAS
// (test/fixtures/uas-element.mjs) at a fixed rate: sipd CPU s per 1,000 calls.
//
// The client keeps a fixed window of requests in flight, each with a new
// branch, and counts answers over a fixed duration; a request unanswered
// after a second is counted lost and its slot reused.
import dgram from 'node:dgram'
import { spawn } from 'node:child_process'
import path from 'node:path'
import { stats } from '../lib/sample.mjs'
import { cpuSeconds, rssBytes } from '../lib/machine.mjs'
import { REPO_ROOT, freePort, startSipd } from '../lib/sipd.mjs'

export const timeLimit = { full: 300, quick: 120 }

const WINDOW = 200
const LOST_AFTER_MS = 1000
const CLIENT = '127.0.0.41'
const SIPP_CLIENT = '127.0.0.42'
const ELEMENT = path.join(REPO_ROOT, 'test', 'fixtures', 'uas-element.mjs')
const BRANCH = 'branch=z9hG4bK-bench-'

/** Sends OPTIONS to `uri` with WINDOW in flight for `seconds`; answered count, lost count and elapsed seconds. */
async function optionsRun (port, uri, seconds) {
  const sock = dgram.createSocket('udp4')
  sock.on('error', () => {})
  await new Promise(resolve => sock.bind(0, CLIENT, resolve))
  sock.setRecvBufferSize(4 << 20)
  sock.setSendBufferSize(4 << 20)
  const local = sock.address().port
  const runId = `${process.pid}-${Date.now()}`
  const pending = new Map() // request number → send time
  let n = 0
  let answered = 0
  let lost = 0
  let stopped = false
  const send = () => {
    while (!stopped && pending.size < WINDOW) {
      n++
      pending.set(n, performance.now())
      sock.send(
        `OPTIONS ${uri} SIP/2.0\r\n` +
        `Via: SIP/2.0/UDP ${CLIENT}:${local};${BRANCH}${n}\r\n` +
        'From: <sip:bench@example.com>;tag=b\r\n' +
        `To: <${uri}>\r\n` +
        `Call-ID: bench-${runId}-${n}@test\r\n` +
        `CSeq: ${n} OPTIONS\r\n` +
        'Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n', port, '127.0.0.1')
    }
  }
  sock.on('message', msg => {
    // The number after our branch prefix names the request answered.
    const at = msg.indexOf(BRANCH)
    if (at < 0) return
    let k = 0
    for (let i = at + BRANCH.length; i < msg.length && msg[i] >= 0x30 && msg[i] <= 0x39; i++) k = k * 10 + msg[i] - 0x30
    // A final answer only (a 100 would be provisional; sipd sends none to OPTIONS).
    if (msg[8] === 0x31 || !pending.delete(k)) return
    answered++
    send()
  })
  const reap = setInterval(() => {
    const old = performance.now() - LOST_AFTER_MS
    for (const [k, t0] of pending) if (t0 < old) { pending.delete(k); lost++ }
    send()
  }, 100)
  const t0 = performance.now()
  send()
  await new Promise(resolve => setTimeout(resolve, seconds * 1000))
  stopped = true
  const elapsed = (performance.now() - t0) / 1000
  clearInterval(reap)
  sock.close()
  return { answered, lost, elapsed }
}

function sipp (args, timeoutMs) {
  return new Promise(resolve => {
    const child = spawn('sipp', args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', d => { out += d })
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('exit', code => { clearTimeout(t); resolve({ code, out }) })
  })
}

/** sipd's heap in use and its live non-INVITE server transactions, from /metrics. */
async function heapAndTransactions (sipd) {
  const text = await (await fetch(`${sipd.http}/metrics`)).text()
  const value = prefix => Number(text.split('\n').find(l => l.startsWith(prefix))?.slice(prefix.length) ?? NaN)
  return { heap: value('sipd_process_nodejs_heap_size_used_bytes '), transactions: value('sipd_transactions_active{kind="server-non-invite"} ') }
}

async function withSipd (fn) {
  const port = await freePort()
  const http = await freePort()
  const sipd = await startSipd(`listen: ["udp:127.0.0.1:${port}"]\nhttp: "127.0.0.1:${http}"\nrouting: ${JSON.stringify(ELEMENT)}\n`)
  try {
    return await fn(sipd, port)
  } finally {
    await sipd.stop()
  }
}

/** Warm-up, then `runs` measured runs of OPTIONS to `uri`: msgs/s and CPU rows. */
async function optionsRows (ctx, sipd, port, uri, label) {
  const runs = ctx.quick ? 3 : 5
  const seconds = ctx.quick ? 2 : 4
  ctx.progress(`${label}: warm-up`)
  await optionsRun(port, uri, 1)
  const rates = []
  const cpus = []
  let lost = 0
  for (let r = 0; r < runs; r++) {
    ctx.progress(`${label}: run ${r + 1}/${runs}`)
    const c0 = cpuSeconds(sipd.pid)
    const res = await optionsRun(port, uri, seconds)
    const c1 = cpuSeconds(sipd.pid)
    rates.push(res.answered / res.elapsed)
    cpus.push((c1 - c0) / res.answered * 1000)
    lost += res.lost
  }
  const rs = stats(rates)
  const cs = stats(cpus)
  return [
    { name: `${label} (UDP, ${WINDOW} in flight)`, unit: 'msgs/s', median: rs.median, spread: rs, samples: rs.samples, lost },
    { name: `sipd CPU per 1,000 ${label}`, unit: 'CPU s', median: cs.median, spread: cs, samples: cs.samples }
  ]
}

export async function run (ctx) {
  const rows = []
  // Calls first, on a fresh sipd, so that no other run's garbage is counted.
  await withSipd(async (sipd, port) => {
    const rate = ctx.quick ? 100 : 300
    const calls = ctx.quick ? 1000 : 6000
    ctx.progress(`sipp: ${calls} calls at ${rate} cps`)
    const c0 = cpuSeconds(sipd.pid)
    const r = await sipp([`127.0.0.1:${port}`, '-sn', 'uac', '-i', SIPP_CLIENT, '-m', String(calls), '-r', String(rate), '-nostdin', '-timeout', '120s', '-timeout_error', '-buff_size', '4194304'], 150000)
    const c1 = cpuSeconds(sipd.pid)
    const ok = /Successful call\s*\|\s*\d+\s*\|\s*(\d+)/.exec(r.out)?.[1]
    const failed = /Failed call\s*\|\s*\d+\s*\|\s*(\d+)/.exec(r.out)?.[1]
    rows.push({ name: `sipp uac → sipd as UAS, ${rate} cps`, unit: 'CPU s / 1,000 calls', median: (c1 - c0) / calls * 1000, samples: 1, successful: Number(ok ?? 0), failed: Number(failed ?? calls), sippExit: r.code })
    rows.push({ name: 'sipd resident memory after the calls', unit: 'MiB', median: rssBytes(sipd.pid) / 1048576, samples: 1 })
  })
  await withSipd(async (sipd, port) => {
    rows.push(...await optionsRows(ctx, sipd, port, `sip:127.0.0.1:${port}`, 'OPTIONS to sipd, stateless 200'))
    rows.push({ name: 'sipd resident memory after the stateless OPTIONS runs', unit: 'MiB', median: rssBytes(sipd.pid) / 1048576, samples: 1 })
  })
  await withSipd(async (sipd, port) => {
    const before = await heapAndTransactions(sipd)
    rows.push(...await optionsRows(ctx, sipd, port, `sip:bench@127.0.0.1:${port}`, 'OPTIONS to a user, server transaction + 200'))
    const after = await heapAndTransactions(sipd)
    rows.push({ name: 'sipd resident memory after the transaction OPTIONS runs', unit: 'MiB', median: rssBytes(sipd.pid) / 1048576, samples: 1 })
    // Timer J keeps each completed transaction for 64*T1 = 32 s (RFC 3261 §17.2.2), all of them here.
    rows.push({ name: 'sipd heap per live non-INVITE server transaction (no forced GC: an upper bound)', unit: 'KiB', median: (after.heap - before.heap) / (after.transactions - before.transactions) / 1024, samples: 1, transactions: after.transactions })
  })
  return {
    name: 'stack',
    rows,
    notes: [
      'CPU seconds are sipd\'s own (utime + stime from /proc/PID/stat), so the load generator\'s CPU does not count; client and sipd share the cores',
      'OPTIONS to sipd is answered statelessly (no transaction, RFC 3261 §8.2.7); OPTIONS to a user goes through a non-INVITE server transaction and the routing module (test/fixtures/uas-element.mjs)',
      `each OPTIONS has a new branch and Call-ID; ${WINDOW} in flight; one unanswered after ${LOST_AFTER_MS} ms is counted lost`,
      'a call is INVITE, 100, 200, ACK, BYE, 200 with sipd answering as UAS through INVITE and non-INVITE server transactions'
    ]
  }
}
