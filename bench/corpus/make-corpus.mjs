#!/usr/bin/env node
// Writes bench/corpus/*.sip: the messages of one proxied call and one
// registration, with CRLF line endings and a Content-Length computed from the
// body, as bytes (an editor cannot turn CRLF into LF behind our back).
// `node bench/corpus/make-corpus.mjs` rewrites them; the parse suite only
// reads the .sip files.
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))

/** One message from header lines and a body, CRLF throughout. */
function message (lines, body = []) {
  const text = body.length > 0 ? body.join('\r\n') + '\r\n' : ''
  const bytes = Buffer.byteLength(text)
  return Buffer.from([...lines, `Content-Length: ${bytes}`, '', ''].join('\r\n') + text, 'utf8')
}

const callee = [
  'v=0',
  'o=bob 2890844527 2890844527 IN IP4 192.0.2.4',
  's=-',
  'c=IN IP4 192.0.2.4',
  't=0 0',
  'm=audio 3456 RTP/AVP 0 8 101',
  'a=rtpmap:0 PCMU/8000',
  'a=rtpmap:8 PCMA/8000',
  'a=rtpmap:101 telephone-event/8000'
]
const caller = [
  'v=0',
  'o=alice 2890844526 2890844526 IN IP4 pc33.atlanta.example.com',
  's=-',
  'c=IN IP4 192.0.2.101',
  't=0 0',
  'm=audio 49172 RTP/AVP 0 8 101',
  'a=rtpmap:0 PCMU/8000',
  'a=rtpmap:8 PCMA/8000',
  'a=rtpmap:101 telephone-event/8000',
  'a=sendrecv'
]

const FROM = 'From: "Alice" <sip:alice@atlanta.example.com>;tag=1928301774'
const TO = 'To: Bob <sip:bob@biloxi.example.com>'
const TO_TAGGED = TO + ';tag=a6c85cf'
const CALL_ID = 'Call-ID: a84b4c76e66710@pc33.atlanta.example.com'
// Responses travelling back through us: our Via on top, then the caller's.
const RESPONSE_VIAS = [
  'Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK74bf9.0a1b2c3d;received=10.0.0.1',
  'Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;received=192.0.2.101;rport=5060'
]

const corpus = {
  // 18 header fields: three Via, a two-element Route whose top is us, Record-Route,
  // Contact with parameters, Proxy-Authorization, Allow, Supported, User-Agent.
  'invite.sip': message([
    'INVITE sip:bob@biloxi.example.com;transport=udp SIP/2.0',
    'Via: SIP/2.0/UDP sbc.atlanta.example.com:5060;branch=z9hG4bK2d4790.1;rport',
    'Via: SIP/2.0/UDP bigbox3.site3.atlanta.example.com;branch=z9hG4bK77ef4c2312983.1;received=192.0.2.2',
    'Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;received=192.0.2.101;rport=5060',
    'Max-Forwards: 68',
    'Route: <sip:10.0.0.1;lr>, <sip:core2.biloxi.example.com;lr;transport=udp>',
    'Record-Route: <sip:sbc.atlanta.example.com;lr>',
    TO,
    FROM,
    CALL_ID,
    'CSeq: 314159 INVITE',
    'Contact: "Alice" <sip:alice@pc33.atlanta.example.com:5060;transport=udp;ob>;expires=3600;q=0.7;+sip.instance="<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>"',
    'Proxy-Authorization: Digest username="alice", realm="atlanta.example.com", nonce="ea9c8e88df84f1cec4341ae6cbe5a359", uri="sip:bob@biloxi.example.com", response="dfe56131d1958046689d83306477ecc", algorithm=MD5, opaque=""',
    'Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, UPDATE',
    'Supported: replaces, timer, 100rel',
    'Session-Expires: 1800',
    'User-Agent: SomePhone/1.0 (bench)',
    'Content-Type: application/sdp'
  ], caller),
  'register.sip': message([
    'REGISTER sip:registrar.biloxi.example.com SIP/2.0',
    'Via: SIP/2.0/UDP bobspc.biloxi.example.com:5060;branch=z9hG4bKnashds7;rport',
    'Max-Forwards: 70',
    'To: Bob <sip:bob@biloxi.example.com>',
    'From: Bob <sip:bob@biloxi.example.com>;tag=456248',
    'Call-ID: 843817637684230@998sdasdh09',
    'CSeq: 1826 REGISTER',
    'Contact: <sip:bob@192.0.2.4;transport=udp>;expires=7200;+sip.instance="<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>";reg-id=1',
    'Authorization: Digest username="bob", realm="biloxi.example.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="sip:registrar.biloxi.example.com", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41", algorithm=MD5',
    'Supported: path, outbound',
    'User-Agent: Bench/1.0',
    'Expires: 7200'
  ]),
  'trying-100.sip': message([
    'SIP/2.0 100 Trying',
    ...RESPONSE_VIAS,
    FROM,
    TO,
    CALL_ID,
    'CSeq: 314159 INVITE'
  ]),
  'ringing-180.sip': message([
    'SIP/2.0 180 Ringing',
    ...RESPONSE_VIAS,
    'Record-Route: <sip:10.0.0.1;lr>',
    FROM,
    TO_TAGGED,
    CALL_ID,
    'CSeq: 314159 INVITE',
    'Contact: <sip:bob@192.0.2.4>'
  ]),
  'ok-200.sip': message([
    'SIP/2.0 200 OK',
    ...RESPONSE_VIAS,
    'Record-Route: <sip:10.0.0.1;lr>',
    FROM,
    TO_TAGGED,
    CALL_ID,
    'CSeq: 314159 INVITE',
    'Contact: <sip:bob@192.0.2.4>',
    'Allow: INVITE, ACK, CANCEL, OPTIONS, BYE',
    'Content-Type: application/sdp'
  ], callee),
  'ack.sip': message([
    'ACK sip:bob@192.0.2.4 SIP/2.0',
    'Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bKnashds8;rport',
    'Max-Forwards: 70',
    'Route: <sip:10.0.0.1;lr>',
    FROM,
    TO_TAGGED,
    CALL_ID,
    'CSeq: 314159 ACK'
  ]),
  'bye.sip': message([
    'BYE sip:bob@192.0.2.4 SIP/2.0',
    'Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bKnashds9;rport',
    'Max-Forwards: 70',
    'Route: <sip:10.0.0.1;lr>',
    FROM,
    TO_TAGGED,
    CALL_ID,
    'CSeq: 314160 BYE'
  ]),
  'options.sip': message([
    'OPTIONS sip:carol@chicago.example.com SIP/2.0',
    'Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKhjhs8ass877',
    'Max-Forwards: 70',
    'To: <sip:carol@chicago.example.com>',
    'From: Alice <sip:alice@atlanta.example.com>;tag=1928301774',
    'Call-ID: a84b4c76e66710',
    'CSeq: 63104 OPTIONS',
    'Contact: <sip:alice@pc33.atlanta.example.com>',
    'Accept: application/sdp'
  ])
}

for (const [name, bytes] of Object.entries(corpus)) writeFileSync(path.join(here, name), bytes)
console.log(`wrote ${Object.keys(corpus).length} messages to ${path.relative(process.cwd(), here) || '.'}`)
