-- One quota decision, atomically. KEYS[1]: the key's state; KEYS[2]: its limit override.
-- Fixed window: ARGV = 'f', cost, limit, ttl_ms          -> {code, used, limit}
--   (ttl_ms 0: a lifetime window, whose count never expires)
-- GCRA (µs):    ARGV = 'g', cost, now, emission, burst, period
--   -> {code, tat, burst, emission, 1 if the stored override applied else 0}
-- 'F' and 'G' are the same with the caller's limit (and GCRA emission), which the stored
-- override does not replace.
-- code: 1 allowed, 0 limited, 2 cost exceeds limit. A cost of 0 changes nothing.
local cost = tonumber(ARGV[2])
local override = false
if ARGV[1] == 'F' then ARGV[1] = 'f' elseif ARGV[1] == 'G' then ARGV[1] = 'g'
else override = redis.call('GET', KEYS[2]) end
if ARGV[1] == 'f' then
  local limit = tonumber(ARGV[3])
  if override then limit = tonumber(override) end
  local used = tonumber(redis.call('GET', KEYS[1]) or '0')
  if cost > limit then return {2, used, limit} end
  if used + cost > limit then return {0, used, limit} end
  if cost > 0 then
    used = redis.call('INCRBY', KEYS[1], cost)
    if ARGV[4] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
  end
  return {1, used, limit}
end
local now = tonumber(ARGV[3])
local emission = tonumber(ARGV[4])
local burst = tonumber(ARGV[5])
if override then
  burst = tonumber(override)
  emission = math.max(1, math.ceil(tonumber(ARGV[6]) / burst))
end
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local overridden = 0
if override then overridden = 1 end
if cost > burst then return {2, tat, burst, emission, overridden} end
local new_tat = tat + cost * emission
if new_tat - now > emission * burst then return {0, tat, burst, emission, overridden} end
if cost > 0 then
  local ttl = math.ceil((new_tat - now) / 1000) + 1000
  redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', string.format('%.0f', ttl))
end
return {1, new_tat, burst, emission, overridden}
