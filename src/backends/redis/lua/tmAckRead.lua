-- ARGV: owner, max, lease ms, delivery token, then an ack as tmAck takes it
-- after its owner (ack count n, n × {id, token}, result records…)
-- → {refused ids, flat {id, data, attempt, …}}
-- An ack flush and the read issued in the same turn, in one round trip
-- (read-coalescer.ts): the acks as tmAck does them, then the read as tmRead
-- does it. An error fails both to the caller, which tries both again (a
-- flush whose acks had landed then learns they are gone: refused, reported).

local refused = ack_batch(ARGV[1], 5)
return { refused, read_batch(ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]) }
