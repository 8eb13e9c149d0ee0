import t from 'tap'
import { parseUri } from '@sipd/sip-parser'
import { DEFAULT_RESOLVER_OPTIONS, orderSrv, Resolver, type DnsClient } from '../src/resolver.js'
import { InvalidTransportOptionError, ResolverError } from '../src/transport-errors.js'

interface Zone {
  a?: Record<string, Array<{ address: string, ttl: number }>>
  aaaa?: Record<string, Array<{ address: string, ttl: number }>>
  srv?: Record<string, Array<{ name: string, port: number, priority: number, weight: number }>>
  /** Names whose lookups fail with this code instead of NODATA. */
  fail?: Record<string, string>
}

/** A fake DNS server's client side: answers from a zone and logs every query. */
function fakeDns (zone: Zone): DnsClient & { log: string[] } {
  const log: string[] = []
  const err = (code: string, name: string): Error => Object.assign(new Error(`${code} ${name}`), { code })
  const answer = async <T>(type: string, table: Record<string, T[]> | undefined, name: string): Promise<T[]> => {
    log.push(`${type} ${name}`)
    await new Promise(resolve => setImmediate(resolve))
    const failure = zone.fail?.[name]
    if (failure !== undefined) throw err(failure, name)
    const recs = table?.[name]
    if (recs === undefined) throw err('ENOTFOUND', name)
    return recs.map(r => ({ ...r }))
  }
  return {
    log,
    resolve4: async (name, _o) => await answer('A', zone.a, name),
    resolve6: async (name, _o) => await answer('AAAA', zone.aaaa, name),
    resolveSrv: async name => await answer('SRV', zone.srv, name)
  }
}

t.test('numeric hosts resolve without DNS, with default ports per scheme and transport', async t => {
  const dns = fakeDns({})
  const r = new Resolver({ dns })
  t.same(await r.resolve('sip:alice@192.0.2.1'), [{ transport: 'udp', address: '192.0.2.1', port: 5060, family: 4 }])
  t.same(await r.resolve('sip:192.0.2.1:5070'), [{ transport: 'udp', address: '192.0.2.1', port: 5070, family: 4 }])
  t.same(await r.resolve('sip:192.0.2.1;transport=tcp'), [{ transport: 'tcp', address: '192.0.2.1', port: 5060, family: 4 }])
  t.same(await r.resolve('sip:192.0.2.1;transport=TLS'), [{ transport: 'tls', address: '192.0.2.1', port: 5061, family: 4 }])
  t.same(await r.resolve('sips:bob@192.0.2.1'), [{ transport: 'tls', address: '192.0.2.1', port: 5061, family: 4 }])
  t.same(await r.resolve('sips:bob@192.0.2.1;transport=tcp'), [{ transport: 'tls', address: '192.0.2.1', port: 5061, family: 4 }])
  t.same(await r.resolve('sip:[2001:DB8:0::1]:5080'), [{ transport: 'udp', address: '2001:db8::1', port: 5080, family: 6 }])
  t.same(await r.resolve(parseUri('sip:[::1];transport=tcp')), [{ transport: 'tcp', address: '::1', port: 5060, family: 6 }])
  t.same(dns.log, [], 'no DNS query for numeric hosts')
})

t.test('maddr overrides the host', async t => {
  const dns = fakeDns({ a: { 'mc.example.net': [{ address: '198.51.100.9', ttl: 60 }] } })
  const r = new Resolver({ dns, ipv6: false })
  t.same(await r.resolve('sip:bob@example.com:5062;maddr=192.0.2.7'), [{ transport: 'udp', address: '192.0.2.7', port: 5062, family: 4 }])
  t.same(await r.resolve('sip:bob@192.0.2.1:5062;maddr=mc.example.net;transport=tcp'), [{ transport: 'tcp', address: '198.51.100.9', port: 5062, family: 4 }])
  t.same(dns.log, ['A mc.example.net'])
})

t.test('a name with an explicit port uses A and AAAA only', async t => {
  const dns = fakeDns({
    a: { 'pbx.example.com': [{ address: '192.0.2.10', ttl: 60 }, { address: '192.0.2.11', ttl: 30 }] },
    aaaa: { 'pbx.example.com': [{ address: '2001:db8::10', ttl: 60 }] }
  })
  const r = new Resolver({ dns })
  t.same(await r.resolve('sip:pbx.example.com:5070;transport=tcp'), [
    { transport: 'tcp', address: '192.0.2.10', port: 5070, family: 4 },
    { transport: 'tcp', address: '192.0.2.11', port: 5070, family: 4 },
    { transport: 'tcp', address: '2001:db8::10', port: 5070, family: 6 }
  ])
  t.same(dns.log.sort(), ['A pbx.example.com', 'AAAA pbx.example.com'], 'no SRV query when a port is given')
  const v6first = new Resolver({ dns, preferIPv6: true })
  t.equal((await v6first.resolve('sip:PBX.example.com:5070'))[0]?.family, 6, 'preferIPv6 puts AAAA first; names are case-insensitive')
})

t.test('a name without a port: SRV for udp and tcp, ordered by priority, then A/AAAA', async t => {
  const dns = fakeDns({
    srv: {
      '_sip._udp.example.com': [
        { name: 'backup.example.com', port: 5080, priority: 20, weight: 0 },
        { name: 'main.example.com', port: 5060, priority: 10, weight: 100 }
      ],
      '_sip._tcp.example.com': [{ name: 'tcp.example.com', port: 5090, priority: 10, weight: 0 }]
    },
    a: {
      'main.example.com': [{ address: '192.0.2.1', ttl: 60 }],
      'backup.example.com': [{ address: '192.0.2.2', ttl: 60 }],
      'tcp.example.com': [{ address: '192.0.2.3', ttl: 60 }]
    }
  })
  const r = new Resolver({ dns, ipv6: false })
  t.same(await r.resolve('sip:alice@example.com'), [
    { transport: 'udp', address: '192.0.2.1', port: 5060, family: 4 },
    { transport: 'udp', address: '192.0.2.2', port: 5080, family: 4 },
    { transport: 'tcp', address: '192.0.2.3', port: 5090, family: 4 }
  ])
  t.ok(dns.log.includes('SRV _sip._udp.example.com') && dns.log.includes('SRV _sip._tcp.example.com'))
  t.notOk(dns.log.includes('A example.com'), 'the bare name is not looked up when SRV records exist')

  t.same(await r.resolve('sip:alice@example.com;transport=tcp'), [
    { transport: 'tcp', address: '192.0.2.3', port: 5090, family: 4 }
  ], 'a transport parameter limits SRV to that transport')
})

t.test('sips and transport=tls query _sips._tcp', async t => {
  const dns = fakeDns({
    srv: { '_sips._tcp.example.com': [{ name: 'tls.example.com', port: 5071, priority: 1, weight: 1 }] },
    a: { 'tls.example.com': [{ address: '192.0.2.5', ttl: 60 }] }
  })
  const r = new Resolver({ dns, ipv6: false })
  t.same(await r.resolve('sips:example.com'), [{ transport: 'tls', address: '192.0.2.5', port: 5071, family: 4 }])
  t.same(dns.log.filter(q => q.startsWith('SRV')), ['SRV _sips._tcp.example.com'])
})

t.test('no SRV records: A/AAAA of the name with the default port', async t => {
  const dns = fakeDns({
    a: { 'plain.example.org': [{ address: '203.0.113.4', ttl: 60 }] },
    aaaa: { 'plain.example.org': [{ address: '2001:db8::4', ttl: 60 }] }
  })
  const r = new Resolver({ dns })
  t.same(await r.resolve('sip:plain.example.org'), [
    { transport: 'udp', address: '203.0.113.4', port: 5060, family: 4 },
    { transport: 'udp', address: '2001:db8::4', port: 5060, family: 6 }
  ])
  t.same(await new Resolver({ dns }).resolve('sips:plain.example.org'), [
    { transport: 'tls', address: '203.0.113.4', port: 5061, family: 4 },
    { transport: 'tls', address: '2001:db8::4', port: 5061, family: 6 }
  ])
})

t.test('an SRV target of "." means no service; unknown names give no targets', async t => {
  const dns = fakeDns({
    srv: { '_sip._udp.closed.example': [{ name: '.', port: 0, priority: 0, weight: 0 }] },
    a: { 'closed.example': [{ address: '192.0.2.99', ttl: 60 }] }
  })
  const r = new Resolver({ dns, transports: ['udp'] })
  t.same(await r.resolve('sip:closed.example'), [], 'the A record is not used when SRV says "not here"')
  t.same(await r.resolve('sip:nowhere.example'), [])
  t.same(await r.resolve('sip:nowhere.example:5060'), [])
})

t.test('answers are cached by TTL; SRV by the configured TTL; negative answers briefly', async t => {
  let now = 1_000_000
  const dns = fakeDns({
    srv: { '_sip._udp.example.com': [{ name: 'main.example.com', port: 5060, priority: 1, weight: 1 }] },
    a: { 'main.example.com': [{ address: '192.0.2.1', ttl: 60 }, { address: '192.0.2.2', ttl: 20 }] }
  })
  const r = new Resolver({ dns, ipv6: false, transports: ['udp'], srvTtl: 300, negativeTtl: 5, now: () => now })
  await r.resolve('sip:example.com')
  t.same(dns.log, ['SRV _sip._udp.example.com', 'A main.example.com'])
  await r.resolve('sip:example.com')
  t.equal(dns.log.length, 2, 'second resolution from the cache')
  t.equal(r.cacheHits, 2)

  now += 21_000 // past the smallest A TTL (20 s), within the SRV TTL
  await r.resolve('sip:example.com')
  t.same(dns.log.slice(2), ['A main.example.com'], 'A re-queried after its TTL; SRV still cached')

  now += 300_000
  await r.resolve('sip:example.com')
  t.same(dns.log.slice(3), ['SRV _sip._udp.example.com', 'A main.example.com'], 'SRV re-queried after srvTtl')

  await r.resolve('sip:gone.example:5060')
  await r.resolve('sip:gone.example:5060')
  t.equal(dns.log.filter(q => q === 'A gone.example').length, 1, 'NXDOMAIN cached')
  now += 6000
  await r.resolve('sip:gone.example:5060')
  t.equal(dns.log.filter(q => q === 'A gone.example').length, 2, 'negative entry expired after negativeTtl')
})

t.test('server failures are not cached; concurrent identical queries are sent once', async t => {
  const dns = fakeDns({
    a: { 'ok.example': [{ address: '192.0.2.1', ttl: 60 }] },
    fail: { 'flaky.example': 'ESERVFAIL' }
  })
  const r = new Resolver({ dns, ipv6: false })
  t.same(await r.resolve('sip:flaky.example:5060'), [])
  t.same(await r.resolve('sip:flaky.example:5060'), [])
  t.equal(dns.log.filter(q => q === 'A flaky.example').length, 2, 'SERVFAIL asked again')

  const all = await Promise.all([1, 2, 3, 4].map(async () => await r.resolve('sip:ok.example:5060')))
  t.equal(dns.log.filter(q => q === 'A ok.example').length, 1, 'one query for four concurrent resolutions')
  for (const targets of all) t.equal(targets[0]?.address, '192.0.2.1')
})

t.test('the cache is bounded; least recently used entries go first', async t => {
  const a: Record<string, Array<{ address: string, ttl: number }>> = {}
  for (let i = 0; i < 10; i++) a[`h${i}.example`] = [{ address: `192.0.2.${i + 1}`, ttl: 600 }]
  const dns = fakeDns({ a })
  const r = new Resolver({ dns, ipv6: false, maxCacheEntries: 4 })
  for (let i = 0; i < 10; i++) await r.resolve(`sip:h${i}.example:5060`)
  t.equal(r.cacheSize, 4)
  await r.resolve('sip:h9.example:5060')
  t.equal(dns.log.filter(q => q === 'A h9.example').length, 1, 'a recent entry is still cached')
  await r.resolve('sip:h0.example:5060')
  t.equal(dns.log.filter(q => q === 'A h0.example').length, 2, 'the oldest entry was evicted')
})

t.test('RFC 2782 ordering: priority first, then weighted random within a priority', async t => {
  const recs = [
    { name: 'c', priority: 20, weight: 5 },
    { name: 'a', priority: 10, weight: 90 },
    { name: 'b', priority: 10, weight: 10 },
    { name: 'z', priority: 10, weight: 0 }
  ]
  // Seeded LCG so the counts are reproducible.
  let seed = 12345
  const random = (): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648
    return seed / 2147483648
  }
  const firsts: Record<string, number> = { a: 0, b: 0, z: 0 }
  for (let i = 0; i < 2000; i++) {
    const order = orderSrv(recs, random).map(r => r.name)
    t.equal(order.length, 4)
    if (order[3] !== 'c') t.fail(`priority 20 must come last, got ${order.join(',')}`)
    firsts[order[0] as string] = (firsts[order[0] as string] ?? 0) + 1
  }
  t.ok((firsts.a ?? 0) > (firsts.b ?? 0) * 4, `weight 90 wins far more often than weight 10 (${JSON.stringify(firsts)})`)
  t.ok((firsts.b ?? 0) > (firsts.z ?? 0), 'weight 10 wins more often than weight 0')
  t.ok((firsts.z ?? 0) > 0 && (firsts.z ?? 0) < 100, 'weight 0 is picked first rarely but not never')

  t.same(orderSrv(recs, () => 0).map(r => r.name), ['z', 'a', 'b', 'c'], 'random 0 picks the weight-0 record first')
  t.same(orderSrv(recs, () => 0.999999).map(r => r.name), ['b', 'a', 'z', 'c'], 'random near 1 picks the last running sum')
})

t.test('bad input rejects with a coded ResolverError; bad options throw at construction', async t => {
  const r = new Resolver({ dns: fakeDns({}) })
  await t.rejects(r.resolve('tel:+15551234'), { code: 'SIP_ERR_UNSUPPORTED_SCHEME' })
  await t.rejects(r.resolve('sip:a@192.0.2.1;transport=sctp'), { code: 'SIP_ERR_UNSUPPORTED_TRANSPORT' })
  await t.rejects(r.resolve('sips:a@192.0.2.1;transport=udp'), { code: 'SIP_ERR_UNSUPPORTED_TRANSPORT' })
  await t.rejects(r.resolve('not a uri'), ResolverError)
  t.throws(() => new Resolver({ srvTtl: -1 }), InvalidTransportOptionError)
  t.throws(() => new Resolver({ maxCacheEntries: 0 }), { code: 'SIP_ERR_INVALID_OPTION' })
  t.throws(() => new Resolver({ transports: [] }), { code: 'SIP_ERR_INVALID_OPTION' })
  t.throws(() => new Resolver({ dns: {} as unknown as DnsClient }), /resolve4/)
  t.ok(Object.isFrozen(DEFAULT_RESOLVER_OPTIONS))
})

t.test('a full cache evicts the least recently used in batches of 1/16 and keeps what was used since', async t => {
  const a: Record<string, Array<{ address: string, ttl: number }>> = {}
  for (let i = 0; i < 100; i++) a[`h${i}.example`] = [{ address: `192.0.2.${i + 1}`, ttl: 600 }]
  const dns = fakeDns({ a })
  const r = new Resolver({ dns, ipv6: false, maxCacheEntries: 32 })
  for (let i = 0; i < 32; i++) await r.resolve(`sip:h${i}.example:5060`)
  t.equal(r.cacheSize, 32)
  await r.resolve('sip:h0.example:5060')
  t.equal(dns.log.filter(q => q === 'A h0.example').length, 1, 'a hit, and h0 is now the most recently used')
  await r.resolve('sip:h32.example:5060')
  t.equal(r.cacheSize, 30, 'one over the bound: that one and 32 >>> 4 = 2 more least recently used went at once')
  for (const i of [0, 4, 31, 32]) {
    await r.resolve(`sip:h${i}.example:5060`)
    t.equal(dns.log.filter(q => q === `A h${i}.example`).length, 1, `h${i} still cached`)
  }
  for (const i of [1, 2, 3]) {
    await r.resolve(`sip:h${i}.example:5060`)
    t.equal(dns.log.filter(q => q === `A h${i}.example`).length, 2, `h${i} was evicted`)
  }
  for (let i = 33; i < 100; i++) await r.resolve(`sip:h${i}.example:5060`)
  t.ok(r.cacheSize <= 32 && r.cacheSize >= 30, `bounded (${r.cacheSize})`)
})
