// ownString: a copy equal to its input whatever the text (one-byte text goes
// through bytes, other text through a flattened slice).
import t from 'tap'
import { ownString } from '../src/owned.js'

t.test('ownString returns text equal to its input', async t => {
  const cases = [
    '', 'a', 'z9hG4bK', 'twelve chars', 'thirteen char', 'z9hG4bK-sipd-0123456789abcdef.x1y2z3',
    'é latin-1 only: ÿ and ü, long enough', 'beyond one byte: → ☎ and more', '😀 a surrogate pair, long enough',
    'x'.repeat(255), 'x'.repeat(256), 'x'.repeat(257), 'é'.repeat(300), '\u0100'.repeat(20)
  ]
  for (const s of cases) {
    // A slice of a larger text, as the parser hands values out.
    const sliced = ('<<' + s + '>>').slice(2, 2 + s.length)
    t.equal(ownString(sliced), s, JSON.stringify(s.slice(0, 20)) + ` (${s.length})`)
  }
})
