#!lua
-- Take or keep a lease in one step: free, or already ours, it becomes ours for the ttl.
-- KEYS[1]: the lease; ARGV[1]: the holder asking; ARGV[2]: the ttl in milliseconds.
-- Returns 1 if ARGV[1] holds the lease now, 0 if another holder does.
local current = redis.call("GET", KEYS[1])
if current == ARGV[1] then
  redis.call("PEXPIRE", KEYS[1], ARGV[2])
  return 1
elseif not current then
  redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
  return 1
end
return 0
