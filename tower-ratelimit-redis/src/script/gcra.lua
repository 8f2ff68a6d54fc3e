-- GCRA on the server's clock, in integer microseconds.
-- KEYS[1]  the bucket: its theoretical arrival time (TAT) and the emission interval it
--          was measured in, two little-endian doubles (struct '<dd', 16 bytes), read
--          back exactly. By hand: EVAL "return string.format('%d %d',
--          struct.unpack('<dd', redis.call('GET', KEYS[1])))" 1 key
--          An 8-byte value (one double: the TAT alone, as earlier versions wrote)
--          reads as a TAT in the current interval.
-- ARGV[1]  40 bytes, struct '<ddddd': increment (cost * interval), capacity
--          (burst * interval), max_wait_us (0 for a check), backdate_us: decide as of
--          that long ago (0, or for a waiter that woke late: the slots that fell due
--          while it slept are its own; max_wait_us then includes it), and the
--          interval, which the key outlives its full bucket by.
-- ARGV[2]  absent for a check or a plain reservation (the hot path reads no more).
--          'peek': decide, book nothing (a bucket re-expressed in a new interval is
--          still written back, with its new expiry). A number: a reservation of a
--          request whose readiness took units earlier (RateStore::reserve_whole)
--          gives back that many µs of the TAT first, never below now, then books the
--          whole cost; refused, it keeps them given back (it does not start). The
--          client sends only what time cannot have refilled yet (taken * interval -
--          age - slack), so what comes back is still in the TAT. It is the end of
--          the TAT, which may be a later request's sleeping booking: nothing comes
--          back while the TAT's latest slot is still ahead of the clock.
-- Returns  the debt before this call, d = max(TAT - now, 0): d when admitted, -d - 1
--          when denied. The client derives wait, retry-after, remaining and reset
--          from d with the same arithmetic (see mod.rs).
--
-- The script's time inside Redis is most of what a decision costs beyond a GET, so it
-- does only what the server must (TIME, GET, compare, SET) and converts as few numbers
-- as it can: decimal conversions (strtod, printf) cost more than the arithmetic, so
-- the arguments and the TAT travel as binary doubles, which struct reads in one call.
local increment, capacity, max_wait, backdate, interval = struct.unpack('<ddddd', ARGV[1])
local extra = ARGV[2]
local give_back = extra and tonumber(extra)
local time = redis.call('TIME')
local clock = time[1] * 1000000 + time[2]
local now = clock - backdate
-- pcall: a value of another type under the key (a hash, a list) answers an error
-- table instead of failing the script; like any foreign value, it reads as a full
-- bucket, and the SET below replaces it.
local state = redis.pcall('GET', KEYS[1])
-- The length tells the layouts apart; an error table (a foreign type) has none, and
-- reading it costs less than asking `type()`.
local tat, measured_in
if state then
  local size = #state
  if size == 16 then
    tat, measured_in = struct.unpack('<dd', state)
  elseif size == 8 then
    tat, measured_in = struct.unpack('<d', state), interval
  end
end
-- No state: a full bucket as of now (a backdated decision claims nothing before now
-- without a TAT that says which slots fell due).
local owed = backdate
-- Whether the bucket read differs from the one stored beyond what this call books:
-- re-expressed in a new interval, or given back to. Even a call that books nothing
-- then writes it, with the expiry its debt needs now (a longer interval outlives the
-- old expiry, and a refused request's readiness units stay given back, as in memory).
local changed = false
if tat then
  -- The quota changed since the TAT was written: the debt keeps its units, at the
  -- new spacing (as the core's stores rescale on set_quota).
  if measured_in ~= interval and measured_in > 0 and tat > clock then
    tat = clock + (tat - clock) * interval / measured_in
    changed = true
  end
  local known = tat - now
  -- A debt past 2^62 ns (the longest quota's span) is rare but can be this script's
  -- own (a reservation waiting beyond the burst, a burst at the longest span); it is
  -- trusted only from a key that expires, as every key this script writes does, so
  -- that foreign bytes count as a full bucket rather than a lockout for millennia.
  -- NaN and infinity are never trusted.
  local trusted = known < 4.6e15
  if not trusted and known < math.huge then
    trusted = redis.call('PTTL', KEYS[1]) >= 0
  end
  if trusted then
    -- The give-back ('> 0' is false for NaN); a debt at or below now stays there.
    -- Not while the latest slot the TAT holds (TAT - capacity) is still ahead of the
    -- clock: that is a sleeping booking (this process's or another's), whose start
    -- the TAT fixes; giving back would let a newcomer into its slot. One that has
    -- come due is starting, and the give-back nets out with the cost booked below.
    if give_back and give_back > 0 and tat - capacity <= clock then
      known = known - give_back
      changed = true
    end
    if known > 0 then
      owed = known
    else
      owed = 0
    end
  else
    changed = false
  end
end
local after = owed + increment
if after - capacity > max_wait then
  if changed then
    redis.call('SET', KEYS[1], struct.pack('<dd', now + owed, interval), 'PX', string.format('%d', (owed + interval + 1999) / 1000))
  end
  return -owed - 1
end

-- Write only what changes the bucket (a give-back does, even for a cost of 0; a
-- bucket re-expressed in a new interval does, even for a peek). The key expires one
-- interval after the bucket is full again, so that a waiter waking up to an interval late still finds the TAT that
-- says which slot fell due (whole milliseconds, rounded up: '%d' truncates the positive
-- quotient; plus one, as Redis counts expiry from the start of its current
-- millisecond). An absent key and a full bucket are the same.
if give_back or (increment > 0 and not extra) then
  redis.call('SET', KEYS[1], struct.pack('<dd', now + after, interval), 'PX', string.format('%d', (after + interval + 1999) / 1000))
elseif changed then
  redis.call('SET', KEYS[1], struct.pack('<dd', now + owed, interval), 'PX', string.format('%d', (owed + interval + 1999) / 1000))
end
return owed
