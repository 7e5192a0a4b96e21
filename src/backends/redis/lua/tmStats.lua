-- → {ready, leased, failed, delayed}
-- One script so the four counts are of one moment. A parked message counts
-- as delayed: it waits for a slot as a delayed one waits for its time.

local delayed = redis.call('ZCARD', DELAYED) + redis.call('ZCARD', PARKED)
return { redis.call('ZCARD', READY), redis.call('ZCARD', LEASES), redis.call('ZCARD', FAILED), delayed }
