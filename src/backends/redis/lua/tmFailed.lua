-- ARGV: limit (≥ 1) → flat {id, data, attempt, "<failedAt>:<error>", …}
-- Oldest failure first. The fallbacks keep the reply's shape fixed (four
-- values per id) even when a hash entry is missing, so the caller can decode
-- it by position.

local ids = redis.call('ZRANGE', FAILED, 0, tonumber(ARGV[1]) - 1)
local out = {}
for _, id in ipairs(ids) do
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', MSG, id) or ''
  out[#out + 1] = tonumber(redis.call('HGET', ATTEMPT, id) or '0')
  out[#out + 1] = redis.call('HGET', FAILINFO, id) or '0:'
end
return out
