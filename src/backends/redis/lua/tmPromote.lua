-- ARGV: max → how many due delayed messages were made ready (≤ max; the caller repeats while = max)
-- Bounded so that one call never holds the server long, however many
-- delayed messages fall due at once.

local due = redis.call('ZRANGEBYSCORE', DELAYED, '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, id in ipairs(due) do
  redis.call('ZREM', DELAYED, id)
  make_ready(id)
end
if #due > 0 then wake() end
return #due
