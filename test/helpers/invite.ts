// One hand-built INVITE over UDP and the statuses that come back, for tests
// that only care which final response sipd chose (404, 480, ...).

import dgram from 'node:dgram'
import { parseMessage } from '@sipd/sip-parser'

/**
 * Sends one INVITE for `uri` from `localIp` to sipd at 127.0.0.1:`port` and
 * returns the statuses of the responses in arrival order, up to and including
 * the first final one; whatever came within 5 s if no final arrives.
 */
export async function inviteStatuses (localIp: string, port: number, uri: string): Promise<number[]> {
  const sock = dgram.createSocket('udp4')
  await new Promise<void>(resolve => sock.bind(0, localIp, resolve))
  const lp = sock.address().port
  const tag = Math.random().toString(16).slice(2)
  const msg = [
    `INVITE ${uri} SIP/2.0`,
    `Via: SIP/2.0/UDP ${localIp}:${lp};branch=z9hG4bK${tag}`,
    'Max-Forwards: 70',
    `From: <sip:media@${localIp}>;tag=${tag}`,
    `To: <${uri}>`,
    `Call-ID: ${tag}@${localIp}`,
    'CSeq: 1 INVITE',
    'Content-Length: 0',
    '', ''
  ].join('\r\n')
  const got: number[] = []
  try {
    return await new Promise<number[]>(resolve => {
      const timer = setTimeout(() => resolve(got), 5000)
      sock.on('message', data => {
        const m = parseMessage(data)
        if (m.isRequest) return
        got.push(m.status)
        if (m.status >= 200) {
          clearTimeout(timer)
          resolve(got)
        }
      })
      sock.send(Buffer.from(msg), port, '127.0.0.1')
    })
  } finally {
    sock.close()
  }
}
