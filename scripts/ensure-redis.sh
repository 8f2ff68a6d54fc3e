#!/usr/bin/env bash
# Makes sure the Redis tests can run: a server binary ($REDIS_SERVER, else
# redis-server) and a client ($REDIS_CLI, else redis-cli; the cluster test joins its
# servers with it). When one is missing and we are root on Debian, installs the
# package (redis-server, redis-tools); otherwise says what to install and fails.
# The tests start their own throwaway servers (a free loopback port, no persistence)
# and stop them; a system service the package may start is not used.
set -euo pipefail

ensure() {
    local binary=$1 package=$2 other=$3
    if command -v "$binary" >/dev/null 2>&1; then
        return
    fi
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "== $binary is missing: installing the Debian package $package" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null
    else
        echo "The Redis tests need $binary: install it (e.g. 'sudo apt-get install $package')," >&2
        echo "or point $other at another binary (a valkey build, say)." >&2
        exit 1
    fi
}

ensure "${REDIS_SERVER:-redis-server}" redis-server REDIS_SERVER
ensure "${REDIS_CLI:-redis-cli}" redis-tools REDIS_CLI
