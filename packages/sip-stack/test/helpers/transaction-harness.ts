// Test plumbing for the transaction tests: SIP message text, a
// TransactionLayer on a FakeClock whose `send` records every message (parsed
// with the real parser), and sources/targets for UDP and TCP.

import { parseMessage } from '@sipd/sip-parser'
import type { SipRequest, SipResponse } from '@sipd/sip-parser'
import { FakeClock } from '../../src/clock.js'
import { TimerWheel } from '../../src/timer-wheel.js'
import { TransactionLayer } from '../../src/transaction-layer.js'
import type { AnyServerTransaction, TransactionLayerOptions } from '../../src/transaction-layer.js'
import type { SendOutcome } from '../../src/transaction-base.js'
import type { ClientTransaction, ClientTransactionHandler } from '../../src/transaction-client.js'
import type { ServerInviteTransaction } from '../../src/transaction-server-invite.js'
import type { SendResult, SendTarget, Source, TransportName } from '../../src/transport-types.js'

/** Fields of a test request; everything has a default. */
export interface RequestFields {
  method?: string
  uri?: string
  /** Top Via sent-by and transport. */
  sentBy?: string
  transport?: string
  /** `null` for a Via without branch. */
  branch?: string | null
  /** Extra Via params, e.g. `;rport`. */
  viaParams?: string
  /** A second Via below the top one. */
  secondVia?: string
  fromTag?: string | null
  toTag?: string
  callId?: string
  cseq?: number
  cseqMethod?: string
  routes?: string[]
  extra?: string[]
  body?: string
}

/** A request as text with CRLF line ends. */
export function requestText (f: RequestFields = {}): string {
  const method = f.method ?? 'INVITE'
  const transport = f.transport ?? 'UDP'
  const branch = f.branch === null ? '' : ';branch=' + (f.branch ?? 'z9hG4bK-client-1')
  const lines = [
    `${method} ${f.uri ?? 'sip:bob@example.com'} SIP/2.0`,
    `Via: SIP/2.0/${transport} ${f.sentBy ?? '192.0.2.10:5060'}${branch}${f.viaParams ?? ''}`
  ]
  if (f.secondVia !== undefined) lines.push('Via: ' + f.secondVia)
  for (const r of f.routes ?? []) lines.push('Route: ' + r)
  lines.push(
    'Max-Forwards: 70',
    'From: "Alice" <sip:alice@example.com>' + (f.fromTag === null ? '' : ';tag=' + (f.fromTag ?? 'from-1')),
    'To: <sip:bob@example.com>' + (f.toTag !== undefined ? ';tag=' + f.toTag : ''),
    'Call-ID: ' + (f.callId ?? 'call-1@example.com'),
    `CSeq: ${f.cseq ?? 1} ${f.cseqMethod ?? method}`,
    'Contact: <sip:alice@192.0.2.10:5060>',
    ...(f.extra ?? [])
  )
  const body = f.body ?? ''
  lines.push('Content-Length: ' + Buffer.byteLength(body), '', body)
  return lines.join('\r\n')
}

/** A parsed request. */
export function request (f: RequestFields = {}): SipRequest {
  return parseMessage(requestText(f)) as SipRequest
}

/** A response to a request sent by us (our Via on top), as a parsed message. */
export function responseTo (req: SipRequest, status: number, opts: { toTag?: string, reason?: string } = {}): SipResponse {
  const lines = [`SIP/2.0 ${status} ${opts.reason ?? 'Reason'}`]
  for (const v of req.headers('via')) lines.push('Via: ' + v)
  lines.push(
    'From: ' + req.header('from')!,
    'To: ' + req.header('to')! + (opts.toTag !== undefined && req.to.tag === undefined ? ';tag=' + opts.toTag : ''),
    'Call-ID: ' + req.callId,
    'CSeq: ' + req.cseq.seq + ' ' + req.cseq.method,
    'Content-Length: 0',
    '',
    ''
  )
  return parseMessage(lines.join('\r\n')) as SipResponse
}

/** A source as the transport layer would report it. */
export function source (transport: TransportName = 'udp', address = '192.0.2.10', port = 5060): Source {
  return {
    transport,
    address,
    port,
    local: { address: '192.0.2.1', port: 5060 },
    flowId: transport === 'tcp' ? 'tcp/7' : `udp/0/${address}/${port}`
  }
}

/** A next-hop target. */
export function target (transport: TransportName = 'udp'): SendTarget {
  return { transport, address: '198.51.100.20', port: 5060 }
}

/** One message handed to `send`. */
export interface Sent {
  bytes: Buffer
  target: SendTarget
  msg: SipRequest | SipResponse
  /** FakeClock time of the send. */
  at: number
}

/** How the harness's `send` answers. */
export type SendMode =
  | { kind: 'ok' }
  | { kind: 'void' }
  | { kind: 'fail' }
  | { kind: 'throw' }
  | { kind: 'reject' }

/** Records every callback of a client transaction. */
export class ClientRecorder implements ClientTransactionHandler {
  readonly events: string[] = []
  readonly provisionals: SipResponse[] = []
  readonly finals: SipResponse[] = []
  readonly errors: Error[] = []
  onProvisional (r: SipResponse): void { this.provisionals.push(r); this.events.push('provisional ' + r.status) }
  onFinal (r: SipResponse): void { this.finals.push(r); this.events.push('final ' + r.status) }
  onTimeout (): void { this.events.push('timeout') }
  onTransportError (e: Error): void { this.errors.push(e); this.events.push('transport-error') }
  onTerminated (_tx: ClientTransaction): void { this.events.push('terminated') }
}

/** A transaction layer on a FakeClock with recording callbacks. */
export class Harness {
  readonly clock = new FakeClock()
  readonly wheel = new TimerWheel(this.clock, { tickMs: 100 })
  readonly sent: Sent[] = []
  readonly serverTxs: AnyServerTransaction[] = []
  readonly strayResponses: SipResponse[] = []
  readonly strayAcks: Array<{ ack: SipRequest, tx: ServerInviteTransaction | undefined }> = []
  readonly layer: TransactionLayer
  mode: SendMode = { kind: 'ok' }
  /** Answer new requests in onRequest (after recording). */
  onRequest: ((tx: AnyServerTransaction) => void) | undefined

  constructor (options: Partial<TransactionLayerOptions> = {}) {
    this.layer = new TransactionLayer({
      clock: this.clock,
      wheel: this.wheel,
      send: (bytes, t) => this.#send(bytes, t),
      onRequest: tx => {
        this.serverTxs.push(tx)
        this.onRequest?.(tx)
      },
      onStrayResponse: r => { this.strayResponses.push(r) },
      onStrayAck: (ack, _s, tx) => { this.strayAcks.push({ ack, tx }) },
      ...options
    })
  }

  #send (bytes: Buffer, t: SendTarget): SendOutcome {
    this.sent.push({ bytes, target: t, msg: parseMessage(bytes), at: this.clock.now() })
    const ok: SendResult = { ok: true, flowId: t.transport === 'tcp' ? 'tcp/99' : 'udp/0', local: { address: '192.0.2.1', port: 5060 } }
    const error = Object.assign(new Error('send failed (test)'), { code: 'SIP_ERR_TEST' })
    switch (this.mode.kind) {
      case 'ok': return ok
      case 'void': return undefined
      case 'fail': return { ok: false, error }
      case 'throw': throw error
      case 'reject': return Promise.reject(error)
    }
  }

  /** Messages sent so far, parsed; `since` skips the first n. */
  sentMessages (since = 0): Array<SipRequest | SipResponse> {
    return this.sent.slice(since).map(s => s.msg)
  }

  /** Times (FakeClock ms) at which messages were sent, from index `since`. */
  sendTimes (since = 0): number[] {
    return this.sent.slice(since).map(s => s.at)
  }

  /** Status codes of the responses sent, in order. */
  sentStatuses (): number[] {
    return this.sent.map(s => s.msg).filter((m): m is SipResponse => !m.isRequest).map(m => m.status)
  }

  /** Methods of the requests sent, in order. */
  sentMethods (): string[] {
    return this.sent.map(s => s.msg).filter((m): m is SipRequest => m.isRequest).map(m => m.method)
  }
}

/** Let pending promise callbacks (a rejected or async send) run. */
export async function flushMicrotasks (): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve()
}
