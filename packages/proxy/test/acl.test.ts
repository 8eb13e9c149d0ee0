// CIDR address lists (trusted sources, media node addresses).
import t from 'tap'
import { AclError, AddressList, addressBytes } from '../src/acl.js'

t.test('IPv4 prefixes and exact addresses', async t => {
  const list = new AddressList(['127.0.0.2/32', '10.1.0.0/16', '192.0.2.128/25'])
  t.ok(list.has('127.0.0.2'))
  t.notOk(list.has('127.0.0.3'), 'a /32 is one address')
  t.ok(list.has('10.1.255.7'))
  t.notOk(list.has('10.2.0.1'))
  t.ok(list.has('192.0.2.200'), 'inside a /25')
  t.notOk(list.has('192.0.2.127'), 'just below the /25')
  t.ok(list.has('::ffff:10.1.2.3'), 'an IPv4-mapped IPv6 source matches its IPv4 prefix')
  t.notOk(list.has('not-an-address'))
})

t.test('IPv6 prefixes', async t => {
  const list = new AddressList(['2001:db8::/32', '::1'])
  t.ok(list.has('2001:db8:1::5'))
  t.ok(list.has('[2001:db8::1]'), 'brackets are accepted')
  t.notOk(list.has('2001:db9::1'))
  t.ok(list.has('::1'))
  t.notOk(list.has('127.0.0.1'), 'families never match each other')
  t.same([...addressBytes('::ffff:1.2.3.4')!], [1, 2, 3, 4])
})

t.test('an empty list and invalid entries', async t => {
  t.notOk(new AddressList([]).has('127.0.0.1'))
  t.ok(new AddressList(['0.0.0.0/0']).has('198.51.100.1'), '/0 is everything')
  t.throws(() => new AddressList(['10.0.0.0/33']), AclError)
  t.throws(() => new AddressList(['example.test']), { code: 'SIPD_ERR_ACL' })
})
