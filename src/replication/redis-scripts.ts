/*
 * The Lua scripts of RedisReplicaStore. Each runs atomically in Redis, so each is one
 * linearisable step of the ReplicaStore contract however many proxies share the store.
 *
 * Keys (P = the store's key prefix):
 * - `P s:KEY`    hash {owner, version, data, lastAccessAt, xfer}; PEXPIREAT = idle expiry.
 * - `P o:OWNER`  sorted set: the keys OWNER owns, scored by the hash's expiry time (ms, Redis
 *                clock), so live members are `ZCOUNT [now, +inf]` and expired ones can be
 *                pruned by score without touching the hashes.
 * - `P owners`   set of every owner ever written (for counting).
 * - `P epoch`    the store's epoch: created with SET NX; gone when Redis lost its data.
 *
 * Time inside scripts is Redis's `TIME`: the same clock that expires the hashes. Numbers that
 * must survive exactly (versions up to 2^53, timestamps) are stored as the strings the store
 * sent, never re-formatted by Lua (its `tostring` keeps only 14 significant digits).
 */

/** `now` in ms on Redis's clock. */
const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/**
 * write: KEYS writer's index, owners set, then one session hash per record. ARGV writer,
 * pruneLimit, then per record: key, version, data (JSON), lastAccessAt, ttlMs (from
 * lastAccessAt, ≤ idle). Returns {outcomes…, pruned}. Per record: fence first, then version;
 * the expiry never moves earlier. One call per batch (a slice of it): Redis's clock is read,
 * the owner registered and the index pruned once, not per record.
 */
export const WRITE_SCRIPT = `${NOW}
local writer = ARGV[1]
local index = KEYS[1]
local out = {}
local added = false
for i = 3, #KEYS do
  local hash = KEYS[i]
  local a = (i - 3) * 5 + 3
  local key, version, last = ARGV[a], ARGV[a + 1], ARGV[a + 3]
  local expireAt = now + tonumber(ARGV[a + 4])
  local current = redis.call('HMGET', hash, 'owner', 'version', 'lastAccessAt')
  local outcome = 'ok'
  if current[1] then
    if current[1] ~= writer then outcome = 'not-owner'
    elseif tonumber(version) <= tonumber(current[2]) then outcome = 'stale'
    else
      if tonumber(current[3]) > tonumber(last) then last = current[3] end
      local ttl = redis.call('PTTL', hash)
      if ttl > 0 and now + ttl > expireAt then expireAt = now + ttl end
    end
  end
  if outcome == 'ok' then
    if expireAt <= now then
      -- A new replica already idle for the whole timeout: applied and expired at once.
      redis.call('DEL', hash)
      redis.call('ZREM', index, key)
    else
      redis.call('HSET', hash, 'owner', writer, 'version', version, 'data', ARGV[a + 2], 'lastAccessAt', last)
      redis.call('PEXPIREAT', hash, expireAt)
      redis.call('ZADD', index, expireAt, key)
      added = true
    end
  end
  out[#out + 1] = outcome
end
local pruned = 0
if added then
  redis.call('SADD', KEYS[2], writer)
  -- Prunes expired members of the writer's index, more than the batch adds: every replica
  -- enters by a write, so the index cannot grow with expired sessions.
  local gone = redis.call('ZRANGEBYSCORE', index, '-inf', '(' .. now, 'LIMIT', 0, tonumber(ARGV[2]))
  if #gone > 0 then redis.call('ZREM', index, unpack(gone)) end
  pruned = #gone
end
out[#out + 1] = pruned
return out`;

/**
 * touch: KEYS writer's index, then one session hash per key. ARGV writer, at (ms), idleMs,
 * then the keys. Returns how many were touched (the writer owns them). Neither time moves
 * backwards.
 */
export const TOUCH_SCRIPT = `${NOW}
local writer, at, idle = ARGV[1], ARGV[2], tonumber(ARGV[3])
local touched = 0
for i = 2, #KEYS do
  local hash = KEYS[i]
  local current = redis.call('HMGET', hash, 'owner', 'lastAccessAt')
  if current[1] == writer then
    local expireAt = now + idle
    local ttl = redis.call('PTTL', hash)
    if ttl > 0 and now + ttl > expireAt then expireAt = now + ttl end
    if tonumber(at) > tonumber(current[2]) then redis.call('HSET', hash, 'lastAccessAt', at) end
    redis.call('PEXPIREAT', hash, expireAt)
    redis.call('ZADD', KEYS[1], expireAt, ARGV[i + 2])
    touched = touched + 1
  end
end
return touched`;

/**
 * remove: KEYS writer's index, then one session hash per key. ARGV writer, then the keys.
 * Returns how many were removed (the writer owned them).
 */
export const REMOVE_SCRIPT = `local removed = 0
for i = 2, #KEYS do
  if redis.call('HGET', KEYS[i], 'owner') == ARGV[1] then
    redis.call('DEL', KEYS[i])
    redis.call('ZREM', KEYS[1], ARGV[i])
    removed = removed + 1
  end
end
return removed`;

/**
 * transfer: KEYS session hash, from's index, to's index, owners set. ARGV key, from, to,
 * token (unique per call). Returns {version, data, lastAccessAt} or nil. Expiry and access
 * time are unchanged (a failover is not a use of the session). The token makes the script
 * safe to resend after a lost reply (ioredis resends in-flight commands on reconnect): the
 * resent call finds its own move and answers as the first did, instead of "not yours".
 */
export const TRANSFER_SCRIPT = `local h = redis.call('HMGET', KEYS[1], 'owner', 'version', 'data', 'lastAccessAt', 'xfer')
if h[1] == ARGV[3] and h[5] == ARGV[4] then return {h[2], h[3], h[4]} end
if h[1] ~= ARGV[2] then return nil end
-- The index score is the hash's expiry; recomputed only if the index lost the member.
local expireAt = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not expireAt then
  ${NOW}
  expireAt = now + math.max(redis.call('PTTL', KEYS[1]), 0)
end
redis.call('HSET', KEYS[1], 'owner', ARGV[3], 'xfer', ARGV[4])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], expireAt, ARGV[1])
redis.call('SADD', KEYS[4], ARGV[3])
return {h[2], h[3], h[4]}`;

/**
 * owned: KEYS owner's index, then one session hash per key. ARGV owner, then the keys.
 * Returns {owned keys, pruned}: keys whose hash the owner still holds; the others (expired,
 * evicted) leave the index.
 */
export const OWNED_SCRIPT = `local owned = {}
local gone = {}
for i = 2, #KEYS do
  if redis.call('HGET', KEYS[i], 'owner') == ARGV[1] then owned[#owned + 1] = ARGV[i]
  else gone[#gone + 1] = ARGV[i] end
end
if #gone > 0 then redis.call('ZREM', KEYS[1], unpack(gone)) end
return {owned, #gone}`;

/**
 * counts: KEYS owners set. ARGV index key prefix (`P o:`). Returns {owner, live count, …}:
 * members not yet expired, by score (no hash is read).
 */
export const COUNTS_SCRIPT = `${NOW}
local out = {}
for _, owner in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  out[#out + 1] = owner
  out[#out + 1] = redis.call('ZCOUNT', ARGV[1] .. owner, now, '+inf')
end
return out`;

/** epoch: KEYS epoch key. ARGV a fresh random epoch, used only if the key is gone. Returns the epoch. */
export const EPOCH_SCRIPT = `redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])`;
