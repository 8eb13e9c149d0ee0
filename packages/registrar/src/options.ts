/** @internal Copies an options object without its `undefined` fields, so defaults apply to them. */
export function definedOnly<T extends object> (o: T): Partial<T> {
  const out: Partial<T> = {}
  for (const k of Object.keys(o) as Array<keyof T>) if (o[k] !== undefined) out[k] = o[k]
  return out
}
