-- Fixed window on the server's clock, in integer microseconds. Windows are aligned
-- to the Unix epoch, so every key's window starts on the same boundaries.
-- KEYS[1]  the bucket: a hash {w = window index, c = units taken in it}.
-- ARGV     mode (0 peek, 1 check, 2 reserve), period_us, limit, cost, max_wait_us
-- Returns  {allowed, remaining, retry_after_us, reset_us, limit, wait_us}
local mode = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local window = math.floor(now / period)
local reset = (window + 1) * period - now

-- pcall: a value of another type under the key reads as an empty window, and is
-- replaced when units are taken.
local state = redis.pcall('HMGET', KEYS[1], 'w', 'c')
local foreign = state.err ~= nil
if foreign then
  state = {}
end
local count = 0
if tonumber(state[1]) == window then
  count = tonumber(state[2]) or 0
end

local allowed = 0
local retry_after = 0
if count + cost <= limit then
  allowed = 1
  count = count + cost
  if mode ~= 0 and cost > 0 then
    if foreign then
      redis.call('DEL', KEYS[1])
    end
    redis.call('HSET', KEYS[1], 'w', string.format('%.0f', window), 'c', count)
    redis.call('PEXPIRE', KEYS[1], math.ceil(reset / 1000))
  end
else
  -- The client never sends a cost above the limit, so the next window fits it.
  retry_after = reset
end

return {allowed, limit - count, retry_after, reset, limit, 0}
