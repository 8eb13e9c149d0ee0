/**
 * The INVITE server transaction: RFC 3261 §17.2.1, Figure 7, as updated by
 * RFC 6026 §7.1 (the Accepted state and Timer L).
 *
 * ```
 *   Proceeding ──1xx from TU: send──┐   INVITE: resend last provisional
 *     │ ◄─────────────────────────────┘
 *     ├─300-699 from TU: send──► Completed ──ACK──► Confirmed ──Timer I──► Terminated
 *     │                           │ Timer G: resend final (unreliable), G = min(2G, T2)
 *     │                           │ INVITE: resend final
 *     │                           └─Timer H / transport error: inform TU ──► Terminated
 *     ├─2xx from TU: send──► Accepted ──Timer L──► Terminated
 *     │                        2xx from TU: send; ACK: to TU; INVITE: absorbed
 *     └─transport error: inform TU ──► Terminated
 * ```
 *
 * 100 Trying: §17.2.1 asks for it when the TU will not answer within 200 ms.
 * sipd sends it at once when the transaction is created (the layer's
 * `sendTrying` option): a proxy cannot know how long the next hop takes, and
 * an immediate 100 stops the client's Timer A retransmissions soonest.
 */
import type { SipRequest } from '@sipd/sip-parser'
import { ServerTransaction } from './transaction-server.js'

/** States of {@link ServerInviteTransaction} (RFC 3261 Figure 7, RFC 6026 Figure 7). */
export type ServerInviteState = 'proceeding' | 'completed' | 'confirmed' | 'accepted' | 'terminated'

/** Inputs of the state machine, named by timer, request or response class from the TU. */
type Input = 'invite' | 'ack' | 'tu_1xx' | 'tu_2xx' | 'tu_300-699' | 'timer_g' | 'timer_h' | 'timer_i' | 'timer_l' | 'transport_error'

/** The INVITE server transaction. Created by the TransactionLayer and handed to `onRequest`. */
export class ServerInviteTransaction extends ServerTransaction {
  /** On the prototype: no slot per transaction (each is held for Timer K, L or M). */
  get kind (): 'server-invite' { return 'server-invite' }
  #state: ServerInviteState = 'proceeding'
  /** The last response sent: resent for a retransmitted INVITE in Proceeding and Completed. */
  #last: Buffer | undefined = undefined
  /** The last status sent, 0 before any. */
  #lastStatus = 0
  #intervalG = 0
  /** The input's bytes (TU responses) and outcome. */
  #bytes: Buffer | undefined = undefined
  #status = 0
  #ok = false
  #error: Error | undefined = undefined

  get state (): ServerInviteState {
    return this.#state
  }

  /** The status of the last response sent (0 before any): lets a TU see whether a final was sent. */
  get lastStatus (): number {
    return this.#lastStatus
  }

  terminate (): void {
    this.#end()
  }

  /** @internal A retransmitted INVITE. */
  receiveRequest (_request: SipRequest): void {
    this.ctx.counters.retransmissionsReceived++
    this.#input('invite')
  }

  /**
   * @internal An ACK matched to this transaction. Returns true when it is
   * for the TU (RFC 6026 §7.1: in Accepted the ACK for the 2xx goes to the TU).
   */
  receiveAck (): boolean {
    this.#ok = false
    this.#input('ack')
    return this.#ok
  }

  protected onResponse (bytes: Buffer, status: number): boolean {
    this.#bytes = bytes
    this.#status = status
    this.#ok = false
    try {
      this.#input(status < 200 ? 'tu_1xx' : status < 300 ? 'tu_2xx' : 'tu_300-699')
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
      case 'proceeding': return this.#proceeding(input)
      case 'completed': return this.#completed(input)
      case 'confirmed': return this.#confirmed(input)
      case 'accepted': return this.#acceptedState(input)
      case 'terminated': return undefined
    }
  }

  #proceeding (input: Input): void {
    switch (input) {
      case 'invite':
        // §17.2.1: a retransmitted INVITE gets the most recent provisional again.
        if (this.#last !== undefined) this.retransmit(this.#last)
        return
      case 'tu_1xx':
        this.#send()
        return
      case 'tu_2xx':
        // RFC 6026 §7.1: stay to absorb INVITE retransmissions; Timer L = 64·T1.
        this.#state = 'accepted'
        this.startFinalWait('timer_l', this.ctx.timeoutQueue)
        this.#send()
        return
      case 'tu_300-699':
        this.#state = 'completed'
        // §17.2.1: Timer G only over unreliable transports; Timer H always.
        if (!this.reliable) {
          this.#intervalG = this.ctx.timers.t1
          this.startRetransmitTimer('timer_g', this.#intervalG)
        }
        this.startLongTimer('timer_h', this.ctx.timers.timeout)
        this.#send()
        return
      case 'transport_error':
        return this.#transportError()
      default:
        // An ACK before any final response matches nothing meaningful: absorbed.
        return undefined
    }
  }

  #completed (input: Input): void {
    switch (input) {
      case 'invite':
        this.retransmit(this.#last!)
        return
      case 'ack':
        // §17.2.1: Timer I absorbs ACK retransmissions: T4 unreliable, zero reliable.
        this.stopRetransmitTimer()
        this.stopLongTimer()
        this.#state = 'confirmed'
        // Confirmed only absorbs ACKs: the final is never sent again.
        this.#last = undefined
        if (this.reliable) this.#end()
        else this.startFinalWait('timer_i', this.ctx.t4Queue)
        return
      case 'timer_g':
        this.retransmit(this.#last!)
        this.#intervalG = Math.min(2 * this.#intervalG, this.ctx.timers.t2)
        this.startRetransmitTimer('timer_g', this.#intervalG)
        return
      case 'timer_h':
        this.ctx.counters.timeouts++
        this.#end(() => { this.handler?.onTimeout?.(this) })
        return
      case 'transport_error':
        return this.#transportError()
      default:
        // A response from the TU after the final is refused (onResponse returns false).
        return undefined
    }
  }

  #confirmed (input: Input): void {
    switch (input) {
      case 'ack':
        this.ctx.counters.retransmissionsReceived++
        return
      case 'timer_i':
        this.#end()
        return
      default:
        return undefined
    }
  }

  #acceptedState (input: Input): void {
    switch (input) {
      case 'ack':
        this.#ok = true
        return
      case 'tu_2xx':
        // RFC 6026 §7.1: the TU's 2xx retransmissions (and 2xx of other forks) pass through.
        this.#send()
        return
      case 'timer_l':
        this.#end()
        return
      case 'transport_error': {
        // RFC 6026 Figure 7: inform the TU and stay in Accepted.
        const error = this.#error!
        this.#error = undefined
        this.handler?.onTransportError?.(error, this)
        return
      }
      default:
        // INVITE retransmissions are absorbed (RFC 6026 §8.5); 1xx and non-2xx refused.
        return undefined
    }
  }

  /**
   * Send the TU's response and remember it for retransmission: not in
   * Accepted, which absorbs INVITE retransmissions without answering them
   * (RFC 6026 §8.5), so the 2xx bytes are not held for Timer L.
   */
  #send (): void {
    const bytes = this.#bytes!
    this.#last = this.#state === 'accepted' ? undefined : bytes
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
  #end (report?: () => void): void {
    this.#state = 'terminated'
    if (!this.finish()) return
    report?.()
    this.handler?.onTerminated?.(this)
  }
}
