-- One replay-cache insertion, atomically. KEYS[1]: the owner's sorted set of unexpired
-- entries (member: the request's key, score: the second it may be forgotten).
-- ARGV: member, now, expires_at, per-key limit.  -> {1} fresh, {0} seen, {2, retry} over budget
local now = tonumber(ARGV[2])
local expires_at = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return {0} end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {2, math.max(1, tonumber(oldest[2]) - now)}
end
redis.call('ZADD', KEYS[1], expires_at, ARGV[1])
local ttl = math.max(1, expires_at - now)
if redis.call('TTL', KEYS[1]) < ttl then redis.call('EXPIRE', KEYS[1], ttl) end
return {1}
