// Start and stop a sipd child for benchmarks (the built CLI), and free ports.
import { spawn } from 'node:child_process'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import net from 'node:net'
import dgram from 'node:dgram'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { cpuSeconds, pssBytes, rssBytes } from './machine.mjs'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
export const SIPD_CLI = path.join(root, 'packages', 'proxy', 'dist', 'cli.js')
export const REPO_ROOT = root

/** A port free for both UDP and TCP on `host`. */
export async function freePort (host = '127.0.0.1') {
  for (let i = 0; i < 50; i++) {
    const port = await new Promise((resolve, reject) => {
      const s = net.createServer()
      s.once('error', reject)
      s.listen(0, host, () => { const p = s.address().port; s.close(() => resolve(p)) })
    })
    const ok = await new Promise(resolve => {
      const u = dgram.createSocket('udp4')
      u.once('error', () => resolve(false))
      u.bind(port, host, () => u.close(() => resolve(true)))
    })
    if (ok) return port
  }
  throw new Error('no free port')
}

/**
 * Start sipd with a YAML config; resolves once /healthz answers. `stop()`
 * sends SIGTERM and SIGKILL after `graceMs` if sipd is still draining.
 */
export async function startSipd (yaml, { env = {}, graceMs = 10000 } = {}) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipd-bench-'))
  const file = path.join(dir, 'sipd.yaml')
  writeFileSync(file, yaml)
  const http = /http:\s*"?([^"\n]+)"?/.exec(yaml)?.[1] ?? '127.0.0.1:9090'
  const child = spawn(process.execPath, [SIPD_CLI, '--config', file], { env: { ...process.env, SIPD_LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'ignore', 'inherit'] })
  const deadline = Date.now() + 15000
  for (;;) {
    try {
      const r = await fetch(`http://${http}/healthz`)
      if (r.status === 200) break
    } catch {}
    if (Date.now() > deadline || child.exitCode !== null) { child.kill('SIGKILL'); throw new Error('sipd did not start') }
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  const exited = new Promise(resolve => child.once('exit', resolve))
  return {
    name: 'sipd',
    pid: child.pid,
    http: `http://${http}`,
    pids: () => [child.pid],
    /** CPU seconds (user + system) sipd has used. */
    cpu: () => cpuSeconds(child.pid),
    /** Memory: PSS and VmRSS of the sipd process (one process: nearly equal). */
    memory: () => ({ pss: pssBytes(child.pid), rss: rssBytes(child.pid), processes: 1 }),
    async stop () {
      if (child.exitCode === null) child.kill('SIGTERM')
      const t = setTimeout(() => { if (child.exitCode === null) child.kill('SIGKILL') }, graceMs)
      await exited
      clearTimeout(t)
      rmSync(dir, { recursive: true, force: true })
    }
  }
}
