-- ARGV: runAt (ms, 0 = now), data… → ids
-- One runAt for the whole batch: writeBatch delays all its messages alike.

local run_at = tonumber(ARGV[1])
local ids = {}
local any_ready = false
for i = 2, #ARGV do
  local id, ready = append(ARGV[i], run_at)
  ids[#ids + 1] = id
  any_ready = any_ready or ready
end
-- Delayed messages wake nobody: promoteDue wakes consumers when they are due.
if any_ready then wake() end
return ids
