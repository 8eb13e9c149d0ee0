// An idle sipd sleeps: its main thread is woken only by its own coarse
// timers, not 100 times a second by the event-loop lag histogram at
// prom-client's default 10 ms sampling (issue 6: per-call CPU at low call
// rates). The lag series are still exported. Counted from the main thread's
// voluntary context switches in /proc (Linux), so the figure does not depend
// on how busy the machine is.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { freePort } from './helpers/servers.js'
import { metricValue, spawnSipd } from './helpers/spawn-sipd.js'

/** Voluntary context switches of the process's main thread (each one a sleep, then a wake-up). */
function mainThreadSleeps (pid: number): number {
  const status = readFileSync(`/proc/${pid}/task/${pid}/status`, 'utf8')
  const m = /\nvoluntary_ctxt_switches:\s+(\d+)/.exec(status)
  if (m === null) throw new Error(`no voluntary_ctxt_switches in /proc/${pid}/task/${pid}/status`)
  return Number(m[1])
}

t.test('an idle sipd wakes up a few times a second, not a hundred', async t => {
  const port = await freePort('127.0.0.1', 'both')
  const http = await freePort('127.0.0.1', 'tcp')
  const sipd = await spawnSipd({
    configYaml: [`listen: ["udp:127.0.0.1:${port}"]`, `http: "127.0.0.1:${http}"`, 'log_level: warn'].join('\n') + '\n'
  })
  t.teardown(() => sipd.stop())
  // Let start-up work (compilation, GC of the config) settle first.
  await new Promise(resolve => setTimeout(resolve, 1000))
  const before = mainThreadSleeps(sipd.pid)
  const seconds = 3
  await new Promise(resolve => setTimeout(resolve, seconds * 1000))
  const perSecond = (mainThreadSleeps(sipd.pid) - before) / seconds
  // 10 ms sampling alone is 100 wake-ups a second; 100 ms sampling is 10.
  t.ok(perSecond < 40, `main-thread wake-ups per second while idle: ${perSecond.toFixed(1)} (expected < 40)`)
  // The lag histogram still runs: its maximum is a positive number of seconds.
  t.ok(await metricValue(sipd, 'sipd_process_nodejs_eventloop_lag_max_seconds') > 0, 'sipd_process_nodejs_eventloop_lag_max_seconds is exported')
})
