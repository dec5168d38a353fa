#!lua
-- Upsert a batch of eligibility records in one round trip.
-- KEYS: holder keys; ARGV: their JSON records, in the same order.
-- Returns, per record, 1 if it was created and 0 if it replaced an existing one.
local created = {}
for i, key in ipairs(KEYS) do
  created[i] = 1 - redis.call("EXISTS", key)
  redis.call("SET", key, ARGV[i])
end
return created
