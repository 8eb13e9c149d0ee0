#!/usr/bin/env node
// The test runner behind `npm test`.
//
// 1. Starts throw-away Redis and PostgreSQL servers on loopback (free ports,
//    temp data dirs, no persistence) and exports their URLs to the tests:
//      SIPD_TEST_REDIS_URL, SIPD_TEST_DATABASE_URL, SIPD_TEST_REDIS_SERVER.
// 2. Runs tap (config in .taprc) on packages/*/test/**/*.test.ts and
//    test/**/*.test.ts, or on the files/globs given on the command line;
//    other arguments are passed to tap unchanged.
// 3. Stops the servers it started (by PID) and removes the temp dirs, also
//    on SIGINT/SIGTERM and on failure, then prints one last line
//    `N passed, N failed` taken from tap's own final summary.
//
// Exit code: tap's (non-zero when any test failed); 2 when a prerequisite
// is missing or a server did not come up.

import { spawn, spawnSync } from 'node:child_process'
import { accessSync, chownSync, constants as fsConstants, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const require = createRequire(path.join(ROOT, 'package.json'))

const DEFAULT_TEST_GLOBS = ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts']
const DATABASE_NAME = 'sipd_test'
/** How long a server may take to answer after it was started. */
const STARTUP_BOUND_MS = 30_000
/** How long a server may take to exit after SIGTERM/SIGINT before SIGKILL. */
const STOP_BOUND_MS = 5_000
/** Temp dirs are named `${TEMP_PREFIX}<runner pid>-<server>-XXXXXX`. */
const TEMP_PREFIX = 'sipd-test-'
/** Keep at most this much of a server's output for error messages. */
const OUTPUT_KEEP_BYTES = 16_384

const SETPRIV = existsSync('/usr/bin/setpriv') ? '/usr/bin/setpriv' : undefined
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0

/** Processes this script started and still owns, keyed by PID. */
const owned = new Map()
/** Temp dirs this script created. */
const tempDirs = []
/** The tap child while it runs. */
let tapChild
/** Set by SIGINT/SIGTERM/SIGHUP: the signal handler then owns the last line and the exit. */
let interrupted = false

class SetupError extends Error {}

function log (msg) {
  process.stderr.write(`run-tests: ${msg}\n`)
}

/**
 * Removes temp dirs left by runners that were killed before they could clean
 * up (SIGKILL); their servers died with them (parent-death signal). A dir
 * whose runner PID is still alive belongs to a concurrent run and stays.
 */
function removeStaleTempDirs () {
  let names = []
  try { names = readdirSync(os.tmpdir()) } catch { return }
  for (const name of names) {
    if (!name.startsWith(TEMP_PREFIX)) continue
    const pid = Number(name.slice(TEMP_PREFIX.length).split('-')[0])
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) continue
    try {
      process.kill(pid, 0)
      continue
    } catch (err) {
      if (err.code !== 'ESRCH') continue
    }
    try { rmSync(path.join(os.tmpdir(), name), { recursive: true, force: true }) } catch {}
  }
}

function which (cmd) {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue
    const file = path.join(dir, cmd)
    try {
      accessSync(file, fsConstants.X_OK)
      return file
    } catch {}
  }
  return undefined
}

/** PostgreSQL's server binaries: $SIPD_PG_BINDIR, else version 15, else the newest installed. */
function findPgBinDir () {
  const hasServer = (dir) => existsSync(path.join(dir, 'postgres')) && existsSync(path.join(dir, 'initdb'))
  if (process.env.SIPD_PG_BINDIR) return hasServer(process.env.SIPD_PG_BINDIR) ? process.env.SIPD_PG_BINDIR : undefined
  const base = '/usr/lib/postgresql'
  if (hasServer(path.join(base, '15', 'bin'))) return path.join(base, '15', 'bin')
  let versions = []
  try {
    versions = readdirSync(base).filter((v) => hasServer(path.join(base, v, 'bin'))).sort((a, b) => Number(b) - Number(a))
  } catch {}
  return versions.length > 0 ? path.join(base, versions[0], 'bin') : undefined
}

/** uid/gid of a user from /etc/passwd (node cannot look up other users). */
function lookupUser (name) {
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const f = line.split(':')
    if (f[0] === name) return { uid: Number(f[2]), gid: Number(f[3]) }
  }
  return undefined
}

function checkPrerequisites () {
  const missing = []
  const redisServer = process.env.SIPD_TEST_REDIS_SERVER || which('redis-server')
  if (!redisServer) missing.push(['redis-server', 'redis-server'])
  const pgBinDir = findPgBinDir()
  if (!pgBinDir) missing.push(['PostgreSQL server (postgres, initdb)', 'postgresql'])
  // sipp is not a server, but the end-to-end tests cannot run without it.
  if (!which('sipp')) missing.push(['sipp', 'sip-tester'])
  let pgUser
  if (pgBinDir && isRoot) {
    // initdb and postgres refuse to run as root.
    pgUser = lookupUser('postgres')
    if (!pgUser) missing.push(["user 'postgres' (created by the package)", 'postgresql'])
  }
  if (missing.length > 0) {
    const pkgs = [...new Set(missing.map(([, pkg]) => pkg))]
    log(`missing: ${missing.map(([what]) => what).join(', ')}`)
    log(`install with: apt-get install -y ${pkgs.join(' ')}`)
    return undefined
  }
  return { redisServer, pgBinDir, pgUser }
}

function freePort () {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.unref()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

function delay (ms) {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Resolves with `promise`'s value, or with `onTimeout` after `ms`; the timer is cleared either way. */
async function within (promise, ms, onTimeout) {
  let timer
  const bound = new Promise((resolve) => { timer = setTimeout(() => resolve(onTimeout), ms) })
  try {
    return await Promise.race([promise, bound])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Spawns a long-running server in its own process group (so that a Ctrl-C
 * in the terminal does not hit it before we stop it in order) and keeps the
 * tail of its output for error messages.
 */
function startProcess (name, file, args, opts = {}) {
  // setpriv --pdeathsig: the kernel SIGKILLs the server if this runner dies
  // without cleaning up (e.g. SIGKILL); setpriv execs it, keeping the PID.
  const [cmd, cmdArgs] = SETPRIV ? [SETPRIV, ['--pdeathsig', 'KILL', '--', file, ...args]] : [file, args]
  const child = spawn(cmd, cmdArgs, {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, LC_ALL: 'C', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
    ...(opts.user ? { uid: opts.user.uid, gid: opts.user.gid } : {})
  })
  let output = ''
  const keep = (chunk) => {
    output += chunk.toString('utf8')
    if (output.length > OUTPUT_KEEP_BYTES) output = output.slice(-OUTPUT_KEEP_BYTES)
  }
  child.stdout.on('data', keep)
  child.stderr.on('data', keep)
  const proc = {
    name,
    child,
    pid: child.pid,
    stopSignal: opts.stopSignal ?? 'SIGTERM',
    exited: false,
    exitCode: null,
    output: () => output,
    exit: null
  }
  proc.exit = new Promise((resolve) => {
    child.once('error', (err) => { keep(`spawn error: ${err.message}\n`); proc.exited = true; resolve(null) })
    child.once('exit', (code, signal) => {
      proc.exited = true
      proc.exitCode = code ?? signal
      owned.delete(proc.pid)
      resolve(proc.exitCode)
    })
  })
  if (child.pid !== undefined) owned.set(child.pid, proc)
  return proc
}

/** Stops one process we started: its stop signal, then SIGKILL to its group after a bound. */
async function stopProcess (proc) {
  if (proc.exited) return
  try { process.kill(proc.pid, proc.stopSignal) } catch {}
  if (await within(proc.exit, STOP_BOUND_MS, 'timeout') !== 'timeout') return
  log(`${proc.name} (pid ${proc.pid}) did not exit within ${STOP_BOUND_MS} ms of ${proc.stopSignal}; sending SIGKILL`)
  // The group was created by us (detached: true): it holds only this server and its children.
  try { process.kill(-proc.pid, 'SIGKILL') } catch {}
  try { process.kill(proc.pid, 'SIGKILL') } catch {}
  await within(proc.exit, STOP_BOUND_MS)
}

function redisPing (port) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port })
    let buf = ''
    const done = (ok) => { sock.destroy(); resolve(ok) }
    sock.setTimeout(1000, () => done(false))
    sock.once('error', () => done(false))
    sock.once('connect', () => sock.write('PING\r\n'))
    sock.on('data', (d) => {
      buf += d.toString('latin1')
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'))
    })
  })
}

async function waitUntil (proc, what, probe) {
  const deadline = Date.now() + STARTUP_BOUND_MS
  while (Date.now() < deadline) {
    if (proc.exited) throw new SetupError(`${proc.name} exited (${proc.exitCode}) before ${what}; its output:\n${proc.output()}`)
    if (await probe()) return
    await delay(100)
  }
  throw new SetupError(`${proc.name} did not ${what} within ${STARTUP_BOUND_MS} ms; its output:\n${proc.output()}`)
}

async function startRedis (redisServer) {
  const dir = mkdtempSync(path.join(os.tmpdir(), `${TEMP_PREFIX}${process.pid}-redis-`))
  tempDirs.push(dir)
  // A free port can be taken by someone else between our probe and the
  // server's bind; try a few.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort()
    const proc = startProcess('redis-server', redisServer, [
      '--port', String(port), '--bind', '127.0.0.1',
      '--save', '', '--appendonly', 'no', '--dir', dir,
      '--daemonize', 'no', '--logfile', ''
    ])
    try {
      await waitUntil(proc, `answer PING on 127.0.0.1:${port}`, () => redisPing(port))
      return { proc, port, url: `redis://127.0.0.1:${port}` }
    } catch (err) {
      await stopProcess(proc)
      if (attempt >= 3 || !proc.output().includes('Address already in use')) throw err
    }
  }
}

function runSync (name, file, args, user) {
  const r = spawnSync(file, args, {
    env: { ...process.env, LC_ALL: 'C' },
    encoding: 'utf8',
    timeout: 120_000,
    ...(user ? { uid: user.uid, gid: user.gid } : {})
  })
  if (r.status !== 0) {
    throw new SetupError(`${name} failed (${r.error?.message ?? r.signal ?? `exit ${r.status}`}):\n${r.stdout}${r.stderr}`)
  }
}

async function startPostgres (pgBinDir, pgUser) {
  const dir = mkdtempSync(path.join(os.tmpdir(), `${TEMP_PREFIX}${process.pid}-pg-`))
  tempDirs.push(dir)
  if (pgUser) chownSync(dir, pgUser.uid, pgUser.gid)
  const dataDir = path.join(dir, 'data')
  runSync('initdb', path.join(pgBinDir, 'initdb'), [
    '-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions'
  ], pgUser)

  const { default: pg } = await import(require.resolve('pg'))
  for (let attempt = 1; ; attempt++) {
    const port = await freePort()
    // Postgres is run directly (not through runuser) so that the PID we hold
    // is the postmaster's. SIGINT is its "fast shutdown": it disconnects
    // clients instead of waiting for them like SIGTERM's "smart shutdown".
    // fsync and friends are off: the data is thrown away anyway.
    const proc = startProcess('postgres', path.join(pgBinDir, 'postgres'), [
      '-D', dataDir, '-k', dir, '-p', String(port), '-h', '127.0.0.1',
      '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off',
      '-c', 'max_connections=200'
    ], { user: pgUser, cwd: dir, stopSignal: 'SIGINT' })
    const canConnect = async () => {
      const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 1000 })
      try {
        await client.connect()
        await client.end()
        return true
      } catch {
        client.end().catch(() => {})
        return false
      }
    }
    try {
      await waitUntil(proc, `accept connections on 127.0.0.1:${port}`, canConnect)
    } catch (err) {
      await stopProcess(proc)
      if (attempt >= 3 || !proc.output().includes('already in use')) throw err
      continue
    }
    const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' })
    await client.connect()
    try {
      await client.query(`CREATE DATABASE ${DATABASE_NAME}`)
    } finally {
      await client.end()
    }
    return { proc, port, url: `postgres://postgres@127.0.0.1:${port}/${DATABASE_NAME}` }
  }
}

let cleanedUp
/** Stops every server we started and removes our temp dirs; safe to call more than once. */
function cleanup () {
  cleanedUp ??= (async () => {
    if (tapChild && tapChild.exitCode === null && tapChild.signalCode === null) {
      // Let tap stop its test processes before the servers they use go away.
      const closed = new Promise((resolve) => tapChild.once('close', resolve))
      try { tapChild.kill('SIGTERM') } catch {}
      if (await within(closed, STOP_BOUND_MS * 2, 'timeout') === 'timeout') {
        try { tapChild.kill('SIGKILL') } catch {}
      }
    }
    await Promise.all([...owned.values()].map(stopProcess))
    for (const dir of tempDirs) {
      try { rmSync(dir, { recursive: true, force: true }) } catch (err) { log(`could not remove ${dir}: ${err.message}`) }
    }
  })()
  return cleanedUp
}

// Last resort if the event loop is torn down without cleanup (e.g. process.exit elsewhere).
process.on('exit', () => {
  for (const proc of owned.values()) {
    try { process.kill(-proc.pid, 'SIGKILL') } catch {}
  }
  for (const dir of tempDirs) {
    try { rmSync(dir, { recursive: true, force: true }) } catch {}
  }
})

for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]]) {
  process.on(signal, () => {
    if (interrupted) return
    interrupted = true
    log(`${signal} received; stopping tests and servers`)
    cleanup().finally(() => {
      process.stdout.write('0 passed, 1 failed\n', () => process.exit(code))
    })
  })
}

/** Whether the user named test files or globs (then the default globs are not added). */
function namesFiles (args) {
  return args.some((a) => !a.startsWith('-') && (a.includes('*') || existsSync(path.resolve(a))))
}

function runTap (args, env) {
  return new Promise((resolve) => {
    const tapBin = path.join(path.dirname(require.resolve('tap/package.json')), 'dist', 'esm', 'run.mjs')
    // --reporter=tap: the raw TAP stream carries the `# { total: .. }`
    // summary we count from. --allow-empty-coverage: as .taprc says,
    // coverage is reported, not enforced; a run of only end-to-end tests
    // (code in child processes) has none, which alone must not fail it.
    const tapArgs = [tapBin, ...args, ...(namesFiles(args) ? [] : DEFAULT_TEST_GLOBS), '--allow-empty-coverage', '--reporter=tap']
    // Parent-death signal TERM: if this runner is killed outright, tap still
    // gets to stop its test processes (whose helpers' children die with them).
    const [cmd, cmdArgs] = SETPRIV ? [SETPRIV, ['--pdeathsig', 'TERM', '--', process.execPath, ...tapArgs]] : [process.execPath, tapArgs]
    tapChild = spawn(cmd, cmdArgs, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'inherit'] })
    let summary
    let partial = ''
    tapChild.stdout.on('data', (chunk) => {
      process.stdout.write(chunk)
      const lines = (partial + chunk.toString('utf8')).split('\n')
      partial = lines.pop()
      for (const line of lines) {
        // tap's final summary is the only unindented `# { total: ...}` line.
        if (line.startsWith('# { total:')) summary = line
      }
    })
    tapChild.once('error', (err) => {
      log(`could not start tap: ${err.message}`)
      resolve({ code: 1, summary: undefined })
    })
    tapChild.once('close', (code, signal) => {
      if (partial.startsWith('# { total:')) summary = partial
      resolve({ code: code ?? (signal ? 1 : 0), summary })
    })
  })
}

function summaryLine (summary) {
  if (!summary) return { line: '0 passed, 1 failed', failed: 1 }
  const count = (key) => {
    const m = new RegExp(`\\b${key}: (\\d+)`).exec(summary)
    return m ? Number(m[1]) : 0
  }
  return { line: `${count('pass')} passed, ${count('fail')} failed`, failed: count('fail') }
}

async function main () {
  const prereq = checkPrerequisites()
  if (!prereq) {
    process.stdout.write('0 passed, 1 failed\n')
    return 2
  }
  removeStaleTempDirs()
  let redis, postgres
  try {
    ;[redis, postgres] = await Promise.all([
      startRedis(prereq.redisServer),
      startPostgres(prereq.pgBinDir, prereq.pgUser)
    ])
  } catch (err) {
    log(err instanceof SetupError ? err.message : (err.stack ?? String(err)))
    await cleanup()
    process.stdout.write('0 passed, 1 failed\n')
    return 2
  }
  if (interrupted) return new Promise(() => {}) // the signal handler cleans up, prints and exits
  log(`redis-server pid ${redis.proc.pid} at ${redis.url}; postgres pid ${postgres.proc.pid} at ${postgres.url}`)

  const env = {
    ...process.env,
    SIPD_TEST_REDIS_URL: redis.url,
    SIPD_TEST_DATABASE_URL: postgres.url,
    SIPD_TEST_REDIS_SERVER: prereq.redisServer
  }
  let result
  try {
    result = await runTap(process.argv.slice(2), env)
  } finally {
    await cleanup()
  }
  if (interrupted) return new Promise(() => {}) // the signal handler prints and exits
  const { line, failed } = summaryLine(result.summary)
  await new Promise((resolve) => process.stdout.write(`${line}\n`, resolve))
  if (result.code !== 0) return result.code
  // tap exited 0 but its summary is missing or reports failures: still a failure.
  return failed > 0 ? 1 : 0
}

main().then(
  (code) => { process.exitCode = code },
  async (err) => {
    log(err.stack ?? String(err))
    await cleanup()
    process.stdout.write('0 passed, 1 failed\n', () => process.exit(1))
  }
)
