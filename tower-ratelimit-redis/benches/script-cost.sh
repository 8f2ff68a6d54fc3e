#!/usr/bin/env bash
# Instructions that redis-server executes per call of the GCRA script, next to a GET
# and an empty script: a measure of the script's server cost that, unlike time, does
# not move with the load on a shared machine. Each case runs a throwaway server under
# valgrind (cachegrind, no cache simulation) twice, with no calls and with N calls
# (pipelined by 10, one connection), and prints the difference divided by N.
#
#   tower-ratelimit-redis/benches/script-cost.sh [script.lua]
#
# DRAIN=1 adds the throttle's drain script (src/script/drain.lua; DRAIN_SCRIPT names
# another copy): one call that writes, and one whose drain point's debt has run out.
#
# WINDOWS=1 adds the window scripts (FIXED_SCRIPT, SLIDING_SCRIPT name other copies,
# e.g. an older version to compare): a reservation, and a wait-mode weighted
# request's reservation that gives its readiness unit back first.
#
# Needs valgrind, python3 and redis-server (REDIS_SERVER names another binary, e.g.
# valkey-server; REDIS_CLI its client). N defaults to 10000 (about 10 s per case).
set -euo pipefail
cd "$(dirname "$0")/.."
SCRIPT=${1:-src/script/gcra.lua}
SERVER=${REDIS_SERVER:-redis-server}
CLI=${REDIS_CLI:-redis-cli}
N=${N:-10000}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# Sends N copies of one command (arguments given in hex) and reads the replies.
cat >"$TMP/load.py" <<'EOF'
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
parts = [bytes.fromhex(a) for a in sys.argv[3:]]
cmd = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
s = socket.create_connection(("127.0.0.1", port))
f = s.makefile("rb")
def reply():
    line = f.readline()
    if line[:1] == b"-":
        sys.exit("error: " + line.decode())
    if line[:1] == b"$" and line[1:2] != b"-":
        f.read(int(line[1:]) + 2)
    if line[:1] == b"*":
        for _ in range(int(line[1:])):
            reply()
done = 0
while done < n:
    k = min(10, n - done)
    s.sendall(cmd * k)
    for _ in range(k):
        reply()
    done += k
EOF

hex() { python3 -c 'import sys; print(" ".join(a.encode().hex() for a in sys.argv[1:]))' "$@"; }
# GCRA's packed argument: increment, capacity, max_wait, backdate, interval as '<ddddd'.
packed() { python3 -c 'import struct, sys; print(struct.pack("<ddddd", *map(float, sys.argv[1:])).hex())' "$@"; }

# instructions CALLS SCRIPT-OR-EMPTY HEXARGS...: total instructions of a server run.
instructions() {
    local calls=$1 source=$2
    shift 2
    local port
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
        "$SERVER" --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        >/dev/null 2>"$TMP/vg.$port" &
    local pid=$!
    until "$CLI" -p "$port" ping >/dev/null 2>&1; do sleep 0.1; done
    local args=("$@")
    if [ -n "$source" ]; then
        local sha
        sha=$("$CLI" -p "$port" script load "$source")
        args=("$(hex EVALSHA "$sha")" "$@")
    fi
    if [ "$calls" -gt 0 ]; then
        # shellcheck disable=SC2086
        python3 "$TMP/load.py" "$port" "$calls" ${args[*]}
    fi
    "$CLI" -p "$port" shutdown nosave >/dev/null 2>&1 || true
    wait "$pid" || true
    grep -E 'I +refs' "$TMP/vg.$port" | tr -d ',' | awk '{print $4}'
}

per_call() {
    local name=$1
    shift
    local idle busy
    idle=$(instructions 0 "$@")
    busy=$(instructions "$N" "$@")
    printf '| %s | %d |\n' "$name" $(((busy - idle) / N))
}

echo "$($SERVER --version | cut -d' ' -f1-3), $N calls per case"
echo
echo "| call | instructions per call in the server |"
echo "|---|---:|"
per_call "GET" "" $(hex GET bench:get)
per_call 'EVALSHA `return 1`' "return 1" $(hex 1 bench:raw) "$(packed 1 1000000 0 0 1)"
# 1 µs per unit, capacity 1 s: every call admits and writes.
per_call "GCRA script, admitted (TIME, GET, SET)" "$(cat "$SCRIPT")" \
    $(hex 1 bench:raw) "$(packed 1 1000000 0 0 1)"
# A wait-mode request's reservation (reserve_whole) that first gives back 1 µs its
# readiness took: the second argument. (Before it existed, reserve_whole was the
# plain reservation above.)
per_call "GCRA script, admitted giving back (reserve_whole)" "$(cat "$SCRIPT")" \
    $(hex 1 bench:raw) "$(packed 1 1000000 0 0 1)" $(hex 1)
# A cost above the capacity: every call is denied and writes nothing.
per_call "GCRA script, denied (TIME, GET)" "$(cat "$SCRIPT")" \
    $(hex 1 bench:raw) "$(packed 2000000 1000000 0 0 1)"
# The least any GCRA on the server's clock can cost: the same three calls with constant
# arguments and no arithmetic. What the real script costs above it is its own work.
per_call "floor: TIME, GET, SET … PX with constants" \
    "redis.call('TIME') redis.call('GET', KEYS[1]) redis.call('SET', KEYS[1], 'constant', 'PX', '10') return 0" \
    $(hex 1 bench:raw) "$(packed 1 1000000 0 0 1)"

if [ "${DRAIN:-0}" = 1 ]; then
    DRAIN_SOURCE=${DRAIN_SCRIPT:-src/script/drain.lua}
    # The drain's packed argument: offset from the server's now, debt, interval, and the
    # point on the server's clock (0: unknown; -1: a probe that only answers the clock)
    # ('<dddd').
    drained() { python3 -c 'import struct, sys; print(struct.pack("<dddd", *map(float, sys.argv[1:])).hex())' "$@"; }
    # Drained as of now with a debt of 1 s: each call's floor is past the last one's,
    # so every call reads the bucket and writes it (TIME, GET, SET).
    per_call "drain script, writes (TIME, GET, SET)" "$(cat "$DRAIN_SOURCE")" \
        $(hex 1 bench:drain) "$(drained 0 1000000 1 0)"
    # The same with a point on the server's clock far ahead (the offset wins): what a
    # task's drain costs, with the comparison it adds.
    per_call "drain script, writes, with a server point" "$(cat "$DRAIN_SOURCE")" \
        $(hex 1 bench:drain) "$(drained 0 1000000 1 1e300)"
    # A drain point a second ago with a debt of 1 µs: nothing left to drain (TIME).
    per_call "drain script, debt run out (TIME)" "$(cat "$DRAIN_SOURCE")" \
        $(hex 1 bench:drain) "$(drained -1000000 1 1 0)"
    # The probe a drain task sends first, for the server's clock (TIME).
    per_call "drain script, probe (TIME)" "$(cat "$DRAIN_SOURCE")" \
        $(hex 1 bench:drain) "$(drained 0 1000000 1 -1)"
fi

if [ "${WINDOWS:-0}" = 1 ]; then
    FIXED=${FIXED_SCRIPT:-src/script/fixed_window.lua}
    SLIDING=${SLIDING_SCRIPT:-src/script/sliding_window.lua}
    # One window of an hour with room for every call: each admits and writes. The
    # give-back (taken 1, age 0, slack 0) finds the unit the call before booked.
    window=(2 3600000000 1000000000000 1 0)
    for case in "fixed window:$FIXED" "sliding window:$SLIDING"; do
        name=${case%%:*}
        source=${case#*:}
        per_call "$name script, check" "$(cat "$source")" \
            $(hex 1 bench:raw 1 3600000000 1000000000000 1 0)
        per_call "$name script, reserve" "$(cat "$source")" \
            $(hex 1 bench:raw "${window[@]}")
        per_call "$name script, reserve giving 1 back" "$(cat "$source")" \
            $(hex 1 bench:raw "${window[@]}" 1 0 0)
    done
fi
