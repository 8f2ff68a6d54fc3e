#!/usr/bin/env bash
# Runs every test of the workspace. The Redis tests start their own throwaway
# redis-server on a free loopback port (no persistence) and stop it; this script only
# makes sure the binaries are there (scripts/ensure-redis.sh), installing Debian's
# packages when run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-redis.sh
cargo test --workspace --all-features --locked
