#!/usr/bin/env bash
# Runs the tower-ratelimit-redis tests against a real redis-server.
#
# The tests start their own throwaway servers (a free loopback port, no persistence,
# killed afterwards); this script only makes sure `redis-server` is installed:
# it installs the Debian package when it is missing and we are root, and otherwise
# says what to install.
set -euo pipefail

if ! command -v "${REDIS_SERVER:-redis-server}" >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "redis-server is missing: installing the Debian package redis-server" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
        # The package may start a system service; the tests do not use it.
    else
        echo "redis-server is missing: install it with 'apt-get install redis-server'" >&2
        echo "(or point REDIS_SERVER at a redis-server or valkey-server binary)" >&2
        exit 1
    fi
fi

cd "$(dirname "$0")/.."
exec cargo test -p tower-ratelimit-redis "$@"
