/**
 * The WebAssembly indexer and grammars against the JS ones: for the torture
 * fixtures, the bench corpus, hand-made near misses and random mutations of
 * them, both give the same index (every entry, the hot slots, the offsets,
 * the start line) or the same error (message, offset, code), on datagrams
 * and on streams, and the same From, To, Route, Record-Route and Via views
 * (or the same errors). A bare CR in a header line is a SipParseError naming
 * the header, on both, with `partial` for a request.
 */
import t from 'tap'
import fc from 'fast-check'
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseMessage } from '../src/message.js'
import { StreamParser } from '../src/stream.js'
import { SipParseError } from '../src/errors.js'
import { createResponse } from '../src/build.js'
import { useWasmIndexer, wasmIndex } from '../src/wasm-index.js'
import { FIXTURE_NAMES, fixture } from './helpers/fixtures.js'
import type { NameAddr, Via } from '../src/types.js'

const CORPUS = new URL('../../../bench/corpus/', import.meta.url)
const corpus = readdirSync(CORPUS).filter(f => f.endsWith('.sip')).sort().map(f => readFileSync(new URL(f, CORPUS)))
// Names the wasm matches in one 16-byte compare, and near misses of them.
const NAMES = ['CALL-ID', 'Call\rID', 'call-id ', 'v ', 'V', 'Refer-To', 'Reply-To', 'reFER-to', 'Proxy-Authorization', 'P-Asserted-Identity',
  'X-Very-Long-Header-Name-Here', 'Content-Lengthy', 'Content-Lengt', 'Content_Length', 'Max-Forwards\t', 'To\x00', 'Via\x7f', 'Vi', 'Viaa']
const named = NAMES.map(n => Buffer.from(`OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n${n}: x\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n`, 'latin1'))
// Request lines the wasm splits, and near misses of them.
const LINES = ['INVITE sip:a@b SIP/2.0', 'INVITE  sip:a@b SIP/2.0', 'INVITE sip:a@b  SIP/2.0', 'INVITE sip:a@b SIP/2.1', 'INVITE <sip:a@b> SIP/2.0',
  'INVITE sip:a\x7f@b SIP/2.0', 'INVITE sip:a@b SIP/2.0 ', 'INVITE sip:a@b sip/2.0', 'INVITE sip:\xc3\xa9@b SIP/2.0', 'INVITE sip:a\tb SIP/2.0',
  'FOO/1 sip:a@b SIP/2.0', 'INVITE\tsip:a@b SIP/2.0', 'INVITE sip:a@b', 'INVITE ', 'Invite sip:a@b SIP/2.0', 'X sip:a@b SIP/2.00', 'SIP/2.0 200 OK',
  // Request-URIs longer than the wasm's 16-byte steps, with what ends or spoils them past the first step.
  'INVITE sip:alice-long-user@atlanta.example.com;transport=udp SIP/2.0', 'INVITE sip:abcdefghijkl SIP/2.0', 'INVITE sip:abcdefghijklmnopqrstuvwxyz0123 SIP/2.0',
  'INVITE sip:alice-long-user@atlanta.exam\x7fple.com SIP/2.0', 'INVITE sip:alice-long-user@atlanta.ex\xc3\xa9mple.com SIP/2.0',
  'INVITE sip:alice-long-user@atlanta.example.com\tSIP/2.0', 'INVITE sip:alice-long-user@atl\ranta.example.com SIP/2.0',
  'INVITE sip:alice-long-user@atlanta.example.com\x00 SIP/2.0', 'INVITE sip:alice-long-user@atlanta.example.com',
  // Status lines the wasm reads, and near misses of them.
  'SIP/2.0 200', 'SIP/2.0 200 ', 'SIP/2.0 100', 'SIP/2.0 699 X', 'SIP/2.0 180 Ringing more words', 'SIP/2.0 2000 OK', 'SIP/2.0 099 X', 'SIP/2.0 700 X',
  'sip/2.0 200 OK', 'SIP/2.0  200 OK', 'SIP/2.0 20 OK', 'SIP/2.0 200\tOK', 'SIP/2.1 200 OK', 'SIP/2.0 2x0 OK', 'SIP/2.0 20', 'SIP/2.0 486 Busy H\xc3\xa9re']
const lined = LINES.map(l => Buffer.from(`${l}\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n`, 'latin1'))
// Whitespace around values (the wasm's usual ": value" shortcut and its near misses).
const VALUES = [' x', '  x', '\tx', ' \tx', 'x', ' x ', ' x\t', ' x \t ', ' ', '', '  ', ' \x01x\x01', ' x\r\n y', ' x \r\n\ty \t']
const spaced = VALUES.map(v => Buffer.from(`OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nSubject:${v}\r\nCall-ID:${v}\r\nCSeq: 1 OPTIONS\r\n\r\n`, 'latin1'))
// A start line that runs to the end of the message: the scans stop at the zeros after it.
const bare = ['INVITE sip:alice-long-user@atlanta.example.com SIP/2.0', 'INVITE sip:alice-long-user@atlanta.example.com', 'SIP/2.0 200', 'SIP/2.0 200 OK'].map(l => Buffer.from(l, 'latin1'))
const inputs: Buffer[] = [...FIXTURE_NAMES.map(fixture), ...corpus, ...named, ...lined, ...spaced, ...bare]

function outcome (buf: Buffer, wasm: boolean, maxHeaders?: number): unknown {
  const was = useWasmIndexer(wasm)
  try {
    const m = parseMessage(buf, maxHeaders === undefined ? undefined : { maxHeaders })
    return {
      start: m.start,
      end: m.end,
      startLineNext: m.startLineNext,
      headersEnd: m.headersEnd,
      bodyStart: m.bodyStart,
      count: m.headerCount,
      index: Array.from(m.index.subarray(m.ix - 16, m.ix + m.headerCount * 4)),
      line: m.isRequest ? [m.method, m.uri, m.version] : [m.status, m.reason, m.version]
    }
  } catch (err) {
    if (!(err instanceof SipParseError)) throw err
    return { message: err.message, offset: err.offset, code: err.code, partial: err.partial?.headerCount }
  } finally {
    useWasmIndexer(was)
  }
}

/** What the address views give (or the error each throws), read with the wasm grammars on or off. */
function views (buf: Buffer, wasm: boolean): unknown {
  const was = useWasmIndexer(wasm)
  try {
    let m
    try {
      m = parseMessage(buf)
    } catch {
      return 'unparsed'
    }
    const addr = (a: NameAddr & { tag?: string | undefined }): unknown => [a.displayName, a.uri, a.raw, a.tag, [...a.params]]
    const read = (f: () => unknown): unknown => {
      try {
        return f()
      } catch (err) {
        if (!(err instanceof SipParseError)) throw err
        return [err.message, err.offset, err.code]
      }
    }
    const via = (v: Via | undefined): unknown => v === undefined ? 'none' : [v.protocol, v.transport, v.host, v.port, v.branch, v.received, v.rport, v.raw, [...v.params]]
    const top = read(() => via(m.topVia))
    const ruri = m.isRequest ? read(() => { const u = m.requestUri; return [u.scheme, u.user, u.password, u.host, u.hostType, u.port, [...u.params], [...u.headers], u.raw] }) : 'response'
    return [ruri, read(() => addr(m.from)), read(() => addr(m.to)), read(() => m.route.map(addr)), read(() => m.recordRoute.map(addr)), top, read(() => m.via.map(via))]
  } finally {
    useWasmIndexer(was)
  }
}

function streamOutcome (chunks: Buffer[], wasm: boolean): unknown[] {
  const was = useWasmIndexer(wasm)
  const out: unknown[] = []
  try {
    const p = new StreamParser({
      onMessage: m => { out.push([m.start, m.end, m.headerCount, Array.from(m.index.subarray(m.ix - 16, m.ix + m.headerCount * 4))]) },
      onError: e => { out.push([e.message, e.offset, e.code]) }
    })
    for (const c of chunks) p.push(c)
  } finally {
    useWasmIndexer(was)
  }
  return out
}

t.test('the wasm indexer is in use (Node 20 has WebAssembly SIMD)', async t => {
  t.ok(wasmIndex(corpus[0]!, 0, corpus[0]!.length, 256) >= 0)
  t.equal(useWasmIndexer(true), true)
})

t.test('same index or the same error as the JS indexer: fixtures and corpus', async t => {
  for (const buf of inputs) {
    t.same(outcome(buf, true), outcome(buf, false))
    t.same(views(buf, true), views(buf, false))
  }
  // Few header lines allowed: the limit error from both.
  for (const buf of corpus) t.same(outcome(buf, true, 3), outcome(buf, false, 3))
})

t.test('same index or the same error as the JS indexer: random mutations', async t => {
  const pieces = [';branch=', ';rport', ';received=1.2.3.4', ';RPORT=99999', ':5060', ' SIP/2.0/UDP h', '<', '>', '"', '\\', '?', '=', '[', ';tag=x', ';TAG', 'é', '\r', '\n', '\r\n', ' ', '\t', ':', '\x00', ',', ';', '\r\n ', '\n\t', 'Via', 'v:', 'Content-Length: 5', 'x'.repeat(40), '\xff']
  const edit = fc.record({
    at: fc.nat(),
    del: fc.nat(4),
    ins: fc.oneof(fc.constantFrom(...pieces), fc.string({ maxLength: 3 }))
  })
  const prop = fc.property(fc.nat(inputs.length - 1), fc.array(edit, { minLength: 1, maxLength: 4 }), fc.boolean(), (which, edits, cut) => {
    let buf = inputs[which]!
    for (const e of edits) {
      const at = e.at % (buf.length + 1)
      buf = Buffer.concat([buf.subarray(0, at), Buffer.from(e.ins, 'latin1'), buf.subarray(Math.min(buf.length, at + e.del))])
    }
    if (cut) buf = buf.subarray(0, Math.floor(buf.length / 2))
    const a = outcome(buf, true)
    const b = outcome(buf, false)
    if (JSON.stringify(a) !== JSON.stringify(b)) throw new Error(`differs for ${JSON.stringify(buf.toString('latin1'))}:\n${JSON.stringify(a)}\n${JSON.stringify(b)}`)
    const va = views(buf, true)
    const vb = views(buf, false)
    if (JSON.stringify(va) !== JSON.stringify(vb)) throw new Error(`views differ for ${JSON.stringify(buf.toString('latin1'))}:\n${JSON.stringify(va)}\n${JSON.stringify(vb)}`)
  })
  const r = fc.check(prop, { seed: 20261207, numRuns: 4000 })
  t.notOk(r.failed, r.failed ? fc.defaultReportMessage(r) : 'no difference')
})

t.test('16-byte scans: hosts, parameter names and values of every length up to 40 read the same as the JS grammar', async t => {
  const msg = (via: string, from: string): Buffer => Buffer.from(`OPTIONS sip:a@b SIP/2.0\r\nVia: ${via}\r\nFrom: ${from}\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n`, 'latin1')
  const word = (n: number, c = 'a'): string => Array.from({ length: n }, (_, i) => i % 7 === 6 ? '.' : c).join('')
  let n = 0
  for (let len = 1; len <= 40; len++) {
    // An upper-case letter at each place in the host, and just after it (in a parameter).
    for (const up of [-1, 0, len >> 1, len - 1, len + 1]) {
      const host = Array.from(word(len, 'h'), (ch, i) => i === up ? 'H' : ch).join('').replace(/\.$/, 'h')
      for (const tail of ['', ';rport', ':5060;branch=z9hG4bKX', ';x', ', SIP/2.0/UDP b']) {
        const buf = msg(`SIP/2.0/UDP ${host}${tail}`, '<sip:a@b>')
        t.same(views(buf, true), views(buf, false), `host ${host}${tail}`)
        n++
      }
    }
    const name = word(len, 'n').replace(/\./g, '-')
    for (const value of [word(len, 'v'), word(len, 'v') + '[::1]', '[::1]' + word(len, 'v'), word(len, 'v') + ':' + word(3), word(len, 'v') + '"q"']) {
      for (const p of [`;${name}=${value}`, `;${name}`, `;tag=${value}`, `;branch=${value};rport`, `;${name}=${value};tag=t`]) {
        const buf = msg(`SIP/2.0/UDP h.example.com${p}`, `<sip:a@b>${p}`)
        t.same(views(buf, true), views(buf, false), JSON.stringify(p))
        n++
      }
    }
  }
  t.ok(n > 1000)
})

t.test('Request-URIs read the same from the wasm grammar as from the JS grammar', async t => {
  const users = ['', 'bob@', 'B.o-b_~!*\'()&=+$,;?/#@', 'a%41@', '@', 'a:pw@', 'a b@', 'é@']
  const hosts = ['biloxi.example.com', 'BiLoXi.Example.COM', '192.0.2.1', '192.0.2.256', '1.2.3', '1.2.3.4.5', 'h', 'h.', 'a.1', 'a.1b', '1a.b', '-a.b', 'a-.b', 'a..b', '.a', 'a_b', '[::1]', '']
  const tails = ['', ':5060', ':0', ':65535', ':65536', ':', ':5x', ';transport=udp', ';lr', ';lr;maddr=10.0.0.1', ';=x', ';a=', ';a;', ';a=b=c', ';a=%41', ';a?', '?h=v', ';a=[::1]', ':5060;x=y;Z']
  let n = 0
  for (const scheme of ['sip:', 'SIPS:', 'sips:', 'tel:', 'sipx:']) {
    for (const u of users) {
      for (const h of hosts) {
        for (const tail of tails) {
          const buf = Buffer.from(`OPTIONS ${scheme}${u}${h}${tail} SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n`, 'latin1')
          const a = JSON.stringify(views(buf, true))
          const b = JSON.stringify(views(buf, false))
          if (a !== b) t.fail(`${scheme}${u}${h}${tail}: ${a} vs ${b}`)
          n++
        }
      }
    }
  }
  t.equal(n, 5 * users.length * hosts.length * tails.length)
})

t.test('same messages and errors on a stream, whole and split', async t => {
  for (const buf of corpus) {
    const two = Buffer.concat([buf, buf])
    t.same(streamOutcome([two], true), streamOutcome([two], false))
    const mid = buf.length >> 1
    t.same(streamOutcome([two.subarray(0, mid), two.subarray(mid)], true), streamOutcome([two.subarray(0, mid), two.subarray(mid)], false))
  }
})

t.test('a long message grows wasm memory and indexes the same', async t => {
  const big = Buffer.from('OPTIONS sip:a@b SIP/2.0\r\n' + Array.from({ length: 2000 }, (_, i) => `X-H${i}: ${'v'.repeat(30)}\r\n`).join('') +
    'Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\n\r\n', 'latin1')
  t.same(outcome(big, true, 2100), outcome(big, false, 2100))
  const m = parseMessage(big, { maxHeaders: 2100 })
  t.equal(m.headerCount, 2005)
  t.equal(m.callId, 'c')
  t.equal(m.topVia?.branch, 'z9hG4bK1')
})

t.test('a bare CR in a header line is a SipParseError naming the header (RFC 3261 §25.1)', async t => {
  const base = 'OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n'
  const cases: Array<[string, string, number]> = [
    [base + 'Subject: one\rtwo\r\n\r\n', 'Subject', (base + 'Subject: one').length],
    [base + 'X-Long: ' + 'a'.repeat(40) + '\r' + 'b'.repeat(5) + '\r\n\r\n', 'X-Long', (base + 'X-Long: ').length + 40],
    [base + 'Subject: one\r\r\n\r\n', 'Subject', (base + 'Subject: one').length],
    [base + 'Subject:\rone\r\n\r\n', 'Subject', (base + 'Subject:').length],
    [base + 'Subject: one\r\n two\rthree\r\n\r\n', 'Subject', (base + 'Subject: one\r\n two').length],
    [base + 'Subject: one\r', 'Subject', (base + 'Subject: one').length],
    [base + 'v: SIP/2.0/UDP x\r;branch=z9hG4bK2\r\n\r\n', 'v', (base + 'v: SIP/2.0/UDP x').length]
  ]
  for (const wasm of [true, false]) {
    for (const [text, name, offset] of cases) {
      const was = useWasmIndexer(wasm)
      try {
        t.throws(() => parseMessage(Buffer.from(text, 'latin1')), { name: 'SipParseError', code: 'SIP_ERR_BAD_HEADER', offset, message: `bare CR in the value of header "${name}"` }, JSON.stringify(text))
      } finally {
        useWasmIndexer(was)
      }
    }
  }
  // A request keeps `partial` (enough to answer 400); a response has none.
  for (const wasm of [true, false]) {
    const was = useWasmIndexer(wasm)
    try {
      const req = Buffer.from(base + 'From: <sip:a\rb@h>;tag=1\r\n\r\n', 'latin1')
      let err: unknown
      try { parseMessage(req) } catch (e) { err = e }
      t.equal((err as SipParseError).partial?.topVia?.branch, 'z9hG4bK1')
      t.equal((err as SipParseError).partial?.callId, 'c')
      // Its 400 does not carry the bare CR on: it parses, From as sent without it.
      const resp = parseMessage(createResponse((err as SipParseError).partial!, 400, 'Bad Request', { toTag: 'x' }))
      t.equal(resp.from.uri, 'sip:ab@h')
      t.equal(resp.from.tag, '1')
      err = undefined
      try { parseMessage(Buffer.from('SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: <sip:b\r@h>\r\n\r\n', 'latin1')) } catch (e) { err = e }
      t.match(err, { code: 'SIP_ERR_BAD_HEADER', message: 'bare CR in the value of header "To"' })
      t.equal((err as SipParseError).partial, undefined)
    } finally {
      useWasmIndexer(was)
    }
  }
  // CRLF line ends, LF-only line ends and a CR in the body stay fine.
  t.equal(parseMessage(Buffer.from(base + 'Content-Length: 3\r\n\r\na\rb', 'latin1')).body.toString('latin1'), 'a\rb')
  t.equal(parseMessage(Buffer.from(base.replace(/\r\n/g, '\n') + 'Subject: x\n\n', 'latin1')).header('Subject'), 'x')
})

t.test('Content-Length is read from the whole (folded) value, on both indexers', async t => {
  const base = 'OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n'
  for (const wasm of [true, false]) {
    const was = useWasmIndexer(wasm)
    try {
      t.throws(() => parseMessage(Buffer.from(base + 'l: 0\r\n SIP/2.0/UDP h\r\n\r\n', 'latin1')), { code: 'SIP_ERR_BAD_NUMBER' })
      t.equal(parseMessage(Buffer.from(base + 'Content-Length:\r\n 3\r\n\r\nabcdef', 'latin1')).body.toString(), 'abc')
    } finally {
      useWasmIndexer(was)
    }
  }
})

t.test('Call-ID bytes are checked wherever the bad one is (the wasm marks clean values 16 bytes at a time)', async t => {
  const msg = (cid: string): Buffer => Buffer.from(`OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCall-ID: ${cid}\r\nCSeq: 1 OPTIONS\r\n\r\n`, 'latin1')
  for (const wasm of [true, false]) {
    const was = useWasmIndexer(wasm)
    try {
      for (const bad of ['a'.repeat(20) + '\x7f' + 'b', 'a'.repeat(15) + '\x01', '\x00' + 'a'.repeat(40), 'a'.repeat(31) + '\x7f', 'a'.repeat(32) + '\x7f']) {
        t.throws(() => parseMessage(msg(bad)).callId, { code: 'SIP_ERR_BAD_CALL_ID' }, JSON.stringify(bad))
      }
      for (const good of ['a', 'a'.repeat(15), 'a'.repeat(16), 'a'.repeat(17) + '@h', '!~' + 'Z'.repeat(30)]) t.equal(parseMessage(msg(good)).callId, good)
      t.equal(parseMessage(Buffer.from(msg('caf\xc3\xa9@h').toString('latin1'), 'latin1')).callId, 'café@h')
      t.throws(() => parseMessage(msg('\r\n a\x01')).callId, { code: 'SIP_ERR_BAD_CALL_ID' })
      t.equal(parseMessage(msg('\r\n abc')).callId, 'abc')
    } finally {
      useWasmIndexer(was)
    }
  }
})

t.test('src/index-wasm.ts is what scripts/gen-wasm.mjs writes', async t => {
  const r = spawnSync(process.execPath, [fileURLToPath(new URL('../scripts/gen-wasm.mjs', import.meta.url)), '--check'], { encoding: 'utf8' })
  t.equal(r.status, 0, r.stderr)
})

t.test('store blocks are not zero-filled: every slot a message reads was written (hot slots agree with the entries)', async t => {
  // Garbage in a recycled block would show as a hot slot or dups mask that
  // the entries do not give. Messages of 0..40 header lines, both indexers,
  // over many blocks (a block holds ~250 usual messages).
  const names = ['Via', 'From', 'To', 'Call-ID', 'CSeq', 'Contact', 'Max-Forwards', 'Route', 'X-A', 'Subject']
  const kept: Array<ReturnType<typeof parseMessage>> = []
  let bad = 0
  for (let r = 0; r < 3000; r++) {
    const n = r % 41
    const lines = Array.from({ length: n }, (_, i) => `${names[(i * 7 + r) % names.length]}: v${i}`)
    const was = useWasmIndexer((r & 1) === 0)
    try {
      kept.push(parseMessage(Buffer.from(['OPTIONS sip:a@b SIP/2.0', ...lines].join('\r\n') + '\r\n\r\n', 'latin1')))
    } finally {
      useWasmIndexer(was)
    }
  }
  for (const m of kept) {
    const first = new Array<number>(15).fill(-1)
    let dups = 0
    for (let k = 0; k < m.headerCount; k++) {
      const id = m.idAt(k)
      if (id < 0 || id >= 15) continue
      if (first[id]! < 0) first[id] = k
      else dups |= 1 << id
    }
    const hot = Array.from(m.index.subarray(m.ix - 16, m.ix))
    if (JSON.stringify(hot) !== JSON.stringify([...first, dups])) bad++
  }
  t.equal(bad, 0)
})
