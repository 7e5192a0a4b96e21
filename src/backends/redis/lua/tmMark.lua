-- KEYS after the queue's: cancels. ARGV: id, job id → 'marked' | 'present' (not leased: waiting) | 'absent'
-- A cancel (queue.ts) first tries tmRemove; this marks what it refused: a
-- message under a live lease, whoever holds it. A mark is keyed by message id,
-- which `seq` never hands out twice.

local CANCELS = KEYS[{{KEY_ROLE_COUNT}} + 1]
local id = ARGV[1]
if redis.call('HEXISTS', MSG, id) == 0 then return 'absent' end
local deadline = redis.call('ZSCORE', LEASES, id)
if deadline == false or tonumber(deadline) < now then return 'present' end
redis.call('HSET', CANCELS, id, ARGV[2])
return 'marked'
