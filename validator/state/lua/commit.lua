#!lua
-- One decision's commit, all or nothing (protocol §2 step 7, §3 counter, §4).
-- The shebang makes Redis refuse the whole script up front when it is out of memory,
-- instead of failing at the first write and leaving half a commit behind.
--
-- KEYS: 1 idempotency record  2 the day's ledger stream  3 nonce  4 atc  5 rides today
--       6 spot entries today  7 entered (holder, spot) today  8 companion window
--       9 card block  10 holder block  11 registry entry (a speculative commit: these
--       must not exist)
--       (keys 3-11 are "" when the commit has no such guard, and are then left alone)
-- ARGV: 1 body sha256 (hex)  2 response  3 ledger record  4 atc  5 ride cap
--       6 spot capacity  7 companion_use  8 companion_open_at  9 companion ttl s
--       10 nonce ttl s  11 idempotency ttl s  12 usage ttl s  13 ledger retention s
--       (7 and 8 are exact float reprs or "" when absent)
-- Returns {0, stored record} Duplicate | {1, guard} Conflict | {2, ledger entry id} Committed

local stored = redis.call("GET", KEYS[1])
if stored then
  return {0, stored}
end

local function count(key)
  return tonumber(redis.call("GET", key) or "0")
end

-- Guards, in the order of store.Conflict; the first failure returns before any write.
if KEYS[9] ~= "" and redis.call("EXISTS", KEYS[9], KEYS[10], KEYS[11]) > 0 then
  return {1, "status"}
end
if KEYS[3] ~= "" and redis.call("EXISTS", KEYS[3]) == 1 then
  return {1, "nonce"}
end
if KEYS[4] ~= "" then
  local high = redis.call("GET", KEYS[4])
  if high and tonumber(high) >= tonumber(ARGV[4]) then
    return {1, "atc"}
  end
end
if KEYS[5] ~= "" and count(KEYS[5]) >= tonumber(ARGV[5]) then
  return {1, "concession_ride"}
end
if KEYS[6] ~= "" and count(KEYS[6]) >= tonumber(ARGV[6]) then
  return {1, "capacity"}
end
if KEYS[7] ~= "" and redis.call("EXISTS", KEYS[7]) == 1 then
  return {1, "entered"}
end
-- Compared as strings: both sides are the repr of the same float, so equality is exact.
if ARGV[7] ~= "" and redis.call("GET", KEYS[8]) ~= ARGV[7] then
  return {1, "companion"}
end

-- Effects.
local usage_ttl = ARGV[12]
if KEYS[3] ~= "" then
  redis.call("SET", KEYS[3], "1", "EX", ARGV[10])
end
if KEYS[4] ~= "" then
  redis.call("SET", KEYS[4], ARGV[4])  -- no expiry: the counter is the card's lifetime fact
end
for _, key in ipairs({KEYS[5], KEYS[6]}) do
  if key ~= "" then
    redis.call("INCR", key)
    redis.call("EXPIRE", key, usage_ttl)
  end
end
if KEYS[7] ~= "" then
  redis.call("SET", KEYS[7], "1", "EX", usage_ttl)
end
if ARGV[7] ~= "" then
  redis.call("DEL", KEYS[8])  -- one companion per primary ride
end
if ARGV[8] ~= "" then
  redis.call("SET", KEYS[8], ARGV[8], "EX", ARGV[9])
end
-- The body hash is hex, so the first "\n" separates it from the response bytes.
redis.call("SET", KEYS[1], ARGV[1] .. "\n" .. ARGV[2], "EX", ARGV[11])
local id = redis.call("XADD", KEYS[2], "*", "r", ARGV[3])
redis.call("EXPIRE", KEYS[2], ARGV[13])
return {2, id}
