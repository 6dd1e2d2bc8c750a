#!/usr/bin/env bash
# Browser tests: a real Chromium (Debian's /usr/bin/chromium, driven by playwright-core) talks
# to a real Adam through a fake microphone that plays speech made with espeak-ng. Covers the
# conversation page over WebRTC and over the WebSocket, barge-in, the admin pages (with the
# invitation and password-reset emails, read from the .eml files Adam's "log" email transport
# writes), the embeddable widget on another origin, and a HeyGen video avatar (fake LiveAvatar
# API and fake LiveKit server, started by the test). Screenshots go to $ADAM_SHOTS_DIR.
#
#   ADAM_BIN        the server binary (default: $CARGO_TARGET_DIR/debug/adam)
#   ADAM_SHOTS_DIR  where screenshots go (default: /tmp/adam-browser-shots)
#   ADAM_BROWSER_TESTS  which test files to run, relative to web/ (default: tests/*.test.mjs)
set -euo pipefail
cd "$(dirname "$0")/.."
started_at="$(date +%s)"

ADAM_BIN="${ADAM_BIN:-${CARGO_TARGET_DIR:-/var/cache/adam/target}/debug/adam}"
export ADAM_SHOTS_DIR="${ADAM_SHOTS_DIR:-/tmp/adam-browser-shots}"
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
for tool in "$ADAM_BIN" "$CHROMIUM" espeak-ng python3 curl openssl; do
    command -v "$tool" >/dev/null || { echo "browser-test: $tool is missing" >&2; exit 1; }
done

step() { printf '\n==> %s\n' "$*"; }

step "build the web client"
bash scripts/web.sh

work="$(mktemp -d /tmp/adam-browser-test.XXXXXX)"
adam_pid=""
cleanup() {
    if [[ -n "$adam_pid" ]] && kill -0 "$adam_pid" 2>/dev/null; then
        kill -TERM "$adam_pid"
        wait "$adam_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

step "speech for the fake microphone (espeak-ng)"
# A little slower than espeak's default: clearer for the Whisper tiny model.
espeak-ng -s 150 -w "$work/question.raw.wav" "What are your opening hours on Saturday?"
espeak-ng -s 150 -w "$work/second.raw.wav" "Where is the dealership?"
# Chromium loops the capture file: each file ends with enough silence for the whole answer.
python3 - "$work" <<'PY'
import sys, wave
work = sys.argv[1]

def read(name):
    with wave.open(f"{work}/{name}") as w:
        return w.getparams(), w.readframes(w.getnframes())

params, question = read("question.raw.wav")
_, second = read("second.raw.wav")
silence = lambda seconds: b"\x00\x00" * int(params.framerate * seconds)

def write(name, *parts):
    with wave.open(f"{work}/{name}", "wb") as w:
        w.setparams(params)
        w.writeframes(b"".join(parts))

write("question.wav", silence(3), question, silence(40))
# The second question starts ~3.5 s after the first ends: the first answer is playing by then.
write("barge-in.wav", silence(3), question, silence(3.5), second, silence(40))
write("silence.wav", silence(10))
PY
export ADAM_TEST_QUESTION_WAV="$work/question.wav"
export ADAM_TEST_BARGE_IN_WAV="$work/barge-in.wav"
export ADAM_TEST_SILENCE_WAV="$work/silence.wav"

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# HeyGen LiveAvatar: Adam's client is configured for a fake that the avatar test starts on
# this port (nothing listens there otherwise; only a dealership whose avatar is `heygen` calls it).
heygen_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export ADAM_TEST_HEYGEN_PORT="$heygen_port"
export ADAM_TEST_HEYGEN_KEY="liveavatar-browser-test-key"
export ADAM_URL="http://127.0.0.1:$port"
export ADAM_ADMIN_EMAIL="admin@browser-test.local"
export ADAM_ADMIN_PASSWORD="browser-test-$(python3 -c 'import secrets; print(secrets.token_hex(8))')"
# Emails: the default transport ("log") writes each one to <data_dir>/mail/<id>.eml.
export ADAM_TEST_MAIL_DIR="$work/data/mail"

step "start Adam on $ADAM_URL ($ADAM_BIN)"
# A short drain: stopping it at the end need not wait for conversations to finish.
ADAM__DATA_DIR="$work/data" \
ADAM__DATABASE__URL="sqlite://$work/adam.db" \
ADAM__HTTP__LISTEN="127.0.0.1:$port" \
ADAM__HTTP__PUBLIC_URL="$ADAM_URL" \
ADAM__HTTP__CORS_ALLOWED_ORIGINS="[\"$ADAM_URL\"]" \
ADAM__BOOTSTRAP__ADMIN_EMAIL="$ADAM_ADMIN_EMAIL" \
ADAM__BOOTSTRAP__ADMIN_PASSWORD="$ADAM_ADMIN_PASSWORD" \
ADAM__SESSION__DRAIN_TIMEOUT_SECS=2 \
ADAM__LIMITS__SESSIONS_PER_MINUTE_PER_IP=1000 \
ADAM__PROVIDERS__HEYGEN__BASE_URL="http://127.0.0.1:$heygen_port" \
ADAM__PROVIDERS__HEYGEN__API_KEY="$ADAM_TEST_HEYGEN_KEY" \
ADAM__PROVIDERS__HEYGEN__KEEP_ALIVE_INTERVAL_MS=2000 \
ADAM__HTTP__SHUTDOWN_GRACE_SECS=2 \
    "$ADAM_BIN" serve >"$work/adam.log" 2>&1 &
adam_pid=$!

# Polls `$2` (a command) every 0.2 s until it succeeds, for at most `$1` seconds.
poll() {
    local deadline=$((SECONDS + $1)); shift
    until "$@"; do
        if ((SECONDS >= deadline)) || ! kill -0 "$adam_pid" 2>/dev/null; then return 1; fi
        sleep 0.2
    done
}
fail() {
    echo "browser-test: $*" >&2
    echo "--- Adam's log: errors, then the last lines ---" >&2
    grep -a -m 10 -iE "error|panicked" "$work/adam.log" >&2 || true
    tail -n 20 "$work/adam.log" >&2
    exit 1
}

if ! poll 120 curl -sf "$ADAM_URL/readyz" -o /dev/null; then
    kill -0 "$adam_pid" 2>/dev/null || fail "Adam exited during startup"
    fail "Adam did not become ready within 120 s"
fi
curl -sf "$ADAM_URL/admin/" | grep -q '<div id="app">' \
    || fail "Adam does not serve the built client (web/dist) at /admin/: this server build has no static file service"

token="$(curl -sf "$ADAM_URL/v1/auth/login" -H 'Content-Type: application/json' \
    -d "{\"email\":\"$ADAM_ADMIN_EMAIL\",\"password\":\"$ADAM_ADMIN_PASSWORD\"}" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')"
demo_ready() {
    curl -sf "$ADAM_URL/v1/documents" -H "Authorization: Bearer $token" | python3 -c '
import json, sys
docs = json.load(sys.stdin)
sys.exit(0 if docs and all(d["status"] in ("ready", "failed") for d in docs) else 1)'
}
poll 180 demo_ready || fail "the demo documents were not ingested within 180 s"

step "browser tests"
status=0
# shellcheck disable=SC2086 # a list of files (or a glob) on purpose
(cd web && node --test --test-concurrency=1 --test-timeout=240000 ${ADAM_BROWSER_TESTS:-tests/*.test.mjs}) || status=$?

echo
echo "browser tests took $(($(date +%s) - started_at)) s; screenshots in $ADAM_SHOTS_DIR"
# How long Chromium's WebRTC connections took to come up (answer → connected and the events
# channel open), from Adam's own histogram.
curl -sf "$ADAM_URL/metrics" | python3 -c '
import sys
buckets, count = [], 0
for line in sys.stdin:
    if line.startswith("adam_webrtc_connect_seconds_bucket"):
        le = line.split("le=\"")[1].split("\"")[0]
        buckets.append((float("inf") if le == "+Inf" else float(le), float(line.split()[-1])))
    elif line.startswith("adam_webrtc_connect_seconds_count"):
        count = float(line.split()[-1])
if count:
    median = next(le for le, n in buckets if n >= count / 2)
    print(f"WebRTC connections: {int(count)}, median connect time <= {median * 1000:.0f} ms (histogram bucket)")
' || true
if ((status != 0)); then
    cp "$work/adam.log" "$ADAM_SHOTS_DIR/adam.log"
    echo "--- last lines of Adam's log (all of it: $ADAM_SHOTS_DIR/adam.log) ---"
    tail -n 30 "$work/adam.log"
fi
exit "$status"
