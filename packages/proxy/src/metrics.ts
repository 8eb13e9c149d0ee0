/**
 * sipd's own metrics (prom-client), defined once on an injected Registry.
 * The per-message counters are plain numbers bumped on the message path and
 * handed to prom-client when /metrics is scraped: a label child's inc()
 * hashes its labels into a new string and looks it up by that key on every
 * call (perf showed it, with the string-table lookups it causes, among the
 * top entries of a proxied call). Labels are method and status class, never
 * Call-ID or AOR.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client'
import type { Metric } from 'prom-client'

/** Methods that get their own label value; the rest count as "other". */
export const METHODS = ['INVITE', 'ACK', 'BYE', 'CANCEL', 'OPTIONS', 'REGISTER', 'PRACK', 'SUBSCRIBE', 'NOTIFY', 'PUBLISH', 'INFO', 'REFER', 'MESSAGE', 'UPDATE'] as const
const CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx', '6xx'] as const

/**
 * Sampling interval of the event-loop lag histogram (`sipd_process_nodejs_eventloop_lag_*`).
 * prom-client's default, 10 ms, is a native timer that wakes the process 100 times a
 * second even when idle (an idle sipd: 113 wake-ups/s, 18 without it); at 100 ms a
 * stall long enough to matter to SIP timers (T1 = 500 ms) is still recorded whole.
 */
const EVENT_LOOP_SAMPLE_MS = 100

/** Label values of the method counters: METHODS, then "other". */
const METHOD_LABELS: readonly string[] = [...METHODS, 'other']
const METHOD_INDEX = new Map<string, number>(METHOD_LABELS.map((m, i) => [m, i]))
const OTHER = METHODS.length

/** Live numbers the metrics read at scrape time. */
export interface MetricSources {
  transactions: () => Record<string, number>
  tcpConnections: () => number
  /** Retransmissions absorbed (in) and sent (out) by the transaction layer, running totals. */
  retransmissions: () => { in: number, out: number }
  /** TCP connection events (accepted, connected, refused, closed_<reason>), running totals. */
  tcpEvents: () => Record<string, number>
  registrations: () => Promise<number> | number
}

/** The metric set of one sipd process. */
export class SipdMetrics {
  readonly registry: Registry
  readonly #reqIn: number[] = new Array<number>(METHOD_LABELS.length).fill(0)
  readonly #reqOut: number[] = new Array<number>(METHOD_LABELS.length).fill(0)
  readonly #respIn: number[] = new Array<number>(CLASSES.length).fill(0)
  readonly #respOut: number[] = new Array<number>(CLASSES.length).fill(0)
  readonly parseErrors: Counter<'reason'>
  readonly sanity: Counter<'status'>
  /** 2xx resends of sipd's own UAS core (RFC 3261 §13.3.1.4), outside any transaction. */
  ownRetransmissionsOut = 0
  /** ACKs matching no transaction with no next hop but sipd itself (RFC 3261 §16.11): dropped. */
  droppedAcks = 0
  /** Responses matching no transaction whose top Via is not sipd's (§16.7 step 3): dropped. */
  droppedResponses = 0
  // REGISTER outcomes and digest failure reasons, by label value (a few fixed strings).
  readonly #registers = new Map<string, number>()
  readonly #authFailures = new Map<string, number>()
  /** Latency of the location store's update, seconds (`sipd_location_store_seconds{op="update"}`). */
  readonly storeLatency: PlainHistogram
  readonly routing: Counter<'outcome'>
  #sources: MetricSources | undefined

  constructor (registry = new Registry(), withDefaults = true) {
    this.registry = registry
    if (withDefaults) collectDefaultMetrics({ register: registry, prefix: 'sipd_process_', eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS })
    const byMethod = (name: string, help: string, counts: number[]): void => {
      new Counter({
        name,
        help,
        labelNames: ['method'] as const,
        registers: [registry],
        collect () {
          this.reset()
          for (let i = 0; i < counts.length; i++) this.inc({ method: METHOD_LABELS[i]! }, counts[i]!)
        }
      })
    }
    const byClass = (name: string, help: string, counts: number[]): void => {
      new Counter({
        name,
        help,
        labelNames: ['class'] as const,
        registers: [registry],
        collect () {
          this.reset()
          for (let i = 0; i < counts.length; i++) this.inc({ class: CLASSES[i]! }, counts[i]!)
        }
      })
    }
    byMethod('sipd_requests_received_total', 'SIP requests received, by method', this.#reqIn)
    byMethod('sipd_requests_sent_total', 'SIP requests sent, by method', this.#reqOut)
    byClass('sipd_responses_received_total', 'SIP responses received, by status class', this.#respIn)
    byClass('sipd_responses_sent_total', 'SIP responses sent, by status class', this.#respOut)
    this.parseErrors = new Counter({ name: 'sipd_parse_errors_total', help: 'Inbound messages that did not parse, by reason code', labelNames: ['reason'] as const, registers: [registry] })
    this.sanity = new Counter({ name: 'sipd_sanity_rejections_total', help: 'Requests answered by the sanity stage, by status', labelNames: ['status'] as const, registers: [registry] })
    const byValue = (name: string, help: string, label: 'outcome' | 'reason', counts: Map<string, number>): void => {
      new Counter({
        name,
        help,
        labelNames: [label],
        registers: [registry],
        collect () {
          this.reset()
          for (const [value, n] of counts) this.inc({ [label]: value }, n)
        }
      })
    }
    byValue('sipd_register_requests_total', 'REGISTER requests by outcome', 'outcome', this.#registers)
    byValue('sipd_auth_failures_total', 'Digest authentication failures by reason', 'reason', this.#authFailures)
    this.storeLatency = new PlainHistogram('sipd_location_store_seconds', 'Location store operation latency', [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1], { op: 'update' })
    registry.registerMetric(this.storeLatency as unknown as Metric)
    this.routing = new Counter({ name: 'sipd_routing_outcomes_total', help: 'Routing decisions by outcome', labelNames: ['outcome'] as const, registers: [registry] })
    // Counters and gauges computed at scrape time from the stack's plain-number counters.
    const self = this
    new Counter({
      name: 'sipd_retransmissions_total',
      help: 'Retransmissions absorbed (in) and sent (out)',
      labelNames: ['direction'] as const,
      registers: [registry],
      collect () {
        this.reset()
        const r = self.#sources?.retransmissions() ?? { in: 0, out: 0 }
        this.inc({ direction: 'in' }, r.in)
        this.inc({ direction: 'out' }, r.out + self.ownRetransmissionsOut)
      }
    })
    new Counter({
      name: 'sipd_dropped_total',
      help: 'Messages that parsed but went nowhere: an ACK with no next hop but sipd (ack-no-next-hop), a response to no transaction of ours (stray-response); parse errors are sipd_parse_errors_total',
      labelNames: ['reason'] as const,
      registers: [registry],
      collect () {
        this.reset()
        this.inc({ reason: 'ack-no-next-hop' }, self.droppedAcks)
        this.inc({ reason: 'stray-response' }, self.droppedResponses)
      }
    })
    new Counter({
      name: 'sipd_tcp_connection_events_total',
      help: 'TCP connections accepted, connected (outbound), refused and closed by reason',
      labelNames: ['event'] as const,
      registers: [registry],
      collect () {
        this.reset()
        for (const [event, n] of Object.entries(self.#sources?.tcpEvents() ?? {})) this.inc({ event }, n)
      }
    })
    new Gauge({
      name: 'sipd_transactions_active',
      help: 'Transactions in progress, by kind',
      labelNames: ['kind'] as const,
      registers: [registry],
      collect () {
        this.reset()
        const t = self.#sources?.transactions() ?? {}
        for (const [kind, n] of Object.entries(t)) this.set({ kind }, n)
      }
    })
    new Gauge({
      name: 'sipd_tcp_connections',
      help: 'Open TCP connections',
      registers: [registry],
      collect () { this.set(self.#sources?.tcpConnections() ?? 0) }
    })
    new Gauge({
      name: 'sipd_registrations_active',
      help: 'Registered AORs with at least one live binding',
      registers: [registry],
      async collect () {
        try {
          this.set(await (self.#sources?.registrations() ?? 0))
        } catch {
          // Store down: leave the last value rather than fail the whole scrape.
        }
      }
    })
  }

  /** Connect the gauges to live numbers. */
  bind (sources: MetricSources): void {
    this.#sources = sources
  }

  requestIn (method: string): void {
    this.#reqIn[METHOD_INDEX.get(method) ?? OTHER]!++
  }

  requestOut (method: string): void {
    this.#reqOut[METHOD_INDEX.get(method) ?? OTHER]!++
  }

  responseIn (status: number): void {
    this.#respIn[Math.min(5, Math.max(0, ((status / 100) | 0) - 1))]!++
  }

  /** One REGISTER answered, by outcome (`sipd_register_requests_total`). */
  registerOutcome (outcome: string): void {
    this.#registers.set(outcome, (this.#registers.get(outcome) ?? 0) + 1)
  }

  /** One refused digest credential, by reason (`sipd_auth_failures_total`). */
  authFailure (reason: string): void {
    this.#authFailures.set(reason, (this.#authFailures.get(reason) ?? 0) + 1)
  }

  responseOut (status: number): void {
    this.#respOut[Math.min(5, Math.max(0, ((status / 100) | 0) - 1))]!++
  }
}

/**
 * A histogram of one label set bumped as plain numbers and handed to the
 * registry at scrape time, in prom-client's shape (`_bucket` with `le`,
 * `_sum`, `_count`). prom-client's observe() built a label object and its
 * hash string and stored each bucket under its bound as a property name (a
 * number turned into a string and looked up in the string table): 1.7% of
 * sipd's CPU under 1,000 digest REGISTER/s, one observation each.
 */
export class PlainHistogram {
  readonly type = 'histogram'
  readonly aggregator = 'sum'
  readonly name: string
  readonly help: string
  readonly #bounds: readonly number[]
  readonly #labels: Readonly<Record<string, string>>
  /** Observations per bucket, not cumulative; the last is above every bound. */
  readonly #counts: Float64Array
  #sum = 0
  #count = 0

  constructor (name: string, help: string, bounds: readonly number[], labels: Record<string, string>) {
    this.name = name
    this.help = help
    this.#bounds = Object.freeze([...bounds])
    this.#labels = Object.freeze({ ...labels })
    this.#counts = new Float64Array(bounds.length + 1)
  }

  observe (value: number): void {
    if (!Number.isFinite(value)) return
    const b = this.#bounds
    let i = 0
    while (i < b.length && value > b[i]!) i++
    this.#counts[i]!++
    this.#sum += value
    this.#count++
  }

  /** What the registry prints; no series before the first observation (as prom-client). */
  get (): { name: string, help: string, type: string, aggregator: string, values: Array<{ labels: Record<string, string | number>, sharedLabels: Record<string, string>, value: number, metricName: string }> } {
    const values = []
    if (this.#count > 0) {
      const sharedLabels = this.#labels
      const bucket = this.name + '_bucket'
      let acc = 0
      for (let i = 0; i < this.#bounds.length; i++) {
        acc += this.#counts[i]!
        values.push({ labels: { le: this.#bounds[i]! }, sharedLabels, value: acc, metricName: bucket })
      }
      values.push({ labels: { le: '+Inf' }, sharedLabels, value: this.#count, metricName: bucket })
      values.push({ labels: {}, sharedLabels, value: this.#sum, metricName: this.name + '_sum' })
      values.push({ labels: {}, sharedLabels, value: this.#count, metricName: this.name + '_count' })
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values }
  }

  reset (): void {
    this.#counts.fill(0)
    this.#sum = 0
    this.#count = 0
  }
}
