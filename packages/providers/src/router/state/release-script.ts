import {
  EWMA_ALPHA,
  LATENCY_SAMPLES,
  LUA_PRELUDE,
  OUTCOME_BUCKET_MS,
  OUTCOME_BUCKETS,
} from "./lua-prelude.ts";

/**
 * Ends one call, atomically: frees its in-flight and probe slots, corrects its
 * TPM entry, records latency and outcome, applies the key action and drives the
 * breaker.
 *
 * KEYS: 1 target state, 2 failures, 3 probes, 4 in-flight, 5 latency, 6 key log, 7 key usage, 8 key block.
 * ARGV: 1 now ('' = Redis TIME), 2 callId, 3 probe 1|0, 4 latencyMs, 5 reservedTokens, 6 usedTokens,
 *       7 failed 1|0, 8 error code, 9 error message, 10 countsAsFailure 1|0,
 *       11 key action ('' | 'cooldown' | 'exhausted'), 12 cooldownMs, 13 exhausted reason,
 *       14 failureThreshold, 15 windowMs, 16 openMs, 17 keyRetryMs.
 *
 * TPM: a success replaces the reservation by the tokens used. A failure that
 * reports no usage keeps the reservation: providers meter a request when they
 * admit it (OpenAI counts prompt + max_tokens up front), a timeout or 5xx may
 * well have consumed tokens, and a failing key loses nothing by being held back
 * for the rest of the minute.
 *
 * Key: `exhausted` takes the key out until `keyRetryMs` from now (re-arming it
 * when the call was the key's probe). When the call was the probe of an exhausted
 * key, a success puts the key back into rotation; any other failure tells nothing
 * about the key, so the next call probes it again (after a cooldown, if asked).
 *
 * Breaker: only failures that count (5xx, timeouts) enter the window. Closed →
 * open when the window reaches the threshold; a failed probe re-opens a half-open
 * circuit; any success while half-open closes it and clears the window. A success
 * while closed leaves the window alone (failures age out of it).
 */
export const RELEASE_SCRIPT = `${LUA_PRELUDE}
local now = clock(ARGV[1])
local callId = ARGV[2]
local probe = ARGV[3] == '1'
local latencyMs = tonumber(ARGV[4])
local reserved, used = ARGV[5], ARGV[6]
local failed = ARGV[7] == '1'
local countsAsFailure = ARGV[10] == '1'
local action = ARGV[11]
local failureThreshold, windowMs, openMs = tonumber(ARGV[14]), tonumber(ARGV[15]), tonumber(ARGV[16])
local keyRetryMs = tonumber(ARGV[17])

redis.call('ZREM', KEYS[4], callId)
redis.call('ZREM', KEYS[3], callId)

-- TPM correction, while the entry is still in the window.
if (not failed or tonumber(used) > 0) and used ~= reserved then
  local member = reserved .. ':' .. callId
  local admittedAt = redis.call('ZSCORE', KEYS[6], member)
  if admittedAt then
    redis.call('ZREM', KEYS[6], member)
    redis.call('ZADD', KEYS[6], admittedAt, used .. ':' .. callId)
    redis.call('HINCRBY', KEYS[7], 'tokens', int(tonumber(used) - tonumber(reserved)))
  end
end

-- Latency of successful calls: the latest samples and a moving average.
if not failed then
  redis.call('LPUSH', KEYS[5], int(latencyMs))
  redis.call('LTRIM', KEYS[5], 0, ${LATENCY_SAMPLES - 1})
  local ewma = tonumber(redis.call('HGET', KEYS[1], 'ewma'))
  if ewma then ewma = ${EWMA_ALPHA} * latencyMs + ${1 - EWMA_ALPHA} * ewma else ewma = latencyMs end
  redis.call('HSET', KEYS[1], 'ewma', tostring(ewma))
end

-- Calls and errors in one-minute buckets, a ring of ${OUTCOME_BUCKETS} in the state hash.
local bucket = math.floor(now / ${OUTCOME_BUCKET_MS})
local slot = tostring(bucket % ${OUTCOME_BUCKETS})
if tonumber(redis.call('HGET', KEYS[1], 't' .. slot)) ~= bucket then
  redis.call('HSET', KEYS[1], 't' .. slot, int(bucket), 'c' .. slot, 0, 'e' .. slot, 0)
end
redis.call('HINCRBY', KEYS[1], 'c' .. slot, 1)
if failed then
  redis.call('HINCRBY', KEYS[1], 'e' .. slot, 1)
  redis.call('HSET', KEYS[1], 'errorCode', ARGV[8], 'errorMessage', ARGV[9], 'errorAt', int(now))
end

-- Take the key out of rotation, or put a probed key back. A cooldown never shortens
-- another one nor lifts exhaustion.
local blockKind, blockDetail = readBlock(KEYS[8])
local probedReason
if blockKind == 'exhausted' then
  local _, prober, reason = readExhausted(blockDetail)
  if prober == callId then probedReason = reason end
end
if action == 'exhausted' then
  redis.call('SET', KEYS[8], exhaustedBlock(now + keyRetryMs, '', ARGV[13]))
elseif probedReason ~= nil then
  if not failed then
    redis.call('DEL', KEYS[8])
  else
    local retryAt = now
    if action == 'cooldown' then retryAt = now + tonumber(ARGV[12]) end
    redis.call('SET', KEYS[8], exhaustedBlock(retryAt, '', probedReason))
  end
elseif action == 'cooldown' then
  local cooldownMs = tonumber(ARGV[12])
  local kind, detail = readBlock(KEYS[8])
  local untilMs = now + cooldownMs
  if cooldownMs > 0 and kind ~= 'exhausted' and not (kind == 'cooling' and (tonumber(detail) or 0) >= untilMs) then
    redis.call('SET', KEYS[8], 'cooling:' .. int(untilMs), 'PX', int(cooldownMs))
  end
end

-- Circuit breaker.
local circuit = redis.call('HMGET', KEYS[1], 'state', 'openUntil')
local state = circuit[1] or 'closed'
if state == 'open' and now >= (tonumber(circuit[2]) or 0) then state = 'half-open' end
if failed and countsAsFailure then
  redis.call('ZADD', KEYS[2], int(now), callId)
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', int(now - windowMs))
  redis.call('PEXPIRE', KEYS[2], int(windowMs))
  if (state == 'half-open' and probe)
    or (state == 'closed' and redis.call('ZCARD', KEYS[2]) >= failureThreshold) then
    redis.call('HSET', KEYS[1], 'state', 'open', 'openUntil', int(now + openMs))
  end
elseif not failed and state == 'half-open' then
  redis.call('HSET', KEYS[1], 'state', 'closed')
  redis.call('HDEL', KEYS[1], 'openUntil')
  redis.call('DEL', KEYS[2])
end
return 1
`;
