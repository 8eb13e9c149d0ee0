/**
 * Branch and tag values. RFC 3261 §8.1.1.7 wants branches unique across
 * space and time and starting with the magic cookie; §19.3 wants tags
 * globally unique with at least 32 random bits. Both take 64 bits from a
 * pool of CSPRNG bytes refilled 512 ids at a time, so an id costs a slice
 * and a hex conversion, not a system call.
 */
import { randomFillSync } from 'node:crypto'

/** The RFC 3261 §8.1.1.7 branch prefix of compliant implementations. */
export const MAGIC_COOKIE = 'z9hG4bK'

const POOL_SIZE = 4096
const ID_BYTES = 8
const pool = Buffer.allocUnsafe(POOL_SIZE)
let poolOffset = POOL_SIZE

function randomHex (): string {
  if (poolOffset + ID_BYTES > POOL_SIZE) {
    randomFillSync(pool)
    poolOffset = 0
  }
  const hex = pool.toString('hex', poolOffset, poolOffset + ID_BYTES)
  poolOffset += ID_BYTES
  return hex
}

/** A new Via branch: the magic cookie and 64 random bits (`z9hG4bK` + 16 hex digits). */
export function newBranch (): string {
  return MAGIC_COOKIE + randomHex()
}

/** A new From/To tag: 64 random bits as 16 hex digits. */
export function newTag (): string {
  return randomHex()
}

/** True when `branch` starts with the RFC 3261 magic cookie (compared byte for byte, §8.1.1.7). */
export function hasMagicCookie (branch: string | undefined): branch is string {
  return branch !== undefined && branch.length > 7 && branch.startsWith(MAGIC_COOKIE)
}
