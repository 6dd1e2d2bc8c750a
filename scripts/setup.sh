#!/usr/bin/env bash
# Installs what Adam needs to build and run, idempotently. Later subsystems (speech
# models, browser tests) add their steps here so that one command prepares a machine.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/adam/target}"
mkdir -p "$CARGO_TARGET_DIR"

if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: cargo not found; install the Rust toolchain (rustup) first" >&2
    exit 1
fi

# Debian packages needed at build time (C compiler and pkg-config for -sys crates).
need=()
for pkg in build-essential pkg-config ca-certificates; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if ((${#need[@]})); then
    echo "setup: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
        || { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }
fi

cargo fetch --locked --quiet
echo "setup: ready (build cache in $CARGO_TARGET_DIR)"
