-- ARGV: purge limit, then {job id, ttl ms, record}… → how many expired records were purged
-- Expired records are purged here, a bounded number per call, instead of by a
-- sweeper: the store shrinks as long as results keep coming, and no call
-- holds the server long. Purging comes first: it takes something away before
-- the writes grow anything (see "Full server" in scripts.ts).

local expired = redis.call('ZRANGEBYSCORE', RESEXP, '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, job in ipairs(expired) do
  redis.call('ZREM', RESEXP, job)
  redis.call('HDEL', RESULTS, job)
end
for i = 2, #ARGV, 3 do
  redis.call('HSET', RESULTS, ARGV[i], ARGV[i + 2])
  redis.call('ZADD', RESEXP, now + tonumber(ARGV[i + 1]), ARGV[i])
end
return #expired
