import type { SipRequest } from './message.js'

/**
 * Thrown for input that does not follow the SIP grammar (RFC 3261 §25).
 * `offset` points at the defect within the message (or URI) text, and the
 * message names it, quoting at most 80 bytes of the offending input.
 */
export class SipParseError extends Error {
  /** Stable machine-readable code, e.g. `SIP_ERR_BAD_START_LINE`. */
  readonly code: string
  /** Byte offset of the defect in the input. */
  readonly offset: number
  /**
   * For a request whose start line or framing is bad but whose headers were
   * indexed: the message as far as it parsed, enough to answer 400.
   */
  partial?: SipRequest

  constructor (message: string, offset: number, code = 'SIP_ERR_PARSE') {
    super(message)
    this.name = 'SipParseError'
    this.code = code
    this.offset = offset
  }
}

/** Thrown by StreamParser when a connection exceeds a configured limit. */
export class SipLimitError extends SipParseError {
  constructor (message: string, offset: number, code: 'SIP_ERR_MESSAGE_TOO_LARGE' | 'SIP_ERR_TOO_MANY_HEADERS') {
    super(message, offset, code)
    this.name = 'SipLimitError'
  }
}

/** Quote a piece of input for an error message: at most 80 characters, control bytes escaped. */
export function quote (text: string): string {
  const cut = text.length > 80 ? text.slice(0, 80) + '…' : text
  return JSON.stringify(cut)
}
