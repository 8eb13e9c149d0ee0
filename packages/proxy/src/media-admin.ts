/**
 * sipd's media side around the dispatcher of the default policy: the media
 * sets' source (this config file or PostgreSQL), reload without dropping
 * calls (admin API, SIGHUP), the admin API over sets and nodes, the media
 * metrics, and FreeSWITCH's mod_xml_curl endpoint.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createMediaMetrics, createXmlCurlHandler, MediaBridgeError, PgMediaSetStore } from '@sipd/media-bridge'
import type { AdminState, MediaMetrics, MediaNodeSnapshot, MediaSetConfig, ProbeResult } from '@sipd/media-bridge'
import type { SubscriberStore } from '@sipd/registrar'
import type { Logger } from 'pino'
import type { Registry } from 'prom-client'
import { ConfigError, loadConfig } from './config.js'
import type { SipdConfig } from './config.js'
import { HttpError } from './http-server.js'
import type { RouteHandler } from './http-server.js'
import type { DefaultRouting } from './routing-default.js'

/** The path mod_xml_curl's `gateway-url` points at: `http://SIPD_HTTP/xml_curl?key=SECRET`. */
export const XML_CURL_PATH = '/xml_curl'

/** What {@link MediaAdmin} works with. */
export interface MediaAdminOptions {
  config: SipdConfig
  /** The default policy, whose dispatcher holds the sets. */
  policy: DefaultRouting
  logger: Logger
  /** sipd's metrics registry (`/metrics`); the `sipd_media_*` metrics are registered on it. */
  registry: Registry
}

/** A node as the admin API lists it. */
export interface MediaNodeView {
  uri: string
  weight: number
  priority: number
  attributes: Record<string, string>
  /** `enabled`, `disabled` or `draining`, as set by config or the admin API. */
  adminState: AdminState
  /** `active`, `probing` or `inactive`, from probes and live calls. */
  health: string
  /** What decides new calls: the admin state when not `enabled`, else the health. */
  state: string
  /** Calls set up to the node and not yet ended. */
  activeCalls: number
  /** The last OPTIONS probe, or null before the first. */
  lastProbe: { at: string, latencyMs: number, alive: boolean, status?: number, error?: string } | null
}

/** What a reload did. */
export interface MediaReloadResult {
  source: 'config' | 'postgres'
  sets: number
  nodes: number
  /** Node URIs that were not configured before. */
  added: string[]
  /** Node URIs no longer configured (their calls in progress go on). */
  removed: string[]
}

/** The admin-state words the API takes: `active` is `enabled`. */
const STATE_WORDS: Readonly<Record<string, AdminState>> = Object.freeze({ active: 'enabled', enabled: 'enabled', disabled: 'disabled', draining: 'draining' })

function probeView (p: ProbeResult | undefined): MediaNodeView['lastProbe'] {
  if (p === undefined) return null
  return {
    at: new Date(p.at).toISOString(),
    latencyMs: Math.round(p.latencyMs * 1000) / 1000,
    alive: p.alive,
    ...(p.status !== undefined ? { status: p.status } : {}),
    ...(p.error !== undefined ? { error: p.error } : {})
  }
}

function nodeView (n: MediaNodeSnapshot): MediaNodeView {
  return {
    uri: n.uri,
    weight: n.weight,
    priority: n.priority,
    attributes: n.attributes,
    adminState: n.adminState,
    health: n.health,
    state: n.adminState === 'enabled' ? n.health : n.adminState,
    activeCalls: n.activeCalls,
    lastProbe: probeView(n.lastProbe)
  }
}

/** Media sets' source, reload, admin routes and metrics of one sipd. */
export class MediaAdmin {
  readonly #config: SipdConfig
  readonly #policy: DefaultRouting
  readonly #logger: Logger
  readonly #metrics: MediaMetrics
  readonly #store: PgMediaSetStore | undefined
  /** Reloads run one at a time, in order. */
  #reloading: Promise<unknown> = Promise.resolve()
  #lastReload: { at: string, trigger: string, ok: boolean, error?: string } | undefined

  constructor (options: MediaAdminOptions) {
    this.#config = options.config
    this.#policy = options.policy
    this.#logger = options.logger
    this.#metrics = createMediaMetrics({ registry: options.registry, dispatcher: options.policy.dispatcher })
    this.#store = options.config.media.source === 'postgres' && options.config.database.url !== undefined
      ? new PgMediaSetStore({ connectionString: options.config.database.url })
      : undefined
  }

  /**
   * Load the sets from PostgreSQL when that is the source. sipd starts even
   * when the database cannot be read: calls into media get 503 until a
   * reload succeeds.
   */
  async start (): Promise<void> {
    if (this.#store === undefined) return
    try {
      await this.reload('start')
    } catch (err) {
      this.#logger.error({ err: (err as Error).message }, 'media sets not loaded from PostgreSQL; calls into media get 503 until a reload succeeds')
    }
  }

  /**
   * Re-read the sets (the config file, or PostgreSQL) and apply them without
   * dropping calls: nodes that stay keep their health and active calls.
   * Nothing changes when the new sets are invalid.
   * @throws ConfigError or MediaBridgeError naming the problem
   */
  async reload (trigger: string): Promise<MediaReloadResult> {
    const run = this.#reloading.then(async () => await this.#reload(trigger), async () => await this.#reload(trigger))
    this.#reloading = run.catch(() => {})
    return await run
  }

  async #reload (trigger: string): Promise<MediaReloadResult> {
    const at = new Date().toISOString()
    try {
      const sets = await this.#readSets()
      const dispatcher = this.#policy.dispatcher
      const before = new Set(dispatcher.nodeUris())
      this.#policy.reloadMedia(sets)
      const after = dispatcher.nodeUris()
      const afterSet = new Set(after)
      const result: MediaReloadResult = {
        source: this.#config.media.source,
        sets: sets.length,
        nodes: after.length,
        added: after.filter(u => !before.has(u)),
        removed: [...before].filter(u => !afterSet.has(u))
      }
      this.#lastReload = { at, trigger, ok: true }
      this.#logger.info({ trigger, ...result }, 'media sets reloaded')
      return result
    } catch (err) {
      this.#lastReload = { at, trigger, ok: false, error: (err as Error).message }
      this.#logger.error({ trigger, err: (err as Error).message }, 'media reload failed; the previous sets stay')
      throw err
    }
  }

  async #readSets (): Promise<MediaSetConfig[]> {
    if (this.#store !== undefined) return await this.#store.load()
    const file = this.#config.configFile
    if (file === undefined) throw new ConfigError('media', 'sipd runs without a config file: there is nothing to reload the media sets from')
    // Only the media sets are taken from the file; other changes need a restart.
    const fresh = loadConfig(file, process.env)
    return fresh.media.sets.map(s => ({
      id: s.id,
      algorithm: s.algorithm,
      nodes: s.nodes.map(n => ({ uri: n.uri, weight: n.weight, priority: n.priority, attributes: n.attributes, adminState: n.state }))
    }))
  }

  /** Everything `GET /api/media` lists. */
  list (): unknown {
    const snap = this.#policy.dispatcher.snapshot()
    return {
      source: this.#config.media.source,
      sets: snap.sets.map(s => ({ id: s.id, algorithm: s.algorithm, nodes: s.nodes.map(nodeView) })),
      retired: snap.retired,
      trackedCalls: snap.trackedCalls,
      lastReload: this.#lastReload ?? null
    }
  }

  /**
   * Admin routes:
   * - `GET /api/media`: sets and nodes with state, active calls, last probe
   * - `GET /api/media/nodes/{uri}`: one node (URI percent-encoded) with its sets
   * - `PUT` or `POST /api/media/nodes/{uri}` with `{"state": "active" | "disabled" | "draining"}` (or `?state=`)
   * - `POST /api/media/reload`
   */
  routes (): Array<[string, RouteHandler]> {
    const setState: RouteHandler = (_req, url, body) => this.#setState(url, body)
    return [
      ['GET /api/media', () => this.list()],
      ['GET /api/media/nodes/*', (_req, url) => this.#node(nodeUriOf(url))],
      ['PUT /api/media/nodes/*', setState],
      ['POST /api/media/nodes/*', setState],
      ['POST /api/media/reload', async () => {
        try {
          return await this.reload('admin')
        } catch (err) {
          if (err instanceof ConfigError || err instanceof MediaBridgeError) throw new HttpError(err instanceof MediaBridgeError && err.code === 'MEDIA_ERR_STORE' ? 503 : 400, err.message)
          throw err
        }
      }]
    ]
  }

  #node (uri: string): unknown {
    const sets: Array<{ id: number | string, algorithm: string }> = []
    let view: MediaNodeView | undefined
    for (const s of this.#policy.dispatcher.snapshot().sets) {
      const n = s.nodes.find(x => x.uri === uri)
      if (n === undefined) continue
      sets.push({ id: s.id, algorithm: s.algorithm })
      view ??= nodeView(n)
    }
    if (view === undefined) throw new HttpError(404, `no media node ${JSON.stringify(uri)}`)
    return { ...view, sets }
  }

  #setState (url: URL, body: string): unknown {
    const uri = nodeUriOf(url)
    let word = url.searchParams.get('state') ?? undefined
    if (word === undefined && body.trim() !== '') {
      let parsed: unknown
      try {
        parsed = JSON.parse(body)
      } catch {
        throw new HttpError(400, 'body must be JSON like {"state": "draining"}')
      }
      const s = (parsed as { state?: unknown } | null)?.state
      if (typeof s === 'string') word = s
    }
    const state = word === undefined ? undefined : STATE_WORDS[word]
    if (state === undefined) throw new HttpError(400, `state must be one of active, disabled, draining; got ${JSON.stringify(word ?? null)}`)
    if (!this.#policy.dispatcher.setAdminState(uri, state)) throw new HttpError(404, `no media node ${JSON.stringify(uri)}`)
    this.#logger.info({ uri, state }, 'media node admin state set')
    return this.#node(uri)
  }

  /** Release the PostgreSQL pool and detach the metrics. */
  async close (): Promise<void> {
    this.#metrics.detach()
    await this.#store?.close()
  }
}

function nodeUriOf (url: URL): string {
  const raw = url.pathname.slice('/api/media/nodes/'.length)
  try {
    return decodeURIComponent(raw)
  } catch {
    throw new HttpError(400, 'the node URI in the path must be percent-encoded')
  }
}

/**
 * The mod_xml_curl endpoint (`xml_curl.enabled`) at {@link XML_CURL_PATH}:
 * `section=directory` from the registrar's subscriber store (the MD5 HA1 as
 * `a1-hash`; unknown, disabled or other-realm users are not found),
 * `section=dialplan` bridging to sipd. Undefined when disabled.
 */
export function xmlCurlRoutes (config: SipdConfig, subscribers: SubscriberStore, logger: Logger): Map<string, (req: IncomingMessage, res: ServerResponse) => void> | undefined {
  const xc = config.xmlCurl
  if (!xc.enabled) return undefined
  const handler = createXmlCurlHandler({
    secret: xc.secret,
    basicAuth: xc.basicUser === undefined ? undefined : { username: xc.basicUser, password: xc.basicPassword ?? '' },
    dialplan: { context: xc.dialplanContext, ...(xc.bridgeTemplate !== undefined ? { bridgeTemplate: xc.bridgeTemplate } : {}) },
    lookupSubscriber: async (user, domain, fields) => {
      const sub = await subscribers.lookup(user, domain)
      if (sub === undefined || !sub.enabled) return undefined
      // The HA1 only verifies against the realm it was computed for.
      const realm = (fields.get('sip_auth_realm') ?? domain).toLowerCase()
      if (sub.realm.toLowerCase() !== realm) return undefined
      return { ha1Md5: sub.ha1Md5 }
    },
    onError: err => { logger.warn({ err: (err as Error).message }, 'xml_curl lookup failed') }
  })
  return new Map([[XML_CURL_PATH, (req, res) => { void handler(req, res) }]])
}
