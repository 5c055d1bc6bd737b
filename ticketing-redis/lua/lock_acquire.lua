-- Lease several keys at once, all or none.
-- KEYS[1..n]: the lock keys; KEYS[n+1..2n]: their fencing counters (same order).
-- ARGV[1]: owner, ARGV[2]: lease in milliseconds, ARGV[3]: n.
-- Returns 0 if any key is leased (nothing changes), else a fencing token strictly greater than
-- every token ever issued for any of these keys. Tokens are at least the server's clock in
-- microseconds, so they keep increasing even when Redis restarts with no data (the counters
-- lost): stores that remember the last token they accepted keep accepting new leases.
local n = tonumber(ARGV[3])
for i = 1, n do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    return 0
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
return token
