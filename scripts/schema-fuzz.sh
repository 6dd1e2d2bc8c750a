#!/usr/bin/env bash
# Schema fuzzing: schemathesis (PyPI, pinned below) generates requests from
# /v1/openapi.json of a freshly started Adam (simulated providers, a throwaway data dir and
# SQLite file, a free port) and sends them as the first super_admin. Every response must be
# no server error, carry a status and a content type the document lists for that operation,
# and match the documented schema. Deterministic (fixed seed) and bounded in time.
#
#   bash scripts/schema-fuzz.sh                 fuzz (installs schemathesis if needed)
#   bash scripts/schema-fuzz.sh --install-only  only install schemathesis (scripts/setup.sh)
#
#   ADAM_BIN                 the server binary (default: $CARGO_TARGET_DIR/debug/adam)
#   ADAM_FUZZ_MAX_EXAMPLES   test cases per operation and phase (default: 100; about 90 s)
#   ADAM_FUZZ_SEED           hypothesis seed (default: 18)
#   ADAM_FUZZ_MAX_SECONDS    hard limit of the main run (default: 300; it ends well before)
#   ADAM_FUZZ_PHASES         schemathesis phases (default: examples,coverage,fuzzing,stateful)
#   ADAM_FUZZ_KEEP           set: keep the work dir (Adam's log, the NDJSON report)
#   ADAM_FUZZ_ONLY           extra schemathesis filter, e.g. "--include-path /v1/users"
#   ADAM_SCHEMATHESIS_VENV   virtualenv schemathesis lives in (default: /var/cache/adam/schemathesis-venv)
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
venv="${ADAM_SCHEMATHESIS_VENV:-/var/cache/adam/schemathesis-venv}"
st="$venv/bin/schemathesis"

install() {
    if [[ -x "$st" ]] && "$st" --version 2>/dev/null | grep -qx "schemathesis, version $SCHEMATHESIS_VERSION"; then
        return
    fi
    echo "schema-fuzz: installing schemathesis $SCHEMATHESIS_VERSION into $venv"
    if ! mkdir -p "$(dirname "$venv")" 2>/dev/null || [[ ! -w "$(dirname "$venv")" ]]; then
        venv="$PWD/.schemathesis-venv"
        st="$venv/bin/schemathesis"
    fi
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
}

install
[[ "${1:-}" == "--install-only" ]] && exit 0

ADAM_BIN="$(realpath "${ADAM_BIN:-${CARGO_TARGET_DIR:-/var/cache/adam/target}/debug/adam}")"
[[ -x "$ADAM_BIN" ]] || { echo "schema-fuzz: $ADAM_BIN is missing (cargo build)" >&2; exit 1; }
max_examples="${ADAM_FUZZ_MAX_EXAMPLES:-100}"
seed="${ADAM_FUZZ_SEED:-18}"
max_seconds="${ADAM_FUZZ_MAX_SECONDS:-300}"

work="$(mktemp -d /tmp/adam-schema-fuzz.XXXXXX)"
adam_pid=""
cleanup() {
    if [[ -n "$adam_pid" ]] && kill -0 "$adam_pid" 2>/dev/null; then
        kill -TERM "$adam_pid"
        wait "$adam_pid" 2>/dev/null || true
    fi
    if [[ -n "${ADAM_FUZZ_KEEP:-}" ]]; then echo "schema-fuzz: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
url="http://127.0.0.1:$port"
admin_email="fuzz@adam.test"
admin_password="fuzz-$(python3 -c 'import secrets; print(secrets.token_hex(8))')"

# Rate limits and login throttling are raised: the fuzzer is one client sending thousands
# of requests (and wrong passwords), and a 429 everywhere would test nothing else. The
# limits themselves have their own tests; 429 is documented on every operation.
ADAM__DATA_DIR="$work/data" \
ADAM__DATABASE__URL="sqlite://$work/adam.db" \
ADAM__HTTP__LISTEN="127.0.0.1:$port" \
ADAM__HTTP__PUBLIC_URL="$url" \
ADAM__PROVIDERS__PROFILE=simulated \
ADAM__KNOWLEDGE__DEMO_DIR="" \
ADAM__BOOTSTRAP__ADMIN_EMAIL="$admin_email" \
ADAM__BOOTSTRAP__ADMIN_PASSWORD="$admin_password" \
ADAM__RATE_LIMIT__PER_IP_PER_MINUTE=1000000 ADAM__RATE_LIMIT__PER_IP_BURST=1000000 \
ADAM__RATE_LIMIT__PER_USER_PER_MINUTE=1000000 ADAM__RATE_LIMIT__PER_USER_BURST=1000000 \
ADAM__AUTH__LOGIN_MAX_FAILURES_PER_IP=1000000 \
ADAM__SESSION__DRAIN_TIMEOUT_SECS=1 ADAM__HTTP__SHUTDOWN_GRACE_SECS=1 \
ADAM__LOG__FILTER=warn \
    "$ADAM_BIN" serve >"$work/adam.log" 2>&1 &
adam_pid=$!

fail() {
    echo "schema-fuzz: $*" >&2
    tail -n 30 "$work/adam.log" >&2
    exit 1
}
deadline=$((SECONDS + 60))
until curl -sf "$url/readyz" -o /dev/null; do
    kill -0 "$adam_pid" 2>/dev/null || fail "Adam exited during startup"
    ((SECONDS < deadline)) || fail "Adam did not become ready within 60 s"
    sleep 0.2
done
token="$(curl -sf "$url/v1/auth/login" -H 'Content-Type: application/json' \
    -d "{\"email\":\"$admin_email\",\"password\":\"$admin_password\"}" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')"
ADAM_FUZZ_USER_ID="$(curl -sf "$url/v1/me" -H "Authorization: Bearer $token" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')"
export ADAM_FUZZ_USER_ID SCHEMATHESIS_HOOKS=schema_fuzz_hooks PYTHONPATH="$PWD/scripts"

checks=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
common=(--checks "$checks" --max-examples "$max_examples" --seed "$seed" --workers 1
    --phases "${ADAM_FUZZ_PHASES:-examples,coverage,fuzzing,stateful}" --request-timeout 20 --suppress-health-check all
    --report ndjson --report-dir "$work/report" --no-color)
status=0
# schemathesis keeps a cache (.schemathesis/) in the current folder: the throwaway one.
cd "$work"
# As the super_admin, every operation but logout: the fuzzer must not end the session it
# runs with, nor set its own user's password (scripts/schema_fuzz_hooks.py drops that).
# shellcheck disable=SC2086 # ADAM_FUZZ_ONLY is a list of options on purpose
timeout "$max_seconds" "$st" run "$url/v1/openapi.json" "${common[@]}" \
    --header "Authorization: Bearer $token" \
    --exclude-path /v1/auth/logout ${ADAM_FUZZ_ONLY:-} | tee "$work/run.txt" || status=$?
# Logout on its own, without the token.
timeout 120 "$st" run "$url/v1/openapi.json" "${common[@]}" \
    --include-path /v1/auth/logout | tee -a "$work/run.txt" || status=$?

# The server's own count of what it answered, by status (the fuzzer's login and /v1/me
# included), read before it stops.
curl -sf "$url/metrics" | python3 -c '
import re, sys
total, errors = 0, 0
for line in sys.stdin:
    m = re.match(r"adam_http_requests_total\{.*status=\"(\d+)\"\} (\d+)", line)
    if m:
        total += int(m.group(2))
        errors += int(m.group(2)) if m.group(1).startswith("5") else 0
print(f"schema-fuzz: Adam answered {total} requests, {errors} of them with a 5xx status")
'
echo "schema-fuzz: schemathesis exit status $status (0: no failure)"
if grep -qaiE "panicked|internal error" "$work/adam.log"; then
    echo "--- server errors in Adam's log ---" >&2
    grep -aiE -m 20 "panicked|internal error" "$work/adam.log" >&2
    status=1
fi
exit "$status"
