#!lua
-- One decision's commit, all or nothing (protocol §2 step 7, §3 counter, §4).
-- The shebang makes Redis refuse the whole script up front when it is out of memory,
-- instead of failing at the first write and leaving half a commit behind.
--
-- Keys and arguments are read by name (validator/state/script.py builds the call):
-- ARGV[1] is a JSON object of the small arguments, whose "keys" lists the names of the
-- KEYS in order; ARGV[2] and ARGV[3] are the response and the ledger record (bytes, not
-- worth escaping into JSON). Only what the commit has is passed; a guard or effect whose
-- name is absent is skipped.
--
-- K.idempotency  the idempotency record      K.ledger    the day's ledger stream
-- K.nonce K.atc K.rides K.capacity K.entered K.companion  the guarded facts
-- K.card_block K.holder_block K.registry     a speculative commit's status: must not exist
-- K.reservation  a Redis Cluster's spot-capacity reservation, marked as used (below)
-- A.body_sha256                              stored with the response
-- A.atc A.ride_cap A.capacity                the values the counters are guarded against
-- A.companion_use A.companion_open_at        exact float reprs (strings); A.companion_ttl_s
-- A.nonce_ttl_s A.idempotency_ttl_s A.usage_ttl_s A.ledger_retention_s
--
-- In a Redis Cluster a spot's capacity lives outside the holder's slot, so the store
-- reserves a place first and hands in A.capacity_full when no reservation was to be had
-- (reported here in the order of the guards). A reservation is used only before
-- A.reservation_deadline_ms (this node's clock): past it, a reconciler may have given it
-- back, so the commit conflicts.
--
-- Returns {0, stored record} Duplicate | {1, guard} Conflict | {2, ledger entry id} Committed

local A = cjson.decode(ARGV[1])
local K = {}
for i, name in ipairs(A.keys) do
  K[name] = KEYS[i]
end

local stored = redis.call("GET", K.idempotency)
if stored then
  return {0, stored}
end

local function count(key)
  return tonumber(redis.call("GET", key) or "0")
end

-- Guards, in the order of store.Guard; the first failure returns before any write.
if K.registry then
  local status = {K.registry}
  if K.holder_block then status[2] = K.holder_block end
  if K.card_block then status[#status + 1] = K.card_block end
  if redis.call("EXISTS", unpack(status)) > 0 then
    return {1, "status"}
  end
end
if K.nonce and redis.call("EXISTS", K.nonce) == 1 then
  return {1, "nonce"}
end
if K.atc then
  local high = redis.call("GET", K.atc)
  if high and tonumber(high) >= tonumber(A.atc) then
    return {1, "atc"}
  end
end
if K.rides and count(K.rides) >= tonumber(A.ride_cap) then
  return {1, "concession_ride"}
end
if A.capacity_full or (K.capacity and count(K.capacity) >= tonumber(A.capacity)) then
  return {1, "capacity"}
end
if K.reservation then
  local now = redis.call("TIME")
  if tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) >=
      tonumber(A.reservation_deadline_ms) then
    return {1, "capacity"}
  end
end
if K.entered and redis.call("EXISTS", K.entered) == 1 then
  return {1, "entered"}
end
-- Compared as strings: both sides are the repr of the same float, so equality is exact.
if A.companion_use and redis.call("GET", K.companion) ~= A.companion_use then
  return {1, "companion"}
end

-- Effects.
local usage_ttl = A.usage_ttl_s
if K.nonce then
  redis.call("SET", K.nonce, "1", "EX", A.nonce_ttl_s)
end
if K.atc then
  redis.call("SET", K.atc, A.atc)  -- no expiry: the counter is the card's lifetime fact
end
if K.rides then
  redis.call("INCR", K.rides)
  redis.call("EXPIRE", K.rides, usage_ttl)
end
if K.capacity then
  redis.call("INCR", K.capacity)
  redis.call("EXPIRE", K.capacity, usage_ttl)
end
if K.entered then
  redis.call("SET", K.entered, "1", "EX", usage_ttl)
end
if K.reservation then
  redis.call("SET", K.reservation, "1", "EX", usage_ttl)
end
if A.companion_use then
  redis.call("DEL", K.companion)  -- one companion per primary ride
end
if A.companion_open_at then
  redis.call("SET", K.companion, A.companion_open_at, "EX", A.companion_ttl_s)
end
-- The body hash is hex, so the first "\n" separates it from the response bytes.
redis.call("SET", K.idempotency, A.body_sha256 .. "\n" .. ARGV[2], "EX", A.idempotency_ttl_s)
local id = redis.call("XADD", K.ledger, "*", "r", ARGV[3])
redis.call("EXPIRE", K.ledger, A.ledger_retention_s)
return {2, id}
