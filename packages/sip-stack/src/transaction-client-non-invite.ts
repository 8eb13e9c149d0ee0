/**
 * The non-INVITE client transaction: RFC 3261 §17.1.2, Figure 6.
 *
 * ```
 *   Trying ──1xx: to TU──► Proceeding ──1xx: to TU──┐
 *     │ Timer E: resend,     │ ◄──────────────────────┘
 *     │ E = min(2E, T2)      │ Timer E: resend, E = T2   (unreliable only)
 *     ├─200-699: to TU ─────►└─200-699: to TU──► Completed ──Timer K──► Terminated
 *     └─Timer F / transport error: inform TU (also from Proceeding) ────► Terminated
 * ```
 */
import type { SipResponse } from '@sipd/sip-parser'
import { ClientTransaction } from './transaction-client.js'

/** States of {@link ClientNonInviteTransaction} (RFC 3261 Figure 6). */
export type ClientNonInviteState = 'trying' | 'proceeding' | 'completed' | 'terminated'

/** Inputs of the state machine, named by timer or response class. */
type Input = 'timer_e' | 'timer_f' | 'timer_k' | '1xx' | '200-699' | 'transport_error'

/** The non-INVITE client transaction. Created by `TransactionLayer.createClient`. */
export class ClientNonInviteTransaction extends ClientTransaction {
  /** On the prototype: no slot per transaction (each is held for Timer K, L or M). */
  get kind (): 'client-non-invite' { return 'client-non-invite' }
  #state: ClientNonInviteState = 'trying'
  /** Current Timer E interval (§17.1.2.2). */
  #intervalE = 0
  #response: SipResponse | undefined = undefined
  #error: Error | undefined = undefined

  get state (): ClientNonInviteState {
    return this.#state
  }

  start (): void {
    this.transmit(this.bytes)
    if (this.#state !== 'trying') return // the send failed at once
    // §17.1.2.2: Timer E only over unreliable transports; Timer F always.
    if (!this.reliable) {
      this.#intervalE = this.ctx.timers.t1
      this.startRetransmitTimer('timer_e', this.#intervalE)
    }
    this.startLongTimer('timer_f', this.ctx.timers.timeout)
  }

  receiveResponse (response: SipResponse): void {
    this.#response = response
    try {
      this.#input(response.status < 200 ? '1xx' : '200-699')
    } finally {
      this.#response = undefined
    }
  }

  terminate (): void {
    this.#end()
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
      case 'timer_e':
        // §17.1.2.2: double the interval, capped at T2.
        this.retransmit(this.bytes)
        this.#intervalE = Math.min(2 * this.#intervalE, this.ctx.timers.t2)
        this.startRetransmitTimer('timer_e', this.#intervalE)
        return
      case '1xx':
        // The running Timer E keeps its interval; from its next firing it is T2.
        this.#state = 'proceeding'
        this.handler.onProvisional?.(this.#response!, this)
        return
      default:
        return this.#common(input)
    }
  }

  #proceeding (input: Input): void {
    switch (input) {
      case 'timer_e':
        // §17.1.2.2: in Proceeding the request is retransmitted every T2.
        this.retransmit(this.bytes)
        this.#intervalE = this.ctx.timers.t2
        this.startRetransmitTimer('timer_e', this.#intervalE)
        return
      case '1xx':
        this.handler.onProvisional?.(this.#response!, this)
        return
      default:
        return this.#common(input)
    }
  }

  /** The transitions Trying and Proceeding share. */
  #common (input: Input): void {
    switch (input) {
      case '200-699': {
        this.stopRetransmitTimer()
        this.stopLongTimer()
        this.#state = 'completed'
        const response = this.#response!
        // §17.1.2.2: Timer K absorbs retransmitted finals: T4 unreliable, zero reliable.
        if (this.reliable) {
          this.#end(() => { this.handler.onFinal(response, this) })
          return
        }
        this.startFinalWait('timer_k', this.ctx.t4Queue)
        this.handler.onFinal(response, this)
        // Retransmitted finals are absorbed and nothing is sent: only Timer K's end is left to report.
        if (this.#state === 'completed') this.settleHandler()
        return
      }
      case 'timer_f':
        this.ctx.counters.timeouts++
        this.#end(() => { this.handler.onTimeout(this) })
        return
      case 'transport_error': {
        const error = this.#error!
        this.#error = undefined
        this.#end(() => { this.handler.onTransportError(error, this) })
        return
      }
      default:
        return undefined
    }
  }

  #completed (input: Input): void {
    switch (input) {
      case '200-699':
        // A retransmitted final: absorbed.
        this.ctx.counters.retransmissionsReceived++
        return
      case 'timer_k':
        this.#end()
        return
      default:
        return undefined
    }
  }

  /** Enter Terminated; on the first time, report the cause (if any), then onTerminated. */
  #end (report?: () => void): void {
    this.#state = 'terminated'
    if (!this.finish()) return
    report?.()
    this.handler.onTerminated?.(this)
  }
}
