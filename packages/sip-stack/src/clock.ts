/**
 * Time source and one-shot timer provider, injected into the timer wheel and
 * the transaction layer so that every RFC 3261 timer can be driven by a
 * {@link FakeClock} in tests (STYLE.md §9).
 */

/** An opaque handle returned by {@link Clock.setTimeout}. */
export type TimerHandle = object

/** A time source with one-shot timers. */
export interface Clock {
  /** Milliseconds on a monotonic scale; only differences are meaningful. */
  now(): number
  /** Run `fn` once after `ms` milliseconds. */
  setTimeout(fn: () => void, ms: number): TimerHandle
  /** Cancel a timer; a handle that already fired or was cancelled is ignored. */
  clearTimeout(handle: TimerHandle): void
}

/**
 * The real clock: `performance.now()` and native timers. Timers are unref'd
 * so that pending SIP timers alone never keep a shutting-down process alive;
 * the listening sockets do that.
 */
export const SYSTEM_CLOCK: Clock = Object.freeze({
  now: (): number => performance.now(),
  setTimeout (fn: () => void, ms: number): TimerHandle {
    const timer = setTimeout(fn, ms)
    timer.unref()
    return timer
  },
  clearTimeout (handle: TimerHandle): void {
    clearTimeout(handle as NodeJS.Timeout)
  }
})

interface FakeTimer {
  readonly fn: () => void
  readonly due: number
  /** Creation order; breaks ties between timers due at the same time. */
  readonly seq: number
  live: boolean
}

/**
 * A manual clock for tests. Time stands still until {@link FakeClock.advance}
 * moves it; due timers then fire in order of due time (creation order for
 * ties), each with `now()` set to its due time. Timers scheduled by a firing
 * timer fire in the same `advance` when they fall due within it.
 */
export class FakeClock implements Clock {
  #now: number
  #seq = 0
  #timers: FakeTimer[] = []

  /** @param start the initial value of `now()` */
  constructor (start = 0) {
    this.#now = start
  }

  now (): number {
    return this.#now
  }

  setTimeout (fn: () => void, ms: number): TimerHandle {
    // Like Node: a negative or non-finite delay means "as soon as possible".
    const delay = Number.isFinite(ms) && ms > 0 ? ms : 0
    const timer: FakeTimer = { fn, due: this.#now + delay, seq: this.#seq++, live: true }
    this.#timers.push(timer)
    return timer
  }

  clearTimeout (handle: TimerHandle): void {
    const timer = handle as FakeTimer
    if (!timer.live) return
    timer.live = false
    const i = this.#timers.indexOf(timer)
    if (i >= 0) this.#timers.splice(i, 1)
  }

  /** Number of timers that have not fired nor been cancelled. */
  get pending (): number {
    return this.#timers.length
  }

  /**
   * Move time forward by `ms`, firing every timer that falls due on the way.
   * Returns the number of timers fired.
   */
  advance (ms: number): number {
    if (!(ms >= 0)) throw new RangeError(`FakeClock.advance: ms must be >= 0, got ${ms}`)
    const target = this.#now + ms
    let fired = 0
    for (;;) {
      const next = this.#earliest(target)
      if (next === undefined) break
      this.#timers.splice(this.#timers.indexOf(next), 1)
      next.live = false
      this.#now = next.due
      fired++
      next.fn()
    }
    this.#now = target
    return fired
  }

  /** Fire timers until none is pending, at most `limit` of them; returns the number fired. */
  runAll (limit = 10_000): number {
    let fired = 0
    while (this.#timers.length > 0 && fired < limit) {
      const next = this.#earliest(Infinity)
      if (next === undefined) break
      fired += this.advance(next.due - this.#now)
    }
    return fired
  }

  #earliest (limit: number): FakeTimer | undefined {
    let best: FakeTimer | undefined
    for (const t of this.#timers) {
      if (t.due > limit) continue
      if (best === undefined || t.due < best.due || (t.due === best.due && t.seq < best.seq)) best = t
    }
    return best
  }
}
