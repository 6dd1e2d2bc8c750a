#!/usr/bin/env bash
# Builds the browser client (web/) into web/dist, which Adam serves: the conversation page,
# the admin pages and the embeddable widget.js. Needs only Node 20 and npm. Idempotent:
#   - `npm ci` runs only when node_modules was not installed from the current lockfile;
#   - the typecheck and the build run only when a source changed (ADAM_WEB_FORCE=1 forces).
set -euo pipefail
cd "$(dirname "$0")/../web"

command -v npm >/dev/null || { echo "web.sh: npm is needed (Node 20)" >&2; exit 1; }

lock_hash="$(sha256sum package-lock.json | cut -d' ' -f1)"
lock_stamp="node_modules/.adam-lockfile-sha256"
if [[ ! -f "$lock_stamp" || "$(cat "$lock_stamp")" != "$lock_hash" ]]; then
    echo "web: npm ci"
    npm ci --no-audit --no-fund
    echo "$lock_hash" > "$lock_stamp"
fi

sources_hash="$(
    find index.html admin src tests package.json package-lock.json tsconfig.json vite.config.ts vite.widget.config.ts vite.livekit.config.ts \
        -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1
)"
build_stamp="node_modules/.adam-build-sha256"
if [[ "${ADAM_WEB_FORCE:-0}" != 1 && -f dist/index.html && -f dist/admin/index.html && -f dist/widget.js && -f dist/widget-livekit.js \
      && -f "$build_stamp" && "$(cat "$build_stamp")" == "$sources_hash" ]]; then
    echo "web: web/dist is up to date"
    exit 0
fi

echo "web: typecheck and build"
npm run build
echo "$sources_hash" > "$build_stamp"
echo "web: built web/dist"
