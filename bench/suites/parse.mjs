// Parse suite: messages per second over one corpus (bench/corpus/*.sip:
// INVITE with SDP and 17 headers, REGISTER with Authorization, 100, 180, 200
// with SDP, ACK, BYE, OPTIONS) for
//   (a) parse,
//   (b) parse, then read what a proxy reads (Call-ID, CSeq, top Via branch,
//       From and To tags, Request-URI user, Max-Forwards, top Route),
//   (c) parse, edit for forwarding and serialise,
// with @sipd/sip-parser and, in the same run, the parsers of the npm
// packages sip, sip.js, jssip and drachtio-sip.
import { readdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { forwardRequest, parseMessage, stripTopVia } from '@sipd/sip-parser'
import { measure } from '../lib/sample.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const require = createRequire(import.meta.url)
const corpusDir = path.join(here, '..', 'corpus')
const files = readdirSync(corpusDir).filter(f => f.endsWith('.sip')).sort()
const buffers = files.map(f => readFileSync(path.join(corpusDir, f)))
const strings = buffers.map(b => b.toString('binary'))
const N = buffers.length

const VIA = 'SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK74bf9.0a1b2c3d'
const RR = '<sip:10.0.0.1;lr>'

const ours = {
  a: i => parseMessage(buffers[i % N]).headerCount,
  b: i => {
    const m = parseMessage(buffers[i % N])
    let n = m.callId.length + m.cseq.seq + (m.topVia?.branch?.length ?? 0) + (m.from.tag?.length ?? 0) + (m.to.tag?.length ?? 0)
    if (m.isRequest) n += (m.requestUri.user?.length ?? 0) + (m.maxForwards ?? 0) + (m.route[0]?.uri.length ?? 0)
    return n
  },
  c: i => {
    const m = parseMessage(buffers[i % N])
    if (!m.isRequest) return stripTopVia(m).length
    const mf = m.maxForwards ?? 70
    const route = m.route
    return forwardRequest(m, { via: VIA, maxForwards: mf - 1, popRoute: route.length > 0, recordRoute: [RR] }).length
  }
}

const sip = require('sip')
const sipPeer = {
  a: i => sip.parse(strings[i % N]).headers.cseq.seq,
  b: i => {
    const m = sip.parse(strings[i % N])
    const h = m.headers
    let n = h['call-id'].length + h.cseq.seq + h.via[0].params.branch.length + (h.from.params.tag?.length ?? 0) + (h.to.params.tag?.length ?? 0)
    if (m.method !== undefined) n += (sip.parseUri(m.uri).user?.length ?? 0) + (+h['max-forwards'] || 0) + (h.route?.[0]?.uri.length ?? 0)
    return n
  },
  c: i => {
    const m = sip.parse(strings[i % N])
    const h = m.headers
    if (m.method === undefined) {
      h.via.shift()
    } else {
      h.via.unshift({ version: '2.0', protocol: 'UDP', host: '10.0.0.1', port: 5060, params: { branch: 'z9hG4bK74bf9.0a1b2c3d' } })
      h['max-forwards'] = (+h['max-forwards'] || 70) - 1
      if (h.route?.length > 0) h.route.shift()
      h['record-route'] = [{ uri: 'sip:10.0.0.1;lr', params: {} }, ...(h['record-route'] ?? [])]
    }
    return sip.stringify(m).length
  }
}

const { Parser: SipJsParser } = require('sip.js/lib/core/messages/parser.js')
const silent = { log () {}, debug () {}, warn () {}, error () {} }
const sipJsPeer = {
  a: i => SipJsParser.parseMessage(strings[i % N], silent).callId.length,
  b: i => {
    const m = SipJsParser.parseMessage(strings[i % N], silent)
    let n = m.callId.length + m.cseq + m.via.branch.length + (m.fromTag?.length ?? 0) + (m.toTag?.length ?? 0)
    if (m.method !== undefined) n += (m.ruri?.user?.length ?? 0) + (+m.getHeader('max-forwards') || 0) + (m.getHeader('route')?.length ?? 0)
    return n
  }
}

const JsSIPParser = require('jssip/lib/Parser')
const jssipPeer = {
  a: i => JsSIPParser.parseMessage(strings[i % N], {}).call_id.length,
  b: i => {
    const m = JsSIPParser.parseMessage(strings[i % N], {})
    let n = m.call_id.length + m.cseq + m.via_branch.length + (m.from_tag?.length ?? 0) + (m.to_tag?.length ?? 0)
    if (m.method !== undefined) n += (m.ruri?.user?.length ?? 0) + (+m.getHeader('max-forwards') || 0) + (m.getHeader('route')?.length ?? 0)
    return n
  }
}

const { SipMessage } = require('drachtio-sip')
const drachtioPeer = {
  a: i => new SipMessage(strings[i % N]).get('call-id').length,
  b: i => {
    const m = new SipMessage(strings[i % N])
    let n = m.get('call-id').length + m.getParsedHeader('cseq').seq + m.getParsedHeader('via')[0].params.branch.length +
      (m.getParsedHeader('from').params.tag?.length ?? 0) + (m.getParsedHeader('to').params.tag?.length ?? 0)
    if (m.type === 'request') n += m.uri.length + (+m.get('max-forwards') || 0) + (m.get('route')?.length ?? 0)
    return n
  }
}

const PEERS = { '@sipd/sip-parser': ours, sip: sipPeer, 'sip.js': sipJsPeer, jssip: jssipPeer, 'drachtio-sip': drachtioPeer }
const MODES = { a: 'parse', b: 'parse + proxy fields', c: 'parse + forward edit + serialise' }

export async function run (ctx) {
  const opts = ctx.quick ? { samples: 5, sampleMs: 100, warmupMs: 150 } : { samples: 15, sampleMs: 300, warmupMs: 500 }
  const results = {}
  for (const [mode, label] of Object.entries(MODES)) {
    for (const [peer, impl] of Object.entries(PEERS)) {
      if (impl[mode] === undefined) continue
      ctx.progress(`${label}: ${peer}`)
      results[`${mode}:${peer}`] = measure(impl[mode], opts)
    }
  }
  const rows = []
  for (const [mode, label] of Object.entries(MODES)) {
    const mine = results[`${mode}:@sipd/sip-parser`]
    for (const peer of Object.keys(PEERS)) {
      const r = results[`${mode}:${peer}`]
      if (r === undefined) continue
      const row = { case: `(${mode}) ${label}`, parser: peer, 'msgs/s': r.median, spread: { min: r.min, max: r.max, p25: r.p25, p75: r.p75 }, samples: r.samples }
      if (peer !== '@sipd/sip-parser') row.ratios = { ours: mine.median / r.median }
      rows.push(row)
    }
  }
  const fastestB = Math.max(...Object.keys(PEERS).filter(p => p !== '@sipd/sip-parser' && results[`b:${p}`]).map(p => results[`b:${p}`].median))
  return {
    name: 'parse',
    rows,
    notes: [
      `corpus: ${files.join(', ')} (round-robin)`,
      `(b) ours / fastest peer: ${(results['b:@sipd/sip-parser'].median / fastestB).toFixed(2)}× (target 10×)`,
      '(c) is measured only where the peer can serialise a parsed message (sip: stringify); sip.js, jssip and drachtio-sip parse incoming messages without a serialiser for edits'
    ]
  }
}
