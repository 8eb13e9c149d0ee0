import t from 'tap'
import fc from 'fast-check'
import { readFileSync } from 'node:fs'
import type { SipUri } from '../src/types.js'
import { SipParseError } from '../src/errors.js'
import {
  formatUri, hostTypeOf, isValidHost, isValidIPv4, isValidIPv6, parseUri, unescapePercent, uriEquals
} from '../src/uri.js'

type Test = typeof t

interface Expected {
  scheme: string
  user?: string
  password?: string
  host: string
  hostType: SipUri['hostType']
  port?: number
  params?: Array<[string, string | null]>
  headers?: Array<[string, string]>
}

/** Parse `text` and assert every field of the result. */
function check (t: Test, text: string, want: Expected): SipUri {
  const u = parseUri(text)
  t.equal(u.scheme, want.scheme, `${text}: scheme`)
  t.equal(u.user, want.user, `${text}: user`)
  t.equal(u.password, want.password, `${text}: password`)
  t.equal(u.host, want.host, `${text}: host`)
  t.equal(u.hostType, want.hostType, `${text}: hostType`)
  t.equal(u.port, want.port, `${text}: port`)
  t.same([...u.params], want.params ?? [], `${text}: params`)
  t.same([...u.headers], want.headers ?? [], `${text}: headers`)
  t.equal(u.raw, text, `${text}: raw`)
  return u
}

function parseError (text: string): SipParseError {
  try {
    parseUri(text)
  } catch (err) {
    if (err instanceof SipParseError) return err
    throw err
  }
  throw new Error(`${JSON.stringify(text)} parsed, expected a SipParseError`)
}

/** Assert that `text` is rejected with exactly this message at this offset. */
function rejects (t: Test, text: string, offset: number, message: string): void {
  const err = parseError(text)
  t.equal(err.message, message, `${JSON.stringify(text)}: message`)
  t.equal(err.offset, offset, `${JSON.stringify(text)}: offset`)
  t.equal(err.code, 'SIP_ERR_BAD_URI', `${JSON.stringify(text)}: code`)
}

// Torture fixtures, read as bytes.
function fixture (name: string): string {
  return readFileSync(new URL(`./fixtures/torture/${name}.dat`, import.meta.url)).toString('latin1')
}

/** The request-URI of a fixture: the second element of its request line. */
function requestUri (name: string): string {
  const text = fixture(name)
  const line = text.slice(0, text.indexOf('\r\n'))
  return line.split(' ').filter((part) => part !== '')[1] as string
}

/** `uri` after asserting that the fixture holds it byte for byte. */
function inFixture (t: Test, name: string, uri: string): string {
  t.ok(fixture(name).includes(uri), `${name}.dat holds ${uri}`)
  return uri
}

/** The URI between `<` and `>` on the first line of a fixture starting with `prefix`. */
function bracketed (name: string, prefix: string): string {
  const line = fixture(name).split('\r\n').find((l) => l.startsWith(prefix)) as string
  return line.slice(line.indexOf('<') + 1, line.indexOf('>'))
}

t.test('sip and sips grammar branches', async (t) => {
  check(t, 'sip:example.com', { scheme: 'sip', host: 'example.com', hostType: 'name' })
  check(t, 'sips:alice@example.com', { scheme: 'sips', user: 'alice', host: 'example.com', hostType: 'name' })
  check(t, 'SIP:Alice@Example.COM', { scheme: 'sip', user: 'Alice', host: 'example.com', hostType: 'name' })
  check(t, 'SiPs:a@b', { scheme: 'sips', user: 'a', host: 'b', hostType: 'name' })
  check(t, 'sip:alice:secret@example.com', {
    scheme: 'sip', user: 'alice', password: 'secret', host: 'example.com', hostType: 'name'
  })
  check(t, 'sip:alice:@example.com', { scheme: 'sip', user: 'alice', password: '', host: 'example.com', hostType: 'name' })
  check(t, 'sip:alice:p%40ss&=+$,@h', { scheme: 'sip', user: 'alice', password: 'p@ss&=+$,', host: 'h', hostType: 'name' })
  check(t, "sip:-_.!~*'()&=+$,;?/#@h", { scheme: 'sip', user: "-_.!~*'()&=+$,;?/#", host: 'h', hostType: 'name' })
  check(t, 'sip:*72#@pbx.example.com', { scheme: 'sip', user: '*72#', host: 'pbx.example.com', hostType: 'name' })
  check(t, 'sip:%41lice@h', { scheme: 'sip', user: 'Alice', host: 'h', hostType: 'name' })
  // Hosts (RFC 3261 §25.1 hostname / IPv4address / IPv6reference).
  check(t, 'sip:host', { scheme: 'sip', host: 'host', hostType: 'name' })
  check(t, 'sip:a-b.c-d.example', { scheme: 'sip', host: 'a-b.c-d.example', hostType: 'name' })
  check(t, 'sip:1host.9x.com', { scheme: 'sip', host: '1host.9x.com', hostType: 'name' })
  check(t, 'sip:example.com.', { scheme: 'sip', host: 'example.com.', hostType: 'name' })
  check(t, 'sip:192.0.2.4', { scheme: 'sip', host: '192.0.2.4', hostType: 'ipv4' })
  check(t, 'sip:0.0.0.0:0', { scheme: 'sip', host: '0.0.0.0', hostType: 'ipv4', port: 0 })
  check(t, 'sip:255.255.255.255:65535', { scheme: 'sip', host: '255.255.255.255', hostType: 'ipv4', port: 65535 })
  check(t, 'sip:[::1]', { scheme: 'sip', host: '[::1]', hostType: 'ipv6' })
  check(t, 'sip:[::]:5060', { scheme: 'sip', host: '[::]', hostType: 'ipv6', port: 5060 })
  check(t, 'sip:u@[FE80::A:b]:7', { scheme: 'sip', user: 'u', host: '[fe80::a:b]', hostType: 'ipv6', port: 7 })
  check(t, 'sip:[1:2:3:4:5:6:7:8]', { scheme: 'sip', host: '[1:2:3:4:5:6:7:8]', hostType: 'ipv6' })
  check(t, 'sip:[1:2:3:4:5:6:1.2.3.4]', { scheme: 'sip', host: '[1:2:3:4:5:6:1.2.3.4]', hostType: 'ipv6' })
  // Ports.
  check(t, 'sip:h:5060', { scheme: 'sip', host: 'h', hostType: 'name', port: 5060 })
  check(t, 'sip:h:005060', { scheme: 'sip', host: 'h', hostType: 'name', port: 5060 })
  // Parameters.
  check(t, 'sip:h;lr', { scheme: 'sip', host: 'h', hostType: 'name', params: [['lr', null]] })
  check(t, 'sip:h:5;Transport=TCP;LR;maddr=239.255.255.1;ttl=15;user=phone;method=INVITE', {
    scheme: 'sip',
    host: 'h',
    hostType: 'name',
    port: 5,
    params: [['transport', 'TCP'], ['lr', null], ['maddr', '239.255.255.1'], ['ttl', '15'], ['user', 'phone'], ['method', 'INVITE']]
  })
  check(t, 'sip:h;x=[::1]/:&+$-_.!~*\'()', {
    scheme: 'sip', host: 'h', hostType: 'name', params: [['x', "[::1]/:&+$-_.!~*'()"]]
  })
  check(t, 'sip:h;N%41me=v%3Bx', { scheme: 'sip', host: 'h', hostType: 'name', params: [['name', 'v;x']] })
  check(t, 'sip:h;x=1;X=2', { scheme: 'sip', host: 'h', hostType: 'name', params: [['x', '1']] })
  // Headers.
  check(t, 'sip:h?subject=hi', { scheme: 'sip', host: 'h', hostType: 'name', headers: [['subject', 'hi']] })
  check(t, 'sip:h;lr?a=1&B=&c=x%20y', {
    scheme: 'sip', host: 'h', hostType: 'name', params: [['lr', null]], headers: [['a', '1'], ['B', ''], ['c', 'x y']]
  })
  check(t, 'sip:h?x=[]/?:+$', { scheme: 'sip', host: 'h', hostType: 'name', headers: [['x', '[]/?:+$']] })
  check(t, 'sip:h?Route=%3Csip:a%3E&Route=%3Csip:b%3E', {
    scheme: 'sip', host: 'h', hostType: 'name', headers: [['Route', '<sip:a>,<sip:b>']]
  })
  // "@" ends the userinfo, whatever precedes it (user-unreserved holds ";" "?" "=").
  check(t, 'sip:h?x=a@b', { scheme: 'sip', user: 'h?x=a', host: 'b', hostType: 'name' })
})

t.test('tel URIs (RFC 3966)', async (t) => {
  check(t, 'tel:+1-201-555-0123', { scheme: 'tel', user: '+1-201-555-0123', host: '', hostType: 'name' })
  check(t, 'TEL:+1-201-555-0123;phone-context=example.com', {
    scheme: 'tel', user: '+1-201-555-0123', host: '', hostType: 'name', params: [['phone-context', 'example.com']]
  })
  check(t, 'tel:7042;phone-context=+1-201-555', {
    scheme: 'tel', user: '7042', host: '', hostType: 'name', params: [['phone-context', '+1-201-555']]
  })
  check(t, 'tel:*69#;phone-context=example.com', {
    scheme: 'tel', user: '*69#', host: '', hostType: 'name', params: [['phone-context', 'example.com']]
  })
  check(t, 'tel:+(1)201.555;EXT=12;isub=a/b?c@d;Foo-Bar=%41b', {
    scheme: 'tel', user: '+(1)201.555', host: '', hostType: 'name', params: [['ext', '12'], ['isub', 'a/b?c@d'], ['foo-bar', 'Ab']]
  })
  check(t, 'tel:+1;flag', { scheme: 'tel', user: '+1', host: '', hostType: 'name', params: [['flag', null]] })
})

t.test('other absoluteURI schemes keep scheme and raw text', async (t) => {
  check(t, 'mailto:alice@example.com', { scheme: 'mailto', host: '', hostType: 'name' })
  check(t, 'URN:service:sos', { scheme: 'urn', host: '', hostType: 'name' })
  check(t, 'http://[2001:db8::1]:8080/a%20b?x=1', { scheme: 'http', host: '', hostType: 'name' })
})

t.test('request-URIs of the RFC 4475 / RFC 5118 torture fixtures', async (t) => {
  check(t, requestUri('escruri'), {
    scheme: 'sip', user: 'user', host: 'example.com', hostType: 'name', headers: [['Route', '<sip:example.com>']]
  })
  // RFC 4475 §3.1.1.1: the user is "sips:user@example.com", the host example.net.
  check(t, requestUri('esc01'), { scheme: 'sip', user: 'sips:user@example.com', host: 'example.net', hostType: 'name' })
  check(t, requestUri('intmeth'), {
    scheme: 'sip',
    user: "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*",
    password: "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)",
    host: 'example.com',
    hostType: 'name'
  })
  // RFC 4475 §3.1.1.11: the user part is "user;par=u@example.net", not a parameter.
  check(t, requestUri('semiuri'), { scheme: 'sip', user: 'user;par=u@example.net', host: 'example.com', hostType: 'name' })
  check(t, requestUri('wsinv'), {
    scheme: 'sip', user: 'vivekg', host: 'chair-dnrc.example.com', hostType: 'name', params: [['unknownparam', null]]
  })
  check(t, requestUri('esc02'), { scheme: 'sip', host: 'registrar.example.com', hostType: 'name' })
  check(t, requestUri('inv2543'), { scheme: 'sip', user: 'UserB', host: 'example.com', hostType: 'name' })
  check(t, requestUri('test'), { scheme: 'sip', user: 'alan', host: 'jasomi.com', hostType: 'name' })
  check(t, requestUri('mpart01'), { scheme: 'sip', user: 'kumiko', host: 'example.org', hostType: 'name' })
  check(t, requestUri('cparam01'), { scheme: 'sip', host: 'example.com', hostType: 'name' })
  check(t, requestUri('mult-ip-in-header'), { scheme: 'sip', user: 'user', host: 'host.example.net', hostType: 'name' })
  check(t, requestUri('novelsc'), { scheme: 'soap.beep', host: '', hostType: 'name' })
  check(t, requestUri('unkscm'), { scheme: 'nobodyknowsthisscheme', host: '', hostType: 'name' })
  // RFC 5118 §4.1, §4.3, §4.4, §4.5, §4.6, §4.10.
  check(t, requestUri('ipv6-good'), { scheme: 'sip', host: '[2001:db8::10]', hostType: 'ipv6' })
  check(t, requestUri('port-ambiguous'), { scheme: 'sip', host: '[2001:db8::10:5070]', hostType: 'ipv6' })
  check(t, requestUri('port-unambiguous'), { scheme: 'sip', host: '[2001:db8::10]', hostType: 'ipv6', port: 5070 })
  check(t, requestUri('via-received-param-no-delim'), { scheme: 'sip', host: '[2001:db8::10]', hostType: 'ipv6' })
  check(t, requestUri('via-received-param-with-delim'), { scheme: 'sip', host: '[2001:db8::10]', hostType: 'ipv6' })
  check(t, requestUri('ipv6-in-sdp'), { scheme: 'sip', user: 'user', host: '[2001:db8::10]', hostType: 'ipv6' })
  check(t, requestUri('ipv6-correct-abnf-2-colons'), {
    scheme: 'sip', user: 'user', host: '[2001:db8::192.0.2.1]', hostType: 'ipv6'
  })
  // Invalid ones.
  rejects(t, requestUri('ipv6-bad'), 4, 'IPv6 address "2001:db8::10" not enclosed in "[" "]" in URI')
  rejects(t, requestUri('ipv6-bug-abnf-3-colons'), 9, 'invalid IPv6 reference "[2001:db8:::192.0.2.1]" in URI')
  // lwsruri: the request line splits at the space, leaving an empty parameter.
  rejects(t, requestUri('lwsruri'), 21, 'empty URI parameter name')
  rejects(t, 'sip:user@example.com; lr', 21, "invalid character ' ' in URI parameter")
  rejects(t, requestUri('ltgtruri'), 0, "invalid character '<' in URI scheme")
})

t.test('header URIs of the torture fixtures', async (t) => {
  check(t, inFixture(t, 'esc01', 'sip:%75se%72@example.com'), { scheme: 'sip', user: 'user', host: 'example.com', hostType: 'name' })
  check(t, inFixture(t, 'esc01', 'sip:I%20have%20spaces@example.net'), {
    scheme: 'sip', user: 'I have spaces', host: 'example.net', hostType: 'name'
  })
  // RFC 4475 §3.1.1.1: the Contact parameters are "lr" and "name=value%41".
  check(t, inFixture(t, 'esc01', 'sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31'), {
    scheme: 'sip', user: 'caller', host: 'host5.example.net', hostType: 'name', params: [['lr', null], ['name', 'value%41']]
  })
  // RFC 4475 §3.1.1.2 escnull: %00 is allowed in the user part.
  check(t, inFixture(t, 'escnull', 'sip:null-%00-null@example.com'), {
    scheme: 'sip', user: 'null-\u0000-null', host: 'example.com', hostType: 'name'
  })
  check(t, inFixture(t, 'escnull', 'sip:%00@host5.example.com'), { scheme: 'sip', user: '\u0000', host: 'host5.example.com', hostType: 'name' })
  check(t, inFixture(t, 'escnull', 'sip:%00%00@host5.example.com'), {
    scheme: 'sip', user: '\u0000\u0000', host: 'host5.example.com', hostType: 'name'
  })
  check(t, bracketed('intmeth', 'To:'), {
    scheme: 'sip', user: "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*", host: 'example.com', hostType: 'name'
  })
  check(t, bracketed('ipv4-mapped-ipv6', 'Contact:'), { scheme: 'sip', user: 'ted', host: '[::ffff:192.0.2.2]', hostType: 'ipv6' })
  check(t, bracketed('ipv6-good', 'Contact:'), { scheme: 'sip', user: 'caller', host: '[2001:db8::1]', hostType: 'ipv6' })
  check(t, bracketed('mult-ip-in-sdp', 'Contact:'), { scheme: 'sip', user: 'caller', host: '[2001:db8::9:1]', hostType: 'ipv6' })
  check(t, bracketed('regescrt', 'M:'), {
    scheme: 'sip', user: 'user', host: 'example.com', hostType: 'name', headers: [['Route', '<sip:sip.example.com>']]
  })
  check(t, inFixture(t, 'regbadct', 'sip:user@example.com?Route=%3Csip:sip.example.com%3E'), {
    scheme: 'sip', user: 'user', host: 'example.com', hostType: 'name', headers: [['Route', '<sip:sip.example.com>']]
  })
  check(t, bracketed('inv2543', 'From:'), {
    scheme: 'sip', user: '+13035551111', host: 'ift.client.example.net', hostType: 'name', params: [['user', 'phone']]
  })
  check(t, bracketed('inv2543', 'Record-Route:'), {
    scheme: 'sip', user: 'UserB', host: 'example.com', hostType: 'name', params: [['maddr', 'ss1.example.com']]
  })
  check(t, bracketed('cparam02', 'Contact:'), {
    scheme: 'sip', user: '+19725552222', host: 'gw1.example.net', hostType: 'name', params: [['unknownparam', null]]
  })
  check(t, bracketed('wsinv', ' <sip:services'), {
    scheme: 'sip',
    host: 'services.example.com',
    hostType: 'name',
    params: [['lr', null], ['unknownwith', 'value'], ['unknown-no-value', null]]
  })
  check(t, bracketed('mpart01', 'Route:'), { scheme: 'sip', host: '127.0.0.1', hostType: 'ipv4', port: 5080 })
  check(t, bracketed('mpart01', 'Contact:'), { scheme: 'sip', user: 'fluffy', host: '127.0.0.1', hostType: 'ipv4', port: 5070 })
  check(t, bracketed('longreq', 'To:'), {
    scheme: 'sip',
    user: 'user',
    host: 'example.com',
    hostType: 'name',
    port: 6000,
    params: [
      ['unknownparam1', `very${'long'.repeat(20)}value`],
      [`longparam${'name'.repeat(25)}`, 'shortvalue'],
      [`very${'long'.repeat(25)}parameternamewithnovalue`, null]
    ]
  })
  check(t, inFixture(t, 'unksm2', 'isbn:2983792873'), { scheme: 'isbn', host: '', hostType: 'name' })
  check(t, bracketed('unksm2', 'From:'), { scheme: 'http', host: '', hostType: 'name' })
  check(t, bracketed('unksm2', 'Contact:'), { scheme: 'name', host: '', hostType: 'name' })
  rejects(t, inFixture(t, 'ipv6-bug-abnf-3-colons', 'sip:user@[2001:db8:::192.0.2.1]'), 9,
    'invalid IPv6 reference "[2001:db8:::192.0.2.1]" in URI')
  // badaspec: whitespace inside the angle brackets is not part of any URI.
  rejects(t, bracketed('badaspec', 'To:'), 0, "invalid character ' ' in URI scheme")
})

t.test('defects are reported with their offset', async (t) => {
  const cases: Array<[string, number, string]> = [
    ['', 0, 'empty URI'],
    ['sip', 3, 'missing ":" after URI scheme in "sip"'],
    ['1sip:a', 0, "invalid character '1' in URI scheme"],
    ['si p:x', 2, "invalid character ' ' in URI scheme"],
    ['sip:', 4, 'missing host in URI'],
    ['sip:alice@', 10, 'missing host in URI'],
    ['sip:alice@:5060', 10, 'missing host in URI'],
    ['sip:;lr', 4, 'missing host in URI'],
    ['sip:@example.com', 4, 'empty user in URI'],
    ['sip::pw@example.com', 4, 'empty user in URI'],
    ['sip:a>b@c', 5, "invalid character '>' in URI user"],
    ['sip:al%4ice@x', 6, 'invalid escape "%4i" in URI user'],
    ['sip:alice%4@x', 9, 'invalid escape "%4" in URI user'],
    ['sip:alice:pa:ss@x', 12, "invalid character ':' in URI password"],
    ['sip:alice:p%g0@x', 11, 'invalid escape "%g0" in URI password'],
    ['sip:alice@exa_mple.com', 13, "invalid character '_' in URI host"],
    ['sip:<x>', 4, "invalid character '<' in URI host"],
    ['sip:-bad.com', 4, 'invalid host name "-bad.com" in URI'],
    ['sip:bad-.com', 7, 'invalid host name "bad-.com" in URI'],
    ['sip:a..com', 6, 'invalid host name "a..com" in URI'],
    ['sip:.a.com', 4, 'invalid host name ".a.com" in URI'],
    ['sip:example.123', 12, 'invalid host name "example.123" in URI'],
    ['sip:example.com-', 15, 'invalid host name "example.com-" in URI'],
    ['sip:256.1.1.1', 4, 'invalid IPv4 address "256.1.1.1" in URI'],
    ['sip:1.2.3', 4, 'invalid IPv4 address "1.2.3" in URI'],
    ['sip:1.2.3.4.5', 4, 'invalid IPv4 address "1.2.3.4.5" in URI'],
    ['sip:[::1', 4, 'unterminated IPv6 reference in URI'],
    ['sip:[::1;x]', 8, "invalid character ';' in URI IPv6 reference"],
    ['sip:[1:2:3:4:5:6:7:8:9]', 4, 'invalid IPv6 reference "[1:2:3:4:5:6:7:8:9]" in URI'],
    ['sip:[]', 4, 'invalid IPv6 reference "[]" in URI'],
    ['sip:[::1]x', 9, "invalid character 'x' in URI host"],
    ['sip:2001:db8::10', 4, 'IPv6 address "2001:db8::10" not enclosed in "[" "]" in URI'],
    ['sip:u@fe80::1:5060', 6, 'IPv6 address "fe80::1:5060" not enclosed in "[" "]" in URI'],
    ['sip:a@b:99999', 8, 'invalid port "99999" in URI'],
    ['sip:a@b:65536', 8, 'invalid port "65536" in URI'],
    ['sip:a@b:', 8, 'missing port in URI'],
    ['sip:a@b:;x', 8, 'missing port in URI'],
    ['sip:a@b:50a', 10, "invalid character 'a' in URI port"],
    ['sip:b;', 6, 'empty URI parameter name'],
    ['sip:b;;lr', 6, 'empty URI parameter name'],
    ['sip:b;=1', 6, 'empty URI parameter name'],
    ['sip:b;x=', 8, 'empty value of URI parameter "x"'],
    ['sip:b;x=;y', 8, 'empty value of URI parameter "x"'],
    ['sip:b;x=1=2', 9, "invalid character '=' in URI parameter"],
    ['sip:b;x=%zz', 8, 'invalid escape "%zz" in URI parameter'],
    ['sip:b;x"=1', 7, 'invalid character \'"\' in URI parameter'],
    ['sip:b?', 6, 'empty URI header name'],
    ['sip:b?&x=1', 6, 'empty URI header name'],
    ['sip:b?x', 7, 'URI header "x" without "="'],
    ['sip:b?x&y=1', 7, 'URI header "x" without "="'],
    ['sip:b?x=1&', 10, 'empty URI header name'],
    ['sip:b?x=<', 8, "invalid character '<' in URI header"],
    ['sip:b?x=%', 8, 'invalid escape "%" in URI header'],
    ['sip:alice@example.com\u0000', 21, 'invalid character U+0000 in URI host'],
    ['sip:al\u00e9ce@example.com', 6, 'invalid character U+00E9 in URI user'],
    ['tel:', 4, 'empty tel number in URI'],
    ['tel:;x=1', 4, 'empty tel number in URI'],
    ['tel:+', 4, 'tel number "+" has no digits'],
    ['tel:+-.()', 4, 'tel number "+-.()" has no digits'],
    ['tel:+1 2', 6, "invalid character ' ' in URI tel number"],
    ["tel:+1'", 6, 'invalid character "\'" in URI tel number'],
    ['tel:+1?x=y', 6, "invalid character '?' in URI tel number"],
    ['tel:12g4;phone-context=x', 6, "invalid character 'g' in URI tel number"],
    ['tel:1234', 4, 'local tel number without phone-context in URI'],
    ['tel:+1;x y', 8, "invalid character ' ' in URI tel parameter"],
    ['tel:+1;=x', 7, 'empty tel URI parameter name'],
    ['tel:+1;x=', 9, 'empty value of tel URI parameter "x"'],
    ['tel:+1;x=%2', 9, 'invalid escape "%2" in URI tel parameter'],
    ['mailto:', 7, 'empty mailto: URI'],
    ['urn:a b', 5, "invalid character ' ' in URI text"],
    ['urn:a%2', 5, 'invalid escape "%2" in URI text'],
    ['urn:a#frag', 5, "invalid character '#' in URI text"]
  ]
  for (const [text, offset, message] of cases) rejects(t, text, offset, message)
})

t.test('host helpers', async (t) => {
  for (const h of ['example.com', 'EXAMPLE.com', 'a', 'a1-b.c', 'example.com.', '9a.b1.c']) {
    t.equal(hostTypeOf(h), 'name', `${h} is a name`)
    t.ok(isValidHost(h), `${h} is a host`)
  }
  for (const h of ['192.0.2.1', '0.0.0.0', '255.255.255.255', '01.2.3.4']) {
    t.equal(hostTypeOf(h), 'ipv4', `${h} is IPv4`)
    t.ok(isValidIPv4(h), `${h} isValidIPv4`)
  }
  for (const h of ['[::1]', '[2001:DB8::1]', '[::ffff:192.0.2.2]']) t.equal(hostTypeOf(h), 'ipv6', `${h} is IPv6`)
  for (const h of ['', '-a', 'a-', 'a..b', '.', '..', 'a.1', '1.2.3', '1.2.3.256', '1.2.3.4.', 'a_b', 'a b',
    '[::1', '::1', '[1::2::3]', '[::1]x', 'ex%41mple.com', 'é.com']) {
    t.notOk(isValidHost(h), `${JSON.stringify(h)} is not a host`)
    t.equal(hostTypeOf(h), undefined, `${JSON.stringify(h)} has no host type`)
  }
  for (const h of ['1.2.3', '1.2.3.4.5', '1..2.3', '1.2.3.1000', '1.2.3.', 'a.b.c.d', '']) {
    t.notOk(isValidIPv4(h), `${JSON.stringify(h)} is not IPv4`)
  }
  const good6 = ['::', '::1', '1::', '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7::', '::2:3:4:5:6:7:8', '1::8',
    '1:2:3:4:5:6:1.2.3.4', '::1.2.3.4', '::ffff:192.0.2.1', '2001:db8::192.0.2.1', '2001:db8::10:5070',
    'FFFF:ffff::', '0000:0000::0001']
  for (const h of good6) t.ok(isValidIPv6(h), `${h} is IPv6`)
  const bad6 = ['', ':', '1', ':::', '1:::2', '2001:db8:::192.0.2.1', '1::2::3', '1:2:3:4:5:6:7:8:9',
    '1:2:3:4:5:6:7:8::', '::1:2:3:4:5:6:7:8', '12345::', 'g::1', ':1::', '1:', '1:2:3:4:5:6:7',
    '1:2:3:4:5:6:7:1.2.3.4', '::1.2.3', '::256.1.1.1', '::1.2.3.4:5', '::1.2.3.4.5', '[::1]']
  for (const h of bad6) t.notOk(isValidIPv6(h), `${JSON.stringify(h)} is not IPv6`)
})

t.test('unescapePercent', async (t) => {
  t.equal(unescapePercent('plain'), 'plain')
  t.equal(unescapePercent('a%20b%2fc%2F'), 'a b/c/')
  t.equal(unescapePercent('%00'), '\u0000')
  t.equal(unescapePercent('%C3%A9t%C3%A9'), 'été', 'UTF-8 sequences decode')
  t.equal(unescapePercent('%F0%9F%98%80'), '\u{1f600}', 'four-byte UTF-8 decodes')
  t.equal(unescapePercent('%EF%BB%BFx'), '\ufeffx', 'a byte order mark is kept')
  t.equal(unescapePercent('caf%E9'), 'caf\u00e9', 'bytes that are not UTF-8 map to Latin-1')
  t.equal(unescapePercent('%'), '%', 'a lone % stays')
  t.equal(unescapePercent('100%'), '100%')
  t.equal(unescapePercent('%4'), '%4')
  t.equal(unescapePercent('%zz%41'), '%zzA', 'an invalid escape stays, the next one decodes')
  t.equal(unescapePercent('%C3%'), '\u00c3%')
})

t.test('formatUri', async (t) => {
  const u = parseUri('sip:alice@example.com')
  u.user = 'a b:c@d#é'
  u.password = 'p:w'
  u.port = 5061
  u.params.set('transport', 'tls')
  u.params.set('lr', null)
  u.params.set('x', 'a b;c=d')
  u.headers.set('Subject', 'hi there&more')
  t.equal(formatUri(u),
    'sip:a%20b%3Ac%40d%23%C3%A9:p%3Aw@example.com:5061;transport=tls;lr;x=a%20b%3Bc%3Dd?Subject=hi%20there%26more')
  t.equal(formatUri(parseUri('sips:[2001:DB8::1]:5061;LR')), 'sips:[2001:db8::1]:5061;lr')
  t.equal(formatUri(parseUri('sip:h;x=%41')), 'sip:h;x=A', 'needless escapes are dropped')
  t.equal(formatUri(parseUri('tel:+1-201-555-0123;EXT=1;isub=a@b')), 'tel:+1-201-555-0123;ext=1;isub=a@b')
  t.equal(formatUri(parseUri('Mailto:Alice@Example.com')), 'Mailto:Alice@Example.com', 'other schemes are their raw text')
  t.equal(formatUri(parseUri('sip:u@h?R=%3C1%3E&r=%3C2%3E')), 'sip:u@h?R=%3C1%3E%2C%3C2%3E', 'repeated headers join')
  const lone = parseUri('sip:h')
  lone.user = 'a\ud800b'
  t.equal(formatUri(lone), 'sip:a%EF%BF%BDb@h', 'a lone surrogate is written as U+FFFD')
})

t.test('RFC 3261 §19.1.4 comparison examples', async (t) => {
  const equal: Array<[string, string]> = [
    ['sip:%61lice@atlanta.com;transport=TCP', 'sip:alice@AtLanTa.CoM;Transport=tcp'],
    ['sip:carol@chicago.com', 'sip:carol@chicago.com;newparam=5'],
    ['sip:carol@chicago.com', 'sip:carol@chicago.com;security=on'],
    ['sip:carol@chicago.com;newparam=5', 'sip:carol@chicago.com;security=on'],
    ['sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com',
      'sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com'],
    ['sip:alice@atlanta.com?subject=project%20x&priority=urgent',
      'sip:alice@atlanta.com?priority=urgent&subject=project%20x'],
    // "equality is not transitive" example, equal halves
    ['sip:carol@chicago.com', 'sip:carol@chicago.com;security=off']
  ]
  const notEqual: Array<[string, string]> = [
    ['SIP:ALICE@AtLanTa.CoM;Transport=udp', 'sip:alice@AtLanTa.CoM;Transport=UDP'],
    ['sip:bob@biloxi.com', 'sip:bob@biloxi.com:5060'],
    ['sip:bob@biloxi.com', 'sip:bob@biloxi.com;transport=udp'],
    ['sip:bob@biloxi.com', 'sip:bob@biloxi.com:6000;transport=tcp'],
    ['sip:carol@chicago.com', 'sip:carol@chicago.com?Subject=next%20meeting'],
    ['sip:bob@phone21.boxesbybob.com', 'sip:bob@192.0.2.4'],
    ['sip:carol@chicago.com;security=on', 'sip:carol@chicago.com;security=off']
  ]
  for (const [a, b] of equal) {
    t.ok(uriEquals(a, b), `${a} == ${b}`)
    t.ok(uriEquals(b, a), `${b} == ${a}`)
  }
  for (const [a, b] of notEqual) {
    t.notOk(uriEquals(a, b), `${a} != ${b}`)
    t.notOk(uriEquals(b, a), `${b} != ${a}`)
  }
})

t.test('uriEquals rules beyond the examples', async (t) => {
  const equal: Array<[string, string]> = [
    ['sip:alice@atlanta.com', 'SIP:alice@ATLANTA.COM'],
    ['sips:alice@atlanta.com:5061', 'sips:alice@atlanta.com:5061'],
    ['sip:a:p%41ss@h', 'sip:a:pAss@h'],
    ['sip:h?Subject=x', 'sip:h?subject=x'],
    ['sip:h;maddr=EXAMPLE.com', 'sip:h;maddr=example.com'],
    ['sip:h;maddr=192.0.2.1', 'sip:h;maddr=192.0.2.01'],
    ['sip:h;lr', 'sip:h;LR'],
    ['sip:h;user=PHONE', 'sip:h;user=phone'],
    ['sip:h;foo=Bar', 'sip:h;FOO=bar'],
    // RFC 5954: IP literals compare by value.
    ['sip:bob@[::ffff:192.0.2.128]', 'sip:bob@[::ffff:c000:280]'],
    ['sip:[2001:DB8::1]', 'sip:[2001:db8:0:0:0:0:0:1]'],
    ['sip:[1::]', 'sip:[1:0:0:0:0:0:0:0]'],
    ['sip:[::1.2.3.4]', 'sip:[::102:304]'],
    ['tel:+1-201-555-0123', 'tel:+12015550123'],
    ['tel:7042;phone-context=+1-201-555', 'tel:70-42;PHONE-CONTEXT=+1201555'],
    ['tel:+1;ext=ABC', 'tel:+1;ext=abc'],
    ['urn:service:sos', 'URN:service:sos']
  ]
  const notEqual: Array<[string, string]> = [
    ['sip:alice@atlanta.com', 'sips:alice@atlanta.com'],
    ['sip:alice@atlanta.com', 'sip:Alice@atlanta.com'],
    ['sip:atlanta.com', 'sip:alice@atlanta.com'],
    ['sip:a:p@h', 'sip:a@h'],
    ['sip:a:p@h', 'sip:a:P@h'],
    ['sip:h:5060', 'sip:h:5061'],
    ['sip:h', 'sip:h;user=phone'],
    ['sip:h', 'sip:h;ttl=1'],
    ['sip:h', 'sip:h;method=INVITE'],
    ['sip:h', 'sip:h;maddr=192.0.2.1'],
    ['sip:h;ttl=1', 'sip:h;ttl=2'],
    ['sip:h;method=INVITE', 'sip:h;method=invite'],
    ['sip:h;transport=udp', 'sip:h;transport=tcp'],
    ['sip:h;maddr=a.com', 'sip:h;maddr=b.com'],
    ['sip:h;lr', 'sip:h;lr=on'],
    ['sip:h;foo=1', 'sip:h;foo=2'],
    ['sip:h?subject=X', 'sip:h?subject=x'],
    ['sip:h?a=1', 'sip:h?a=1&b=2'],
    ['sip:h?a=1', 'sip:h?b=1'],
    ['sip:h?a=1&A=2', 'sip:h?a=1&b=2'],
    ['sip:192.0.2.1', 'sip:[::ffff:192.0.2.1]'],
    ['sip:[::1]', 'sip:[::2]'],
    ['tel:+1201', 'tel:+1202'],
    ['tel:+1;ext=1', 'tel:+1'],
    ['tel:+1;ext=1', 'tel:+1;isub=1'],
    ['tel:+1;a', 'tel:+1;a=1'],
    ['tel:+1;ext=1', 'tel:+1;ext=2'],
    ['tel:7042;phone-context=+1-201-555', 'tel:7042;phone-context=+1-201-556'],
    ['tel:+1', 'sip:+1@h'],
    ['urn:service:sos', 'urn:service:SOS']
  ]
  for (const [a, b] of equal) {
    t.ok(uriEquals(a, b), `${a} == ${b}`)
    t.ok(uriEquals(b, a), `${b} == ${a}`)
  }
  for (const [a, b] of notEqual) {
    t.notOk(uriEquals(a, b), `${a} != ${b}`)
    t.notOk(uriEquals(b, a), `${b} != ${a}`)
  }
  const parsed = parseUri('sip:%61lice@atlanta.com;transport=TCP')
  t.ok(uriEquals(parsed, 'sip:alice@atlanta.com;transport=tcp'), 'accepts a parsed SipUri')
  t.ok(uriEquals('sip:alice@atlanta.com', parseUri('sip:alice@atlanta.com')), 'either side')
  t.throws(() => uriEquals('sip:alice@', 'sip:alice@h'), SipParseError, 'an invalid string throws SipParseError')
})

// ---------------------------------------------------------------------------
// Properties

/** Characters that exercise every escaping rule, plus any code point. */
const tricky = fc.constantFrom(...[...'aZ09-_.!~*\'()&=+$,;?/:@[]%#<> "\u0000\u00e9\ufeff\u{1f600}'])
const text = fc.oneof(
  fc.string({ unit: tricky, minLength: 1, maxLength: 10 }),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 10 })
)
const host: fc.Arbitrary<[string, SipUri['hostType']]> = fc.oneof(
  fc.domain().map((d): [string, SipUri['hostType']] => [d.toLowerCase(), 'name']),
  fc.ipV4().map((h): [string, SipUri['hostType']] => [h, 'ipv4']),
  fc.ipV6().map((h): [string, SipUri['hostType']] => [`[${h.toLowerCase()}]`, 'ipv6'])
)
const sipUri: fc.Arbitrary<SipUri> = fc.record({
  scheme: fc.constantFrom('sip', 'sips'),
  user: fc.option(text, { nil: undefined }),
  password: fc.option(fc.oneof(text, fc.constant('')), { nil: undefined }),
  host,
  port: fc.option(fc.integer({ min: 0, max: 65535 }), { nil: undefined }),
  params: fc.uniqueArray(fc.tuple(text.map((s) => s.toLowerCase()), fc.option(text, { nil: null })), {
    selector: ([name]) => name, maxLength: 4
  }),
  headers: fc.uniqueArray(fc.tuple(text, fc.oneof(text, fc.constant(''))), {
    selector: ([name]) => name.toLowerCase(), maxLength: 3
  })
}).map((r) => ({
  scheme: r.scheme,
  user: r.user,
  password: r.user === undefined ? undefined : r.password,
  host: r.host[0],
  hostType: r.host[1],
  port: r.port,
  params: new Map(r.params),
  headers: new Map(r.headers),
  raw: ''
}))
const telUri: fc.Arbitrary<SipUri> = fc.record({
  number: fc.string({ unit: fc.constantFrom(...'0123456789-.()'.split('')), maxLength: 12 }),
  params: fc.uniqueArray(fc.tuple(
    fc.string({ unit: fc.constantFrom(...'abcxyz09-'.split('')), minLength: 1, maxLength: 6 }),
    fc.option(text, { nil: null })
  ), { selector: ([name]) => name, maxLength: 3 })
}).map((r) => ({
  scheme: 'tel',
  user: `+1${r.number}`,
  password: undefined,
  host: '',
  hostType: 'name' as const,
  port: undefined,
  params: new Map(r.params),
  headers: new Map(),
  raw: ''
}))

function sameFields (a: SipUri, b: SipUri): boolean {
  return a.scheme === b.scheme && a.user === b.user && a.password === b.password && a.host === b.host &&
    a.hostType === b.hostType && a.port === b.port &&
    JSON.stringify([...a.params]) === JSON.stringify([...b.params]) &&
    JSON.stringify([...a.headers]) === JSON.stringify([...b.headers])
}

t.test('property: parseUri(formatUri(x)) yields the fields of x', async (t) => {
  t.doesNotThrow(() => fc.assert(fc.property(sipUri, (uri) => {
    const back = parseUri(formatUri(uri))
    return sameFields(uri, back) && back.raw === formatUri(uri) && uriEquals(uri, back)
  }), { numRuns: 2000 }), 'sip and sips')
  t.doesNotThrow(() => fc.assert(fc.property(telUri, (uri) => sameFields(uri, parseUri(formatUri(uri)))),
    { numRuns: 500 }), 'tel')
})

function parsesOrThrowsSipParseError (s: string): boolean {
  try {
    const u = parseUri(s)
    return u.raw === s
  } catch (err) {
    return err instanceof SipParseError && err.code === 'SIP_ERR_BAD_URI' &&
      Number.isInteger(err.offset) && err.offset >= 0 && err.offset <= s.length
  }
}

t.test('property: any string parses or throws SipParseError, never another error', async (t) => {
  const uriChars = fc.constantFrom(...[...'sipteSIP:@;?&=%[].-_0123456789abcdefABCDEF+/!~*\'()$,# <>"\u0000\u00ff\u{1f600}'])
  const prefix = fc.constantFrom('', 'sip:', 'sips:', 'tel:', 'tel:+1', 'sip:u@', 'sip:[', 'sip:h;', 'sip:h?', 'x:')
  t.doesNotThrow(() => fc.assert(fc.property(prefix, fc.string({ unit: uriChars, maxLength: 30 }),
    (p, s) => parsesOrThrowsSipParseError(p + s)), { numRuns: 5000 }), 'URI-like strings')
  t.doesNotThrow(() => fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 40 }),
    (s) => parsesOrThrowsSipParseError(s)), { numRuns: 1000 }), 'arbitrary strings')
  // Mutations of valid URIs: replace, insert or delete one character.
  t.doesNotThrow(() => fc.assert(fc.property(sipUri, fc.nat(), uriChars, fc.constantFrom(0, 1, 2), (uri, at, ch, op) => {
    const s = formatUri(uri)
    const i = at % (s.length + 1)
    const m = op === 0 ? s.slice(0, i) + ch + s.slice(i + 1) : op === 1 ? s.slice(0, i) + ch + s.slice(i) : s.slice(0, i) + s.slice(i + 1)
    return parsesOrThrowsSipParseError(m)
  }), { numRuns: 3000 }), 'mutated URIs')
})

t.test('property: uriEquals is reflexive and ignores parameter order', async (t) => {
  t.doesNotThrow(() => fc.assert(fc.property(sipUri, (uri) => {
    const s = formatUri(uri)
    const reversed = { ...uri, params: new Map([...uri.params].reverse()), headers: new Map([...uri.headers].reverse()) }
    return uriEquals(s, s) && uriEquals(s, formatUri(reversed)) && uriEquals(formatUri(reversed), uri)
  }), { numRuns: 1000 }))
})
