-- ARGV: owner, then id, delivery token ('' for any of owner's) … → refused ids
-- Fenced: a consumer whose lease expired must not delete a message another
-- consumer may be running now; it learns which ids were refused.

local refused = {}
for i = 2, #ARGV, 2 do
  local id = ARGV[i]
  if holds(id, ARGV[1], ARGV[i + 1]) then
    redis.call('ZREM', LEASES, id)
    redis.call('HDEL', OWNER, id)
    forget(id)
  else
    refused[#refused + 1] = id
  end
end
return refused
