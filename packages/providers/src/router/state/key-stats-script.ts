import { LUA_PRELUDE } from "./lua-prelude.ts";

/**
 * Reads the standing and usage of one provider key by the same clock as
 * `ACQUIRE_SCRIPT` (usage over the last 60 s, without the admission margin).
 * For an exhausted key, `untilMs` is when the next call may probe it (in the
 * past once the probe is due). Writes nothing (entries that left the window are
 * discounted, not removed).
 *
 * KEYS: 1 log, 2 usage, 3 block. ARGV: 1 now ('' = Redis TIME).
 * Returns {state, untilMs, reason, requestsLastMinute, tokensLastMinute, requestsToday}.
 */
export const KEY_STATS_SCRIPT = `${LUA_PRELUDE}
local now = clock(ARGV[1])
local cutoff = now - RATE_WINDOW_MS

local state, untilMs, reason = 'ok', false, false
local kind, detail = readBlock(KEYS[3])
if kind == 'exhausted' then
  local retryAt, _, exhaustedReason = readExhausted(detail)
  state, untilMs, reason = 'exhausted', int(retryAt), exhaustedReason
elseif kind == 'cooling' and (tonumber(detail) or 0) > now then
  state, untilMs = 'cooling', detail
end

local usage = redis.call('HMGET', KEYS[2], 'tokens', 'day', 'today')
local requests = redis.call('ZCOUNT', KEYS[1], '(' .. int(cutoff), '+inf')
local tokens = 0
if requests > 0 then
  tokens = tonumber(usage[1]) or 0
  local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', int(cutoff))
  for i = 1, #expired do tokens = tokens - memberTokens(expired[i]) end
  if tokens < 0 then tokens = 0 end
end
local requestsToday = 0
if tonumber(usage[2]) == math.floor(now / DAY_MS) then requestsToday = tonumber(usage[3]) or 0 end

return {state, untilMs, reason, requests, tokens, requestsToday}
`;
