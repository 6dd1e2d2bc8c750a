#!/bin/sh
# The load-test server: release build, simulated providers with a fixed provider latency
# (end-of-turn silence 500 + STT 150 + first token 250, all tokens at once + TTS first byte 120
# = 1020 ms), semantic cache off so every turn pays it, limits raised for one client IP. No
# demo documents: the simulated answer is then its fixed one-sentence text (with documents it
# reads out the first passage found, 20 s and more of audio).
#
# Usage: scripts/loadtest-server.sh [energy|silero]   (the VAD; default energy)
# `silero` runs the real Silero model on every session (batched across sessions; set
# ADAM__PROVIDERS__EMBEDDED__SILERO__BATCH=false for the unbatched path) and needs the
# models (scripts/models/fetch.sh); drive it with `adam-loadtest --vad silero`.
set -eu
cd "$(dirname "$0")/.."
case "${1:-energy}" in
    energy | silero) export ADAM__PROVIDERS__SIMULATED__VAD="${1:-energy}" ;;
    *) echo "usage: $0 [energy|silero]" >&2; exit 2 ;;
esac
export ADAM__BOOTSTRAP__ADMIN_PASSWORD=load-test-pw ADAM__HTTP__LISTEN=127.0.0.1:18200
export ADAM__RATE_LIMIT__PER_IP_BURST=100000 ADAM__RATE_LIMIT__PER_IP_PER_MINUTE=100000
export ADAM__RATE_LIMIT__PER_USER_BURST=100000 ADAM__RATE_LIMIT__PER_USER_PER_MINUTE=100000
export ADAM__PROVIDERS__SIMULATED__ANSWER_TOKENS_PER_SEC=0 ADAM__CACHE__SEMANTIC_TTL_SECS=0
export ADAM__LOG__FILTER=warn ADAM__PROVIDERS__PROFILE=simulated ADAM__SESSION__EARLY_TRANSCRIPTION_MS=0
export ADAM__KNOWLEDGE__DEMO_DIR=""
# Thousands of sessions from one address at one dealership: lift the per-dealership limits.
export ADAM__LIMITS__ANONYMOUS_SESSIONS=100000 ADAM__LIMITS__SIGNED_IN_SESSIONS=100000
export ADAM__LIMITS__SESSIONS_PER_MINUTE_PER_IP=10000 ADAM__LIMITS__TURNS_PER_MINUTE=600
exec "${CARGO_TARGET_DIR:-/var/cache/adam/target}/release/adam" serve
