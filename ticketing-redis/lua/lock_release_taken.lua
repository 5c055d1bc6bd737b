-- Release a lease and, only if every key was still leased to ARGV[1], leave a "taken" hint on
-- each key until ARGV[2] (the caller's clock, microseconds; it expires from Redis ARGV[3]
-- milliseconds later). KEYS[1..n]: the lock keys; KEYS[n+1..2n]: their hints.
-- Returns how many keys were still leased to ARGV[1].
local n = #KEYS / 2
local owned = 0
for i = 1, n do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    owned = owned + 1
  end
end
if owned == n then
  for i = 1, n do
    redis.call('SET', KEYS[n + i], ARGV[2], 'PX', ARGV[3])
  end
end
for i = 1, n do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    redis.call('DEL', KEYS[i])
  end
end
return owned
