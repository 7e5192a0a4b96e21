-- ARGV: owner, max, lease ms, delivery token → flat {id, data, attempt, …}
-- read_batch (prelude) leases them.

return read_batch(ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4])
