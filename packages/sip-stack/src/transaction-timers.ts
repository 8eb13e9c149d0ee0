/**
 * RFC 3261 timer values (§17, Table 4 of Appendix A, with RFC 6026's L and
 * M) as typed configuration: each transaction layer carries its own values,
 * there are no module globals.
 */
import { InvalidTransactionOptionError } from './transaction-errors.js'

/** The base timer values; every other RFC 3261 timer derives from them. */
export interface TransactionTimers {
  /**
   * T1, the round-trip time estimate: first retransmission interval (Timers
   * A, E, G) and, times 64, the transaction timeout (Timers B, F, H, J, L, M).
   * @default 500
   * @see RFC 3261 §17.1.1.1
   */
  t1: number
  /**
   * T2, the maximum retransmission interval for non-INVITE requests and
   * INVITE final responses (Timers E, G).
   * @default 4000
   * @see RFC 3261 §17.1.2.2
   */
  t2: number
  /**
   * T4, the maximum time a message stays in the network: the wait in
   * Completed/Confirmed over unreliable transports (Timers I, K).
   * @default 5000
   * @see RFC 3261 §17.1.2.2
   */
  t4: number
  /**
   * Timer D, the wait in the client INVITE Completed state over unreliable
   * transports, absorbing retransmitted final responses (RFC 3261 says
   * "> 32 s"). Over reliable transports Timer D is 0.
   * @default 32000
   * @see RFC 3261 §17.1.1.2
   */
  timerD: number
}

/** The defaults of {@link TransactionTimers} (RFC 3261 Table 4). */
export const DEFAULT_TRANSACTION_TIMERS: Readonly<TransactionTimers> = Object.freeze({
  t1: 500,
  t2: 4000,
  t4: 5000,
  timerD: 32_000
})

/** Every timer value in milliseconds, resolved once per transaction layer. */
export interface ResolvedTimers extends Readonly<TransactionTimers> {
  /** 64·T1: Timers B, F, H, J (unreliable), L and M. */
  readonly timeout: number
}

/**
 * Resolve and validate timer values; absent fields take the defaults.
 * @throws InvalidTransactionOptionError naming the first invalid field
 */
export function resolveTransactionTimers (timers: Partial<TransactionTimers> = {}): ResolvedTimers {
  const t1 = timers.t1 ?? DEFAULT_TRANSACTION_TIMERS.t1
  const t2 = timers.t2 ?? DEFAULT_TRANSACTION_TIMERS.t2
  const t4 = timers.t4 ?? DEFAULT_TRANSACTION_TIMERS.t4
  const timerD = timers.timerD ?? DEFAULT_TRANSACTION_TIMERS.timerD
  const ms = 'an integer number of milliseconds >= 1'
  if (!Number.isInteger(t1) || t1 < 1) throw new InvalidTransactionOptionError('timers.t1', t1, ms)
  if (!Number.isInteger(t2) || t2 < t1) throw new InvalidTransactionOptionError('timers.t2', t2, `an integer number of milliseconds >= t1 (${t1})`)
  if (!Number.isInteger(t4) || t4 < 1) throw new InvalidTransactionOptionError('timers.t4', t4, ms)
  if (!Number.isInteger(timerD) || timerD < 0) throw new InvalidTransactionOptionError('timers.timerD', timerD, 'an integer number of milliseconds >= 0')
  return Object.freeze({ t1, t2, t4, timerD, timeout: 64 * t1 })
}
