#!lua
-- A card is seen with a holder (validator/state/cluster.py): remember the holder beside
-- the card's block, so that a block put later is mirrored into that holder's slot, and
-- answer the block as it is now. Both in the card number's slot, so either the block
-- was set first (and is answered here) or the holder was remembered first (and the block
-- is mirrored): no scan slips between the two.
-- KEYS: 1 the card's block  2 the holders the card was seen with (a set)
-- ARGV: 1 holder_ref
redis.call("SADD", KEYS[2], ARGV[1])
return redis.call("GET", KEYS[1])
