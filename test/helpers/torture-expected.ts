// What sipd on its defaults must answer to each RFC 4475 / RFC 5118 torture
// fixture sent as one UDP datagram (test/sipd-torture-wire.test.ts), and
// over TCP (test/sipd-torture-tcp.test.ts, which lists where TCP differs).

/**
 * What sipd must answer (status), or 'drop' for no answer. The reason is the
 * RFC's: RFC 4475 §3.1.1 (valid), §3.1.2 (invalid syntax → 400), §3.3
 * (semantics), RFC 5118 §4 (IPv6).
 */
export const EXPECTED: Record<string, number | 'drop'> = {
  // §3.1.1 valid messages: not for sipd, so 404 / 403 (REGISTER, no domain served).
  'wsinv.dat': 404,
  'intmeth.dat': 404,
  'esc01.dat': 404,
  'escnull.dat': 403,
  'esc02.dat': 404, // an unknown method that passes the sanity stage
  'lwsdisp.dat': 404,
  'longreq.dat': 404,
  'dblreq.dat': 403, // only the first REGISTER (Content-Length 0) is read
  'semiuri.dat': 404,
  'transports.dat': 404,
  'mpart01.dat': 404,
  'unreason.dat': 'drop', // a response matching no transaction
  'noreason.dat': 'drop',
  // §3.1.2 invalid messages: 400 naming the defect.
  'badinv01.dat': 400,
  'clerr.dat': 400,
  'ncl.dat': 400,
  'scalar02.dat': 400,
  'scalarlg.dat': 'drop', // a response with overlarge values: dropped
  'quotbal.dat': 400,
  'ltgtruri.dat': 400,
  'lwsruri.dat': 400,
  'lwsstart.dat': 400,
  'trws.dat': 400,
  'escruri.dat': 400,
  'baddate.dat': 404, // §3.1.2.12: a proxy passes a bad Date on unchanged
  'regbadct.dat': 400,
  'badaspec.dat': 400,
  'baddn.dat': 400,
  'badvers.dat': 505,
  'mismatch01.dat': 400,
  'mismatch02.dat': 400,
  'bigcode.dat': 'drop', // a response with a 10-digit status code
  // §3.3 semantics.
  'badbranch.dat': 404, // branch of only the magic cookie: still a valid request
  'insuf.dat': 400, // missing From, To, Call-ID
  'unkscm.dat': 416,
  'novelsc.dat': 416,
  'unksm2.dat': 403, // unknown scheme in To only; a REGISTER, no domain served
  'bext01.dat': 420, // Proxy-Require names extensions no proxy supports (RFC 3261 §16.3 step 5)
  'invut.dat': 404, // 415 is the UAS's answer; a proxy forwards
  'regaut01.dat': 403,
  'multi01.dat': 400,
  'mcl01.dat': 400,
  'bcast.dat': 'drop', // a response
  'zeromf.dat': 483, // OPTIONS not for sipd with Max-Forwards 0
  'cparam01.dat': 403,
  'cparam02.dat': 403,
  'regescrt.dat': 403,
  'sdp01.dat': 404,
  'inv2543.dat': 404,
  'test.dat': 'drop', // not a SIP message: a header line without a colon, nothing to answer with
  // RFC 5118.
  'ipv6-good.dat': 403,
  'port-ambiguous.dat': 403,
  'port-unambiguous.dat': 403,
  'ipv6-bad.dat': 400, // §4.3: IPv6 reference without brackets in the Request-URI
  'ipv6-bug-abnf-3-colons.dat': 400, // §4.4
  'ipv6-correct-abnf-2-colons.dat': 404,
  'via-received-param-with-delim.dat': 404,
  'via-received-param-no-delim.dat': 404,
  'ipv6-in-sdp.dat': 400, // Content-Length as printed in the RFC exceeds the body
  'mult-ip-in-header.dat': 404,
  'mult-ip-in-sdp.dat': 404,
  'ipv4-mapped-ipv6.dat': 404
}
