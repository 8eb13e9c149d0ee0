/**
 * StreamParser: framing a TCP byte stream into messages (RFC 3261 §18.3),
 * CRLF keep-alives (RFC 5626 §3.5.1) and limits. Every case runs whole,
 * byte by byte, split at every boundary and split at random (seeded).
 */
import t from 'tap'
import { StreamParser } from '../src/stream.js'
import { parseMessage } from '../src/message.js'
import type { SipRequest, SipResponse } from '../src/message.js'
import { SipLimitError, SipParseError } from '../src/errors.js'
import { FIXTURE_NAMES, fixture } from './helpers/fixtures.js'

type Msg = SipRequest | SipResponse

interface Run {
  messages: Msg[]
  keepAlives: number
  errors: SipParseError[]
  parser: StreamParser
  /** bufferedBytes after each push. */
  buffered: number[]
}

function feed (chunks: Buffer[], opts: { maxMessageSize?: number, maxHeaders?: number } = {}): Run {
  const r: Run = { messages: [], keepAlives: 0, errors: [], parser: undefined as unknown as StreamParser, buffered: [] }
  r.parser = new StreamParser({
    onMessage: m => { r.messages.push(m) },
    onKeepAlive: () => { r.keepAlives++ },
    onError: e => { r.errors.push(e) },
    ...opts
  })
  for (const c of chunks) {
    r.parser.push(c)
    r.buffered.push(r.parser.bufferedBytes)
  }
  return r
}

/** Differences between delivered messages and the expected raw messages ([] when they match). */
function mismatches (got: Msg[], want: readonly Buffer[]): string[] {
  const out: string[] = []
  if (got.length !== want.length) out.push(`${got.length} messages instead of ${want.length}`)
  for (let i = 0; i < Math.min(got.length, want.length); i++) {
    if (!got[i]!.raw.equals(want[i]!)) out.push(`message ${i}: raw differs`)
    // Reading back after later pushes: the bytes and the index must still be this message's.
    const ref = parseMessage(want[i]!)
    if (got[i]!.headerCount !== ref.headerCount) out.push(`message ${i}: ${got[i]!.headerCount} header lines instead of ${ref.headerCount}`)
    else if (got[i]!.headerEntries().join('\n') !== ref.headerEntries().join('\n')) out.push(`message ${i}: headers differ`)
    if (!got[i]!.body.equals(ref.body)) out.push(`message ${i}: body differs`)
  }
  return out
}

/** The ways of cutting `data` into chunks that every case runs through. */
function* splits (data: Buffer): Generator<[string, Buffer[]]> {
  yield ['whole', [data]]
  const bytes: Buffer[] = []
  for (let i = 0; i < data.length; i++) bytes.push(data.subarray(i, i + 1))
  yield ['byte by byte', bytes]
  for (let i = 1; i < data.length; i++) yield [`split at ${i}`, [data.subarray(0, i), data.subarray(i)]]
}

/** mulberry32: a small seeded PRNG so that random splits reproduce. */
function prng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

function randomChunks (data: Buffer, rnd: () => number, maxChunk: number): Buffer[] {
  const out: Buffer[] = []
  for (let i = 0; i < data.length;) {
    const n = 1 + Math.floor(rnd() * maxChunk)
    out.push(data.subarray(i, i + n))
    i += n
  }
  return out
}

function withLength (head: string, body = ''): Buffer {
  return Buffer.from(`${head}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
}

const SDP = 'v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n'
const DIALOG = 'From: "Alice" <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\nTo: <sip:bob@biloxi.example.com>;tag=8321234356\r\nCall-ID: 3848276298220188511@atlanta.example.com\r\n'

/** A realistic call and registration, in order. */
const REALISTIC: readonly Buffer[] = [
  withLength('INVITE sip:bob@biloxi.example.com SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.10:5060;branch=z9hG4bK74bf9;rport\r\nVia: SIP/2.0/TCP 192.0.2.2:5060;branch=z9hG4bKnashds8;received=192.0.2.2\r\nMax-Forwards: 69\r\nRecord-Route: <sip:p1.example.com;lr>\r\nRoute: <sip:p2.example.com;lr>\r\nFrom: "Alice" <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\nTo: <sip:bob@biloxi.example.com>\r\nCall-ID: 3848276298220188511@atlanta.example.com\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@192.0.2.10:5060;transport=tcp>;+sip.instance="<urn:uuid:f81d4fae>"\r\nProxy-Authorization: Digest username="alice", realm="atlanta.example.com", nonce="wf84f1ceczx41ae6cbe5aea9c8e88d359", uri="sip:bob@biloxi.example.com", response="42ce3cef44b22f50c6a6071bc8"\r\nAllow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\nSupported: replaces, timer\r\nContent-Type: application/sdp\r\n', SDP),
  withLength('SIP/2.0 100 Trying\r\nVia: SIP/2.0/TCP 192.0.2.10:5060;branch=z9hG4bK74bf9;rport=5060\r\nFrom: "Alice" <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\nTo: <sip:bob@biloxi.example.com>\r\nCall-ID: 3848276298220188511@atlanta.example.com\r\nCSeq: 1 INVITE\r\n'),
  withLength('SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP 192.0.2.10:5060;branch=z9hG4bK74bf9;rport=5060\r\nRecord-Route: <sip:p1.example.com;lr>\r\n' + DIALOG + 'CSeq: 1 INVITE\r\nContact: <sip:bob@192.0.2.4;transport=tcp>\r\nContent-Type: application/sdp\r\n', SDP.replace(/alice/g, 'bob')),
  withLength('ACK sip:bob@192.0.2.4;transport=tcp SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.10:5060;branch=z9hG4bK74bd5\r\nMax-Forwards: 70\r\nRoute: <sip:p1.example.com;lr>\r\n' + DIALOG + 'CSeq: 1 ACK\r\n'),
  withLength('BYE sip:bob@192.0.2.4;transport=tcp SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.10:5060;branch=z9hG4bKnashds7\r\nMax-Forwards: 70\r\nRoute: <sip:p1.example.com;lr>\r\n' + DIALOG + 'CSeq: 2 BYE\r\n'),
  withLength('REGISTER sip:registrar.biloxi.example.com SIP/2.0\r\nVia: SIP/2.0/TCP bobspc.biloxi.example.com:5060;branch=z9hG4bKnashds7\r\nMax-Forwards: 70\r\nTo: Bob <sip:bob@biloxi.example.com>\r\nFrom: Bob <sip:bob@biloxi.example.com>;tag=456248\r\nCall-ID: 843817637684230@998sdasdh09\r\nCSeq: 1826 REGISTER\r\nContact: <sip:bob@192.0.2.4;transport=tcp>;expires=7200\r\nAuthorization: Digest username="bob", realm="biloxi.example.com", nonce="ea9c8e88df84f1cec4341ae6cbe5a359", uri="sip:registrar.biloxi.example.com", response="dfe56131d1958046689d83306477ecc", algorithm=MD5, qop=auth, nc=00000001, cnonce="0a4f113b"\r\nExpires: 7200\r\n'),
  withLength('SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP bobspc.biloxi.example.com:5060;branch=z9hG4bKnashds7;received=192.0.2.4\r\nTo: Bob <sip:bob@biloxi.example.com>;tag=2493k59kd\r\nFrom: Bob <sip:bob@biloxi.example.com>;tag=456248\r\nCall-ID: 843817637684230@998sdasdh09\r\nCSeq: 1826 REGISTER\r\nContact: <sip:bob@192.0.2.4;transport=tcp>;expires=7200\r\nDate: Sat, 13 Nov 2010 23:29:00 GMT\r\n')
]

/**
 * Fixtures that are valid on a stream: one message with its empty line and
 * a Content-Length that is exactly what follows its headers.
 */
const STREAM_FIXTURES: ReadonlyArray<[string, Buffer[]]> = (() => {
  const out: Array<[string, Buffer[]]> = []
  for (const name of FIXTURE_NAMES) {
    const bytes = fixture(name)
    let m: Msg
    try {
      m = parseMessage(bytes)
    } catch {
      continue
    }
    if (m.contentLength !== undefined && m.end === bytes.length && bytes.includes('\r\n\r\n')) out.push([name, [bytes]])
  }
  return out
})()

t.test('which fixtures are valid on a stream', async t => {
  const names = STREAM_FIXTURES.map(([n]) => n)
  for (const n of ['wsinv', 'intmeth', 'esc01', 'longreq', 'mpart01', 'unreason', 'noreason', 'transports', 'ipv6-good']) {
    t.ok(names.includes(n), `${n} is a stream fixture`)
  }
  t.notOk(names.includes('inv2543'), 'no Content-Length: not framable on a stream')
  t.notOk(names.includes('baddn'), 'no empty line after the headers')
  t.notOk(names.includes('dblreq'), 'trailing octets after the message')
  t.notOk(names.includes('clerr'))
  t.ok(names.length >= 40, `${names.length} fixtures`)
})

t.test('each stream fixture: whole, byte by byte, split at every boundary', async t => {
  for (const [name, msgs] of STREAM_FIXTURES) {
    const data = Buffer.concat(msgs)
    const failures: string[] = []
    for (const [how, chunks] of splits(data)) {
      const r = feed(chunks)
      const bad = mismatches(r.messages, msgs)
      if (r.errors.length > 0) bad.push(`error ${r.errors[0]!.code}: ${r.errors[0]!.message}`)
      if (r.parser.bufferedBytes !== 0) bad.push(`${r.parser.bufferedBytes} bytes left over`)
      if (bad.length > 0) failures.push(`${how}: ${bad.join('; ')}`)
    }
    t.same(failures.slice(0, 5), [], `${name}: ${data.length + 1} ways, every message delivered byte-exact`)
  }
})

t.test('realistic call and registration: every split, coalesced', async t => {
  const data = Buffer.concat(REALISTIC)
  for (const m of REALISTIC) t.equal(parseMessage(m).end, m.length, 'well framed')
  const failures: string[] = []
  for (const [how, chunks] of splits(data)) {
    const r = feed(chunks)
    const bad = mismatches(r.messages, REALISTIC)
    if (r.errors.length > 0) bad.push(`error ${r.errors[0]!.code}`)
    if (bad.length > 0) failures.push(`${how}: ${bad.join('; ')}`)
  }
  t.same(failures.slice(0, 5), [], `${data.length + 1} ways`)

  // Several messages in one chunk, each split into pieces of every size.
  for (const size of [2, 3, 7, 64, 100, 1000]) {
    const chunks: Buffer[] = []
    for (let i = 0; i < data.length; i += size) chunks.push(data.subarray(i, i + size))
    t.same(mismatches(feed(chunks).messages, REALISTIC), [], `chunks of ${size}`)
  }
  const r = feed([data])
  t.equal(r.messages.length, REALISTIC.length, 'coalesced in one chunk')
  t.same(r.messages.map(m => m.isRequest ? (m as SipRequest).method : String((m as SipResponse).status)), ['INVITE', '100', '200', 'ACK', 'BYE', 'REGISTER', '200'])
  t.ok(r.messages[0]!.buf === data, 'a whole message inside a chunk is parsed in place, not copied')
  const invite = r.messages[0] as SipRequest
  t.equal(invite.proxyAuthorization?.username, 'alice')
  t.equal(invite.body.toString(), SDP)
})

t.test('seeded random splits of everything, with keep-alives between', async t => {
  const seed = 0x5eed
  const rnd = prng(seed)
  const parts: Buffer[] = []
  const want: Buffer[] = []
  let pings = 0
  for (const m of [...REALISTIC, ...STREAM_FIXTURES.flatMap(([, ms]) => ms)]) {
    parts.push(m)
    want.push(m)
    const r = rnd()
    if (r < 0.2) { parts.push(Buffer.from('\r\n\r\n')); pings++ } else if (r < 0.3) parts.push(Buffer.from('\r\n'))
  }
  const data = Buffer.concat(parts)
  const failures: string[] = []
  for (let run = 0; run < 200; run++) {
    const chunks = randomChunks(data, rnd, run % 2 === 0 ? 16 : 1500)
    const r = feed(chunks)
    const bad = mismatches(r.messages, want)
    if (r.keepAlives !== pings) bad.push(`${r.keepAlives} keep-alives instead of ${pings}`)
    if (r.errors.length > 0) bad.push(`error ${r.errors[0]!.code}`)
    if (bad.length > 0) failures.push(`seed ${seed} run ${run} (${chunks.length} chunks): ${bad.join('; ')}`)
  }
  t.same(failures.slice(0, 5), [])
  t.ok(pings > 0)
})

t.test('CRLF keep-alives (RFC 5626 §3.5.1)', async t => {
  const ping = Buffer.from('\r\n\r\n')
  const crlf = Buffer.from('\r\n')
  const msg = REALISTIC[3]!
  for (const [name, chunks, pings, messages] of [
    ['double CRLF', [ping], 1, 0],
    ['single CRLF is ignored', [crlf], 0, 0],
    ['double CRLF split across chunks', [crlf, crlf], 1, 0],
    ['double CRLF byte by byte', [...'\r\n\r\n'].map(c => Buffer.from(c)), 1, 0],
    ['two pings', [Buffer.from('\r\n\r\n\r\n\r\n')], 2, 0],
    ['three CRLFs: one ping', [Buffer.from('\r\n\r\n\r\n')], 1, 0],
    ['ping between messages', [msg, ping, msg], 1, 2],
    ['ping inside one chunk with messages', [Buffer.concat([msg, ping, msg, ping])], 2, 2],
    ['single CRLF between messages', [msg, crlf, msg], 0, 2],
    ['CRLF before a message, CRLF after', [crlf, msg, crlf], 0, 1],
    ['bare LFs are not a ping', [Buffer.from('\r\n\n\r\n')], 0, 0],
    ['CR CR LF CR LF: only the last two CRLFs are a ping', [Buffer.from('\r\r\n\r\n')], 1, 0]
  ] as Array<[string, Buffer[], number, number]>) {
    const r = feed(chunks)
    t.equal(r.keepAlives, pings, `${name}: ${pings} keep-alives`)
    t.equal(r.messages.length, messages, `${name}: ${messages} messages`)
    t.same(r.errors, [], `${name}: no error`)
    t.equal(r.parser.bufferedBytes, 0, `${name}: nothing buffered`)
  }
})

t.test('missing Content-Length on a stream (RFC 3261 §18.3)', async t => {
  for (const chunks of [[fixture('inv2543')], [...fixture('inv2543')].map(b => Buffer.from([b]))]) {
    const r = feed(chunks)
    t.equal(r.messages.length, 0)
    t.equal(r.errors.length, 1, 'one error')
    t.equal(r.errors[0]?.code, 'SIP_ERR_NO_CONTENT_LENGTH')
    t.match(r.errors[0]?.message ?? '', 'missing Content-Length on a stream transport')
    t.equal((r.errors[0]?.partial as SipRequest | undefined)?.callId, 'inv2543.1717@ift.client.example.com', 'enough to answer 400')
    t.ok(r.parser.failed)
  }
})

t.test('torture messages whose framing fails on a stream', async t => {
  // RFC 4475 §3.1.2.2: on a stream the parser waits for the rest of the body.
  const clerr = feed([fixture('clerr')])
  t.same([clerr.messages.length, clerr.errors.length], [0, 0])
  t.equal(clerr.parser.bufferedBytes, fixture('clerr').length, 'waits for 9999 body bytes')
  // RFC 4475 §3.1.1.8: the spurious INVITE after the REGISTER is a message on
  // a stream; its body is 5 octets longer than its Content-Length, and those
  // octets do not start a message.
  const dbl = feed([fixture('dblreq')])
  t.same(dbl.messages.map(m => (m as SipRequest).method), ['REGISTER', 'INVITE'])
  t.equal(dbl.errors[0]?.code, 'SIP_ERR_BAD_START_LINE')
  t.same(feed([fixture('baddn')]).messages, [], 'baddn.dat has no empty line: the stream waits for it')
  // RFC 4475 §3.1.2.3 / §3.3.9: a negative or doubled Content-Length loses the
  // framing: the connection is closed.
  for (const [name, code] of [['ncl', 'SIP_ERR_BAD_NUMBER'], ['mcl01', 'SIP_ERR_DUPLICATE_HEADER']] as const) {
    const r = feed([fixture(name), REALISTIC[0]!])
    t.equal(r.errors[0]?.code, code, name)
    t.equal(r.messages.length, 0, `${name}: nothing delivered`)
  }
})

t.test('error offsets count from the start of the stream', async t => {
  const bad = Buffer.from('OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h\r\nContent-Length: x\r\n\r\n')
  const first = REALISTIC[4]!
  const r = feed([first, bad])
  t.equal(r.messages.length, 1)
  t.equal(r.errors[0]?.code, 'SIP_ERR_BAD_NUMBER')
  t.equal(r.errors[0]?.offset, first.length + bad.indexOf('x\r\n'))
})

t.test('bytes no SIP message starts with fail once their first line is complete, not at the size limit', async t => {
  for (const junk of ['AAAA BBBB CCCC\r\n', 'GET / HTTP/1.1\r\n', '\u0001NVITE sip:a@b SIP/2.0\r\n', 'INVITE sip:a@b\r\n']) {
    const first = REALISTIC[4]!
    // The first line and part of a header, no empty line yet: the old parser waited for more.
    const r = feed([first, Buffer.from(junk + 'Via: SIP/2.0/TCP h', 'latin1')])
    t.equal(r.messages.length, 1, `${JSON.stringify(junk)}: the sound message before it is delivered`)
    t.equal(r.errors[0]?.code, 'SIP_ERR_BAD_START_LINE', `${JSON.stringify(junk)}: refused`)
    t.equal(r.errors[0]?.offset, first.length, 'at its first byte')
    t.equal(r.parser.bufferedBytes, 0, 'nothing held')
  }
  // Start lines the full parse judges (a version it answers 505 to, a lower-case
  // version, an unknown method, trailing blanks or words, which it answers 400
  // once the headers are indexed) still wait for their headers.
  for (const line of ['OPTIONS sip:a@b SIP/7.0\r\n', 'FOO sip:a@b sip/2.0\r\n', 'OPTIONS sip:a@b SIP/2.0 \r\n', 'OPTIONS sip:a@b SIP/2.0 extra\r\n', 'SIP/2.0 200 OK\r\n', 'SIP/2.0 200\r\n']) {
    const r = feed([Buffer.from(line + 'Via: SIP/2.0/TCP h', 'latin1')])
    t.same(r.errors.length, 0, `${JSON.stringify(line)}: no error while incomplete`)
    t.equal(r.parser.bufferedBytes, line.length + 18, 'held')
  }
  // Split inside the first line: judged only once the line ends.
  const r = feed([Buffer.from('AAAA'), Buffer.from(' BBBB')])
  t.equal(r.errors.length, 0, 'no verdict on a partial first line')
  r.parser.push(Buffer.from('\r\n'))
  t.equal(r.errors[0]?.code, 'SIP_ERR_BAD_START_LINE', 'verdict when the line ends')
})

t.test('message size limit: never more than maxMessageSize buffered', async t => {
  const max = 1000
  // A body that makes the message too large is refused as soon as the headers are in.
  const big = withLength('MESSAGE sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n', 'x'.repeat(2000))
  const r = feed([big.subarray(0, 200)], { maxMessageSize: max })
  t.equal(r.errors[0]?.code, 'SIP_ERR_MESSAGE_TOO_LARGE')
  t.ok(r.errors[0] instanceof SipLimitError)
  t.match(r.errors[0]?.message ?? '', 'larger than 1000')
  t.equal(r.parser.bufferedBytes, 0)

  // Endless headers without an empty line, in small and large chunks.
  for (const chunkSize of [1, 37, 100, 999, 1000, 1001, 5000]) {
    const line = Buffer.from('X-Filler: ' + 'a'.repeat(60) + '\r\n')
    const p = feed([], { maxMessageSize: max })
    p.parser.push(Buffer.from('INVITE sip:a@b SIP/2.0\r\n'))
    let pushes = 0
    let maxBuffered = 0
    const stream = Buffer.concat(Array.from({ length: 200 }, () => line))
    for (let i = 0; i < stream.length && pushes < 10000; i += chunkSize) {
      p.parser.push(stream.subarray(i, i + chunkSize))
      pushes++
      maxBuffered = Math.max(maxBuffered, p.parser.bufferedBytes)
    }
    t.equal(p.errors.length, 1, `chunks of ${chunkSize}: one error`)
    t.equal(p.errors[0]?.code, 'SIP_ERR_MESSAGE_TOO_LARGE')
    t.ok(maxBuffered <= max, `chunks of ${chunkSize}: at most ${max} bytes held (held ${maxBuffered})`)
    t.equal(p.parser.bufferedBytes, 0, 'released after the error')
    t.ok(p.parser.failed)
  }

  // One endless line (no LF at all).
  const line = feed([], { maxMessageSize: max })
  for (let i = 0; i < 50; i++) line.parser.push(Buffer.alloc(100, 0x61))
  t.equal(line.errors[0]?.code, 'SIP_ERR_MESSAGE_TOO_LARGE')
  t.equal(line.errors.length, 1)

  // Exactly at the limit is fine.
  const exact = withLength('MESSAGE sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n', 'y'.repeat(900))
  const lim = feed([exact.subarray(0, 50), exact.subarray(50)], { maxMessageSize: exact.length })
  t.same([lim.messages.length, lim.errors.length], [1, 0])
  const over = feed([exact], { maxMessageSize: exact.length - 1 })
  t.equal(over.errors[0]?.code, 'SIP_ERR_MESSAGE_TOO_LARGE')
  t.throws(() => new StreamParser({ onMessage: () => {}, onError: () => {}, maxMessageSize: 0 }), RangeError)
})

t.test('header count limit, and input after an error is ignored', async t => {
  const lines = Array.from({ length: 20 }, (_, i) => `X-H${i}: ${i}\r\n`).join('')
  const tooMany = withLength('OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n' + lines)
  const r = feed([REALISTIC[1]!, tooMany, REALISTIC[1]!, Buffer.from('\r\n\r\n')], { maxHeaders: 10 })
  t.equal(r.messages.length, 1, 'only the message before the error')
  t.equal(r.errors.length, 1)
  t.equal(r.errors[0]?.code, 'SIP_ERR_TOO_MANY_HEADERS')
  t.ok(r.errors[0] instanceof SipLimitError)
  t.equal(r.keepAlives, 0, 'nothing after the error')
  t.ok(r.parser.failed)
  t.equal(feed([tooMany], { maxHeaders: 22 }).messages.length, 1, 'within the limit')

  const garbage = feed([Buffer.from('NOT SIP AT ALL\r\n\r\n'), REALISTIC[0]!])
  t.equal(garbage.errors.length, 1)
  t.equal(garbage.messages.length, 0)
})

t.test('delivered messages survive later pushes', async t => {
  // Messages split over chunks are assembled in the parser's buffer; the
  // next pushes must not write over the bytes of messages already delivered.
  const data = Buffer.concat([...REALISTIC, ...REALISTIC])
  const want = [...REALISTIC, ...REALISTIC]
  const rnd = prng(42)
  const kept: Msg[] = []
  const p = new StreamParser({ onMessage: m => { kept.push(m) }, onError: e => { t.fail(e.message) } })
  for (const c of randomChunks(data, rnd, 90)) p.push(c)
  t.same(mismatches(kept, want), [])
  t.same(kept.map(m => m.callId), want.map(m => parseMessage(m).callId))
  t.same(kept.map(m => m.topVia?.branch), want.map(m => parseMessage(m).topVia?.branch))
})

t.test('a callback that throws does not break the framing', async t => {
  const got: string[] = []
  let first = true
  const p = new StreamParser({
    onMessage: m => {
      if (first) { first = false; throw new Error('handler failed') }
      got.push(m.callId)
    },
    onError: e => { t.fail(e.message) }
  })
  const data = Buffer.concat([REALISTIC[3]!, REALISTIC[4]!])
  t.throws(() => p.push(data), { message: 'handler failed' }, 'the exception reaches the caller')
  t.same(got, [parseMessage(REALISTIC[4]!).callId], 'the next message in the chunk was still delivered')
  t.notOk(p.failed)
  p.push(REALISTIC[5]!)
  t.same(got.length, 2, 'framing continues')
})
