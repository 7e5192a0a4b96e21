-- KEYS after the queue's: evseq, events. ARGV: max kept, event… → the last sequence number
-- Each event is a stream entry whose id is "<seq>-1", seq one above the last:
-- a reader sees a trim as a gap in the numbers. MAXLEN ~ trims in whole
-- stream nodes, so at least `max kept` stay.

local EVSEQ, EVENTS = KEYS[{{KEY_ROLE_COUNT}} + 1], KEYS[{{KEY_ROLE_COUNT}} + 2]
local seq = tonumber(redis.call('GET', EVSEQ) or '0')
for i = 2, #ARGV do
  seq = seq + 1
  redis.call('XADD', EVENTS, 'MAXLEN', '~', ARGV[1], string.format('%d-1', seq), 'd', ARGV[i])
end
redis.call('SET', EVSEQ, string.format('%d', seq))
return seq
