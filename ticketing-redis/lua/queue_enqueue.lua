-- Join a concert's line; the same user gets the same token back unless its admission lapsed.
-- KEYS[1]: the user's token key, KEYS[2]: the sequence counter, KEYS[3]: the waiting set (all
-- in the concert's slot; the caller adds the concert to the set of lines first, a key of
-- another slot on a cluster).
-- ARGV[1]: a new token, ARGV[2]: user id, ARGV[3]: now (microseconds), ARGV[4]: token key prefix.
-- Returns {token, 1 if new else 0}.
local existing = redis.call('GET', KEYS[1])
if existing then
  local key = ARGV[4] .. existing
  if redis.call('EXISTS', key) == 1 then
    local admitted_until = redis.call('HGET', key, 'until')
    if (not admitted_until) or tonumber(admitted_until) > tonumber(ARGV[3]) then
      return {existing, 0}
    end
  end
end
local seq = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[3], seq, ARGV[1])
redis.call('HSET', ARGV[4] .. ARGV[1], 'user', ARGV[2], 'seq', seq)
redis.call('SET', KEYS[1], ARGV[1])
return {ARGV[1], 1}
