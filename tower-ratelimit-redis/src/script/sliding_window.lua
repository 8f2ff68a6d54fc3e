-- Sliding window counter (Cloudflare's approximation) on the server's clock, in
-- integer microseconds: the previous window's count, weighted by how much of it
-- the sliding window still covers, plus the current window's count.
-- KEYS[1]  the bucket: a hash {w = window index, c = its count, p = previous count,
--          u = the period the index counts, in µs}.
--          The index may be ahead of the current window: a reservation booked units
--          there, and nothing passes before the instant it was booked for.
-- ARGV     mode (0 peek, 1 check, 2 reserve), period_us, limit, cost, max_wait_us
--          [, taken, age_us, slack_us]: reserve only, a request whose readiness took
--          `taken` units age_us ago (measured by the client) books its whole cost:
--          those units are given back first, from the count of the window they were
--          taken in if the hash still holds it (see below), so that every unit counts
--          where the request starts.
-- Returns  {allowed, remaining, retry_after_us, reset_us, limit, wait_us}
--
-- The same arithmetic as the core's `SlidingCounter`: `cost` fits at offset `r` into
-- a window when `prev * (period - r) + (curr + cost) * period <= limit * period`.
local mode = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local max_wait = tonumber(ARGV[5])

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local current = math.floor(now / period)

-- pcall: a value of another type under the key reads as empty windows, and is
-- replaced when units are taken.
local state = redis.pcall('HMGET', KEYS[1], 'w', 'c', 'p', 'u')
local foreign = state.err ~= nil
if foreign then
  state = {}
end

-- The counts as seen from the current window; a window booked ahead stays ahead.
local index = current
local curr = 0
local prev = 0
local stored = tonumber(state[1])
local stored_period = tonumber(state[4])
local reindexed = false
if stored and stored_period and stored_period ~= period then
  -- The quota's period changed: both counts stay, in the new window that holds the
  -- old one's start (or now), as the core's SlidingCounter re-indexes.
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
if stored then
  if stored >= current then
    index = stored
    curr = tonumber(state[2]) or 0
    prev = tonumber(state[3]) or 0
  elseif stored == current - 1 then
    prev = tonumber(state[2]) or 0
  end
end

-- Re-indexed counts that still weigh are written back even by a call that takes
-- nothing (a peek, a refusal): their expiry was set for the old period, and a longer
-- period must not lose them at the old windows' end.
local rewrite = reindexed and (curr > 0 or prev > 0)

-- The readiness units are dated `age_us` before now. The client's age is short of
-- the truth by at most two calls (the check's reply and this call), each bounded by
-- the timeout: slack_us. They are given back only when that whole span lies in one
-- window, the period is unchanged and that window's count (the current count if it
-- is the index, the previous count if the index is the next window) holds them all;
-- otherwise they stay spent where they were taken (the window then admits less than
-- its count, never more).
local gave_back = false
if mode == 2 and ARGV[6] then
  local taken = tonumber(ARGV[6]) or 0
  local at = now - (tonumber(ARGV[7]) or 0)
  local taken_in = math.floor(at / period)
  if taken > 0 and stored_period == period
      and math.floor((at - (tonumber(ARGV[8]) or 0)) / period) == taken_in then
    if index == taken_in and curr >= taken then
      curr = curr - taken
      gave_back = true
    elseif index == taken_in + 1 and prev >= taken then
      prev = prev - taken
      gave_back = true
    end
  end
end

local function fits(p, c, r)
  return p * (period - r) + (c + cost) * period <= limit * period
end

-- The earliest instant at or after `from` at which `cost` fits, in window `i` (with
-- counts `p`, `c`) or a later one; and that window's counts. Two windows on, the
-- previous count has fully decayed and any cost up to the limit fits at the start.
local function earliest(i, p, c, from)
  for _ = 1, 3 do
    local start = i * period
    local room = limit - c - cost
    if room >= 0 then
      local r = 0
      if p > 0 then
        r = math.max(period - math.floor(room * period / p), 0)
      end
      local at = math.max(start + r, from)
      -- The closed form is exact; two steps absorb a rounding of the doubles.
      for _ = 1, 2 do
        if at >= start + period or fits(p, c, at - start) then
          break
        end
        at = at + 1
      end
      if at < start + period and fits(p, c, at - start) then
        return at, i, p, c
      end
    end
    i, p, c = i + 1, c, 0
    from = i * period
  end
  return from, i, p, c
end

local function snapshot(i, p, c)
  local start = i * period
  local r = math.min(math.max(now - start, 0), period)
  local estimate = math.ceil(p * (period - r) / period) + c
  -- Full again once nothing counted weighs: the current window's units weigh until
  -- the end of the next one, the previous window's until this one ends.
  local full_at = now
  if c > 0 then
    full_at = start + 2 * period
  elseif p > 0 then
    full_at = start + period
  end
  return math.max(limit - estimate, 0), math.max(full_at - now, 0)
end

local at, fit_index, fit_prev, fit_curr = earliest(index, prev, curr, math.max(index * period, now))
local wait = at - now
local allowed_wait = 0
if mode == 2 then
  allowed_wait = max_wait
end
local function save(i, p, c)
  if foreign then
    redis.call('DEL', KEYS[1])
  end
  redis.call('HSET', KEYS[1], 'w', string.format('%.0f', i), 'c', c, 'p', p, 'u', string.format('%.0f', period))
  -- The count matters until the end of the window after it, where it stops weighing.
  redis.call('PEXPIRE', KEYS[1], math.ceil(((i + 2) * period - now) / 1000))
end

if wait > allowed_wait then
  if gave_back or rewrite then
    -- Refused: the request does not start, so its readiness units stay given back.
    save(index, prev, curr)
  end
  local remaining, reset = snapshot(index, prev, curr)
  return {0, remaining, math.max(wait, 1), reset, limit, 0}
end

fit_curr = fit_curr + cost
if mode ~= 0 and (cost > 0 or gave_back) then
  save(fit_index, fit_prev, fit_curr)
elseif rewrite then
  save(index, prev, curr)
end
local remaining, reset = snapshot(fit_index, fit_prev, fit_curr)
return {1, remaining, 0, reset, limit, math.max(wait, 0)}
