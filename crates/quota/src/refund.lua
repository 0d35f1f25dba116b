-- Gives back what one allowed decision counted. KEYS[1]: the key's state (a fixed window's
-- count, or a GCRA arrival time in µs). ARGV[1]: how much to take off (the cost, or the cost
-- times the emission interval). Never below 0; the key keeps its expiry; a key gone (its
-- window over, its bucket full) is left gone. Returns 1 when something was given back.
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local n = math.max(0, tonumber(v) - tonumber(ARGV[1]))
redis.call('SET', KEYS[1], string.format('%.0f', n), 'KEEPTTL')
return 1
