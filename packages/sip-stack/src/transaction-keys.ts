/**
 * Transaction keys: plain strings joined with LF, a byte that cannot occur
 * in any of the joined fields (they come from single header lines), so no
 * escaping is needed and a key costs one concatenation.
 */
import type { SipRequest, Via } from '@sipd/sip-parser'

/**
 * The key as one flat string. Joined as it is, a key is a tree of slices of
 * the request's text: stored in a map for Timer J (32 s) it would keep that
 * whole text alive (about 900 bytes per REGISTER transaction in a heap
 * snapshot), and every map lookup would copy the tree out again to hash
 * it. Reading a character of such a tree flattens it in place (V8); the
 * read goes to a module variable so that no compiler drops it.
 */
function flat (key: string): string {
  flatSink = key.charCodeAt(key.length >> 1)
  return key
}
let flatSink = 0

/**
 * RFC 3261 §17.2.3 server key for a branch with the magic cookie: branch,
 * sent-by (host and port as written) and method, where the caller passes
 * INVITE for an ACK and for a CANCEL's target. The branch is compared byte
 * for byte: it is an opaque token the client repeats unchanged.
 */
export function serverKey (via: Via, method: string): string {
  return flat(via.branch! + '\n' + via.host + ':' + (via.port === undefined ? '' : via.port) + '\n' + method)
}

/**
 * RFC 3261 §17.2.3 matching for RFC 2543 requests (branch without the magic
 * cookie): Request-URI, To tag, From tag, Call-ID, CSeq number and method,
 * and the top Via. The caller passes the To tag to match under: for an ACK
 * the INVITE's (none for an initial INVITE), the ACK's own To tag being the
 * one of our response; for a CANCEL's target its own To tag (§9.2).
 */
export function rfc2543Key (req: SipRequest, via: Via, method: string, toTag: string | undefined): string {
  return flat('2543\n' + req.uri + '\n' + (toTag ?? '') + '\n' + (req.from.tag ?? '') + '\n' + req.callId + '\n' +
    req.cseq.seq + '\n' + method + '\n' + via.raw)
}

/**
 * RFC 3261 §8.2.2.2 merged-request key: From tag, Call-ID and CSeq. Undefined
 * when the request has a To tag (in-dialog: not checked) or no From tag
 * (RFC 2543 clients: cannot be told apart).
 */
export function mergedKey (req: SipRequest): string | undefined {
  if (req.to.tag !== undefined) return undefined
  const fromTag = req.from.tag
  if (fromTag === undefined) return undefined
  const cseq = req.cseq
  return flat(fromTag + '\n' + req.callId + '\n' + cseq.seq + '\n' + cseq.method)
}
