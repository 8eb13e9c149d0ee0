// Trunk routing: longest prefix, gateways in order, down marking.
import t from 'tap'
import { gatewayRequestUri, TrunkConfigError, TrunkRouter } from '../src/trunks.js'

const gateways = [
  { id: 'a', uri: 'sip:192.0.2.1:5090' },
  { id: 'b', uri: 'sip:192.0.2.2;transport=tcp' },
  { id: 'c', uri: 'sip:192.0.2.3' }
]

t.test('longest prefix wins, a leading + is ignored', async t => {
  const r = new TrunkRouter({ gateways, routes: [{ prefix: '1', gateways: ['a', 'b'] }, { prefix: '1212', gateways: ['c'] }, { prefix: '', gateways: ['b'] }] })
  t.same(r.gatewaysFor('15551234')!.map(g => g.id), ['a', 'b'])
  t.same(r.gatewaysFor('+12125551234')!.map(g => g.id), ['c'])
  t.same(r.gatewaysFor('4420')!.map(g => g.id), ['b'], 'the empty prefix is the default route')
  const none = new TrunkRouter({ gateways, routes: [{ prefix: '1', gateways: ['a'] }] })
  t.equal(none.gatewaysFor('44'), undefined, 'no route: undefined')
})

t.test('a gateway marked down goes last until its time is up', async t => {
  let now = 1000
  const r = new TrunkRouter({ gateways, routes: [{ prefix: '1', gateways: ['a', 'b'] }], downForMs: 500, now: () => now })
  r.markDown('a')
  t.ok(r.isDown('a'))
  t.same(r.gatewaysFor('1555')!.map(g => g.id), ['b', 'a'])
  now = 1500
  t.notOk(r.isDown('a'), 'up again after downForMs')
  t.same(r.gatewaysFor('1555')!.map(g => g.id), ['a', 'b'])
})

t.test('configuration errors and Request-URIs', async t => {
  t.throws(() => new TrunkRouter({ gateways, routes: [{ prefix: '1', gateways: ['zz'] }] }), TrunkConfigError)
  t.throws(() => new TrunkRouter({ gateways: [{ id: 'x', uri: 'not a uri' }], routes: [] }), { code: 'SIPD_ERR_TRUNK_CONFIG' })
  t.equal(gatewayRequestUri('sip:192.0.2.1:5090', '15551234'), 'sip:15551234@192.0.2.1:5090')
  t.equal(gatewayRequestUri('sip:192.0.2.2;transport=tcp', '1555'), 'sip:1555@192.0.2.2;transport=tcp')
})
