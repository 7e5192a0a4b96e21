-- ARGV: owner, ack count n, then n × {id, delivery token ('' for any of owner's)},
-- then result records as tmSetResults takes them (none: a plain ack) → refused ids
-- Fenced: a consumer whose lease expired must not delete a message another
-- consumer may be running now; it learns which ids were refused.
--
-- Results and acks in one script (RedisQueue.ackWithResults): a job's result
-- exists once its message is gone, and both are fenced by the same
-- delivery. Every fence is checked before anything is written or deleted;
-- then the results are stored (after the purge of expired ones, which takes
-- away first: "Full server" in scripts.ts), then the acked messages go.

local owner, n = ARGV[1], tonumber(ARGV[2])
local ids, tokens = {}, {}
for i = 1, n do
  ids[i] = ARGV[1 + 2 * i]
  tokens[i] = ARGV[2 + 2 * i]
end
local ok = holds_many(ids, tokens, owner)
local acked, refused, known = {}, {}, {}
for i, id in ipairs(ids) do
  -- An id named twice is acked once: the second is refused, as it always was.
  if ok[i] and known[id] == nil then
    acked[#acked + 1] = id
    known[id] = tokens[i]
  else
    refused[#refused + 1] = id
  end
end
local first = 3 + 2 * n
local fields, expiries
if first <= #ARGV then fields, expiries = fence_results(first, owner, known) end
-- Stored before the deletes: a store that fails (say, a key of the wrong
-- type) fails the script while it has deleted nothing, so the batch stays
-- leased and is tried again, its results with it.
if fields then store_results(fields, expiries, {{RESULTS_PURGED_PER_SET}}) end
if #acked > 0 then
  call_many('ZREM', LEASES, acked)
  call_many('HDEL', OWNER, acked)
  forget_many(acked)
end
return refused
