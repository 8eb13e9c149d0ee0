// A scripted SIP party on one UDP socket (or one TCP connection) for
// end-to-end tests that need to see every message: send text, wait for the
// next message that matches, answer a request with createResponse. Every wait
// is bounded.

import dgram from 'node:dgram'
import net from 'node:net'
import { createResponse, parseMessage, StreamParser } from '@sipd/sip-parser'
import type { ResponseOptions, SipRequest, SipResponse } from '@sipd/sip-parser'

/** A received message and its text. */
export type Received = (SipRequest | SipResponse) & { text: string }

/** One party: its address, an inbox and a bounded wait. */
export class SipParty {
  readonly ip: string
  readonly port: number
  readonly transport: 'udp' | 'tcp'
  readonly #send: (bytes: Buffer) => void
  readonly #close: () => void
  readonly #inbox: Received[] = []
  #wake: (() => void) | undefined

  private constructor (ip: string, port: number, transport: 'udp' | 'tcp', send: (bytes: Buffer) => void, close: () => void) {
    this.ip = ip
    this.port = port
    this.transport = transport
    this.#send = send
    this.#close = close
  }

  /** A party on UDP at `ip` (any port) that sends to `toHost:toPort`. */
  static async udp (ip: string, toPort: number, toHost = '127.0.0.1'): Promise<SipParty> {
    return await SipParty.udpAt(ip, 0, toPort, toHost)
  }

  /** A party on UDP at `ip:port` that sends to `toHost:toPort`. */
  static async udpAt (ip: string, port: number, toPort: number, toHost = '127.0.0.1'): Promise<SipParty> {
    const sock = dgram.createSocket(ip.includes(':') ? 'udp6' : 'udp4')
    await new Promise<void>(resolve => sock.bind(port, ip, resolve))
    const p: SipParty = new SipParty(ip, sock.address().port, 'udp', b => { sock.send(b, toPort, toHost) }, () => { sock.close() })
    sock.on('message', data => { p.#push(data) })
    return p
  }

  /** A party on one TCP connection from `ip` to `toHost:toPort`. */
  static async tcp (ip: string, toPort: number, toHost = '127.0.0.1'): Promise<SipParty> {
    const s = net.connect({ host: toHost, port: toPort, localAddress: ip })
    await new Promise<void>((resolve, reject) => { s.once('connect', resolve); s.once('error', reject) })
    s.on('error', () => {})
    const p: SipParty = new SipParty(ip, s.localPort!, 'tcp', b => { s.write(b) }, () => { s.destroy() })
    const parser = new StreamParser({ onMessage: m => { p.#add(m) }, onError: () => { s.destroy() } })
    s.on('data', d => { parser.push(d) })
    return p
  }

  #push (data: Buffer): void {
    try {
      this.#add(parseMessage(data))
    } catch {
      // Not for a test to read.
    }
  }

  #add (msg: SipRequest | SipResponse): void {
    const m = msg as Received
    m.text = msg.raw.toString('latin1')
    this.#inbox.push(m)
    this.#wake?.()
  }

  /** Sends a message given as lines (CRLF joined; Content-Length added for the body). */
  send (lines: string[], body = ''): void {
    this.#send(Buffer.from(lines.join('\r\n') + `\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n` + body, 'latin1'))
  }

  /** Sends raw bytes. */
  sendRaw (bytes: Buffer): void {
    this.#send(bytes)
  }

  /** Answers `req` (Via, From, To, Call-ID, CSeq copied; Record-Route too for 1xx/2xx to INVITE). */
  reply (req: SipRequest, status: number, reason: string, opts: ResponseOptions = {}): void {
    const rr = req.method === 'INVITE' && status > 100 && status < 300
    this.#send(createResponse(req, status, reason, { copyRecordRoute: rr, ...opts }))
  }

  /** The next message matching `pred` (taken out of the inbox); undefined after `timeoutMs`. */
  async next (pred: (m: Received) => boolean, timeoutMs = 5000): Promise<Received | undefined> {
    const until = Date.now() + timeoutMs
    for (;;) {
      const i = this.#inbox.findIndex(pred)
      if (i >= 0) return this.#inbox.splice(i, 1)[0]
      const left = until - Date.now()
      if (left <= 0) return undefined
      await new Promise<void>(resolve => {
        const timer = setTimeout(resolve, left)
        this.#wake = () => { clearTimeout(timer); this.#wake = undefined; resolve() }
      })
    }
  }

  /** The next request of `method` (of Call-ID `callId` when given: retransmissions of earlier calls stay behind). */
  async request (method: string, callId?: string, timeoutMs = 5000): Promise<(SipRequest & { text: string }) | undefined> {
    return await this.next(m => m.isRequest && m.method === method && (callId === undefined || m.callId === callId), timeoutMs) as (SipRequest & { text: string }) | undefined
  }

  /** The next response for CSeq method `method` with status in [min, max] (of Call-ID `callId` when given). */
  async response (method: string, min = 100, max = 699, callId?: string, timeoutMs = 5000): Promise<(SipResponse & { text: string }) | undefined> {
    return await this.next(m => !m.isRequest && m.cseq.method === method && m.status >= min && m.status <= max && (callId === undefined || m.callId === callId), timeoutMs) as (SipResponse & { text: string }) | undefined
  }

  /** What is left unread (for failure messages). */
  get unread (): string[] {
    return this.#inbox.map(m => m.text.split('\r\n')[0]!)
  }

  close (): void {
    this.#close()
  }
}
