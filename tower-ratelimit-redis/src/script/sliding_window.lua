-- Sliding window counter (Cloudflare's approximation) on the server's clock, in
-- integer microseconds: the previous window's count, weighted by how much of it
-- the sliding window still covers, plus the current window's count.
-- KEYS[1]  the bucket: a hash {w = window index, c = its count, p = previous count}.
-- ARGV     mode (0 peek, 1 check, 2 reserve), period_us, limit, cost, max_wait_us
-- Returns  {allowed, remaining, retry_after_us, reset_us, limit, wait_us}
local mode = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local window = math.floor(now / period)
local elapsed = now - window * period
local left = period - elapsed

-- pcall: a value of another type under the key reads as empty windows, and is
-- replaced when units are taken.
local state = redis.pcall('HMGET', KEYS[1], 'w', 'c', 'p')
local foreign = state.err ~= nil
if foreign then
  state = {}
end
local stored = tonumber(state[1])
local current = 0
local previous = 0
if stored == window then
  current = tonumber(state[2]) or 0
  previous = tonumber(state[3]) or 0
elseif stored == window - 1 then
  previous = tonumber(state[2]) or 0
end

local estimate = previous * left / period + current
local allowed = 0
local retry_after = 0
if estimate + cost <= limit then
  allowed = 1
  current = current + cost
  estimate = estimate + cost
  if mode ~= 0 and cost > 0 then
    if foreign then
      redis.call('DEL', KEYS[1])
    end
    redis.call('HSET', KEYS[1], 'w', string.format('%.0f', window), 'c', current, 'p', previous)
    -- The count matters until the end of the next window, where it stops weighing.
    redis.call('PEXPIRE', KEYS[1], math.ceil((left + period) / 1000))
  end
else
  local room = limit - current - cost
  if room >= 0 and previous > 0 then
    -- Still in this window, once enough of the previous window has slid out.
    retry_after = math.ceil(left - room * period / previous)
  else
    -- In the next window, where this window's count becomes the weighted one.
    local wait_next = 0
    if current > 0 then
      wait_next = math.ceil(period * (1 - (limit - cost) / current))
    end
    if wait_next < 0 then
      wait_next = 0
    end
    retry_after = left + wait_next
  end
  if retry_after < 1 then
    retry_after = 1
  end
end

local remaining = math.floor(limit - estimate)
if remaining < 0 then
  remaining = 0
end
return {allowed, remaining, retry_after, left, limit, 0}
