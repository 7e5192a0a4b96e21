-- → {ready, leased, failed, delayed}
-- One script so the four counts are of one moment.

return { redis.call('ZCARD', READY), redis.call('ZCARD', LEASES), redis.call('ZCARD', FAILED), redis.call('ZCARD', DELAYED) }
