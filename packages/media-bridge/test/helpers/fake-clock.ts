import type { Clock } from '../../src/clock.js'

interface Timer {
  id: number
  at: number
  fn: () => void
}

/** A manual clock: time moves only through advance(), timers fire in time order. */
export class FakeClock implements Clock {
  #now: number
  #nextId = 1
  #timers: Timer[] = []

  constructor (start = 1_000_000) {
    this.#now = start
  }

  now (): number {
    return this.#now
  }

  setTimeout (fn: () => void, ms: number): unknown {
    const timer = { id: this.#nextId++, at: this.#now + ms, fn }
    this.#timers.push(timer)
    return timer.id
  }

  clearTimeout (handle: unknown): void {
    this.#timers = this.#timers.filter((t) => t.id !== handle)
  }

  /** Timers scheduled and not yet fired or cleared. */
  get pending (): number {
    return this.#timers.length
  }

  /** Move time forward by `ms`, firing due timers in order; awaits microtasks between timers. */
  async advance (ms: number): Promise<void> {
    const end = this.#now + ms
    for (;;) {
      await flush()
      let next: Timer | undefined
      for (const t of this.#timers) if (t.at <= end && (next === undefined || t.at < next.at)) next = t
      if (next === undefined) break
      this.#timers = this.#timers.filter((t) => t !== next)
      this.#now = next.at
      next.fn()
    }
    this.#now = end
    await flush()
  }
}

/** Let pending promise callbacks run. */
export async function flush (): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve))
}
