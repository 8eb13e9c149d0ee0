/**
 * The one base of every error sip-stack throws or reports: transports
 * (TransportError) and transactions (TransactionError) both extend it, so a
 * caller can catch the package's errors with one `instanceof` and tell them
 * apart by the stable `code`.
 */
export class SipStackError extends Error {
  /** Stable machine-readable code, e.g. `SIP_ERR_CONNECT_FAILED`. */
  readonly code: string

  constructor (message: string, code: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'SipStackError'
    this.code = code
  }
}
