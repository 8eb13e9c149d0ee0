// The machine a result was measured on, and CPU/memory readings of processes
// from /proc (Linux; clock ticks are USER_HZ = 100 there).
import os from 'node:os'
import { readFileSync, readdirSync } from 'node:fs'

const round2 = x => Math.round(x * 100) / 100

/**
 * CPU model, cores, Node version, platform, memory and the load average now
 * (taken when a suite starts).
 */
export function machine () {
  const cpus = os.cpus()
  const [m1, m5, m15] = os.loadavg()
  return {
    cpuModel: cpus[0]?.model?.trim() ?? 'unknown',
    cores: cpus.length,
    nodeVersion: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    totalMemoryMiB: Math.round(os.totalmem() / 1048576),
    loadAverageAtStart: { '1m': round2(m1), '5m': round2(m5), '15m': round2(m15) }
  }
}

function statFields (pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
}

/** CPU seconds (user + system) a process has used, from /proc/PID/stat. */
export function cpuSeconds (pid) {
  const f = statFields(pid)
  return (Number(f[11]) + Number(f[12])) / 100
}

/**
 * CPU seconds of a process plus those of its children that have exited and
 * been waited for (utime + stime + cutime + cstime).
 */
export function cpuSecondsWithChildren (pid) {
  const f = statFields(pid)
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100
}

/**
 * From /proc/stat, in CPU seconds since boot over all cores: `busy` (not
 * idle, iowait or steal) and `steal` (time the hypervisor ran something else
 * while a virtual CPU of ours wanted to run).
 */
export function cpuTimes () {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]
  const f = line.trim().split(/\s+/).slice(1).map(Number)
  const [user, nice, system, , , irq, softirq, steal = 0] = f
  return { busy: (user + nice + system + irq + softirq) / 100, steal: steal / 100 }
}

/** Resident memory of a process in bytes, from /proc/PID/status. */
export function rssBytes (pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const m = /VmRSS:\s+(\d+) kB/.exec(status)
  return m ? Number(m[1]) * 1024 : 0
}

/**
 * Proportional set size of a process in bytes, from /proc/PID/smaps_rollup:
 * its private pages plus its share of pages it shares with others, so that
 * summing PSS over the processes of a server counts shared memory (Kamailio's
 * shm) once.
 */
export function pssBytes (pid) {
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8')
  const m = /\nPss:\s+(\d+) kB/.exec(rollup)
  return m ? Number(m[1]) * 1024 : 0
}

/** `pid` and every process descended from it (children's parent PID read from /proc/*\/stat). */
export function processTree (pid) {
  const parentOf = new Map()
  for (const name of readdirSync('/proc')) {
    const c = name.charCodeAt(0)
    if (c < 48 || c > 57) continue
    try {
      parentOf.set(Number(name), Number(statFields(name)[1]))
    } catch { /* exited meanwhile */ }
  }
  const out = [pid]
  for (let i = 0; i < out.length; i++) {
    for (const [child, parent] of parentOf) if (parent === out[i]) out.push(child)
  }
  return out
}
