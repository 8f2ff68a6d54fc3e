-- GCRA on the server's clock, in integer microseconds.
-- KEYS[1]  the bucket: a string holding its theoretical arrival time (TAT).
-- ARGV     increment (cost * interval), capacity (burst * interval), max_wait_us
--          (0 for a check); a fourth argument, present for a peek only, writes nothing.
-- Returns  the debt before this call, d = max(TAT - now, 0): d when admitted, -d - 1
--          when denied. The client derives wait, retry-after, remaining and reset
--          from d with the same integer arithmetic (see mod.rs).
--
-- The script is kept to what only the server can do (TIME, GET, compare, SET) and one
-- integer reply, because its time in Redis is most of a decision's cost beyond a GET's.
local increment = tonumber(ARGV[1])
local time = redis.call('TIME')
local now = time[1] * 1000000 + time[2]
local owed = (tonumber(redis.call('GET', KEYS[1])) or now) - now
if owed < 0 then
  owed = 0
end
local after = owed + increment
if after - ARGV[2] > tonumber(ARGV[3]) then
  return -owed - 1
end

-- Write only what changes the bucket. A Lua number given to redis.call is written with
-- 17 significant digits ("%.17g"), so the TAT is stored exactly (unlike tostring's 14).
-- The key expires when the bucket is full again: an absent key and a full bucket are
-- the same.
if increment > 0 and not ARGV[4] then
  redis.call('SET', KEYS[1], now + after, 'PX', math.ceil(after / 1000))
end
return owed
