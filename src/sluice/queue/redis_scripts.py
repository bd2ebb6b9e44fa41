"""Lua scripts of the Redis Streams queue: each change that spans several keys is atomic."""

from __future__ import annotations

# ── Scripts ───────────────────────────────────────────────────────────────────────────────────
# Every time is the Redis server's (TIME), so ready times do not depend on the hosts' clocks.
# Numbers are formatted with %.0f, since Lua's default formatting loses digits past 14.

LUA_HELPERS = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function now_us()
  local t = redis.call('TIME')
  return t[1] .. string.rep('0', 6 - #t[2]) .. t[2]
end

local function field(fields, name)
  for i = 1, #fields, 2 do
    if fields[i] == name then return fields[i + 1] end
  end
  return nil
end

-- Add one to a counter field (creating it), returning the new value.
local function bump(fields, name)
  for i = 1, #fields, 2 do
    if fields[i] == name then
      local n = (tonumber(fields[i + 1]) or 0) + 1
      fields[i + 1] = string.format('%.0f', n)
      return n
    end
  end
  table.insert(fields, name)
  table.insert(fields, '1')
  return 1
end

-- Append a message to the dead stream; a message dead again moves to the end.
local function bury(dead, index, fields, fallback_id, reason)
  local id = field(fields, 'id')
  if id == nil then
    id = fallback_id
    table.insert(fields, 'id')
    table.insert(fields, id)
  end
  table.insert(fields, 'reason')
  table.insert(fields, reason)
  table.insert(fields, 'dead_at_us')
  table.insert(fields, now_us())
  local previous = redis.call('HGET', index, id)
  if previous then redis.call('XDEL', dead, previous) end
  redis.call('HSET', index, id, redis.call('XADD', dead, '*', unpack(fields)))
end
"""

# KEYS: jobs, delayed, dead, dead index
# ARGV: group, consumer, batch, min idle ms (-1: do not reclaim), cursor, max reclaims (-1: none)
# Returns {ms until the next delayed message is due (-1: none), next XAUTOCLAIM cursor}.
MAINTAIN = (
    LUA_HELPERS
    + """
local now = now_ms()
local batch = tonumber(ARGV[3])
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', string.format('%.0f', now),
                       'LIMIT', 0, batch)
for _, member in ipairs(due) do
  local ok, fields = pcall(cjson.decode, member)
  if not ok or type(fields) ~= 'table' or #fields < 2 then
    fields = {'raw', member}  -- receive dead-letters what it cannot read
  end
  redis.call('XADD', KEYS[1], '*', unpack(fields))
  redis.call('ZREM', KEYS[2], member)
end

local cursor = ARGV[5]
if tonumber(ARGV[4]) >= 0 then
  local max_reclaims = tonumber(ARGV[6])
  local claimed = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[4], cursor,
                             'COUNT', batch)
  cursor = claimed[1]
  for _, entry in ipairs(claimed[2]) do
    if type(entry) == 'table' then
      redis.call('XACK', KEYS[1], ARGV[1], entry[1])
      redis.call('XDEL', KEYS[1], entry[1])
      local fields = entry[2]
      if type(fields) == 'table' then  -- Redis 6.2 lists entries deleted meanwhile as nil
        bump(fields, 'attempts')
        local reclaims = bump(fields, 'reclaims')
        if max_reclaims >= 0 and reclaims > max_reclaims then
          bury(KEYS[3], KEYS[4], fields, entry[1], string.format(
            'reclaimed %.0f times: never settled within the visibility timeout', reclaims))
        else
          redis.call('XADD', KEYS[1], '*', unpack(fields))
        end
      end
    end
  end
end

local head = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
local wait = -1
if head[2] then wait = math.max(0, tonumber(head[2]) - now) end
return {string.format('%.0f', wait), cursor}
"""
)

# KEYS: jobs, delayed, dead, dead index
# ARGV: group, entry id ('' for none), 'ack' | 'put' | 'bury', delay ms (put) or reason (bury),
#       then the message's fields (put, bury)
# Returns 0 when the entry was no longer pending (reclaimed meanwhile) and nothing was done.
SETTLE = (
    LUA_HELPERS
    + """
if ARGV[2] ~= '' then
  local acked = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
  redis.call('XDEL', KEYS[1], ARGV[2])
  if acked == 0 and ARGV[3] ~= 'ack' then return 0 end
end
if ARGV[3] == 'put' then
  local fields = {unpack(ARGV, 5)}
  local delay = tonumber(ARGV[4])
  if delay > 0 then
    redis.call('ZADD', KEYS[2], string.format('%.0f', now_ms() + delay), cjson.encode(fields))
  else
    redis.call('XADD', KEYS[1], '*', unpack(fields))
  end
elseif ARGV[3] == 'bury' then
  bury(KEYS[3], KEYS[4], {unpack(ARGV, 5)}, ARGV[2], ARGV[4])
end
return 1
"""
)

# KEYS: dead, dead index, jobs. ARGV: message id. Returns 1 if requeued, 0 if unknown.
REQUEUE = """
local entry_id = redis.call('HGET', KEYS[2], ARGV[1])
if not entry_id then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
local found = redis.call('XRANGE', KEYS[1], entry_id, entry_id)
if #found == 0 then return 0 end
redis.call('XDEL', KEYS[1], entry_id)
local fields = {}
for i = 1, #found[1][2], 2 do
  local name, value = found[1][2][i], found[1][2][i + 1]
  if name == 'attempts' or name == 'reclaims' then value = '0' end
  if name ~= 'reason' and name ~= 'dead_at_us' then
    table.insert(fields, name)
    table.insert(fields, value)
  end
end
redis.call('XADD', KEYS[3], '*', unpack(fields))
return 1
"""

# KEYS: jobs, delayed, dead. ARGV: group.
# Returns {stream length, pending, delayed, delayed but due, dead}, as one snapshot.
STATS = """
local t = redis.call('TIME')
local now = string.format('%.0f', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
local pending = redis.pcall('XPENDING', KEYS[1], ARGV[1])
local in_flight = 0
if type(pending) == 'table' and pending.err == nil then in_flight = tonumber(pending[1]) end
return {
  redis.call('XLEN', KEYS[1]), in_flight, redis.call('ZCARD', KEYS[2]),
  redis.call('ZCOUNT', KEYS[2], '-inf', now), redis.call('XLEN', KEYS[3])
}
"""

# KEYS: jobs. ARGV: group, consumer. Forget the consumer if it holds nothing.
RETIRE = """
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) == 0 then
  return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
end
return -1
"""


# ── The adapter ───────────────────────────────────────────────────────────────────────────────
