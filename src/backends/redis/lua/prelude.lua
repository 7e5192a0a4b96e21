-- Runs ahead of every script's own file (scripts.ts joins them): each script
-- gets the same names for its KEYS, the same clock and the same helpers, and
-- no script can drift from the others on what "holds a lease" means.

-- Before Redis 5 a script is replicated verbatim, and may not write after a
-- non-deterministic command such as TIME below; effect replication lifts that
-- (it is the default from Redis 5, where this call changes nothing).
if redis.replicate_commands then redis.replicate_commands() end
-- KEYS arrive in KEY_ROLES order (scripts.ts): these names must follow that list.
local READY, LEASES, MSG, ATTEMPT, OWNER = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local FAILED, FAILINFO, SLOTS, SEQ, WAKE = KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10]
local DELAYED, RESULTS, RESEXP, PRIO = KEYS[11], KEYS[12], KEYS[13], KEYS[14]
local UKEYS, UKEYOF, UKUNTIL = KEYS[15], KEYS[16], KEYS[17]
local SLOTOF, HOLDERS, PARKED, PARKEDON = KEYS[18], KEYS[19], KEYS[20], KEYS[21]
local RATELOGS, RATESEQ = KEYS[22], KEYS[23]
-- The server's clock, not the caller's: consumers with skewed clocks still
-- agree on every lease deadline and runAt.
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)

-- At most one token: the wake list is a hint for blocked consumers, not a
-- count, so it must not grow with every write.
local function wake()
  redis.call('LPUSH', WAKE, '1')
  redis.call('LTRIM', WAKE, 0, 0)
end

-- One command for many items instead of one per item: redis.call(cmd, key,
-- args…), SLICE arguments at a time (unpack has a limit of a few thousand
-- values). SLICE is even, so pairs (ZADD score id, HSET field value) are never
-- cut in two.
local SLICE = 1000
local function call_many(cmd, key, args)
  for i = 1, #args, SLICE do
    redis.call(cmd, key, unpack(args, i, math.min(i + SLICE - 1, #args)))
  end
end
-- HMGET of many fields: a value (or false) per field, same order.
local function hmget_many(key, fields)
  if #fields <= SLICE then return #fields > 0 and redis.call('HMGET', key, unpack(fields)) or {} end
  local out = {}
  for i = 1, #fields, SLICE do
    local part = redis.call('HMGET', key, unpack(fields, i, math.min(i + SLICE - 1, #fields)))
    for j = 1, #part do out[#out + 1] = part[j] end
  end
  return out
end

-- The fence: id is leased by owner and its deadline has not passed; with a
-- delivery token (not nil, not ''), by that delivery. OWNER holds
-- "<token>:<owner>" (tmRead); the token is digits, so the first colon ends it.
-- A bare owner is a lease read before tokens existed: it matches no token.
-- held is id's OWNER field (false when there is none).
local function lease_matches(held, owner, token)
  if not held then return false end
  local colon = string.find(held, ':', 1, true)
  if token == '' then token = nil end
  if colon and tonumber(string.sub(held, 1, colon - 1)) then
    if string.sub(held, colon + 1) ~= owner then return false end
    if token and string.sub(held, 1, colon - 1) ~= token then return false end
  elseif held ~= owner or token then
    return false
  end
  return true
end
local function lease_live(id)
  local deadline = redis.call('ZSCORE', LEASES, id)
  return deadline ~= false and tonumber(deadline) > now
end
local function holds(id, owner, token)
  return lease_matches(redis.call('HGET', OWNER, id), owner, token) and lease_live(id)
end
-- holds() for many ids (tokens[i] is ids[i]'s): one HMGET for their owners
-- and, from Redis 6.2, one ZMSCORE for their deadlines (before it, the
-- command is unknown and each id pays a ZSCORE).
local function holds_many(ids, tokens, owner)
  local ok = {}
  if #ids == 0 then return ok end
  local helds = hmget_many(OWNER, ids)
  local deadlines = nil
  if #ids <= SLICE then
    local reply = redis.pcall('ZMSCORE', LEASES, unpack(ids))
    if type(reply) == 'table' and not reply.err then deadlines = reply end
  end
  -- A batch's ids nearly always share one delivery token: its lease is then
  -- the one string "<token>:<owner>", built once and compared (interned
  -- strings: a pointer compare) instead of taken apart per id.
  local last_token, expected = nil, false
  for i, id in ipairs(ids) do
    local token = tokens[i]
    if token ~= last_token then
      last_token = token
      expected = token ~= '' and tonumber(token) ~= nil and (token .. ':' .. owner)
    end
    local matches
    if expected then matches = helds[i] == expected else matches = lease_matches(helds[i], owner, token) end
    if not matches then
      ok[i] = false
    elseif deadlines then
      ok[i] = deadlines[i] ~= false and tonumber(deadlines[i]) > now
    else
      ok[i] = lease_live(id)
    end
  end
  return ok
end

-- A message's score in READY: its id, less its priority times 2^42. Ids stay
-- below 2^42 and priorities within ±1000, so every score is an integer below
-- 2^53 (exact in a double): a higher priority sorts first, and within one
-- priority the id keeps age order. Formatted with %d: a Lua number passed to
-- redis.call is printed with %.14g, which would round 16-digit scores.
local PRIORITY_STEP = 4398046511104
local function ready_score(id)
  local priority = redis.call('HGET', PRIO, id)
  if not priority then return id end
  return string.format('%d', tonumber(id) - tonumber(priority) * PRIORITY_STEP)
end
local function make_ready(id)
  redis.call('ZADD', READY, ready_score(id), id)
end

-- Concurrency slots (tmStartGated.lua takes them). A member of HOLDERS is
-- "key NUL id", one of PARKED "key NUL score NUL id" with the message's ready
-- score shifted positive and written in PARKED_SCORE_WIDTH digits, so PARKED
-- sorts (as bytes) in read order. No gate key holds a NUL, so one key's
-- members are exactly the lex range [key NUL, key \1). Only the helpers that
-- the lease-ending scripts share live here: every script runs the prelude.
local PARKED_SCORE_WIDTH = 16

-- Up to count messages parked on key become ready, first in read order. Their
-- attempt stays: parking already gave the delivery back.
local function wake_parked(key, count)
  local parked = redis.call('ZRANGEBYLEX', PARKED, '[' .. key .. '\0', '(' .. key .. '\1', 'LIMIT', 0, count)
  for _, member in ipairs(parked) do
    local id = string.sub(member, #key + PARKED_SCORE_WIDTH + 3)
    redis.call('ZREM', PARKED, member)
    redis.call('HDEL', PARKEDON, id)
    make_ready(id)
  end
  if #parked > 0 then wake() end
  return #parked
end

-- id's lease ended (ack, fail, retry, release, a lapsed lease requeued, a
-- revoke): the slot it took is free, and the first message parked on its key
-- may try again. Every way a holder's lease ends comes through here except a
-- plain tmAck, which RedisQueue only sends for ids it did not start with a
-- slot (a lapsed holder simply stops counting, see tmStartGated.lua).
local function free_slot(id)
  local key = redis.call('HGET', SLOTOF, id)
  if not key then return end
  redis.call('HDEL', SLOTOF, id)
  redis.call('ZREM', HOLDERS, key .. '\0' .. id)
  wake_parked(key, 1)
end

-- A leased message goes back unstarted (release, a deferred start): its
-- delivery does not count, so attempt is taken back down, never below 0.
local function give_back(id)
  redis.call('ZREM', LEASES, id)
  redis.call('HDEL', OWNER, id)
  if redis.call('HINCRBY', ATTEMPT, id, -1) < 0 then redis.call('HSET', ATTEMPT, id, 0) end
  free_slot(id)
end

-- Back in READY by ready_score, a message regains its place. ATTEMPT is left
-- alone: the delivery whose lease expired counts. A lapsed holder's slot is
-- freed (and a message parked on its key woken) here, so a parked message
-- never waits for a holder that died. limit bounds a read's run time; reclaim
-- passes nil and takes them all.
local function requeue_expired(limit)
  local expired
  if limit then
    expired = redis.call('ZRANGEBYSCORE', LEASES, '-inf', now, 'LIMIT', 0, limit)
  else
    expired = redis.call('ZRANGEBYSCORE', LEASES, '-inf', now)
  end
  for _, id in ipairs(expired) do
    redis.call('ZREM', LEASES, id)
    redis.call('HDEL', OWNER, id)
    make_ready(id)
    -- An ungated lease pays one HGET for this, and only once it has lapsed.
    free_slot(id)
  end
  return #expired
end

-- Ready at once, or delayed until run_at when that is still ahead (by the server clock).
local function enqueue(id, run_at)
  if run_at > now then
    redis.call('ZADD', DELAYED, run_at, id)
    return false
  end
  make_ready(id)
  return true
end

-- %d, not tostring: tostring prints with %.14g, which turns an id of 15 or
-- more digits into exponent notation.
local function append(data, run_at, priority)
  local id = string.format('%d', redis.call('INCR', SEQ))
  redis.call('HSET', MSG, id, data)
  if priority and priority ~= 0 then redis.call('HSET', PRIO, id, priority) end
  return id, enqueue(id, run_at)
end

-- The message is done (acked, failed, removed): the unique key it holds is free.
local function free_key(id)
  local key = redis.call('HGET', UKEYOF, id)
  if not key then return end
  redis.call('HDEL', UKEYOF, id)
  if redis.call('HGET', UKEYS, key) == id then
    redis.call('HDEL', UKEYS, key)
    redis.call('HDEL', UKUNTIL, key)
  end
end

-- A message leaves for good (acked, removed, purged): nothing of it stays.
local function forget(id)
  redis.call('HDEL', MSG, id)
  redis.call('HDEL', ATTEMPT, id)
  redis.call('HDEL', PRIO, id)
  free_key(id)
end

-- forget() for many ids, a command per key rather than per id; only a queue
-- that holds unique keys pays for looking each id's up.
local function forget_many(ids)
  if #ids == 0 then return end
  call_many('HDEL', MSG, ids)
  call_many('HDEL', ATTEMPT, ids)
  call_many('HDEL', PRIO, ids)
  if redis.call('EXISTS', UKEYOF) == 1 then
    for _, id in ipairs(ids) do free_key(id) end
  end
end

-- Result records from ARGV[first]: {job id, ttl ms, record, message id, delivery
-- token}… A record with a message id ('' for none) is kept only while that
-- delivery holds the message's lease, so an old delivery's result never
-- lands. known[message id] = token says that lease was already found held
-- with that token (tmAck's own fences). Only checks: call it before anything
-- of the batch is deleted. → HSET and ZADD arguments for store_results
local function fence_results(first, owner, known)
  local fields, expiries = {}, {}
  for i = first, #ARGV, 5 do
    local message, token = ARGV[i + 3], ARGV[i + 4]
    if message == '' or known[message] == token or holds(message, owner, token) then
      fields[#fields + 1] = ARGV[i]
      fields[#fields + 1] = ARGV[i + 2]
      expiries[#expiries + 1] = now + tonumber(ARGV[i + 1])
      expiries[#expiries + 1] = ARGV[i]
    end
  end
  return fields, expiries
end

-- Expired records are purged first, at most purge_limit of them, instead of
-- by a sweeper: the store shrinks as long as results keep coming, and no call
-- holds the server long. Purging takes away before the writes grow anything
-- (see "Full server" in scripts.ts). → how many were purged
local function store_results(fields, expiries, purge_limit)
  local expired = redis.call('ZRANGEBYSCORE', RESEXP, '-inf', now, 'LIMIT', 0, purge_limit)
  call_many('ZREM', RESEXP, expired)
  call_many('HDEL', RESULTS, expired)
  call_many('HSET', RESULTS, fields)
  call_many('ZADD', RESEXP, expiries)
  return #expired
end

-- The acks of ARGV[at] = n, then n × {id, delivery token ('' for any of
-- owner's)}, then result records as tmSetResults takes them, to the end of
-- ARGV (tmAck, tmAckRead). Fenced: a consumer whose lease expired must not
-- delete a message another consumer may be running now; it learns which ids
-- were refused. A job's result exists once its message is gone, and both are
-- fenced by the same delivery: every fence is checked before anything is
-- written or deleted; then the results are stored (after the purge of
-- expired ones, which takes away first: "Full server" in scripts.ts), then
-- the acked messages go. A store that fails (say, a key of the wrong type)
-- fails the script while it has deleted nothing, so the batch stays leased
-- and is tried again, its results with it. → refused ids
local function ack_batch(owner, at)
  local n = tonumber(ARGV[at])
  local ids, tokens = {}, {}
  for i = 1, n do
    ids[i] = ARGV[at - 1 + 2 * i]
    tokens[i] = ARGV[at + 2 * i]
  end
  local ok = holds_many(ids, tokens, owner)
  local acked, refused, known, a, r = {}, {}, {}, 0, 0
  for i, id in ipairs(ids) do
    -- An id named twice is acked once: the second is refused, as it always was.
    if ok[i] and known[id] == nil then
      a = a + 1
      acked[a] = id
      known[id] = tokens[i]
    else
      r = r + 1
      refused[r] = id
    end
  end
  local first = at + 1 + 2 * n
  if first <= #ARGV then
    local fields, expiries = fence_results(first, owner, known)
    store_results(fields, expiries, {{RESULTS_PURGED_PER_SET}})
  end
  if #acked > 0 then
    call_many('ZREM', LEASES, acked)
    call_many('HDEL', OWNER, acked)
    forget_many(acked)
  end
  return refused
end

-- A backlog's leases arrive and leave 100 or so at a time, and so do their
-- ATTEMPT counts. A key that small is kept as a listpack, where every insert
-- and lookup scans the whole key: a batch's ZADD, ZMSCORE, HSET and HMGET
-- turn quadratic, and an ack that empties the key deletes it, so the next
-- batch starts over in a new one. One member longer than
-- zset-max-listpack-value / hash-max-listpack-value (64 bytes by default),
-- written before the batch (ZADD decides a new key's encoding by its first
-- member), keeps LEASES a skiplist and OWNER and ATTEMPT hash tables for
-- good. No id looks like it, no deadline passes +inf, and tmStats does not
-- count it. (The server's time for a backlog's read + ack went from 19–23
-- to 12–13 µs per job: bench/redis-server-cost.ts.)
local ANCHOR = {{KEY_ANCHOR}} -- scripts.ts
local function anchor_batch_keys()
  redis.call('ZADD', LEASES, '+inf', ANCHOR)
  redis.call('HSET', OWNER, ANCHOR, '')
  redis.call('HSET', ATTEMPT, ANCHOR, '0')
end

-- Leases up to max waiting messages to delivery token of owner until now +
-- lease_ms (tmRead, tmAckRead). Leasing, not popping: a reply lost with the
-- connection loses no message, it comes back when its lease expires.
-- → flat {id, data, attempt, …}
local function read_batch(owner, max, lease_ms, token)
  -- Expired leases go back first, so they are read in age order with the rest;
  -- a bounded number per read, so that one read never holds the server long.
  requeue_expired({{REQUEUE_PER_READ}})
  local out = {}
  if max < 1 then return out end
  local deadline = now + lease_ms
  local held_by = token .. ':' .. owner
  -- ZRANGE + ZREMRANGEBYRANK, not ZPOPMIN: the same members, removed in one
  -- pass, and no scores to convert (0.7 against 1.7 µs per member).
  local ids = redis.call('ZRANGE', READY, 0, max - 1)
  if #ids > 0 then redis.call('ZREMRANGEBYRANK', READY, 0, #ids - 1) end
  local datas = hmget_many(MSG, ids)
  local attempts = hmget_many(ATTEMPT, ids)
  -- Explicit counters: `#t + 1` searches for the table's border at every append.
  local leases, owners, counts, paired, n = {}, {}, {}, 0, 0
  for i, id in ipairs(ids) do
    local data = datas[i]
    if data then
      local attempt = (tonumber(attempts[i]) or 0) + 1
      leases[paired + 1] = deadline
      leases[paired + 2] = id
      owners[paired + 1] = id
      owners[paired + 2] = held_by
      counts[paired + 1] = id
      counts[paired + 2] = attempt
      paired = paired + 2
      out[n + 1] = id
      out[n + 2] = data
      out[n + 3] = attempt
      n = n + 3
    else
      -- The message is gone: there is nothing to deliver, so skip the id and
      -- leave nothing of it behind.
      forget(id)
    end
  end
  if paired > 0 then anchor_batch_keys() end
  call_many('ZADD', LEASES, leases)
  call_many('HSET', OWNER, owners)
  call_many('HSET', ATTEMPT, counts)
  -- Pass the wake-up on: another blocked consumer may take what is left.
  if #out > 0 and redis.call('ZCARD', READY) > 0 then wake() end
  return out
end
