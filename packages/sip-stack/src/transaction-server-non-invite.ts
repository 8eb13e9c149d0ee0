/**
 * The non-INVITE server transaction: RFC 3261 §17.2.2, Figure 8.
 *
 * ```
 *   Trying ──1xx from TU: send──► Proceeding ──1xx from TU: send──┐
 *     │ request: absorbed           │ ◄─────────────────────────────┘
 *     │                             │ request: resend last provisional
 *     ├─200-699 from TU: send──────►└─200-699 from TU: send──► Completed ──Timer J──► Terminated
 *     │                                                          request: resend final
 *     └─transport error: inform TU (also from Proceeding, Completed) ──► Terminated
 * ```
 *
 * A CANCEL is a non-INVITE transaction of its own (RFC 3261 §9.2); the layer
 * sets {@link ServerNonInviteTransaction.cancelTarget} to the INVITE it
 * cancels, found by the same matching rules.
 */
import type { SipRequest } from '@sipd/sip-parser'
import type { Expirable } from './expiry-queue.js'
import { keepBytes, keptBytes, keptLength, keptOffset } from './owned.js'
import type { SendOutcome, TransactionContext } from './transaction-base.js'
import { ServerTransaction } from './transaction-server.js'
import type { ServerInviteTransaction } from './transaction-server-invite.js'

/** States of {@link ServerNonInviteTransaction} (RFC 3261 Figure 8). */
export type ServerNonInviteState = 'trying' | 'proceeding' | 'completed' | 'terminated'

/** Inputs of the state machine, named by timer, request or response class from the TU. */
type Input = 'request' | 'tu_1xx' | 'tu_200-699' | 'timer_j' | 'transport_error'

/** The non-INVITE server transaction. Created by the TransactionLayer and handed to `onRequest`. */
export class ServerNonInviteTransaction extends ServerTransaction {
  /**
   * For a CANCEL: the INVITE server transaction it matches (RFC 3261 §9.2),
   * if any is alive. The TU answers the CANCEL 200 and the INVITE 487 (a
   * UAS), or relays the CANCEL (a proxy, §16.10). Undefined when none
   * matched: a UAS answers 481, a proxy forwards statelessly.
   */
  cancelTarget: ServerInviteTransaction | undefined = undefined
  #state: ServerNonInviteState = 'trying'
  /**
   * The last response sent, to resend. A final kept for Timer J is the arena
   * it was copied into, with {@link #lastAt} saying where: tens of thousands
   * wait out Timer J, and a Buffer object per final was 96 B of each.
   */
  #last: Buffer | undefined = undefined
  /** Where in {@link #last} the response is (see `keepBytes`); -1: all of it. */
  #lastAt = -1
  #lastStatus = 0
  /** Set once Completed is left to a {@link CompletedNonInvite} (see #complete): it says the state from then on. */
  #record: CompletedNonInvite | undefined = undefined

  // A getter, not a field: one field less on every transaction.
  get kind (): 'server-non-invite' {
    return 'server-non-invite'
  }

  get state (): ServerNonInviteState {
    const r = this.#record
    return r === undefined ? this.#state : r.terminated ? 'terminated' : 'completed'
  }

  override get terminated (): boolean {
    const r = this.#record
    return r === undefined ? super.terminated : r.terminated
  }

  /** The status of the last response sent (0 before any). */
  get lastStatus (): number {
    return this.#lastStatus
  }

  terminate (): void {
    if (this.#record !== undefined) this.#record.terminate()
    else this.#end()
  }

  /** @internal A retransmitted request. */
  receiveRequest (_request: SipRequest): void {
    this.ctx.counters.retransmissionsReceived++
    this.#input('request')
  }

  protected onResponse (bytes: Buffer, status: number): boolean {
    return this.#input(status < 200 ? 'tu_1xx' : 'tu_200-699', bytes, status)
  }

  protected timerFired (input: string): void {
    this.#input(input as Input)
  }

  protected onSendFailure (error: Error): void {
    // A late failure of the final's send once the record holds Completed: no TU to tell (see #complete).
    if (this.#record !== undefined) this.#record.fail()
    else this.#input('transport_error', undefined, 0, error)
  }

  /**
   * One input; a response from the TU comes with its bytes and status, a
   * transport error with the error (arguments, not fields: they are needed
   * only during the call). Returns true when a response from the TU was sent.
   */
  #input (input: Input, bytes?: Buffer, status = 0, error?: Error): boolean {
    switch (this.#state) {
      case 'trying': return this.#trying(input, bytes, status, error)
      case 'proceeding': return this.#proceeding(input, bytes, status, error)
      case 'completed': return this.#completed(input, error)
      case 'terminated': return false
    }
  }

  #trying (input: Input, bytes: Buffer | undefined, status: number, error: Error | undefined): boolean {
    switch (input) {
      case 'request':
        // §17.2.2: retransmissions in Trying are absorbed; there is nothing to resend.
        return false
      case 'tu_1xx':
        this.#state = 'proceeding'
        this.#send(bytes!, status)
        return true
      default:
        return this.#common(input, bytes, status, error)
    }
  }

  #proceeding (input: Input, bytes: Buffer | undefined, status: number, error: Error | undefined): boolean {
    switch (input) {
      case 'request':
        this.#resend()
        return false
      case 'tu_1xx':
        this.#send(bytes!, status)
        return true
      default:
        return this.#common(input, bytes, status, error)
    }
  }

  /** The transitions Trying and Proceeding share. */
  #common (input: Input, bytes: Buffer | undefined, status: number, error: Error | undefined): boolean {
    switch (input) {
      case 'tu_200-699':
        this.#state = 'completed'
        if (!this.reliable && this.handler === undefined) {
          this.#send(bytes!, status)
          // Not ended by a synchronous send failure: Completed goes to a record of its own.
          if (this.#state === 'completed') this.#complete()
          return true
        }
        // §17.2.2: Timer J absorbs request retransmissions: 64·T1 unreliable, zero reliable.
        if (!this.reliable) this.startFinalWait('timer_j', this.ctx.timeoutQueue)
        this.#send(bytes!, status)
        if (this.reliable && this.#state === 'completed') this.#end()
        return true
      case 'transport_error':
        this.#transportError(error!)
        return false
      default:
        return false
    }
  }

  #completed (input: Input, error: Error | undefined): boolean {
    switch (input) {
      case 'request':
        this.#resend()
        return false
      case 'timer_j':
        this.#end()
        return false
      case 'transport_error':
        this.#transportError(error!)
        return false
      default:
        // A response from the TU after the final is refused (onResponse returns false).
        return false
    }
  }

  #send (bytes: Buffer, status: number): void {
    if (this.#state === 'completed' && !this.reliable) {
      // A final kept for Timer J is held 32 s: in an arena of finals, not pinning a shared pool chunk.
      this.#lastAt = keepBytes(bytes)
      this.#last = keptBytes()
    } else {
      this.#last = bytes
      this.#lastAt = -1
    }
    this.#lastStatus = status
    this.transmit(bytes)
  }

  /** Send the last response again: a Buffer over the arena is made only now, for the rare retransmission. */
  #resend (): void {
    const at = this.#lastAt
    const last = this.#last!
    this.retransmit(at < 0 ? last : last.subarray(keptOffset(at), keptOffset(at) + keptLength(at)))
  }

  /**
   * RFC 3261 §17.2.2: in Completed over an unreliable transport a non-INVITE
   * only resends its final to retransmissions until Timer J (32 s). With no
   * TU callback to call at its end, that is left to a record of the key, the
   * final and where to send it, which takes this transaction's place in the
   * layer's maps and waits out Timer J: the transaction (its fields, source
   * and tags) is then garbage unless the TU keeps it; its state reads the
   * record's. At 16,000 REGISTER/s over 500,000 such waits are held.
   */
  #complete (): void {
    const r = new CompletedNonInvite(this.ctx, this, this.#last!, this.#lastAt)
    this.#record = r
    this.#last = undefined
    this.ctx.replaced(this, r)
    this.ctx.timeoutQueue.push(r)
  }

  #transportError (error: Error): void {
    this.#end(() => { this.handler?.onTransportError?.(error, this) })
  }

  /** Enter Terminated; on the first time, report the cause (if any), then onTerminated. */
  #end (report?: () => void): void {
    this.#state = 'terminated'
    if (!this.finish()) return
    report?.()
    this.handler?.onTerminated?.(this)
  }
}

/**
 * @internal What is left of a non-INVITE server transaction in Completed
 * over UDP (see ServerNonInviteTransaction#complete): enough to match a
 * retransmission (RFC 3261 §17.2.3: branch, sent-by, method), answer it with
 * the final (§17.2.2) and leave the layer's maps at Timer J or on a transport
 * error. It refers to nothing of the transaction but the strings it shares.
 */
export class CompletedNonInvite implements Expirable {
  readonly key: string
  readonly method: string
  /** As the transaction's (the layer keys by branch alone when set). */
  readonly sentByHost: string | undefined
  readonly sentByPort: number | undefined
  /** As the transaction's: the layer's merged-request entry, if any, now maps to the record. */
  readonly mergedKey: string | undefined
  readonly #ctx: TransactionContext
  /**
   * Where the final goes over UDP (the transaction's target, or its source):
   * three fields, not a target object held 32 s; one is made per retransmission.
   */
  readonly #address: string
  readonly #port: number
  readonly #flowId: string | undefined
  /** The final: an arena and a position in it (see `keepBytes`), or a buffer of its own when the position is -1. */
  readonly #bytes: Buffer
  readonly #at: number
  #ended = false

  constructor (ctx: TransactionContext, tx: ServerNonInviteTransaction, bytes: Buffer, at: number) {
    this.#ctx = ctx
    this.key = tx.key
    this.method = tx.method
    this.sentByHost = tx.sentByHost
    this.sentByPort = tx.sentByPort
    this.mergedKey = tx.mergedKey
    const to = tx.target
    this.#address = to.address
    this.#port = to.port
    this.#flowId = to.flowId
    this.#bytes = bytes
    this.#at = at
  }

  get kind (): 'server-non-invite' {
    return 'server-non-invite'
  }

  /** True once Timer J fired or it ended early. */
  get terminated (): boolean {
    return this.#ended
  }

  /** A retransmission of the request: the final again. */
  receiveRequest (_request: SipRequest): void {
    const counters = this.#ctx.counters
    counters.retransmissionsReceived++
    counters.retransmissionsSent++
    const at = this.#at
    const bytes = at < 0 ? this.#bytes : this.#bytes.subarray(keptOffset(at), keptOffset(at) + keptLength(at))
    let outcome: SendOutcome
    try {
      outcome = this.#ctx.send(bytes, { transport: 'udp', address: this.#address, port: this.#port, flowId: this.#flowId })
    } catch {
      this.fail()
      return
    }
    if (outcome === undefined) return
    if (outcome instanceof Promise) outcome.then(r => { if (!r.ok) this.fail() }, () => { this.fail() })
    else if (!outcome.ok) this.fail()
  }

  /** A transport error (§17.2.4): Terminated, counted; there is no TU to inform. */
  fail (): void {
    if (this.#ended) return
    this.#ctx.counters.transportErrors++
    this.terminate()
  }

  /** Terminated before Timer J (shutdown, a transport error): leaves the maps; the queue skips it. */
  terminate (): void {
    if (this.#ended) return
    this.#ended = true
    this.#ctx.timeoutQueue.forget()
    this.#ctx.terminated(this)
  }

  /** @internal Timer J (ExpiryQueue). */
  expire (): boolean {
    if (this.#ended) return false
    this.#ended = true
    this.#ctx.terminated(this)
    return true
  }
}
