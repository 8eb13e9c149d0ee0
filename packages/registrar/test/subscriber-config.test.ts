import t from 'tap'
import { ha1 } from '../src/digest.js'
import { InvalidArgumentError } from '../src/errors.js'
import { ConfigSubscriberStore } from '../src/subscriber-config.js'

t.test('passwords are hashed at load (realm = domain by default) and not kept', async t => {
  const store = new ConfigSubscriberStore([
    { user: 'alice', domain: 'Example.TEST', password: 'wonderland' },
    { user: 'bob', domain: 'example.test', password: 'builder', enabled: false }
  ])
  t.equal(store.size, 2)
  const alice = await store.lookup('alice', 'example.test')
  t.same(alice, {
    user: 'alice',
    domain: 'example.test',
    realm: 'example.test',
    ha1Md5: ha1('alice', 'example.test', 'wonderland', 'MD5'),
    ha1Sha256: ha1('alice', 'example.test', 'wonderland', 'SHA-256'),
    enabled: true
  })
  t.equal(alice?.ha1Md5.length, 32)
  t.equal(alice?.ha1Sha256.length, 64)
  t.notMatch(JSON.stringify(alice), /wonderland/, 'no clear password in the subscriber')
  t.equal((await store.lookup('bob', 'EXAMPLE.test'))?.enabled, false, 'domain is case-insensitive, disabled kept')
  t.equal(await store.lookup('Alice', 'example.test'), undefined, 'user part is case-sensitive')
  t.equal(await store.lookup('carol', 'example.test'), undefined)
  t.equal(await store.lookup('alice', 'other.test'), undefined)
})

t.test('realmOf decides the realm of the HA1s', async t => {
  const store = new ConfigSubscriberStore([{ user: 'alice', domain: 'example.test', password: 'pw' }], () => 'sipd')
  const a = await store.lookup('alice', 'example.test')
  t.equal(a?.realm, 'sipd')
  t.equal(a?.ha1Md5, ha1('alice', 'sipd', 'pw', 'MD5'))
})

t.test('bad entries are refused with the entry named', async t => {
  const e = t.throws(() => new ConfigSubscriberStore([
    { user: 'alice', domain: 'example.test', password: 'a' },
    { user: 'alice', domain: 'EXAMPLE.test', password: 'b' }
  ])) as InvalidArgumentError
  t.equal(e.code, 'SIPD_ERR_INVALID_ARGUMENT')
  t.match(e.message, /subscribers\.users\[1\].*twice/)
  t.throws(() => new ConfigSubscriberStore([{ user: '', domain: 'x', password: 'p' }]), InvalidArgumentError)
  t.throws(() => new ConfigSubscriberStore([{ user: 'u', domain: 'x', password: '' }]), /subscribers\.users\[0\]\.password/)
  t.throws(() => new ConfigSubscriberStore([{ user: 'u', domain: 'x', password: 'p', enabled: 'yes' as never }]), /enabled/)
  t.throws(() => new ConfigSubscriberStore('alice' as never), InvalidArgumentError)
})

t.test('subscriberHa1 feeds verify and hides disabled users and foreign realms', async t => {
  const { subscriberHa1 } = await import('../src/subscriber-store.js')
  const store = new ConfigSubscriberStore([
    { user: 'alice', domain: 'example.test', password: 'pw' },
    { user: 'bob', domain: 'example.test', password: 'pw', enabled: false }
  ])
  const alice = await store.lookup('alice', 'example.test')
  t.equal(subscriberHa1(alice, 'example.test')('MD5'), ha1('alice', 'example.test', 'pw', 'MD5'))
  t.equal(subscriberHa1(alice, 'example.test')('SHA-256'), ha1('alice', 'example.test', 'pw', 'SHA-256'))
  t.equal(subscriberHa1(alice, 'other.test')('MD5'), undefined, 'HA1 of another realm')
  t.equal(subscriberHa1(await store.lookup('bob', 'example.test'), 'example.test')('MD5'), undefined, 'disabled')
  t.equal(subscriberHa1(undefined, 'example.test')('MD5'), undefined, 'unknown')
})
