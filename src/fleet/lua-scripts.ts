// The fleet's coordination, as Lua scripts Redis runs atomically: no read-then-write race
// between servers. Every expiry is reckoned on Redis's own clock (TIME), never a member's: a
// member whose clock ran 10 s ahead expired another's live slot, and two were in their gates at
// once. Keys (see
// docs/fleet.md), all under `repo-deploy:{<fleet-name>}:` (one hash slot, so in a Redis Cluster
// every script runs on the one primary that owns them):
//   members          ZSET host -> heartbeat expiry (ms): the live members
//   member:<host>    HASH state, live, reason, seen, instance (the agent that holds the name),
//                    clash (JSON {instance, at}: another agent tried to use the name)  (TTL 7 days)
//   slots            ZSET host -> lease expiry (ms): servers between pre-update and the gate's end
//   slot-tokens      HASH host -> fencing token of its slot (from `fence`): a member whose lease
//                    lapsed and was given to another cannot renew, swap or commit with its old one
//   fence            STRING counter of fencing tokens
//   scout            STRING host (PX lease): the one server that may download an unknown revision
//   current          HASH revision, remote, remoteState, by, at, seq, pinned: the revision the fleet
//                    rolls out; seq counts publications, so a scout publishes only over what it
//                    read; pinned (JSON {by, at}): set by \`fleet rollback\`, no scout publishes
//                    over it until \`fleet resume\`
//   halt             STRING JSON {reason, by, at}: `fleet halt`, until `fleet resume`
//   policy           STRING JSON: the settings every member shares (fleet-policy.ts), with by and
//                    at; written by the first member or by `fleet configure`
//   epoch            STRING JSON {id, by: first-use | init, at}: written once; its loss (a restart
//                    without persistence, FLUSHALL, a failover that lost writes) is noticed by
//                    every member that knew it, which then fails closed until `fleet init`
//   rev:<r>:canaries ZSET host -> lease expiry, or +inf once committed
//   rev:<r>:committed SET hosts that passed the gate
//   rev:<r>:failed   HASH host -> reason
//   rev:<r>:halted   STRING JSON {reason, host, at}: the revision is halted fleet-wide
//   rev:<r>:committed-at STRING when (ms, Redis's clock) a server last committed it: bake-time counts from here
//   rev:<r>:promoted STRING JSON {by, at}: \`fleet promote\` (canary-promote = manual)
// Per-revision keys live 30 days after their last write.

/** Redis's clock in milliseconds, as every script reckons expiry. */
const serverNow = `
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
`;

/**
 * Whether \`host\` may start an update to the revision now, with its slot's fencing token; else
 * why it waits. KEYS: halt, rev halted, rev failed, rev committed, rev canaries, slots, members,
 * fence, slot-tokens, member:<host>, rev promoted, rev committed-at. ARGV: host, lease,
 * max-parallel count and percent, canary count and percent, instance, bake-time (ms), '1' when
 * canary-promote is manual, min-healthy count and percent (live members not updating, after this one starts).
 */
export const beginScript = `${serverNow}
local owner = redis.call('HGET', KEYS[10], 'instance')
if owner and owner ~= ARGV[7] then return {'clash', owner} end
local halt = redis.call('GET', KEYS[1])
if halt then return {'halted-fleet', halt} end
local halted = redis.call('GET', KEYS[2])
if halted then return {'halted-revision', halted} end
local host, lease = ARGV[1], tonumber(ARGV[2])
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
local canaries = limit(tonumber(ARGV[5]), tonumber(ARGV[6]), true)
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
local holding = redis.call('ZSCORE', KEYS[6], host)
if not isCanary and canaries > 0 and ARGV[9] == '1' and not redis.call('GET', KEYS[11]) then
  return {'wait-promote', tostring(committed), tostring(canaries)}
end
local bake = tonumber(ARGV[8])
local lastCommit = redis.call('GET', KEYS[12])
if bake > 0 and lastCommit and not holding and now < tonumber(lastCommit) + bake then
  return {'wait-bake', tostring(now - tonumber(lastCommit)), tostring(tonumber(lastCommit) + bake - now)}
end
if not holding then
  local parallel = limit(tonumber(ARGV[3]), tonumber(ARGV[4]), true)
  local busy = redis.call('ZCARD', KEYS[6])
  if busy >= parallel then return {'wait-slot', tostring(busy), tostring(parallel)} end
  local healthy = limit(tonumber(ARGV[10]), tonumber(ARGV[11]), false)
  if healthy > 0 and live - busy - 1 < healthy then return {'wait-healthy', tostring(live - busy), tostring(healthy), tostring(live)} end
end
redis.call('ZADD', KEYS[6], now + lease, host)
if isCanary then redis.call('ZADD', KEYS[5], now + lease, host) end
local token = redis.call('INCR', KEYS[8])
redis.call('HSET', KEYS[9], host, token)
for i = 3, 5 do redis.call('PEXPIRE', KEYS[i], 2592000000) end
return {'go', isCanary and 'canary' or 'slot', tostring(token)}
`;

/**
 * Whether \`host\` still holds its slot under \`token\`, unexpired (a lapsed one is removed), and
 * how a held one is extended. KEYS[1] slots, KEYS[2] slot-tokens.
 */
const holdsSlot = `
local function holdsSlot(host, token, now)
  local expiry = redis.call('ZSCORE', KEYS[1], host)
  if redis.call('HGET', KEYS[2], host) ~= token then return false end
  if not expiry or tonumber(expiry) <= now then
    redis.call('ZREM', KEYS[1], host)
    return false
  end
  return true
end

-- Extends a held slot and its canary place, if not committed yet (renew and pre-swap, whose KEYS[3] is rev canaries).
local function extendSlot(host, lease, now)
  redis.call('ZADD', KEYS[1], now + lease, host)
  local canary = redis.call('ZSCORE', KEYS[3], host)
  if canary and canary ~= 'inf' then redis.call('ZADD', KEYS[3], now + lease, host) end
end
`;

/**
 * Extends a held slot (and canary place), and the member's heartbeat with it: a member in a long
 * hook is alive (its name is not free for another agent); 0 when the lease was lost. KEYS: slots,
 * slot-tokens, rev canaries, members. ARGV: host, lease, token, heartbeat lease.
 */
export const renewScript = `${serverNow}${holdsSlot}
local host, lease, token = ARGV[1], tonumber(ARGV[2]), ARGV[3]
if not holdsSlot(host, token, now) then return 0 end
redis.call('ZADD', KEYS[4], 'GT', now + tonumber(ARGV[4]), host)
extendSlot(host, lease, now)
return 1
`;

/**
 * Asked just before the swap: the slot still held under its token (and renewed), the fleet not
 * halted, the revision not halted, all in one step, so a halt or a lapsed lease stops a swap
 * that has not happened. KEYS: slots, slot-tokens, rev canaries, halt, rev halted. ARGV: host, lease, token.
 */
export const preSwapScript = `${serverNow}${holdsSlot}
local host, lease, token = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local halt = redis.call('GET', KEYS[4])
if halt then return {'halted-fleet', halt} end
local halted = redis.call('GET', KEYS[5])
if halted then return {'halted-revision', halted} end
if not holdsSlot(host, token, now) then return {'lost'} end
extendSlot(host, lease, now)
return {'go'}
`;

/**
 * The gate passed: the slot is freed and the host counts as committed (a canary for good), and
 * bake-time counts from now; 0, and nothing counted, when the slot had lapsed (another member
 * may have had it meanwhile). KEYS: slots, slot-tokens, rev committed, rev canaries, rev
 * committed-at. ARGV: host, token.
 */
export const commitScript = `${serverNow}${holdsSlot}
local host, token = ARGV[1], ARGV[2]
if not holdsSlot(host, token, now) then return 0 end
redis.call('ZREM', KEYS[1], host)
redis.call('HDEL', KEYS[2], host)
redis.call('SADD', KEYS[3], host)
if redis.call('ZSCORE', KEYS[4], host) then redis.call('ZADD', KEYS[4], '+inf', host) end
redis.call('PEXPIRE', KEYS[3], 2592000000)
redis.call('SET', KEYS[5], now, 'PX', 2592000000)
return 1
`;

/**
 * A member's heartbeat, its expiry on Redis's clock. The name belongs to the agent (instance)
 * that holds it while its heartbeat lasts: another agent under the same name is refused
 * ({'clash', owner}) and noted on the member, so \`fleet status\` shows it. KEYS: members,
 * member:<host>. ARGV: host, lease, state, live, reason, seen, instance.
 */
export const heartbeatScript = `${serverNow}
local host, lease, instance = ARGV[1], tonumber(ARGV[2]), ARGV[7]
local owner = redis.call('HGET', KEYS[2], 'instance')
local expiry = redis.call('ZSCORE', KEYS[1], host)
if owner and owner ~= instance and expiry and tonumber(expiry) > now then
  redis.call('HSET', KEYS[2], 'clash', cjson.encode({instance = instance, at = now}))
  return {'clash', owner}
end
redis.call('ZADD', KEYS[1], now + lease, host)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 604800000)
redis.call('HSET', KEYS[2], 'state', ARGV[3], 'live', ARGV[4], 'reason', ARGV[5], 'seen', ARGV[6], 'instance', instance)
redis.call('PEXPIRE', KEYS[2], 604800000)
return {'ok'}
`;

/**
 * The update failed (blocked, reverted, failed the gate, or the agent crashed after its swap):
 * the slot is freed, the failure noted, and the revision halted for the fleet when a canary
 * failed or max-failed-hosts is reached. ARGV[5] '1': the host was a canary (said by a crash
 * report, whose canary place may have lapsed meanwhile). Returns the halt record, or false.
 */
export const failScript = `
local host, reason, at, maxFailed = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
redis.call('ZREM', KEYS[1], host)
redis.call('HSET', KEYS[2], host, reason)
redis.call('PEXPIRE', KEYS[2], 2592000000)
local wasCanary = redis.call('ZSCORE', KEYS[3], host) or ARGV[5] == '1'
redis.call('ZREM', KEYS[3], host)
local failed = redis.call('HLEN', KEYS[2])
if wasCanary or failed >= maxFailed then
  local why = wasCanary and 'the canary failed' or (tostring(failed) .. ' servers failed it (max-failed-hosts ' .. ARGV[4] .. ')')
  local record = cjson.encode({reason = why .. '; last on ' .. host .. ': ' .. reason, host = host, at = at})
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

/**
 * Publishes the revision the fleet rolls out, only when \`current\` is still what the scout read
 * (its seq): a scout slowed past its lease must not set back a newer revision another scout
 * published meanwhile. KEYS: current. ARGV: seq read ('' for none), revision, remote,
 * remoteState, by, at. Returns {'ok', seq}, {'stale', revision, by}, or {'pinned', revision,
 * pin record} while \`fleet rollback\` holds the fleet at an earlier revision.
 */
export const publishScript = `
local pinned = redis.call('HGET', KEYS[1], 'pinned')
if pinned then return {'pinned', redis.call('HGET', KEYS[1], 'revision') or '', pinned} end
local seq = redis.call('HGET', KEYS[1], 'seq') or ''
if seq ~= ARGV[1] then
  return {'stale', redis.call('HGET', KEYS[1], 'revision') or '', redis.call('HGET', KEYS[1], 'by') or ''}
end
local next = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('HSET', KEYS[1], 'revision', ARGV[2], 'remote', ARGV[3], 'remoteState', ARGV[4], 'by', ARGV[5], 'at', ARGV[6])
return {'ok', tostring(next)}
`;

/**
 * The fleet's epoch, as a member that knew \`ARGV[1]\` ('' for none) finds it: {'ok', record,
 * policy}, {'new', record, policy} (written now, on first use, by a member that knew none), or
 * {'lost'} (gone). The fleet's policy comes with it, written first by this member if there is
 * none. KEYS: epoch, policy. ARGV: known id, new id, at, this member's policy (JSON).
 */
export const epochScript = `
local current = redis.call('GET', KEYS[1])
if not current and ARGV[1] ~= '' then return {'lost'} end
redis.call('SET', KEYS[2], ARGV[4], 'NX')
local policy = redis.call('GET', KEYS[2])
if current then return {'ok', current, policy} end
local record = cjson.encode({id = ARGV[2], by = 'first-use', at = ARGV[3]})
redis.call('SET', KEYS[1], record)
return {'new', record, policy}
`;

/**
 * \`fleet rollback\`: the fleet rolls out an earlier revision, pinned (no scout publishes over it).
 * KEYS: current. ARGV: revision, remote, by, at, pin record (JSON).
 */
export const pinScript = `
redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('HSET', KEYS[1], 'revision', ARGV[1], 'remote', ARGV[2], 'remoteState', '{}', 'by', ARGV[3], 'at', ARGV[4], 'pinned', ARGV[5])
return 1
`;

/** Extends the scout role while its holder downloads; 0 when another member holds it now. */
export const renewScoutScript = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`;

/** Gives up the scout role if this host still holds it. */
export const releaseScoutScript = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;
