-- GCRA on the server's clock, in integer microseconds.
-- KEYS[1]  the bucket: its theoretical arrival time (TAT), an 8-byte little-endian
--          double (struct '<d'), read back exactly. By hand: EVAL "return
--          string.format('%d', (struct.unpack('<d', redis.call('GET', KEYS[1]))))" 1 key
-- ARGV[1]  24 bytes, struct '<ddd': increment (cost * interval), capacity
--          (burst * interval), max_wait_us (0 for a check).
-- ARGV[2]  present for a peek only: decide, write nothing.
-- Returns  the debt before this call, d = max(TAT - now, 0): d when admitted, -d - 1
--          when denied. The client derives wait, retry-after, remaining and reset
--          from d with the same arithmetic (see mod.rs).
--
-- The script's time inside Redis is most of what a decision costs beyond a GET, so it
-- does only what the server must (TIME, GET, compare, SET) and converts as few numbers
-- as it can: decimal conversions (strtod, printf) cost more than the arithmetic, so
-- the arguments and the TAT travel as binary doubles, which struct reads in one call.
local increment, capacity, max_wait = struct.unpack('<ddd', ARGV[1])
local time = redis.call('TIME')
local now = time[1] * 1000000 + time[2]
-- pcall: a value of another type under the key (a hash, a list) answers an error
-- table instead of failing the script; like any foreign value, it reads as a full
-- bucket, and the SET below replaces it.
local tat = redis.pcall('GET', KEYS[1])
local owed = 0
if type(tat) == 'string' and #tat == 8 then
  owed = struct.unpack('<d', tat) - now
  -- False for NaN and for debts over 2^62 ns (the longest quota), so 8 foreign bytes
  -- count as a full bucket rather than a lockout for millennia.
  if not (owed >= 0 and owed < 4.6e15) then
    owed = 0
  end
end
local after = owed + increment
if after - capacity > max_wait then
  return -owed - 1
end

-- Write only what changes the bucket. The key expires when the bucket is full again
-- (whole milliseconds, rounded up: '%d' truncates the positive quotient): an absent key
-- and a full bucket are the same.
if increment > 0 and not ARGV[2] then
  redis.call('SET', KEYS[1], struct.pack('<d', now + after), 'PX', string.format('%d', (after + 999) / 1000))
end
return owed
