// A small, strict XML parser for checking the documents we send FreeSWITCH:
// elements, attributes, self-closing tags, the five predefined entities and
// numeric references. It rejects what a real parser (FreeSWITCH's ezxml)
// would choke on: a raw '<' or '&' in a value, mismatched tags, duplicate
// attributes, trailing content.

export interface XmlElement {
  name: string
  attrs: Record<string, string>
  children: XmlElement[]
  text: string
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }

function decode (raw: string, at: number): string {
  let out = ''
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i] as string
    if (c === '<') throw new Error(`raw '<' in a value at ${at + i}`)
    if (c !== '&') {
      out += c
      continue
    }
    const end = raw.indexOf(';', i)
    if (end === -1) throw new Error(`unterminated entity at ${at + i}`)
    const name = raw.slice(i + 1, end)
    if (name.startsWith('#x')) out += String.fromCodePoint(parseInt(name.slice(2), 16))
    else if (name.startsWith('#')) out += String.fromCodePoint(parseInt(name.slice(1), 10))
    else if (ENTITIES[name] !== undefined) out += ENTITIES[name]
    else throw new Error(`unknown entity &${name}; at ${at + i}`)
    i = end
  }
  return out
}

function isNameChar (c: string | undefined): boolean {
  return c !== undefined && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c === '-' || c === '_' || c === ':' || c === '.')
}

export function parseXml (text: string): XmlElement {
  let pos = 0
  const skipSpace = (): void => { while (pos < text.length && ' \t\r\n'.includes(text[pos] as string)) pos++ }
  const expect = (s: string): void => {
    if (!text.startsWith(s, pos)) throw new Error(`expected ${JSON.stringify(s)} at ${pos}, found ${JSON.stringify(text.slice(pos, pos + 20))}`)
    pos += s.length
  }
  const readName = (): string => {
    const start = pos
    while (isNameChar(text[pos])) pos++
    if (pos === start) throw new Error(`expected a name at ${pos}`)
    return text.slice(start, pos)
  }

  skipSpace()
  if (text.startsWith('<?xml', pos)) {
    const end = text.indexOf('?>', pos)
    if (end === -1) throw new Error('unterminated XML declaration')
    pos = end + 2
    skipSpace()
  }

  const element = (): XmlElement => {
    expect('<')
    const name = readName()
    const attrs: Record<string, string> = {}
    for (;;) {
      const before = pos
      skipSpace()
      if (text.startsWith('/>', pos)) {
        pos += 2
        return { name, attrs, children: [], text: '' }
      }
      if (text[pos] === '>') {
        pos++
        break
      }
      if (pos === before) throw new Error(`expected whitespace before an attribute at ${pos}`)
      const attr = readName()
      if (attr in attrs) throw new Error(`duplicate attribute ${attr} at ${pos}`)
      skipSpace()
      expect('=')
      skipSpace()
      const quote = text[pos]
      if (quote !== '"' && quote !== "'") throw new Error(`unquoted attribute ${attr} at ${pos}`)
      const end = text.indexOf(quote, pos + 1)
      if (end === -1) throw new Error(`unterminated attribute ${attr}`)
      attrs[attr] = decode(text.slice(pos + 1, end), pos + 1)
      pos = end + 1
    }
    const children: XmlElement[] = []
    let content = ''
    for (;;) {
      if (pos >= text.length) throw new Error(`<${name}> not closed`)
      if (text.startsWith('</', pos)) {
        pos += 2
        const closing = readName()
        if (closing !== name) throw new Error(`</${closing}> closes <${name}> at ${pos}`)
        skipSpace()
        expect('>')
        return { name, attrs, children, text: content.trim() }
      }
      if (text.startsWith('<!--', pos)) {
        const end = text.indexOf('-->', pos)
        if (end === -1) throw new Error('unterminated comment')
        pos = end + 3
        continue
      }
      if (text[pos] === '<') {
        children.push(element())
        continue
      }
      const next = text.indexOf('<', pos)
      const end = next === -1 ? text.length : next
      content += decode(text.slice(pos, end), pos)
      pos = end
    }
  }

  const root = element()
  skipSpace()
  if (pos !== text.length) throw new Error(`content after the root element at ${pos}`)
  return root
}

/** Children named `name`. */
export function kids (el: XmlElement | undefined, name: string): XmlElement[] {
  return el === undefined ? [] : el.children.filter((c) => c.name === name)
}

/** The only child named `name`, or undefined if there is not exactly one. */
export function only (el: XmlElement | undefined, name: string): XmlElement | undefined {
  const found = kids(el, name)
  return found.length === 1 ? found[0] : undefined
}
