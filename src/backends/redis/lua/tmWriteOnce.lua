-- ARGV: key, runAt (ms, 0 = now), priority, key ttl (ms, 0 = until done), data
--   → {id, 0} written, or {id, 1, data} of the message already holding the key
-- The key is held by a live message (waiting, delayed or leased; not failed:
-- tmFail frees it) until that message is done (free_key) or its hold lapses.

local key = ARGV[1]
local held = redis.call('HGET', UKEYS, key)
if held then
  local until_ms = redis.call('HGET', UKUNTIL, key)
  local data = redis.call('HGET', MSG, held)
  if data and (not until_ms or tonumber(until_ms) > now) then return { held, 1, data } end
  -- Lapsed (or its message is gone): the old message runs on without a key.
  redis.call('HDEL', UKEYOF, held)
  redis.call('HDEL', UKUNTIL, key)
end
local id, ready = append(ARGV[5], tonumber(ARGV[2]), tonumber(ARGV[3]))
redis.call('HSET', UKEYS, key, id)
redis.call('HSET', UKEYOF, id, key)
local ttl = tonumber(ARGV[4])
if ttl > 0 then redis.call('HSET', UKUNTIL, key, now + ttl) end
if ready then wake() end
return { id, 0 }
