/**
 * sipd's HTTP side: /metrics (Prometheus), /healthz (load balancers), the
 * admin JSON API and, when enabled, FreeSWITCH's mod_xml_curl endpoint.
 */
import { createServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { Registry } from 'prom-client'

/** One admin route: returns a JSON-able value or throws HttpError. */
export type RouteHandler = (req: IncomingMessage, url: URL, body: string) => Promise<unknown> | unknown

/** An HTTP failure with a status, sent as `{ error }`. */
export class HttpError extends Error {
  readonly status: number
  constructor (status: number, message: string) {
    super(message)
    this.status = status
  }
}

export interface HttpServerOptions {
  host: string
  port: number
  registry: Registry
  /** True while sipd is listening and not shutting down. */
  healthy: () => boolean
  /** Routes keyed by `METHOD /path` (exact) or `METHOD /prefix/*`. */
  routes: Map<string, RouteHandler>
  /** Raw handlers for a path (xml_curl), given the request untouched. */
  raw?: Map<string, (req: IncomingMessage, res: ServerResponse) => void>
  onError?: (err: unknown) => void
}

const MAX_BODY = 1024 * 1024

function readBody (req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => {
      size += c.length
      if (size > MAX_BODY) {
        reject(new HttpError(413, 'body too large'))
        req.destroy()
        return
      }
      chunks.push(c)
    })
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    req.on('error', reject)
  })
}

function send (res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

function findRoute (routes: Map<string, RouteHandler>, method: string, path: string): RouteHandler | undefined {
  const exact = routes.get(`${method} ${path}`)
  if (exact !== undefined) return exact
  for (const [key, h] of routes) {
    if (!key.endsWith('/*')) continue
    const sp = key.indexOf(' ')
    if (key.slice(0, sp) !== method) continue
    const prefix = key.slice(sp + 1, -1)
    if (path.startsWith(prefix) && path.length > prefix.length) return h
  }
  return undefined
}

/** Start the HTTP server; resolves once it listens. */
export async function startHttpServer (opts: HttpServerOptions): Promise<Server> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://sipd')
    const method = req.method ?? 'GET'
    const raw = opts.raw?.get(url.pathname)
    if (raw !== undefined) {
      raw(req, res)
      return
    }
    if (url.pathname === '/healthz' && method === 'GET') {
      const ok = opts.healthy()
      send(res, ok ? 200 : 503, 'text/plain', ok ? 'ok\n' : 'unavailable\n')
      return
    }
    if (url.pathname === '/metrics' && method === 'GET') {
      opts.registry.metrics().then(
        text => send(res, 200, opts.registry.contentType, text),
        err => { opts.onError?.(err); send(res, 500, 'text/plain', 'metrics failed\n') })
      return
    }
    const route = findRoute(opts.routes, method, url.pathname)
    if (route === undefined) {
      send(res, 404, 'application/json', JSON.stringify({ error: `no route ${method} ${url.pathname}` }) + '\n')
      return
    }
    readBody(req)
      .then(async body => await route(req, url, body))
      .then(
        value => send(res, 200, 'application/json', JSON.stringify(value ?? { ok: true }) + '\n'),
        err => {
          const status = err instanceof HttpError ? err.status : 500
          if (status === 500) opts.onError?.(err)
          send(res, status, 'application/json', JSON.stringify({ error: status === 500 ? 'internal error' : (err as Error).message }) + '\n')
        })
  })
  server.keepAliveTimeout = 5000
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port, opts.host.replace(/^\[|\]$/g, ''), () => {
      server.off('error', reject)
      resolve()
    })
  })
  return server
}
