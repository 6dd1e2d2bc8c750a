#!/usr/bin/env bash
# WebSocket load test with the real VAD: for each VAD mode and each session count, a fresh
# release server (scripts/loadtest-server.sh), one adam-loadtest run, and one table row:
# errors, server-added latency, the server's CPU (% of one core per live session, sampled over
# STEADY_SECS once every session is live) and memory per session, with `uptime` (the
# machine's other load) next to it.
#
#   scripts/loadtest-vad.sh "200 400 800 1000" "silero-batched silero-unbatched energy"
#
# Modes: silero-batched (the default Silero service), silero-unbatched (batch = false),
# silero-nogate (batched, gate_rms = 0), silero-unbatched-nogate, energy (the old profile).
# Needs the release build (`cargo build --release -p adam -p adam-loadtest`) and, for
# Silero, the models and loadtest/speech.wav (scripts/loadtest-speech.sh). NOISE_RMS adds a
# microphone noise floor (every window then reaches the model).
set -euo pipefail
cd "$(dirname "$0")/.."
COUNTS=${1:-"200 400 800 1000"}
MODES=${2:-"silero-batched silero-unbatched"}
TARGET=${CARGO_TARGET_DIR:-/var/cache/adam/target}
RAMP=${RAMP:-50}
TURNS=${TURNS:-4}
STEADY_SECS=${STEADY_SECS:-10}
NOISE_RMS=${NOISE_RMS:-0}
OUT=${OUT:-loadtest-report/vad}
URL=http://127.0.0.1:18200
TICK=$(getconf CLK_TCK)
mkdir -p "$OUT"
[[ -f loadtest/speech.wav ]] || scripts/loadtest-speech.sh

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

echo "| mode | sessions | errors | turns | server-added p50 / p99 / max (ms) | from the VAD's end: p50 / p99 / max (ms) | server CPU, % of a core per session (steady) | RSS before → peak (MiB per session) | uptime load (1/5 min) |"
echo "|---|---|---|---|---|---|---|---|---|"
# Modes alternate within each count, so that they share the machine's load of the moment.
for n in $COUNTS; do
    for mode in $MODES; do
        rm -rf data
        vad=silero
        extra=()
        case $mode in
            silero-batched) ;;
            silero-unbatched) extra=(ADAM__PROVIDERS__EMBEDDED__SILERO__BATCH=false) ;;
            silero-nogate) extra=(ADAM__PROVIDERS__EMBEDDED__SILERO__GATE_RMS=0) ;;
            silero-unbatched-nogate)
                extra=(ADAM__PROVIDERS__EMBEDDED__SILERO__BATCH=false ADAM__PROVIDERS__EMBEDDED__SILERO__GATE_RMS=0) ;;
            energy) vad=energy ;;
            *) echo "unknown mode $mode" >&2; exit 2 ;;
        esac
        env "${extra[@]}" CARGO_TARGET_DIR="$TARGET" scripts/loadtest-server.sh "$vad" \
            >"$OUT/server-$mode-$n.log" 2>&1 &
        server=$!
        for _ in $(seq 100); do
            curl -sf "$URL/healthz" >/dev/null 2>&1 && break
            sleep 0.2
        done
        token=$(curl -s -XPOST "$URL/v1/auth/login" -H 'content-type: application/json' \
            -d '{"email":"admin@adam.local","password":"load-test-pw"}' | jq -r .access_token)
        dealership=$(curl -s "$URL/v1/dealerships" -H "authorization: Bearer $token" | jq -r '.[0].id')
        pid=$(pgrep -P "$server" -x adam || echo "$server")
        report="$OUT/$mode-$n"
        ADAM_LOADTEST_PASSWORD=load-test-pw "$TARGET/release/adam-loadtest" --quiet \
            --url "$URL" --email admin@adam.local --dealership "$dealership" --vad "$vad" \
            --noise-rms "$NOISE_RMS" --sessions "$n" --ramp "$RAMP" --turns "$TURNS" \
            --out "$report" >"$report.log" 2>&1 &
        client=$!
        # Every session is live once the ramp is over (each lasts ~9 s a turn).
        sleep "$(echo "$n / $RAMP + 2" | bc -l)"
        t0=$(cpu_ticks "$pid"); w0=$(date +%s.%N)
        sleep "$STEADY_SECS"
        t1=$(cpu_ticks "$pid"); w1=$(date +%s.%N)
        load=$(uptime | sed 's/.*load average: //' | cut -d, -f1,2)
        wait "$client" || true
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
        cpu=$(echo "($t1 - $t0) / $TICK / ($w1 - $w0) * 100 / $n" | bc -l)
        jq -r --arg mode "$mode" --arg cpu "$(printf %.3f "$cpu")" --arg load "$load" '
            def r: . * 10 | round / 10;
            "| \($mode) | \(.sessions) | \([.errors[]] | add // 0) | \(.turns) | " +
            "\(.server_added.p50_ms | r) / \(.server_added.p99_ms | r) / \(.server_added.max_ms | r) | " +
            "\(.server_added_after_vad.p50_ms | r) / \(.server_added_after_vad.p99_ms | r) / \(.server_added_after_vad.max_ms | r) | " +
            "\($cpu) | \(.server_rss_before_mib | floor) → \(.server_rss_peak_mib | floor) (\(.server_rss_per_session_mib * 100 | round / 100)) | \($load) |"' \
            "$report/report.json"
    done
done
