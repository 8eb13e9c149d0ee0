// Runs real baresip (Debian package baresip-core) as a SIP phone for
// end-to-end tests: a throw-away config directory, no audio devices (aubridge
// stands in for player and source), G.711 only, and control through its
// ctrl_tcp module (netstring-framed JSON commands and events). Always bounded:
// `-t` ends baresip by itself, `stop()` ends it by its PID, and the kernel
// kills it if the test process dies (setpriv --pdeathsig).

import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { delay, exitOf, OutputTail, spawnBound, stopChild, TestHelperError, track } from './process.js'

/** Where Debian's baresip-core puts its modules. */
const MODULE_PATH = '/usr/lib/baresip/modules'

/** The baresip binary on PATH, or undefined. */
export function baresipPath (): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/bin').split(':')) {
    if (dir === '') continue
    const p = path.join(dir, 'baresip')
    if (existsSync(p)) return p
  }
  return undefined
}

/**
 * Throws a clear error when baresip or the modules the helper loads are not
 * installed: the interop test fails then, it is never skipped.
 */
export function requireBaresip (): string {
  const bin = baresipPath()
  const missing = ['g711.so', 'aubridge.so', 'menu.so', 'ctrl_tcp.so', 'uuid.so', 'account.so'].filter(m => !existsSync(path.join(MODULE_PATH, m)))
  if (bin === undefined || missing.length > 0) {
    throw new TestHelperError('SIPD_TEST_ERR_ENV',
      `baresip is needed for the interop test but ${bin === undefined ? 'is not on PATH' : `its modules ${missing.join(', ')} are missing from ${MODULE_PATH}`}; ` +
      'install it: apt-get install -y baresip-core (.ci/run does)')
  }
  return bin
}

/** One ctrl_tcp event, e.g. `{ event: true, type: 'CALL_ESTABLISHED', class: 'call', accountaor, peeruri, id, param }`. */
export interface BaresipEvent {
  type: string
  class?: string
  accountaor?: string
  direction?: string
  peeruri?: string
  id?: string
  param?: string
  [key: string]: unknown
}

/** The answer to a ctrl_tcp command. */
export interface BaresipResponse {
  ok: boolean
  data: string
}

/** Options of {@link startBaresip}. */
export interface BaresipOptions {
  /** A name for failure messages (`alice`). */
  name: string
  /** Local address: SIP (`sip_listen`, UDP and TCP), RTP and ctrl_tcp bind here. */
  localIp: string
  /** SIP port on localIp. */
  sipPort: number
  /** ctrl_tcp port on localIp. */
  ctrlPort: number
  /** The line of baresip's `accounts` file, e.g. `<sip:alice@example.test>;auth_pass=…;outbound="sip:…"`. */
  account: string
  /** baresip quits by itself after this long (`-t`). @default 50 */
  lifetimeSec?: number
  /** How long to wait for ctrl_tcp to accept a connection. @default 5000 */
  readyTimeoutMs?: number
}

/** A running baresip. */
export interface BaresipHandle {
  readonly pid: number
  readonly name: string
  /** Every event received so far, in order. */
  readonly events: BaresipEvent[]
  /** Sends a ctrl_tcp command (`dial`, `hangup`, `accept`, `quit`, …) and resolves with its answer. */
  command (command: string, params?: string, timeoutMs?: number): Promise<BaresipResponse>
  /**
   * Resolves with the first event at index `from` or later that `match`es;
   * rejects after `timeoutMs` with the events and the SIP trace.
   */
  waitEvent (match: (e: BaresipEvent) => boolean, what: string, timeoutMs?: number, from?: number): Promise<BaresipEvent>
  /** `quit` over ctrl_tcp (baresip unregisters), then SIGTERM/SIGKILL by PID if it has not exited within the bound. */
  stop (boundMs?: number): Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  /** baresip's stdout and stderr: its SIP trace (`-s`) and log. */
  output (): string
}

/** baresip's `config`: SIP on one address, no sound card, G.711, ctrl_tcp. */
function configText (o: BaresipOptions): string {
  return [
    `module_path\t\t${MODULE_PATH}`,
    'poll_method\t\tepoll',
    `sip_listen\t\t${o.localIp}:${o.sipPort}`,
    'call_local_timeout\t30',
    'call_max_calls\t\t4',
    // aubridge stands in for sound cards at any sample rate (ausine only does
    // 48 kHz, which fails a PCMU call in baresip 1.0: "start_source failed").
    'audio_player\t\taubridge,nil',
    'audio_source\t\taubridge,nil',
    'audio_alert\t\taubridge,nil',
    'audio_level\t\tno',
    // SDP and RTP on the same loopback address as SIP, not the first interface found.
    `net_interface\t\t${o.localIp}`,
    'module\t\t\tg711.so',
    'module\t\t\taubridge.so',
    // uuid writes the +sip.instance (RFC 5626) that sipnat=outbound needs.
    'module_tmp\t\tuuid.so',
    'module_tmp\t\taccount.so',
    // menu holds the commands (dial, hangup, accept, quit) that ctrl_tcp runs.
    'module_app\t\tmenu.so',
    'module_app\t\tctrl_tcp.so',
    `ctrl_tcp_listen\t\t${o.localIp}:${o.ctrlPort}`,
    ''
  ].join('\n')
}

/**
 * Starts baresip with a throw-away config directory and resolves once its
 * ctrl_tcp accepts a connection. Always `stop()` it in `t.teardown`.
 */
export async function startBaresip (o: BaresipOptions): Promise<BaresipHandle> {
  const bin = requireBaresip()
  const dir = await mkdtemp(path.join(os.tmpdir(), `sipd-baresip-${o.name}-`))
  await writeFile(path.join(dir, 'config'), configText(o))
  await writeFile(path.join(dir, 'accounts'), o.account + '\n')
  const child = spawnBound(bin, ['-f', dir, '-s', '-t', String(o.lifetimeSec ?? 50)], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
  const out = new OutputTail(512 * 1024)
  let spawnError: Error | undefined
  child.once('error', (err) => { spawnError = err })
  child.stdout?.on('data', (d: Buffer) => out.push(d))
  child.stderr?.on('data', (d: Buffer) => out.push(d))
  track(child)
  const exited = exitOf(child)
  void exited.then(() => rm(dir, { recursive: true, force: true }))

  const events: BaresipEvent[] = []
  const responses: Array<(r: BaresipResponse) => void> = []
  const waiters = new Set<() => void>()
  let sock: net.Socket | undefined
  const deadline = Date.now() + (o.readyTimeoutMs ?? 5000)
  while (sock === undefined) {
    if (spawnError !== undefined || child.exitCode !== null || child.signalCode !== null) {
      const s = await exited
      throw new TestHelperError('SIPD_TEST_ERR_START', `baresip ${o.name} exited before ctrl_tcp answered (${spawnError?.message ?? `exit ${s.code ?? s.signal}`}); output:\n${out.toString()}`)
    }
    sock = await new Promise<net.Socket | undefined>((resolve) => {
      const s = net.connect(o.ctrlPort, o.localIp)
      s.once('connect', () => resolve(s))
      s.once('error', () => { s.destroy(); resolve(undefined) })
    })
    if (sock === undefined) {
      if (Date.now() > deadline) {
        await stopChild(child, 'SIGKILL', 2000)
        throw new TestHelperError('SIPD_TEST_ERR_START', `baresip ${o.name} (pid ${child.pid}) did not open ctrl_tcp on ${o.localIp}:${o.ctrlPort}; output:\n${out.toString()}`)
      }
      await delay(30)
    }
  }
  const ctrl = sock
  // ctrl_tcp frames every JSON document as a netstring: `LEN:JSON,`.
  let buf: Buffer = Buffer.alloc(0)
  ctrl.on('error', () => {})
  ctrl.on('data', (d: Buffer) => {
    buf = buf.length === 0 ? d : Buffer.concat([buf, d])
    for (;;) {
      const colon = buf.indexOf(0x3a)
      if (colon < 0) break
      const len = Number(buf.subarray(0, colon).toString('latin1'))
      if (!Number.isInteger(len) || len < 0) { buf = Buffer.alloc(0); break }
      if (buf.length < colon + 1 + len + 1) break
      const doc = JSON.parse(buf.subarray(colon + 1, colon + 1 + len).toString('utf8')) as Record<string, unknown>
      buf = buf.subarray(colon + 2 + len)
      if (doc.response === true) {
        responses.shift()?.({ ok: doc.ok === true, data: typeof doc.data === 'string' ? doc.data : '' })
      } else if (doc.event === true) {
        events.push(doc as BaresipEvent)
        for (const w of waiters) w()
      }
    }
  })

  const command = (cmd: string, params = '', timeoutMs = 5000): Promise<BaresipResponse> => {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`baresip ${o.name}: no answer to "${cmd}" within ${timeoutMs} ms`)), timeoutMs)
      responses.push((r) => { clearTimeout(timer); resolve(r) })
      const json = Buffer.from(JSON.stringify({ command: cmd, params, token: cmd }))
      ctrl.write(Buffer.concat([Buffer.from(`${json.length}:`), json, Buffer.from(',')]))
    })
  }

  const waitEvent = (match: (e: BaresipEvent) => boolean, what: string, timeoutMs = 10_000, from = 0): Promise<BaresipEvent> => {
    return new Promise((resolve, reject) => {
      let i = from
      const check = (): boolean => {
        for (; i < events.length; i++) {
          const e = events[i] as BaresipEvent
          if (match(e)) { resolve(e); return true }
        }
        return false
      }
      if (check()) return
      const timer = setTimeout(() => {
        waiters.delete(waiter)
        reject(new Error(`baresip ${o.name}: no ${what} within ${timeoutMs} ms; events: ${events.map(e => `${e.type}(${e.param ?? ''})`).join(' ')}\nSIP trace and log (tail):\n${out.toString().slice(-12_000)}`))
      }, timeoutMs)
      const waiter = (): void => {
        if (check()) { clearTimeout(timer); waiters.delete(waiter) }
      }
      waiters.add(waiter)
    })
  }

  let stopped: Promise<{ code: number | null, signal: NodeJS.Signals | null }> | undefined
  const stop = (boundMs = 5000): Promise<{ code: number | null, signal: NodeJS.Signals | null }> => {
    stopped ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        // quit unregisters first (a REGISTER with expires=0, challenged again).
        await command('quit', '', 2000).catch(() => undefined)
        let timer: NodeJS.Timeout | undefined
        const bound = new Promise<undefined>((resolve) => { timer = setTimeout(() => resolve(undefined), boundMs) })
        const first = await Promise.race([exited, bound])
        clearTimeout(timer)
        if (first === undefined) await stopChild(child, 'SIGTERM', 2000)
      }
      ctrl.destroy()
      return await exited
    })()
    return stopped
  }

  return { pid: child.pid as number, name: o.name, events, command, waitEvent, stop, output: () => out.toString() }
}
