/**
 * The one contract every LocationStore meets. location-memory.test.ts and
 * location-redis.test.ts run it with the same assertions.
 */
import type { Test } from 'tap'
import { InvalidArgumentError } from '../src/errors.js'
import type { BindingChange, LocationStore, LocationUpdate } from '../src/location-store.js'

/** Makes a fresh, empty store; `cleanup` runs in the subtest's teardown. */
export type LocationStoreFactory = () => Promise<{ store: LocationStore, cleanup: () => Promise<void> }>

const AOR = 'sip:alice@example.test'
// Real wall-clock time: the Redis store also sets key expiry from it.
const BASE = Math.floor(Date.now() / 1000) * 1000

function reg (callId: string, cseq: number, changes: BindingChange[], extra: Partial<LocationUpdate> = {}): LocationUpdate {
  return { callId, cseq, changes, ...extra }
}

export function locationContract (t: Test, factory: LocationStoreFactory): void {
  const withStore = (name: string, fn: (t: Test, store: LocationStore) => Promise<void>): void => {
    t.test(name, async t => {
      const { store, cleanup } = await factory()
      t.teardown(cleanup)
      await fn(t, store)
    })
  }

  withStore('add: every field is stored and read back', async (t, store) => {
    const r = await store.update(AOR, reg('c1', 1, [
      { contact: 'sip:alice@192.0.2.1:5060', expires: 3600, q: 0.5, path: ['<sip:p1.example.test;lr>', '<sip:p2.example.test;lr>'], received: { transport: 'udp', address: '198.51.100.7', port: 40000 }, node: 'node-a', flowToken: 'f-1', flowUri: 'sip:f-1.mac@192.0.2.50:5060;transport=tcp;lr', userAgent: 'Phone/1.0' },
      { contact: 'sip:alice@192.0.2.2:5060;transport=tcp', expires: 60, q: 1, instanceId: '<urn:uuid:00000000-0000-0000-0000-000000000001>', regId: 1 }
    ]), BASE)
    t.equal(r.ok, true)
    if (!r.ok) return
    t.same(r.outcomes, ['added', 'added'])
    t.equal(r.removedAll, 0)
    t.equal(r.bindings.length, 2)
    t.same(r.bindings.map(b => b.contact), ['sip:alice@192.0.2.2:5060;transport=tcp', 'sip:alice@192.0.2.1:5060'], 'highest q first')
    const [tcp, udp] = r.bindings
    t.same(udp, {
      aor: AOR,
      key: 'u:sip:alice@192.0.2.1:5060',
      contact: 'sip:alice@192.0.2.1:5060',
      expiresAt: BASE + 3_600_000,
      q: 0.5,
      callId: 'c1',
      cseq: 1,
      path: ['<sip:p1.example.test;lr>', '<sip:p2.example.test;lr>'],
      received: { transport: 'udp', address: '198.51.100.7', port: 40000 },
      node: 'node-a',
      flowToken: 'f-1',
      flowUri: 'sip:f-1.mac@192.0.2.50:5060;transport=tcp;lr',
      userAgent: 'Phone/1.0',
      updatedAt: BASE
    })
    t.same(tcp, {
      aor: AOR,
      key: 'i:<urn:uuid:00000000-0000-0000-0000-000000000001>;reg-id=1',
      contact: 'sip:alice@192.0.2.2:5060;transport=tcp',
      instanceId: '<urn:uuid:00000000-0000-0000-0000-000000000001>',
      regId: 1,
      expiresAt: BASE + 60_000,
      q: 1,
      callId: 'c1',
      cseq: 1,
      path: [],
      updatedAt: BASE
    })
    t.ok(Object.isFrozen(udp) && Object.isFrozen(udp.path), 'bindings are frozen')
    t.same(await store.lookup(AOR, BASE + 1), r.bindings, 'lookup returns what update returned')
    t.same(await store.lookup('sip:bob@example.test', BASE), [])
    t.equal(await store.count(BASE), 1)
  })

  withStore('refresh: same Call-ID with a higher CSeq, or another Call-ID', async (t, store) => {
    await store.update(AOR, reg('c1', 1, [{ contact: 'sip:alice@192.0.2.1', expires: 60 }]), BASE)
    const r = await store.update(AOR, reg('c1', 2, [{ contact: 'sip:alice@192.0.2.1', expires: 120, userAgent: 'new' }]), BASE + 1000)
    t.equal(r.ok, true)
    if (!r.ok) return
    t.same(r.outcomes, ['refreshed'])
    t.equal(r.bindings.length, 1)
    t.equal(r.bindings[0].expiresAt, BASE + 1000 + 120_000)
    t.equal(r.bindings[0].cseq, 2)
    t.equal(r.bindings[0].userAgent, 'new')
    t.equal(r.bindings[0].updatedAt, BASE + 1000)
    // §10.3 step 7: a different Call-ID updates whatever its CSeq.
    const other = await store.update(AOR, reg('c2', 1, [{ contact: 'sip:alice@192.0.2.1', expires: 30 }]), BASE + 2000)
    t.equal(other.ok, true)
    if (!other.ok) return
    t.same(other.outcomes, ['refreshed'])
    t.equal(other.bindings[0].callId, 'c2')
    t.equal(other.bindings[0].expiresAt, BASE + 2000 + 30_000)
  })

  withStore('remove one: expires 0', async (t, store) => {
    await store.update(AOR, reg('c1', 1, [{ contact: 'sip:alice@192.0.2.1', expires: 60 }, { contact: 'sip:alice@192.0.2.2', expires: 60 }]), BASE)
    const r = await store.update(AOR, reg('c1', 2, [{ contact: 'sip:alice@192.0.2.1', expires: 0 }, { contact: 'sip:alice@192.0.2.9', expires: 0 }]), BASE + 10)
    t.equal(r.ok, true)
    if (!r.ok) return
    t.same(r.outcomes, ['removed', 'absent'])
    t.same(r.bindings.map(b => b.contact), ['sip:alice@192.0.2.2'])
    t.same((await store.lookup(AOR, BASE + 20)).map(b => b.contact), ['sip:alice@192.0.2.2'])
    const last = await store.update(AOR, reg('c1', 3, [{ contact: 'sip:alice@192.0.2.2', expires: 0 }]), BASE + 30)
    t.same(last.bindings, [])
    t.equal(await store.count(BASE + 40), 0, 'an AOR without bindings is not counted')
  })

  withStore('remove all: Contact: * (§10.3 step 6)', async (t, store) => {
    await store.update(AOR, reg('c1', 5, [{ contact: 'sip:alice@192.0.2.1', expires: 60 }]), BASE)
    await store.update(AOR, reg('c2', 1, [{ contact: 'sip:alice@192.0.2.2', expires: 60 }]), BASE)
    const same = await store.update(AOR, reg('c1', 5, [], { removeAll: true }), BASE + 10)
    t.same(same.ok ? 'ok' : same.error, 'out-of-order', 'same Call-ID, CSeq not higher: aborted')
    if (!same.ok && same.error === 'out-of-order') t.equal(same.index, -1)
    t.equal((await store.lookup(AOR, BASE + 10)).length, 2, 'nothing removed')
    const r = await store.update(AOR, reg('c1', 6, [], { removeAll: true }), BASE + 20)
    t.equal(r.ok, true)
    if (!r.ok) return
    t.equal(r.removedAll, 2)
    t.same(r.outcomes, [])
    t.same(r.bindings, [])
    t.same(await store.lookup(AOR, BASE + 30), [])
    t.equal(await store.count(BASE + 30), 0)
    const again = await store.update(AOR, reg('c9', 1, [], { removeAll: true }), BASE + 40)
    t.same(again.ok && again.removedAll, 0, 'removing all of nothing is fine')
  })

  withStore('expiry is enforced on read, and expired bindings do not count', async (t, store) => {
    await store.update(AOR, reg('c1', 1, [{ contact: 'sip:alice@192.0.2.1', expires: 60 }]), BASE)
    await store.update('sip:bob@example.test', reg('b1', 1, [{ contact: 'sip:bob@192.0.2.5', expires: 3600 }]), BASE)
    t.equal((await store.lookup(AOR, BASE + 59_999)).length, 1)
    t.equal(await store.count(BASE + 59_999), 2)
    t.same(await store.lookup(AOR, BASE + 60_000), [], 'gone at expiresAt')
    t.equal(await store.count(BASE + 60_000), 1)
    t.equal(await store.remove(AOR, BASE + 60_000), 0, 'nothing live to remove')
    // An expired binding with the same Call-ID and a higher CSeq is not an
    // obstacle (it does not exist), and does not take a contact slot.
    await store.update(AOR, reg('c1', 9, [{ contact: 'sip:alice@192.0.2.1', expires: 60 }]), BASE)
    const r = await store.update(AOR, reg('c1', 2, [{ contact: 'sip:alice@192.0.2.1', expires: 60 }, { contact: 'sip:alice@192.0.2.3', expires: 60 }], { maxContacts: 2 }), BASE + 61_000)
    t.equal(r.ok, true)
    if (!r.ok) return
    t.same(r.outcomes, ['added', 'added'])
    t.equal(r.bindings.length, 2)
  })

  withStore('CSeq rule: same Call-ID needs a higher CSeq; the whole request fails otherwise', async (t, store) => {
    await store.update(AOR, reg('c1', 10, [{ contact: 'sip:alice@192.0.2.1', expires: 60 }]), BASE)
    for (const cseq of [10, 9]) {
      const r = await store.update(AOR, reg('c1', cseq, [
        { contact: 'sip:alice@192.0.2.2', expires: 60 },
        { contact: 'sip:alice@192.0.2.1', expires: 3600 }
      ]), BASE + 10)
      t.equal(r.ok, false, `CSeq ${cseq}`)
      if (r.ok || r.error !== 'out-of-order') continue
      t.equal(r.index, 1, 'names the offending contact')
      t.same(r.bindings.map(b => [b.contact, b.expiresAt]), [['sip:alice@192.0.2.1', BASE + 60_000]], 'unchanged')
    }
    t.same((await store.lookup(AOR, BASE + 20)).map(b => b.contact), ['sip:alice@192.0.2.1'], 'the other contact was not added either')
    const removeOld = await store.update(AOR, reg('c1', 10, [{ contact: 'sip:alice@192.0.2.1', expires: 0 }]), BASE + 30)
    t.same(removeOld.ok ? 'ok' : removeOld.error, 'out-of-order', 'a removal obeys the rule too')
    const ok = await store.update(AOR, reg('c1', 11, [{ contact: 'sip:alice@192.0.2.2', expires: 60 }, { contact: 'sip:alice@192.0.2.1', expires: 3600 }]), BASE + 40)
    t.same(ok.ok && ok.outcomes, ['added', 'refreshed'])
    // Two Contacts of one REGISTER naming one binding: the last one wins.
    const dup = await store.update(AOR, reg('c1', 12, [{ contact: 'sip:alice@192.0.2.2', expires: 60 }, { contact: 'sip:alice@192.0.2.2', expires: 90 }]), BASE + 50)
    t.same(dup.ok && dup.outcomes, ['refreshed', 'refreshed'])
    t.equal((await store.lookup(AOR, BASE + 50)).find(b => b.contact === 'sip:alice@192.0.2.2')?.expiresAt, BASE + 50 + 90_000)
  })

  withStore('max contacts per AOR: refused whole when the AOR would grow past it', async (t, store) => {
    const two = await store.update(AOR, reg('c1', 1, [{ contact: 'sip:a@192.0.2.1', expires: 60 }, { contact: 'sip:a@192.0.2.2', expires: 60 }], { maxContacts: 2 }), BASE)
    t.equal(two.ok, true)
    const three = await store.update(AOR, reg('c1', 2, [{ contact: 'sip:a@192.0.2.1', expires: 120 }, { contact: 'sip:a@192.0.2.3', expires: 60 }], { maxContacts: 2 }), BASE + 10)
    t.equal(three.ok, false)
    if (!three.ok && three.error === 'too-many-contacts') {
      t.equal(three.limit, 2)
      t.equal(three.bindings.length, 2)
    } else t.fail('expected too-many-contacts')
    const now = await store.lookup(AOR, BASE + 20)
    t.same(now.map(b => b.contact).sort(), ['sip:a@192.0.2.1', 'sip:a@192.0.2.2'])
    t.same(now.map(b => b.expiresAt), [BASE + 60_000, BASE + 60_000], 'the refresh in the refused request was not applied')
    const swap = await store.update(AOR, reg('c1', 3, [{ contact: 'sip:a@192.0.2.2', expires: 0 }, { contact: 'sip:a@192.0.2.3', expires: 60 }], { maxContacts: 2 }), BASE + 30)
    t.same(swap.ok && swap.outcomes, ['removed', 'added'], 'replacing within the limit is fine')
    const lowered = await store.update(AOR, reg('c1', 4, [{ contact: 'sip:a@192.0.2.3', expires: 60 }], { maxContacts: 1 }), BASE + 40)
    t.same(lowered.ok && lowered.outcomes, ['refreshed'], 'a refresh passes even above a lowered limit')
    const def = await store.update('sip:many@example.test', reg('m', 1, Array.from({ length: 11 }, (_, i) => ({ contact: `sip:m@192.0.2.${i + 1}`, expires: 60 }))), BASE)
    t.same(!def.ok && def.error === 'too-many-contacts' && def.limit, 10, 'default limit is 10')
  })

  withStore('RFC 5626 flows: instance + reg-id kept apart, replaced per flow', async (t, store) => {
    const inst = '<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>'
    const r1 = await store.update(AOR, reg('c1', 1, [
      { contact: 'sip:alice@192.0.2.1:5060;ob', expires: 3600, instanceId: inst, regId: 1, node: 'a' },
      { contact: 'sip:alice@192.0.2.1:5062;ob', expires: 3600, instanceId: inst, regId: 2, node: 'b' }
    ]), BASE)
    t.same(r1.ok && r1.outcomes, ['added', 'added'], 'two flows of one instance')
    // The phone re-registers flow 1 from a new address with a new Call-ID.
    const r2 = await store.update(AOR, reg('c2', 1, [{ contact: 'sip:alice@203.0.113.9:7000;ob', expires: 3600, instanceId: inst, regId: 1, node: 'c' }]), BASE + 10)
    t.same(r2.ok && r2.outcomes, ['refreshed'], 'same instance and reg-id: the flow is replaced')
    const all = await store.lookup(AOR, BASE + 20)
    t.same(all.map(b => [b.regId, b.contact, b.node]).sort(), [[1, 'sip:alice@203.0.113.9:7000;ob', 'c'], [2, 'sip:alice@192.0.2.1:5062;ob', 'b']])
    // A binding without reg-id for the same instance is yet another binding.
    const r3 = await store.update(AOR, reg('c3', 1, [{ contact: 'sip:alice@192.0.2.7', expires: 60, instanceId: inst }]), BASE + 30)
    t.same(r3.ok && r3.outcomes, ['added'])
    const r4 = await store.update(AOR, reg('c3', 2, [{ contact: 'sip:alice@192.0.2.8', expires: 60, instanceId: inst }]), BASE + 40)
    t.same(r4.ok && r4.outcomes, ['refreshed'], 'instance alone names the binding')
    t.equal((await store.lookup(AOR, BASE + 50)).length, 3)
    // Without instance, contacts equal per §19.1.4 are one binding.
    const r5 = await store.update('sip:bob@example.test', reg('b', 1, [{ contact: 'sip:bob@Host.Example;Transport=TCP;lr', expires: 60 }]), BASE)
    const r6 = await store.update('sip:bob@example.test', reg('b', 2, [{ contact: 'SIP:bob@host.example;lr;transport=tcp', expires: 60 }, { contact: 'sip:BOB@host.example;lr;transport=tcp', expires: 60 }]), BASE + 10)
    t.same(r5.ok && r5.outcomes, ['added'])
    t.same(r6.ok && r6.outcomes, ['refreshed', 'added'], 'host, scheme and parameters are case- and order-insensitive; the user part is not')
  })

  withStore('list pages through every live AOR exactly once', async (t, store) => {
    const aors = Array.from({ length: 23 }, (_, i) => `sip:user${String(i).padStart(2, '0')}@example.test`)
    for (const aor of aors) await store.update(aor, reg('c', 1, [{ contact: `sip:${aor.slice(4)}`, expires: 3600 }]), BASE)
    await store.update('sip:gone@example.test', reg('g', 1, [{ contact: 'sip:gone@192.0.2.1', expires: 10 }]), BASE)
    await store.update('sip:removed@example.test', reg('r', 1, [{ contact: 'sip:removed@192.0.2.1', expires: 3600 }]), BASE)
    t.equal(await store.remove('sip:removed@example.test', BASE), 1)
    const seen: string[] = []
    let cursor: string | undefined
    let pages = 0
    do {
      const page = await store.list({ cursor, limit: 5 }, BASE + 20_000)
      t.ok(page.items.length <= 5, 'page within limit')
      for (const it of page.items) {
        t.equal(it.bindings.length, 1)
        t.equal(it.bindings[0].aor, it.aor)
        seen.push(it.aor)
      }
      cursor = page.cursor
      pages++
    } while (cursor !== undefined && pages < 20)
    t.same(seen, aors, 'all live AORs, ascending, none twice, expired and removed ones left out')
    t.ok(pages >= 5 && pages <= 6, `paged (${pages} pages)`)
    const whole = await store.list({}, BASE + 20_000)
    t.equal(whole.items.length, 23)
    t.equal(whole.cursor, undefined)
    t.equal(await store.count(BASE + 20_000), 23)
    await t.rejects(store.list({ limit: 0 }), InvalidArgumentError)
  })

  withStore('remove(aor) drops every binding of the AOR', async (t, store) => {
    await store.update(AOR, reg('c1', 1, [{ contact: 'sip:a@192.0.2.1', expires: 60 }, { contact: 'sip:a@192.0.2.2', expires: 60 }]), BASE)
    await store.update('sip:bob@example.test', reg('b', 1, [{ contact: 'sip:b@192.0.2.3', expires: 60 }]), BASE)
    t.equal(await store.remove(AOR, BASE + 1), 2)
    t.same(await store.lookup(AOR, BASE + 1), [])
    t.equal(await store.remove(AOR, BASE + 1), 0)
    t.equal(await store.count(BASE + 1), 1)
    t.equal((await store.lookup('sip:bob@example.test', BASE + 1)).length, 1, 'other AORs untouched')
  })

  withStore('concurrent updates of one AOR lose no binding', async (t, store) => {
    const n = 40
    const results = await Promise.all(Array.from({ length: n }, async (_, i) =>
      await store.update(AOR, reg(`call-${i}`, 1, [{ contact: `sip:alice@192.0.2.${i + 1}:5060`, expires: 600 }], { maxContacts: 100 }), BASE + i)))
    t.ok(results.every(r => r.ok && r.outcomes[0] === 'added'))
    const all = await store.lookup(AOR, BASE + n)
    t.equal(all.length, n)
    t.equal(new Set(all.map(b => b.contact)).size, n)
    // Concurrent requests under a limit: exactly the limit gets in.
    const capped = await Promise.all(Array.from({ length: 12 }, async (_, i) =>
      await store.update('sip:capped@example.test', reg(`cap-${i}`, 1, [{ contact: `sip:c@192.0.2.${i + 1}`, expires: 600 }], { maxContacts: 5 }), BASE)))
    t.equal(capped.filter(r => r.ok).length, 5)
    t.equal((await store.lookup('sip:capped@example.test', BASE)).length, 5)
  })

  withStore('malformed updates are refused before touching the store', async (t, store) => {
    const bad = async (aor: string, u: unknown, msg: string): Promise<void> => {
      await t.rejects(store.update(aor, u as LocationUpdate, BASE), InvalidArgumentError, msg)
    }
    await bad('', reg('c', 1, []), 'empty AOR')
    await bad(AOR, reg('', 1, []), 'empty Call-ID')
    await bad(AOR, reg('c', -1, []), 'negative CSeq')
    await bad(AOR, reg('c', 2 ** 31, []), 'CSeq too large')
    await bad(AOR, reg('c', 1, [{ contact: 'sip:a@b', expires: 60 }], { removeAll: true }), 'removeAll with contacts')
    await bad(AOR, reg('c', 1, [{ contact: '', expires: 60 }]), 'empty contact')
    await bad(AOR, reg('c', 1, [{ contact: 'sip:a@b', expires: -1 }]), 'negative expires')
    await bad(AOR, reg('c', 1, [{ contact: 'sip:a@b', expires: 1.5 }]), 'fractional expires')
    await bad(AOR, reg('c', 1, [{ contact: 'sip:a@b', expires: 60, q: 2 }]), 'q above 1')
    await bad(AOR, reg('c', 1, [{ contact: 'sip:a@b', expires: 60, regId: 1 }]), 'reg-id without instance')
    await bad(AOR, reg('c', 1, [{ contact: 'sip:a@b', expires: 60, received: { transport: 'udp', address: 'x', port: 70000 } }]), 'bad port')
    await bad(AOR, reg('c', 1, [], { maxContacts: 0 }), 'zero limit')
    // Written back into the 200's Contact and Route sets: the builder refuses CR/LF (found by fuzzing).
    await bad(AOR, reg('c', 1, [{ contact: 'sip:a@b', expires: 60, instanceId: '<urn:uuid:1\rx>' }]), 'CR in the instance')
    await bad(AOR, reg('c', 1, [{ contact: 'sip:a@b\r', expires: 60 }]), 'CR in the contact')
    await bad(AOR, reg('c', 1, [{ contact: 'sip:a@b', expires: 60, path: ['<sip:p@h;lr>\n'] }]), 'LF in a Path')
    await t.rejects(store.lookup(AOR, Number.NaN), InvalidArgumentError, 'bad now')
    t.same(await store.lookup(AOR, BASE), [], 'nothing was written')
  })
}
