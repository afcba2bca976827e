import { HALF_OPEN_RETRY_MS, LUA_PRELUDE } from "./lua-prelude.ts";

/** Keys per candidate provider key in {@link ACQUIRE_SCRIPT}: log, usage, block. */
export const ACQUIRE_KEYS_PER_KEY = 3;
/** Arguments per candidate provider key in {@link ACQUIRE_SCRIPT}: id, priority, rpm, tpm, rpd. */
export const ACQUIRE_ARGS_PER_KEY = 5;

/**
 * Admits one call, atomically: checks the circuit (taking a probe slot while
 * half-open), picks a key (not blocked; a key whose exhaustion has expired first,
 * as its probe; else best priority with headroom; least used in the last minute;
 * given order on ties) and records the call against it.
 *
 * KEYS: 1 target state, 2 probes, 3 in-flight; then per candidate key: log, usage, block.
 * ARGV: 1 now ('' = Redis TIME), 2 callId, 3 tokens, 4 leaseMs, 5 halfOpenProbes,
 *       6 candidate count, 7 rate window in ms (60 s plus the margin); then per candidate,
 *       sorted by priority (stable): id, priority, rpm, tpm, rpd (-1 = unlimited).
 * Returns {1, keyId, probe 0|1} or {0, reason, retryAfterMs (-1 = none)}.
 *
 * The RPM window is (now - window, now], the window being 60 s plus a margin: a
 * call is admitted only while fewer than `rpm` calls were admitted in it. So no
 * span of 60 s plus the margin ever holds more than `rpm` admissions, whichever
 * process made them, and a provider that counts arrivals in its own 60-second
 * window sees at most `rpm` even when calls reach it up to the margin later than
 * they were admitted (connection set-up, clock skew).
 *
 * An exhausted key (auth failed, out of credit) stays out until its retry time;
 * after it, the next call that could use the key is its probe: the block then
 * names the probe's call id and holds the key out for the probe's lease, so only
 * one call at a time tries the key. The release script restores the key on the
 * probe's success and re-arms the block on a key failure.
 */
export const ACQUIRE_SCRIPT = `${LUA_PRELUDE}
local HALF_OPEN_RETRY_MS = ${HALF_OPEN_RETRY_MS}

local now = clock(ARGV[1])
local callId = ARGV[2]
local tokens = tonumber(ARGV[3])
local leaseMs = tonumber(ARGV[4])
local halfOpenProbes = tonumber(ARGV[5])
local keyCount = tonumber(ARGV[6])
local windowMs = tonumber(ARGV[7])

local function extendTtl(key, ms)
  if redis.call('PTTL', key) < ms then redis.call('PEXPIRE', key, ms) end
end

-- Drops log entries that left the window, keeps the token sum in step with the
-- log, and returns the requests and tokens inside the window.
local function trimWindow(logKey, usageKey, cutoff)
  local stored = tonumber(redis.call('HGET', usageKey, 'tokens')) or 0
  local used = stored
  local expired = redis.call('ZRANGEBYSCORE', logKey, '-inf', int(cutoff))
  if #expired > 0 then
    for i = 1, #expired do used = used - memberTokens(expired[i]) end
    redis.call('ZREMRANGEBYSCORE', logKey, '-inf', int(cutoff))
  end
  local count = redis.call('ZCARD', logKey)
  if count == 0 or used < 0 then used = 0 end
  if used ~= stored then
    redis.call('HSET', usageKey, 'tokens', int(used))
    redis.call('PEXPIRE', usageKey, USAGE_TTL_MS)
  end
  return count, used
end

-- How long until the oldest entries of the window free at least 'excess' tokens.
local function tokensFreedAfter(logKey, excess)
  local entries = redis.call('ZRANGE', logKey, 0, -1, 'WITHSCORES')
  local freed = 0
  for i = 1, #entries, 2 do
    freed = freed + memberTokens(entries[i])
    if freed >= excess then return tonumber(entries[i + 1]) + windowMs - now end
  end
  return windowMs
end

-- Circuit of the provider+model.
local circuit = redis.call('HMGET', KEYS[1], 'state', 'openUntil')
local state = circuit[1] or 'closed'
if state == 'open' then
  local openUntil = tonumber(circuit[2]) or 0
  if now < openUntil then return {0, 'circuit_open', openUntil - now} end
  state = 'half-open'
end
local probe = 0
if state == 'half-open' then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', int(now))
  if redis.call('ZCARD', KEYS[2]) >= halfOpenProbes then
    local wait = HALF_OPEN_RETRY_MS
    local soonest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    if soonest[2] then wait = math.min(wait, tonumber(soonest[2]) - now) end
    return {0, 'circuit_open', math.max(1, wait)}
  end
  probe = 1
end

-- Key rotation.
local cutoff = now - windowMs
local today = math.floor(now / DAY_MS)
local chosen, chosenPriority, chosenCount, chosenReason
local usable = 0
local cooldownWait, rateWait
for index = 0, keyCount - 1 do
  local arg = 8 + index * ${ACQUIRE_ARGS_PER_KEY}
  local key = 4 + index * ${ACQUIRE_KEYS_PER_KEY}
  local logKey, usageKey, blockKey = KEYS[key], KEYS[key + 1], KEYS[key + 2]
  local priority = tonumber(ARGV[arg + 1])
  local kind, detail = readBlock(blockKey)
  local blocked = false
  local dueProbe, probeReason = false, nil
  if kind == 'exhausted' then
    local retryAt, _, reason = readExhausted(detail)
    if now < retryAt then blocked = true else dueProbe, probeReason = true, reason end
  elseif kind == 'cooling' then
    local untilMs = tonumber(detail) or 0
    if untilMs > now then
      blocked = true
      cooldownWait = minimum(cooldownWait, untilMs - now)
    end
  end
  -- Candidates come sorted by priority: once a key is chosen, worse groups cannot win,
  -- except a key whose probe is due.
  local worse = chosen ~= nil and priority > chosenPriority
  if not blocked and (dueProbe or not worse) then
    usable = usable + 1
    local rpm, tpm, rpd = tonumber(ARGV[arg + 2]), tonumber(ARGV[arg + 3]), tonumber(ARGV[arg + 4])
    local count, used = trimWindow(logKey, usageKey, cutoff)
    local wait = 0
    if rpm >= 0 and count >= rpm then
      -- The window holds count entries; count - rpm + 1 of them must leave.
      local entry = redis.call('ZRANGE', logKey, count - rpm, count - rpm, 'WITHSCORES')
      local freeAt = windowMs
      if entry[2] then freeAt = tonumber(entry[2]) + windowMs - now end
      wait = math.max(wait, freeAt)
    end
    if tpm >= 0 then
      -- A call larger than the whole limit needs an empty window, or it would never run.
      local excess = used + math.min(tokens, tpm) - tpm
      if excess > 0 then wait = math.max(wait, tokensFreedAfter(logKey, excess)) end
    end
    if rpd >= 0 then
      local day = redis.call('HMGET', usageKey, 'day', 'today')
      local requestsToday = 0
      if tonumber(day[1]) == today then requestsToday = tonumber(day[2]) or 0 end
      if requestsToday >= rpd then wait = math.max(wait, (today + 1) * DAY_MS - now) end
    end
    if dueProbe then
      if wait > 0 then
        rateWait = minimum(rateWait, wait)
      else
        chosen, chosenReason = index, probeReason
        break
      end
    elseif wait > 0 then
      rateWait = minimum(rateWait, wait)
    elseif chosen == nil or priority < chosenPriority or (priority == chosenPriority and count < chosenCount) then
      chosen, chosenPriority, chosenCount, chosenReason = index, priority, count, nil
    end
  end
end

if chosen == nil then
  if usable == 0 then return {0, 'no_key', cooldownWait or -1} end
  return {0, 'rate_limited', math.max(1, minimum(rateWait, cooldownWait))}
end

-- Record the call against the chosen key.
local key = 4 + chosen * ${ACQUIRE_KEYS_PER_KEY}
local logKey, usageKey, blockKey = KEYS[key], KEYS[key + 1], KEYS[key + 2]
if chosenReason ~= nil then
  -- This call probes the exhausted key: nobody else tries it while the probe's lease runs.
  redis.call('SET', blockKey, exhaustedBlock(now + leaseMs, callId, chosenReason))
end
redis.call('ZADD', logKey, int(now), int(tokens) .. ':' .. callId)
redis.call('PEXPIRE', logKey, windowMs + 1000)
redis.call('HINCRBY', usageKey, 'tokens', int(tokens))
if tonumber(redis.call('HGET', usageKey, 'day')) == today then
  redis.call('HINCRBY', usageKey, 'today', 1)
else
  redis.call('HSET', usageKey, 'day', int(today), 'today', 1)
end
redis.call('PEXPIRE', usageKey, USAGE_TTL_MS)

-- In flight until released or until the lease ends (a dead worker never releases).
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', int(now))
redis.call('ZADD', KEYS[3], int(now + leaseMs), callId)
extendTtl(KEYS[3], leaseMs)
if probe == 1 then
  redis.call('ZADD', KEYS[2], int(now + leaseMs), callId)
  extendTtl(KEYS[2], leaseMs)
end
return {1, ARGV[8 + chosen * ${ACQUIRE_ARGS_PER_KEY}], probe}
`;
