// Route suite: sipd's proxy hot path in process, no sockets — bytes in,
// parse, transaction layer, default policy (trusted source → media set,
// in-dialog by Route), splice-forward, bytes out (input messages formatted
// before each timed batch, see measure) — for a trunk INVITE
// answered 200 by the media node, an in-dialog BYE answered 200, and the
// stateless ACK; then sipp end to end: trunk uac → sipd → media node uas with
// Record-Route, sipd's CPU seconds per 1,000 calls.
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { parseMessage, validateResponse } from '@sipd/sip-parser'
import { FakeClock, TransactionLayer } from '@sipd/sip-stack'
import { buildConfig, checkRequest, createLogger, DefaultRouting, ProxyCore } from '@sipd/proxy'
import { stats } from '../lib/sample.mjs'
import { cpuSeconds, rssBytes } from '../lib/machine.mjs'
import { REPO_ROOT, freePort, startSipd } from '../lib/sipd.mjs'

export const timeLimit = { full: 300, quick: 150 }

const LOCAL = { address: '127.0.0.1', port: 5060 }
const TRUNK = { transport: 'udp', address: '127.0.0.2', port: 5060, local: LOCAL, flowId: 'udp/0/127.0.0.2/5060' }
const NODE = { transport: 'udp', address: '127.0.0.3', port: 5080, local: LOCAL, flowId: 'udp/0/127.0.0.3/5080' }
const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n'

function invite (i) {
  return Buffer.from(`INVITE sip:5551000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bK-i${i}\r\nMax-Forwards: 70\r\nFrom: <sip:trunk@127.0.0.2>;tag=f${i}\r\nTo: <sip:5551000@127.0.0.1>\r\nCall-ID: c${i}@127.0.0.2\r\nCSeq: 1 INVITE\r\nContact: <sip:trunk@127.0.0.2:5060>\r\nContent-Type: application/sdp\r\nContent-Length: ${SDP.length}\r\n\r\n${SDP}`, 'latin1')
}

function bye (i) {
  return Buffer.from(`BYE sip:node@127.0.0.3:5080 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bK-b${i}\r\nRoute: <sip:127.0.0.1:5060;transport=udp;lr>\r\nMax-Forwards: 70\r\nFrom: <sip:trunk@127.0.0.2>;tag=f${i}\r\nTo: <sip:5551000@127.0.0.1>;tag=t${i}\r\nCall-ID: c${i}@127.0.0.2\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n`, 'latin1')
}

function ack (i) {
  return Buffer.from(`ACK sip:node@127.0.0.3:5080 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bK-a${i}\r\nRoute: <sip:127.0.0.1:5060;transport=udp;lr>\r\nMax-Forwards: 70\r\nFrom: <sip:trunk@127.0.0.2>;tag=f${i}\r\nTo: <sip:5551000@127.0.0.1>;tag=t${i}\r\nCall-ID: c${i}@127.0.0.2\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n`, 'latin1')
}

/** The media node's 200 for the forwarded request `fwd` (bytes sipd sent), built by scanning, as a node would copy the Vias. */
function okFor (fwd, method, i) {
  const s = fwd.toString('latin1')
  const v = s.indexOf('branch=') + 7
  let e = v
  while (e < s.length && s.charCodeAt(e) !== 0x3b && s.charCodeAt(e) !== 0x0d) e++
  const branch = s.slice(v, e)
  const cseq = method === 'INVITE' ? '1 INVITE' : '2 BYE'
  const trunkBranch = method === 'INVITE' ? `z9hG4bK-i${i}` : `z9hG4bK-b${i}`
  return Buffer.from(`SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=${branch};rport=5060;received=127.0.0.1\r\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=${trunkBranch}\r\nRecord-Route: <sip:127.0.0.1:5060;transport=udp;lr>\r\nFrom: <sip:trunk@127.0.0.2>;tag=f${i}\r\nTo: <sip:5551000@127.0.0.1>;tag=t${i}\r\nCall-ID: c${i}@127.0.0.2\r\nCSeq: ${cseq}\r\nContact: <sip:node@127.0.0.3:5080>\r\nContent-Length: 0\r\n\r\n`, 'latin1')
}

/** sipd's proxy pieces wired as in the server, with a send that keeps the last bytes instead of a socket. */
function harness () {
  const clock = new FakeClock()
  const out = { count: 0, bytes: 0, last: undefined }
  const ok = { ok: true, flowId: 'x', local: LOCAL }
  const send = (bytes) => { out.count++; out.bytes += bytes.length; out.last = bytes; return ok }
  const holder = {}
  const tl = new TransactionLayer({
    send,
    onRequest: tx => { holder.policy.route(tx) },
    onStrayAck: (a, s) => { holder.core.forwardStateless(a, s) },
    onStrayResponse: r => { holder.core.relayStray(r) },
    clock,
    // As the server builds its layer (packages/proxy/src/server.ts): a proxy
    // tells loops from spirals by the §16.3 branch hash, not §8.2.2.2.
    detectMergedRequests: false
  })
  const listeners = [{ transport: 'udp', address: '127.0.0.1', port: 5060, family: 4 }]
  holder.core = new ProxyCore({ transactions: tl, listeners: () => listeners, sendResponse: send })
  const config = buildConfig({
    trusted: ['127.0.0.2/32'],
    media: { sets: [{ id: 1, algorithm: 'round-robin', nodes: [{ uri: 'sip:127.0.0.3:5080' }, { uri: 'sip:127.0.0.4:5080' }] }] }
  })
  holder.policy = new DefaultRouting({ config, core: holder.core, transactions: tl, logger: createLogger('silent'), servedHosts: new Set(['127.0.0.1']), probe: false })
  return { tl, clock, out, policy: holder.policy, deliver: (msg, source) => { deliver(tl, msg, source) } }
}

/**
 * A parsed message into the proxy as the server's message handler hands it
 * on (packages/proxy/src/server.ts): a response after validateResponse, a
 * request after the sanity checks (checkRequest: RFC 3261 §8.2, §16.3). Not
 * here: its metrics counters and its CR/LF check of copied From/To of responses.
 */
function deliver (tl, msg, source) {
  if (!msg.isRequest) {
    if (validateResponse(msg) === undefined) tl.receive(msg, source)
    return
  }
  if (checkRequest(msg, false) === undefined) tl.receive(msg, source)
}

/**
 * The dispatcher counts a call from its INVITE to its BYE; the INVITE rows
 * send no BYE, so the call is ended there as the BYE would: otherwise up to
 * a million calls pile up in the dispatcher and the rows measure the garbage
 * collector walking them (the heap grew ~10 MB per 20,000 calls).
 */
function endCall (h, i) {
  h.policy.dispatcher.callEnded(`c${i}@127.0.0.2`)
}

/** CPU seconds (user + system) this process has used. */
function cpuNow () {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e6
}

/** Steps per batch: one batch's inputs are built, then handed to sipd's pieces. */
const BATCH = 200

/**
 * Runs a workload's phases batch by batch until `ms` of wall time passed;
 * returns steps per second of this process's CPU time (user + system)
 * spent in the phases' `run` alone, sample by sample. A phase's `build`
 * makes the batch's input messages first, untimed: formatting them from
 * templates is the benchmark's work, not the proxy's (a socket hands sipd a
 * Buffer per datagram; that allocation, and the system calls, are not
 * measured here). The garbage the builds leave is collected, in part,
 * during the timed runs.
 */
function measure (w, { samples, sampleMs }) {
  const rates = []
  const inputs = new Array(BATCH)
  let i = 0
  for (let s = 0; s < samples; s++) {
    const t0 = performance.now()
    let cpu = 0
    let n = 0
    while (performance.now() - t0 < sampleMs) {
      for (const phase of w.phases) {
        for (let k = 0; k < BATCH; k++) inputs[k] = phase.build(i + k, k)
        const c0 = cpuNow()
        for (let k = 0; k < BATCH; k++) phase.run(inputs[k], i + k, k)
        cpu += cpuNow() - c0
      }
      i += BATCH
      n += BATCH
    }
    inputs.fill(undefined)
    rates.push(n / cpu)
    // Let the transactions end (Timers K, J, M, L at 64·T1 on the fake clock) so memory stays flat.
    w.h.clock.advance(40_000)
  }
  return rates
}

/**
 * The in-process workloads in phases (see measure): a trunk INVITE and the
 * media node's 200 for it; an in-dialog BYE and its 200; an ACK. The 200s
 * are built from the bytes sipd forwarded (its branch), between the phases.
 */
export function phasedWorkloads () {
  const inv = harness()
  const byeH = harness()
  const ackH = harness()
  const fwdInvite = new Array(BATCH)
  const fwdBye = new Array(BATCH)
  return {
    invite: {
      h: inv,
      phases: [
        { build: (i) => invite(i), run: (m, i, k) => { inv.deliver(parseMessage(m), TRUNK); fwdInvite[k] = inv.out.last } },
        { build: (i, k) => okFor(fwdInvite[k], 'INVITE', i), run: (m, i) => { inv.deliver(parseMessage(m), NODE); endCall(inv, i) } }
      ]
    },
    bye: {
      h: byeH,
      phases: [
        { build: (i) => bye(i), run: (m, i, k) => { byeH.deliver(parseMessage(m), TRUNK); fwdBye[k] = byeH.out.last } },
        { build: (i, k) => okFor(fwdBye[k], 'BYE', i), run: (m) => { byeH.deliver(parseMessage(m), NODE) } }
      ]
    },
    ack: {
      h: ackH,
      phases: [{ build: (i) => ack(i), run: (m) => { ackH.deliver(parseMessage(m), TRUNK) } }]
    }
  }
}

export const profileTargets = {
  invite: 'trunk INVITE → media node and its 200, in process',
  bye: 'in-dialog BYE by Route and its 200, in process',
  ack: 'stateless ACK by Route, in process'
}
export const defaultProfileTarget = 'invite'

/** Runs one in-process workload for `seconds` (the harness runs this under node --cpu-prof). */
export async function profile ({ target, seconds, progress }) {
  const w = phasedWorkloads()[target]
  progress(`profiling ${profileTargets[target]} for ${seconds} s`)
  const until = performance.now() + seconds * 1000
  const inputs = new Array(BATCH)
  let i = 0
  while (performance.now() < until) {
    // The same phases as measure(); the profile also shows the input building (the bench's own work).
    for (const phase of w.phases) {
      for (let k = 0; k < BATCH; k++) inputs[k] = phase.build(i + k, k)
      for (let k = 0; k < BATCH; k++) phase.run(inputs[k], i + k, k)
    }
    i += BATCH
    w.h.clock.advance(40_000)
  }
  return { messages: i }
}

function inProcess (ctx) {
  const opts = ctx.quick ? { samples: 8, sampleMs: 150 } : { samples: 15, sampleMs: 300 }
  const w = phasedWorkloads()
  const rows = []
  const row = (work, name, unit, msgsIn) => {
    measure(work, { samples: 2, sampleMs: 200 })
    const r = stats(measure(work, opts))
    rows.push({ name, unit, median: r.median, spread: r, samples: r.samples, msgsPerSec: Math.round(r.median * msgsIn) })
  }
  row(w.invite, 'trunk INVITE → media node, 200 back (2 messages in, 3 out: 100, INVITE, 200)', 'calls / CPU s', 2)
  row(w.bye, 'in-dialog BYE by Route, 200 back (2 in, 2 out)', 'transactions / CPU s', 2)
  row(w.ack, 'ACK for a 2xx, stateless by Route (1 in, 1 out)', 'msgs / CPU s', 1)
  return rows
}

/** User and system CPU seconds of a process (utime, stime from /proc/PID/stat). */
function userSystem (pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return { user: Number(f[11]) / 100, system: Number(f[12]) / 100 }
}

function sipp (args, timeoutMs) {
  return new Promise(resolve => {
    const child = spawn('sipp', args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', d => { out += d })
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('exit', code => { clearTimeout(t); resolve({ code, out, child }) })
  })
}

export async function endToEnd (ctx) {
  const rows = []
  const port = await freePort()
  const http = await freePort()
  const nodePort = await freePort('127.0.0.43')
  const uasScenario = path.join(REPO_ROOT, 'test', 'sipp', 'proxy-uas.xml')
  const uacScenario = path.join(REPO_ROOT, 'test', 'sipp', 'proxy-uac.xml')
  const uas = spawn('sipp', ['-sf', uasScenario, '-i', '127.0.0.43', '-p', String(nodePort), '-nostdin', '-aa', '-buff_size', '4194304', '-timeout', '200s'], { stdio: 'ignore' })
  const sipd = await startSipd(`listen: ["udp:127.0.0.1:${port}"]\nhttp: "127.0.0.1:${http}"\nlog_level: warn\ntrusted: ["127.0.0.44/32"]\nmedia:\n  probe: { interval_ms: 3600000 }\n  sets:\n    - { id: 1, algorithm: round-robin, nodes: [{ uri: "sip:127.0.0.43:${nodePort}" }] }\n`, { env: ctx.sipdEnv ?? {} })
  try {
    const rate = ctx.rate ?? (ctx.quick ? 100 : 300)
    const calls = ctx.quick ? 1000 : 6000
    ctx.progress(`sipp: ${calls} calls at ${rate} cps through sipd`)
    const c0 = cpuSeconds(sipd.pid)
    const us0 = userSystem(sipd.pid)
    const r = await sipp([`127.0.0.1:${port}`, '-sf', uacScenario, '-s', '5551000', '-i', '127.0.0.44', '-m', String(calls), '-r', String(rate), '-d', '0', '-nostdin', '-timeout', '150s', '-timeout_error', '-buff_size', '4194304'], 180000)
    const c1 = cpuSeconds(sipd.pid)
    const us1 = userSystem(sipd.pid)
    const ok = /Successful call\s*\|\s*\d+\s*\|\s*(\d+)/.exec(r.out)?.[1]
    const failed = /Failed call\s*\|\s*\d+\s*\|\s*(\d+)/.exec(r.out)?.[1]
    rows.push({ name: `sipp trunk → sipd → media node (INVITE/180/200/ACK/BYE/200, Record-Route), ${rate} cps`, unit: 'CPU s / 1,000 calls', median: (c1 - c0) / calls * 1000, samples: 1, userPer1000: (us1.user - us0.user) / calls * 1000, systemPer1000: (us1.system - us0.system) / calls * 1000, successful: Number(ok ?? 0), failed: Number(failed ?? calls) })
    rows.push({ name: 'sipd resident memory after the calls', unit: 'MiB', median: rssBytes(sipd.pid) / 1048576, samples: 1 })
  } finally {
    await sipd.stop()
    uas.kill('SIGINT')
  }
  return rows
}

export async function run (ctx) {
  ctx.progress('in-process hot path')
  const rows = inProcess(ctx)
  rows.push(...await endToEnd(ctx))
  return {
    name: 'route',
    rows,
    notes: [
      'in process: real parser, the server\'s sanity checks (checkRequest, validateResponse; not its metrics), transaction layer (fake clock), proxy core and default policy; send() only keeps the bytes, no sockets; rates are per second of the suite\'s own CPU time (one core) spent handing sipd\'s pieces the messages: each batch of 200 input messages is formatted first, untimed (a socket would hand over a Buffer per datagram; that allocation and the system calls are not in these figures)',
      'msgsPerSec: messages in per CPU second, each of them forwarded (INVITE down, 200 up; BYE and its 200; the ACK); the INVITE row also sends sipd\'s own 100 Trying',
      'a call in the in-process INVITE row is the INVITE from the trunk plus the media node\'s 200 (100 Trying, forwarded INVITE and relayed 200 out)',
      'end to end: CPU seconds are sipd\'s own (utime + stime from /proc/PID/stat); sipp (uac 127.0.0.44, uas 127.0.0.43) runs on the same cores'
    ]
  }
}
