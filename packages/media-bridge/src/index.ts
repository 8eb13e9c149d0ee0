// Public door of @sipd/media-bridge: media sets and node selection, OPTIONS
// probing, metrics and FreeSWITCH's mod_xml_curl endpoint.

export { MediaBridgeError, InvalidArgumentError, MediaConfigError } from './errors.js'
export type { Clock } from './clock.js'
export { SYSTEM_CLOCK } from './clock.js'
export {
  Dispatcher,
  DEFAULT_DISPATCHER_OPTIONS,
  SELECTION_ALGORITHMS
} from './dispatcher.js'
export type {
  AdminState,
  DispatcherInstruments,
  DispatcherOptions,
  DispatcherSnapshot,
  HealthChangeReason,
  HealthState,
  MediaNode,
  MediaNodeConfig,
  MediaNodeSnapshot,
  MediaSetConfig,
  MediaSetSnapshot,
  ProbeResult,
  SelectContext,
  SelectionAlgorithm,
  SetInstruments
} from './dispatcher.js'
export { Prober, DEFAULT_PROBER_OPTIONS } from './prober.js'
export type { OptionsOutcome, ProberOptions, SendOptions } from './prober.js'
export { createMediaMetrics, DEFAULT_PROBE_LATENCY_BUCKETS, MEDIA_NODE_STATES } from './metrics.js'
export type { MediaMetrics, MediaMetricsOptions } from './metrics.js'
export {
  createXmlCurlHandler,
  handleXmlCurl,
  DEFAULT_DIALPLAN_OPTIONS,
  DEFAULT_XML_CURL_MAX_BODY_BYTES,
  NOT_FOUND_DOCUMENT,
  XML_CURL_SECRET_HEADER
} from './xml-curl.js'
export type {
  DialplanOptions,
  LookupSubscriber,
  SubscriberEntry,
  XmlCurlDeps,
  XmlCurlHandlerOptions,
  XmlCurlResponse
} from './xml-curl.js'
export { PgMediaSetStore, MediaStoreError, MEDIA_MIGRATIONS, DEFAULT_PG_MEDIA_SET_STORE_OPTIONS } from './media-store-pg.js'
export type { MediaMigration, PgMediaSetStoreOptions } from './media-store-pg.js'
