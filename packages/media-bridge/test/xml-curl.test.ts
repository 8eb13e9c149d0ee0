import t from 'tap'
import type { Test } from 'tap'
import { createHash } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { InvalidArgumentError } from '../src/errors.js'
import { createXmlCurlHandler, handleXmlCurl } from '../src/xml-curl.js'
import type { LookupSubscriber, SubscriberEntry, XmlCurlHandlerOptions } from '../src/xml-curl.js'
import { kids, only, parseXml } from './helpers/xml.js'
import type { XmlElement } from './helpers/xml.js'

const md5 = (s: string): string => createHash('md5').update(s).digest('hex')

/** Form-encode like FreeSWITCH's switch_url_encode: ',' and '()' stay raw, '@', ':' and spaces are escaped. */
function fsEncode (pairs: Array<[string, string]>): string {
  return pairs.map(([k, v]) => `${k}=${encodeURIComponent(v).replaceAll('%2C', ',')}`).join('&')
}

/** The fields sofia sends when it challenges a REGISTER or INVITE (sofia_reg_parse_auth → directory, action=sip_auth). */
function sipAuthRequest (user: string, domain: string, method = 'REGISTER'): string {
  return fsEncode([
    ['hostname', 'fs1'],
    ['section', 'directory'],
    ['tag_name', 'domain'],
    ['key_name', 'name'],
    ['key_value', domain],
    ['Event-Name', 'REQUEST_PARAMS'],
    ['Core-UUID', '5c2d4a36-1c1e-4b7e-9d5b-0f2f6f0c0a11'],
    ['FreeSWITCH-Hostname', 'fs1'],
    ['FreeSWITCH-Switchname', 'fs1'],
    ['FreeSWITCH-IPv4', '127.0.0.3'],
    ['FreeSWITCH-IPv6', '::1'],
    ['Event-Date-Local', '2024-05-02 10:11:12'],
    ['Event-Date-GMT', 'Thu, 02 May 2024 08:11:12 GMT'],
    ['Event-Date-Timestamp', '1714637472123456'],
    ['Event-Calling-File', 'sofia_reg.c'],
    ['Event-Calling-Function', 'sofia_reg_parse_auth'],
    ['Event-Calling-Line-Number', '2862'],
    ['Event-Sequence', '1234'],
    ['action', 'sip_auth'],
    ['sip_profile', 'internal'],
    ['sip_user_agent', 'Yealink SIP-T46S 66.86.0.15 (v2)'],
    ['sip_auth_username', user],
    ['sip_auth_realm', domain],
    ['sip_auth_nonce', '0b4c1a2e-0000-4000-8000-7f2a9a1b2c3d'],
    ['sip_auth_uri', `sip:${domain};transport=udp`],
    ['sip_contact_user', user],
    ['sip_contact_host', '192.0.2.10'],
    ['sip_to_user', user],
    ['sip_to_host', domain],
    ['sip_via_protocol', 'udp'],
    ['sip_from_user', user],
    ['sip_from_host', domain],
    ['sip_call_id', 'a84b4c76e66710@pc33.example.com'],
    ['sip_request_host', domain],
    ['sip_auth_qop', 'auth'],
    ['sip_auth_cnonce', '0a4f113b'],
    ['sip_auth_nc', '00000001'],
    ['sip_auth_response', '6629fae49393a05397450978507c4ef1'],
    ['sip_auth_method', method],
    ['client_port', '5062'],
    ['key', 'id'],
    ['user', user],
    ['domain', domain],
    ['ip', '192.0.2.10']
  ])
}

/** What mod_dialplan_xml sends for an inbound call (Event-Name=CHANNEL_DATA, Hunt-* and Caller-* headers). */
function dialplanRequest (context: string, destination: string): string {
  return fsEncode([
    ['hostname', 'fs1'],
    ['section', 'dialplan'],
    ['tag_name', ''],
    ['key_name', ''],
    ['key_value', ''],
    ['Event-Name', 'CHANNEL_DATA'],
    ['Core-UUID', '5c2d4a36-1c1e-4b7e-9d5b-0f2f6f0c0a11'],
    ['FreeSWITCH-Hostname', 'fs1'],
    ['Channel-State', 'CS_ROUTING'],
    ['Channel-Call-State', 'RINGING'],
    ['Unique-ID', 'b3fe45ad-78ad-4d33-b70e-644e48969805'],
    ['Call-Direction', 'inbound'],
    ['Caller-Direction', 'inbound'],
    ['Caller-Username', '2222'],
    ['Caller-Dialplan', 'XML'],
    ['Caller-Caller-ID-Number', '2222'],
    ['Caller-Network-Addr', '127.0.0.1'],
    ['Caller-Destination-Number', destination],
    ['Caller-Source', 'mod_sofia'],
    ['Caller-Context', context],
    ['Caller-Channel-Name', 'sofia/external/2222@127.0.0.1'],
    ['Hunt-Direction', 'inbound'],
    ['Hunt-Username', '2222'],
    ['Hunt-Dialplan', 'XML'],
    ['Hunt-Destination-Number', destination],
    ['Hunt-Source', 'mod_sofia'],
    ['Hunt-Context', context],
    ['Hunt-Channel-Name', 'sofia/external/2222@127.0.0.1'],
    ['variable_sip_from_user', '2222'],
    ['variable_sip_to_user', destination],
    ['variable_sip_call_id', 'x1@127.0.0.1']
  ])
}

/** The subscriber store: a plain map, looked up the way the registrar's would be. */
function store (entries: Record<string, SubscriberEntry>) {
  const calls: string[] = []
  const lookup: LookupSubscriber = async (user, domain) => {
    calls.push(`${user}@${domain}`)
    return entries[`${user}@${domain}`]
  }
  return { calls, lookup }
}

function expectNotFound (t: Test, body: string): void {
  const doc = parseXml(body)
  t.equal(doc.name, 'document')
  t.equal(doc.attrs.type, 'freeswitch/xml')
  const section = only(doc, 'section')
  t.equal(section?.attrs.name, 'result')
  t.equal(only(section, 'result')?.attrs.status, 'not found')
}

function userOf (body: string): { domain: XmlElement | undefined, user: XmlElement | undefined, params: Record<string, string> } {
  const doc = parseXml(body)
  const section = only(doc, 'section')
  const domain = only(section, 'domain')
  const user = only(domain, 'user')
  const params: Record<string, string> = {}
  for (const p of kids(only(user, 'params'), 'param')) params[p.attrs.name as string] = p.attrs.value as string
  return { domain, user, params }
}

t.test('directory: sip_auth for a known user returns its a1-hash, never a password', async (t) => {
  const ha1 = md5('1000:pbx.example.com:s3cret')
  const { calls, lookup } = store({ '1000@pbx.example.com': { ha1Md5: ha1, variables: { user_context: 'default' } } })
  for (const method of ['REGISTER', 'INVITE']) {
    const res = await handleXmlCurl(sipAuthRequest('1000', 'pbx.example.com', method), { lookupSubscriber: lookup })
    t.equal(res.status, 200)
    t.match(res.contentType, /^text\/xml/)
    const doc = parseXml(res.body)
    t.equal(doc.name, 'document')
    t.equal(doc.attrs.type, 'freeswitch/xml')
    t.equal(only(doc, 'section')?.attrs.name, 'directory')
    const { domain, user, params } = userOf(res.body)
    t.equal(domain?.attrs.name, 'pbx.example.com')
    t.equal(user?.attrs.id, '1000')
    t.same(params, { 'a1-hash': ha1 }, 'only the HA1')
    const vars = kids(only(user, 'variables'), 'variable')
    t.same(vars.map((v) => [v.attrs.name, v.attrs.value]), [['user_context', 'default']])
    t.notMatch(res.body, 's3cret')
  }
  t.same(calls, ['1000@pbx.example.com', '1000@pbx.example.com'], 'looked up by user and domain')
})

t.test('directory: unknown user and lookups without a user get the not-found document', async (t) => {
  const { calls, lookup } = store({})
  const res = await handleXmlCurl(sipAuthRequest('9999', 'pbx.example.com'), { lookupSubscriber: lookup })
  t.equal(res.status, 200)
  expectNotFound(t, res.body)
  // sofia asks for gateways and network lists of a profile at start-up: not ours.
  const gateways = fsEncode([['hostname', 'fs1'], ['section', 'directory'], ['tag_name', ''], ['key_name', ''], ['key_value', ''],
    ['Event-Name', 'REQUEST_PARAMS'], ['Event-Calling-File', 'sofia.c'], ['Event-Calling-Function', 'config_sofia'],
    ['purpose', 'gateways'], ['profile', 'external']])
  expectNotFound(t, (await handleXmlCurl(gateways, { lookupSubscriber: lookup })).body)
  t.same(calls, ['9999@pbx.example.com'], 'no lookup without a user')
})

t.test('directory: hostile user and domain values are escaped', async (t) => {
  const user = 'a"b<c>&d\'e'
  const domain = 'x&y"<z>.example'
  const ha1 = md5(`${user}:${domain}:pw`)
  const { lookup } = store({ [`${user}@${domain}`]: { ha1Md5: ha1, variables: { 'odd"name': 'v<&>' } } })
  const res = await handleXmlCurl(sipAuthRequest(user, domain), { lookupSubscriber: lookup })
  const { domain: d, user: u, params } = userOf(res.body)
  t.equal(d?.attrs.name, domain, 'domain round-trips through the XML')
  t.equal(u?.attrs.id, user, 'user round-trips through the XML')
  t.equal(params['a1-hash'], ha1)
  const v = only(only(u, 'variables'), 'variable')
  t.same([v?.attrs.name, v?.attrs.value], ['odd"name', 'v<&>'])
})

t.test('directory: a failing lookup or a stored value that is not an HA1 answers 500', async (t) => {
  const errors: unknown[] = []
  const failing: LookupSubscriber = async () => { throw new Error('database down') }
  const res = await handleXmlCurl(sipAuthRequest('1000', 'pbx.example.com'), { lookupSubscriber: failing, onError: (e) => errors.push(e) })
  t.equal(res.status, 500, 'mod_xml_curl then falls back to its next source')
  expectNotFound(t, res.body)
  const clear = store({ '1000@pbx.example.com': { ha1Md5: 's3cret' } })
  const res2 = await handleXmlCurl(sipAuthRequest('1000', 'pbx.example.com'), { lookupSubscriber: clear.lookup, onError: (e) => errors.push(e) })
  t.equal(res2.status, 500)
  t.notMatch(res2.body, 's3cret', 'a clear password is never served')
  t.match(errors, [{ message: 'database down' }, { code: 'MEDIA_ERR_BAD_HA1' }])
})

t.test('dialplan: a catch-all extension bridging to sipd for the configured context', async (t) => {
  const { lookup } = store({})
  const res = await handleXmlCurl(dialplanRequest('public', '+4930123456'), { lookupSubscriber: lookup })
  t.equal(res.status, 200)
  const doc = parseXml(res.body)
  t.equal(doc.attrs.type, 'freeswitch/xml')
  const section = only(doc, 'section')
  t.equal(section?.attrs.name, 'dialplan')
  const context = only(section, 'context')
  t.equal(context?.attrs.name, 'public')
  const extension = only(context, 'extension')
  t.equal(extension?.attrs.name, 'sipd')
  const condition = only(extension, 'condition')
  t.equal(condition?.attrs.field, 'destination_number')
  t.equal(condition?.attrs.expression, '^(.+)$', 'matches every destination')
  const action = only(condition, 'action')
  t.equal(action?.attrs.application, 'bridge')
  t.equal(action?.attrs.data, 'sofia/gateway/sipd/${destination_number}')

  const custom = await handleXmlCurl(dialplanRequest('from-sipd', '100'), {
    lookupSubscriber: lookup,
    dialplan: { context: 'from-sipd', extensionName: 'to "sipd"', bridgeTemplate: 'sofia/external/${destination_number}@127.0.0.1:5060;transport=tcp&x' }
  })
  const ext = only(only(only(parseXml(custom.body), 'section'), 'context'), 'extension')
  t.equal(ext?.attrs.name, 'to "sipd"')
  t.equal(only(only(ext, 'condition'), 'action')?.attrs.data, 'sofia/external/${destination_number}@127.0.0.1:5060;transport=tcp&x')

  expectNotFound(t, (await handleXmlCurl(dialplanRequest('default', '100'), { lookupSubscriber: lookup })).body)
  expectNotFound(t, (await handleXmlCurl(dialplanRequest('public', '100'), { lookupSubscriber: lookup, dialplan: false })).body)
})

t.test('other sections get not-found', async (t) => {
  const { lookup } = store({})
  for (const section of ['configuration', 'phrases', 'languages', '']) {
    const body = fsEncode([['hostname', 'fs1'], ['section', section], ['tag_name', 'configuration'], ['key_name', 'name'],
      ['key_value', 'sofia.conf'], ['Event-Name', 'REQUEST_PARAMS']])
    const res = await handleXmlCurl(body, { lookupSubscriber: lookup })
    t.equal(res.status, 200)
    expectNotFound(t, res.body)
  }
})

t.test('HTTP endpoint: shared secret, basic auth, limits', async (t) => {
  const ha1 = md5('1000:pbx.example.com:pw')
  const { lookup } = store({ '1000@pbx.example.com': { ha1Md5: ha1 } })
  const make = async (opts: Omit<XmlCurlHandlerOptions, 'lookupSubscriber'>): Promise<string> => {
    const handler = createXmlCurlHandler({ lookupSubscriber: lookup, ...opts })
    const server = createServer((req, res) => { void handler(req, res) })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/fs/xml`
  }
  const post = async (url: string, body: string, headers: Record<string, string> = {}) =>
    await fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers } })

  const base = await make({ secret: 'k3y&=1' })
  const ok = await post(`${base}?key=${encodeURIComponent('k3y&=1')}`, sipAuthRequest('1000', 'pbx.example.com'))
  t.equal(ok.status, 200)
  t.match(ok.headers.get('content-type'), /^text\/xml/)
  t.equal(userOf(await ok.text()).params['a1-hash'], ha1, 'key in the query: answered')
  const byHeader = await post(base, sipAuthRequest('1000', 'pbx.example.com'), { 'x-sipd-key': 'k3y&=1' })
  t.equal(byHeader.status, 200, 'key in the header: answered')
  await byHeader.text()
  // The form itself carries key=id: it must not count as the secret.
  const formKeyOnly = await post(base, sipAuthRequest('1000', 'pbx.example.com').replace('key=id', 'key=k3y%26%3D1'))
  t.equal(formKeyOnly.status, 401, 'a key in the form body is not the secret')
  await formKeyOnly.text()
  const wrong = await post(`${base}?key=nope`, sipAuthRequest('1000', 'pbx.example.com'))
  t.equal(wrong.status, 401)
  t.equal(wrong.headers.get('www-authenticate'), null, 'no basic challenge when only a secret is configured')
  t.notMatch(await wrong.text(), ha1)
  const get = await fetch(`${base}?key=${encodeURIComponent('k3y&=1')}&${sipAuthRequest('1000', 'pbx.example.com')}`)
  t.equal(get.status, 200, 'GET with query fields')
  t.equal(userOf(await get.text()).params['a1-hash'], ha1)
  const put = await fetch(`${base}?key=${encodeURIComponent('k3y&=1')}`, { method: 'PUT', body: 'x' })
  t.equal(put.status, 405)
  t.equal(put.headers.get('allow'), 'GET, POST')
  await put.text()

  const basic = await make({ basicAuth: { username: 'freeswitch', password: 'pa:ss' }, maxBodyBytes: 4096 })
  const auth = `Basic ${Buffer.from('freeswitch:pa:ss').toString('base64')}`
  const bOk = await post(basic, sipAuthRequest('1000', 'pbx.example.com'), { authorization: auth })
  t.equal(bOk.status, 200, 'basic auth accepted')
  t.equal(userOf(await bOk.text()).user?.attrs.id, '1000')
  const bNo = await post(basic, sipAuthRequest('1000', 'pbx.example.com'))
  t.equal(bNo.status, 401)
  t.match(bNo.headers.get('www-authenticate'), /^Basic realm=/)
  await bNo.text()
  const bBad = await post(basic, sipAuthRequest('1000', 'pbx.example.com'), { authorization: `Basic ${Buffer.from('freeswitch:wrong').toString('base64')}` })
  t.equal(bBad.status, 401)
  await bBad.text()
  const big = await post(basic, `section=directory&x=${'a'.repeat(5000)}`, { authorization: auth })
  t.equal(big.status, 413, 'body over maxBodyBytes refused')
  await big.text()
  const nf = await post(basic, sipAuthRequest('2000', 'pbx.example.com'), { authorization: auth })
  t.equal(nf.status, 200)
  expectNotFound(t, await nf.text())
})

t.test('HTTP endpoint options are validated', async (t) => {
  const { lookup } = store({})
  t.throws(() => createXmlCurlHandler({ lookupSubscriber: lookup }), InvalidArgumentError, 'no authentication configured')
  t.throws(() => createXmlCurlHandler({ lookupSubscriber: lookup, secret: '' }), { code: 'MEDIA_ERR_INVALID_ARGUMENT', option: 'secret' })
  t.throws(() => createXmlCurlHandler({ lookupSubscriber: lookup, basicAuth: { username: 'a:b', password: 'x' } }), { code: 'MEDIA_ERR_INVALID_ARGUMENT', option: 'basicAuth' })
  t.throws(() => createXmlCurlHandler({ lookupSubscriber: lookup, secret: 'x', maxBodyBytes: 0 }), { code: 'MEDIA_ERR_INVALID_ARGUMENT', option: 'maxBodyBytes' })
  t.throws(() => createXmlCurlHandler({ lookupSubscriber: lookup, secret: 'x', dialplan: { context: '' } }), { code: 'MEDIA_ERR_INVALID_ARGUMENT', option: 'dialplan.context' })
})
