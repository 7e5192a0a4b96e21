-- KEYS after the queue's: evseq, events. ARGV: after, max → { last, seq, data, seq, data, … }
-- One script, so the page and `last` agree (a publish between two calls would look like a trim).

local EVSEQ, EVENTS = KEYS[{{KEY_ROLE_COUNT}} + 1], KEYS[{{KEY_ROLE_COUNT}} + 2]
local reply = { tonumber(redis.call('GET', EVSEQ) or '0') }
local entries = redis.call('XRANGE', EVENTS, string.format('%d-1', tonumber(ARGV[1]) + 1), '+', 'COUNT', tonumber(ARGV[2]))
for _, entry in ipairs(entries) do
  local dash = string.find(entry[1], '-', 1, true)
  reply[#reply + 1] = tonumber(string.sub(entry[1], 1, dash - 1))
  reply[#reply + 1] = entry[2][2]
end
return reply
