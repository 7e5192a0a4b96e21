-- KEYS after the queue's: rate logs to delete → 1 when the queue is empty, 0 when logs remain
-- The caller passes the names RATELOGS lists, a bounded number per call, and
-- calls again until this returns 1. The last call deletes every other key at
-- once, and only when no log is left that it was not given: a log is only
-- known by its name, and a script may only touch the keys in its KEYS.
-- The id counter stays, so ids are never reused.

for i = {{KEY_ROLE_COUNT}} + 1, #KEYS do
  redis.call('DEL', KEYS[i])
  redis.call('ZREM', RATELOGS, KEYS[i])
end
if redis.call('ZCARD', RATELOGS) > 0 then return 0 end
for i = 1, {{KEY_ROLE_COUNT}} do
  if KEYS[i] ~= SEQ then redis.call('DEL', KEYS[i]) end
end
return 1
