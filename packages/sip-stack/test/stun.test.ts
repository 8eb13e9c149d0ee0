// The STUN Binding responder (RFC 5626 §4.4.2 keep-alives on the SIP UDP
// port), checked against the RFC 5769 test vectors and over a real socket.
import t from 'tap'
import { createSocket } from 'node:dgram'
import { isStunMessage, stunBindingResponse } from '../src/stun.js'
import { optionsRequest, RecordingLayer, until } from './helpers/transport-peer.js'

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex')
// RFC 5769 §2.1-2.3: the transaction id of the sample messages.
const TXID = 'b7e7a701 bc34d686 fa87dfae'

/** A Binding request: header only, or with one SOFTWARE attribute (`len` bytes of attributes). */
function bindingRequest (txid = TXID, withAttribute = false): Buffer {
  const attr = withAttribute ? hex('8022 0004 74657374') : Buffer.alloc(0)
  return Buffer.concat([hex('0001'), Buffer.from([0, attr.length]), hex('2112a442'), hex(txid), attr])
}

t.test('Binding success response with XOR-MAPPED-ADDRESS (RFC 5769 §2.2, §2.3 vectors)', async t => {
  const v4 = stunBindingResponse(bindingRequest(TXID, true), '192.0.2.1', 32853)
  t.ok(v4 !== undefined)
  t.same(v4!.subarray(0, 20), hex('0101 000c 2112a442' + TXID), 'success class, length 12, cookie, the request\'s transaction id')
  t.same(v4!.subarray(20), hex('0020 0008 0001 a147 e112a643'), 'XOR-MAPPED-ADDRESS 192.0.2.1:32853 as in RFC 5769 §2.2')

  const v6 = stunBindingResponse(bindingRequest(), '2001:db8:1234:5678:11:2233:4455:6677', 32853)
  t.same(v6!.subarray(20), hex('0020 0014 0002 a147 0113a9fa a5d3f179 bc25f4b5 bed2b9d9'), 'IPv6 as in RFC 5769 §2.3')
})

t.test('only Binding requests are answered; SIP is never taken for STUN', async t => {
  t.equal(stunBindingResponse(Buffer.concat([hex('0101 0000 2112a442'), hex(TXID)]), '127.0.0.1', 1), undefined, 'a response is not answered')
  t.equal(stunBindingResponse(Buffer.concat([hex('0011 0000 2112a442'), hex(TXID)]), '127.0.0.1', 1), undefined, 'an indication is not answered')
  t.equal(stunBindingResponse(Buffer.concat([hex('0001 0008 2112a442'), hex(TXID)]), '127.0.0.1', 1), undefined, 'a length past the datagram')
  t.notOk(isStunMessage(Buffer.concat([hex('0001 0000 2112a443'), hex(TXID)])), 'wrong magic cookie')
  t.notOk(isStunMessage(Buffer.from(optionsRequest(1, '127.0.0.1:5060'))), 'a SIP request')
  t.notOk(isStunMessage(Buffer.from('\r\n\r\n')), 'a CRLF keep-alive')
})

t.test('the UDP transport answers a Binding request on the SIP port and keeps taking SIP', async t => {
  const r = new RecordingLayer({ listen: ['udp:127.0.0.1:0'] })
  await r.layer.listen()
  t.teardown(async () => { await r.layer.close() })
  const sock = createSocket('udp4')
  const got: Buffer[] = []
  sock.on('message', buf => { got.push(buf) })
  await new Promise<void>(resolve => sock.bind(0, '127.0.0.1', resolve))
  t.teardown(() => { sock.close() })
  const port = sock.address().port

  sock.send(Buffer.concat([hex('0101 0000 2112a442'), hex('000000000000000000000001')]), r.port('udp'), '127.0.0.1')
  sock.send(bindingRequest('00000000 00000000 00000002'), r.port('udp'), '127.0.0.1')
  await until(() => got.length === 1, 'the Binding response')
  const res = got[0]!
  t.equal(res.readUInt16BE(0), 0x0101, 'Binding success')
  t.same(res.subarray(8, 20), hex('00000000 00000000 00000002'), 'for the request, not the stray response')
  t.equal(res.readUInt16BE(26) ^ 0x2112, port, 'XOR-MAPPED-ADDRESS port is the client\'s')
  t.equal((res.readUInt32BE(28) ^ 0x2112a442) >>> 0, 0x7f000001, 'XOR-MAPPED-ADDRESS is 127.0.0.1')
  t.equal(r.layer.counters.keepAlivesIn.udp, 2, 'both counted as keep-alives')
  t.equal(r.layer.counters.keepAlivesOut.udp, 1)
  t.equal(r.parseErrors.length, 0, 'no parse errors')

  sock.send(optionsRequest(9, `127.0.0.1:${port}`), r.port('udp'), '127.0.0.1')
  await until(() => r.messages.length === 1, 'the SIP request after the STUN ones')
})
