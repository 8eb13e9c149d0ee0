import t from 'tap'
import { InvalidArgumentError } from '../src/errors.js'
import { MemoryLocationStore } from '../src/location-memory.js'
import { locationContract } from './location-contract.js'

t.test('contract', async t => {
  locationContract(t, async () => {
    const store = new MemoryLocationStore({ sweepIntervalMs: 0 })
    return { store, cleanup: async () => await store.close() }
  })
})

t.test('sweep drops expired bindings a bounded batch at a time', async t => {
  const store = new MemoryLocationStore({ sweepIntervalMs: 0, sweepBatch: 4 })
  t.teardown(async () => await store.close())
  const base = 1_000_000_000_000
  for (let i = 0; i < 10; i++) {
    await store.update(`sip:u${i}@example.test`, {
      callId: `c${i}`,
      cseq: 1,
      changes: [{ contact: `sip:u${i}@192.0.2.1`, expires: 10 }, { contact: `sip:u${i}@192.0.2.2`, expires: i < 5 ? 10 : 100 }]
    }, base)
  }
  const later = base + 20_000
  t.equal(store.sweep(later), 8, 'one batch examines four AORs, each with two expired bindings')
  t.equal(await store.count(later), 5)
  let total = 8
  for (let i = 0; i < 5; i++) total += store.sweep(later)
  t.equal(total, 15, 'every expired binding dropped once: AORs 0-4 had two, 5-9 one')
  t.equal(store.sweep(later), 0, 'nothing left to drop')
  const page = await store.list({ limit: 100 }, later)
  t.equal(page.items.length, 5)
})

t.test('the sweep timer runs on its own and stops on close', async t => {
  let now = 1_000_000_000_000
  const store = new MemoryLocationStore({ sweepIntervalMs: 5, now: () => now })
  await store.update('sip:a@example.test', { callId: 'c', cseq: 1, changes: [{ contact: 'sip:a@192.0.2.1', expires: 1 }] }, now)
  now += 2000
  // Bounded wait for the timer: poll the store's own view, no timing assertion.
  let left = 1
  for (let i = 0; i < 200 && left > 0; i++) {
    await new Promise(resolve => setTimeout(resolve, 5))
    left = (await store.list({}, 0)).items.length
  }
  t.equal(left, 0, 'the expired AOR was swept (listing at time 0 would otherwise show it)')
  await store.close()
})

t.test('options are validated', async t => {
  t.throws(() => new MemoryLocationStore({ sweepIntervalMs: -1 }), InvalidArgumentError)
  t.throws(() => new MemoryLocationStore({ sweepBatch: 0 }), InvalidArgumentError)
})
