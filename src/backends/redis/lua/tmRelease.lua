-- ARGV: owner, then id, delivery token ('' for any of owner's) … → how many released
-- A release gives back a message that was read but never started, so its
-- delivery does not count (give_back); a slot it took frees.

local n = 0
for i = 2, #ARGV, 2 do
  local id = ARGV[i]
  if holds(id, ARGV[1], ARGV[i + 1]) then
    give_back(id)
    make_ready(id)
    n = n + 1
  end
end
if n > 0 then wake() end
return n
