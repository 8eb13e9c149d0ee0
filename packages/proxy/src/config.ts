/**
 * sipd configuration: one YAML file, validated on load. Every key has a
 * default, so sipd starts with no file at all; environment variables
 * override the common keys (explicit file value < env < command line).
 */
import { readFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import { resolve, dirname, isAbsolute } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { MD5_ONLY_USER_AGENTS } from '@sipd/registrar'

/** A configuration error: names the key, the value and what is allowed. */
export class ConfigError extends Error {
  readonly code = 'SIPD_ERR_CONFIG'
  readonly key: string
  constructor (key: string, problem: string) {
    super(`config ${key}: ${problem}`)
    this.name = 'ConfigError'
    this.key = key
  }
}

export type MediaAlgorithm = 'round-robin' | 'weighted' | 'hash-callid' | 'hash-from' | 'least-calls' | 'priority'
export const MEDIA_ALGORITHMS: readonly MediaAlgorithm[] = ['round-robin', 'weighted', 'hash-callid', 'hash-from', 'least-calls', 'priority']

export interface MediaNodeConfig {
  uri: string
  weight: number
  priority: number
  attributes: Record<string, string>
  state: 'enabled' | 'disabled' | 'draining'
}

export interface MediaSetConfig {
  id: number | string
  algorithm: MediaAlgorithm
  nodes: MediaNodeConfig[]
}

export interface SipdConfig {
  /** Listen addresses, `udp:HOST:PORT` / `tcp:HOST:PORT`. @default ["udp:0.0.0.0:5060","tcp:0.0.0.0:5060"] */
  listen: string[]
  /** HTTP address for /metrics, /healthz and the admin API, `HOST:PORT`. @default "127.0.0.1:9090" */
  http: string
  /** Host (and optional port) written in Via and Record-Route; default: the listen address (or the host's first address for 0.0.0.0). */
  advertise: string | undefined
  /** This node's id, shared in Redis with the bindings whose flows it holds. @default hostname-pid */
  nodeId: string
  /** pino level. @default "info" */
  logLevel: string
  /** Domains this registrar/proxy serves. @default [] */
  domains: string[]
  subscribers: {
    /** Embedded subscribers (passwords hashed at load). */
    users: Array<{ user: string, domain: string, password: string }>
    /** Lookup cache TTL. @default 5000 */
    cacheTtlMs: number
  }
  /** PostgreSQL for subscribers (SIPD_DATABASE_URL). */
  database: { url: string | undefined }
  /** Redis for locations (SIPD_REDIS_URL); memory store when unset. */
  redis: {
    url: string | undefined
    /** Redis Cluster seed nodes, `host:port`. */
    cluster: string[]
    /** Sentinel addresses `host:port` and the master name. */
    sentinels: string[]
    sentinelName: string | undefined
    prefix: string
  }
  registrar: {
    minExpires: number
    maxExpires: number
    defaultExpires: number
    maxContacts: number
    /** Flow-Timer seconds sent with Require: outbound (RFC 5626 §5.4); 0: none. @default 0 */
    flowTimer: number
    /**
     * Source networks (CIDR) whose REGISTERs are accepted without digest
     * authentication; `["0.0.0.0/0", "::/0"]` is every source. Anyone who
     * can send from them may bind any AOR of `domains` to any contact.
     * @default []
     */
    authExempt: string[]
  }
  auth: {
    /** HMAC secret for nonces; must be the same on every node. Random per process when unset. */
    secret: string
    secretFromConfig: boolean
    /** Digest algorithms offered, in order (RFC 8760). @default ["MD5"] */
    algorithms: Array<'MD5' | 'SHA-256'>
    /**
     * User-Agent prefixes of phones challenged with MD5 alone when MD5 is
     * offered but not first (they give up on a first challenge they cannot
     * answer). @default the registrar's MD5_ONLY_USER_AGENTS (baresip before v3.11)
     */
    md5OnlyUserAgents: string[]
    /** Nonce lifetime in seconds. @default 300 */
    nonceTtl: number
  }
  /** Trusted sources (trunk providers), CIDR. */
  trusted: string[]
  media: {
    /** Where media sets come from: this file, or the PostgreSQL tables `media_sets` / `media_nodes` (database.url). @default "config" */
    source: 'config' | 'postgres'
    sets: MediaSetConfig[]
    /** How long to wait for a media node's first response (even 100) to an INVITE before failing over, ms. @default 2000 */
    responseTimeoutMs: number
    /** Set used for calls into media; default: the first set. */
    defaultSet: number | string | undefined
    /** Per-DID set choice: number prefix → set id. */
    didSets: Record<string, number | string>
    probe: {
      intervalMs: number
      timeoutMs: number
      failureThreshold: number
      successThreshold: number
      /** Response codes that mean "down" (other responses mean alive). */
      downCodes: number[]
    }
  }
  trunks: {
    gateways: Array<{ id: string, uri: string }>
    routes: Array<{ prefix: string, gateways: string[] }>
    /** How long a failing gateway is skipped. @default 30000 */
    downForMs: number
  }
  /** Path of a TypeScript/JS module exporting `route(request, ctx)`, relative to the config file. */
  routing: string | undefined
  limits: {
    maxMessageSize: number
    maxHeaders: number
    tcpMaxConnections: number
    tcpMaxPerAddress: number
    tcpIdleMs: number
    /** A TCP message must be whole this long after its first byte. */
    tcpMessageTimeoutMs: number
  }
  timers: {
    t1: number
    t2: number
    t4: number
    /** Proxy Timer C (RFC 3261 §16.8), > 3 min. @default 180000 */
    timerC: number
    /** Timer D: how long a client INVITE transaction over UDP absorbs retransmitted finals (RFC 3261 §17.1.1.2, > 32 s). @default 32000 */
    timerD: number
  }
  xmlCurl: {
    enabled: boolean
    secret: string | undefined
    basicUser: string | undefined
    basicPassword: string | undefined
    dialplanContext: string
    bridgeTemplate: string | undefined
  }
  /** Directory of the config file (for relative paths). */
  baseDir: string
  /** The config file read, for reloading media sets (SIGHUP, POST /api/media/reload); undefined without a file. */
  configFile?: string | undefined
}

type Obj = Record<string, unknown>

function isObj (v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function show (v: unknown): string {
  const s = JSON.stringify(v)
  return s === undefined ? String(v) : s.length > 80 ? s.slice(0, 80) + '…' : s
}

class Reader {
  constructor (readonly obj: Obj, readonly path: string) {}

  key (k: string): string {
    return this.path === '' ? k : `${this.path}.${k}`
  }

  #check (k: string): unknown {
    return this.obj[k]
  }

  str (k: string, def: string): string
  str (k: string, def: undefined): string | undefined
  str (k: string, def: string | undefined): string | undefined {
    const v = this.#check(k)
    if (v === undefined || v === null) return def
    if (typeof v === 'number') return String(v)
    if (typeof v !== 'string') throw new ConfigError(this.key(k), `value ${show(v)} is not a string`)
    return v
  }

  int (k: string, def: number, min: number, max: number): number {
    const v = this.#check(k)
    if (v === undefined || v === null) return def
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      throw new ConfigError(this.key(k), `value ${show(v)} is not an integer from ${min} to ${max}`)
    }
    return v
  }

  bool (k: string, def: boolean): boolean {
    const v = this.#check(k)
    if (v === undefined || v === null) return def
    if (typeof v !== 'boolean') throw new ConfigError(this.key(k), `value ${show(v)} is not true or false`)
    return v
  }

  oneOf<T extends string> (k: string, def: T, allowed: readonly T[]): T {
    const v = this.#check(k)
    if (v === undefined || v === null) return def
    if (typeof v !== 'string' || !allowed.includes(v as T)) {
      throw new ConfigError(this.key(k), `value ${show(v)} is not one of ${allowed.join(', ')}`)
    }
    return v as T
  }

  strList (k: string, def: string[], check?: (s: string, key: string) => void): string[] {
    const v = this.#check(k)
    if (v === undefined || v === null) return def
    const arr = typeof v === 'string' ? [v] : v
    if (!Array.isArray(arr)) throw new ConfigError(this.key(k), `value ${show(v)} is not a list of strings`)
    return arr.map((e, i) => {
      if (typeof e !== 'string' && typeof e !== 'number') throw new ConfigError(`${this.key(k)}[${i}]`, `value ${show(e)} is not a string`)
      const s = String(e)
      check?.(s, `${this.key(k)}[${i}]`)
      return s
    })
  }

  sub (k: string): Reader {
    const v = this.#check(k)
    if (v === undefined || v === null) return new Reader({}, this.key(k))
    if (!isObj(v)) throw new ConfigError(this.key(k), `value ${show(v)} is not a mapping`)
    return new Reader(v, this.key(k))
  }

  list (k: string): Reader[] {
    const v = this.#check(k)
    if (v === undefined || v === null) return []
    if (!Array.isArray(v)) throw new ConfigError(this.key(k), `value ${show(v)} is not a list`)
    return v.map((e, i) => {
      if (!isObj(e)) throw new ConfigError(`${this.key(k)}[${i}]`, `value ${show(e)} is not a mapping`)
      return new Reader(e, `${this.key(k)}[${i}]`)
    })
  }

  /** Reject keys the schema does not know (a typo must not silently fall back to a default). */
  allowKeys (keys: readonly string[]): void {
    for (const k of Object.keys(this.obj)) {
      if (!keys.includes(k)) throw new ConfigError(this.key(k), `unknown key; allowed here: ${keys.join(', ')}`)
    }
  }
}

/** Check `udp:HOST:PORT` / `tcp:HOST:PORT` (IPv6 in brackets). */
export function checkListen (s: string, key: string): void {
  const c = s.indexOf(':')
  const proto = c > 0 ? s.slice(0, c).toLowerCase() : ''
  if (proto !== 'udp' && proto !== 'tcp') throw new ConfigError(key, `value ${show(s)} must start with udp: or tcp: (e.g. "udp:127.0.0.1:5060")`)
  checkHostPort(s.slice(c + 1), key, s)
}

/** Check `HOST:PORT`; `shown` is the value as the user wrote it, quoted in the error. */
export function checkHostPort (s: string, key: string, shown: string = s): void {
  const c = s.lastIndexOf(':')
  const port = Number(s.slice(c + 1))
  const host = s.slice(0, c)
  if (c <= 0 || !Number.isInteger(port) || port < 0 || port > 65535 || host === '' || (host.includes(':') && !(host.startsWith('[') && host.endsWith(']')))) {
    throw new ConfigError(key, `value ${show(shown)} is not HOST:PORT${shown === s ? '' : ' after the transport'} (IPv6 as [::1]:5060)`)
  }
}

/** Check an IPv4 or IPv6 CIDR (a bare address means /32 or /128). */
export function checkCidr (s: string, key: string): void {
  const slash = s.indexOf('/')
  const addr = slash < 0 ? s : s.slice(0, slash)
  const bits = slash < 0 ? undefined : Number(s.slice(slash + 1))
  const v4 = addr.split('.')
  const isV4 = v4.length === 4 && v4.every(p => /^\d{1,3}$/.test(p) && Number(p) <= 255)
  const isV6 = !isV4 && addr.includes(':')
  if (!isV4 && !isV6) throw new ConfigError(key, `value ${show(s)} is not an IP address or CIDR`)
  if (bits !== undefined && (!Number.isInteger(bits) || bits < 0 || bits > (isV4 ? 32 : 128))) {
    throw new ConfigError(key, `value ${show(s)} has an invalid prefix length`)
  }
}

function checkSipUri (s: string, key: string): void {
  const l = s.toLowerCase()
  if (!(l.startsWith('sip:') || l.startsWith('sips:')) || s.length < 5) throw new ConfigError(key, `value ${show(s)} is not a sip: URI`)
}

const TOP_KEYS = ['listen', 'http', 'advertise', 'node_id', 'log_level', 'domains', 'subscribers', 'database', 'redis', 'registrar', 'auth', 'trusted', 'media', 'trunks', 'routing', 'limits', 'timers', 'xml_curl'] as const

/** Validate a parsed YAML document (or `{}`) into a complete config. */
export function buildConfig (doc: unknown, env: NodeJS.ProcessEnv = {}, baseDir = process.cwd()): SipdConfig {
  if (doc === undefined || doc === null) doc = {}
  if (!isObj(doc)) throw new ConfigError('(top)', `the file must hold a mapping of keys, got ${show(doc)}`)
  const r = new Reader(doc, '')
  r.allowKeys(TOP_KEYS)

  let listen = r.strList('listen', ['udp:0.0.0.0:5060', 'tcp:0.0.0.0:5060'], checkListen)
  if (env.SIPD_LISTEN !== undefined && env.SIPD_LISTEN !== '') {
    listen = env.SIPD_LISTEN.split(',').map(s => s.trim()).filter(s => s !== '')
    listen.forEach((s, i) => checkListen(s, `SIPD_LISTEN[${i}]`))
  }
  if (listen.length === 0) throw new ConfigError('listen', 'at least one listen address is needed')
  let http = r.str('http', '127.0.0.1:9090')
  if (env.SIPD_HTTP !== undefined && env.SIPD_HTTP !== '') http = env.SIPD_HTTP
  checkHostPort(http, env.SIPD_HTTP !== undefined && env.SIPD_HTTP !== '' ? 'SIPD_HTTP' : 'http')

  const subs = r.sub('subscribers')
  subs.allowKeys(['users', 'cache_ttl_ms'])
  const users = subs.list('users').map(u => {
    u.allowKeys(['user', 'domain', 'password'])
    const user = u.str('user', undefined)
    const domain = u.str('domain', undefined)
    const password = u.str('password', undefined)
    if (user === undefined || user === '') throw new ConfigError(u.key('user'), 'is required')
    if (domain === undefined || domain === '') throw new ConfigError(u.key('domain'), 'is required')
    if (password === undefined) throw new ConfigError(u.key('password'), 'is required')
    return { user, domain: domain.toLowerCase(), password }
  })

  const db = r.sub('database')
  db.allowKeys(['url'])
  const redis = r.sub('redis')
  redis.allowKeys(['url', 'cluster', 'sentinels', 'sentinel_name', 'prefix'])
  const reg = r.sub('registrar')
  reg.allowKeys(['min_expires', 'max_expires', 'default_expires', 'max_contacts', 'flow_timer', 'auth_exempt'])
  const minExpires = reg.int('min_expires', 60, 0, 86400)
  const maxExpires = reg.int('max_expires', 3600, 1, 31 * 86400)
  if (maxExpires < minExpires) throw new ConfigError('registrar.max_expires', `value ${maxExpires} is below registrar.min_expires ${minExpires}`)
  const auth = r.sub('auth')
  auth.allowKeys(['secret', 'algorithms', 'md5_only_user_agents', 'nonce_ttl'])
  const secret = auth.str('secret', undefined) ?? env.SIPD_AUTH_SECRET
  const algorithms = auth.strList('algorithms', ['MD5'], (s, key) => {
    if (s !== 'MD5' && s !== 'SHA-256') throw new ConfigError(key, `value ${show(s)} is not one of MD5, SHA-256`)
  }) as Array<'MD5' | 'SHA-256'>
  if (algorithms.length === 0) throw new ConfigError('auth.algorithms', 'at least one algorithm is needed')

  const media = r.sub('media')
  media.allowKeys(['source', 'sets', 'default_set', 'did_sets', 'probe', 'response_timeout_ms'])
  const mediaSource = media.oneOf('source', 'config', ['config', 'postgres'] as const)
  const seen = new Set<string>()
  const sets: MediaSetConfig[] = media.list('sets').map(sr => {
    sr.allowKeys(['id', 'algorithm', 'nodes'])
    const idRaw = sr.obj.id
    if (typeof idRaw !== 'number' && typeof idRaw !== 'string') throw new ConfigError(sr.key('id'), `value ${show(idRaw)} must be a number or a string`)
    if (seen.has(String(idRaw))) throw new ConfigError(sr.key('id'), `duplicate media set id ${show(idRaw)}`)
    seen.add(String(idRaw))
    const nodes = sr.list('nodes').map(nr => {
      nr.allowKeys(['uri', 'weight', 'priority', 'attributes', 'state'])
      const uri = nr.str('uri', undefined)
      if (uri === undefined) throw new ConfigError(nr.key('uri'), 'is required')
      checkSipUri(uri, nr.key('uri'))
      const attrs = nr.sub('attributes')
      const attributes: Record<string, string> = {}
      for (const [k, v] of Object.entries(attrs.obj)) attributes[k] = String(v)
      return {
        uri,
        weight: nr.int('weight', 1, 0, 1000000),
        priority: nr.int('priority', 0, 0, 1000000),
        attributes,
        state: nr.oneOf('state', 'enabled', ['enabled', 'disabled', 'draining'] as const)
      }
    })
    if (nodes.length === 0) throw new ConfigError(sr.key('nodes'), 'a media set needs at least one node')
    return { id: idRaw, algorithm: sr.oneOf('algorithm', 'round-robin', MEDIA_ALGORITHMS), nodes }
  })
  const defaultSetRaw = media.obj.default_set
  // Sets read from PostgreSQL are checked against default_set / did_sets when loaded.
  const setKnown = (id: unknown): boolean => mediaSource === 'postgres' || sets.some(s => String(s.id) === String(id))
  if (defaultSetRaw !== undefined && !setKnown(defaultSetRaw)) {
    throw new ConfigError('media.default_set', `value ${show(defaultSetRaw)} is not the id of a media set`)
  }
  const didSets: Record<string, number | string> = {}
  for (const [prefix, id] of Object.entries(media.sub('did_sets').obj)) {
    if (!setKnown(id)) throw new ConfigError(`media.did_sets.${prefix}`, `value ${show(id)} is not the id of a media set`)
    didSets[prefix] = id as number | string
  }
  const probe = media.sub('probe')
  probe.allowKeys(['interval_ms', 'timeout_ms', 'failure_threshold', 'success_threshold', 'down_codes'])

  const trunks = r.sub('trunks')
  trunks.allowKeys(['gateways', 'routes', 'down_for_ms'])
  const gwIds = new Set<string>()
  const gateways = trunks.list('gateways').map(g => {
    g.allowKeys(['id', 'uri'])
    const id = g.str('id', undefined)
    const uri = g.str('uri', undefined)
    if (id === undefined || id === '') throw new ConfigError(g.key('id'), 'is required')
    if (gwIds.has(id)) throw new ConfigError(g.key('id'), `duplicate gateway id ${show(id)}`)
    gwIds.add(id)
    if (uri === undefined) throw new ConfigError(g.key('uri'), 'is required')
    checkSipUri(uri, g.key('uri'))
    return { id, uri }
  })
  const routes = trunks.list('routes').map(rt => {
    rt.allowKeys(['prefix', 'gateways'])
    const prefix = rt.str('prefix', '')
    const gws = rt.strList('gateways', [], (s, key) => {
      if (!gwIds.has(s)) throw new ConfigError(key, `value ${show(s)} is not a gateway id (known: ${[...gwIds].join(', ') || 'none'})`)
    })
    if (gws.length === 0) throw new ConfigError(rt.key('gateways'), 'a route needs at least one gateway')
    return { prefix, gateways: gws }
  })

  const limits = r.sub('limits')
  limits.allowKeys(['max_message_size', 'max_headers', 'tcp_max_connections', 'tcp_max_per_address', 'tcp_idle_ms', 'tcp_message_timeout_ms'])
  const tcpMaxConnections = limits.int('tcp_max_connections', 10000, 1, 1000000)
  // The per-address default follows a smaller total; both given and contradicting is an error.
  const tcpMaxPerAddress = limits.int('tcp_max_per_address', Math.min(100, tcpMaxConnections), 1, 1000000)
  if (tcpMaxPerAddress > tcpMaxConnections) {
    throw new ConfigError('limits.tcp_max_per_address', `value ${tcpMaxPerAddress} is above limits.tcp_max_connections (${tcpMaxConnections}); it must be at most that`)
  }
  const timers = r.sub('timers')
  timers.allowKeys(['t1', 't2', 't4', 'timer_c', 'timer_d'])
  const t1 = timers.int('t1', 500, 1, 60000)
  const t2 = timers.int('t2', 4000, 1, 600000)
  if (t2 < t1) throw new ConfigError('timers.t2', `value ${t2} is below timers.t1 ${t1}`)
  const xc = r.sub('xml_curl')
  xc.allowKeys(['enabled', 'secret', 'basic_user', 'basic_password', 'dialplan_context', 'bridge_template'])

  const routing = r.str('routing', undefined)
  let dbUrl = db.str('url', undefined)
  if (env.SIPD_DATABASE_URL !== undefined && env.SIPD_DATABASE_URL !== '') dbUrl = env.SIPD_DATABASE_URL
  let redisUrl = redis.str('url', undefined)
  if (env.SIPD_REDIS_URL !== undefined && env.SIPD_REDIS_URL !== '') redisUrl = env.SIPD_REDIS_URL

  const advertise = r.str('advertise', undefined) ?? (env.SIPD_ADVERTISE !== '' ? env.SIPD_ADVERTISE : undefined)
  if (advertise !== undefined && advertise.trim() === '') throw new ConfigError('advertise', 'must not be empty')

  const config: SipdConfig = {
    listen,
    http,
    advertise,
    nodeId: r.str('node_id', undefined) ?? env.SIPD_NODE_ID ?? `${hostname()}-${process.pid}`,
    logLevel: env.SIPD_LOG_LEVEL ?? r.oneOf('log_level', 'info', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const),
    domains: r.strList('domains', []).map(d => d.toLowerCase()),
    subscribers: { users, cacheTtlMs: subs.int('cache_ttl_ms', 5000, 0, 3600000) },
    database: { url: dbUrl },
    redis: {
      url: redisUrl,
      cluster: redis.strList('cluster', [], checkHostPort),
      sentinels: redis.strList('sentinels', [], checkHostPort),
      sentinelName: redis.str('sentinel_name', undefined),
      prefix: redis.str('prefix', 'sipd:')
    },
    registrar: {
      minExpires,
      maxExpires,
      defaultExpires: reg.int('default_expires', Math.min(3600, maxExpires), 1, maxExpires),
      maxContacts: reg.int('max_contacts', 10, 1, 1000),
      flowTimer: reg.int('flow_timer', 0, 0, 3600),
      authExempt: reg.strList('auth_exempt', [], checkCidr)
    },
    auth: {
      secret: secret ?? randomBytes(32).toString('hex'),
      secretFromConfig: secret !== undefined,
      algorithms,
      md5OnlyUserAgents: auth.strList('md5_only_user_agents', [...MD5_ONLY_USER_AGENTS], (s, key) => {
        if (s === '') throw new ConfigError(key, 'an empty prefix would match every User-Agent')
      }),
      nonceTtl: auth.int('nonce_ttl', 300, 10, 86400)
    },
    trusted: r.strList('trusted', [], checkCidr),
    media: {
      source: mediaSource,
      sets,
      responseTimeoutMs: media.int('response_timeout_ms', 2000, 100, 180000),
      defaultSet: defaultSetRaw as number | string | undefined,
      didSets,
      probe: {
        intervalMs: probe.int('interval_ms', 5000, 100, 3600000),
        timeoutMs: probe.int('timeout_ms', 2000, 50, 60000),
        failureThreshold: probe.int('failure_threshold', 2, 1, 100),
        successThreshold: probe.int('success_threshold', 2, 1, 100),
        downCodes: (probe.obj.down_codes === undefined ? [] : probe.strList('down_codes', [])).map((s, i) => {
          const n = Number(s)
          if (!Number.isInteger(n) || n < 100 || n > 699) throw new ConfigError(`media.probe.down_codes[${i}]`, `value ${show(s)} is not a SIP status code`)
          return n
        })
      }
    },
    trunks: { gateways, routes, downForMs: trunks.int('down_for_ms', 30000, 0, 86400000) },
    routing,
    limits: {
      maxMessageSize: limits.int('max_message_size', 65535, 1024, 1048576),
      maxHeaders: limits.int('max_headers', 256, 16, 10000),
      tcpMaxConnections,
      tcpMaxPerAddress,
      tcpIdleMs: limits.int('tcp_idle_ms', 300000, 100, 86400000),
      tcpMessageTimeoutMs: limits.int('tcp_message_timeout_ms', 20000, 100, 86400000)
    },
    timers: { t1, t2, t4: timers.int('t4', 5000, 1, 600000), timerC: timers.int('timer_c', 180000, 1000, 3600000), timerD: timers.int('timer_d', 32000, 0, 600000) },
    xmlCurl: {
      enabled: xc.bool('enabled', false),
      secret: xc.str('secret', undefined),
      basicUser: xc.str('basic_user', undefined),
      basicPassword: xc.str('basic_password', undefined),
      dialplanContext: xc.str('dialplan_context', 'public'),
      bridgeTemplate: xc.str('bridge_template', undefined)
    },
    baseDir
  }
  if (mediaSource === 'postgres' && dbUrl === undefined) throw new ConfigError('media.source', 'value "postgres" needs database.url (or SIPD_DATABASE_URL)')
  if (mediaSource === 'postgres' && sets.length > 0) throw new ConfigError('media.sets', 'must be empty with media.source "postgres": the sets come from the media_nodes table')
  if (config.xmlCurl.enabled && config.xmlCurl.secret === undefined && config.xmlCurl.basicUser === undefined) {
    throw new ConfigError('xml_curl', 'enabled without secret or basic_user: the directory would be open to anyone')
  }
  if (routing !== undefined) config.routing = isAbsolute(routing) ? routing : resolve(baseDir, routing)
  return config
}

/** Load and validate a YAML file (undefined path: defaults plus env). */
export function loadConfig (path: string | undefined, env: NodeJS.ProcessEnv = process.env): SipdConfig {
  if (path === undefined) return buildConfig({}, env)
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new ConfigError('(file)', `cannot read ${path}: ${(err as Error).message}`)
  }
  let doc: unknown
  try {
    doc = parseYaml(text)
  } catch (err) {
    throw new ConfigError('(file)', `${path} is not valid YAML: ${(err as Error).message}`)
  }
  const config = buildConfig(doc, env, dirname(resolve(path)))
  config.configFile = resolve(path)
  return config
}
