import os from 'node:os'
import { readFileSync } from 'node:fs'

/** The machine a result was measured on. */
export function machine () {
  const cpus = os.cpus()
  return {
    cpuModel: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    nodeVersion: process.version,
    platform: `${os.platform()} ${os.release()}`,
    loadAverage: os.loadavg().map(x => Math.round(x * 100) / 100)
  }
}

/** CPU seconds (user + system) a process has used, from /proc (Linux; CLK_TCK 100). */
export function cpuSeconds (pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}

/** Resident memory of a process in bytes, from /proc. */
export function rssBytes (pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const m = /VmRSS:\s+(\d+) kB/.exec(status)
  return m ? Number(m[1]) * 1024 : 0
}
