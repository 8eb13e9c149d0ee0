// Test plumbing for the transport tests: SIP message text, a TransportLayer
// that records what it receives, and small waits on real sockets that are
// bounded so that a broken test fails instead of hanging.

import { networkInterfaces } from 'node:os'
import type { SipParseError, SipRequest, SipResponse } from '@sipd/sip-parser'
import { TransportLayer } from '../../src/transport-layer.js'
import type { TransportOptions } from '../../src/transport-options.js'
import type { CloseReason, Source } from '../../src/transport-types.js'

/** An OPTIONS request with Content-Length 0; `via` is the sent-by (`host:port`) plus params. */
export function optionsRequest (n: number, via: string, transport = 'UDP', extraHeaders: string[] = []): string {
  return [
    'OPTIONS sip:sipd@example.net SIP/2.0',
    `Via: SIP/2.0/${transport} ${via};branch=z9hG4bK-test-${n}`,
    'Max-Forwards: 70',
    'From: <sip:tester@example.net>;tag=t' + String(n),
    'To: <sip:sipd@example.net>',
    'Call-ID: call-' + String(n) + '@test',
    `CSeq: ${n} OPTIONS`,
    ...extraHeaders,
    'Content-Length: 0',
    '',
    ''
  ].join('\r\n')
}

export interface Received {
  msg: SipRequest | SipResponse
  source: Source
}

/** A TransportLayer whose handler records everything into arrays. */
export class RecordingLayer {
  readonly layer: TransportLayer
  readonly messages: Received[] = []
  readonly parseErrors: Array<{ err: SipParseError, source: Source, raw: Buffer | undefined }> = []
  readonly closedFlows: Array<{ flowId: string, reason: CloseReason }> = []
  /** Called for each message after it is recorded (e.g. to answer it). */
  onMessage: ((msg: SipRequest | SipResponse, source: Source) => void) | undefined
  onParseError: ((err: SipParseError, source: Source, raw: Buffer | undefined) => void) | undefined

  constructor (options: Partial<TransportOptions>) {
    this.layer = new TransportLayer({
      onMessage: (msg, source) => {
        this.messages.push({ msg, source })
        this.onMessage?.(msg, source)
      },
      onParseError: (err, source, raw) => {
        this.parseErrors.push({ err, source, raw })
        this.onParseError?.(err, source, raw)
      },
      onFlowClosed: (flowId, reason) => { this.closedFlows.push({ flowId, reason }) }
    }, options)
  }

  /** Port bound for a transport (first listener of it). */
  port (transport: 'udp' | 'tcp', family: 4 | 6 = 4): number {
    const l = this.layer.listeners.find(x => x.transport === transport && x.family === family)
    if (l === undefined) throw new Error(`no ${transport} IPv${family} listener`)
    return l.port
  }
}

/** Wait until `cond()` holds, polling on timers; fails after `ms` milliseconds. */
export async function until (cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 2))
  }
}

/** True when this host has the IPv6 loopback address configured. */
export function hasIPv6Loopback (): boolean {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv6' && a.address === '::1') return true
  }
  return false
}
