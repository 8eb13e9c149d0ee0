/**
 * Salvage of requests the strict parser refused before it could index their
 * headers (a header line without a colon, a start line that is no request
 * line, too many header lines). RFC 3261 §8.2 and §16.3 want a 400 for such
 * a request whenever a response can be built; that takes the five fields a
 * response copies (§8.2.6.2): Via, From, To, Call-ID and CSeq. They are found
 * here by a lenient scan of the raw header block and put into a small
 * synthetic request, which the strict parser then checks as usual: what it
 * still refuses is dropped. Only ever runs for a message that failed to
 * parse, so it may allocate.
 */

const CR = 0x0d
const LF = 0x0a
const SP = 0x20
const HT = 0x09
const COLON = 0x3a

/** Header names (lower case, long and compact forms) of the fields a response copies. */
const COPIED: Readonly<Record<string, 'via' | 'from' | 'to' | 'call-id' | 'cseq'>> = {
  via: 'via',
  v: 'via',
  from: 'from',
  f: 'from',
  to: 'to',
  t: 'to',
  'call-id': 'call-id',
  i: 'call-id',
  cseq: 'cseq'
}

/** Most Via values carried over (a request with more has nowhere sane to go back). */
const MAX_VIAS = 70

/**
 * Build `METHOD sip:invalid.invalid SIP/2.0` plus the Via, From, To, Call-ID
 * and CSeq lines of the raw message, or undefined when it cannot be answered:
 * a response (§17: never answered), an ACK (never answered), a field missing
 * or given twice (From, To, Call-ID, CSeq), a CSeq without a method.
 * The method is the CSeq's, so that the answer matches the client transaction.
 */
export function salvageRequest (raw: Buffer): Buffer | undefined {
  const end = raw.length
  let pos = 0
  // RFC 3261 §7.5: CRLFs before the start line are ignored.
  while (pos < end && (raw[pos] === CR || raw[pos] === LF)) pos++
  if (pos >= end) return undefined
  const startEnd = lineEnd(raw, pos, end)
  // A status line: responses are never answered.
  if (end - pos >= 4 && (raw[pos]! | 0x20) === 0x73 && (raw[pos + 1]! | 0x20) === 0x69 && (raw[pos + 2]! | 0x20) === 0x70 && raw[pos + 3] === 0x2f) return undefined
  if (startEnd - pos >= 4 && raw.toString('latin1', pos, pos + 4) === 'ACK ') return undefined
  const vias: string[] = []
  const single = new Map<string, string>()
  let twice = false
  let current: string | undefined
  let value = ''
  const flush = (): boolean => {
    if (current === undefined) return true
    const v = value.trim()
    if (current === 'via') vias.push(v)
    else if (single.has(current)) twice = true
    else single.set(current, v)
    current = undefined
    return vias.length <= MAX_VIAS
  }
  pos = nextLine(raw, startEnd, end)
  while (pos < end) {
    const le = lineEnd(raw, pos, end)
    if (le === pos) break // the empty line: end of the headers
    const c = raw[pos]
    if (c === SP || c === HT) {
      // A continuation line (§7.3.1) folds into the header above it.
      if (current !== undefined) value += ' ' + raw.toString('latin1', pos, le)
    } else {
      if (!flush()) return undefined
      // name = the token up to WS or ':'; a header line has (WS) ':' after it.
      let ne = pos
      while (ne < le && raw[ne] !== COLON && raw[ne] !== SP && raw[ne] !== HT) ne++
      let colon = ne
      while (colon < le && (raw[colon] === SP || raw[colon] === HT)) colon++
      const name = COPIED[raw.toString('latin1', pos, ne).toLowerCase()]
      if (colon < le && raw[colon] === COLON) {
        if (name !== undefined) {
          current = name
          value = raw.toString('latin1', colon + 1, le)
        }
      } else if (name !== undefined) {
        // A broken line that names one of the copied fields (`Via SIP/2.0/UDP …`):
        // answering without it would send the response past a hop, or copy the wrong value.
        return undefined
      }
    }
    pos = nextLine(raw, le, end)
  }
  if (!flush()) return undefined
  const from = single.get('from')
  const to = single.get('to')
  const callId = single.get('call-id')
  const cseq = single.get('cseq')
  if (twice || vias.length === 0 || from === undefined || to === undefined || callId === undefined || cseq === undefined) return undefined
  // CSeq = 1*DIGIT LWS Method; the strict parser checks both once the request is rebuilt.
  let sp = 0
  while (sp < cseq.length && cseq[sp] !== ' ' && cseq[sp] !== '\t') sp++
  const method = cseq.slice(sp).trim()
  if (method === '' || method === 'ACK') return undefined
  let text = `${method} sip:invalid.invalid SIP/2.0\r\n`
  for (const v of vias) text += `Via: ${v}\r\n`
  text += `From: ${from}\r\nTo: ${to}\r\nCall-ID: ${callId}\r\nCSeq: ${cseq}\r\nContent-Length: 0\r\n\r\n`
  return Buffer.from(text, 'latin1')
}

/**
 * Offset of the line break (CR of CRLF, or a bare LF) ending the line at
 * `pos`, or `end`. A lone CR stays in the value: the strict parser and the
 * response builder refuse it there, so such a request is dropped rather than
 * answered with a value cut short.
 */
function lineEnd (buf: Buffer, pos: number, end: number): number {
  const lf = buf.indexOf(LF, pos)
  const e = lf < 0 || lf > end ? end : lf
  return e > pos && buf[e - 1] === CR ? e - 1 : e
}

/** Offset of the line after the break at `le`. */
function nextLine (buf: Buffer, le: number, end: number): number {
  if (le >= end) return end
  return buf[le] === CR ? le + 2 : le + 1
}
