import type { Clock } from './clock.js'
import { SYSTEM_CLOCK } from './clock.js'
import type { Dispatcher, ProbeResult } from './dispatcher.js'
import { InvalidArgumentError, quote } from './errors.js'

/** Outcome of one OPTIONS request as the SIP layer reports it. */
export type OptionsOutcome = { status: number } | { error: 'timeout' | 'transport' }

/**
 * Sends one OPTIONS request to a node over the node's transport and resolves
 * with the final response status, or with an error once `timeoutMs` passed or
 * the transport failed. Wired by the proxy to real OPTIONS transactions.
 */
export type SendOptions = (nodeUri: string, timeoutMs: number) => Promise<OptionsOutcome>

/** Options of {@link Prober}. */
export interface ProberOptions {
  /** Time between probe rounds, in ms. Every configured node is probed once per round. @default 10000 */
  intervalMs: number
  /** A probe without a final response after this long counts as a failure, in ms. @default 2000 */
  timeoutMs: number
  /** Consecutive failures that take an `active` node to `inactive`. @default 3 */
  failureThreshold: number
  /**
   * Consecutive successes that take a node from `inactive` back to `active`;
   * between the first success and this count it is `probing` (no new calls). @default 2
   */
  successThreshold: number
  /**
   * Final response codes that mean the node is down. Any other response,
   * including 4xx such as 404 or 405 to an OPTIONS, proves the node is alive
   * and answering SIP. @default [] (e.g. [503] for nodes that shed load with 503)
   */
  downStatusCodes: readonly number[]
  /** Time and timers. @default SYSTEM_CLOCK */
  clock: Clock
  /** Called when sendOptions throws or rejects (counted as a transport failure). @default undefined */
  onError?: ((uri: string, err: unknown) => void) | undefined
}

/** Defaults of {@link ProberOptions}. */
export const DEFAULT_PROBER_OPTIONS: Readonly<ProberOptions> = Object.freeze({
  intervalMs: 10_000,
  timeoutMs: 2_000,
  failureThreshold: 3,
  successThreshold: 2,
  downStatusCodes: Object.freeze([]) as readonly number[],
  clock: SYSTEM_CLOCK,
  onError: undefined
})

interface Counters {
  failures: number
  successes: number
}

function positiveInteger (options: ProberOptions, name: 'failureThreshold' | 'successThreshold'): void {
  const v = options[name]
  if (!(Number.isInteger(v) && v > 0)) throw new InvalidArgumentError(name, `must be a positive integer, got ${quote(v)}`)
}

function validate (options: ProberOptions): void {
  for (const name of ['intervalMs', 'timeoutMs'] as const) {
    const v = options[name]
    if (!(Number.isFinite(v) && v > 0)) throw new InvalidArgumentError(name, `must be a positive number of milliseconds, got ${quote(v)}`)
  }
  positiveInteger(options, 'failureThreshold')
  positiveInteger(options, 'successThreshold')
  if (!Array.isArray(options.downStatusCodes) ||
    !options.downStatusCodes.every((c) => Number.isInteger(c) && c >= 100 && c <= 699)) {
    throw new InvalidArgumentError('downStatusCodes', 'must be an array of SIP status codes (100-699)')
  }
  const c = options.clock
  if (typeof c?.now !== 'function' || typeof c.setTimeout !== 'function' || typeof c.clearTimeout !== 'function') {
    throw new InvalidArgumentError('clock', 'must provide now(), setTimeout() and clearTimeout()')
  }
}

/**
 * OPTIONS health checks of every configured node of a {@link Dispatcher}.
 *
 * States: `active` → (failureThreshold consecutive failures) → `inactive` →
 * (first success) → `probing` → (successThreshold consecutive successes) →
 * `active`. A failure while `probing` goes straight back to `inactive`. Nodes
 * the dispatcher marked `inactive` after a failed live call recover the same way.
 * Disabled and draining nodes are probed too, so their health is known when an
 * operator enables them again.
 */
export class Prober {
  readonly #dispatcher: Dispatcher
  readonly #send: SendOptions
  readonly #options: ProberOptions
  readonly #down: ReadonlySet<number>
  readonly #counters = new Map<string, Counters>()
  /** Probes in flight, with their guard timer; a node is never probed twice at once. */
  readonly #inFlight = new Map<string, unknown>()
  #roundTimer: unknown = undefined
  #running = false
  /** Bumped on stop(): outcomes of probes started before are ignored. */
  #generation = 0

  /**
   * @param dispatcher whose nodes to probe and whose health to update
   * @param sendOptions sends one OPTIONS (see {@link SendOptions})
   * @param options see {@link ProberOptions}; invalid values throw {@link InvalidArgumentError}
   */
  constructor (dispatcher: Dispatcher, sendOptions: SendOptions, options: Partial<ProberOptions> = {}) {
    if (typeof sendOptions !== 'function') throw new InvalidArgumentError('sendOptions', 'must be a function')
    this.#dispatcher = dispatcher
    this.#send = sendOptions
    this.#options = { ...DEFAULT_PROBER_OPTIONS, ...options }
    validate(this.#options)
    this.#down = new Set(this.#options.downStatusCodes)
  }

  /** Whether {@link Prober.start} was called and {@link Prober.stop} not since. */
  get running (): boolean {
    return this.#running
  }

  /** Probe every node now, then every `intervalMs`. Calling it while running does nothing. */
  start (): void {
    if (this.#running) return
    this.#running = true
    this.#round()
  }

  /** Stop probing: cancels every timer; outcomes still arriving are ignored. */
  stop (): void {
    if (!this.#running) return
    this.#running = false
    this.#generation++
    const clock = this.#options.clock
    if (this.#roundTimer !== undefined) clock.clearTimeout(this.#roundTimer)
    this.#roundTimer = undefined
    for (const guard of this.#inFlight.values()) clock.clearTimeout(guard)
    this.#inFlight.clear()
  }

  /**
   * Probe every configured node once, outside the schedule (admin "check now",
   * tests); resolves when all outcomes are applied.
   */
  async probeAll (): Promise<void> {
    await Promise.all(this.#dispatcher.nodeUris().map(async (uri) => await this.#probe(uri)))
  }

  #round (): void {
    this.#roundTimer = undefined
    if (!this.#running) return
    const uris = this.#dispatcher.nodeUris()
    // Forget counters of nodes a reload removed.
    if (this.#counters.size > uris.length) {
      const keep = new Set(uris)
      for (const uri of this.#counters.keys()) if (!keep.has(uri)) this.#counters.delete(uri)
    }
    for (const uri of uris) void this.#probe(uri)
    this.#roundTimer = this.#options.clock.setTimeout(() => this.#round(), this.#options.intervalMs)
  }

  async #probe (uri: string): Promise<void> {
    if (this.#inFlight.has(uri)) return
    const clock = this.#options.clock
    const generation = this.#generation
    const startedAt = clock.now()
    let settle: (outcome: OptionsOutcome) => void = () => {}
    const settled = new Promise<OptionsOutcome>((resolve) => { settle = resolve })
    // Our own deadline: the SIP layer should time out by itself, but a probe
    // that never settles must not keep the node "in flight" for ever.
    const guard = clock.setTimeout(() => settle({ error: 'timeout' }), this.#options.timeoutMs)
    this.#inFlight.set(uri, guard)
    const failed = (err: unknown): void => {
      this.#options.onError?.(uri, err)
      settle({ error: 'transport' })
    }
    try {
      this.#send(uri, this.#options.timeoutMs).then(settle, failed)
    } catch (err) {
      // A sendOptions that throws instead of rejecting (e.g. an unparsable URI).
      failed(err)
    }
    const outcome = await settled
    if (generation !== this.#generation) return
    clock.clearTimeout(guard)
    this.#inFlight.delete(uri)
    this.#apply(uri, outcome, startedAt, clock.now())
  }

  #apply (uri: string, outcome: OptionsOutcome, startedAt: number, at: number): void {
    const alive = 'status' in outcome && !this.#down.has(outcome.status)
    const result: ProbeResult = 'status' in outcome
      ? { at, latencyMs: at - startedAt, alive, status: outcome.status }
      : { at, latencyMs: at - startedAt, alive, error: outcome.error }
    const dispatcher = this.#dispatcher
    if (!dispatcher.recordProbe(uri, result)) return
    let counters = this.#counters.get(uri)
    if (counters === undefined) {
      counters = { failures: 0, successes: 0 }
      this.#counters.set(uri, counters)
    }
    const health = dispatcher.nodeHealth(uri)
    const { failureThreshold, successThreshold } = this.#options
    if (alive) {
      counters.failures = 0
      if (health === 'active') return
      counters.successes = health === 'inactive' ? 1 : counters.successes + 1
      if (counters.successes >= successThreshold) {
        counters.successes = 0
        dispatcher.setHealth(uri, 'active', 'probe')
      } else {
        dispatcher.setHealth(uri, 'probing', 'probe')
      }
    } else {
      counters.successes = 0
      counters.failures++
      if (health === 'probing' || (health === 'active' && counters.failures >= failureThreshold)) {
        dispatcher.setHealth(uri, 'inactive', 'probe')
      }
    }
  }
}
