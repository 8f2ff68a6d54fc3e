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

# The cluster test joins its servers with redis-cli (Debian: redis-tools, which
# redis-server depends on); REDIS_CLI names another client, e.g. valkey-cli.
if ! command -v "${REDIS_CLI:-redis-cli}" >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "redis-cli is missing: installing the Debian package redis-tools" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-tools >/dev/null
    else
        echo "redis-cli is missing: install it with 'apt-get install redis-tools'" >&2
        echo "(or point REDIS_CLI at a redis-cli or valkey-cli binary)" >&2
        exit 1
    fi
fi

cd "$(dirname "$0")/.."
exec cargo test -p tower-ratelimit-redis "$@"
