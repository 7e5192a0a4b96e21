-- ARGV: owner, ack count n, then n × {id, delivery token ('' for any of owner's)},
-- then result records as tmSetResults takes them (none: a plain ack) → refused ids
-- ack_batch (prelude) says what is checked, and in which order things change.
-- With results, this is RedisQueue.ackWithResults: a flush in one round trip.

return ack_batch(ARGV[1], 2)
