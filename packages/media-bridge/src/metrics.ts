import { Counter, Gauge, Histogram } from 'prom-client'
import type { Registry } from 'prom-client'
import type { Dispatcher, DispatcherInstruments, ProbeResult, SelectionAlgorithm, SetInstruments } from './dispatcher.js'
import { InvalidArgumentError } from './errors.js'

/** The states reported by `sipd_media_node_state`: health, overridden by a non-enabled admin state. */
export const MEDIA_NODE_STATES = Object.freeze(['active', 'probing', 'inactive', 'disabled', 'draining'] as const)

/** Options of {@link createMediaMetrics}. */
export interface MediaMetricsOptions {
  /** Registry the metrics are registered on (the proxy's, served at /metrics). */
  registry: Registry
  /** Dispatcher to observe; its set counters and probe hook are attached to these metrics. */
  dispatcher: Dispatcher
  /**
   * Buckets of `sipd_media_probe_latency_seconds`, in seconds.
   * @default [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]
   */
  probeLatencyBuckets?: readonly number[]
}

/** Default buckets of the probe latency histogram: a LAN OPTIONS round trip is ~1 ms, a struggling node seconds. */
export const DEFAULT_PROBE_LATENCY_BUCKETS: readonly number[] = Object.freeze([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5])

/** The media metrics, registered once on a registry. */
export interface MediaMetrics extends DispatcherInstruments {
  /** Stop observing: detaches from the dispatcher (metrics stay registered). */
  detach(): void
}

/**
 * Register the media-bridge metrics on `registry` and attach them to `dispatcher`:
 *
 * - `sipd_media_node_state{set,node,state}` gauge: 1 for the node's current state, 0 for the others.
 * - `sipd_media_node_active_calls{node}` gauge (retired nodes included until their calls end).
 * - `sipd_media_selections_total{set,algorithm}` counter.
 * - `sipd_media_failovers_total{set}` counter: selections for a call that already tried another node.
 * - `sipd_media_probe_latency_seconds{node}` histogram of probes that got a response.
 *
 * The gauges are computed at scrape time; the selection path only increments
 * counters bound per set at (re)load.
 */
export function createMediaMetrics (options: MediaMetricsOptions): MediaMetrics {
  const { registry, dispatcher } = options
  if (registry === undefined || typeof registry.registerMetric !== 'function') {
    throw new InvalidArgumentError('registry', 'must be a prom-client Registry')
  }
  const buckets = options.probeLatencyBuckets ?? DEFAULT_PROBE_LATENCY_BUCKETS
  if (!Array.isArray(buckets) || buckets.length === 0 || !buckets.every((b) => Number.isFinite(b) && b > 0)) {
    throw new InvalidArgumentError('probeLatencyBuckets', 'must be a non-empty array of positive numbers of seconds')
  }

  const nodeState: Gauge<'set' | 'node' | 'state'> = new Gauge({
    name: 'sipd_media_node_state',
    help: 'Media node state: 1 for the current state (active, probing, inactive, disabled, draining), 0 otherwise.',
    labelNames: ['set', 'node', 'state'] as const,
    registers: [registry],
    collect () {
      nodeState.reset()
      for (const set of dispatcher.snapshot().sets) {
        const setLabel = String(set.id)
        for (const node of set.nodes) {
          const current = node.adminState === 'enabled' ? node.health : node.adminState
          for (const state of MEDIA_NODE_STATES) {
            nodeState.set({ set: setLabel, node: node.uri, state }, state === current ? 1 : 0)
          }
        }
      }
    }
  })

  const activeCalls: Gauge<'node'> = new Gauge({
    name: 'sipd_media_node_active_calls',
    help: 'Calls set up to a media node and not yet ended.',
    labelNames: ['node'] as const,
    registers: [registry],
    collect () {
      activeCalls.reset()
      const snap = dispatcher.snapshot()
      const seen = new Set<string>()
      for (const set of snap.sets) {
        for (const node of set.nodes) {
          if (seen.has(node.uri)) continue
          seen.add(node.uri)
          activeCalls.set({ node: node.uri }, node.activeCalls)
        }
      }
      for (const node of snap.retired) activeCalls.set({ node: node.uri }, node.activeCalls)
    }
  })

  const selections = new Counter({
    name: 'sipd_media_selections_total',
    help: 'Media nodes selected for calls, by set and algorithm.',
    labelNames: ['set', 'algorithm'] as const,
    registers: [registry]
  })

  const failovers = new Counter({
    name: 'sipd_media_failovers_total',
    help: 'Media node selections for a call that had already tried another node (after 408, 5xx or timeout).',
    labelNames: ['set'] as const,
    registers: [registry]
  })

  const probeLatency = new Histogram({
    name: 'sipd_media_probe_latency_seconds',
    help: 'Time from sending an OPTIONS probe to a media node to its final response.',
    labelNames: ['node'] as const,
    buckets: [...buckets],
    registers: [registry]
  })

  const metrics: MediaMetrics = {
    bindSet (setId: string, algorithm: SelectionAlgorithm): SetInstruments {
      const selected = selections.labels({ set: setId, algorithm })
      const failedOver = failovers.labels({ set: setId })
      return {
        selected () { selected.inc() },
        failover () { failedOver.inc() }
      }
    },
    probed (uri: string, result: ProbeResult): void {
      // Timeouts are not latencies: they would only pile up in the top bucket.
      if (result.status !== undefined) probeLatency.observe({ node: uri }, result.latencyMs / 1000)
    },
    detach (): void {
      dispatcher.setInstruments(undefined)
    }
  }
  dispatcher.setInstruments(metrics)
  return metrics
}
