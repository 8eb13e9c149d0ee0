import t from 'tap'
import { FakeClock, SYSTEM_CLOCK, type Clock, type TimerHandle } from '../src/clock.js'
import { TimerWheel, DEFAULT_TIMER_WHEEL_OPTIONS } from '../src/timer-wheel.js'
import { InvalidTransactionOptionError } from '../src/transaction-errors.js'

t.test('FakeClock fires due timers in order of due time, ties in creation order', async t => {
  const clock = new FakeClock(1000)
  const log: string[] = []
  clock.setTimeout(() => log.push(`c@${clock.now()}`), 30)
  clock.setTimeout(() => log.push(`a@${clock.now()}`), 10)
  clock.setTimeout(() => log.push(`b@${clock.now()}`), 10)
  const gone = clock.setTimeout(() => log.push('cancelled'), 20)
  clock.clearTimeout(gone)
  clock.clearTimeout(gone)
  t.equal(clock.pending, 3)
  t.equal(clock.advance(9), 0)
  t.same(log, [])
  t.equal(clock.advance(100), 3)
  t.same(log, ['a@1010', 'b@1010', 'c@1030'])
  t.equal(clock.now(), 1109)
  t.throws(() => clock.advance(-1), RangeError)
})

t.test('FakeClock fires timers scheduled by a firing timer within the same advance', async t => {
  const clock = new FakeClock()
  const log: number[] = []
  clock.setTimeout(() => {
    log.push(clock.now())
    clock.setTimeout(() => log.push(clock.now()), 5)
    clock.setTimeout(() => log.push(clock.now()), 50)
  }, 10)
  clock.advance(20)
  t.same(log, [10, 15])
  t.equal(clock.runAll(), 1)
  t.same(log, [10, 15, 60])
})

t.test('SYSTEM_CLOCK timers are unref\'d and cancellable', async t => {
  const handle = SYSTEM_CLOCK.setTimeout(() => t.fail('cancelled timer ran'), 1)
  t.equal((handle as NodeJS.Timeout).hasRef(), false)
  SYSTEM_CLOCK.clearTimeout(handle)
  // An unref'd timer alone would let the process exit: hold it open meanwhile.
  const keepAlive = setInterval(() => {}, 60_000)
  const fired = await new Promise<boolean>(resolve => SYSTEM_CLOCK.setTimeout(() => resolve(true), 1))
  clearInterval(keepAlive)
  t.equal(fired, true)
  t.type(SYSTEM_CLOCK.now(), 'number')
})

t.test('a wheel timer fires on the first tick at or after its due time, never early', async t => {
  const clock = new FakeClock()
  const wheel = new TimerWheel(clock, { tickMs: 100, slots: 8 })
  const fired: Array<[string, number]> = []
  wheel.schedule(() => fired.push(['exact', clock.now()]), 300)
  clock.advance(50)
  wheel.schedule(() => fired.push(['rounded', clock.now()]), 300)
  t.equal(wheel.size, 2)
  clock.advance(249)
  t.same(fired, [], 'nothing fires before its due time')
  clock.advance(1)
  t.same(fired, [['exact', 300]])
  clock.advance(49)
  t.same(fired, [['exact', 300]], 'a timer due at 350 does not fire at 300')
  clock.advance(51)
  t.same(fired, [['exact', 300], ['rounded', 400]])
  t.equal(wheel.size, 0)
  t.equal(clock.pending, 0, 'no native timer while the wheel is empty')
})

t.test('timers longer than one rotation wait out whole rotations', async t => {
  const clock = new FakeClock()
  const wheel = new TimerWheel(clock, { tickMs: 10, slots: 4 })
  const fired: number[] = []
  wheel.schedule(() => fired.push(clock.now()), 10)
  wheel.schedule(() => fired.push(clock.now()), 50) // same slot as 10 ms, next rotation
  wheel.schedule(() => fired.push(clock.now()), 1000)
  clock.advance(10)
  t.same(fired, [10])
  clock.advance(39)
  t.same(fired, [10])
  clock.advance(1)
  t.same(fired, [10, 50])
  clock.advance(949)
  t.same(fired, [10, 50])
  clock.advance(1)
  t.same(fired, [10, 50, 1000])
})

t.test('timers due on the same tick fire in scheduling order', async t => {
  const clock = new FakeClock()
  const wheel = new TimerWheel(clock, { tickMs: 100, slots: 16 })
  const order: number[] = []
  for (let i = 0; i < 5; i++) wheel.schedule(() => order.push(i), 150 + i)
  clock.advance(200)
  t.same(order, [0, 1, 2, 3, 4])
})

t.test('cancel removes a timer in any list position; size and the native timer follow', async t => {
  const clock = new FakeClock()
  const wheel = new TimerWheel(clock, { tickMs: 100, slots: 4 })
  const fired: string[] = []
  const a = wheel.schedule(() => fired.push('a'), 100)
  const b = wheel.schedule(() => fired.push('b'), 100)
  const c = wheel.schedule(() => fired.push('c'), 100)
  const d = wheel.schedule(() => fired.push('d'), 100)
  t.equal(clock.pending, 1, 'one native timer for all wheel timers')
  wheel.cancel(b) // middle
  wheel.cancel(d) // tail
  wheel.cancel(a) // head
  wheel.cancel(a) // twice: ignored
  t.equal(a.active, false)
  t.equal(c.active, true)
  t.equal(wheel.size, 1)
  clock.advance(100)
  t.same(fired, ['c'])
  t.equal(c.active, false)
  wheel.cancel(c) // after firing: ignored
  t.equal(wheel.size, 0)

  const e = wheel.schedule(() => fired.push('e'), 500)
  t.equal(clock.pending, 1)
  wheel.cancel(e)
  t.equal(clock.pending, 0, 'cancelling the last timer releases the native timer')
  clock.advance(1000)
  t.same(fired, ['c'])
})

t.test('a callback may cancel a timer collected for the same tick, or schedule new ones', async t => {
  const clock = new FakeClock()
  const wheel = new TimerWheel(clock, { tickMs: 100, slots: 4 })
  const fired: string[] = []
  let second: ReturnType<TimerWheel['schedule']> | undefined
  wheel.schedule(() => {
    fired.push('first')
    if (second !== undefined) wheel.cancel(second)
    wheel.schedule(() => fired.push(`later@${clock.now()}`), 0)
  }, 100)
  second = wheel.schedule(() => fired.push('second'), 100)
  clock.advance(100)
  t.same(fired, ['first'])
  t.equal(wheel.size, 1)
  clock.advance(100)
  t.same(fired, ['first', 'later@200'], 'a zero delay still waits for the next tick')
  t.equal(clock.pending, 0)
})

t.test('a throwing callback does not stop the others; the error surfaces after the tick', async t => {
  const clock = new FakeClock()
  const wheel = new TimerWheel(clock, { tickMs: 100, slots: 4 })
  const fired: string[] = []
  wheel.schedule(() => { throw new Error('boom') }, 100)
  wheel.schedule(() => fired.push('after'), 100)
  wheel.schedule(() => fired.push('next tick'), 200)
  t.throws(() => clock.advance(100), /boom/)
  t.same(fired, ['after'])
  t.equal(wheel.size, 1)
  clock.advance(100)
  t.same(fired, ['after', 'next tick'])
})

/** A clock whose timers fire only when the test says so, at whatever time it has set: an event-loop stall. */
class StallingClock implements Clock {
  time = 0
  queued: Array<{ fn: () => void, live: boolean }> = []
  now (): number { return this.time }
  setTimeout (fn: () => void): TimerHandle {
    const h = { fn, live: true }
    this.queued.push(h)
    return h
  }

  clearTimeout (h: TimerHandle): void { (h as { live: boolean }).live = false }
  fireQueued (): void {
    const q = this.queued
    this.queued = []
    for (const h of q) if (h.live) h.fn()
  }
}

t.test('a wheel whose native timer fires late catches up: every due timer fires, in due order', async t => {
  for (const stall of [35, 1000]) { // within one rotation, and many rotations
    const clock = new StallingClock()
    const wheel = new TimerWheel(clock, { tickMs: 10, slots: 4 })
    const fired: number[] = []
    for (const ms of [30, 10, 20, 70, 500]) wheel.schedule(() => fired.push(ms), ms)
    t.equal(clock.queued.length, 1, 'one native timer')
    clock.time = stall
    clock.fireQueued()
    const due = [10, 20, 30, 70, 500].filter(ms => ms <= stall)
    t.same(fired, due, `stall ${stall} ms: due timers fired in order`)
    t.equal(wheel.size, 5 - due.length)
    t.equal(clock.queued.length, wheel.size > 0 ? 1 : 0, 're-armed only while timers remain')
  }
})

t.test('invalid options throw at construction with the option named', async t => {
  t.throws(() => new TimerWheel(new FakeClock(), { tickMs: 0 }), InvalidTransactionOptionError)
  t.throws(() => new TimerWheel(new FakeClock(), { tickMs: 1.5 }), /tickMs/)
  t.throws(() => new TimerWheel(new FakeClock(), { slots: 100 }), /slots/)
  t.throws(() => new TimerWheel(new FakeClock(), { slots: 1 }), InvalidTransactionOptionError)
  t.same(DEFAULT_TIMER_WHEEL_OPTIONS, { tickMs: 100, slots: 512 })
  t.ok(Object.isFrozen(DEFAULT_TIMER_WHEEL_OPTIONS))
})

t.test('clear cancels everything and the wheel stays usable', async t => {
  const clock = new FakeClock()
  const wheel = new TimerWheel(clock)
  const fired: string[] = []
  const a = wheel.schedule(() => fired.push('a'), 1000)
  wheel.schedule(() => fired.push('b'), 60_000)
  wheel.clear()
  t.equal(wheel.size, 0)
  t.equal(a.active, false)
  t.equal(clock.pending, 0)
  clock.advance(100_000)
  t.same(fired, [])
  wheel.schedule(() => fired.push('c'), 250)
  clock.advance(300)
  t.same(fired, ['c'])
})

t.test('the native timer is armed for whole milliseconds, never short of the tick', async t => {
  // A clock with fractional times, as performance.now() has: Node arms its
  // timers in whole milliseconds, so a fractional delay woke the process a
  // millisecond early with nothing due.
  const fake = new FakeClock(1000.4)
  const delays: number[] = []
  const clock: Clock = {
    now: () => fake.now(),
    setTimeout: (fn: () => void, ms: number): TimerHandle => { delays.push(ms); return fake.setTimeout(fn, ms) },
    clearTimeout: (h: TimerHandle) => { fake.clearTimeout(h) }
  }
  const wheel = new TimerWheel(clock, { tickMs: 100 })
  fake.advance(0.3)
  let fired = 0
  wheel.schedule(() => { fired++ }, 250)
  wheel.schedule(() => { fired++ }, 1000)
  fake.advance(1100)
  t.equal(fired, 2)
  t.ok(delays.length >= 2, `armed ${delays.length} times`)
  t.ok(delays.every(ms => Number.isInteger(ms)), `whole milliseconds: ${delays.join(', ')}`)
  t.equal(delays[0], 100, 'first tick: 99.7 ms rounded up')
})

t.test('an object as the callback: its onWheelTimer runs once, in scheduling order with functions; cancel and errors as for functions', async t => {
  const clock = new FakeClock()
  const wheel = new TimerWheel(clock, { tickMs: 10, slots: 8 })
  const log: string[] = []
  const obj = (name: string, fail = false): { onWheelTimer: () => void } => ({
    onWheelTimer () {
      log.push(name)
      if (fail) throw new Error(name)
    }
  })
  wheel.schedule(obj('a'), 20)
  wheel.schedule(() => log.push('f'), 20)
  wheel.schedule(obj('throws', true), 20)
  wheel.schedule(obj('b'), 20)
  const gone = wheel.schedule(obj('cancelled'), 20)
  wheel.cancel(gone)
  t.throws(() => clock.advance(20), { message: 'throws' })
  t.same(log, ['a', 'f', 'throws', 'b'])
  clock.advance(1000)
  t.same(log, ['a', 'f', 'throws', 'b'], 'each ran once')
  t.equal(wheel.size, 0)
})
