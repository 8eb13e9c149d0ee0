/**
 * Fast Buffer slicing and writing. Buffer#latin1Slice / #utf8Slice /
 * #latin1Write / #utf8Write skip the encoding dispatch of toString() and
 * write(); they are on every Buffer in Node 20+ but not in the typings.
 */

type Slicer = (this: Buffer, start: number, end: number) => string
type Writer = (this: Buffer, s: string, offset: number) => number

const proto = Buffer.prototype as unknown as { latin1Slice?: Slicer, utf8Slice?: Slicer, latin1Write?: Writer, utf8Write?: Writer }

const latin1SliceFn: Slicer = proto.latin1Slice ?? function (this: Buffer, s, e) { return this.toString('latin1', s, e) }
const utf8SliceFn: Slicer = proto.utf8Slice ?? function (this: Buffer, s, e) { return this.toString('utf8', s, e) }
const utf8WriteFn: Writer = proto.utf8Write ?? function (this: Buffer, str, o) { return this.write(str, o, 'utf8') }

/** Bytes [start, end) as a latin1 string (one char per byte). */
export function latin1 (buf: Buffer, start: number, end: number): string {
  return latin1SliceFn.call(buf, start, end)
}

/** Bytes [start, end) decoded as UTF-8. */
export function utf8 (buf: Buffer, start: number, end: number): string {
  return utf8SliceFn.call(buf, start, end)
}

/** Write `s` as UTF-8 at `offset`; returns the number of bytes written. */
export function writeUtf8 (buf: Buffer, s: string, offset: number): number {
  return utf8WriteFn.call(buf, s, offset)
}

/** Latin1 text back to UTF-8 when it holds non-ASCII bytes (they are rare in SIP headers). */
export function decodeText (raw: string): string {
  for (let i = 0; i < raw.length; i++) {
    if (raw.charCodeAt(i) > 0x7f) return Buffer.from(raw, 'latin1').toString('utf8')
  }
  return raw
}
