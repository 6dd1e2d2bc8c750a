#!/usr/bin/env bash
# Voice-to-voice latency of the embedded defaults: a release server with the embedded models
# (semantic cache off, so every turn runs STT → retrieval → answer → TTS), and the load
# tester speaking espeak-ng questions in real time: SESSIONS concurrent sessions (starting
# 50 ms apart, so their turns overlap), TURNS turns each, per question.
# Prints the load tester's voice-to-voice per question, every turn's server stage timings and
# the server's per-model run times.
#   scripts/voice-latency.sh [TURNS] [SESSIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
T="${CARGO_TARGET_DIR:-/var/cache/adam/target}"
TURNS="${1:-4}"
SESSIONS="${2:-1}"
PORT=18300
DATA="$(mktemp -d)"
OUT="${OUT:-loadtest-report/voice}"
mkdir -p "$OUT"
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$DATA"' EXIT

ADAM__BOOTSTRAP__ADMIN_PASSWORD=voice-pw ADAM__HTTP__LISTEN=127.0.0.1:$PORT \
ADAM__DATA_DIR="$DATA" ADAM__DATABASE__URL="sqlite://$DATA/adam.db" \
ADAM__CACHE__SEMANTIC_TTL_SECS=0 ADAM__LOG__FILTER=warn \
    "$T/release/adam" serve &
SERVER=$!
for _ in $(seq 1 300); do
    curl -sf "127.0.0.1:$PORT/readyz" >/dev/null && break
    sleep 0.2
done
TOKEN=$(curl -s -XPOST "127.0.0.1:$PORT/v1/auth/login" -H 'content-type: application/json' \
    -d '{"email":"admin@adam.local","password":"voice-pw"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
D=$(curl -s "127.0.0.1:$PORT/v1/dealerships" -H "authorization: Bearer $TOKEN" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')

n=0
while IFS= read -r q; do
    n=$((n + 1))
    espeak-ng -v en -w "$OUT/q$n.wav" "$q"
    ADAM_LOADTEST_PASSWORD=voice-pw "$T/release/adam-loadtest" --quiet \
        --url "http://127.0.0.1:$PORT" --email admin@adam.local --dealership "$D" \
        --sessions "$SESSIONS" --ramp 20 --turns "$TURNS" --think-ms 500 --audio "$OUT/q$n.wav" \
        --trailing-silence-ms 1500 --provider-latency-ms 0 --out "$OUT/q$n" >/dev/null
    python3 - "$OUT/q$n/report.json" "$q" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
v = r["voice_to_voice"]
print(f"{sys.argv[2]!r}: {r['sessions']} sessions, {r['turns']} turns, errors {r['errors'] or 'none'}; "
      f"load tester v2v p50 {v['p50_ms']:.1f} p95 {v['p95_ms']:.1f} max {v['max_ms']:.1f} ms")
PY
done <<'QUESTIONS'
What time does the service department open on Saturday?
How much does an oil change cost?
Is the showroom open on Sunday?
QUESTIONS

# Every turn's stage timings, from the saved transcripts.
python3 - "127.0.0.1:$PORT" "$TOKEN" <<'PY'
import json, sys, urllib.request
base, token = sys.argv[1], sys.argv[2]
def get(path):
    req = urllib.request.Request(f"http://{base}{path}", headers={"authorization": f"Bearer {token}"})
    return json.load(urllib.request.urlopen(req))
listing = get("/v1/sessions")
sessions = listing["items"] if isinstance(listing, dict) else listing
turns = [t for s in sessions for t in get(f"/v1/sessions/{s['id']}")["turns"]]
def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]
print(f"{len(turns)} turns; statuses {sorted({t['status'] for t in turns})}")
for key in ["voice_to_voice_ms", "stt_ms", "answer_first_token_ms", "tts_first_audio_ms"]:
    xs = [t["metrics"][key] for t in turns if t["metrics"].get(key) is not None]
    if xs:
        print(f"{key:>24}: p50 {pct(xs, 50):7.1f}  p95 {pct(xs, 95):7.1f}  max {max(xs):7.1f}  (n={len(xs)})")
for s in sessions:
    ts = get(f"/v1/sessions/{s['id']}")["turns"]
    v = [t["metrics"].get("voice_to_voice_ms") for t in ts if t["metrics"].get("voice_to_voice_ms")]
    if ts and v:
        print(f"  heard {ts[0]['user_text']!r} → said {ts[0]['assistant_text']!r}; "
              f"server v2v p50 {pct(v, 50):.1f} ms over {len(v)}")
PY
echo "server-side model run time (sum s / calls):"
curl -s "127.0.0.1:$PORT/metrics" | grep -E '^adam_model_run_seconds_(sum|count)|^adam_process_resident_memory_bytes'
echo "server CPU: $(ps -o times= -p $SERVER) s user+system since start; espeak workers:"
ps -o pid=,times=,args= --ppid $SERVER || true
