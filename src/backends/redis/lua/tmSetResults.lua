-- ARGV: purge limit, owner, then {job id, ttl ms, record, message id, delivery token}… → how many expired records were purged
-- A record with a message id ('' for none) is written only while that
-- delivery holds the message's lease: an old delivery's result never lands.
-- Expired records are purged here, a bounded number per call, instead of by a
-- sweeper: the store shrinks as long as results keep coming, and no call
-- holds the server long. Purging comes first: it takes something away before
-- the writes grow anything (see "Full server" in scripts.ts).

local expired = redis.call('ZRANGEBYSCORE', RESEXP, '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, job in ipairs(expired) do
  redis.call('ZREM', RESEXP, job)
  redis.call('HDEL', RESULTS, job)
end
for i = 3, #ARGV, 5 do
  if ARGV[i + 3] == '' or holds(ARGV[i + 3], ARGV[2], ARGV[i + 4]) then
    redis.call('HSET', RESULTS, ARGV[i], ARGV[i + 2])
    redis.call('ZADD', RESEXP, now + tonumber(ARGV[i + 1]), ARGV[i])
  end
end
return #expired
