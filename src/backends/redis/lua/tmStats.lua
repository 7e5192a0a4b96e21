-- → {ready, leased, failed, delayed}
-- One script so the four counts are of one moment. A parked message counts
-- as delayed: it waits for a slot as a delayed one waits for its time.

local delayed = redis.call('ZCARD', DELAYED) + redis.call('ZCARD', PARKED)
local leased = redis.call('ZCARD', LEASES)
if redis.call('ZSCORE', LEASES, ANCHOR) then leased = leased - 1 end
return { redis.call('ZCARD', READY), leased, redis.call('ZCARD', FAILED), delayed }
