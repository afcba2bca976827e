import { LUA_PRELUDE, OUTCOME_BUCKET_MS, OUTCOME_BUCKETS } from "./lua-prelude.ts";

/**
 * Reads the figures of one provider+model, judging the circuit and the
 * in-flight leases by the same clock as `ACQUIRE_SCRIPT`. Writes nothing.
 *
 * KEYS: 1 target state, 2 in-flight, 3 latency. ARGV: 1 now ('' = Redis TIME).
 * Returns {circuit, openUntil, inFlight, ewma, calls, errors, errorCode, errorMessage, errorAt, latencies}.
 */
export const TARGET_STATS_SCRIPT = `${LUA_PRELUDE}
local now = clock(ARGV[1])
local fields = redis.call('HGETALL', KEYS[1])
local hash = {}
for i = 1, #fields, 2 do hash[fields[i]] = fields[i + 1] end

local circuit = hash['state'] or 'closed'
local openUntil = false
if circuit == 'open' then
  if now >= (tonumber(hash['openUntil']) or 0) then circuit = 'half-open' else openUntil = hash['openUntil'] end
end

local bucket = math.floor(now / ${OUTCOME_BUCKET_MS})
local calls, errors = 0, 0
for slot = 0, ${OUTCOME_BUCKETS - 1} do
  local slotBucket = tonumber(hash['t' .. slot])
  if slotBucket and slotBucket > bucket - ${OUTCOME_BUCKETS} then
    calls = calls + (tonumber(hash['c' .. slot]) or 0)
    errors = errors + (tonumber(hash['e' .. slot]) or 0)
  end
end

return {
  circuit,
  openUntil,
  redis.call('ZCOUNT', KEYS[2], '(' .. int(now), '+inf'),
  hash['ewma'] or false,
  calls,
  errors,
  hash['errorCode'] or false,
  hash['errorMessage'] or false,
  hash['errorAt'] or false,
  redis.call('LRANGE', KEYS[3], 0, -1),
}
`;
