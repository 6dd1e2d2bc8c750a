#!/usr/bin/env bash
# The anonymous-flood check of docs/DEPLOYMENT.md: starts BIN (an `adam` binary) on a fresh
# SQLite database with the simulated providers and a node limit of MAX_SESSIONS, lets one
# client flood dealership A through its public embed key (scripts/flood.mjs: SOCKETS idle
# sessions, then QUESTIONS questions on one of them) and asks, while the flood holds its
# sockets, whether dealership B can still start a conversation. Prints the flood's figures,
# B's answer, the server's CPU seconds during the flood and the turn rows written.
# Extra ADAM__* variables in the environment reach the server (e.g. a raised per-IP request
# limit, standing for an attacker with many addresses).
# Usage: scripts/flood-check.sh BIN [SOCKETS=600] [QUESTIONS=300] [MAX_SESSIONS=500]
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$1"; sockets="${2:-600}"; questions="${3:-300}"; max_sessions="${4:-500}"
work="$(mktemp -d)"; port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"; origin="https://www.dealer-a.test"
ulimit -n 65536 2>/dev/null || true
ADAM__DATA_DIR="$work" ADAM__DATABASE__URL="sqlite://$work/adam.db" ADAM__HTTP__LISTEN="127.0.0.1:$port" \
ADAM__BOOTSTRAP__ADMIN_EMAIL=admin@flood.test ADAM__BOOTSTRAP__ADMIN_PASSWORD=flood-check-pw \
ADAM__PROVIDERS__PROFILE=simulated ADAM__KNOWLEDGE__DEMO_DIR="" ADAM__LOG__FILTER=error \
ADAM__SESSION__MAX_SESSIONS="$max_sessions" ADAM__WEBRTC__ENABLED=false \
    "$bin" --config none.toml serve >"$work/stdout.log" 2>"$work/stderr.log" &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do curl -sf "$base/readyz" >/dev/null && break; sleep 0.2; done
api() { curl -s -X "$1" "$base$2" -H "authorization: Bearer $token" -H 'content-type: application/json' ${3:+-d "$3"}; }
token="$(curl -s -X POST "$base/v1/auth/login" -H 'content-type: application/json' \
    -d '{"email":"admin@flood.test","password":"flood-check-pw"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')"
a="$(api GET /v1/dealerships | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')"
b="$(api POST /v1/dealerships '{"name":"Dealer B"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
key_a="$(api PATCH "/v1/dealerships/$a" "{\"allowed_origins\":[\"$origin\"]}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["embed_key"])')"
key_b="$(api PATCH "/v1/dealerships/$b" '{"allowed_origins":["https://www.dealer-b.test"]}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["embed_key"])')"
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
ticks="$(getconf CLK_TCK)"; before="$(cpu)"
flood="$(node scripts/flood.mjs "$base" "$key_a" "$origin" "$sockets" "$questions" "$key_b" https://www.dealer-b.test)"
after="$(cpu)"
count_turns() { python3 -c "import sqlite3; print(sqlite3.connect('$work/adam.db').execute('select count(*) from turns').fetchone()[0])"; }
# The transcript writer catches up within moments: read until the count holds still.
turns="$(count_turns)"
for _ in $(seq 1 20); do sleep 0.5; now="$(count_turns)"; [[ "$now" == "$turns" ]] && break; turns="$now"; done
echo "{\"flood\": $flood, \"server_cpu_seconds\": $(python3 -c "print(round(($after - $before) / $ticks, 2))"), \"turn_rows\": $turns}"
