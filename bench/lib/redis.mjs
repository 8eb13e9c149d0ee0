// A throw-away redis-server for the benchmarks, on a free loopback port,
// without persistence; stopped by its PID.
import { spawn } from 'node:child_process'
import net from 'node:net'
import { freePort } from './sipd.mjs'

/** Start redis-server (or $SIPD_TEST_REDIS_SERVER); resolves once it accepts connections. */
export async function startRedis () {
  const port = await freePort()
  const child = spawn(process.env.SIPD_TEST_REDIS_SERVER ?? 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  const exited = new Promise(resolve => child.once('exit', resolve))
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise(resolve => {
      const s = net.connect(port, '127.0.0.1')
      s.once('connect', () => { s.destroy(); resolve(true) })
      s.once('error', () => resolve(false))
    })
    if (ok) break
    if (child.exitCode !== null) throw new Error('redis-server did not start')
    await new Promise(resolve => setTimeout(resolve, 25))
  }
  return {
    pid: child.pid,
    url: `redis://127.0.0.1:${port}`,
    async stop () {
      if (child.exitCode !== null) return
      process.kill(child.pid, 'SIGTERM')
      const t = setTimeout(() => { if (child.exitCode === null) child.kill('SIGKILL') }, 3000)
      await exited
      clearTimeout(t)
    }
  }
}
