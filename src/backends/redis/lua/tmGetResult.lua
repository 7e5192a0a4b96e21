-- ARGV: job id → the record, or nil when there is none or it expired
-- An expired record may still be stored (setResults purges lazily), so the
-- expiry is checked here, not left to the purge.

local expires = redis.call('ZSCORE', RESEXP, ARGV[1])
if expires == false or tonumber(expires) <= now then return false end
return redis.call('HGET', RESULTS, ARGV[1])
