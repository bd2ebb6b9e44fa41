-- wrk script: POST /v1/withdrawals bodies without an `id` (the server assigns one), each to a
-- fresh random recipient (or one drawn from a fixed list), spread over a pool of users. Counts 2xx and non-2xx responses per
-- status code and prints them, with latency percentiles, as one "BENCH_JSON {...}" line.
--
-- Arguments (after wrk's "--"):
--   1  API key ("" for none: the baseline app ignores it anyway)
--   2  number of users (bench-user-1 .. bench-user-N)
--   3  amount per withdrawal (token units, a decimal string)
--   4  requests per second per wrk thread, paced on a fixed schedule (0: as fast as possible)
--   5  optional: a file of recipient addresses, one a line; each request draws one at random
--      (the batched pipeline's accounts that already exist) instead of a fresh address
--
-- Pacing (argument 4) uses wrk's delay() hook: every connection, before each request, reserves
-- the next free slot of its thread's schedule (slots 1000/rate ms apart) and waits for it. With
-- enough connections the offered rate is exact and does not depend on the server's latency.

local ffi = require("ffi")
ffi.cdef([[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clock_id, bench_timespec *tp);
]])
local CLOCK_MONOTONIC = 1
local timespec = ffi.new("bench_timespec")

local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
  return tonumber(timespec.tv_sec) * 1000 + tonumber(timespec.tv_nsec) / 1e6
end

-- ── set-up and done: run in wrk's main Lua state ──────────────────────────────────────────
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_number", #threads)
end

-- ── per thread ────────────────────────────────────────────────────────────────────────────
ok = 0
non2xx = 0
statuses = {}
sample = ""

local users = 1000
local amount = "0.001"
local interval_ms = 0
local next_slot = nil
local recipients = {}

function init(args)
  local api_key = args[1] or ""
  users = tonumber(args[2] or "1000")
  amount = args[3] or "0.001"
  local rate = tonumber(args[4] or "0")
  local recipients_file = args[5] or ""
  if recipients_file ~= "" then
    local file = assert(io.open(recipients_file, "r"))
    for line in file:lines() do
      if line ~= "" then
        table.insert(recipients, line)
      end
    end
    file:close()
    assert(#recipients > 0, "no recipient in " .. recipients_file)
  end
  math.randomseed(os.time() * 7919 + (thread_number or 0) * 104729 + math.floor(now_ms()))
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  if api_key ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. api_key
  end
  if rate > 0 then
    interval_ms = 1000 / rate
    delay = function()
      local now = now_ms()
      if next_slot == nil or next_slot < now then
        next_slot = now
      end
      local wait = next_slot - now
      next_slot = next_slot + interval_ms
      return wait
    end
  end
end

local function random_address()
  local parts = {}
  for i = 1, 10 do
    parts[i] = string.format("%04x", math.random(0, 65535))
  end
  return "0x" .. table.concat(parts)
end

local function recipient()
  if #recipients > 0 then
    return recipients[math.random(1, #recipients)]
  end
  return random_address()
end

function request()
  local body = string.format(
    '{"userId":"bench-user-%d","amount":"%s","network":"anvil","toAddress":"%s"}',
    math.random(1, users),
    amount,
    recipient()
  )
  return wrk.format("POST", nil, nil, body)
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
  if status >= 200 and status < 300 then
    ok = ok + 1
  else
    non2xx = non2xx + 1
    if sample == "" then
      sample = key .. " " .. string.sub(body or "", 1, 300)
    end
  end
end

-- ── done: main state again ────────────────────────────────────────────────────────────────
local function json_string(text)
  text = string.gsub(text, '[%c"\\]', function(c)
    if c == '"' then
      return '\\"'
    elseif c == "\\" then
      return "\\\\"
    end
    return string.format("\\u%04x", string.byte(c))
  end)
  return '"' .. text .. '"'
end

function done(summary, latency, requests)
  local total_ok, total_non2xx, merged, first_sample = 0, 0, {}, ""
  for _, thread in ipairs(threads) do
    total_ok = total_ok + (thread:get("ok") or 0)
    total_non2xx = total_non2xx + (thread:get("non2xx") or 0)
    local s = thread:get("sample") or ""
    if first_sample == "" then
      first_sample = s
    end
    for code, count in pairs(thread:get("statuses") or {}) do
      merged[code] = (merged[code] or 0) + count
    end
  end
  local codes = {}
  for code, count in pairs(merged) do
    table.insert(codes, json_string(code) .. ":" .. string.format("%d", count))
  end
  local e = summary.errors
  local parts = {
    string.format('"duration_us":%d', summary.duration),
    string.format('"requests":%d', summary.requests),
    string.format('"ok":%d', total_ok),
    string.format('"non2xx":%d', total_non2xx),
    string.format(
      '"socket_errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d}',
      e.connect,
      e.read,
      e.write,
      e.timeout
    ),
    '"statuses":{' .. table.concat(codes, ",") .. "}",
    '"sample":' .. json_string(first_sample),
    string.format(
      '"latency_us":{"mean":%.1f,"max":%d,"p50":%d,"p90":%d,"p95":%d,"p99":%d,"p999":%d}',
      latency.mean,
      latency.max,
      latency:percentile(50),
      latency:percentile(90),
      latency:percentile(95),
      latency:percentile(99),
      latency:percentile(99.9)
    ),
  }
  io.write("BENCH_JSON {" .. table.concat(parts, ",") .. "}\n")
end
