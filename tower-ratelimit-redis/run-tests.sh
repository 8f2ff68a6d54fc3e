#!/usr/bin/env bash
# Runs the tower-ratelimit-redis tests against a real redis-server: the tests start
# their own throwaway servers (a free loopback port, no persistence, killed
# afterwards); ../scripts/ensure-redis.sh makes sure the binaries are installed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-redis.sh
exec cargo test -p tower-ratelimit-redis "$@"
