/**
 * A copy of `s` that shares no memory with it. The parser's header
 * values are slices of the request's text, so a binding holding them as
 * they are keeps the whole REGISTER alive for as long as it is stored (in
 * the memory store, up to max_expires); the copy keeps only its own bytes.
 * UTF-16 in and out, so any string survives unchanged.
 */
export function ownString (s: string): string {
  return Buffer.from(s, 'utf16le').toString('utf16le')
}
