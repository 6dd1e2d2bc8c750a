#!/usr/bin/env bash
# The whole test suite: formatting, lints, then every test against SQLite and against a
# throwaway PostgreSQL 15 + pgvector cluster on 127.0.0.1 (removed afterwards), with a
# throwaway redis-server beside it for the two-node tests.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/adam/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# The espeak-ng worker the TTS tests drive (built by scripts/models/fetch.sh).
export ADAM_ESPEAK_WORKER="${ADAM_ESPEAK_WORKER:-$PWD/models/bin/espeak-worker}"

step() { printf '\n==> %s\n' "$*"; }

step "setup"
bash scripts/setup.sh --with-browser
bash scripts/postgres.sh install
bash scripts/redis.sh install

if cargo nextest --version >/dev/null 2>&1; then
    run_tests() { cargo nextest run --workspace --locked --no-fail-fast "$@"; }
else
    run_tests() { cargo test --workspace --locked --no-fail-fast "$@"; }
fi

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "docker compose config (the two-node stack, Prometheus and Grafana)"
# No Docker engine is needed to validate the file: `docker compose` (v2) where it exists,
# otherwise Debian's docker-compose.
if docker compose version >/dev/null 2>&1; then compose=(docker compose); else
    command -v docker-compose >/dev/null || { sudo_cmd=""; [[ $EUID -ne 0 ]] && sudo_cmd="sudo"; $sudo_cmd apt-get install -y -q docker-compose >/dev/null; }
    compose=(docker-compose)
fi
POSTGRES_PASSWORD=check ADAM__AUTH__JWT_SECRET=check GRAFANA_ADMIN_PASSWORD=check \
    "${compose[@]}" -f docker-compose.yml config -q

step "build tests"
cargo build --workspace --all-targets --locked

step "tests on SQLite"
run_tests

step "schema fuzzing (schemathesis against /v1/openapi.json, about 2 minutes)"
ADAM_BIN="$CARGO_TARGET_DIR/debug/adam" bash scripts/schema-fuzz.sh

step "browser tests (Chromium, WebRTC and WebSocket, admin pages, widget)"
ADAM_BIN="$CARGO_TARGET_DIR/debug/adam" bash scripts/browser-test.sh

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
pg_dir="/tmp/adam-test-pg-$$"
pg_port="$(free_port)"
redis_dir="/tmp/adam-test-redis-$$"
redis_port="$(free_port)"
cleanup() {
    bash scripts/postgres.sh stop "$pg_dir" >/dev/null 2>&1 || true
    bash scripts/redis.sh stop "$redis_dir" >/dev/null 2>&1 || true
}
trap cleanup EXIT
step "tests on PostgreSQL (throwaway cluster on 127.0.0.1:$pg_port, Redis on 127.0.0.1:$redis_port)"
pg_url="$(bash scripts/postgres.sh start "$pg_dir" "$pg_port" | tail -n 1)"
redis_url="$(bash scripts/redis.sh start "$redis_dir" "$redis_port" | tail -n 1)"
# The two-node tests must run here, not skip.
ADAM_TEST_DATABASE_URL="$pg_url" ADAM_TEST_REDIS_URL="$redis_url" ADAM_REQUIRE_CLUSTER_TESTS=1 run_tests

step "all tests passed on SQLite and PostgreSQL"
