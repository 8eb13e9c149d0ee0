/**
 * Well-known header names, resolved from bytes without building strings.
 *
 * A header name is hashed while the line is scanned (case-folded), looked up
 * in a small open-addressed table and confirmed by a byte compare. Compact
 * forms (RFC 3261 §7.3.3 and the extension RFCs) map to the same id.
 */

/** Ids of well-known headers. `H_UNKNOWN` marks any other name. */
export const H_UNKNOWN = -1
export const H_VIA = 0
export const H_FROM = 1
export const H_TO = 2
export const H_CALL_ID = 3
export const H_CSEQ = 4
export const H_CONTACT = 5
export const H_MAX_FORWARDS = 6
export const H_ROUTE = 7
export const H_RECORD_ROUTE = 8
export const H_CONTENT_LENGTH = 9
export const H_CONTENT_TYPE = 10
export const H_EXPIRES = 11
export const H_AUTHORIZATION = 12
export const H_PROXY_AUTHORIZATION = 13
export const H_WWW_AUTHENTICATE = 14
export const H_PROXY_AUTHENTICATE = 15
export const H_REQUIRE = 16
export const H_PROXY_REQUIRE = 17
export const H_SUPPORTED = 18
export const H_UNSUPPORTED = 19
export const H_ALLOW = 20
export const H_USER_AGENT = 21
export const H_SERVER = 22
export const H_PATH = 23
export const H_MIN_EXPIRES = 24
export const H_CONTENT_ENCODING = 25
export const H_SUBJECT = 26
export const H_EVENT = 27
export const H_ALLOW_EVENTS = 28
export const H_REFER_TO = 29
export const H_SESSION_EXPIRES = 30
export const H_IDENTITY = 31
export const H_REFERRED_BY = 32
export const H_REJECT_CONTACT = 33
export const H_ACCEPT_CONTACT = 34
export const H_REQUEST_DISPOSITION = 35
export const H_ACCEPT = 36
export const H_DATE = 37
export const H_TIMESTAMP = 38
export const H_RETRY_AFTER = 39
export const H_ORGANIZATION = 40
export const H_WARNING = 41
export const H_IN_REPLY_TO = 42
export const H_REPLY_TO = 43
export const H_PRIORITY = 44
export const H_CONTENT_DISPOSITION = 45
export const H_MIME_VERSION = 46
export const H_ACCEPT_ENCODING = 47
export const H_ACCEPT_LANGUAGE = 48
export const H_ALERT_INFO = 49
export const H_CALL_INFO = 50
export const H_ERROR_INFO = 51
export const H_CONTENT_LANGUAGE = 52
export const H_AUTHENTICATION_INFO = 53
export const H_IDENTITY_INFO = 54
export const H_P_ASSERTED_IDENTITY = 55
export const H_SERVICE_ROUTE = 56

/**
 * Canonical spelling by id (used when writing headers), then whether the
 * header's grammar is a comma-separated list (RFC 3261 §7.3.1: only such
 * headers may be split on commas), then its compact form if any.
 */
const TABLE: ReadonlyArray<readonly [name: string, list: boolean, compact?: string]> = [
  ['Via', true, 'v'],
  ['From', false, 'f'],
  ['To', false, 't'],
  ['Call-ID', false, 'i'],
  ['CSeq', false],
  ['Contact', true, 'm'],
  ['Max-Forwards', false],
  ['Route', true],
  ['Record-Route', true],
  ['Content-Length', false, 'l'],
  ['Content-Type', false, 'c'],
  ['Expires', false],
  ['Authorization', false],
  ['Proxy-Authorization', false],
  ['WWW-Authenticate', false],
  ['Proxy-Authenticate', false],
  ['Require', true],
  ['Proxy-Require', true],
  ['Supported', true, 'k'],
  ['Unsupported', true],
  ['Allow', true],
  ['User-Agent', false],
  ['Server', false],
  ['Path', true],
  ['Min-Expires', false],
  ['Content-Encoding', true, 'e'],
  ['Subject', false, 's'],
  ['Event', false, 'o'],
  ['Allow-Events', true, 'u'],
  ['Refer-To', false, 'r'],
  ['Session-Expires', false, 'x'],
  ['Identity', false, 'y'],
  ['Referred-By', false, 'b'],
  ['Reject-Contact', true, 'j'],
  ['Accept-Contact', true, 'a'],
  ['Request-Disposition', true, 'd'],
  ['Accept', true],
  ['Date', false],
  ['Timestamp', false],
  ['Retry-After', false],
  ['Organization', false],
  ['Warning', true],
  ['In-Reply-To', true],
  ['Reply-To', false],
  ['Priority', false],
  ['Content-Disposition', false],
  ['MIME-Version', false],
  ['Accept-Encoding', true],
  ['Accept-Language', true],
  ['Alert-Info', true],
  ['Call-Info', true],
  ['Error-Info', true],
  ['Content-Language', true],
  ['Authentication-Info', false],
  ['Identity-Info', false, 'n'],
  ['P-Asserted-Identity', true],
  ['Service-Route', true]
]

/** Canonical header names by id. */
export const HEADER_NAMES: readonly string[] = TABLE.map(e => e[0])
/** True for headers whose value is a comma-separated list. */
export const IS_LIST_HEADER: readonly boolean[] = TABLE.map(e => e[1])

const byName = new Map<string, number>()
/**
 * Candidates by (length, first letter): almost always one. Matching a header
 * name then costs one table read and one case-folded compare of its bytes,
 * with no per-byte hashing or string building.
 */
const byLenFirst: Array<Int32Array | undefined> = new Array(64 * 32)
/** Lower-case bytes of each entry of byLenFirst (entry e: names[e], ids[e]). */
const entryBytes: Uint8Array[] = []
const entryIds: number[] = []

function slotOf (len: number, first: number): number {
  return len < 64 ? len * 32 + (first & 0x1f) : -1
}

function addName (lower: string, id: number): void {
  byName.set(lower, id)
  const slot = slotOf(lower.length, lower.charCodeAt(0))
  const e = entryBytes.length
  entryBytes.push(Buffer.from(lower, 'latin1'))
  entryIds.push(id)
  const prev = byLenFirst[slot]
  const list = new Int32Array((prev?.length ?? 0) + 1)
  if (prev !== undefined) list.set(prev)
  list[list.length - 1] = e
  byLenFirst[slot] = list
}

for (let id = 0; id < TABLE.length; id++) {
  const [name, , compact] = TABLE[id]!
  addName(name.toLowerCase(), id)
  if (compact !== undefined) addName(compact, id)
}

function lookupTable (buf: Uint8Array, start: number, end: number): number {
  const len = end - start
  const slot = slotOf(len, buf[start]!)
  if (slot < 0) return H_UNKNOWN
  const list = byLenFirst[slot]
  if (list === undefined) return H_UNKNOWN
  for (let c = 0; c < list.length; c++) {
    const e = list[c]!
    const bytes = entryBytes[e]!
    let i = 0
    // `| 0x20` folds ASCII letters; the names hold only letters and '-'.
    while (i < len && (buf[start + i]! | 0x20) === bytes[i]) i++
    if (i === len) return entryIds[e]!
  }
  return H_UNKNOWN
}

/**
 * Id of the header whose name occupies `buf[start..end)` (any case), or
 * H_UNKNOWN. The names most messages carry are compared against constants
 * (one switch on the length, no table reads); any other goes through the
 * (length, first letter) table.
 */
export function lookupHeaderBytes (buf: Uint8Array, start: number, end: number): number {
  const len = end - start
  const c0 = buf[start]! | 0x20
  switch (len) {
    case 1: return c0 < 0x80 ? COMPACT[c0]! : H_UNKNOWN
    case 2:
      // To
      if (c0 === 0x74 && (buf[start + 1]! | 0x20) === 0x6f) return H_TO
      break
    case 3:
      // Via
      if (c0 === 0x76 && (buf[start + 1]! | 0x20) === 0x69 && (buf[start + 2]! | 0x20) === 0x61) return H_VIA
      break
    case 4:
      // From
      if (c0 === 0x66 && (buf[start + 1]! | 0x20) === 0x72 && (buf[start + 2]! | 0x20) === 0x6f && (buf[start + 3]! | 0x20) === 0x6d) return H_FROM
      // CSeq
      if (c0 === 0x63 && (buf[start + 1]! | 0x20) === 0x73 && (buf[start + 2]! | 0x20) === 0x65 && (buf[start + 3]! | 0x20) === 0x71) return H_CSEQ
      break
    case 5:
      // Route
      if (c0 === 0x72 && (buf[start + 1]! | 0x20) === 0x6f && (buf[start + 2]! | 0x20) === 0x75 && (buf[start + 3]! | 0x20) === 0x74 && (buf[start + 4]! | 0x20) === 0x65) return H_ROUTE
      // Allow
      if (c0 === 0x61 && (buf[start + 1]! | 0x20) === 0x6c && (buf[start + 2]! | 0x20) === 0x6c && (buf[start + 3]! | 0x20) === 0x6f && (buf[start + 4]! | 0x20) === 0x77) return H_ALLOW
      break
    case 6:
      // Accept
      if (c0 === 0x61 && (buf[start + 1]! | 0x20) === 0x63 && (buf[start + 2]! | 0x20) === 0x63 && (buf[start + 3]! | 0x20) === 0x65 && (buf[start + 4]! | 0x20) === 0x70 && (buf[start + 5]! | 0x20) === 0x74) return H_ACCEPT
      break
    case 7:
      // Call-ID
      if (c0 === 0x63 && (buf[start + 1]! | 0x20) === 0x61 && (buf[start + 2]! | 0x20) === 0x6c && (buf[start + 3]! | 0x20) === 0x6c && buf[start + 4] === 0x2d && (buf[start + 5]! | 0x20) === 0x69 && (buf[start + 6]! | 0x20) === 0x64) return H_CALL_ID
      // Contact
      if (c0 === 0x63 && (buf[start + 1]! | 0x20) === 0x6f && (buf[start + 2]! | 0x20) === 0x6e && (buf[start + 3]! | 0x20) === 0x74 && (buf[start + 4]! | 0x20) === 0x61 && (buf[start + 5]! | 0x20) === 0x63 && (buf[start + 6]! | 0x20) === 0x74) return H_CONTACT
      // Expires
      if (c0 === 0x65 && (buf[start + 1]! | 0x20) === 0x78 && (buf[start + 2]! | 0x20) === 0x70 && (buf[start + 3]! | 0x20) === 0x69 && (buf[start + 4]! | 0x20) === 0x72 && (buf[start + 5]! | 0x20) === 0x65 && (buf[start + 6]! | 0x20) === 0x73) return H_EXPIRES
      // Require
      if (c0 === 0x72 && (buf[start + 1]! | 0x20) === 0x65 && (buf[start + 2]! | 0x20) === 0x71 && (buf[start + 3]! | 0x20) === 0x75 && (buf[start + 4]! | 0x20) === 0x69 && (buf[start + 5]! | 0x20) === 0x72 && (buf[start + 6]! | 0x20) === 0x65) return H_REQUIRE
      break
    case 9:
      // Supported
      if (c0 === 0x73 && (buf[start + 1]! | 0x20) === 0x75 && (buf[start + 2]! | 0x20) === 0x70 && (buf[start + 3]! | 0x20) === 0x70 && (buf[start + 4]! | 0x20) === 0x6f && (buf[start + 5]! | 0x20) === 0x72 && (buf[start + 6]! | 0x20) === 0x74 && (buf[start + 7]! | 0x20) === 0x65 && (buf[start + 8]! | 0x20) === 0x64) return H_SUPPORTED
      break
    case 10:
      // User-Agent
      if (c0 === 0x75 && (buf[start + 1]! | 0x20) === 0x73 && (buf[start + 2]! | 0x20) === 0x65 && (buf[start + 3]! | 0x20) === 0x72 && buf[start + 4] === 0x2d && (buf[start + 5]! | 0x20) === 0x61 && (buf[start + 6]! | 0x20) === 0x67 && (buf[start + 7]! | 0x20) === 0x65 && (buf[start + 8]! | 0x20) === 0x6e && (buf[start + 9]! | 0x20) === 0x74) return H_USER_AGENT
      break
    case 12:
      // Max-Forwards
      if (c0 === 0x6d && (buf[start + 1]! | 0x20) === 0x61 && (buf[start + 2]! | 0x20) === 0x78 && buf[start + 3] === 0x2d && (buf[start + 4]! | 0x20) === 0x66 && (buf[start + 5]! | 0x20) === 0x6f && (buf[start + 6]! | 0x20) === 0x72 && (buf[start + 7]! | 0x20) === 0x77 && (buf[start + 8]! | 0x20) === 0x61 && (buf[start + 9]! | 0x20) === 0x72 && (buf[start + 10]! | 0x20) === 0x64 && (buf[start + 11]! | 0x20) === 0x73) return H_MAX_FORWARDS
      // Record-Route
      if (c0 === 0x72 && (buf[start + 1]! | 0x20) === 0x65 && (buf[start + 2]! | 0x20) === 0x63 && (buf[start + 3]! | 0x20) === 0x6f && (buf[start + 4]! | 0x20) === 0x72 && (buf[start + 5]! | 0x20) === 0x64 && buf[start + 6] === 0x2d && (buf[start + 7]! | 0x20) === 0x72 && (buf[start + 8]! | 0x20) === 0x6f && (buf[start + 9]! | 0x20) === 0x75 && (buf[start + 10]! | 0x20) === 0x74 && (buf[start + 11]! | 0x20) === 0x65) return H_RECORD_ROUTE
      // Content-Type
      if (c0 === 0x63 && (buf[start + 1]! | 0x20) === 0x6f && (buf[start + 2]! | 0x20) === 0x6e && (buf[start + 3]! | 0x20) === 0x74 && (buf[start + 4]! | 0x20) === 0x65 && (buf[start + 5]! | 0x20) === 0x6e && (buf[start + 6]! | 0x20) === 0x74 && buf[start + 7] === 0x2d && (buf[start + 8]! | 0x20) === 0x74 && (buf[start + 9]! | 0x20) === 0x79 && (buf[start + 10]! | 0x20) === 0x70 && (buf[start + 11]! | 0x20) === 0x65) return H_CONTENT_TYPE
      break
    case 13:
      // Authorization
      if (c0 === 0x61 && (buf[start + 1]! | 0x20) === 0x75 && (buf[start + 2]! | 0x20) === 0x74 && (buf[start + 3]! | 0x20) === 0x68 && (buf[start + 4]! | 0x20) === 0x6f && (buf[start + 5]! | 0x20) === 0x72 && (buf[start + 6]! | 0x20) === 0x69 && (buf[start + 7]! | 0x20) === 0x7a && (buf[start + 8]! | 0x20) === 0x61 && (buf[start + 9]! | 0x20) === 0x74 && (buf[start + 10]! | 0x20) === 0x69 && (buf[start + 11]! | 0x20) === 0x6f && (buf[start + 12]! | 0x20) === 0x6e) return H_AUTHORIZATION
      break
    case 14:
      // Content-Length
      if (c0 === 0x63 && (buf[start + 1]! | 0x20) === 0x6f && (buf[start + 2]! | 0x20) === 0x6e && (buf[start + 3]! | 0x20) === 0x74 && (buf[start + 4]! | 0x20) === 0x65 && (buf[start + 5]! | 0x20) === 0x6e && (buf[start + 6]! | 0x20) === 0x74 && buf[start + 7] === 0x2d && (buf[start + 8]! | 0x20) === 0x6c && (buf[start + 9]! | 0x20) === 0x65 && (buf[start + 10]! | 0x20) === 0x6e && (buf[start + 11]! | 0x20) === 0x67 && (buf[start + 12]! | 0x20) === 0x74 && (buf[start + 13]! | 0x20) === 0x68) return H_CONTENT_LENGTH
      break
    case 15:
      // Session-Expires
      if (c0 === 0x73 && (buf[start + 1]! | 0x20) === 0x65 && (buf[start + 2]! | 0x20) === 0x73 && (buf[start + 3]! | 0x20) === 0x73 && (buf[start + 4]! | 0x20) === 0x69 && (buf[start + 5]! | 0x20) === 0x6f && (buf[start + 6]! | 0x20) === 0x6e && buf[start + 7] === 0x2d && (buf[start + 8]! | 0x20) === 0x65 && (buf[start + 9]! | 0x20) === 0x78 && (buf[start + 10]! | 0x20) === 0x70 && (buf[start + 11]! | 0x20) === 0x69 && (buf[start + 12]! | 0x20) === 0x72 && (buf[start + 13]! | 0x20) === 0x65 && (buf[start + 14]! | 0x20) === 0x73) return H_SESSION_EXPIRES
      break
    case 19:
      // Proxy-Authorization
      if (c0 === 0x70 && (buf[start + 1]! | 0x20) === 0x72 && (buf[start + 2]! | 0x20) === 0x6f && (buf[start + 3]! | 0x20) === 0x78 && (buf[start + 4]! | 0x20) === 0x79 && buf[start + 5] === 0x2d && (buf[start + 6]! | 0x20) === 0x61 && (buf[start + 7]! | 0x20) === 0x75 && (buf[start + 8]! | 0x20) === 0x74 && (buf[start + 9]! | 0x20) === 0x68 && (buf[start + 10]! | 0x20) === 0x6f && (buf[start + 11]! | 0x20) === 0x72 && (buf[start + 12]! | 0x20) === 0x69 && (buf[start + 13]! | 0x20) === 0x7a && (buf[start + 14]! | 0x20) === 0x61 && (buf[start + 15]! | 0x20) === 0x74 && (buf[start + 16]! | 0x20) === 0x69 && (buf[start + 17]! | 0x20) === 0x6f && (buf[start + 18]! | 0x20) === 0x6e) return H_PROXY_AUTHORIZATION
      break
  }
  return lookupTable(buf, start, end)
}

/** Compact forms (RFC 3261 §7.3.3) by lower-case letter. */
const COMPACT = new Int32Array(128).fill(H_UNKNOWN)
for (let id = 0; id < TABLE.length; id++) {
  const compact = TABLE[id]![2]
  if (compact !== undefined) COMPACT[compact.charCodeAt(0)] = id
}

const nameCache = new Map<string, number>()

/**
 * Id of a header name given as a string (any case, compact forms allowed), or
 * H_UNKNOWN. Callers pass constants, so the answer is cached by the string.
 */
export function headerId (name: string): number {
  let id = nameCache.get(name)
  if (id === undefined) {
    id = byName.get(name.toLowerCase()) ?? H_UNKNOWN
    if (nameCache.size < 1024) nameCache.set(name, id)
  }
  return id
}

/**
 * The names nearly every message carries, matched at the start of a header
 * line in one pass over their bytes, colon included (`Via:`, `Call-ID:`,
 * compact `v:`...): the line needs no separate token scan. Returns
 * `(id << 5) | length of the name`, or -1 when the line does not start with
 * one of them directly followed by ":" (the caller then takes the general
 * path, which gives the same id for these names in any other spelling).
 * Letters compare with `| 0x20` (ASCII case folding); "-" and ":" compare
 * exactly (CR | 0x20 is "-").
 */
export function matchCommonName (buf: Uint8Array, p: number): number {
  const c0 = buf[p]! | 0x20
  if (buf[p + 1] === 0x3a) {
    // Compact form (RFC 3261 §7.3.3): one letter and the colon.
    if (c0 < 0x61 || c0 > 0x7a) return -1
    const id = COMPACT[c0]!
    return id < 0 ? -1 : (id << 5) | 1
  }
  switch (c0) {
    case 0x76: // Via
      if ((buf[p + 1]! | 0x20) === 0x69 && (buf[p + 2]! | 0x20) === 0x61 && buf[p + 3] === 0x3a) return (H_VIA << 5) | 3
      return -1
    case 0x66: // From
      if ((buf[p + 1]! | 0x20) === 0x72 && (buf[p + 2]! | 0x20) === 0x6f && (buf[p + 3]! | 0x20) === 0x6d && buf[p + 4] === 0x3a) return (H_FROM << 5) | 4
      return -1
    case 0x74: // To
      if ((buf[p + 1]! | 0x20) === 0x6f && buf[p + 2] === 0x3a) return (H_TO << 5) | 2
      return -1
    case 0x63: {
      const c1 = buf[p + 1]! | 0x20
      if (c1 === 0x61) {
        // Call-ID
        if ((buf[p + 2]! | 0x20) === 0x6c && (buf[p + 3]! | 0x20) === 0x6c && buf[p + 4] === 0x2d && (buf[p + 5]! | 0x20) === 0x69 &&
          (buf[p + 6]! | 0x20) === 0x64 && buf[p + 7] === 0x3a) return (H_CALL_ID << 5) | 7
        return -1
      }
      if (c1 === 0x73) {
        // CSeq
        if ((buf[p + 2]! | 0x20) === 0x65 && (buf[p + 3]! | 0x20) === 0x71 && buf[p + 4] === 0x3a) return (H_CSEQ << 5) | 4
        return -1
      }
      if (c1 !== 0x6f || (buf[p + 2]! | 0x20) !== 0x6e || (buf[p + 3]! | 0x20) !== 0x74) return -1
      const c4 = buf[p + 4]! | 0x20
      if (c4 === 0x61) {
        // Contact
        if ((buf[p + 5]! | 0x20) === 0x63 && (buf[p + 6]! | 0x20) === 0x74 && buf[p + 7] === 0x3a) return (H_CONTACT << 5) | 7
        return -1
      }
      // Content-Length, Content-Type
      if (c4 !== 0x65 || (buf[p + 5]! | 0x20) !== 0x6e || (buf[p + 6]! | 0x20) !== 0x74 || buf[p + 7] !== 0x2d) return -1
      const c8 = buf[p + 8]! | 0x20
      if (c8 === 0x6c) {
        if ((buf[p + 9]! | 0x20) === 0x65 && (buf[p + 10]! | 0x20) === 0x6e && (buf[p + 11]! | 0x20) === 0x67 && (buf[p + 12]! | 0x20) === 0x74 &&
          (buf[p + 13]! | 0x20) === 0x68 && buf[p + 14] === 0x3a) return (H_CONTENT_LENGTH << 5) | 14
        return -1
      }
      if (c8 === 0x74 && (buf[p + 9]! | 0x20) === 0x79 && (buf[p + 10]! | 0x20) === 0x70 && (buf[p + 11]! | 0x20) === 0x65 && buf[p + 12] === 0x3a) return (H_CONTENT_TYPE << 5) | 12
      return -1
    }
    case 0x6d: // Max-Forwards
      if ((buf[p + 1]! | 0x20) === 0x61 && (buf[p + 2]! | 0x20) === 0x78 && buf[p + 3] === 0x2d && (buf[p + 4]! | 0x20) === 0x66 &&
        (buf[p + 5]! | 0x20) === 0x6f && (buf[p + 6]! | 0x20) === 0x72 && (buf[p + 7]! | 0x20) === 0x77 && (buf[p + 8]! | 0x20) === 0x61 &&
        (buf[p + 9]! | 0x20) === 0x72 && (buf[p + 10]! | 0x20) === 0x64 && (buf[p + 11]! | 0x20) === 0x73 && buf[p + 12] === 0x3a) return (H_MAX_FORWARDS << 5) | 12
      return -1
    case 0x72: {
      const c1 = buf[p + 1]! | 0x20
      if (c1 === 0x6f) {
        // Route
        if ((buf[p + 2]! | 0x20) === 0x75 && (buf[p + 3]! | 0x20) === 0x74 && (buf[p + 4]! | 0x20) === 0x65 && buf[p + 5] === 0x3a) return (H_ROUTE << 5) | 5
        return -1
      }
      if (c1 !== 0x65) return -1
      const c2 = buf[p + 2]! | 0x20
      // Record-Route
      if (c2 === 0x63 && (buf[p + 3]! | 0x20) === 0x6f && (buf[p + 4]! | 0x20) === 0x72 && (buf[p + 5]! | 0x20) === 0x64 && buf[p + 6] === 0x2d &&
        (buf[p + 7]! | 0x20) === 0x72 && (buf[p + 8]! | 0x20) === 0x6f && (buf[p + 9]! | 0x20) === 0x75 && (buf[p + 10]! | 0x20) === 0x74 &&
        (buf[p + 11]! | 0x20) === 0x65 && buf[p + 12] === 0x3a) return (H_RECORD_ROUTE << 5) | 12
      return -1
    }
    case 0x61: // Allow
      if ((buf[p + 1]! | 0x20) === 0x6c && (buf[p + 2]! | 0x20) === 0x6c && (buf[p + 3]! | 0x20) === 0x6f && (buf[p + 4]! | 0x20) === 0x77 && buf[p + 5] === 0x3a) return (H_ALLOW << 5) | 5
      return -1
    case 0x65: // Expires
      if ((buf[p + 1]! | 0x20) === 0x78 && (buf[p + 2]! | 0x20) === 0x70 && (buf[p + 3]! | 0x20) === 0x69 && (buf[p + 4]! | 0x20) === 0x72 &&
        (buf[p + 5]! | 0x20) === 0x65 && (buf[p + 6]! | 0x20) === 0x73 && buf[p + 7] === 0x3a) return (H_EXPIRES << 5) | 7
      return -1
    case 0x73: // Supported
      if ((buf[p + 1]! | 0x20) === 0x75 && (buf[p + 2]! | 0x20) === 0x70 && (buf[p + 3]! | 0x20) === 0x70 && (buf[p + 4]! | 0x20) === 0x6f &&
        (buf[p + 5]! | 0x20) === 0x72 && (buf[p + 6]! | 0x20) === 0x74 && (buf[p + 7]! | 0x20) === 0x65 && (buf[p + 8]! | 0x20) === 0x64 && buf[p + 9] === 0x3a) return (H_SUPPORTED << 5) | 9
      return -1
    case 0x75: // User-Agent
      if ((buf[p + 1]! | 0x20) === 0x73 && (buf[p + 2]! | 0x20) === 0x65 && (buf[p + 3]! | 0x20) === 0x72 && buf[p + 4] === 0x2d &&
        (buf[p + 5]! | 0x20) === 0x61 && (buf[p + 6]! | 0x20) === 0x67 && (buf[p + 7]! | 0x20) === 0x65 && (buf[p + 8]! | 0x20) === 0x6e &&
        (buf[p + 9]! | 0x20) === 0x74 && buf[p + 10] === 0x3a) return (H_USER_AGENT << 5) | 10
      return -1
  }
  return -1
}
