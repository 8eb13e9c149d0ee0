import t from 'tap'
import { InvalidArgumentError } from '../src/errors.js'
import { CachedSubscriberStore } from '../src/subscriber-cache.js'
import { ConfigSubscriberStore } from '../src/subscriber-config.js'
import type { Subscriber, SubscriberStore } from '../src/subscriber-store.js'

/** Delegates to a real store and counts how many lookups reach it. */
class CountingStore implements SubscriberStore {
  calls = 0
  constructor (readonly inner: SubscriberStore) {}
  async lookup (user: string, domain: string): Promise<Subscriber | undefined> {
    this.calls++
    return await this.inner.lookup(user, domain)
  }

  async close (): Promise<void> {}
}

function setup (opts: { ttlMs?: number, maxEntries?: number } = {}): { cache: CachedSubscriberStore, counting: CountingStore, advance: (ms: number) => void } {
  let now = 1_000_000
  const counting = new CountingStore(new ConfigSubscriberStore([
    { user: 'alice', domain: 'example.test', password: 'a' },
    { user: 'bob', domain: 'example.test', password: 'b' }
  ]))
  const cache = new CachedSubscriberStore(counting, { ...opts, now: () => now })
  return { cache, counting, advance: (ms) => { now += ms } }
}

t.test('answers are reused within the TTL, found and not found', async t => {
  const { cache, counting, advance } = setup({ ttlMs: 5000 })
  t.equal((await cache.lookup('alice', 'example.test'))?.user, 'alice')
  t.equal((await cache.lookup('alice', 'EXAMPLE.test'))?.user, 'alice')
  t.equal(await cache.lookup('mallory', 'example.test'), undefined)
  t.equal(await cache.lookup('mallory', 'example.test'), undefined)
  t.equal(counting.calls, 2, 'one query per subscriber, the negative answer cached too')
  advance(4999)
  await cache.lookup('alice', 'example.test')
  t.equal(counting.calls, 2)
  advance(1)
  await cache.lookup('alice', 'example.test')
  t.equal(counting.calls, 3, 'expired after ttlMs')
})

t.test('a burst of concurrent lookups becomes one query', async t => {
  const { cache, counting } = setup()
  const all = await Promise.all(Array.from({ length: 50 }, async () => await cache.lookup('bob', 'example.test')))
  t.equal(counting.calls, 1)
  t.ok(all.every(s => s?.user === 'bob'))
})

t.test('bounded size: the oldest answer is dropped', async t => {
  const { cache, counting } = setup({ maxEntries: 2 })
  await cache.lookup('alice', 'example.test')
  await cache.lookup('bob', 'example.test')
  await cache.lookup('carol', 'example.test')
  t.equal(cache.size, 2)
  t.equal(counting.calls, 3)
  await cache.lookup('bob', 'example.test')
  t.equal(counting.calls, 3, 'bob still cached')
  await cache.lookup('alice', 'example.test')
  t.equal(counting.calls, 4, 'alice was dropped')
})

t.test('bounded size: a full cache drops its oldest sixteenth at once and keeps the newest', async t => {
  const { cache, counting } = setup({ maxEntries: 32 })
  for (let i = 0; i < 32; i++) await cache.lookup(`u${i}`, 'example.test')
  t.equal(cache.size, 32)
  await cache.lookup('u32', 'example.test')
  t.equal(cache.size, 31, 'u0 and u1 dropped, u32 added')
  const calls = counting.calls
  for (let i = 2; i <= 32; i++) await cache.lookup(`u${i}`, 'example.test')
  t.equal(counting.calls, calls, 'u2 to u32 still cached')
  await cache.lookup('u0', 'example.test')
  t.equal(counting.calls, calls + 1, 'u0 was dropped')
})

t.test('invalidate and clear', async t => {
  const { cache, counting } = setup()
  await cache.lookup('alice', 'example.test')
  cache.invalidate('alice', 'Example.test')
  await cache.lookup('alice', 'example.test')
  t.equal(counting.calls, 2)
  cache.clear()
  t.equal(cache.size, 0)
})

t.test('failures are not cached', async t => {
  let fail = true
  const flaky: SubscriberStore = {
    lookup: async () => { if (fail) throw new Error('down'); return undefined },
    close: async () => {}
  }
  const cache = new CachedSubscriberStore(flaky)
  await t.rejects(cache.lookup('alice', 'example.test'), /down/)
  fail = false
  t.equal(await cache.lookup('alice', 'example.test'), undefined)
})

t.test('options are validated', async t => {
  const inner = new ConfigSubscriberStore([])
  t.throws(() => new CachedSubscriberStore(inner, { ttlMs: -1 }), InvalidArgumentError)
  t.throws(() => new CachedSubscriberStore(inner, { maxEntries: 0 }), InvalidArgumentError)
  t.throws(() => new CachedSubscriberStore({} as never), InvalidArgumentError)
})
