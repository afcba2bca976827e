/** The rolling window of RPM and TPM limits. */
export const RATE_WINDOW_MS = 60_000;

/** The usage hash (day counter) outlives a UTC day, so the counter of a day never expires within it. */
export const USAGE_TTL_MS = 25 * 60 * 60 * 1000;

/** Successful latencies kept per target for p50/p95. */
export const LATENCY_SAMPLES = 100;

/** Weight of the newest latency in the moving average. */
export const EWMA_ALPHA = 0.2;

/** Calls and errors are counted in one-minute buckets; the last this many make the recent window. */
export const OUTCOME_BUCKETS = 5;
export const OUTCOME_BUCKET_MS = 60_000;

/** The longest a caller is told to wait while every half-open probe slot is taken. */
export const HALF_OPEN_RETRY_MS = 500;

/**
 * Lua shared by the scripts: constants and helpers.
 *
 * The clock is Redis server time (`TIME`), so every process agrees on it; Redis 7
 * replicates a script's effects, so a script may read `TIME` and then write.
 * Tests pass their own epoch milliseconds as the first argument instead.
 *
 * TTLs are set only to collect garbage (a dead worker's slots, idle windows);
 * decisions always compare stored times with the clock, so an injected clock
 * that runs ahead of real time behaves like the real one.
 */
export const LUA_PRELUDE = `
local RATE_WINDOW_MS = ${RATE_WINDOW_MS}
local DAY_MS = 86400000
local USAGE_TTL_MS = ${USAGE_TTL_MS}

local function int(value)
  return string.format('%d', value)
end

local function clock(argument)
  local injected = tonumber(argument)
  if injected then return injected end
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end

local function minimum(a, b)
  if a == nil then return b end
  if b == nil then return a end
  return math.min(a, b)
end

-- A block is 'cooling:<untilMs>' or 'exhausted:<detail>' (see readExhausted).
local function readBlock(key)
  local value = redis.call('GET', key)
  if not value then return nil, nil end
  local colon = string.find(value, ':', 1, true)
  if not colon then return nil, nil end
  return string.sub(value, 1, colon - 1), string.sub(value, colon + 1)
end

-- An exhausted block's detail is '<retryAtMs>:<probeCallId>:<reason>', the probe call id
-- empty while no probe runs. A detail written before keys had a retry time ('<reason>')
-- is due for a probe at once.
local function readExhausted(detail)
  local retryAt, prober, reason = string.match(detail, '^(%d+):([^:]*):(.*)$')
  if retryAt == nil then return 0, '', detail end
  return tonumber(retryAt), prober, reason
end

local function exhaustedBlock(retryAt, prober, reason)
  return 'exhausted:' .. int(retryAt) .. ':' .. prober .. ':' .. reason
end

-- Log members are '<tokens>:<callId>'.
local function memberTokens(member)
  return tonumber(string.match(member, '^(%d+):')) or 0
end
`;
