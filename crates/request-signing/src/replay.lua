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
-- expires_at comes clamped to ten years ahead at most, so EXPIRE below never fails after ZADD
-- (Redis runs a script's commands up to an error, and keeps them).
local ttl = math.max(1, expires_at - now)
local keep = redis.call('TTL', KEYS[1]) < ttl
redis.call('ZADD', KEYS[1], expires_at, ARGV[1])
if keep then redis.call('EXPIRE', KEYS[1], ttl) end
return {1}
