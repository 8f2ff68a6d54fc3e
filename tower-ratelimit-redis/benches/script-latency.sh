#!/usr/bin/env bash
# Round-trip time of one call, one in flight at a time, on a throwaway loopback
# redis-server: a GET, the GCRA check (admitted) and the throttle's drain script (one
# call that writes, one with nothing to drain). Prints p50 and p99 in µs per round.
# Time moves with the machine's load (compare within a round); the server-side cost
# that does not is benches/script-cost.sh (DRAIN=1).
#
#   tower-ratelimit-redis/benches/script-latency.sh        (N=20000 calls per case)
#
# Needs python3 and redis-server (REDIS_SERVER names another binary).
set -euo pipefail
cd "$(dirname "$0")/.."
SERVER=${REDIS_SERVER:-redis-server}
N=${N:-20000}
TMP=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$SERVER" --port "$port" --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$TMP"' EXIT
cat >"$TMP/latency.py" <<'PY'
import socket, struct, subprocess, sys, time, hashlib, statistics
port = int(sys.argv[1]); n = int(sys.argv[2]); root = sys.argv[3]
def enc(*parts):
    parts = [p if isinstance(p, bytes) else str(p).encode() for p in parts]
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
s = socket.create_connection(("127.0.0.1", port)); s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
f = s.makefile("rb")
def reply():
    line = f.readline()
    if line[:1] == b"-": sys.exit(line)
    if line[:1] == b"$" and line[1:2] != b"-": f.read(int(line[1:]) + 2)

def call(cmd): s.sendall(cmd); reply()
gcra = open(root + "/gcra.lua", "rb").read(); drain = open(root + "/drain.lua", "rb").read()
for src in (gcra, drain): call(enc("SCRIPT", "LOAD", src))
sha = lambda b: hashlib.sha1(b).hexdigest()
cases = {
  "GET": enc("GET", "k"),
  "GCRA check (admitted)": enc("EVALSHA", sha(gcra), 1, "g", struct.pack("<ddddd", 1, 1e6, 0, 0, 1)),
  "drain, writes": enc("EVALSHA", sha(drain), 1, "d", struct.pack("<dddd", 0, 1e6, 1, 0)),
  "drain, nothing to drain": enc("EVALSHA", sha(drain), 1, "d2", struct.pack("<dddd", -1e6, 1, 1, 0)),
  "drain, probe (a task's first call)": enc("EVALSHA", sha(drain), 1, "d3", struct.pack("<dddd", 0, 1e6, 1, -1)),
}
for rnd in range(3):
  for name, cmd in cases.items():
    for _ in range(1000): call(cmd)
    t = []
    for _ in range(n):
        a = time.perf_counter_ns(); call(cmd); t.append(time.perf_counter_ns() - a)
    t.sort()
    print(f"round {rnd} {name}: p50 {t[n//2]/1000:.1f} us, p99 {t[n*99//100]/1000:.1f} us")
PY
for _ in $(seq 50); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $port))" 2>/dev/null && break
    sleep 0.1
done
python3 "$TMP/latency.py" "$port" "$N" src/script
