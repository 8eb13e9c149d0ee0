/**
 * What the four transaction state machines share: their link to the layer
 * (clock, timer wheel, timer values, counters, the send function), the two
 * timer slots every RFC 3261 transaction needs at most (one retransmission
 * timer on the clock, one long timer on the wheel) and sending with
 * transport-error reporting.
 */
import type { Clock, TimerHandle } from './clock.js'
import type { Expirable, ExpiryQueue } from './expiry-queue.js'
import type { TimerWheel, WheelTimer } from './timer-wheel.js'
import type { CompletedNonInvite, ServerNonInviteTransaction } from './transaction-server-non-invite.js'
import type { ResolvedTimers } from './transaction-timers.js'
import type { SendResult, SendTarget } from './transport-types.js'

/**
 * What the layer's `send` may return: nothing (fire and forget), a
 * `SendResult`, or a promise of one. A failed result (or a thrown error, or a
 * rejected promise) is the "transport error" input of the state machines.
 */
export type SendOutcome = SendResult | Promise<SendResult> | undefined | void

/** Sends bytes to a target; in sipd, `TransportLayer.send`. */
export type SendFunction = (bytes: Buffer, target: SendTarget) => SendOutcome

/** The four RFC 3261 §17 transaction kinds. */
export type TransactionKind = 'client-invite' | 'client-non-invite' | 'server-invite' | 'server-non-invite'

/** Running totals kept by a transaction layer (read them in a metrics `collect()`). */
export interface TransactionCounters {
  /** Requests matched to a server transaction and absorbed or answered from it, and responses absorbed by a client transaction. */
  retransmissionsReceived: number
  /** Requests and responses sent again: Timers A, E, G, and answers to retransmissions (incl. ACKs). */
  retransmissionsSent: number
  /** Timers B, F (client) and H (server) that fired. */
  timeouts: number
  /** Transport errors reported to a transaction. */
  transportErrors: number
  /** Requests answered 482 as merged requests (RFC 3261 §8.2.2.2). */
  mergedRequests: number
  /** Responses that matched no client transaction. */
  strayResponses: number
  /** ACKs that matched no INVITE server transaction, or passed through one in Accepted. */
  strayAcks: number
  /** Messages dropped because a field needed for matching is missing or malformed. */
  malformed: number
  /** Transactions created, by kind. */
  created: Record<TransactionKind, number>
  /** Transactions alive now, by kind. */
  active: Record<TransactionKind, number>
}

/** A zeroed {@link TransactionCounters}. */
export function newTransactionCounters (): TransactionCounters {
  return {
    retransmissionsReceived: 0,
    retransmissionsSent: 0,
    timeouts: 0,
    transportErrors: 0,
    mergedRequests: 0,
    strayResponses: 0,
    strayAcks: 0,
    malformed: 0,
    created: { 'client-invite': 0, 'client-non-invite': 0, 'server-invite': 0, 'server-non-invite': 0 },
    active: { 'client-invite': 0, 'client-non-invite': 0, 'server-invite': 0, 'server-non-invite': 0 }
  }
}

/** @internal What a transaction needs from its layer. */
export interface TransactionContext {
  readonly clock: Clock
  readonly wheel: TimerWheel
  readonly timers: ResolvedTimers
  readonly counters: TransactionCounters
  readonly send: SendFunction
  /**
   * The last wait of a state machine that lasts 64·T1 for every transaction
   * (Timers J, L and M): one FIFO of the layer, no wheel entry and closure each.
   */
  readonly timeoutQueue: ExpiryQueue<Expirable>
  /** The same for the waits of T4 (Timers I and K over unreliable transports). */
  readonly t4Queue: ExpiryQueue<Expirable>
  /** Called once when a transaction (or what is left of it in Completed) reaches Terminated: remove it from the maps. */
  terminated(tx: Transaction | CompletedNonInvite): void
  /** A non-INVITE server transaction left its Completed state to `record`: the maps hold the record instead. */
  replaced(tx: ServerNonInviteTransaction, record: CompletedNonInvite): void
}

function isPromise (x: unknown): x is Promise<SendResult> {
  return typeof x === 'object' && x !== null && typeof (x as { then?: unknown }).then === 'function'
}

/** Base of the four transaction state machines. */
export abstract class Transaction {
  /** Which of the four RFC 3261 §17 state machines this is. */
  abstract readonly kind: TransactionKind
  /** The current state, named as in the RFC figures (lower case). */
  abstract get state (): string
  /** The key the layer matches messages to this transaction by. */
  readonly key: string
  /**
   * True over a reliable transport (TCP): no retransmissions, and Timers D,
   * I, J, K are zero (RFC 3261 §17.1.1.2, §17.1.2.2, §17.2.1, §17.2.2).
   */
  readonly reliable: boolean
  /** @internal */
  protected readonly ctx: TransactionContext
  /** Undefined when it is where the request came from: see {@link sourceTarget}. */
  #target: SendTarget | undefined
  #short: TimerHandle | undefined = undefined
  #long: WheelTimer | undefined = undefined
  #shortInput = ''
  #longInput = ''
  #fireShort: (() => void) | undefined = undefined
  /** The layer's FIFO this transaction waits in (see {@link startFinalWait}), until it expires or ends. */
  #queue: ExpiryQueue<Expirable> | undefined = undefined
  #terminated = false

  /** @internal */
  constructor (ctx: TransactionContext, key: string, target: SendTarget | undefined, reliable: boolean) {
    this.ctx = ctx
    this.key = key
    this.#target = target
    this.reliable = reliable
  }

  /** Where this transaction sends: the next hop (client) or the response destination (server). */
  get target (): Readonly<SendTarget> {
    return this.#target ?? this.sourceTarget()
  }

  /**
   * @internal The target when none was given: a server transaction answering
   * where the request came from (the usual UDP request with rport) makes it
   * from its source when it sends, rather than hold a copy of the source for
   * Timer J's 32 s.
   */
  protected sourceTarget (): SendTarget {
    throw new TypeError('a transaction without a target')
  }

  /** True once the transaction reached Terminated. */
  get terminated (): boolean {
    return this.#terminated
  }

  /** The "transport error" input of the state machine. */
  protected abstract onSendFailure (error: Error): void

  /**
   * A timer of this transaction fired: the state machine's input named when
   * it was started (`timer_a`, `timer_b`...).
   */
  protected abstract timerFired (input: string): void

  /**
   * Start the retransmission timer (A, E or G) on the clock, replacing a
   * running one; `input` goes to {@link timerFired}. The callbacks handed to
   * the clock and the wheel are made once per transaction and capture nothing
   * but it: a closure per start cost allocations, and one made where a
   * response was in scope kept that response alive until the timer fired.
   */
  protected startRetransmitTimer (input: string, ms: number): void {
    if (this.#short !== undefined) this.ctx.clock.clearTimeout(this.#short)
    this.#shortInput = input
    this.#short = this.ctx.clock.setTimeout(this.#fireShort ??= () => {
      this.#short = undefined
      this.timerFired(this.#shortInput)
    }, ms)
  }

  /** Stop the retransmission timer, if running. */
  protected stopRetransmitTimer (): void {
    if (this.#short !== undefined) {
      this.ctx.clock.clearTimeout(this.#short)
      this.#short = undefined
    }
    // Not kept once stopped (an INVITE client's Timer A stops at its first
    // response, the transaction lives on for Timer M): 96 B a call held 32 s.
    this.#fireShort = undefined
  }

  /**
   * Start the long timer (B, D, F, H; the final waits have the layer's
   * FIFOs, see {@link startFinalWait}) on the wheel, replacing a running
   * one; `input` goes to {@link timerFired}. The wheel calls the
   * transaction itself ({@link onWheelTimer}): no closure is made or held.
   */
  protected startLongTimer (input: string, ms: number): void {
    if (this.#long !== undefined) this.ctx.wheel.cancel(this.#long)
    this.#longInput = input
    this.#long = this.ctx.wheel.schedule(this, ms)
  }

  /** @internal The long timer fired (WheelCallback). */
  onWheelTimer (): void {
    this.#long = undefined
    this.timerFired(this.#longInput)
  }

  /**
   * Start the wait that ends the state machine (Timer I, J, K, L or M) on
   * one of the layer's FIFOs (`timeoutQueue` or `t4Queue`): every entry of a
   * FIFO waits the same delay, so it needs no wheel entry or closure. Such a
   * wait is never restarted nor stopped, only left when the transaction ends
   * first; `input` goes to {@link timerFired}.
   */
  protected startFinalWait (input: string, queue: ExpiryQueue<Expirable>): void {
    this.#longInput = input
    this.#queue = queue
    queue.push(this)
  }

  /** @internal The FIFO's delay passed: the final wait's input; false when the transaction ended first. */
  expire (): boolean {
    if (this.#queue === undefined) return false
    this.#queue = undefined
    this.timerFired(this.#longInput)
    return true
  }

  /** Stop the long timer, if running. */
  protected stopLongTimer (): void {
    if (this.#long !== undefined) {
      this.ctx.wheel.cancel(this.#long)
      this.#long = undefined
    }
  }

  /**
   * Hand bytes to the transport. A failure, synchronous or not, comes back
   * as {@link onSendFailure}; the first success over TCP pins the flow so
   * that later messages of this transaction (an ACK, a retransmitted final
   * response) use the same connection.
   */
  protected transmit (bytes: Buffer): void {
    let outcome: SendOutcome
    try {
      outcome = this.ctx.send(bytes, this.#target ?? this.sourceTarget())
    } catch (error) {
      this.#failed(error)
      return
    }
    if (outcome === undefined) return
    if (isPromise(outcome)) {
      outcome.then(result => { this.#sent(result) }, error => { this.#failed(error) })
    } else {
      this.#sent(outcome)
    }
  }

  /** {@link transmit} for a retransmission: also counted. */
  protected retransmit (bytes: Buffer): void {
    this.ctx.counters.retransmissionsSent++
    this.transmit(bytes)
  }

  #sent (result: SendResult): void {
    if (!result.ok) {
      this.#failed(result.error)
    } else if (this.#target !== undefined && this.#target.flowId === undefined && this.reliable) {
      this.#target = { ...this.#target, flowId: result.flowId }
    }
  }

  #failed (error: unknown): void {
    if (this.#terminated) return
    this.ctx.counters.transportErrors++
    this.onSendFailure(error instanceof Error ? error : new Error(String(error)))
  }

  /**
   * Enter Terminated: stop both timers and leave the layer's maps. Returns
   * false when already terminated, so callers report to the TU only once.
   */
  protected finish (): boolean {
    if (this.#terminated) return false
    this.#terminated = true
    this.stopRetransmitTimer()
    this.stopLongTimer()
    if (this.#queue !== undefined) {
      // Ended before its final wait did: the FIFO stops its timer once only such transactions wait.
      this.#queue.forget()
      this.#queue = undefined
    }
    this.ctx.terminated(this)
    return true
  }
}
