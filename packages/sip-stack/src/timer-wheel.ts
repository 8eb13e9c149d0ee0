/**
 * One coarse, shared hashed timer wheel for the long RFC 3261 timers
 * (B, D, F, H, I, J, K, L, M; later the proxy's Timer C and registration
 * expiry). A busy server holds tens of thousands of these at once and cancels
 * nearly all of them early; a wheel makes schedule and cancel O(1) and keeps
 * one native timer, armed only while the wheel holds anything (the notion of
 * undici's lib/util/timers.js, STYLE.md §9). The short retransmission timers
 * A/E/G stay on the {@link Clock}: they need better than tick precision.
 *
 * A timer fires on the first tick boundary at or after its due time, never
 * early, at most one tick late (plus event-loop lag). Timers due on the same
 * tick fire in the order they were scheduled.
 */
import { SYSTEM_CLOCK } from './clock.js'
import type { Clock, TimerHandle } from './clock.js'
import { InvalidTransactionOptionError } from './transaction-errors.js'

/** Options of a {@link TimerWheel}. */
export interface TimerWheelOptions {
  /**
   * Tick length in milliseconds: the wheel's resolution. The long SIP timers
   * are 5 s (T4) to 32 s (64·T1), so 100 ms is well under 2 % of any of them.
   * @default 100
   */
  tickMs: number
  /**
   * Number of slots, a power of two. One rotation (`slots · tickMs`, 51.2 s
   * by default) should cover the common timers, so that a slot holds mostly
   * timers due on this rotation; longer timers wait out whole rotations.
   * @default 512
   */
  slots: number
}

/** The defaults of {@link TimerWheelOptions}. */
export const DEFAULT_TIMER_WHEEL_OPTIONS: Readonly<TimerWheelOptions> = Object.freeze({
  tickMs: 100,
  slots: 512
})

/** Entry state: linked into a slot (>= 0), idle, or collected for firing. */
const IDLE = -1
const FIRING = -2

/**
 * What a timer runs instead of a function: `onWheelTimer()` of an object
 * that already exists (a transaction, a proxy branch), so that scheduling
 * makes no closure (and holds none for the timer's 32 s or 3 min).
 */
export interface WheelCallback {
  onWheelTimer (): void
}

/**
 * A timer scheduled on a {@link TimerWheel}; pass it to
 * {@link TimerWheel.cancel}. One object per schedule, never reused.
 */
export class WheelTimer {
  /** @internal */ fn: (() => void) | WheelCallback | undefined
  /** @internal absolute tick on which the timer is due */ dueTick: number
  /** @internal slot index while linked, else IDLE or FIRING */ slot = IDLE
  /** @internal */ prev: WheelTimer | undefined = undefined
  /** @internal */ next: WheelTimer | undefined = undefined

  /** @internal */
  constructor (fn: (() => void) | WheelCallback, dueTick: number) {
    this.fn = fn
    this.dueTick = dueTick
  }

  /** True until the timer fires or is cancelled. */
  get active (): boolean {
    return this.slot !== IDLE
  }
}

/** A hashed timing wheel over an injected {@link Clock}. */
export class TimerWheel {
  readonly #clock: Clock
  readonly #tickMs: number
  readonly #mask: number
  readonly #heads: Array<WheelTimer | undefined>
  readonly #tails: Array<WheelTimer | undefined>
  /** Clock time of tick 0. */
  readonly #origin: number
  /** The last tick whose slot has been processed. */
  #processed = 0
  #size = 0
  #native: TimerHandle | undefined = undefined
  /** True while a tick runs callbacks. */
  #ticking = false
  /** Reused between ticks: the timers collected for firing. */
  #due: WheelTimer[] = []
  readonly #onTick = (): void => { this.#tick() }

  /**
   * @param clock time source and the one native timer; {@link SYSTEM_CLOCK} by default
   * @throws InvalidTransactionOptionError when `tickMs` is not a positive
   *   integer or `slots` is not a power of two between 2 and 65536
   */
  constructor (clock: Clock = SYSTEM_CLOCK, options: Partial<TimerWheelOptions> = {}) {
    const tickMs = options.tickMs ?? DEFAULT_TIMER_WHEEL_OPTIONS.tickMs
    const slots = options.slots ?? DEFAULT_TIMER_WHEEL_OPTIONS.slots
    if (!Number.isInteger(tickMs) || tickMs < 1) {
      throw new InvalidTransactionOptionError('tickMs', tickMs, 'an integer number of milliseconds >= 1')
    }
    if (!Number.isInteger(slots) || slots < 2 || slots > 65536 || (slots & (slots - 1)) !== 0) {
      throw new InvalidTransactionOptionError('slots', slots, 'a power of two from 2 to 65536')
    }
    this.#clock = clock
    this.#tickMs = tickMs
    this.#mask = slots - 1
    this.#heads = new Array<WheelTimer | undefined>(slots).fill(undefined)
    this.#tails = new Array<WheelTimer | undefined>(slots).fill(undefined)
    this.#origin = clock.now()
  }

  /** Number of scheduled timers. */
  get size (): number {
    return this.#size
  }

  /** Tick length in milliseconds. */
  get tickMs (): number {
    return this.#tickMs
  }

  /** Run `fn` (or `fn.onWheelTimer()`) once, `ms` milliseconds from now (rounded up to the next tick). */
  schedule (fn: (() => void) | WheelCallback, ms: number): WheelTimer {
    if (this.#size === 0 && this.#native === undefined && !this.#ticking) {
      // Idle wheel: nothing to catch up on, so restart counting from now.
      this.#processed = this.#currentTick()
    }
    const delay = ms > 0 ? ms : 0
    let dueTick = Math.ceil((this.#clock.now() - this.#origin + delay) / this.#tickMs)
    if (dueTick <= this.#processed) dueTick = this.#processed + 1
    const timer = new WheelTimer(fn, dueTick)
    this.#link(timer)
    this.#size++
    if (this.#native === undefined && !this.#ticking) this.#arm()
    return timer
  }

  /** Cancel a timer in O(1); a timer that fired or was cancelled is ignored. */
  cancel (timer: WheelTimer): void {
    if (timer.slot >= 0) {
      this.#unlink(timer)
      this.#size--
      if (this.#size === 0 && this.#native !== undefined) {
        this.#clock.clearTimeout(this.#native)
        this.#native = undefined
      }
    } else if (timer.slot === FIRING) {
      // Collected for this tick but not yet run: make sure it never runs.
      timer.slot = IDLE
      timer.fn = undefined
    }
  }

  /** Cancel every timer and release the native timer. */
  clear (): void {
    for (let s = 0; s <= this.#mask; s++) {
      let t = this.#heads[s]
      while (t !== undefined) {
        const next = t.next
        t.slot = IDLE
        t.fn = undefined
        t.prev = t.next = undefined
        t = next
      }
      this.#heads[s] = this.#tails[s] = undefined
    }
    for (const t of this.#due) {
      t.slot = IDLE
      t.fn = undefined
    }
    this.#size = 0
    if (this.#native !== undefined) {
      this.#clock.clearTimeout(this.#native)
      this.#native = undefined
    }
  }

  #currentTick (): number {
    return Math.floor((this.#clock.now() - this.#origin) / this.#tickMs)
  }

  #arm (): void {
    // Whole milliseconds, rounded up: Node arms its timer in whole
    // milliseconds, and a fractional delay made it wake the process once
    // more a millisecond early (nothing due yet) on about every other tick.
    const delay = Math.ceil(this.#origin + (this.#processed + 1) * this.#tickMs - this.#clock.now())
    this.#native = this.#clock.setTimeout(this.#onTick, delay > 0 ? delay : 0)
  }

  #tick (): void {
    this.#native = undefined
    const nowTick = this.#currentTick()
    let failure: { error: unknown } | undefined
    this.#ticking = true
    try {
      failure = this.#catchUp(nowTick)
    } finally {
      this.#ticking = false
    }
    if (this.#size > 0 && this.#native === undefined) this.#arm()
    // The wheel is consistent again; now let the first callback error surface.
    if (failure !== undefined) throw failure.error
  }

  #catchUp (nowTick: number): { error: unknown } | undefined {
    let failure: { error: unknown } | undefined
    if (nowTick - this.#processed > this.#mask) {
      // Lagged by more than a rotation: every slot is due. Collect from each
      // slot once and fire in due order (Array#sort is stable, so timers due
      // on the same tick keep their scheduling order).
      this.#processed = nowTick
      for (let s = 0; s <= this.#mask; s++) this.#collect(s, nowTick)
      this.#due.sort((a, b) => a.dueTick - b.dueTick)
      failure = this.#fireCollected()
    } else {
      for (let t = this.#processed + 1; t <= nowTick; t++) {
        this.#processed = t
        this.#collect(t & this.#mask, t)
        if (this.#due.length > 0) failure = this.#fireCollected() ?? failure
      }
    }
    return failure
  }

  /** Move the timers of `slot` due on or before tick `upTo` to the firing list. */
  #collect (slot: number, upTo: number): void {
    let t = this.#heads[slot]
    while (t !== undefined) {
      const next = t.next
      if (t.dueTick <= upTo) {
        this.#unlink(t)
        this.#size--
        t.slot = FIRING
        this.#due.push(t)
      }
      t = next
    }
  }

  /**
   * Fire the collected timers. Collected first, fired second: a callback may
   * cancel or schedule timers (even in the slot being run) without disturbing
   * the walk. A callback that throws does not stop the others; the first
   * error is returned.
   */
  #fireCollected (): { error: unknown } | undefined {
    const due = this.#due
    let failure: { error: unknown } | undefined
    for (let i = 0; i < due.length; i++) {
      const timer = due[i]!
      if (timer.slot !== FIRING) continue
      const fn = timer.fn!
      timer.slot = IDLE
      timer.fn = undefined
      try {
        if (typeof fn === 'function') fn()
        else fn.onWheelTimer()
      } catch (error) {
        failure ??= { error }
      }
    }
    due.length = 0
    return failure
  }

  #link (t: WheelTimer): void {
    const slot = t.dueTick & this.#mask
    t.slot = slot
    const tail = this.#tails[slot]
    t.prev = tail
    t.next = undefined
    if (tail === undefined) this.#heads[slot] = t
    else tail.next = t
    this.#tails[slot] = t
  }

  #unlink (t: WheelTimer): void {
    const slot = t.slot
    if (t.prev === undefined) this.#heads[slot] = t.next
    else t.prev.next = t.next
    if (t.next === undefined) this.#tails[slot] = t.prev
    else t.next.prev = t.prev
    t.prev = t.next = undefined
    t.slot = IDLE
  }
}
