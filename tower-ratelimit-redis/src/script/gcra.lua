-- GCRA on the server's clock, in integer microseconds.
-- KEYS[1]  the bucket: a string holding its theoretical arrival time (TAT).
-- ARGV     mode (0 peek, 1 check, 2 reserve), interval_us, burst, cost, max_wait_us
-- Returns  {allowed, remaining, retry_after_us, reset_us, limit, wait_us}
local mode = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local max_wait = tonumber(ARGV[5])
local capacity = interval * burst

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])

local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then
  tat = now
end
local new = tat + cost * interval

local allowed = 0
local retry_after = 0
local wait = 0
local owed = tat - now

if mode == 2 then
  wait = new - capacity - now
  if wait < 0 then
    wait = 0
  end
  if wait <= max_wait then
    allowed = 1
    owed = new - now
  else
    retry_after = wait
    wait = 0
  end
elseif new - now <= capacity then
  allowed = 1
  owed = new - now
else
  retry_after = new - capacity - now
end

-- Write only what changes the bucket. Redis converts numbers to strings with 14
-- significant digits, so the TAT is formatted as an integer here. The key expires
-- when the bucket is full again: an absent key and a full bucket are the same.
if allowed == 1 and mode ~= 0 and cost > 0 then
  redis.call('SET', KEYS[1], string.format('%.0f', new), 'PX', math.ceil((new - now) / 1000))
end

local remaining = math.floor((capacity - owed) / interval)
if remaining < 0 then
  remaining = 0
end
return {allowed, remaining, retry_after, owed, burst, wait}
