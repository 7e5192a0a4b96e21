-- ARGV: owner, lease ms, then id, delivery token ('' for any of owner's) … → refused ids
-- XX: an extend must only ever move a lease, never create one.

local deadline = now + tonumber(ARGV[2])
local refused = {}
for i = 3, #ARGV, 2 do
  local id = ARGV[i]
  if holds(id, ARGV[1], ARGV[i + 1]) then
    redis.call('ZADD', LEASES, 'XX', deadline, id)
  else
    refused[#refused + 1] = id
  end
end
return refused
