-- Lease several keys at once, all or none.
-- KEYS[1..n]: the lock keys; KEYS[n+1..2n]: their fencing counters (same order).
-- ARGV[1]: owner, ARGV[2]: lease in milliseconds, ARGV[3]: n.
-- Returns 0 if any key is leased (nothing changes), else a fencing token strictly greater than
-- every token ever issued for any of these keys.
local n = tonumber(ARGV[3])
for i = 1, n do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    return 0
  end
end
local token = 0
for i = n + 1, 2 * n do
  local last = tonumber(redis.call('GET', KEYS[i]) or '0')
  if last > token then
    token = last
  end
end
token = token + 1
for i = 1, n do
  redis.call('SET', KEYS[i], ARGV[1], 'PX', ARGV[2])
  redis.call('SET', KEYS[n + i], token)
end
return token
