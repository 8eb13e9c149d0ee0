// Flow tokens (RFC 5626 §5.2): a token names a flow (transport, address,
// port), reads back only with the key that minted it, and is made of
// characters a SIP URI user part takes unescaped (RFC 3261 §25.1).
import t from 'tap'
import { createHmac } from 'node:crypto'
import { FlowTokens } from '../src/flow-token.js'

const SECRET = 'flow-token-test-secret-0123456789'

t.test('a token reads back as the flow it names', async t => {
  const tokens = new FlowTokens({ secret: SECRET })
  for (const flow of [
    { transport: 'tcp', address: '127.0.0.141', port: 40123 },
    { transport: 'udp', address: '198.51.100.7', port: 5060 },
    { transport: 'tcp', address: '2001:db8::1', port: 65535 },
    { transport: 'tcp', address: '127.0.0.141', port: 40123, flowId: 'tcp/17' },
    { transport: 'udp', address: '198.51.100.7', port: 5060, flowId: 'udp/0/198.51.100.7/5060' }
  ]) {
    const token = tokens.encode(flow)
    t.same(tokens.decode(token), flow, token)
    // RFC 3261 §25.1 unreserved characters only: the token needs no escaping in sip:TOKEN@host.
    for (const ch of token) t.ok(/[A-Za-z0-9._~!*'()-]/.test(ch), `character ${JSON.stringify(ch)} is unreserved`)
  }
})

t.test('a token of another key, a changed payload or a cut MAC is refused', async t => {
  const a = new FlowTokens({ secret: SECRET })
  const b = new FlowTokens({ secret: 'another-secret-of-another-node-42' })
  const token = a.encode({ transport: 'tcp', address: '127.0.0.141', port: 40123 })
  t.equal(b.decode(token), undefined, 'another key')
  const dot = token.lastIndexOf('.')
  const forged = Buffer.from('tcp~203.0.113.66~5060').toString('base64url') + token.slice(dot)
  t.equal(a.decode(forged), undefined, 'payload swapped under the same MAC')
  t.equal(a.decode(token.slice(0, -1)), undefined, 'MAC cut short')
  const flipped = token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A')
  t.equal(a.decode(flipped), undefined, 'MAC changed')
  t.equal(a.decode('alice'), undefined, 'an ordinary user name')
  t.equal(a.decode(''), undefined, 'empty')
})

t.test('a correctly signed payload that names no flow is refused', async t => {
  const a = new FlowTokens({ secret: SECRET })
  // The token format, written out: base64url payload, '.', 16 characters of HMAC-SHA256 under the derived key.
  const key = createHmac('sha256', SECRET).update('sipd flow token').digest()
  const sign = (text: string): string => {
    const payload = Buffer.from(text).toString('base64url')
    return payload + '.' + createHmac('sha256', key).update(payload).digest('base64url').slice(0, 16)
  }
  t.same(a.decode(sign('tcp~127.0.0.1~5060')), { transport: 'tcp', address: '127.0.0.1', port: 5060 }, 'the format as documented')
  t.equal(a.decode(sign('tcp~127.0.0.1~0')), undefined, 'port 0')
  t.equal(a.decode(sign('tcp~127.0.0.1~70000')), undefined, 'port out of range')
  t.equal(a.decode(sign('tcp~~5060')), undefined, 'no address')
  t.equal(a.decode(sign('tcp127.0.0.1')), undefined, 'no separators')
  t.same(a.decode(sign('tcp~127.0.0.1~5060~tcp/3')), { transport: 'tcp', address: '127.0.0.1', port: 5060, flowId: 'tcp/3' }, 'with a flow id')
  t.equal(a.decode(sign('tcp~127.0.0.1~5060~')), undefined, 'an empty flow id')
})

t.test('a flow id with the separator in it is refused when minting', async t => {
  const a = new FlowTokens({ secret: SECRET })
  t.throws(() => a.encode({ transport: 'tcp', address: '127.0.0.1', port: 5060, flowId: 'tcp~3' }), { code: 'SIPD_ERR_INVALID_ARGUMENT' })
})

t.test('options are checked at construction', async t => {
  t.throws(() => new FlowTokens({ secret: 'short' }), { code: 'SIPD_ERR_INVALID_ARGUMENT' })
  t.throws(() => new FlowTokens({ secret: SECRET, macLength: 4 }), { code: 'SIPD_ERR_INVALID_ARGUMENT' })
  t.throws(() => new FlowTokens(null as unknown as { secret: string }), { code: 'SIPD_ERR_INVALID_ARGUMENT' })
  t.equal(new FlowTokens({ secret: Buffer.alloc(32, 7) }).encode({ transport: 'udp', address: '10.0.0.1', port: 1 }).split('.').length, 2)
})
