import t from 'tap'
import { HEADER_NAMES, H_UNKNOWN, lookupHeaderBytes, matchCommonName } from '../src/header-names.js'

/** Spellings of a name: as in the table, lower, upper, and alternating case. */
function spellings (name: string): string[] {
  let alt = ''
  for (let i = 0; i < name.length; i++) alt += i % 2 === 0 ? name[i]!.toUpperCase() : name[i]!.toLowerCase()
  return [name, name.toLowerCase(), name.toUpperCase(), alt]
}

t.test('matchCommonName agrees with lookupHeaderBytes on every name it matches', async t => {
  const names = [...HEADER_NAMES]
  for (let c = 0x61; c <= 0x7a; c++) names.push(String.fromCharCode(c))
  let matched = 0
  for (const name of names) {
    for (const spelt of spellings(name)) {
      const line = Buffer.from(spelt + ': x\r\n', 'latin1')
      const m = matchCommonName(line, 0)
      const id = lookupHeaderBytes(line, 0, spelt.length)
      if (m < 0) continue
      matched++
      t.equal(m >> 5, id, `${spelt}: same id`)
      t.not(id, H_UNKNOWN, `${spelt}: a known name`)
      t.equal(m & 31, spelt.length, `${spelt}: name length`)
    }
  }
  t.ok(matched >= 4 * 16, `the common names are matched (${matched})`)
  for (const name of ['Via', 'Call-ID', 'Content-Length', 'Max-Forwards', 'Record-Route', 'v', 'i', 'l']) {
    t.ok(matchCommonName(Buffer.from(name + ':'), 0) >= 0, `${name}: matched`)
  }
})

t.test('matchCommonName leaves every other line to the general path', async t => {
  const lines = [
    'Via :', 'Via\t:', 'Vias:', 'Vi:', 'Call-IDs:', 'Call_ID:', 'Call\rID:', 'Max-Forward:', 'Max\rForwards:',
    'Content-Lengths:', 'Content\rLength:', 'Content-Length\x1a', 'ContentLength:', 'Record\rRoute:', 'Route ', 'Fromm:',
    'To;', 'T0:', '@:', '[:', '1:', 'q:', 'g:', 'User-Agent :', 'User\rAgent:', '', ':', 'v', 'From'
  ]
  for (const text of lines) t.equal(matchCommonName(Buffer.from(text, 'latin1'), 0), -1, JSON.stringify(text))
})
