// Kamailio as a black-box peer for `npm run bench -- e2e --with-kamailio`:
// installed from Debian when missing, started in the foreground (-DD) with
// bench/kamailio/kamailio.cfg, measured over its whole process tree (the
// main process and every child it forks), stopped by its PID.
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { cpuSeconds, processTree, pssBytes, rssBytes } from './machine.mjs'
import { REPO_ROOT } from './sipd.mjs'

export const KAMAILIO_CFG = path.join(REPO_ROOT, 'bench', 'kamailio', 'kamailio.cfg')

function onPath (cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).status === 0
}

/**
 * Make sure `kamailio` is on PATH: when it is not, install Debian's package
 * (apt-get install -y kamailio; the modules the config loads are in it).
 * @returns {{ version: string, installed: boolean }}
 */
export function ensureKamailio (progress = () => {}) {
  let installed = false
  if (!onPath('kamailio')) {
    progress('installing kamailio (apt-get install -y kamailio)')
    const r = spawnSync('apt-get', ['install', '-y', 'kamailio'], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, timeout: 300000 })
    if (r.status !== 0 || !onPath('kamailio')) throw new Error('kamailio is not on PATH and apt-get install -y kamailio failed')
    installed = true
  }
  const v = spawnSync('kamailio', ['-v'], { encoding: 'utf8' })
  const version = /version:\s*(\S+\s+\S+)/.exec(v.stdout ?? '')?.[1] ?? 'kamailio (version unknown)'
  return { version, installed }
}

/**
 * Start Kamailio listening on udp:`host`:`port` with `media` as dispatcher
 * set 1. Resolves once every child is up (the process count stops growing).
 * @param {{ host: string, port: number, media: string[], auth?: boolean, children?: number, shmMb?: number, pkgMb?: number }} o
 */
export async function startKamailio ({ host, port, media, auth = false, children = 2, shmMb = 1024, pkgMb = 16 }) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipd-bench-kamailio-'))
  const list = path.join(dir, 'dispatcher.list')
  writeFileSync(list, media.map(uri => `1 ${uri} 0 0`).join('\n') + '\n')
  const args = ['-f', KAMAILIO_CFG, '-DD', '-E', '-l', `udp:${host}:${port}`, '-m', String(shmMb), '-M', String(pkgMb),
    '-Y', dir, '-A', `DSLIST="${list}"`, '-A', `CHILDREN=${children}`, ...(auth ? ['-A', 'WITH_AUTH'] : [])]
  const child = spawn('kamailio', args, { stdio: ['ignore', 'ignore', 'pipe'] })
  let err = ''
  child.stderr.on('data', d => { if (err.length < 20000) err += d })
  const exited = new Promise(resolve => child.once('exit', resolve))
  let last = 0
  let stable = 0
  for (let i = 0; i < 200 && stable < 4; i++) {
    await new Promise(resolve => setTimeout(resolve, 50))
    if (child.exitCode !== null) throw new Error(`kamailio exited at start (code ${child.exitCode}):\n${err.slice(-2000)}`)
    const n = processTree(child.pid).length
    stable = n > 1 && n === last ? stable + 1 : 0
    last = n
  }
  const pids = () => processTree(child.pid)
  return {
    name: 'Kamailio',
    pid: child.pid,
    pids,
    /** CPU seconds of the main process and every child. */
    cpu: () => pids().reduce((s, p) => { try { return s + cpuSeconds(p) } catch { return s } }, 0),
    /** Memory: PSS summed over the processes (shm counted once), and VmRSS summed (shm counted per process). */
    memory: () => {
      let pss = 0
      let rss = 0
      for (const p of pids()) {
        try { pss += pssBytes(p); rss += rssBytes(p) } catch { /* exited */ }
      }
      return { pss, rss, processes: pids().length }
    },
    async stop () {
      const started = pids().slice(1)
      if (child.exitCode === null) {
        process.kill(child.pid, 'SIGTERM')
        const t = setTimeout(() => { if (child.exitCode === null) child.kill('SIGKILL') }, 5000)
        await exited
        clearTimeout(t)
      }
      // The main process stops its children; any it left behind (killed
      // main) are ours: the PIDs we saw under it, if still there.
      await new Promise(resolve => setTimeout(resolve, 200))
      for (const p of started) {
        try { process.kill(p, 0); process.kill(p, 'SIGKILL') } catch { /* gone */ }
      }
      rmSync(dir, { recursive: true, force: true })
    }
  }
}
