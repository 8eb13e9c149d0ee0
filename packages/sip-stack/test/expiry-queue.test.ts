import t from 'tap'
import { FakeClock } from '../src/clock.js'
import { ExpiryQueue } from '../src/expiry-queue.js'

class Item {
  ended = false
  expiredAt = -1
  constructor (readonly clock: FakeClock, readonly log: number[], readonly id: number) {}
  expire (): boolean {
    if (this.ended) return false
    this.ended = true
    this.expiredAt = this.clock.now()
    this.log.push(this.id)
    return true
  }
}

t.test('items expire in order, never early, at most the batch late; the ring grows past its first size', async t => {
  const clock = new FakeClock()
  const q = new ExpiryQueue<Item>(clock, 32_000)
  const log: number[] = []
  const items: Item[] = []
  // 1,000 items 7 ms apart: more than the initial ring, and many per 100 ms batch.
  for (let i = 0; i < 1000; i++) {
    const it = new Item(clock, log, i)
    items.push(it)
    q.push(it)
    clock.advance(7)
  }
  t.equal(q.size, 1000)
  clock.advance(40_000)
  t.same(log, items.map(it => it.id), 'in the order pushed')
  for (const it of items) {
    const due = it.id * 7 + 32_000
    if (it.expiredAt < due || it.expiredAt > due + 100) t.fail(`item ${it.id} expired at ${it.expiredAt}, due ${due}`)
  }
  t.equal(q.size, 0)
  t.equal(clock.pending, 0)
})

t.test('forget: once only ended items wait, the queue empties and its timer stops', async t => {
  const clock = new FakeClock()
  const q = new ExpiryQueue<Item>(clock, 1000)
  const log: number[] = []
  const a = new Item(clock, log, 1)
  const b = new Item(clock, log, 2)
  q.push(a)
  q.push(b)
  a.ended = true
  q.forget()
  t.equal(clock.pending, 1)
  clock.advance(1000)
  t.same(log, [2])
  t.equal(clock.pending, 0)
  const c = new Item(clock, log, 3)
  q.push(c)
  c.ended = true
  q.forget()
  t.equal(q.size, 0)
  t.equal(clock.pending, 0)
  // Counts are right after a mix of ended and live items at expiry.
  const d = new Item(clock, log, 4)
  const e = new Item(clock, log, 5)
  q.push(d)
  q.push(e)
  d.ended = true
  q.forget()
  clock.advance(1000)
  t.same(log, [2, 5])
  const f = new Item(clock, log, 6)
  q.push(f)
  t.equal(clock.pending, 1, 'a live item after the mix keeps its timer')
  clock.advance(1000)
  t.same(log, [2, 5, 6])
})

t.test('an item that throws does not stop the others; a push during expiry is served', async t => {
  const clock = new FakeClock()
  const q = new ExpiryQueue<{ expire(): boolean }>(clock, 500)
  const log: string[] = []
  q.push({ expire: () => { throw new Error('boom') } })
  q.push({ expire: () => { log.push('b'); q.push({ expire: () => { log.push('c@' + clock.now()); return true } }); return true } })
  clock.advance(500)
  t.same(log, ['b'])
  clock.advance(500)
  t.same(log, ['b', 'c@1000'])
  t.equal(clock.pending, 0)
})
