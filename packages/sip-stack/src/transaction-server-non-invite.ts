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
import { ownBytes } from './owned.js'
import { ServerTransaction } from './transaction-server.js'
import type { ServerInviteTransaction } from './transaction-server-invite.js'

/** States of {@link ServerNonInviteTransaction} (RFC 3261 Figure 8). */
export type ServerNonInviteState = 'trying' | 'proceeding' | 'completed' | 'terminated'

/** Inputs of the state machine, named by timer, request or response class from the TU. */
type Input = 'request' | 'tu_1xx' | 'tu_200-699' | 'timer_j' | 'transport_error'

/** The non-INVITE server transaction. Created by the TransactionLayer and handed to `onRequest`. */
export class ServerNonInviteTransaction extends ServerTransaction {
  readonly kind = 'server-non-invite' as const
  /**
   * For a CANCEL: the INVITE server transaction it matches (RFC 3261 §9.2),
   * if any is alive. The TU answers the CANCEL 200 and the INVITE 487 (a
   * UAS), or relays the CANCEL (a proxy, §16.10). Undefined when none
   * matched: a UAS answers 481, a proxy forwards statelessly.
   */
  cancelTarget: ServerInviteTransaction | undefined = undefined
  #state: ServerNonInviteState = 'trying'
  #last: Buffer | undefined = undefined
  #lastStatus = 0
  #bytes: Buffer | undefined = undefined
  #status = 0
  #ok = false
  #error: Error | undefined = undefined

  get state (): ServerNonInviteState {
    return this.#state
  }

  /** The status of the last response sent (0 before any). */
  get lastStatus (): number {
    return this.#lastStatus
  }

  terminate (): void {
    this.#end()
  }

  /** @internal Timer J fired (the layer's FIFO of Completed transactions); ignored once terminated. */
  expire (): boolean {
    if (this.#state !== 'completed') return false
    this.#input('timer_j')
    return true
  }

  /** @internal A retransmitted request. */
  receiveRequest (_request: SipRequest): void {
    this.ctx.counters.retransmissionsReceived++
    this.#input('request')
  }

  protected onResponse (bytes: Buffer, status: number): boolean {
    this.#bytes = bytes
    this.#status = status
    this.#ok = false
    try {
      this.#input(status < 200 ? 'tu_1xx' : 'tu_200-699')
    } finally {
      this.#bytes = undefined
    }
    return this.#ok
  }

  protected timerFired (input: string): void {
    this.#input(input as Input)
  }

  protected onSendFailure (error: Error): void {
    this.#error = error
    this.#input('transport_error')
  }

  #input (input: Input): void {
    switch (this.#state) {
      case 'trying': return this.#trying(input)
      case 'proceeding': return this.#proceeding(input)
      case 'completed': return this.#completed(input)
      case 'terminated': return undefined
    }
  }

  #trying (input: Input): void {
    switch (input) {
      case 'request':
        // §17.2.2: retransmissions in Trying are absorbed; there is nothing to resend.
        return undefined
      case 'tu_1xx':
        this.#state = 'proceeding'
        this.#send()
        return
      default:
        return this.#common(input)
    }
  }

  #proceeding (input: Input): void {
    switch (input) {
      case 'request':
        this.retransmit(this.#last!)
        return
      case 'tu_1xx':
        this.#send()
        return
      default:
        return this.#common(input)
    }
  }

  /** The transitions Trying and Proceeding share. */
  #common (input: Input): void {
    switch (input) {
      case 'tu_200-699':
        this.#state = 'completed'
        // §17.2.2: Timer J absorbs request retransmissions: 64·T1 unreliable, zero reliable.
        if (!this.reliable) this.ctx.timerJ.push(this)
        this.#send()
        if (this.reliable && this.#state === 'completed') this.#end()
        return
      case 'transport_error':
        return this.#transportError()
      default:
        return undefined
    }
  }

  #completed (input: Input): void {
    switch (input) {
      case 'request':
        this.retransmit(this.#last!)
        return
      case 'timer_j':
        this.#end(undefined, true)
        return
      case 'transport_error':
        return this.#transportError()
      default:
        // A response from the TU after the final is refused (onResponse returns false).
        return undefined
    }
  }

  #send (): void {
    const bytes = this.#bytes!
    // A final kept for Timer J is held 32 s: in its own memory, not pinning a shared pool chunk.
    this.#last = this.#state === 'completed' && !this.reliable ? ownBytes(bytes) : bytes
    this.#lastStatus = this.#status
    this.#ok = true
    this.transmit(bytes)
  }

  #transportError (): void {
    const error = this.#error!
    this.#error = undefined
    this.#end(() => { this.handler?.onTransportError?.(error, this) })
  }

  /** Enter Terminated; on the first time, report the cause (if any), then onTerminated. */
  #end (report?: () => void, expired = false): void {
    // Ended before Timer J: the layer's FIFO stops its timer once only such transactions wait.
    if (this.#state === 'completed' && !this.reliable && !expired) this.ctx.timerJ.forget()
    this.#state = 'terminated'
    if (!this.finish()) return
    report?.()
    this.handler?.onTerminated?.(this)
  }
}
