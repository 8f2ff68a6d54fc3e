-- Empties a GCRA bucket as of an instant (RateStore::drain_until, which a throttle
-- calls when a server refused): from then on one unit comes at that instant and the
-- next an interval later, with nothing saved for a burst. The bucket is never filled.
-- KEYS[1]  the bucket, as gcra.lua keeps it (TAT and interval, struct '<dd').
-- ARGV[1]  32 bytes, struct '<dddd': the drain point as an offset from the server's
--          now in µs (negative when it has passed: the client sends `until - now` on
--          its own clock, so the instances' clocks never matter), the debt to owe at
--          that point (capacity - interval), the interval, and the point on this
--          server's clock in µs if the client knows it (0: it does not; -1: write
--          nothing, only answer the clock). A command that waited in flight (a
--          stalled server) would move an offset's point by the wait; the absolute
--          point, read by the client from this server's clock just before, does not
--          move, and the earlier of the two is used.
-- Returns  1 when it drained the bucket, 0 when the bucket already owed as much
--          (written back only when it was re-expressed in a new interval); a probe
--          (-1) returns the server's clock in µs.
--
-- TAT := max(TAT, point + capacity - interval), the core's Gcra::drain_until,
-- read and written exactly as gcra.lua reads and writes the TAT (a foreign or untrusted
-- value is a full bucket, and is replaced), with the same expiry.
local offset, owed, interval, at = struct.unpack('<dddd', ARGV[1])
local time = redis.call('TIME')
local clock = time[1] * 1000000 + time[2]
if at < 0 then
  return clock
end
local point = clock + offset
if at > 0 and at < point then
  point = at
end
local floor = point + owed
-- Drained at a point whose debt has run out by now: the bucket is full either way.
-- ('>' is false for NaN, which writes nothing.)
if not (floor > clock) then
  return 0
end
local state = redis.pcall('GET', KEYS[1])
local tat, measured_in
if state then
  local size = #state
  if size == 16 then
    tat, measured_in = struct.unpack('<dd', state)
  elseif size == 8 then
    tat, measured_in = struct.unpack('<d', state), interval
  end
end
if tat then
  local rescaled = false
  if measured_in ~= interval and measured_in > 0 and tat > clock then
    tat = clock + (tat - clock) * interval / measured_in
    rescaled = true
  end
  local known = tat - clock
  local trusted = known < 4.6e15
  if not trusted and known < math.huge then
    trusted = redis.call('PTTL', KEYS[1]) >= 0
  end
  if trusted and tat >= floor then
    -- Owing more than the drain asks, the bucket stays; re-expressed in a new
    -- interval, it is written back, as gcra.lua does, with the expiry its debt needs
    -- now (the old one, set for a shorter interval, would drop the debt early).
    if rescaled then
      redis.call('SET', KEYS[1], struct.pack('<dd', tat, interval), 'PX', string.format('%d', (known + interval + 1999) / 1000))
    end
    return 0
  end
end
redis.call('SET', KEYS[1], struct.pack('<dd', floor, interval), 'PX', string.format('%d', (floor - clock + interval + 1999) / 1000))
return 1
