#!/usr/bin/env bash
# Redis for Adam's cluster tests and CI (Debian's redis-server, run as root).
#
#   scripts/redis.sh install          idempotent; installs Debian's redis-server and redis-tools
#   scripts/redis.sh start DIR PORT   throwaway server on 127.0.0.1:PORT (no persistence) with
#                                     its files in DIR; prints its URL as the last line
#   scripts/redis.sh stop DIR         stops that server and removes DIR (never fails if absent)
set -euo pipefail

PACKAGES=(redis-server redis-tools)
LOG=/var/cache/adam/redis-install.log

export DEBIAN_FRONTEND=noninteractive
APT_OPTS=(-q -y -o Dpkg::Use-Pty=0 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

say() { echo "redis.sh: $*" >&2; }
die() { say "error: $*"; exit 1; }

missing_packages() {
    local p status
    for p in "${PACKAGES[@]}"; do
        status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
        [[ $status == ii* ]] || echo "$p"
    done
}

cmd_install() {
    local missing
    missing=$(missing_packages)
    if [[ -z $missing ]]; then
        say "redis-server is already installed"
        return 0
    fi
    mkdir -p "$(dirname "$LOG")"
    # shellcheck disable=SC2086
    say "installing with apt-get:" $missing
    # shellcheck disable=SC2086
    if ! apt-get "${APT_OPTS[@]}" install --no-install-recommends $missing >>"$LOG" 2>&1; then
        # No package lists yet, or stale ones: refresh once.
        apt-get -q -o Dpkg::Use-Pty=0 update >>"$LOG" 2>&1 || { tail -n 40 "$LOG" >&2; die "apt-get update failed"; }
        # shellcheck disable=SC2086
        apt-get "${APT_OPTS[@]}" install --no-install-recommends $missing >>"$LOG" 2>&1 ||
            { tail -n 40 "$LOG" >&2; die "installing redis-server failed"; }
    fi
    # The package may start the system's own server; tests run their own.
    if command -v service >/dev/null 2>&1; then
        service redis-server stop >>"$LOG" 2>&1 || true
    fi
    say "redis-server installed"
}

abs_dir() {
    case $1 in
        /*) printf '%s\n' "$1" ;;
        *) printf '%s\n' "$PWD/$1" ;;
    esac
}

stop_server_in() {
    local dir=$1 pid
    [[ -f $dir/redis.pid ]] || return 0
    pid=$(cat "$dir/redis.pid")
    [[ $pid =~ ^[0-9]+$ ]] || return 0
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
}

cmd_start() {
    [[ $# -eq 2 ]] || die "usage: $0 start DIR PORT"
    local dir port
    dir=$(abs_dir "$1")
    port=$2
    [[ $port =~ ^[0-9]+$ ]] || die "PORT must be a number, got '$port'"
    [[ $dir != *[[:space:]]* ]] || die "DIR must not contain whitespace: $dir"
    command -v redis-server >/dev/null || die "redis-server is not installed: run '$0 install' first"
    if [[ -e $dir ]]; then
        stop_server_in "$dir"
        rm -rf "$dir"
    fi
    mkdir -p "$dir"
    redis-server --bind 127.0.0.1 --port "$port" --daemonize yes \
        --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" \
        --save '' --appendonly no >/dev/null ||
        die "could not start redis-server on 127.0.0.1:$port"
    for _ in $(seq 100); do
        if [[ $(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null) == PONG ]]; then
            say "redis-server is up on 127.0.0.1:$port (log: $dir/redis.log)"
            echo "redis://127.0.0.1:$port"
            return 0
        fi
        sleep 0.1
    done
    tail -n 20 "$dir/redis.log" >&2 || true
    stop_server_in "$dir"
    die "redis-server on 127.0.0.1:$port did not answer PING"
}

cmd_stop() {
    [[ $# -eq 1 ]] || die "usage: $0 stop DIR"
    local dir
    dir=$(abs_dir "$1")
    stop_server_in "$dir"
    rm -rf "$dir"
}

case ${1:-} in
    install) shift; cmd_install "$@" ;;
    start) shift; cmd_start "$@" ;;
    stop) shift; cmd_stop "$@" ;;
    *) die "usage: $0 install | start DIR PORT | stop DIR" ;;
esac
