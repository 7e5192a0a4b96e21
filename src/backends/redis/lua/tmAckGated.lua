-- ARGV: owner, mask, then id, delivery token ('' for any of owner's) … → refused ids
-- tmAck for a batch that holds ids this instance started under a concurrency
-- gate: mask has one character per id, '1' where the id took a slot. The
-- slot frees, and a message parked on its key wakes, in the same script as
-- the delete; the other ids cost what they cost in tmAck.

local owner, mask = ARGV[1], ARGV[2]
local refused = {}
for i = 3, #ARGV, 2 do
  local id = ARGV[i]
  if holds(id, owner, ARGV[i + 1]) then
    redis.call('ZREM', LEASES, id)
    redis.call('HDEL', OWNER, id)
    if string.byte(mask, (i - 1) / 2) == 49 then free_slot(id) end
    forget(id)
  else
    refused[#refused + 1] = id
  end
end
return refused
