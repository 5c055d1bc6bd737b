-- End a token: out of the waiting line, or out of the admitted set (its place is free at once).
-- KEYS[1]: the token's hash, KEYS[2]: waiting (token -> seq), KEYS[3]: admitted (token -> until).
-- ARGV[1]: the token, ARGV[2]: now (microseconds), ARGV[3]: how long an ended token is still
-- answered `expired` (milliseconds), ARGV[4]: the prefix of the user keys (user -> token).
-- The user's key shares the token's hash tag (`{c:<concert>}`), so in a Redis Cluster it lives
-- in the same slot as KEYS[1]; it is forgotten with the token only while it still names it.
-- An ended token's `until` is 0: over whatever any instance's clock reads.
-- Returns 0 for an unknown token, 1 otherwise (ending an ended token changes nothing).
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local admitted_until = redis.call('HGET', KEYS[1], 'until')
if admitted_until and tonumber(admitted_until) <= tonumber(ARGV[2]) then
  return 1
end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[1], 'until', '0')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
local user = redis.call('HGET', KEYS[1], 'user')
if user and redis.call('GET', ARGV[4] .. user) == ARGV[1] then
  redis.call('PEXPIRE', ARGV[4] .. user, ARGV[3])
end
return 1
