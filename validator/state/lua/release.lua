#!lua
-- Give a lease up, only if it is ours: a holder whose lease expired and was taken by
-- another must not delete the new holder's.
-- KEYS[1]: the lease; ARGV[1]: the holder giving it up. Returns 1 if it was deleted.
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0
