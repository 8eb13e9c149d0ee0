/**
 * The part the client INVITE and non-INVITE transactions share: the request
 * they carry, the transaction user's callbacks and the RFC 3261 §17.1.3 key.
 */
import { parseMessage } from '@sipd/sip-parser'
import type { SipRequest, SipResponse } from '@sipd/sip-parser'
import { Transaction } from './transaction-base.js'
import type { TransactionContext } from './transaction-base.js'
import { TransactionError } from './transaction-errors.js'
import type { SendTarget } from './transport-types.js'

const EMPTY = Buffer.alloc(0)

function ignore (): void {}

/** The handler of a client transaction with nothing left to report (see settleHandler). */
const SETTLED: ClientTransactionHandler = Object.freeze({ onFinal: ignore, onTimeout: ignore, onTransportError: ignore })

/**
 * The transaction user's side of a client transaction (STYLE.md §16): one
 * typed callback per outcome, called after the state change. Callbacks must
 * not throw; they run inside the transport's receive path or a timer.
 */
export interface ClientTransactionHandler {
  /** A 1xx response arrived (Calling/Trying → Proceeding, or again in Proceeding). */
  onProvisional?(response: SipResponse, tx: ClientTransaction): void
  /**
   * A final response arrived. For INVITE also called for every 2xx that
   * arrives in the Accepted state: retransmissions and 2xx from other forks
   * go to the TU, which acknowledges them (RFC 6026 §7.2, RFC 3261 §13.2.2.4).
   */
  onFinal(response: SipResponse, tx: ClientTransaction): void
  /**
   * Timer B (INVITE, in Calling) or Timer F (non-INVITE) fired: no final
   * response. The TU treats it as a 408 (RFC 3261 §8.1.3.1).
   */
  onTimeout(tx: ClientTransaction): void
  /** The request (or an ACK) could not be sent; the transaction is terminated (RFC 3261 §17.1.4). */
  onTransportError(error: Error, tx: ClientTransaction): void
  /** The transaction reached Terminated, whatever the cause. */
  onTerminated?(tx: ClientTransaction): void
}

/**
 * What the caller of `TransactionLayer.createClient` knows about request
 * bytes it built itself (a proxy's splice-forwarded request): with it the
 * bytes are not parsed again. The caller vouches that the bytes carry them.
 */
export interface ClientRequestFacts {
  /** The Request-Line method. */
  method: string
  /** The branch of the top Via, with the magic cookie (RFC 3261 §8.1.1.7). */
  branch: string
  /** The CSeq method, when it differs from `method` (it should not, §8.1.1.5). @default method */
  cseqMethod?: string
}

/** Base of {@link ClientInviteTransaction} and {@link ClientNonInviteTransaction}. */
export abstract class ClientTransaction extends Transaction {
  /** The request's method (`INVITE`, `REGISTER`, `CANCEL`...). */
  readonly method: string
  /** The branch of the request's top Via. */
  readonly branch: string
  /** @internal */
  protected handler: ClientTransactionHandler
  /** @internal the request's bytes, sent and retransmitted as they are (empty once released) */
  protected bytes: Buffer
  #request: SipRequest | undefined
  #released = false

  /** @internal created by TransactionLayer.createClient */
  constructor (ctx: TransactionContext, key: string, target: SendTarget, request: SipRequest | Buffer, method: string, branch: string, handler: ClientTransactionHandler) {
    super(ctx, key, target, target.transport !== 'udp')
    if (Buffer.isBuffer(request)) {
      this.bytes = request
      this.#request = undefined
    } else {
      this.bytes = request.raw
      this.#request = request
    }
    this.method = method
    this.branch = branch
    this.handler = handler
  }

  /**
   * The request this transaction sends, parsed. Requests the TU built as
   * bytes (see {@link ClientRequestFacts}) are parsed on first read only:
   * the usual forwarded request never is, and a transaction waiting out
   * Timer M or K holds its bytes alone.
   */
  get request (): SipRequest {
    if (this.#released) throw new TransactionError(`the ${this.method} of client transaction ${JSON.stringify(this.key)} was released when a 2xx accepted it`, 'SIP_ERR_TX_RELEASED')
    return this.#request ??= parseMessage(this.bytes) as SipRequest
  }

  /**
   * Nothing but onTerminated is left to report (a non-INVITE in Completed,
   * RFC 3261 §17.1.2.2): a handler without one is let go, so that a TU's
   * objects (a proxy's branch and response context) are not held for Timer K.
   */
  protected settleHandler (): void {
    if (this.handler.onTerminated === undefined) this.handler = SETTLED
  }

  /**
   * @internal Let go of the request (both forms): an INVITE accepted by a
   * 2xx sends nothing more for Timer M's 32 s (RFC 6026 §7.2), and the bytes
   * of a forwarded request are a slice of Node's shared allocation pool that
   * would keep its whole chunk alive. {@link request} throws after this.
   */
  protected releaseRequest (): void {
    this.#released = true
    this.#request = undefined
    this.bytes = EMPTY
  }

  /** @internal Send the request and start the timers of the initial state. */
  abstract start (): void

  /** @internal A response matched to this transaction by the layer. */
  abstract receiveResponse (response: SipResponse): void

  /**
   * Abandon the transaction now: timers stop, the layer forgets it, no
   * further callbacks but `onTerminated`. For the TU's own timers, e.g. a
   * proxy's Timer C when a CANCEL got no answer (RFC 3261 §16.8).
   */
  abstract terminate (): void
}

/** The RFC 3261 §17.1.3 client transaction key: top Via branch and CSeq method. */
export function clientKey (branch: string, cseqMethod: string): string {
  return branch + '\n' + cseqMethod
}
