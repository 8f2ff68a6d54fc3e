-- Fixed window on the server's clock, in integer microseconds. Windows are aligned
-- to the Unix epoch, so every key's window starts on the same boundaries.
-- KEYS[1]  the bucket: a hash {w = window index, c = units taken in it, u = the
--          period the index counts, in µs}. The index may
--          be ahead of the current window: a reservation booked the units there, and
--          checks are denied until it starts, so reservations keep their order.
-- ARGV     mode (0 peek, 1 check, 2 reserve), period_us, limit, cost, max_wait_us
--          [, taken, age_us, slack_us]: reserve only, a request whose readiness took
--          `taken` units age_us ago (measured by the client) books its whole cost:
--          those units are given back first, if they are still in the stored window
--          (see below), so that every unit counts in the window where it starts.
-- Returns  {allowed, remaining, retry_after_us, reset_us, limit, wait_us}
local mode = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local max_wait = tonumber(ARGV[5])

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local current = math.floor(now / period)

-- pcall: a value of another type under the key reads as an empty window, and is
-- replaced when units are taken.
local state = redis.pcall('HMGET', KEYS[1], 'w', 'c', 'u')
local foreign = state.err ~= nil
if foreign then
  state = {}
end
-- The window in force: the stored one if it is current or booked ahead, else an
-- empty current one.
local window = current
local count = 0
local stored = tonumber(state[1])
local stored_period = tonumber(state[3])
local reindexed = false
if stored and stored_period and stored_period ~= period then
  -- The quota's period changed: the units used stay used, in the new window that
  -- holds the old one's start (or now), as the core's FixedWindow re-indexes.
  stored = math.floor(math.max(stored * stored_period, now) / period)
  reindexed = true
end
-- A window booked further ahead than 2^62 ns (the longest quota's span) is rare but
-- can be this script's own; it is trusted only from a key that expires, as every key
-- this script writes does, so that a foreign hash reads as empty windows rather than
-- a lockout for millennia.
if stored and (stored - current) * period > 4.6e15
    and (stored == math.huge or redis.call('PTTL', KEYS[1]) < 0) then
  stored = nil
end
if stored and stored >= current then
  window = stored
  count = tonumber(state[2]) or 0
end
-- A re-indexed window that still holds units is written back even by a call that
-- takes none (a peek, a refusal): its expiry was set for the old period, and a
-- longer period must not lose the units at the old window's end.
local rewrite = reindexed and window == stored and count > 0

-- The readiness units are dated `age_us` before now. The client's age is short of
-- the truth by at most two calls (the check's reply and this call), each bounded by
-- the timeout: slack_us. They are given back only when that whole span lies in one
-- window, it is the stored window, the period is unchanged and the window holds
-- them all; otherwise they stay spent where they were taken (the window then
-- admits less than its count, never more).
local gave_back = false
if mode == 2 and ARGV[6] then
  local taken = tonumber(ARGV[6]) or 0
  local at = now - (tonumber(ARGV[7]) or 0)
  local taken_in = math.floor(at / period)
  if taken > 0 and taken_in == current and window == current
      and math.floor((at - (tonumber(ARGV[8]) or 0)) / period) == taken_in
      and stored_period == period and count >= taken then
    count = count - taken
    gave_back = true
  end
end

local function snapshot_remaining(w, c)
  if w > current then
    return 0
  end
  return math.max(limit - c, 0)
end

local function save(w, c)
  if foreign then
    redis.call('DEL', KEYS[1])
  end
  redis.call('HSET', KEYS[1], 'w', string.format('%.0f', w), 'c', c, 'u', string.format('%.0f', period))
  redis.call('PEXPIRE', KEYS[1], math.ceil(((w + 1) * period - now) / 1000))
end

if window == current and count + cost <= limit then
  if mode ~= 0 and (cost > 0 or gave_back) then
    save(window, count + cost)
  elseif rewrite then
    save(window, count)
  end
  return {1, snapshot_remaining(window, count + cost), 0, (current + 1) * period - now, limit, 0}
end

-- The first window with room: this one, or the next (the client never sends a cost
-- above the limit, so the next always fits it).
local fit = window
local used = count
if count + cost > limit then
  fit = window + 1
  used = 0
end
local wait = math.max(fit * period - now, 0)
if mode == 2 and wait <= max_wait then
  save(fit, used + cost)
  return {1, snapshot_remaining(fit, used + cost), 0, (math.max(fit, current) + 1) * period - now, limit, wait}
end
if gave_back or rewrite then
  -- Refused: the request does not start, so its readiness units stay given back.
  save(window, count)
end
return {0, snapshot_remaining(window, count), wait, (window + 1) * period - now, limit, 0}
