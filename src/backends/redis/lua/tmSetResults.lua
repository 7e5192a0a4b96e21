-- ARGV: purge limit, owner, then {job id, ttl ms, record, message id, delivery token}… → how many expired records were purged
-- A record with a message id ('' for none) is written only while that
-- delivery holds the message's lease: an old delivery's result never lands
-- (fence_results and store_results, in the prelude).

local fields, expiries = fence_results(3, ARGV[2], {})
return store_results(fields, expiries, tonumber(ARGV[1]))
