#!/usr/bin/env bash
# Runs every test of the workspace. The Redis tests start their own throwaway
# redis-server on a free loopback port (no persistence) and stop it; this script only
# makes sure the binary is there, installing Debian's package when run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "== installing redis-server (Debian package) for the Redis tests"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
    else
        echo "The Redis tests need redis-server: install it (e.g. 'sudo apt-get install redis-server')." >&2
        exit 1
    fi
fi

cargo test --workspace --all-features --locked
