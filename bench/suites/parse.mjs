// Parse suite: messages per second over one corpus (bench/corpus/*.sip: an
// INVITE with SDP and 18 header fields, REGISTER with Authorization, 100,
// 180, 200 with SDP, ACK, BYE, OPTIONS), for
//   (a) parse,
//   (b) parse, then read what a proxy reads: Call-ID, CSeq, top Via branch,
//       From and To tags, and for requests Request-URI user, Max-Forwards and
//       the top Route,
//   (c) parse, edit for forwarding (requests: new top Via, Max-Forwards − 1,
//       pop the top Route, add a Record-Route; responses: remove the top Via)
//       and serialise,
// with @sipd/sip-parser (built dist) and, in the same run, the parsers of the
// npm packages sip, sip.js, jssip and drachtio-sip (lazy mode). Every parser
// gets each message as the Buffer a socket delivers; the peers take strings,
// so their time includes decoding it (latin1, as `sip` does). Before timing,
// each parser's (b) fields and (c) output are checked against the corpus.
import { readFileSync, readdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { forwardRequest, parseMessage, stripTopVia } from '@sipd/sip-parser'
import { FULL, QUICK, do_not_optimize, rateFromNs, sampleNs } from '../lib/sample.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const require = createRequire(import.meta.url)
const corpusDir = path.join(here, '..', 'corpus')
const files = readdirSync(corpusDir).filter(f => f.endsWith('.sip')).sort()
const buffers = files.map(f => readFileSync(path.join(corpusDir, f)))
const N = buffers.length

// The proxy's own Via and Record-Route for (c).
const VIA_HOST = '10.0.0.1'
const VIA_BRANCH = 'z9hG4bK74bf9.0a1b2c3d'
const VIA = `SIP/2.0/UDP ${VIA_HOST}:5060;branch=${VIA_BRANCH}`
const RR_URI = 'sip:10.0.0.1;lr'
const RR = `<${RR_URI}>`

/** The installed version of a package (read from its package.json, which some do not export). */
function version (pkg) {
  for (const dir of [path.join(here, '..', 'node_modules'), path.join(here, '..', '..', 'node_modules')]) {
    try {
      return JSON.parse(readFileSync(path.join(dir, pkg, 'package.json'), 'utf8')).version
    } catch {}
  }
  return '?'
}

// Each parser: a(buf) → parsed message; b(buf, out) fills out[0..7] with
// [Call-ID, CSeq number, top Via branch, From tag, To tag, Request-URI user,
// Max-Forwards, top Route URI]; c(buf) → the forwarded message.

const ours = {
  label: `@sipd/sip-parser@${version('@sipd/sip-parser')}`,
  a: buf => parseMessage(buf),
  b: (buf, out) => {
    const m = parseMessage(buf)
    out[0] = m.callId
    out[1] = m.cseq.seq
    out[2] = m.topVia?.branch
    out[3] = m.from.tag
    out[4] = m.to.tag
    if (m.isRequest) {
      out[5] = m.requestUri.user
      out[6] = m.maxForwards
      out[7] = m.route[0]?.uri
    } else {
      out[5] = out[6] = out[7] = undefined
    }
    return out
  },
  c: buf => {
    const m = parseMessage(buf)
    if (!m.isRequest) return stripTopVia(m)
    return forwardRequest(m, { via: VIA, maxForwards: (m.maxForwards ?? 70) - 1, popRoute: m.route.length > 0, recordRoute: [RR] })
  }
}

const sip = require('sip')
const sipPeer = {
  label: `sip@${version('sip')}`,
  a: buf => sip.parse(buf.toString('latin1')),
  b: (buf, out) => {
    const m = sip.parse(buf.toString('latin1'))
    const h = m.headers
    out[0] = h['call-id']
    out[1] = h.cseq.seq
    out[2] = h.via[0].params.branch
    out[3] = h.from.params.tag
    out[4] = h.to.params.tag
    if (m.method !== undefined) {
      out[5] = sip.parseUri(m.uri).user
      out[6] = +h['max-forwards']
      out[7] = h.route?.[0]?.uri
    } else {
      out[5] = out[6] = out[7] = undefined
    }
    return out
  },
  c: buf => {
    const m = sip.parse(buf.toString('latin1'))
    const h = m.headers
    if (m.method === undefined) {
      h.via.shift()
    } else {
      h.via.unshift({ version: '2.0', protocol: 'UDP', host: VIA_HOST, port: 5060, params: { branch: VIA_BRANCH } })
      h['max-forwards'] = (+h['max-forwards'] || 70) - 1
      if (h.route?.length > 0) h.route.shift()
      h['record-route'] = [{ uri: RR_URI, params: {} }, ...(h['record-route'] ?? [])]
    }
    return sip.stringify(m)
  }
}

// sip.js and jssip: their grammars' Route rule does not give the top element
// of a Route list (sip.js fails on it, jssip keeps the last element), so the
// top Route is read with their Record_Route rule, which has the same syntax.
const { Parser: SipJsParser } = require('sip.js/lib/core/messages/parser.js')
const { Grammar: SipJsGrammar } = require('sip.js/lib/grammar/grammar.js')
const silentLogger = { log () {}, debug () {}, warn () {}, error () {} }
const sipJsPeer = {
  label: `sip.js@${version('sip.js')}`,
  a: buf => SipJsParser.parseMessage(buf.toString('latin1'), silentLogger),
  b: (buf, out) => {
    const m = SipJsParser.parseMessage(buf.toString('latin1'), silentLogger)
    out[0] = m.callId
    out[1] = m.cseq
    out[2] = m.viaBranch
    out[3] = m.fromTag
    out[4] = m.toTag
    if (m.method !== undefined && m.ruri !== undefined) {
      out[5] = m.ruri.user
      out[6] = m.parseHeader('max-forwards')
      const route = m.getHeader('route')
      out[7] = route === undefined ? undefined : SipJsGrammar.parse(route, 'Record_Route')[0].parsed.uri
    } else {
      out[5] = out[6] = out[7] = undefined
    }
    return out
  }
}

const JsSipParser = require('jssip/lib/Parser')
const JsSipGrammar = require('jssip/lib/Grammar')
const jssipUa = {}
const jssipPeer = {
  label: `jssip@${version('jssip')}`,
  a: buf => JsSipParser.parseMessage(buf.toString('latin1'), jssipUa),
  b: (buf, out) => {
    const m = JsSipParser.parseMessage(buf.toString('latin1'), jssipUa)
    out[0] = m.call_id
    out[1] = m.cseq
    out[2] = m.via_branch
    out[3] = m.from_tag
    out[4] = m.to_tag
    if (m.method !== undefined && m.ruri !== undefined) {
      out[5] = m.ruri.user
      out[6] = m.parseHeader('max-forwards')
      const route = m.getHeader('route')
      out[7] = route === undefined ? undefined : JsSipGrammar.parse(route, 'Record_Route')[0].parsed.uri
    } else {
      out[5] = out[6] = out[7] = undefined
    }
    return out
  }
}

// drachtio-sip in lazy mode keeps each header as one string (repeated lines
// joined with ','); (c) edits those strings (top element = up to the first
// comma, which holds for this corpus) and serialises with toString().
const { SipMessage, parser: drachtioParser } = require('drachtio-sip')
function dropFirst (list) {
  const comma = list.indexOf(',')
  return comma < 0 ? undefined : list.slice(comma + 1).trimStart()
}
const drachtioPeer = {
  label: `drachtio-sip@${version('drachtio-sip')}`,
  a: buf => new SipMessage(buf.toString('latin1')),
  b: (buf, out) => {
    const m = new SipMessage(buf.toString('latin1'))
    out[0] = m.get('call-id')
    out[1] = m.getParsedHeader('cseq').seq
    out[2] = m.getParsedHeader('via')[0].params.branch
    out[3] = m.getParsedHeader('from').params.tag
    out[4] = m.getParsedHeader('to').params.tag
    if (m.method !== undefined) {
      out[5] = drachtioParser.parseUri(m.uri).user
      out[6] = +m.get('max-forwards')
      out[7] = m.has('route') ? m.getParsedHeader('route')[0].uri : undefined
    } else {
      out[5] = out[6] = out[7] = undefined
    }
    return out
  },
  c: buf => {
    const m = new SipMessage(buf.toString('latin1'))
    const h = m.headers
    if (m.method === undefined) {
      const rest = dropFirst(h.via)
      if (rest === undefined) delete h.via
      else h.via = rest
    } else {
      h.via = VIA + ',' + h.via
      h['max-forwards'] = String((+h['max-forwards'] || 70) - 1)
      if (h.route !== undefined) {
        const rest = dropFirst(h.route)
        if (rest === undefined) delete h.route
        else h.route = rest
      }
      h['record-route'] = h['record-route'] === undefined ? RR : RR + ',' + h['record-route']
    }
    return m.toString()
  }
}

const PARSERS = { ours, sip: sipPeer, 'sip.js': sipJsPeer, jssip: jssipPeer, 'drachtio-sip': drachtioPeer }
const PEERS = Object.keys(PARSERS).filter(p => p !== 'ours')
const MODES = {
  a: '(a) parse',
  b: '(b) parse + read proxy fields',
  c: '(c) parse + forward edits + serialise'
}
const NO_SERIALISER = {
  'sip.js': 'toString() returns the received text; it has no serialiser for edited messages',
  jssip: 'toString() returns the received text; it has no serialiser for edited messages'
}

// ---------------------------------------------------------------- checks

function hostOf (uri) {
  if (uri === undefined || uri === null) return undefined
  if (typeof uri === 'object') return uri.host ?? uri._host ?? uri.raw?.host
  const s = String(uri)
  const at = s.indexOf('@')
  const start = at >= 0 ? at + 1 : s.indexOf(':') + 1
  let end = start
  while (end < s.length && !';:>?'.includes(s[end])) end++
  return s.slice(start, end)
}

/** The (b) fields as ours reads them, normalised for comparison. */
function normalise (out) {
  return [out[0], Number(out[1]), out[2], out[3] ?? undefined, out[4] ?? undefined, out[5] ?? undefined,
    out[6] === undefined ? undefined : Number(out[6]), hostOf(out[7])]
}

/** Corpus files a parser does not parse (sip.js and jssip return undefined instead of throwing). */
function checkParse (impl) {
  const problems = []
  for (let i = 0; i < N; i++) {
    try {
      if (!impl.a(buffers[i])) problems.push(`${files[i]}: no message`)
    } catch (err) {
      problems.push(`${files[i]}: ${err.message}`)
    }
  }
  return problems
}

/** Differences between a parser's (b) fields and ours, per corpus file. */
function checkFields (impl) {
  const problems = []
  for (let i = 0; i < N; i++) {
    let got
    try {
      got = normalise(impl.b(buffers[i], new Array(8)))
    } catch (err) {
      problems.push(`${files[i]}: ${err.message}`)
      continue
    }
    const want = normalise(ours.b(buffers[i], new Array(8)))
    const names = ['Call-ID', 'CSeq', 'branch', 'From tag', 'To tag', 'R-URI user', 'Max-Forwards', 'top Route']
    for (let k = 0; k < 8; k++) if (got[k] !== want[k]) problems.push(`${files[i]} ${names[k]}: ${got[k]} ≠ ${want[k]}`)
  }
  return problems
}

/** Whether a parser's (c) output, parsed back with ours, carries the forwarding edits. */
function checkForward (impl) {
  const problems = []
  for (let i = 0; i < N; i++) {
    const where = `${files[i]}`
    try {
      const orig = parseMessage(buffers[i])
      const out = impl.c(buffers[i])
      const m = parseMessage(typeof out === 'string' ? Buffer.from(out, 'latin1') : out)
      const expect = (ok, what) => { if (!ok) problems.push(`${where}: ${what}`) }
      expect(m.callId === orig.callId, 'Call-ID')
      expect(m.body.equals(orig.body), 'body')
      if (orig.isRequest) {
        expect(m.via.length === orig.via.length + 1, `Via count ${m.via.length}, want ${orig.via.length + 1}`)
        expect(m.topVia?.branch === VIA_BRANCH, 'top Via is not ours')
        expect(m.maxForwards === orig.maxForwards - 1, `Max-Forwards ${m.maxForwards}`)
        expect(m.route.length === Math.max(0, orig.route.length - 1), `Route count ${m.route.length}`)
        expect(m.recordRoute[0]?.uri === RR_URI, 'top Record-Route is not ours')
      } else {
        expect(m.via.length === orig.via.length - 1, `Via count ${m.via.length}, want ${orig.via.length - 1}`)
        expect(m.topVia?.branch === orig.via[1]?.branch, 'top Via is not the second one received')
      }
    } catch (err) {
      problems.push(`${where}: ${err.message}`)
    }
  }
  return problems
}

// ---------------------------------------------------------------- workloads

const scratch = new Array(8)
/** One call = the whole corpus once, so one call is N messages. */
function workload (impl, mode) {
  const f = impl[mode]
  if (mode === 'b') return function corpusPass () { for (let i = 0; i < N; i++) do_not_optimize(f(buffers[i], scratch)) }
  return function corpusPass () { for (let i = 0; i < N; i++) do_not_optimize(f(buffers[i])) }
}

/** Targets for `npm run bench -- parse --profile=TARGET`: our parser only. */
export const profileTargets = {
  a: 'our parser, (a) parse',
  b: 'our parser, (b) parse + read proxy fields',
  c: 'our parser, (c) parse + forward edits + serialise'
}
export const defaultProfileTarget = 'c'
export const timeLimit = { full: 300, quick: 90 }

/** Runs one profile target's workload for `seconds` (the harness runs this under node --cpu-prof). */
export async function profile ({ target, seconds, progress }) {
  const fn = workload(ours, target)
  progress(`profiling ${profileTargets[target]} for ${seconds} s`)
  const until = performance.now() + seconds * 1000
  let calls = 0
  while (performance.now() < until) {
    for (let k = 0; k < 64; k++) fn()
    calls += 64
  }
  return { messages: calls * N }
}

export async function run (ctx) {
  const settings = ctx.quick ? QUICK : FULL
  const rounds = ctx.quick ? 1 : 3
  const checks = {}
  for (const [peer, impl] of Object.entries(PARSERS)) {
    checks[`a:${peer}`] = checkParse(impl)
    checks[`b:${peer}`] = checkFields(impl)
    if (impl.c !== undefined) checks[`c:${peer}`] = checkForward(impl)
  }
  const ownProblems = [...checks['a:ours'], ...checks['b:ours'], ...checks['c:ours']]
  if (ownProblems.length > 0) throw new Error(`our parser fails its own checks: ${ownProblems.join('; ')}`)

  // Rounds interleave the parsers, so that a burst of load from other
  // processes does not land on one parser only; samples are pooled.
  const samples = {}
  for (let r = 0; r < rounds; r++) {
    for (const mode of Object.keys(MODES)) {
      for (const [peer, impl] of Object.entries(PARSERS)) {
        if (impl[mode] === undefined) continue
        ctx.progress(`round ${r + 1}/${rounds} ${MODES[mode]}: ${impl.label}`)
        const ns = await sampleNs(workload(impl, mode), r === 0 ? settings : { ...settings, warmupMs: 100 })
        ;(samples[`${mode}:${peer}`] ??= []).push(...ns)
      }
    }
  }

  const rows = []
  const medians = {}
  for (const [mode, label] of Object.entries(MODES)) {
    const modeRows = []
    for (const [peer, impl] of Object.entries(PARSERS)) {
      if (impl[mode] === undefined) {
        modeRows.push({ name: label, parser: impl.label, unit: 'msgs/s', median: null, samples: 0, check: '', na: NO_SERIALISER[peer] })
        continue
      }
      const rate = rateFromNs(samples[`${mode}:${peer}`], N)
      medians[`${mode}:${peer}`] = rate.median
      const problems = checks[`${mode}:${peer}`]
      modeRows.push({ name: label, parser: impl.label, unit: 'msgs/s', ...rate, check: problems.length === 0 ? 'ok' : `${problems.length} wrong` })
    }
    const ratios = {}
    for (const peer of PEERS) {
      const theirs = medians[`${mode}:${peer}`]
      if (theirs !== undefined) ratios[peer] = medians[`${mode}:ours`] / theirs
    }
    modeRows[0].ratios = ratios
    rows.push(...modeRows)
  }

  const fastestB = PEERS.reduce((best, p) => (medians[`b:${p}`] > (medians[`b:${best}`] ?? 0) ? p : best), PEERS[0])
  const notes = [
    `corpus: ${files.map((f, i) => `${f} (${buffers[i].length} B)`).join(', ')}; one sample is a batch of passes over all ${N} messages, figures are messages per second`,
    `ratios (÷ columns, on our rows) are ours / peer; (b) ours / fastest peer (${fastestB}) = ${(medians['b:ours'] / medians[`b:${fastestB}`]).toFixed(2)}× (target ≥ 10×)`,
    'peers parse a latin1 string decoded from the Buffer inside the timed loop; ours parses the Buffer',
    `(c) n/a for ${Object.keys(NO_SERIALISER).join(' and ')}: ${NO_SERIALISER.jssip}`,
    'sip.js and jssip: the top Route is read with their Record_Route grammar rule (their Route rule does not return the first element of a list)',
    'drachtio-sip: lazy mode (headers kept as strings; Via, CSeq, From, To and Route parsed on reading); its (c) edits the header strings directly'
  ]
  for (const [key, problems] of Object.entries(checks)) {
    if (problems.length > 0) notes.push(`check ${key}: ${problems.slice(0, 4).join('; ')}${problems.length > 4 ? `; … (${problems.length} in all)` : ''}`)
  }
  const slowest = Object.keys(MODES).reduce((s, m) => (medians[`${m}:ours`] < medians[`${s}:ours`] ? m : s), 'a')
  return { name: 'parse', rows, notes, profileTarget: slowest }
}
