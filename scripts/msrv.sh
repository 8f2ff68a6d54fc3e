#!/usr/bin/env bash
# Checks that the library crates (with every feature) and the example binaries build on
# the `rust-version` the manifests declare, with the newest dependency versions that
# support it. The committed Cargo.lock is resolved for the current stable toolchain and
# may hold newer ones (sfv 0.16 needs Rust 1.95, redis 1.8 needs 1.88); a user on the
# declared version gets the older ones, as here, since the requirements allow them.
#
# Needs rustup and the network to install the toolchain once; not part of
# scripts/test.sh. Usage: scripts/msrv.sh
set -euo pipefail
cd "$(dirname "$0")/.."
msrv=$(sed -n 's/^rust-version = "\(.*\)"$/\1/p' Cargo.toml)
[ -n "$msrv" ] || { echo "no rust-version in Cargo.toml" >&2; exit 1; }
rustup run "$msrv" rustc -V >/dev/null 2>&1 || rustup toolchain install "$msrv" --profile minimal

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git ls-files -z | xargs -0 cp --parents -t "$work"
cd "$work"
# The resolver picks, for each dependency, the newest version whose rust-version is met.
CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS=fallback cargo "+$msrv" generate-lockfile
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$work/target}"
for crate in tower-ratelimit-core tower-ratelimit-http tower-ratelimit-adaptive tower-ratelimit-redis; do
    echo "== $crate on Rust $msrv"
    cargo "+$msrv" check --locked -p "$crate" --all-features
    cargo "+$msrv" check --locked -p "$crate" --no-default-features
done
echo "== examples on Rust $msrv"
cargo "+$msrv" check --locked -p examples --bins
echo "Rust $msrv type-checks every library crate and example binary."
