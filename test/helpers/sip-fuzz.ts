// A small, deterministic SIP message mutator for fuzzing sipd over the wire.
// Every draw comes from one seeded PRNG (mulberry32), so a seed names a run.
// Mutations work on bytes (flips, truncation, inserted non-UTF-8 and NUL
// bytes) and on the header block (lines duplicated, deleted, renamed to the
// compact form; huge values, many headers, many Via / Route entries; odd
// Content-Length, CSeq, Max-Forwards, URIs, versions). Bounded: no mutation
// makes a message larger than `maxSize` bytes.

/** A seeded source of random choices. */
export class Dice {
  #state: number

  constructor (seed: number) {
    this.#state = seed >>> 0
  }

  /** A float in [0, 1) (mulberry32). */
  next (): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0
    let x = this.#state
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }

  /** An integer in [0, n). */
  int (n: number): number {
    return Math.floor(this.next() * n)
  }

  pick<T> (items: readonly T[]): T {
    return items[this.int(items.length)] as T
  }

  chance (p: number): boolean {
    return this.next() < p
  }

  /** A lowercase hex string of `n` characters. */
  hex (n: number): string {
    let s = ''
    for (let i = 0; i < n; i++) s += '0123456789abcdef'[this.int(16)]
    return s
  }
}

const CRLF = '\r\n'

/** Header block lines and body of a message (latin1, so every byte survives). */
interface Parts { lines: string[], body: string }

function split (msg: Buffer): Parts {
  const text = msg.toString('latin1')
  const end = text.indexOf(CRLF + CRLF)
  if (end < 0) return { lines: text.split(CRLF), body: '' }
  return { lines: text.slice(0, end).split(CRLF), body: text.slice(end + 4) }
}

function join (p: Parts): Buffer {
  return Buffer.from(p.lines.join(CRLF) + CRLF + CRLF + p.body, 'latin1')
}

/** Index of the first header line named `name` (case-insensitive, compact forms not mapped), or -1. */
function findHeader (lines: string[], names: readonly string[]): number {
  for (let i = 1; i < lines.length; i++) {
    const colon = (lines[i] as string).indexOf(':')
    if (colon < 0) continue
    const n = (lines[i] as string).slice(0, colon).trim().toLowerCase()
    if (names.includes(n)) return i
  }
  return -1
}

function setHeader (p: Parts, names: readonly string[], value: string): void {
  const i = findHeader(p.lines, names)
  const name = names[0] as string
  if (i < 0) p.lines.push(`${name}: ${value}`)
  else p.lines[i] = `${(p.lines[i] as string).slice(0, (p.lines[i] as string).indexOf(':'))}: ${value}`
}

const COMPACT: Record<string, string> = {
  via: 'v', from: 'f', to: 't', 'call-id': 'i', contact: 'm', 'content-length': 'l', 'content-type': 'c',
  supported: 'k', subject: 's', 'content-encoding': 'e', 'refer-to': 'r', 'allow-events': 'u', event: 'o'
}

/** URIs a parser and a router find hard: IPv6, escapes, missing parts, odd ports and parameters. */
export const ODD_URIS: readonly string[] = [
  'sip:[::1]', 'sip:alice@[::1]:5060', 'sip:[fe80::1%25eth0]', 'sip:alice@[::ffff:127.0.0.1]', 'sip:[::1', 'sip:alice@[:::1]',
  'sip:2001:db8::1', 'sip:%61lice@example.test', 'sip:al%00ice@example.test', 'sip:al%zzice@example.test', 'sip:%', 'sip:@example.test',
  'sip:', 'sip:alice@', 'sip:alice@:5060', 'sip:alice@example.test:0', 'sip:alice@example.test:99999', 'sip:alice@example.test:-1',
  'sip:alice@example.test;;;;', 'sip:alice@example.test;lr=;transport=', 'sip:alice@example.test;maddr=[::1]', 'sip:alice@example.test;maddr=',
  'sip:alice@example.test?subject=x&&=', 'sip:alice:secret@example.test', 'sips:alice@example.test', 'SIP:ALICE@EXAMPLE.TEST',
  'tel:+15551234567', 'tel:', 'urn:service:sos', 'http://example.test/', 'mailto:x@y', 'sip:alice@example..test', 'sip:alice@-bad-.test',
  'sip:alice@127.0.0.256', 'sip:alice@1.2.3', 'sip:a b@example.test', 'sip:alice@example.test;transport=sctp', 'sip:*@example.test',
  'sip:' + 'a'.repeat(3000) + '@example.test', 'sip:alice@' + 'h'.repeat(300) + '.test', 'sip:alice@example.test;' + 'p=v;'.repeat(300),
  '<sip:alice@example.test>', 'sip:alice@\u00e9xample.test', 'sip:alice@127.0.0.1:5060;transport=tcp;lr'
]

const ODD_CSEQ: readonly string[] = [
  '', 'INVITE', '1', 'abc INVITE', '-1 INVITE', '4294967295 INVITE', '4294967296 INVITE', '99999999999999999999 INVITE',
  '1 FOO', '1 invite', '1 INVITE extra', '1  INVITE', '01 INVITE', '1\tINVITE', ' 1 INVITE', '1 ' + 'X'.repeat(500), '0 ACK'
]

const ODD_MAX_FORWARDS: readonly string[] = ['', '-1', '0', '1', '255', '256', '70000', '99999999999999999999', 'abc', '7 0', '0x10', '+5']

const ODD_CONTENT_LENGTH = (len: number): string[] => [
  '', '-1', '0', 'abc', '1e3', '+5', '0x10', '5, 6', '4294967296', '99999999999999999999999', String(len + 1), String(len + 1000),
  String(Math.max(0, len - 1)), String(Math.floor(len / 2)), String(len) + ' ', ' ' + String(len)
]

const ODD_VIAS: readonly string[] = [
  'SIP/2.0/UDP [::1', 'SIP/2.0/UDP [::1]:5060;branch=z9hG4bKv6', 'SIP/2.0/XYZ host;branch=z9hG4bKx', 'SIP/2.0/UDP host;branch=',
  'SIP/2.0/UDP host:0;rport=abc;received=zzz', 'SIP/2.0/UDP host:99999;branch=z9hG4bKp', 'SIP/2.0/UDP', 'SIP/2.0 host', '',
  'SIP/2.0/TCP 127.0.0.1;branch=z9hG4bK;rport;rport;received=1.2.3.4;received=[::1]', 'SIP/3.0/UDP host;branch=z9hG4bKv3',
  'SIP/2.0/UDP host;branch=z9hG4bK' + 'b'.repeat(2000), 'SIP/2.0/UDP host;maddr=224.2.0.1;ttl=300;branch=z9hG4bKm',
  'SIP/2.0/UDP ' + 'h'.repeat(500) + ';branch=z9hG4bKh', 'SIP/2.0/UDP host , , ,', 'SIP/2.0/UDP host;branch=z9hG4bKa, SIP/2.0/UDP [zz]'
]

const ODD_LINES: readonly string[] = [
  'NoColonHere', ': empty-name', ' folded continuation', '\tfolded tab', 'Bad Name: x', 'X-Nul\u0000: y', 'X-Ctl: a\u0001b',
  'Via:', 'Route:', 'Contact: *', 'Contact: <sip:x@y', 'Require: foo, bar', 'Proxy-Require: nope', 'Content-Type: multipart/mixed;boundary=',
  'Authorization: Digest', 'Authorization: Digest realm="unterminated', 'Proxy-Authorization: Digest username=alice, nonce=, response=',
  'Expires: -1', 'Expires: 99999999999999', 'Contact: <sip:a@b>;expires=abc;q=7', 'Record-Route: <>', 'From: "unterminated <sip:a@b>'
]

/** Byte sequences that are not UTF-8 or are NUL / control bytes. */
const ODD_BYTES: readonly number[][] = [[0x00], [0x00, 0x00, 0x00], [0xff, 0xfe], [0xc3, 0x28], [0xed, 0xa0, 0x80], [0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0x1b, 0x5b], [0x7f], [0x0d], [0x0a], [0x0d, 0x0a, 0x0d, 0x0a]]

type Mutator = (d: Dice, msg: Buffer, maxSize: number) => Buffer

const line = (f: (d: Dice, p: Parts, maxSize: number) => void): Mutator => (d, msg, maxSize) => {
  const p = split(msg)
  f(d, p, maxSize)
  return join(p)
}

const randomHeaderIndex = (d: Dice, p: Parts): number => p.lines.length > 1 ? 1 + d.int(p.lines.length - 1) : 0

/** Each mutation by name; {@link mutate} applies one to three of them. */
export const MUTATORS: Record<string, Mutator> = {
  flipBits: (d, msg) => {
    const b = Buffer.from(msg)
    for (let k = 1 + d.int(8); k > 0 && b.length > 0; k--) { const i = d.int(b.length); b[i] = (b[i] as number) ^ (1 << d.int(8)) }
    return b
  },
  setBytes: (d, msg) => {
    const b = Buffer.from(msg)
    for (let k = 1 + d.int(4); k > 0 && b.length > 0; k--) b[d.int(b.length)] = d.pick([0x00, 0x80, 0xff, 0x0d, 0x0a, 0x20, 0x3a, 0x3b, 0x2c, 0x3c, 0x3e, 0x22, 0x5c, 0x25, 0x40, 0x5b, 0x5d])
    return b
  },
  truncate: (d, msg) => msg.subarray(0, d.int(msg.length + 1)),
  insertBytes: (d, msg) => {
    const at = d.int(msg.length + 1)
    return Buffer.concat([msg.subarray(0, at), Buffer.from(d.pick(ODD_BYTES)), msg.subarray(at)])
  },
  duplicateLine: line((d, p) => { const i = randomHeaderIndex(d, p); p.lines.splice(i, 0, ...Array(1 + d.int(3)).fill(p.lines[i])) }),
  deleteLine: line((d, p) => { p.lines.splice(randomHeaderIndex(d, p), 1) }),
  swapLines: line((d, p) => {
    const i = randomHeaderIndex(d, p)
    const j = randomHeaderIndex(d, p)
    const x = p.lines[i] as string
    p.lines[i] = p.lines[j] as string
    p.lines[j] = x
  }),
  hugeHeader: line((d, p, maxSize) => {
    const size = Math.min(d.pick([1000, 8000, 30000, 60000, 70000]), maxSize - 2000)
    const name = d.pick(['X-Huge', 'Subject', 'User-Agent', 'Via', 'Route', 'Contact', 'To', 'Call-ID'])
    const unit = name === 'Via' ? 'SIP/2.0/UDP h;branch=z9hG4bKa,' : name === 'Route' || name === 'Contact' ? '<sip:a@b;lr>,' : 'a'
    p.lines.splice(randomHeaderIndex(d, p), 0, `${name}: ${unit.repeat(Math.max(1, Math.floor(size / unit.length)))}`)
  }),
  hugeValue: line((d, p, maxSize) => {
    const i = randomHeaderIndex(d, p)
    const l = p.lines[i] as string
    const room = Math.max(0, maxSize - 2000 - l.length)
    p.lines[i] = l + 'x'.repeat(Math.min(room, d.pick([500, 5000, 20000, 64000])))
  }),
  manyHeaders: line((d, p) => {
    const n = d.pick([100, 255, 257, 400, 1000])
    const extra: string[] = []
    for (let i = 0; i < n; i++) extra.push(`X-H${i}: v${i}`)
    p.lines.splice(randomHeaderIndex(d, p), 0, ...extra)
  }),
  manyVia: line((d, p) => {
    const n = d.pick([20, 70, 200, 600])
    const at = findHeader(p.lines, ['via', 'v'])
    const vias: string[] = []
    for (let i = 0; i < n; i++) vias.push(`SIP/2.0/UDP 10.${i >> 8 & 255}.${i & 255}.1:5060;branch=z9hG4bKmany${i}`)
    if (d.chance(0.5)) p.lines.splice(at < 0 ? 1 : at + 1, 0, ...vias.map(v => `Via: ${v}`))
    else p.lines.splice(at < 0 ? 1 : at + 1, 0, `Via: ${vias.join(', ')}`)
  }),
  manyRoute: line((d, p) => {
    const n = d.pick([10, 70, 300, 1000])
    const routes: string[] = []
    for (let i = 0; i < n; i++) routes.push(`<sip:10.1.${i >> 8 & 255}.${i & 255};lr>`)
    const name = d.pick(['Route', 'Record-Route'])
    if (d.chance(0.5)) p.lines.splice(randomHeaderIndex(d, p), 0, `${name}: ${routes.join(', ')}`)
    else p.lines.splice(randomHeaderIndex(d, p), 0, ...routes.map(r => `${name}: ${r}`))
  }),
  contentLength: line((d, p) => { setHeader(p, ['content-length', 'l'], d.pick(ODD_CONTENT_LENGTH(Buffer.byteLength(p.body, 'latin1')))) }),
  duplicateContentLength: line((d, p) => { p.lines.push(`Content-Length: ${d.pick(ODD_CONTENT_LENGTH(Buffer.byteLength(p.body, 'latin1')))}`) }),
  compactNames: line((d, p) => {
    for (let i = 1; i < p.lines.length; i++) {
      const l = p.lines[i] as string
      const colon = l.indexOf(':')
      if (colon < 0) continue
      const compact = COMPACT[l.slice(0, colon).toLowerCase()]
      if (compact !== undefined && d.chance(0.7)) p.lines[i] = compact + (d.chance(0.2) ? ' ' : '') + l.slice(colon)
      else if (d.chance(0.2)) p.lines[i] = l.slice(0, colon).toUpperCase() + l.slice(colon)
    }
  }),
  requestUri: line((d, p) => {
    const first = (p.lines[0] as string).split(' ')
    if (first.length >= 3 && !first[0]!.startsWith('SIP/')) p.lines[0] = `${first[0]} ${d.pick(ODD_URIS)} ${first.slice(2).join(' ')}`
  }),
  headerUri: line((d, p) => {
    const names = d.pick([['to', 't'], ['from', 'f'], ['contact', 'm'], ['route'], ['record-route']])
    const uri = d.pick(ODD_URIS)
    const tag = d.chance(0.5) ? `;tag=${d.hex(6)}` : ''
    setHeader(p, names, d.chance(0.5) ? `<${uri}>${tag}` : `"${d.pick(['', 'A', 'a\\"b', 'é'])}" <${uri}>${tag}`)
  }),
  cseq: line((d, p) => { setHeader(p, ['cseq'], d.pick(ODD_CSEQ)) }),
  maxForwards: line((d, p) => { setHeader(p, ['max-forwards'], d.pick(ODD_MAX_FORWARDS)) }),
  via: line((d, p) => { setHeader(p, ['via', 'v'], d.pick(ODD_VIAS)) }),
  oddLine: line((d, p) => { p.lines.splice(randomHeaderIndex(d, p), 0, d.pick(ODD_LINES)) }),
  bareLf: (d, msg) => {
    const text = msg.toString('latin1')
    let out = ''
    for (const piece of text.split(CRLF)) out += piece + (d.chance(0.3) ? '\n' : CRLF)
    return Buffer.from(out.slice(0, out.length - (out.endsWith(CRLF) ? 2 : 1)), 'latin1')
  },
  startLine: line((d, p) => {
    const first = p.lines[0] as string
    const pieces = first.split(' ')
    if (first.startsWith('SIP/')) {
      pieces[1] = d.pick(['000', '99', '100', '1000', '699', '700', '2000000000', '-1', 'abc', ''])
    } else if (d.chance(0.5)) {
      pieces[0] = d.pick(['FOO', 'invite', '', 'A'.repeat(300), 'ACK', 'CANCEL', 'BYE', 'PRACK', 'INV ITE', 'REGISTER'])
    } else {
      pieces[pieces.length - 1] = d.pick(['SIP/3.0', 'SIP/2.00', 'sip/2.0', 'SIP/2', 'HTTP/1.1', '', 'SIP/2.0 extra'])
    }
    p.lines[0] = pieces.join(' ')
  }),
  duplicateSingleton: line((d, p) => {
    const name = d.pick(['Call-ID', 'CSeq', 'From', 'To', 'Max-Forwards', 'Expires'])
    p.lines.splice(randomHeaderIndex(d, p), 0, `${name}: ${name === 'CSeq' ? '2 BYE' : name === 'Max-Forwards' || name === 'Expires' ? '10' : `<sip:dup@${d.hex(4)}.test>;tag=${d.hex(4)}`}`)
  }),
  emptyValue: line((d, p) => {
    const i = randomHeaderIndex(d, p)
    const l = p.lines[i] as string
    const colon = l.indexOf(':')
    if (colon > 0) p.lines[i] = l.slice(0, colon + 1) + d.pick(['', ' ', '   ', '\t'])
  }),
  loneCr: line((d, p) => {
    // A lone CR inside a value: the parser keeps it, builders refuse it (found sipd's REGISTER crash).
    const i = randomHeaderIndex(d, p)
    const l = p.lines[i] as string
    const colon = l.indexOf(':')
    if (colon < 0) return
    const at = colon + 1 + d.int(Math.max(1, l.length - colon))
    p.lines[i] = l.slice(0, at) + d.pick(['\r', '\r\r', '\u0000', '\r\t']) + l.slice(at)
  }),
  bodyJunk: (d, msg) => Buffer.concat([msg, Buffer.from(d.pick(['x', 'v=0\r\n', '\r\n\r\n', 'INVITE sip:a@b SIP/2.0\r\n\r\n', '\u0000\u0000']), 'latin1')]),
  leadingCrlf: (d, msg) => Buffer.concat([Buffer.from('\r\n'.repeat(1 + d.int(4))), msg])
}

const NAMES = Object.keys(MUTATORS)

/** One to three mutations of `msg`, never above `maxSize` bytes; returns the bytes and the mutations' names. */
export function mutate (d: Dice, msg: Buffer, maxSize: number): { bytes: Buffer, ops: string[] } {
  let bytes = msg
  const ops: string[] = []
  for (let n = 1 + d.int(3); n > 0; n--) {
    const name = d.pick(NAMES)
    ops.push(name)
    bytes = (MUTATORS[name] as Mutator)(d, bytes, maxSize)
  }
  if (bytes.length > maxSize) bytes = bytes.subarray(0, maxSize)
  return { bytes, ops }
}

/** `msg` cut into 1 to `maxPieces` pieces at random boundaries (for TCP writes). */
export function chop (d: Dice, msg: Buffer, maxPieces: number): Buffer[] {
  const n = Math.min(msg.length, 1 + d.int(maxPieces))
  if (n <= 1) return [msg]
  const cuts = new Set<number>()
  while (cuts.size < n - 1) cuts.add(1 + d.int(msg.length - 1))
  const sorted = [...cuts].sort((a, b) => a - b)
  const pieces: Buffer[] = []
  let at = 0
  for (const c of sorted) { pieces.push(msg.subarray(at, c)); at = c }
  pieces.push(msg.subarray(at))
  return pieces
}
