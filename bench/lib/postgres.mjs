// A throw-away PostgreSQL for the benchmarks: initdb into a temporary
// directory and the postmaster on a free loopback port, both as the
// `postgres` user (they refuse to run as root), without fsync; stopped by
// its PID (SIGINT, PostgreSQL's fast shutdown) and the directory removed.
import { spawn, spawnSync } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import pg from 'pg'
import { freePort } from './sipd.mjs'

function pgBinDir () {
  const has = dir => existsSync(path.join(dir, 'postgres')) && existsSync(path.join(dir, 'initdb'))
  if (process.env.SIPD_PG_BINDIR) return process.env.SIPD_PG_BINDIR
  const base = '/usr/lib/postgresql'
  const versions = existsSync(base) ? readdirSync(base).filter(v => has(path.join(base, v, 'bin'))).sort((a, b) => Number(b) - Number(a)) : []
  if (versions.length === 0) throw new Error('no PostgreSQL server binaries under /usr/lib/postgresql (apt-get install -y postgresql)')
  return path.join(base, versions.includes('15') ? '15' : versions[0], 'bin')
}

function pgUser () {
  const r = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' })
  const g = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' })
  if (r.status !== 0) return undefined
  return { uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) }
}

/** Start PostgreSQL with a database `sipd_bench`; resolves with its URL once it accepts connections. */
export async function startPostgres () {
  const bin = pgBinDir()
  const user = process.getuid?.() === 0 ? pgUser() : undefined
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipd-bench-pg-'))
  if (user) chownSync(dir, user.uid, user.gid)
  const data = path.join(dir, 'data')
  const init = spawnSync(path.join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions'],
    { encoding: 'utf8', timeout: 120000, env: { ...process.env, LC_ALL: 'C' }, ...(user ?? {}) })
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}`)
  const port = await freePort()
  const child = spawn(path.join(bin, 'postgres'), ['-D', data, '-k', dir, '-p', String(port), '-h', '127.0.0.1',
    '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'],
  { stdio: 'ignore', cwd: dir, env: { ...process.env, LC_ALL: 'C' }, ...(user ?? {}) })
  const exited = new Promise(resolve => child.once('exit', resolve))
  for (let i = 0; ; i++) {
    const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 1000 })
    try {
      await c.connect()
      await c.query('CREATE DATABASE sipd_bench')
      await c.end()
      break
    } catch (err) {
      c.end().catch(() => {})
      if (child.exitCode !== null || i > 150) throw new Error(`postgres did not start: ${err.message}`)
      await new Promise(resolve => setTimeout(resolve, 100))
    }
  }
  return {
    pid: child.pid,
    url: `postgres://postgres@127.0.0.1:${port}/sipd_bench`,
    async stop () {
      if (child.exitCode === null) {
        process.kill(child.pid, 'SIGINT')
        const t = setTimeout(() => { if (child.exitCode === null) child.kill('SIGKILL') }, 10000)
        await exited
        clearTimeout(t)
      }
      rmSync(dir, { recursive: true, force: true })
    }
  }
}
