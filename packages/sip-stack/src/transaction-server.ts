/**
 * The part the server INVITE and non-INVITE transactions share: the request
 * and where it came from, the To tag of our responses, building responses
 * (RFC 3261 §8.2.6) and the optional TU callbacks.
 */
import { createResponse, parseMessage } from '@sipd/sip-parser'
import type { SipRequest, TopViaParams } from '@sipd/sip-parser'
import { Transaction } from './transaction-base.js'
import type { TransactionContext } from './transaction-base.js'
import { TransactionError } from './transaction-errors.js'
import { newTag } from './transaction-ids.js'
import type { SendTarget, Source } from './transport-types.js'
import { viaReceivedParams } from './transport-via.js'

/**
 * Optional TU callbacks of a server transaction; set `tx.handler` in
 * `onRequest` when they matter (a proxy does, a registrar need not).
 */
export interface ServerTransactionHandler {
  /** Timer H fired: no ACK came for our non-2xx final response (RFC 3261 §17.2.1). */
  onTimeout?(tx: ServerTransaction): void
  /** A response could not be sent (RFC 3261 §17.2.4). */
  onTransportError?(error: Error, tx: ServerTransaction): void
  /** The transaction reached Terminated, whatever the cause. */
  onTerminated?(tx: ServerTransaction): void
}

/** Options of {@link ServerTransaction.respond}. */
export interface RespondOptions {
  /**
   * To tag for a request without one; by default one tag generated per
   * transaction, the same on all its responses (never on 100, §8.2.6.2).
   */
  toTag?: string
  /** Extra header lines, in order (Contact, Allow, WWW-Authenticate...). */
  headers?: ReadonlyArray<readonly [string, string]>
  /** Body; Content-Length is computed. */
  body?: Buffer | string
  /** Content-Type of the body. */
  contentType?: string
  /** Copy Record-Route into the response (RFC 3261 §12.1.1, a UAS answering a dialog-creating request). */
  copyRecordRoute?: boolean
}

/** Base of {@link ServerInviteTransaction} and {@link ServerNonInviteTransaction}. */
export abstract class ServerTransaction extends Transaction {
  /** Its method. */
  readonly method: string
  /** Where the request came from. */
  readonly source: Source
  /**
   * True when the request's branch lacks the magic cookie: its ACK is
   * matched by the To tag of the final response (RFC 3261 §17.2.3), so a TU
   * relaying a response passes that tag to {@link sendResponse}.
   */
  readonly rfc2543: boolean
  /** Optional TU callbacks; set them when the request reaches the TU. */
  handler: ServerTransactionHandler | undefined = undefined
  /**
   * @internal The layer's merged-request key (§8.2.2.2), kept so that the
   * same string (its hash already computed) removes the entry again.
   */
  mergedKey: string | undefined = undefined
  /**
   * The parsed request; once a final response is sent its bytes, kept to
   * parse it again should anyone ask, or nothing (see {@link request}). One
   * field for both: each field is 8 B of every transaction held 32 s.
   */
  /**
   * @internal The top Via's sent-by, which §17.2.3 matching compares: set by
   * the layer for a transaction it keys by its branch alone (undefined otherwise).
   */
  sentByHost: string | undefined = undefined
  /** @internal See {@link sentByHost}. */
  sentByPort: number | undefined = undefined
  #request: SipRequest | Buffer | undefined
  /** The request's To tag (undefined for a request outside a dialog). */
  readonly #requestToTag: string | undefined
  #toTag: string | undefined = undefined
  /** The To tag of the last final response, for RFC 2543 ACK matching (§17.2.3). */
  #responseToTag: string | undefined = undefined
  #viaParams: TopViaParams | null | undefined = undefined

  /** @internal created by the TransactionLayer; `target` undefined: the source's address, port and flow */
  constructor (ctx: TransactionContext, key: string, target: SendTarget | undefined, request: SipRequest, source: Source, requestToTag: string | undefined, rfc2543: boolean) {
    super(ctx, key, target, (target ?? source).transport !== 'udp')
    this.#request = request
    this.method = request.method
    this.source = source
    this.#requestToTag = requestToTag
    this.rfc2543 = rfc2543
  }

  protected override sourceTarget (): SendTarget {
    const s = this.source
    return { transport: s.transport, address: s.address, port: s.port, flowId: s.flowId }
  }

  /**
   * The request that created the transaction. Once a final response is sent
   * the transaction lets go of the parsed message (it waits out Timer J, L or
   * I holding only the bytes it resends: with a parsed INVITE and BYE per
   * call held for 32 s, the parsed copies were most of a busy proxy's heap).
   * A non-INVITE lets go of the request's bytes too (in Completed it only
   * resends its final, RFC 3261 §17.2.2, and admits no other response), and
   * so does an INVITE whose 2xx the TU relayed through {@link sendResponse}
   * (a proxy; in Accepted nothing is answered from them, RFC 6026 §7.1): a
   * read then throws. An INVITE answered otherwise keeps the bytes and a read
   * parses them again, into a new object: a 2xx sent with {@link respond} so
   * that the UAS can send it again, a non-2xx for its ACK matching.
   * @throws TransactionError (`SIP_ERR_TX_RELEASED`) after a final to a non-INVITE or a relayed 2xx to an INVITE
   */
  get request (): SipRequest {
    const req = this.#request
    if (req === undefined) throw new TransactionError(`the ${this.method} of server transaction ${JSON.stringify(this.key)} was released with its final response`, 'SIP_ERR_TX_RELEASED')
    if (!Buffer.isBuffer(req)) return req
    const parsed = parseMessage(req, { maxHeaders: Number.MAX_SAFE_INTEGER }) as SipRequest
    this.#request = parsed
    return parsed
  }

  /** The To tag of this transaction's responses: the request's, else one generated once (RFC 3261 §8.2.6.2). */
  get toTag (): string {
    const tag = this.#requestToTag
    if (tag !== undefined) return tag
    this.#toTag ??= newTag()
    return this.#toTag
  }

  /** @internal the To tag of the final response sent, when known */
  get responseToTag (): string | undefined {
    return this.#responseToTag
  }

  /**
   * Build a response to the request (RFC 3261 §8.2.6: Via with `received`/
   * `rport` per §18.2.1 and RFC 3581, From, To with our tag, Call-ID, CSeq)
   * and send it through the transaction.
   * @returns false when the state admits no such response (a final after a
   *   final, anything after Terminated, anything once the request was
   *   released), true when sent
   * @throws RangeError for a status outside 100–699
   */
  respond (status: number, reason?: string, opts: RespondOptions = {}): boolean {
    checkStatus(status)
    // Released with a final: a non-INVITE's state machine refuses any further response, and an
    // INVITE whose 2xx was relayed (Accepted) has no request left to answer from; the TU relays
    // 2xx retransmissions as bytes through sendResponse.
    if (this.terminated || this.#request === undefined) return false
    let toTag: string | undefined
    const request = this.request
    if (status > 100) toTag = this.#requestToTag ?? opts.toTag ?? this.toTag
    this.#viaParams ??= viaReceivedParams(request.topVia!, this.source) ?? null
    const bytes = createResponse(request, status, reason, {
      toTag,
      headers: opts.headers,
      body: opts.body,
      contentType: opts.contentType,
      copyRecordRoute: opts.copyRecordRoute,
      topViaParams: this.#viaParams ?? undefined
    })
    // A UAS answering 2xx may send it again through respond(), which needs the request: kept.
    return this.#sendResponse(bytes, status, toTag, true)
  }

  /**
   * Send a response built elsewhere (a proxy relaying a downstream response
   * after `stripTopVia`) through the transaction, which retransmits it and
   * changes state by its class.
   * @param status the response's status code, which decides the transition
   * @param toTag its To tag when known; RFC 2543 ACKs are matched against it (needed only when {@link rfc2543})
   * @returns false when the state admits no such response, true when sent
   * @throws RangeError for a status outside 100–699
   */
  sendResponse (bytes: Buffer, status: number, toTag?: string): boolean {
    checkStatus(status)
    return this.#sendResponse(bytes, status, toTag, false)
  }

  /** `responding`: from respond() (a UAS's), whose 2xx to an INVITE does not release the request. */
  #sendResponse (bytes: Buffer, status: number, toTag: string | undefined, responding: boolean): boolean {
    const sent = this.onResponse(bytes, status)
    if (sent && status >= 200) {
      this.#responseToTag = toTag
      if (this.method !== 'INVITE' || (status < 300 && !responding)) {
        // Neither form of the request is needed for Timer J's or L's 32 s. A non-INVITE in
        // Completed only resends its final (§17.2.2). A 2xx relayed (a proxy's): Accepted
        // (RFC 6026 §7.1) absorbs INVITE retransmissions without answering and the TU relays
        // 2xx retransmissions as bytes.
        this.#request = undefined
        this.#viaParams = undefined
      } else {
        this.#release()
      }
    }
    return sent
  }

  /** A final response went out: keep the request's bytes, not its parsed form. */
  #release (): void {
    const req = this.#request
    if (req === undefined || Buffer.isBuffer(req)) return
    const raw = req.raw
    // A message framed out of a larger TCP read would keep the whole read alive.
    this.#request = raw.buffer.byteLength > 2 * raw.length + 1024 ? Buffer.from(raw) : raw
  }

  /**
   * Abandon the transaction now: timers stop, retransmissions are no longer
   * absorbed, no callbacks but `onTerminated`. For shutdown.
   */
  abstract terminate (): void

  /** @internal The TU's response as the state machine's input. */
  protected abstract onResponse (bytes: Buffer, status: number): boolean

  /** @internal A retransmission of the request, matched by the layer. */
  abstract receiveRequest (request: SipRequest): void
}

function checkStatus (status: number): void {
  if (!Number.isInteger(status) || status < 100 || status > 699) {
    throw new RangeError(`response status must be an integer from 100 to 699, got ${String(status)}`)
  }
}
