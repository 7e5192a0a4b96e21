-- ARGV: owner, lease ms, id… → refused ids
-- XX: an extend must only ever move a lease, never create one.

local deadline = now + tonumber(ARGV[2])
local refused = {}
for i = 3, #ARGV do
  local id = ARGV[i]
  if holds(id, ARGV[1]) then
    redis.call('ZADD', LEASES, 'XX', deadline, id)
  else
    refused[#refused + 1] = id
  end
end
return refused
