// Every RFC 4475 / RFC 5118 torture message sent to a running sipd over TCP,
// on 127.0.0.1 and on [::1], each on a connection of its own: the answer the
// RFC expects (the UDP run's, test/helpers/torture-expected.ts) except where
// stream framing changes it (below), a closed connection where framing is
// lost, never a crash; afterwards sipd answers OPTIONS, holds no connection
// and logged no error.
import t from 'tap'
import net from 'node:net'
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort } from './helpers/servers.js'
import { metricValue, spawnSipd } from './helpers/spawn-sipd.js'
import { delay } from './helpers/process.js'
import { EXPECTED } from './helpers/torture-expected.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const dir = path.join(here, '..', 'packages', 'sip-parser', 'test', 'fixtures', 'torture')

/**
 * Where TCP differs from one datagram (RFC 3261 §18.3: the stream is framed
 * by Content-Length, which is mandatory there):
 * - 'wait': the message is not complete yet (Content-Length beyond the bytes
 *   sent, or no empty line after the headers): sipd waits for the rest;
 * - a list: every final answer in order (two messages in one write);
 * - `close: true`: framing is lost (a start line no message can have, bytes
 *   after the body that start no message, no Content-Length): the connection
 *   closes, after the 400 when one could be built.
 */
const TCP: Record<string, { want?: number | 'drop' | 'wait' | number[], close?: boolean }> = {
  'clerr.dat': { want: 'wait' },
  'ipv6-in-sdp.dat': { want: 'wait' },
  'baddn.dat': { want: 'wait' }, // the fixture has no empty line after its headers
  'dblreq.dat': { want: [403, 404], close: true }, // two requests, then bytes after the second body
  'inv2543.dat': { want: 400, close: true }, // no Content-Length on a stream
  'ncl.dat': { close: true },
  'mcl01.dat': { close: true },
  'ltgtruri.dat': { close: true },
  'lwsruri.dat': { close: true },
  'lwsstart.dat': { close: true },
  'trws.dat': { close: true },
  'ipv4-mapped-ipv6.dat': { close: true }, // the body runs past its Content-Length
  'mult-ip-in-sdp.dat': { close: true },
  'bigcode.dat': { close: true },
  'test.dat': { close: true }
}

interface Outcome { finals: number[], closed: boolean }

/**
 * One fixture on a connection of its own: the final statuses, and whether
 * sipd closed it; waits for `finals` answers, or with `untilClose` for the
 * close, at most `waitMs`.
 */
async function exchange (host: string, port: number, bytes: Buffer, finals: number, waitMs: number, untilClose = false): Promise<Outcome> {
  return await new Promise(resolve => {
    const s = net.connect({ host, port })
    const out: Outcome = { finals: [], closed: false }
    let text = ''
    const done = (): void => { clearTimeout(timer); s.destroy(); resolve(out) }
    const timer = setTimeout(done, waitMs)
    s.on('data', d => {
      text += d.toString('latin1')
      let i
      while ((i = text.indexOf('\r\n\r\n')) >= 0) {
        const head = text.slice(0, i)
        const cl = /\r\n(?:Content-Length|l) *: *(\d+)/i.exec(head)
        text = text.slice(i + 4 + (cl === null ? 0 : Number(cl[1])))
        const status = Number(head.slice(8, 11))
        if (status >= 200) out.finals.push(status)
      }
      if (!untilClose && finals > 0 && out.finals.length >= finals) done()
    })
    s.on('close', () => { out.closed = true; done() })
    s.on('error', () => {})
    s.write(bytes)
  })
}

for (const [family, host] of [['IPv4', '127.0.0.1'], ['IPv6', '::1']] as const) {
  t.test(`torture messages over TCP on ${family}`, async t => {
    const files = readdirSync(dir).filter(f => f.endsWith('.dat')).sort()
    const port = await freePort(host, 'tcp')
    const http = await freePort('127.0.0.1', 'tcp')
    const bracketed = host.includes(':') ? `[${host}]` : host
    const sipd = await spawnSipd({ configYaml: `listen: ["tcp:${bracketed}:${port}"]\nhttp: "127.0.0.1:${http}"\n` })
    t.teardown(async () => { await sipd.stop() })

    for (const f of files) {
      const tcp = TCP[f] ?? {}
      const want = tcp.want ?? EXPECTED[f]!
      const wants = Array.isArray(want) ? want : typeof want === 'number' ? [want] : []
      // Wait for the close where it is due, else for the answers (an INVITE's 100 comes first), else a short while.
      const r = await exchange(host, port, readFileSync(path.join(dir, f)), wants.length, tcp.close === true ? 2000 : wants.length > 0 ? 3000 : 300, tcp.close === true)
      t.same(r.finals, wants, `${f}: ${wants.length === 0 ? `no answer (${String(want)})` : wants.join(', ')}`)
      if (tcp.close === true) t.ok(r.closed, `${f}: the connection is closed (framing lost)`)
      else if (want === 'wait') t.notOk(r.closed, `${f}: the connection waits for the rest of the message`)
    }

    const ok = await exchange(host, port, Buffer.from([
      `OPTIONS sip:${bracketed}:${port} SIP/2.0`,
      'Via: SIP/2.0/TCP client.invalid;branch=z9hG4bK-after-torture-tcp',
      'From: <sip:probe@example.com>;tag=after',
      `To: <sip:${bracketed}:${port}>`,
      'Call-ID: after-torture-tcp@test',
      'CSeq: 1 OPTIONS',
      'Max-Forwards: 70',
      'Content-Length: 0',
      '', ''
    ].join('\r\n')), 1, 3000)
    t.same(ok.finals, [200], 'sipd answers OPTIONS afterwards')
    let open = -1
    for (let i = 0; i < 20 && open !== 0; i++) {
      open = await metricValue(sipd, 'sipd_tcp_connections')
      if (open !== 0) await delay(100)
    }
    t.equal(open, 0, 'no connection left open')
    t.notMatch(sipd.logs(), /"level":(50|60)/, 'no error logged')
  })
}
