// What a call leaves in memory while its transactions wait out RFC 6026's
// Timers L and M and RFC 3261's Timer J (32 s after the final responses):
// not the text of its messages. The parser's header values are slices of a
// message's decoded text, so one such value kept by a transaction key, a
// tag, a policy's closure or a cache keeps the whole header block alive.
// The calls run in a child process (fixtures/retention-child.mjs, on the
// built packages) whose heap snapshot is small and quick to search.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const child = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'retention-child.mjs')

interface Outcome {
  calls: number
  answered: number
  alive: { transactions: number, contexts: number }
  /** Per message kind, the calls whose header text the heap still held. */
  kept: { invite: number[], ok: number[], bye: number[] }
  held: { slicedKeys: number, retransmitClosures: number, branchSlotsBytes: number, kindSlots: number, heldHashes: number, branchTargets: number, completedBranches: number }
  after: { transactions: number, contexts: number }
}

t.test('finished calls keep none of their messages\' text while their transactions wait out Timers L, M and J', async t => {
  const calls = 20
  const out = JSON.parse(execFileSync(process.execPath, [child, String(calls)], { encoding: 'utf8', timeout: 60_000 })) as Outcome
  t.equal(out.answered, 2 * calls, 'each INVITE and BYE was answered 200 upstream')
  // Accepted (server and client INVITE), Completed (server BYE: Timer J; client BYE: Timer K).
  t.same(out.alive, { transactions: 4 * calls, contexts: calls }, 'the transactions and INVITE response contexts were alive')
  t.same(out.kept.invite, [], 'no INVITE header text was kept')
  t.same(out.kept.ok, [], 'no 200 OK header text was kept')
  t.same(out.kept.bye, [], 'no BYE header text was kept')
  // Bytes per call held 32 s are what the scavenger copies and promotes (~2.3 ns a byte on the route bench).
  t.equal(out.held.slicedKeys, 0, 'transaction keys and branches are flat strings, not sliced ones over a copy')
  t.equal(out.held.retransmitClosures, 0, 'no client INVITE transaction keeps its Timer A closure once Timer A stopped')
  t.ok(out.held.branchSlotsBytes > 0 && out.held.branchSlotsBytes <= 32, `a one-branch context holds one slot (${out.held.branchSlotsBytes} B)`)
  t.equal(out.held.kindSlots, 0, 'a transaction\'s kind is on its prototype, not a slot of its own')
  t.equal(out.held.heldHashes, 0, 'a context lets go of its loop hash once its final response is sent')
  t.equal(out.held.completedBranches, 0, 'a BYE\'s client transaction in Completed (Timer K) lets go of the branch and its response context')
  t.equal(out.held.branchTargets, 1, 'the INVITEs\' branches to the one media node share its forward target')
  t.same(out.after, { transactions: 0, contexts: 0 }, 'all of it ended with the timers')
})
