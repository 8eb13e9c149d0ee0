import { SipStackError } from './stack-error.js'
/**
 * Errors of the transaction layer and its timer wheel. Every error has a
 * stable `code`; callers match on the code, never on the message text.
 * SIP outcomes (timeouts, final responses) are not errors: they reach the
 * transaction user as callbacks.
 */

/** Base class of transaction-layer errors. */
export class TransactionError extends SipStackError {
  constructor (message: string, code: string, options?: { cause?: unknown }) {
    super(message, code, options)
    this.name = 'TransactionError'
  }
}

/** An option of the transaction layer or the timer wheel is invalid; thrown at construction. */
export class InvalidTransactionOptionError extends TransactionError {
  /** The option that was rejected. */
  readonly option: string

  constructor (option: string, value: unknown, allowed: string) {
    super(`invalid transaction option "${option}": ${describe(value)}; expected ${allowed}`, 'SIP_ERR_TX_INVALID_OPTION')
    this.name = 'InvalidTransactionOptionError'
    this.option = option
  }
}

/**
 * A message handed to the transaction layer cannot start a transaction
 * (e.g. a request without a top Via branch, an ACK given to `createClient`).
 */
export class TransactionRequestError extends TransactionError {
  constructor (message: string) {
    super(message, 'SIP_ERR_TX_BAD_REQUEST')
    this.name = 'TransactionRequestError'
  }
}

/** Quote a value for an error message, at most 80 characters. */
function describe (value: unknown): string {
  let text: string
  try {
    text = typeof value === 'string' ? value : String(JSON.stringify(value))
  } catch {
    text = String(value)
  }
  return JSON.stringify(text.length > 80 ? text.slice(0, 80) + '…' : text)
}
