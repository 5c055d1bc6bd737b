-- Lease several keys at once, all or none.
-- KEYS[1..n]: the lock keys; KEYS[n+1..2n]: their fencing counters; KEYS[2n+1..3n]: their
-- "taken" hints (same order).
-- ARGV[1]: owner, ARGV[2]: lease in milliseconds, ARGV[3]: n, ARGV[4]: the caller's now in
-- microseconds, or -1 to ignore hints.
-- Returns {-1, i, ...} (1-based positions) when hints count and those keys carry a hint ending
-- after now; {0} if any key is leased; nothing changes then. Else {token}: a fencing token
-- strictly greater than every token ever issued for any of these keys. Tokens are at least
-- the server's clock in microseconds, so they keep increasing even when Redis restarts with no
-- data (the counters lost): stores that remember the last token they accepted keep accepting
-- new leases.
local n = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
if now >= 0 then
  local taken = {-1}
  for i = 1, n do
    local until_ = tonumber(redis.call('GET', KEYS[2 * n + i]) or '-1')
    if until_ > now then
      taken[#taken + 1] = i
    end
  end
  if #taken > 1 then
    return taken
  end
end
for i = 1, n do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    return {0}
  end
end
local time = redis.call('TIME')
local token = tonumber(time[1]) * 1000000 + tonumber(time[2])
for i = n + 1, 2 * n do
  local last = tonumber(redis.call('GET', KEYS[i]) or '0')
  if last >= token then
    token = last + 1
  end
end
local formatted = string.format('%d', token)
for i = 1, n do
  redis.call('SET', KEYS[i], ARGV[1], 'PX', ARGV[2])
  redis.call('SET', KEYS[n + i], formatted)
end
return {token}
