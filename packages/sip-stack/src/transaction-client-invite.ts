/**
 * The INVITE client transaction: RFC 3261 §17.1.1, Figure 5, as updated by
 * RFC 6026 §7.2 (the Accepted state and Timer M).
 *
 * ```
 *   Calling ──1xx──────────► Proceeding ──1xx──┐ (to TU)
 *     │  ▲ Timer A: resend      │ ◄─────────────┘
 *     │  └──┘ (unreliable)      │
 *     ├──300-699: ACK ─────────►├──300-699: ACK──► Completed ──Timer D──► Terminated
 *     ├──2xx: to TU ───────────►└──2xx: to TU ───► Accepted ───Timer M──► Terminated
 *     └──Timer B / transport error: inform TU ──────────────────────────► Terminated
 * ```
 */
import { createRequest } from '@sipd/sip-parser'
import type { SipRequest, SipResponse } from '@sipd/sip-parser'
import { ClientTransaction } from './transaction-client.js'
import { ownString } from './owned.js'

/** States of {@link ClientInviteTransaction} (RFC 3261 Figure 5, RFC 6026 Figure 5). */
export type ClientInviteState = 'calling' | 'proceeding' | 'completed' | 'accepted' | 'terminated'

/** Inputs of the state machine, named by timer or response class. */
type Input = 'timer_a' | 'timer_b' | 'timer_d' | 'timer_m' | '1xx' | '2xx' | '300-699' | 'transport_error'

/** The INVITE client transaction. Created by `TransactionLayer.createClient`. */
export class ClientInviteTransaction extends ClientTransaction {
  /** On the prototype: no slot per transaction (each is held for Timer K, L or M). */
  get kind (): 'client-invite' { return 'client-invite' }
  #state: ClientInviteState = 'calling'
  /** Current Timer A interval: T1, doubling on each firing (§17.1.1.2). */
  #intervalA = 0
  /** The input's response, while an input is processed. */
  #response: SipResponse | undefined = undefined
  #error: Error | undefined = undefined
  /** The ACK for the non-2xx final, sent again for each retransmission of it. */
  #ack: Buffer | undefined = undefined
  /** The To tag of the first 2xx; a 2xx with the same tag in Accepted is a retransmission. */
  #acceptedTag: string | undefined = undefined
  #provisional = false

  get state (): ClientInviteState {
    return this.#state
  }

  /** True once a provisional response arrived: a CANCEL may be sent now (RFC 3261 §9.1). */
  get receivedProvisional (): boolean {
    return this.#provisional
  }

  /**
   * A CANCEL for this INVITE (RFC 3261 §9.1), to send with
   * `TransactionLayer.createClient` to {@link target}. The caller waits for a
   * provisional response first ({@link receivedProvisional}).
   * @param headers extra header lines, e.g. `[['Reason', 'SIP;cause=200;text="Call completed elsewhere"']]` (RFC 3326)
   */
  createCancel (headers: ReadonlyArray<readonly [string, string]> = []): Buffer {
    return buildCancel(this.request, headers)
  }

  start (): void {
    this.transmit(this.bytes)
    if (this.#state !== 'calling') return // the send failed at once
    // §17.1.1.2: Timer A only over unreliable transports; Timer B always.
    if (!this.reliable) {
      this.#intervalA = this.ctx.timers.t1
      this.startRetransmitTimer('timer_a', this.#intervalA)
    }
    this.startLongTimer('timer_b', this.ctx.timers.timeout)
  }

  receiveResponse (response: SipResponse): void {
    const status = response.status
    this.#response = response
    try {
      this.#input(status < 200 ? '1xx' : status < 300 ? '2xx' : '300-699')
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
      case 'calling': return this.#calling(input)
      case 'proceeding': return this.#proceeding(input)
      case 'completed': return this.#completed(input)
      case 'accepted': return this.#accepted(input)
      case 'terminated': return undefined
    }
  }

  #calling (input: Input): void {
    switch (input) {
      case 'timer_a':
        // §17.1.1.2: retransmit and double the interval; no cap for INVITE.
        this.retransmit(this.bytes)
        this.#intervalA *= 2
        this.startRetransmitTimer('timer_a', this.#intervalA)
        return
      case 'timer_b':
        this.ctx.counters.timeouts++
        this.#end(() => { this.handler.onTimeout(this) })
        return
      case '1xx':
        // Timer B guards Calling only; in Proceeding the TU's Timer C decides (§16.6 step 11).
        this.stopRetransmitTimer()
        this.stopLongTimer()
        this.#state = 'proceeding'
        this.#provisional = true
        this.handler.onProvisional?.(this.#response!, this)
        return
      case '2xx':
        return this.#toAccepted()
      case '300-699':
        return this.#toCompleted()
      case 'transport_error':
        return this.#transportError()
      default:
        return undefined
    }
  }

  #proceeding (input: Input): void {
    switch (input) {
      case '1xx':
        this.handler.onProvisional?.(this.#response!, this)
        return
      case '2xx':
        return this.#toAccepted()
      case '300-699':
        return this.#toCompleted()
      case 'transport_error':
        return this.#transportError()
      default:
        return undefined
    }
  }

  #completed (input: Input): void {
    switch (input) {
      case '300-699':
        // §17.1.1.2: a retransmitted final response: send the ACK again, not to the TU.
        this.ctx.counters.retransmissionsReceived++
        this.retransmit(this.#ack!)
        return
      case 'timer_d':
        this.#end()
        return
      case 'transport_error':
        return this.#transportError()
      default:
        // 1xx and 2xx after a non-2xx final are absorbed.
        return undefined
    }
  }

  #accepted (input: Input): void {
    switch (input) {
      case '2xx': {
        // RFC 6026 §7.2: every 2xx goes to the TU, which ACKs it end to end.
        const response = this.#response!
        if (response.to.tag === this.#acceptedTag) this.ctx.counters.retransmissionsReceived++
        this.handler.onFinal(response, this)
        return
      }
      case 'timer_m':
        this.#end()
        return
      default:
        // Nothing is sent in Accepted, so no transport error; 1xx and non-2xx are absorbed.
        return undefined
    }
  }

  /** 2xx in Calling or Proceeding: RFC 6026 §7.2, Timer M = 64·T1 whatever the transport. */
  #toAccepted (): void {
    this.stopRetransmitTimer()
    this.stopLongTimer()
    this.#state = 'accepted'
    const response = this.#response!
    // Kept for Timer M: a copy, not a slice of the 2xx's text.
    const tag = response.to.tag
    this.#acceptedTag = tag === undefined ? undefined : ownString(tag)
    this.startFinalWait('timer_m', this.ctx.timeoutQueue)
    this.handler.onFinal(response, this)
    // After the TU's onFinal: a TU may still read the request there.
    this.releaseRequest()
  }

  /** 300-699 in Calling or Proceeding: to the TU, ACK hop by hop (§17.1.1.3), Timer D. */
  #toCompleted (): void {
    this.stopRetransmitTimer()
    this.stopLongTimer()
    this.#state = 'completed'
    const response = this.#response!
    this.#ack = buildAck(this.request, response)
    // §17.1.1.2: Timer D absorbs retransmitted finals over unreliable transports; zero otherwise.
    const waitD = !this.reliable && this.ctx.timers.timerD > 0
    if (waitD) this.startLongTimer('timer_d', this.ctx.timers.timerD)
    this.handler.onFinal(response, this)
    if (this.#state !== 'completed') return // the TU terminated the transaction
    this.transmit(this.#ack)
    if (!waitD && this.#state === 'completed') this.#end()
  }

  #transportError (): void {
    const error = this.#error!
    this.#error = undefined
    this.#end(() => { this.handler.onTransportError(error, this) })
  }

  /** Enter Terminated; on the first time, report the cause (if any), then onTerminated. */
  #end (report?: () => void): void {
    this.#state = 'terminated'
    if (!this.finish()) return
    report?.()
    this.handler.onTerminated?.(this)
  }
}

/**
 * The ACK for a non-2xx final response, built by the INVITE client
 * transaction (RFC 3261 §17.1.1.3): Request-URI, Call-ID, From and the CSeq
 * number of the INVITE, its top Via as the only Via, To from the response,
 * the INVITE's Route header fields.
 */
export function buildAck (invite: SipRequest, response: SipResponse): Buffer {
  const headers: Array<[string, string]> = [['Via', invite.topVia!.raw]]
  for (const route of invite.headers('route')) headers.push(['Route', route])
  headers.push(
    ['Max-Forwards', '70'],
    ['From', invite.header('from')!],
    ['To', response.header('to')!],
    ['Call-ID', invite.callId],
    ['CSeq', invite.cseq.seq + ' ACK']
  )
  return createRequest({ method: 'ACK', uri: invite.uri, headers })
}

/**
 * A CANCEL for `invite` (RFC 3261 §9.1): Request-URI, Call-ID, From, To and
 * the CSeq number of the INVITE, its top Via as the only Via (so the CANCEL
 * takes the same path and is matched to the INVITE, §9.2), its Route header
 * fields, then `headers`.
 */
export function buildCancel (invite: SipRequest, headers: ReadonlyArray<readonly [string, string]> = []): Buffer {
  const lines: Array<readonly [string, string]> = [['Via', invite.topVia!.raw]]
  for (const route of invite.headers('route')) lines.push(['Route', route])
  lines.push(
    ['Max-Forwards', '70'],
    ['From', invite.header('from')!],
    ['To', invite.header('to')!],
    ['Call-ID', invite.callId],
    ['CSeq', invite.cseq.seq + ' CANCEL'],
    ...headers
  )
  return createRequest({ method: 'CANCEL', uri: invite.uri, headers: lines })
}
