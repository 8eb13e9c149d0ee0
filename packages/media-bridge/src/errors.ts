/**
 * Base class of every error thrown by `@sipd/media-bridge`. Match on `code`,
 * never on the message text.
 */
export class MediaBridgeError extends Error {
  /** Stable machine-readable code, e.g. `MEDIA_ERR_INVALID_CONFIG`. */
  readonly code: string

  constructor (code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = new.target.name
    this.code = code
  }
}

/** An option passed to a constructor or factory is out of range or of the wrong type. */
export class InvalidArgumentError extends MediaBridgeError {
  /** Name of the offending option, e.g. `failureThreshold`. */
  readonly option: string

  constructor (option: string, message: string) {
    super('MEDIA_ERR_INVALID_ARGUMENT', `invalid option "${option}": ${message}`)
    this.option = option
  }
}

/** A media set configuration given to the dispatcher is invalid; nothing was applied. */
export class MediaConfigError extends MediaBridgeError {
  /** Where in the configuration the problem is, e.g. `sets[1].nodes[0].weight`. */
  readonly path: string

  constructor (path: string, message: string) {
    super('MEDIA_ERR_INVALID_CONFIG', `invalid media set configuration at ${path}: ${message}`)
    this.path = path
  }
}

/** Quote untrusted input in messages, truncated so a hostile value cannot flood logs. */
export function quote (value: unknown): string {
  const text = typeof value === 'string' ? value : String(value)
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text)
}
