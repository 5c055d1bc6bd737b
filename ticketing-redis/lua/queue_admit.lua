-- Admit the next tokens of one concert, atomically, so several admitters never over-admit.
-- The budget mirrors QueueConfig::admit_budget in ticketing-core: the rate's allowance since
-- the last admission (at most one second's worth), within max-active.
-- KEYS[1]: waiting (token -> seq), KEYS[2]: admitted (token -> until), KEYS[3]: admitted-through
-- seq, KEYS[4]: time of the last admission.
-- ARGV[1]: now (microseconds), ARGV[2]: rate per second, ARGV[3]: max active,
-- ARGV[4]: admission lifetime (microseconds), ARGV[5]: token key prefix, ARGV[6]: user key
-- prefix.
-- An admitted token's hash and its user's key expire (Redis TTL) two lifetimes after admission:
-- the token is answered `expired` for one more lifetime, then forgotten, so the queue's memory
-- follows the live load, not every buyer ever seen.
-- Returns how many were admitted.
local now = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local max_active = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
local active = redis.call('ZCARD', KEYS[2])
local budget = rate
local last = redis.call('GET', KEYS[4])
if last then
  local elapsed_ms = math.floor((now - tonumber(last)) / 1000)
  if elapsed_ms < 0 then
    elapsed_ms = 0
  end
  budget = math.min(math.floor(rate * elapsed_ms / 1000), rate)
end
budget = math.min(budget, math.max(max_active - active, 0))
if budget <= 0 then
  return 0
end
local popped = redis.call('ZPOPMIN', KEYS[1], budget)
-- Timestamps are microseconds: format them whole (Lua would print 14 significant digits).
local admitted_until = string.format('%d', now + tonumber(ARGV[4]))
local through = tonumber(redis.call('GET', KEYS[3]) or '0')
local forget_ms = math.max(math.floor(2 * tonumber(ARGV[4]) / 1000), 1)
local n = 0
for i = 1, #popped, 2 do
  local token = popped[i]
  local seq = tonumber(popped[i + 1])
  redis.call('ZADD', KEYS[2], admitted_until, token)
  redis.call('HSET', ARGV[5] .. token, 'until', admitted_until)
  redis.call('PEXPIRE', ARGV[5] .. token, forget_ms)
  local user = redis.call('HGET', ARGV[5] .. token, 'user')
  if user then
    redis.call('PEXPIRE', ARGV[6] .. user, forget_ms)
  end
  if seq > through then
    through = seq
  end
  n = n + 1
end
if n > 0 then
  redis.call('SET', KEYS[3], string.format('%d', through))
  redis.call('SET', KEYS[4], ARGV[1])
end
return n
