// Stack suite: OPTIONS transactions per second through sipd's transport,
// parser and transaction layer on loopback (sipd answers OPTIONS to itself),
// and sipd's CPU seconds per 1,000 transactions from /proc; then sipp calls
// (INVITE/ACK/BYE) against sipd acting as UAS at a fixed rate, with sipd's
// CPU seconds per 1,000 calls.
import dgram from 'node:dgram'
import { spawn } from 'node:child_process'
import path from 'node:path'
import { stats } from '../lib/sample.mjs'
import { cpuSeconds, rssBytes } from '../lib/machine.mjs'
import { REPO_ROOT, freePort, startSipd } from '../lib/sipd.mjs'

const WINDOW = 200

async function optionsRun (port, seconds) {
  const sock = dgram.createSocket('udp4')
  sock.on('error', () => {})
  await new Promise(resolve => sock.bind(0, '127.0.0.41', resolve))
  sock.setRecvBufferSize(4 << 20)
  sock.setSendBufferSize(4 << 20)
  const local = sock.address().port
  let sent = 0
  let answered = 0
  let inflight = 0
  const head = `OPTIONS sip:127.0.0.1:${port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.41:${local};branch=z9hG4bK-bench-`
  const tail = `\r\nFrom: <sip:bench@example.com>;tag=b\r\nTo: <sip:127.0.0.1:${port}>\r\nCall-ID: bench-${process.pid}@test\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n`
  const send = () => {
    while (inflight < WINDOW) {
      sent++
      inflight++
      sock.send(`${head}${sent}${tail.replace('Max-Forwards', `CSeq: ${sent} OPTIONS\r\nMax-Forwards`)}`, port, '127.0.0.1')
    }
  }
  sock.on('message', () => { answered++; inflight--; if (!stopped) send() })
  let stopped = false
  const t0 = performance.now()
  send()
  // Lost datagrams would shrink the window: top it up every 100 ms.
  const refill = setInterval(() => { inflight = Math.min(inflight, WINDOW - 1); send() }, 100)
  await new Promise(resolve => setTimeout(resolve, seconds * 1000))
  stopped = true
  clearInterval(refill)
  const elapsed = (performance.now() - t0) / 1000
  sock.close()
  return { answered, elapsed }
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

async function withSipd (fn) {
  const port = await freePort()
  const http = await freePort()
  const sipd = await startSipd(`listen: ["udp:127.0.0.1:${port}"]\nhttp: "127.0.0.1:${http}"\nrouting: ${JSON.stringify(path.join(REPO_ROOT, 'test', 'fixtures', 'uas-element.mjs'))}\n`)
  try {
    return await fn(sipd, port)
  } finally {
    await sipd.stop()
  }
}

export async function run (ctx) {
  const rows = []
  // Calls first, on a fresh sipd, so that nothing else's garbage is counted.
  await withSipd(async (sipd, port) => {
    const rate = ctx.quick ? 100 : 300
    const calls = ctx.quick ? 1000 : 6000
    ctx.progress(`sipp: ${calls} calls at ${rate} cps`)
    const c0 = cpuSeconds(sipd.pid)
    const r = await sipp([`127.0.0.1:${port}`, '-sn', 'uac', '-i', '127.0.0.42', '-m', String(calls), '-r', String(rate), '-nostdin', '-timeout', '120s', '-timeout_error', '-buff_size', '4194304'], 150000)
    const c1 = cpuSeconds(sipd.pid)
    const ok = /Successful call\s*\|\s*\d+\s*\|\s*(\d+)/.exec(r.out)?.[1]
    const failed = /Failed call\s*\|\s*\d+\s*\|\s*(\d+)/.exec(r.out)?.[1]
    rows.push({ case: `sipp uac → sipd as UAS, ${rate} cps`, unit: 'CPU s / 1,000 calls', median: (c1 - c0) / calls * 1000, samples: 1, successful: Number(ok ?? 0), failed: Number(failed ?? calls) })
    rows.push({ case: 'sipd resident memory after the calls', unit: 'MiB', median: rssBytes(sipd.pid) / 1048576, samples: 1 })
  })
  await withSipd(async (sipd, port) => {
    const runs = ctx.quick ? 3 : 5
    const seconds = ctx.quick ? 2 : 4
    const rates = []
    const cpus = []
    ctx.progress('warm-up')
    await optionsRun(port, 1)
    for (let r = 0; r < runs; r++) {
      ctx.progress(`OPTIONS run ${r + 1}/${runs}`)
      const c0 = cpuSeconds(sipd.pid)
      const { answered, elapsed } = await optionsRun(port, seconds)
      const c1 = cpuSeconds(sipd.pid)
      rates.push(answered / elapsed)
      cpus.push((c1 - c0) / answered * 1000)
    }
    const rs = stats(rates)
    const cs = stats(cpus)
    rows.push({ case: 'OPTIONS to sipd (UDP, 200 in flight, stateless 200)', unit: 'msgs/s', median: rs.median, spread: rs, samples: rs.samples })
    rows.push({ case: 'sipd CPU per 1,000 OPTIONS', unit: 'CPU s', median: cs.median, spread: cs, samples: cs.samples })
    rows.push({ case: 'sipd resident memory after the OPTIONS runs', unit: 'MiB', median: rssBytes(sipd.pid) / 1048576, samples: 1 })
  })
  return { name: 'stack', rows, notes: ['CPU seconds are sipd\'s own (utime + stime from /proc/PID/stat), so the load generator\'s CPU does not count', 'a call is INVITE, 100, 200, ACK, BYE, 200 with sipd answering as UAS through INVITE and non-INVITE server transactions (test/fixtures/uas-element.mjs)'] }
}
