-- ARGV: runAt (ms, 0 = now), priority, data… → ids
-- One runAt and one priority for the whole batch: writeBatch treats its messages alike.

local run_at = tonumber(ARGV[1])
local priority = tonumber(ARGV[2])
local ids = {}
local any_ready = false
for i = 3, #ARGV do
  local id, ready = append(ARGV[i], run_at, priority)
  ids[#ids + 1] = id
  any_ready = any_ready or ready
end
-- Delayed messages wake nobody: promoteDue wakes consumers when they are due.
if any_ready then wake() end
return ids
