-- A token's fields and the concert's admitted-through sequence, read atomically.
-- KEYS[1]: the token's hash, KEYS[2]: admitted-through. Returns {} for an unknown token,
-- else {user, seq, admitted_until or '', through}.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {}
end
local f = redis.call('HMGET', KEYS[1], 'user', 'seq', 'until')
return {f[1], f[2], f[3] or '', redis.call('GET', KEYS[2]) or '0'}
