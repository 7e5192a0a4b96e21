-- ARGV: needle (the job id field of an envelope's head), limit, head chars → { id, data, state } or {}
-- Looks through the first `limit` ready messages in claim order, then the first `limit` delayed
-- ones, soonest first: a dashboard's look-up by job id, bounded (there is no index by job id).

local needle, limit, head = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local function look(ids, state)
  for _, id in ipairs(ids) do
    local data = redis.call('HGET', MSG, id)
    if data and string.find(string.sub(data, 1, head), needle, 1, true) then return { id, data, state } end
  end
  return nil
end
return look(redis.call('ZRANGE', READY, 0, limit - 1), 'waiting') or look(redis.call('ZRANGE', DELAYED, 0, limit - 1), 'delayed') or {}
