import { SipStackError } from './stack-error.js'
/**
 * Errors of the transport layer and the RFC 3263 resolver. Every error has a
 * stable `code`; callers match on the code, never on the message text.
 */

/** Base class of transport and resolver errors. */
export class TransportError extends SipStackError {
  constructor (message: string, code: string, options?: { cause?: unknown }) {
    super(message, code, options)
    this.name = 'TransportError'
  }
}

/** An option or a listen address is invalid; thrown at construction. */
export class InvalidTransportOptionError extends TransportError {
  /** The option that was rejected. */
  readonly option: string

  constructor (option: string, value: unknown, allowed: string) {
    super(`invalid transport option "${option}": ${describe(value)}; expected ${allowed}`, 'SIP_ERR_INVALID_OPTION')
    this.name = 'InvalidTransportOptionError'
    this.option = option
  }
}

/** A message could not be sent to its destination. */
export class TransportSendError extends TransportError {
  /** Where the message was going, as `transport:address:port` (or a flow id). */
  readonly destination: string

  constructor (message: string, code: string, destination: string, options?: { cause?: unknown }) {
    super(`${message} (${destination})`, code, options)
    this.name = 'TransportSendError'
    this.destination = destination
  }
}

/** A URI cannot be resolved to a target at all (bad URI, unsupported scheme or transport). */
export class ResolverError extends TransportError {
  constructor (message: string, code: string, options?: { cause?: unknown }) {
    super(message, code, options)
    this.name = 'ResolverError'
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
