/**
 * A FIFO of items that all expire the same fixed delay after they were
 * added: the final waits of the transactions, each a constant per layer
 * (Timers J, L and M: 64·T1, RFC 3261 §17.2.2, RFC 6026; Timers I and K:
 * T4 over unreliable transports, RFC 3261 §17.2.1, §17.1.2.2). Since the delay is constant, items
 * expire in the order they were added, so a ring of items and due times and
 * one native timer for the oldest replace a wheel entry and a closure per
 * item: at 16,000 REGISTER/s some 58,000 transactions wait out Timer J, and
 * those were about 160 B of each one's heap.
 *
 * An item is never early; it may be up to {@link EXPIRY_BATCH_MS} late (1/32
 * of the delay when that is less), so
 * that one native timer serves a batch (as the wheel's 100 ms tick did).
 * There is no cancel: an item that ends early says so ({@link ExpiryQueue.forget})
 * and ignores its expiry; once only such items wait (after a forget or an
 * expiry), the queue is emptied and its timer stopped.
 */
import type { Clock, TimerHandle } from './clock.js'

/** An item of an {@link ExpiryQueue}. */
export interface Expirable {
  /** The delay has passed: returns false when the item had already ended (see {@link ExpiryQueue.forget}). */
  expire(): boolean
}

/** How late an expiry may be so that one native timer serves those due meanwhile. */
export const EXPIRY_BATCH_MS = 100

/** @internal A FIFO of items expiring `delayMs` after {@link push}. */
export class ExpiryQueue<T extends Expirable> {
  readonly #clock: Clock
  readonly #delay: number
  /** The least wait of the native timer: {@link EXPIRY_BATCH_MS}, less for a short delay. */
  readonly #batch: number
  /** Ring of items and their due times; `#head` is the oldest, `#count` live. */
  #items: Array<T | undefined> = new Array<T | undefined>(64).fill(undefined)
  #due: Float64Array = new Float64Array(64)
  #head = 0
  #count = 0
  /** Items waiting that ended early. */
  #dead = 0
  #timer: TimerHandle | undefined = undefined
  readonly #onTimer = (): void => { this.#fire() }

  constructor (clock: Clock, delayMs: number) {
    this.#clock = clock
    this.#delay = delayMs
    this.#batch = Math.min(EXPIRY_BATCH_MS, delayMs / 32)
  }

  /** Items waiting. */
  get size (): number {
    return this.#count
  }

  /** Expire `item` after the queue's delay. */
  push (item: T): void {
    if (this.#count === this.#items.length) this.#grow()
    const at = (this.#head + this.#count) & (this.#items.length - 1)
    this.#items[at] = item
    this.#due[at] = this.#clock.now() + this.#delay
    this.#count++
    if (this.#timer === undefined) this.#arm()
  }

  /** An item waiting in the queue ended early: once no live item waits, the timer stops. */
  forget (): void {
    if (++this.#dead >= this.#count) this.clear()
  }

  /** Drop every item without expiring it and stop the timer (shutdown). */
  clear (): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer)
    this.#timer = undefined
    this.#items.fill(undefined)
    this.#head = 0
    this.#count = 0
    this.#dead = 0
  }

  #grow (): void {
    const n = this.#items.length
    const items = new Array<T | undefined>(2 * n).fill(undefined)
    const due = new Float64Array(2 * n)
    for (let i = 0; i < n; i++) {
      const from = (this.#head + i) & (n - 1)
      items[i] = this.#items[from]
      due[i] = this.#due[from]!
    }
    this.#items = items
    this.#due = due
    this.#head = 0
  }

  #arm (): void {
    const wait = this.#due[this.#head]! - this.#clock.now()
    this.#timer = this.#clock.setTimeout(this.#onTimer, Math.max(wait, this.#batch))
  }

  #fire (): void {
    this.#timer = undefined
    const now = this.#clock.now()
    // An expiry may push (and grow the ring, or arm the timer) or clear: nothing is cached across it.
    while (this.#count > 0) {
      const at = this.#head
      if (this.#due[at]! > now) break
      const item = this.#items[at]!
      this.#items[at] = undefined
      this.#head = (at + 1) & (this.#items.length - 1)
      this.#count--
      let live = true
      try {
        live = item.expire()
      } catch {
        // One item's expiry must not stop the others'.
      }
      if (!live) this.#dead--
    }
    // Only items that ended early wait: no timer for them.
    if (this.#count > 0 && this.#count === this.#dead) this.clear()
    if (this.#count > 0 && this.#timer === undefined) this.#arm()
  }
}
