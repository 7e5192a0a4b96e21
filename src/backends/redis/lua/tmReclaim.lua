-- → how many expired leases were made ready
-- Unbounded, unlike a read's requeue: reclaim() promises every expired lease.

local n = requeue_expired(nil)
if n > 0 then wake() end
return n
