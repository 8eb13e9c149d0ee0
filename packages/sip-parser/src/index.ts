/**
 * @sipd/sip-parser: SIP messages over Buffers (RFC 3261 §7, §20, §25).
 *
 * parseMessage() indexes a datagram once and parses header values on first
 * read; StreamParser frames TCP streams; forwardRequest() splices the
 * received bytes for a proxy.
 */
export { parseMessage, SipMessage, SipRequest, SipResponse, DEFAULT_MAX_HEADERS } from './message.js'
export type { IndexLimits } from './message.js'
export { StreamParser, DEFAULT_MAX_MESSAGE_SIZE } from './stream.js'
export type { StreamParserOptions } from './stream.js'
export { SipParseError, SipLimitError } from './errors.js'
export { parseUri, uriEquals, formatUri, unescapePercent, isValidHost } from './uri.js'
export { validateRequest, validateResponse } from './validate.js'
export { createResponse, createRequest, forwardRequest, stripTopVia, reasonPhrase, editViaElement } from './build.js'
export type { ResponseOptions, RequestSpec, ForwardEdits, TopViaParams } from './build.js'
export { parseNameAddr, parseVia, splitList, isToken } from './grammar.js'
export type {
  AddressHeader, Contact, CSeq, DigestCredentials, NameAddr, Params, SipUri, ValidationFailure, Via
} from './types.js'
