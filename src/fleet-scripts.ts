// The fleet's coordination, as Lua scripts Redis runs atomically: no read-then-write race
// between servers. Times are the caller's milliseconds (every member passes its own clock; a
// lease is long, 60 s by default, so ordinary clock skew does not matter). Keys (see
// docs/fleet.md), all under `repo-deploy:{<fleet-name>}:` so a Redis Cluster keeps them in one
// slot:
//   members          ZSET host -> heartbeat expiry (ms): the live members
//   member:<host>    HASH state, live, revision, reason, seen  (TTL 7 days)
//   slots            ZSET host -> lease expiry (ms): servers between pre-update and the gate's end
//   scout            STRING host (PX lease): the one server that may download an unknown revision
//   current          HASH revision, remote, remoteState, by, at: the revision the fleet rolls out
//   halt             STRING JSON {reason, by, at}: `fleet halt`, until `fleet resume`
//   rev:<r>:canaries ZSET host -> lease expiry, or +inf once committed
//   rev:<r>:committed SET hosts that passed the gate
//   rev:<r>:failed   HASH host -> reason
//   rev:<r>:halted   STRING JSON {reason, host, at}: the revision is halted fleet-wide
// Per-revision keys live 30 days after their last write.

/** Whether `host` may start an update to the revision now; else why it waits. */
export const beginScript = `
local halt = redis.call('GET', KEYS[1])
if halt then return {'halted-fleet', halt} end
local halted = redis.call('GET', KEYS[2])
if halted then return {'halted-revision', halted} end
local host, now, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local failedHere = redis.call('HGET', KEYS[3], host)
if failedHere then return {'failed-here', failedHere} end
local live = redis.call('ZCOUNT', KEYS[7], '(' .. now, '+inf')
if live < 1 then live = 1 end
local function limit(count, percent, floor1)
  if percent > 0 then
    local n = math.floor(live * percent / 100)
    if floor1 and n < 1 then n = 1 end
    return n
  end
  return count
end
local canaries = limit(tonumber(ARGV[6]), tonumber(ARGV[7]), true)
local committed = redis.call('SCARD', KEYS[4])
local isCanary = false
if canaries > 0 and committed < canaries then
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
  if not redis.call('ZSCORE', KEYS[5], host) then
    local active = redis.call('ZCARD', KEYS[5])
    if active >= canaries then
      return {'wait-canary', tostring(committed), tostring(canaries)}
    end
  end
  isCanary = true
end
redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', now)
if not redis.call('ZSCORE', KEYS[6], host) then
  local parallel = limit(tonumber(ARGV[4]), tonumber(ARGV[5]), true)
  local busy = redis.call('ZCARD', KEYS[6])
  if busy >= parallel then return {'wait-slot', tostring(busy), tostring(parallel)} end
end
redis.call('ZADD', KEYS[6], now + lease, host)
if isCanary then redis.call('ZADD', KEYS[5], now + lease, host) end
for i = 3, 5 do redis.call('PEXPIRE', KEYS[i], 2592000000) end
return {'go', isCanary and 'canary' or 'slot'}
`;

/** Extends a held slot (and canary place); 0 when the lease was already lost. */
export const renewScript = `
local host, now, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local expiry = redis.call('ZSCORE', KEYS[1], host)
if not expiry or tonumber(expiry) <= now then
  redis.call('ZREM', KEYS[1], host)
  return 0
end
redis.call('ZADD', KEYS[1], now + lease, host)
local canary = redis.call('ZSCORE', KEYS[2], host)
if canary and canary ~= 'inf' then redis.call('ZADD', KEYS[2], now + lease, host) end
return 1
`;

/** The gate passed: the slot is freed and the host counts as committed (a canary for good). */
export const commitScript = `
local host = ARGV[1]
redis.call('ZREM', KEYS[1], host)
redis.call('SADD', KEYS[2], host)
if redis.call('ZSCORE', KEYS[3], host) then redis.call('ZADD', KEYS[3], '+inf', host) end
redis.call('PEXPIRE', KEYS[2], 2592000000)
return 1
`;

/**
 * The update failed (blocked, reverted, failed the gate): the slot is freed, the failure noted,
 * and the revision halted for the fleet when a canary failed or max-failed-hosts is reached.
 * Returns the halt record, or false.
 */
export const failScript = `
local host, reason, now, maxFailed = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
redis.call('ZREM', KEYS[1], host)
redis.call('HSET', KEYS[2], host, reason)
redis.call('PEXPIRE', KEYS[2], 2592000000)
local wasCanary = redis.call('ZSCORE', KEYS[3], host)
redis.call('ZREM', KEYS[3], host)
local failed = redis.call('HLEN', KEYS[2])
if wasCanary or failed >= maxFailed then
  local why = wasCanary and 'the canary failed' or (tostring(failed) .. ' servers failed it (max-failed-hosts ' .. ARGV[4] .. ')')
  local record = cjson.encode({reason = why .. '; last on ' .. host .. ': ' .. reason, host = host, at = now})
  redis.call('SET', KEYS[4], record, 'PX', 2592000000, 'NX')
  return redis.call('GET', KEYS[4])
end
return false
`;

/** Frees the slot (and an uncommitted canary place) of an update abandoned by a stop. */
export const releaseScript = `
redis.call('ZREM', KEYS[1], ARGV[1])
local canary = redis.call('ZSCORE', KEYS[2], ARGV[1])
if canary and canary ~= 'inf' then redis.call('ZREM', KEYS[2], ARGV[1]) end
return 1
`;

/** Gives up the scout role if this host still holds it. */
export const releaseScoutScript = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;
