/**
 * Lua scripts of the Redis location store. Each runs atomically on the
 * server. Bindings are stored as the JSON the TypeScript side wrote; the
 * scripts decode it to read expiresAt, callId and cseq, and never re-encode,
 * so every field round-trips unchanged.
 *
 * Numbers go to redis.call as strings built with %d: Lua's own number to
 * string conversion switches to exponent notation at 15 digits.
 */
import { createHash } from 'node:crypto'

/** A script and its SHA1 for EVALSHA. */
export interface LuaScript {
  readonly source: string
  readonly sha: string
}

function script (source: string): LuaScript {
  return Object.freeze({ source, sha: createHash('sha1').update(source).digest('hex') })
}

// Index maintenance, shared by the scripts. IDX_EXP scores each AOR with the
// expiry of its last binding (ZCOUNT for count(), ZRANGEBYSCORE for cleanup);
// IDX_LEX holds the same members at score 0 for ZRANGEBYLEX paging. Besides
// writing the AOR's own entry, every call removes up to `sweep` entries whose
// AOR has fully expired, so the index is cleaned a little on every write and
// nothing ever scans the keyspace.
const INDEX_FN = `
local function sipd_index(idxExp, idxLex, aor, maxExp, now, sweep)
  if maxExp > 0 then
    redis.call('ZADD', idxExp, string.format('%d', maxExp), aor)
    redis.call('ZADD', idxLex, 0, aor)
  else
    redis.call('ZREM', idxExp, aor)
    redis.call('ZREM', idxLex, aor)
  end
  if sweep > 0 then
    local old = redis.call('ZRANGEBYSCORE', idxExp, '-inf', string.format('%d', now), 'LIMIT', 0, sweep)
    if #old > 0 then
      redis.call('ZREM', idxExp, unpack(old))
      redis.call('ZREM', idxLex, unpack(old))
    end
  end
end
`

// Reads an AOR hash, drops malformed and expired fields (expiresAt <= now),
// returns live bindings as key -> {expiresAt, callId, cseq, json} and their count.
const LOAD_FN = `
local function sipd_load(key, now)
  local all = redis.call('HGETALL', key)
  local live = {}
  local n = 0
  local dead = {}
  for i = 1, #all, 2 do
    local ok, b = pcall(cjson.decode, all[i + 1])
    if ok and type(b) == 'table' and type(b.expiresAt) == 'number' and b.expiresAt > now then
      live[all[i]] = { b.expiresAt, b.callId, b.cseq, all[i + 1] }
      n = n + 1
    else
      dead[#dead + 1] = all[i]
    end
  end
  if #dead > 0 then redis.call('HDEL', key, unpack(dead)) end
  return live, n
end

local function sipd_json(live)
  local out = {}
  for _, e in pairs(live) do out[#out + 1] = e[4] end
  return out
end
`

/**
 * One REGISTER's update of one AOR (RFC 3261 §10.3 steps 6 and 7, the
 * contact limit), the rules of `planUpdate` in location-store.ts.
 *
 * KEYS: 1 AOR hash; 2, 3 index sorted sets (only when the index is written
 * atomically, i.e. not under Redis Cluster).
 * ARGV: 1 now, 2 Call-ID, 3 CSeq, 4 removeAll '1'/'0', 5 max contacts,
 * 6 AOR, 7 index sweep count, then per change: key, expiresAt ('0' removes),
 * binding JSON.
 * Reply: { status, detail, maxExp, json... } with status 'ok' (detail: the
 * outcomes joined by ',' or for removeAll the number removed; json: the
 * bindings after), 'out-of-order' (detail: change index or -1) or
 * 'too-many-contacts'; on failure json holds the unchanged bindings.
 */
export const UPDATE_SCRIPT = script(INDEX_FN + LOAD_FN + `
local now = tonumber(ARGV[1])
local callId = ARGV[2]
local cseq = tonumber(ARGV[3])
local maxContacts = tonumber(ARGV[5])
local aor = ARGV[6]
local sweep = tonumber(ARGV[7])
local live, liveCount = sipd_load(KEYS[1], now)

local function finish(maxExp, count)
  if count == 0 then
    redis.call('DEL', KEYS[1])
  else
    redis.call('PEXPIREAT', KEYS[1], string.format('%d', maxExp))
  end
  if #KEYS >= 3 then sipd_index(KEYS[2], KEYS[3], aor, maxExp, now, sweep) end
end

if ARGV[4] == '1' then
  for _, e in pairs(live) do
    if e[2] == callId and e[3] >= cseq then
      local r = { 'out-of-order', '-1', '0' }
      for _, j in ipairs(sipd_json(live)) do r[#r + 1] = j end
      return r
    end
  end
  finish(0, 0)
  return { 'ok', tostring(liveCount), '0' }
end

local work = {}
for k, e in pairs(live) do work[k] = e end
local workCount = liveCount
local outcomes = {}
local first = 8
local n = (#ARGV - first + 1) / 3
for i = 0, n - 1 do
  local key = ARGV[first + i * 3]
  local exp = tonumber(ARGV[first + i * 3 + 1])
  local old = live[key]
  if old ~= nil and old[2] == callId and old[3] >= cseq then
    local r = { 'out-of-order', tostring(i), '0' }
    for _, j in ipairs(sipd_json(live)) do r[#r + 1] = j end
    return r
  end
  if exp == 0 then
    if work[key] ~= nil then
      work[key] = nil
      workCount = workCount - 1
      outcomes[#outcomes + 1] = 'removed'
    else
      outcomes[#outcomes + 1] = 'absent'
    end
  else
    if work[key] ~= nil then
      outcomes[#outcomes + 1] = 'refreshed'
    else
      workCount = workCount + 1
      outcomes[#outcomes + 1] = 'added'
    end
    work[key] = { exp, callId, cseq, ARGV[first + i * 3 + 2] }
  end
end

if workCount > maxContacts and workCount > liveCount then
  local r = { 'too-many-contacts', '', '0' }
  for _, j in ipairs(sipd_json(live)) do r[#r + 1] = j end
  return r
end

for i = 0, n - 1 do
  local key = ARGV[first + i * 3]
  if ARGV[first + i * 3 + 1] == '0' then
    redis.call('HDEL', KEYS[1], key)
  else
    redis.call('HSET', KEYS[1], key, ARGV[first + i * 3 + 2])
  end
end
local maxExp = 0
local r = { 'ok', table.concat(outcomes, ','), '0' }
for _, e in pairs(work) do
  if e[1] > maxExp then maxExp = e[1] end
  r[#r + 1] = e[4]
end
r[3] = string.format('%d', maxExp)
finish(maxExp, workCount)
return r
`)

/**
 * Removes an AOR (admin). KEYS and the index as for UPDATE_SCRIPT.
 * ARGV: 1 now, 2 AOR, 3 index sweep count. Reply: live bindings removed.
 */
export const REMOVE_SCRIPT = script(INDEX_FN + LOAD_FN + `
local now = tonumber(ARGV[1])
local _, n = sipd_load(KEYS[1], now)
redis.call('DEL', KEYS[1])
if #KEYS >= 3 then sipd_index(KEYS[2], KEYS[3], ARGV[2], 0, now, tonumber(ARGV[3])) end
return n
`)

/**
 * Drops expired fields of one AOR after a lookup saw them. Conditional on
 * the stored expiry, so a binding refreshed since the read is kept.
 * KEYS: 1 AOR hash. ARGV: 1 now. Reply: live bindings left.
 */
export const PRUNE_SCRIPT = script(LOAD_FN + `
local _, n = sipd_load(KEYS[1], tonumber(ARGV[1]))
return n
`)

/**
 * The index write on its own, for Redis Cluster where the AOR hash and the
 * index live in different slots and cannot share a script.
 * KEYS: 1, 2 index sorted sets. ARGV: 1 AOR, 2 max expiry (0 removes),
 * 3 now, 4 sweep count.
 */
export const INDEX_SCRIPT = script(INDEX_FN + `
sipd_index(KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]))
return 1
`)
