#!lua
-- Settle a capacity reservation (validator/state/capacity.py): it leaves the list of open
-- reservations, and if it was not used, its entry is given back. Settling twice is a no-op.
-- KEYS: 1 the day's entry counter  2 the day's open reservations
-- ARGV: 1 member "<token>:<holder_ref>"  2 "1" to give the entry back, "0" if it was used
-- Returns 1 if the member was open, 0 if it was already settled.
if redis.call("ZREM", KEYS[2], ARGV[1]) == 0 then
  return 0
end
if ARGV[2] == "1" then
  redis.call("DECR", KEYS[1])
end
return 1
