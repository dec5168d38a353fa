#!lua
-- Reserve one entry of a spot's daily capacity (validator/state/capacity.py).
-- KEYS: 1 the day's entry counter  2 the day's open reservations (sorted set, by deadline)
-- ARGV: 1 capacity  2 member "<token>:<holder_ref>"  3 ttl ms  4 clock margin ms
--       5 usage ttl s  6… reservations committed since, settled here as used (they leave
--       the list; their entries stay counted)
-- Returns {1, deadline ms} reserved | {0, members past deadline + margin} full
if #ARGV > 5 then
  redis.call("ZREM", KEYS[2], unpack(ARGV, 6))
end
local now = redis.call("TIME")
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
if tonumber(redis.call("GET", KEYS[1]) or "0") >= tonumber(ARGV[1]) then
  -- full: the reservations past their deadline by more than the clock margin
  return {0, redis.call("ZRANGEBYSCORE", KEYS[2], "-inf", now_ms - tonumber(ARGV[4]),
                        "LIMIT", 0, 100)}
end
local deadline = now_ms + tonumber(ARGV[3])
redis.call("INCR", KEYS[1])
redis.call("EXPIRE", KEYS[1], ARGV[5])
redis.call("ZADD", KEYS[2], deadline, ARGV[2])
redis.call("EXPIRE", KEYS[2], ARGV[5])
return {1, deadline}
