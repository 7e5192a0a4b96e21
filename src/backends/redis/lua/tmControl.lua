-- KEYS after the queue's: cancels, listeners. ARGV: owner → { listening 0|1, id, job id, id, job id, … }
-- The marks on this owner's live leases; a mark whose message is gone goes
-- too (a waiting message keeps its mark for its next holder). A queue has few
-- marks at a time: each lasts as long as its job.

local CANCELS, LISTENERS = KEYS[{{KEY_ROLE_COUNT}} + 1], KEYS[{{KEY_ROLE_COUNT}} + 2]
redis.call('ZREMRANGEBYSCORE', LISTENERS, '-inf', now)
local reply = { redis.call('ZCARD', LISTENERS) > 0 and 1 or 0 }
local marks = redis.call('HGETALL', CANCELS)
for i = 1, #marks, 2 do
  local id = marks[i]
  if redis.call('HEXISTS', MSG, id) == 0 then
    redis.call('HDEL', CANCELS, id)
  elseif holds(id, ARGV[1]) then
    reply[#reply + 1] = id
    reply[#reply + 1] = marks[i + 1]
  end
end
return reply
