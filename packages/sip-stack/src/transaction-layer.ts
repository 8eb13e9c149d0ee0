/**
 * The RFC 3261 §17 transaction layer: matches inbound messages to the four
 * transaction state machines, creates server transactions for new requests
 * and client transactions for the TU's requests, and answers statelessly.
 *
 * The layer knows neither sockets nor parsing: the transport layer hands it
 * parsed messages with their {@link Source} (`receive`) and it sends bytes
 * through the `send` function it was given. Elements (registrar, proxy) sit
 * on top: they get new requests as server transactions (`onRequest`), answer
 * through them, and forward through client transactions (`createClient`).
 */
import { createResponse, parseMessage } from '@sipd/sip-parser'
import type { SipRequest, SipResponse, Via } from '@sipd/sip-parser'
import { SYSTEM_CLOCK } from './clock.js'
import type { Clock } from './clock.js'
import { ExpiryQueue } from './expiry-queue.js'
import { TimerWheel } from './timer-wheel.js'
import type { WheelTimer } from './timer-wheel.js'
import { newTransactionCounters } from './transaction-base.js'
import type { SendFunction, SendOutcome, Transaction, TransactionContext, TransactionCounters } from './transaction-base.js'
import { ClientInviteTransaction } from './transaction-client-invite.js'
import { ClientNonInviteTransaction } from './transaction-client-non-invite.js'
import { clientKey } from './transaction-client.js'
import type { ClientRequestFacts, ClientTransactionHandler } from './transaction-client.js'
import { InvalidTransactionOptionError, TransactionRequestError } from './transaction-errors.js'
import { hasMagicCookie } from './transaction-ids.js'
import { ownString } from './owned.js'
import { mergedKey, rfc2543Key, serverKey } from './transaction-keys.js'
import { ServerInviteTransaction } from './transaction-server-invite.js'
import { ServerNonInviteTransaction } from './transaction-server-non-invite.js'
import type { CompletedNonInvite } from './transaction-server-non-invite.js'
import type { RespondOptions, ServerTransaction } from './transaction-server.js'
import { DEFAULT_TRANSACTION_TIMERS, resolveTransactionTimers } from './transaction-timers.js'
import type { ResolvedTimers, TransactionTimers } from './transaction-timers.js'
import { addressFamily } from './transport-address.js'
import type { SendTarget, Source } from './transport-types.js'
import { mayHaveMaddr, responseDestination, viaReceivedParams } from './transport-via.js'

/** A client transaction of either kind, as returned by {@link TransactionLayer.createClient}. */
export type AnyClientTransaction = ClientInviteTransaction | ClientNonInviteTransaction
/** A server transaction of either kind, as handed to `onRequest`. */
export type AnyServerTransaction = ServerInviteTransaction | ServerNonInviteTransaction

/** Options of a {@link TransactionLayer}. `send` and `onRequest` are required. */
export interface TransactionLayerOptions {
  /**
   * Sends bytes to a target: in sipd, `TransportLayer.send`. A failed
   * `SendResult` (returned or as a promise) or a thrown error is the
   * transaction's "transport error".
   */
  send: SendFunction
  /**
   * A request that starts a new server transaction. The TU answers with
   * `tx.respond(...)` / `tx.sendResponse(...)`, now or later; for INVITE a
   * 100 Trying has already been sent (see `sendTrying`). Must not throw.
   */
  onRequest: (tx: AnyServerTransaction) => void
  /**
   * A response that matched no client transaction (RFC 3261 §17.1.3); a proxy
   * forwards it statelessly (§16.7 step 3). Must not throw.
   * @default drop
   */
  onStrayResponse?: (response: SipResponse, source: Source) => void
  /**
   * An ACK for a 2xx: it matched no INVITE server transaction (its branch is
   * new, RFC 3261 §17.1.1.3) or it matched one in the Accepted state, which
   * passes it to the TU (RFC 6026 §7.1); `tx` is that transaction then. A
   * proxy forwards it; a UAS core ends its 2xx retransmissions. Must not throw.
   * @default drop
   */
  onStrayAck?: (ack: SipRequest, source: Source, tx: ServerInviteTransaction | undefined) => void
  /**
   * Time source for every timer.
   * @default SYSTEM_CLOCK
   */
  clock?: Clock
  /**
   * The shared wheel for the long timers (B, D, F, H; Timers I, J, K, L and M, one delay each for all, run on FIFOs of the layer); pass
   * one to share it with other users (registration expiry, Timer C).
   * @default a new TimerWheel on `clock` with its default tick
   */
  wheel?: TimerWheel
  /**
   * T1, T2, T4 and Timer D.
   * @default DEFAULT_TRANSACTION_TIMERS (500, 4000, 5000, 32000 ms)
   */
  timers?: Partial<TransactionTimers>
  /**
   * Send 100 Trying as soon as an INVITE server transaction is created
   * (RFC 3261 §17.2.1 asks for it within 200 ms unless the TU answers
   * first; a proxy should send it at once, §16.2). When false, the TU
   * sends any provisional response itself.
   * @default true
   */
  sendTrying?: boolean
  /**
   * Answer merged requests 482 Loop Detected (RFC 3261 §8.2.2.2): a request
   * without To tag whose From tag, Call-ID and CSeq equal those of a live
   * transaction it does not match (a forked request reaching us twice). A
   * proxy that lets requests spiral through itself turns this off and
   * relies on §16.3 loop detection.
   * @default true
   */
  detectMergedRequests?: boolean
}

/** Defaults of the optional {@link TransactionLayerOptions}. */
export const DEFAULT_TRANSACTION_LAYER_OPTIONS = Object.freeze({
  timers: DEFAULT_TRANSACTION_TIMERS,
  sendTrying: true,
  detectMergedRequests: true
})

/** What the server maps hold: a transaction, or what is left of a non-INVITE one in Completed. */
type ServerEntry = AnyServerTransaction | CompletedNonInvite

/** The fields needed to place an inbound request, read once. */
interface RequestFacts {
  via: Via
  cookie: boolean
  toTag: string | undefined
  /** The RFC 2543 transaction key (for an ACK: of the INVITE with no To tag); undefined with the cookie (matched by branch). */
  key: string | undefined
}

/** The RFC 3261 §17 transaction layer. */
export class TransactionLayer {
  /** Running totals and active transactions by kind: read them for metrics. */
  readonly counters: TransactionCounters = newTransactionCounters()
  /** The resolved timer values. */
  readonly timers: ResolvedTimers
  /** The clock every timer runs on. */
  readonly clock: Clock
  /** The wheel of the long timers. */
  readonly wheel: TimerWheel
  readonly #send: SendFunction
  readonly #onRequest: (tx: AnyServerTransaction) => void
  readonly #onStrayResponse: ((response: SipResponse, source: Source) => void) | undefined
  readonly #onStrayAck: ((ack: SipRequest, source: Source, tx: ServerInviteTransaction | undefined) => void) | undefined
  readonly #sendTrying: boolean
  readonly #detectMerged: boolean
  /**
   * Server transactions of branches with the magic cookie, by branch alone:
   * the sent-by and method that §17.2.3 also compares are checked on the
   * transaction found, so a request is looked up by its branch as the parser
   * cut it, with no key joined and flattened per request. A second one on the
   * same branch (a CANCEL, §9.1) goes to the map below.
   */
  readonly #server = new Map<string, ServerEntry>()
  /** The other server transactions: by {@link serverKey}, or by {@link rfc2543Key} for RFC 2543 requests. */
  readonly #serverShared = new Map<string, ServerEntry>()
  /**
   * Client transactions by branch alone (RFC 3261 §17.1.3 matches branch and
   * CSeq method): a response's branch is looked up as the parser cut it, with
   * no key joined and flattened per response. Holds only transactions whose
   * request and CSeq methods agree; the map below takes a second one on the
   * same branch (a CANCEL, §9.1) and any other.
   */
  readonly #client = new Map<string, AnyClientTransaction>()
  /** The other client transactions, by {@link clientKey} (branch and CSeq method). */
  readonly #clientShared = new Map<string, AnyClientTransaction>()
  /** Live server transactions by merged-request key (§8.2.2.2). */
  readonly #merged = new Map<string, ServerEntry>()
  /** The source the last server transaction holds (see #shareSource). */
  #heldSource: Source | undefined = undefined
  readonly #ctx: TransactionContext

  /** @throws InvalidTransactionOptionError for a missing callback or invalid timer values */
  constructor (options: TransactionLayerOptions) {
    if (typeof options?.send !== 'function') throw new InvalidTransactionOptionError('send', options?.send, 'a function (bytes, target) => SendResult')
    if (typeof options.onRequest !== 'function') throw new InvalidTransactionOptionError('onRequest', options.onRequest, 'a function (serverTransaction) => void')
    this.timers = resolveTransactionTimers(options.timers ?? DEFAULT_TRANSACTION_LAYER_OPTIONS.timers)
    this.clock = options.clock ?? SYSTEM_CLOCK
    this.wheel = options.wheel ?? new TimerWheel(this.clock)
    this.#send = options.send
    this.#onRequest = options.onRequest
    this.#onStrayResponse = options.onStrayResponse
    this.#onStrayAck = options.onStrayAck
    this.#sendTrying = options.sendTrying ?? DEFAULT_TRANSACTION_LAYER_OPTIONS.sendTrying
    this.#detectMerged = options.detectMergedRequests ?? DEFAULT_TRANSACTION_LAYER_OPTIONS.detectMergedRequests
    this.#ctx = {
      clock: this.clock,
      wheel: this.wheel,
      timers: this.timers,
      counters: this.counters,
      send: this.#send,
      // The final waits' queues each arm one timer on the wheel's tick (at
      // most one more tick late, 100 ms of 5 s or 32 s), so that they share a
      // wake-up instead of each waking the process on its own under load.
      timeoutQueue: new ExpiryQueue(wheelClock(this.clock, this.wheel), this.timers.timeout),
      t4Queue: new ExpiryQueue(wheelClock(this.clock, this.wheel), this.timers.t4),
      terminated: tx => { this.#forget(tx as AnyClientTransaction | ServerEntry) },
      replaced: (tx, record) => {
        // The same key: Map.set only replaces the value.
        if (tx.sentByHost !== undefined) this.#server.set(tx.key, record)
        else this.#serverShared.set(tx.key, record)
        const mkey = tx.mergedKey
        if (mkey !== undefined && this.#merged.get(mkey) === tx) this.#merged.set(mkey, record)
      }
    }
  }

  /** Number of live transactions of all kinds. */
  get size (): number {
    return this.#server.size + this.#serverShared.size + this.#client.size + this.#clientShared.size
  }

  /**
   * An inbound message, parsed, from the transport layer. Retransmissions
   * are absorbed or answered by their transaction; a new request becomes a
   * server transaction for `onRequest`; a response goes to its client
   * transaction or `onStrayResponse`; an ACK for a 2xx to `onStrayAck`.
   * Messages lacking a field needed for matching (top Via, CSeq, Call-ID,
   * From, To) are dropped and counted as `malformed`: the sanity stage
   * should have answered them 400 before.
   */
  receive (message: SipRequest | SipResponse, source: Source): void {
    if (message.isRequest) this.#receiveRequest(message, source)
    else this.#receiveResponse(message, source)
  }

  /**
   * Start a client transaction for `request` (bytes or parsed), sent to
   * `target` at once. The request's top Via must carry a branch with the
   * magic cookie, unique to this transaction (see `newBranch`). Bytes are
   * parsed to find method and branch unless `facts` gives them (a proxy
   * knows them for the request it just spliced together).
   * @throws TransactionRequestError for an ACK (never sent in a transaction,
   *   §17.1.1.3), a branch without cookie, or a branch already in use
   * @throws SipParseError when the bytes do not parse
   */
  createClient (request: SipRequest | Buffer, target: SendTarget, handler: ClientTransactionHandler, facts?: ClientRequestFacts): AnyClientTransaction {
    let method: string
    let branch: string | undefined
    let cseqMethod: string
    let req: SipRequest | Buffer = request
    if (facts !== undefined && Buffer.isBuffer(request)) {
      method = facts.method
      branch = facts.branch
      cseqMethod = facts.cseqMethod ?? method
    } else {
      const parsed = Buffer.isBuffer(request) ? parseMessage(request) : request
      if (!parsed.isRequest) throw new TransactionRequestError('createClient needs a request, got a response')
      method = parsed.method
      branch = parsed.topVia?.branch
      cseqMethod = method === 'ACK' ? method : parsed.cseq.method
      req = parsed
    }
    if (method === 'ACK') throw new TransactionRequestError('an ACK is not sent in a client transaction (RFC 3261 §17.1.1.3); use sendStateless')
    if (!hasMagicCookie(branch)) {
      throw new TransactionRequestError(`${method} needs a top Via branch starting with z9hG4bK (RFC 3261 §8.1.1.7), got ${JSON.stringify(branch ?? null)}`)
    }
    // Held until Timer M, K or D: one flat string, not a join over the caller's pieces (nor a slice of a parsed message).
    const ownBranch = ownString(branch)
    const holder = this.#client.get(ownBranch)
    if (holder === undefined && method === cseqMethod) {
      // The usual case: the branch is the key.
      const tx = this.#newClient(ownBranch, target, req, method, ownBranch, handler)
      this.#client.set(ownBranch, tx)
      return this.#startClient(tx)
    }
    const key = ownString(clientKey(branch, cseqMethod))
    if ((holder !== undefined && holder.method === cseqMethod) || this.#clientShared.has(key)) {
      throw new TransactionRequestError(`branch ${JSON.stringify(branch)} is already used by a live ${cseqMethod} client transaction`)
    }
    const tx = this.#newClient(key, target, req, method, ownBranch, handler)
    this.#clientShared.set(key, tx)
    return this.#startClient(tx)
  }

  #newClient (key: string, target: SendTarget, req: SipRequest | Buffer, method: string, branch: string, handler: ClientTransactionHandler): AnyClientTransaction {
    return method === 'INVITE'
      ? new ClientInviteTransaction(this.#ctx, key, target, req, method, branch, handler)
      : new ClientNonInviteTransaction(this.#ctx, key, target, req, method, branch, handler)
  }

  #startClient (tx: AnyClientTransaction): AnyClientTransaction {
    this.#count(tx)
    tx.start()
    return tx
  }

  /**
   * Answer a request without a transaction (RFC 3261 §8.2.7): the To tag is
   * derived from the request, so a retransmission gets the same response.
   * For requests the layer should not remember: malformed ones answered by
   * the sanity stage, OPTIONS keep-alives, a proxy's stateless replies.
   * An ACK is never answered (returns undefined).
   */
  replyStateless (request: SipRequest, source: Source, status: number, reason?: string, opts: RespondOptions = {}): SendOutcome {
    const via = request.topVia
    // §17: an ACK is never answered; without a Via there is nowhere to send to (§18.2.2).
    if (via === undefined || request.method === 'ACK') return undefined
    let toTag: string | undefined
    if (status > 100) toTag = opts.toTag ?? statelessTag(request, via)
    const bytes = createResponse(request, status, reason, {
      toTag,
      headers: opts.headers,
      body: opts.body,
      contentType: opts.contentType,
      copyRecordRoute: opts.copyRecordRoute,
      topViaParams: viaReceivedParams(via, source)
    })
    return this.#send(bytes, this.responseTarget(request, source))
  }

  /** Send bytes outside any transaction: an ACK for a 2xx, a statelessly forwarded message. */
  sendStateless (bytes: Buffer, target: SendTarget): SendOutcome {
    return this.#send(bytes, target)
  }

  /**
   * Where responses to `request` from `source` go: RFC 3261 §18.2.2 with
   * RFC 3581 (the connection it came on for TCP; `received` and `rport` or
   * the sent-by port for UDP). When the Via names a host that would need DNS
   * (a `maddr` name), the source address and port are used instead.
   */
  responseTarget (request: SipRequest, source: Source): SendTarget {
    const via = request.topVia
    if (via !== undefined && source.transport === 'udp' && via.received === undefined && (!mayHaveMaddr(via) || !via.params.has('maddr'))) {
      // The usual UDP request, as responseDestination decides it without its allocations:
      // RFC 3581 §4 rport → the source address and port; a sent-by that is the source address → its port.
      if (via.rport === null) return { transport: 'udp', address: source.address, port: source.port, flowId: source.flowId }
      if (via.host === source.address) return { transport: 'udp', address: source.address, port: via.port ?? 5060, flowId: source.flowId }
    }
    const dest = via === undefined ? undefined : responseDestination(via, source)
    if (dest === undefined || dest.port === undefined || addressFamily(dest.host) === 0) {
      return { transport: source.transport, address: source.address, port: source.port, flowId: source.flowId }
    }
    return { transport: dest.transport, address: dest.host, port: dest.port, flowId: dest.flowId }
  }

  /**
   * Terminate every transaction now (shutdown): timers stop, each TU gets
   * only `onTerminated`.
   */
  close (): void {
    for (const tx of [...this.#client.values(), ...this.#clientShared.values()]) tx.terminate()
    for (const tx of [...this.#server.values(), ...this.#serverShared.values()]) tx.terminate()
    this.#ctx.timeoutQueue.clear()
    this.#ctx.t4Queue.clear()
  }

  #receiveRequest (req: SipRequest, source: Source): void {
    const facts = this.#requestFacts(req)
    if (facts === undefined) return
    if (req.method === 'ACK') {
      this.#receiveAck(req, source, facts)
      return
    }
    let branchFree = false
    let existing: ServerEntry | undefined
    if (facts.cookie) {
      const holder = this.#server.get(facts.via.branch!)
      branchFree = holder === undefined
      existing = holder !== undefined && matches(holder, facts.via, req.method) ? holder : this.#sharedCookie(facts.via, req.method)
    } else {
      existing = this.#serverShared.get(facts.key!)
    }
    if (existing !== undefined) {
      existing.receiveRequest(req)
      return
    }
    this.#newServerTransaction(req, source, facts, branchFree)
  }

  /** §17.2.3 with the magic cookie: branch, sent-by and method (INVITE for an ACK or a CANCEL's target). */
  #findCookie (via: Via, method: string): ServerEntry | undefined {
    const holder = this.#server.get(via.branch!)
    return holder !== undefined && matches(holder, via, method) ? holder : this.#sharedCookie(via, method)
  }

  #sharedCookie (via: Via, method: string): ServerEntry | undefined {
    return this.#serverShared.size > 0 ? this.#serverShared.get(serverKey(via, method)) : undefined
  }

  /** Read what matching needs; undefined (and counted) when the request lacks it. */
  #requestFacts (req: SipRequest): RequestFacts | undefined {
    try {
      const via = req.topVia
      if (via === undefined) {
        this.counters.malformed++
        return undefined
      }
      const cookie = hasMagicCookie(via.branch)
      const method = req.method === 'ACK' ? 'INVITE' : req.method
      const toTag = req.to.tag
      let key: string | undefined
      if (cookie) {
        // Matched by branch (see #server): no key to build.
        // Read now what the new transaction and the merged check use later.
        void req.cseq
        void req.callId
        void req.from
      } else {
        // §17.2.3: an ACK is matched under the INVITE's To tag, none for an initial INVITE.
        key = rfc2543Key(req, via, method, req.method === 'ACK' ? undefined : toTag)
      }
      return { via, cookie, toTag, key }
    } catch {
      // A missing or malformed Via/To/From/Call-ID/CSeq (SipParseError).
      this.counters.malformed++
      return undefined
    }
  }

  #receiveAck (ack: SipRequest, source: Source, facts: RequestFacts): void {
    let tx: ServerEntry | undefined
    if (facts.cookie) {
      tx = this.#findCookie(facts.via, 'INVITE')
    } else {
      tx = this.#serverShared.get(facts.key!)
      // §17.2.3 (RFC 2543): the ACK's To tag must be the one of our response.
      if (tx !== undefined && !(tx instanceof ServerInviteTransaction)) tx = undefined
      if (tx !== undefined && tx.responseToTag !== undefined && tx.responseToTag !== facts.toTag) tx = undefined
      // A re-INVITE had the To tag already: it is the key's.
      tx ??= this.#serverShared.get(rfc2543Key(ack, facts.via, 'INVITE', facts.toTag))
    }
    if (tx instanceof ServerInviteTransaction) {
      if (!tx.receiveAck()) return // absorbed: Completed → Confirmed, or a retransmission
    } else {
      tx = undefined
    }
    this.counters.strayAcks++
    this.#onStrayAck?.(ack, source, tx)
  }

  /** `branchFree`: no transaction holds the request's branch (with the cookie), so it is keyed by its branch. */
  #newServerTransaction (req: SipRequest, source: Source, facts: RequestFacts, branchFree: boolean): void {
    source = this.#shareSource(source)
    let merged = false
    let mkey: string | undefined
    if (this.#detectMerged) {
      mkey = mergedKey(req)
      if (mkey !== undefined) {
        const other = this.#merged.get(mkey)
        merged = other !== undefined && !other.terminated
      }
    }
    let target: SendTarget | undefined = this.responseTarget(req, source)
    // The usual UDP request answered where it came from (RFC 3581 rport): no target object of its
    // own, the transaction sends to its source (held for Timer J: one such object, not two).
    if (target.port === source.port && target.address === source.address && target.transport === source.transport && target.flowId === source.flowId) target = undefined
    // The key and To tag live as long as the transaction (Timer J, L: 32 s): copies, not slices of the request's text.
    // serverKey and rfc2543Key flatten their join in place (a new string sharing nothing with the
    // message): not copied again with ownString, which made it a 32 B slice of the copy.
    const via = facts.via
    const key = branchFree ? ownString(via.branch!) : facts.cookie ? serverKey(via, req.method) : facts.key!
    const toTag = facts.toTag === undefined ? undefined : ownString(facts.toTag)
    const tx = req.method === 'INVITE'
      ? new ServerInviteTransaction(this.#ctx, key, target, req, source, toTag, !facts.cookie)
      : new ServerNonInviteTransaction(this.#ctx, key, target, req, source, toTag, !facts.cookie)
    if (branchFree) {
      // Usually the source address itself (held by the transaction anyway): no copy then.
      tx.sentByHost = via.host === source.address ? source.address : ownString(via.host)
      tx.sentByPort = via.port
      this.#server.set(key, tx)
    } else {
      this.#serverShared.set(key, tx)
    }
    this.#count(tx)
    if (merged) {
      // §8.2.2.2: answered through its own transaction, so its retransmissions get the 482 too.
      this.counters.mergedRequests++
      tx.respond(482, 'Loop Detected')
      return
    }
    if (mkey !== undefined) {
      tx.mergedKey = mkey
      this.#merged.set(mkey, tx)
    }
    if (tx instanceof ServerNonInviteTransaction) {
      if (req.method === 'CANCEL') tx.cancelTarget = this.#cancelTarget(req, facts)
    } else if (this.#sendTrying) {
      tx.respond(100)
    }
    this.#onRequest(tx)
  }

  /**
   * `s`, or the equal source the last server transaction got: a trunk or a
   * media node sends request after request from one address and port, and
   * each transaction holds its source for Timer J or L (32 s). From UDP a
   * source is a new object with its own flowId text per datagram (~200 B
   * a call held); an equal one is shared instead (sources are read-only).
   */
  #shareSource (s: Source): Source {
    const h = this.#heldSource
    if (h !== undefined && h.port === s.port && h.address === s.address && h.transport === s.transport && h.local === s.local && h.flowId === s.flowId) return h
    this.#heldSource = s
    return s
  }

  /** §9.2: the INVITE server transaction a CANCEL matches, by the §17.2.3 rules with method INVITE. */
  #cancelTarget (cancel: SipRequest, facts: RequestFacts): ServerInviteTransaction | undefined {
    const tx = facts.cookie ? this.#findCookie(facts.via, 'INVITE') : this.#serverShared.get(rfc2543Key(cancel, facts.via, 'INVITE', facts.toTag))
    return tx instanceof ServerInviteTransaction ? tx : undefined
  }

  #receiveResponse (resp: SipResponse, source: Source): void {
    let branch: string | undefined
    let method: string
    try {
      branch = resp.topVia?.branch
      if (branch === undefined) {
        this.counters.malformed++
        return
      }
      method = resp.cseq.method
    } catch {
      this.counters.malformed++
      return
    }
    // §17.1.3: branch and CSeq method; the branch's usual holder is checked for the method.
    let tx = this.#client.get(branch)
    if (tx === undefined || tx.method !== method) tx = this.#clientShared.size > 0 ? this.#clientShared.get(clientKey(branch, method)) : undefined
    if (tx === undefined) {
      this.counters.strayResponses++
      this.#onStrayResponse?.(resp, source)
      return
    }
    tx.receiveResponse(resp)
  }

  #count (tx: Transaction): void {
    const { created, active } = this.counters
    // Constant keys: a property access by a variable key goes through a megamorphic lookup.
    switch (tx.kind) {
      case 'client-invite': created['client-invite']++; active['client-invite']++; break
      case 'client-non-invite': created['client-non-invite']++; active['client-non-invite']++; break
      case 'server-invite': created['server-invite']++; active['server-invite']++; break
      case 'server-non-invite': created['server-non-invite']++; active['server-non-invite']++; break
    }
  }

  /** A transaction keyed by its branch alone has the branch itself as key (see createClient). */
  #forgetClient (tx: AnyClientTransaction): void {
    if (tx.key === tx.branch) this.#client.delete(tx.key)
    else this.#clientShared.delete(tx.key)
  }

  #forget (tx: AnyClientTransaction | ServerEntry): void {
    const active = this.counters.active
    // A key maps to its transaction until the transaction ends (a new one is
    // only created for a key nobody holds), so the entry is deleted unchecked.
    switch (tx.kind) {
      case 'client-invite': active['client-invite']--; this.#forgetClient(tx); return
      case 'client-non-invite': active['client-non-invite']--; this.#forgetClient(tx); return
      case 'server-invite': active['server-invite']--; break
      case 'server-non-invite': active['server-non-invite']--; break
    }
    if (tx.sentByHost !== undefined) this.#server.delete(tx.key)
    else this.#serverShared.delete(tx.key)
    const mkey = tx.mergedKey
    if (mkey !== undefined && this.#merged.get(mkey) === tx) this.#merged.delete(mkey)
  }
}

/** The rest of §17.2.3 for a transaction found by its branch: the sent-by (host and port as written) and the method. */
function matches (tx: ServerEntry, via: Via, method: string): boolean {
  return tx.method === method && tx.sentByHost === via.host && tx.sentByPort === via.port
}

/**
 * A To tag that is the same for every retransmission of a request (RFC 3261
 * §8.2.7): FNV-1a over the fields that identify it, two 32-bit lanes.
 */
function statelessTag (req: SipRequest, via: Via): string {
  let text: string
  try {
    text = (via.branch ?? via.raw) + '\n' + req.callId + '\n' + (req.from.tag ?? '') + '\n' + req.cseq.seq
  } catch {
    text = via.raw
  }
  let a = 0x811c9dc5
  let b = 0x01000193 ^ 0x5bd1e995
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    a = Math.imul(a ^ c, 0x01000193)
    b = Math.imul(b ^ c, 0x01000193) ^ (b >>> 15)
  }
  return (a >>> 0).toString(16).padStart(8, '0') + (b >>> 0).toString(16).padStart(8, '0')
}

/** A {@link Clock} whose timers are entries of `wheel` (fired on its ticks): time from `clock`. */
function wheelClock (clock: Clock, wheel: TimerWheel): Clock {
  return {
    now: () => clock.now(),
    setTimeout: (fn, ms) => wheel.schedule(fn, ms),
    clearTimeout: handle => { wheel.cancel(handle as WheelTimer) }
  }
}
