#!/usr/bin/env bash
# PostgreSQL 15 + pgvector for Adam's tests and CI (Debian 12 bookworm, run as root).
#
#   scripts/postgres.sh install          idempotent; installs PostgreSQL 15 and builds pgvector
#   scripts/postgres.sh start DIR PORT   throwaway cluster in DIR; prints its URL as the last line
#   scripts/postgres.sh stop DIR         stops that cluster and removes DIR (never fails if absent)
#
# Bookworm ships no pgvector binary package, so `install` fetches the pgvector
# source package from trixie through a private apt configuration (it never
# touches the system's own sources), using the same mirror that this machine's
# apt config uses for bookworm, and builds it against PostgreSQL 15. The build
# tree is cached under /var/cache/adam so later runs are a fast no-op.
set -euo pipefail

PG_MAJOR=15
PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
PG_CONFIG=$PG_BIN/pg_config
PGVECTOR_VERSION=0.8.0
CACHE=/var/cache/adam
APT_DIR=$CACHE/pgvector-apt
BUILD_DIR=$CACHE/pgvector-build
LOG=$CACHE/postgres-install.log
LOCK=$CACHE/postgres-install.lock
PACKAGES=(postgresql "postgresql-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR"
          postgresql-client-common build-essential dpkg-dev xz-utils ca-certificates)

export DEBIAN_FRONTEND=noninteractive
APT_OPTS=(-q -y -o Dpkg::Use-Pty=0 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

say() { echo "postgres.sh: $*" >&2; }
die() { say "error: $*"; exit 1; }

# Run a command with its output appended to $LOG; on failure show the log's tail and exit.
logged() {
    echo "+ $*" >>"$LOG"
    if ! "$@" >>"$LOG" 2>&1; then
        say "command failed: $*"
        say "last lines of $LOG:"
        tail -n 60 "$LOG" >&2
        exit 1
    fi
}

missing_packages() {
    local p status
    for p in "${PACKAGES[@]}"; do
        status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
        [[ $status == ii* ]] || echo "$p"
    done
}

# The URI that this machine's apt config uses for the main bookworm suite
# (deb822 *.sources files and one-line *.list files; only files apt reads).
bookworm_mirror() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f $f ]] || continue
        awk '
            function flush() {
                if (uris != "" && enabled && types ~ /(^| )deb(-src)?( |$)/ && (" " suites " ") ~ / bookworm /) {
                    split(uris, u, " "); print u[1]; found = 1; exit
                }
                uris = ""; suites = ""; types = ""; enabled = 1
            }
            BEGIN { enabled = 1 }
            /^[[:space:]]*#/ { next }
            /^[[:space:]]*$/ { flush(); next }
            {
                key = tolower($1); sub(/:$/, "", key); $1 = ""; sub(/^[[:space:]]+/, "")
                if (key == "uris") uris = $0
                else if (key == "suites") suites = $0
                else if (key == "types") types = $0
                else if (key == "enabled") enabled = (tolower($0) !~ /^(no|false|0)$/)
            }
            END { if (!found) flush() }
        ' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f $f ]] || continue
        # deb [options] URI SUITE COMPONENTS...
        sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" |
            awk '($1 == "deb" || $1 == "deb-src") && $3 == "bookworm" { print $2 }'
    done
}

apt_install_packages() {
    local missing
    missing=$(missing_packages)
    [[ -n $missing ]] || return 0
    # shellcheck disable=SC2086
    say "installing with apt-get:" $missing
    local have_lists=0
    compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null && have_lists=1
    # shellcheck disable=SC2086
    if (( have_lists )) && apt-get "${APT_OPTS[@]}" install --no-install-recommends $missing >>"$LOG" 2>&1; then
        return 0
    fi
    # No package lists yet, or stale ones (a package vanished from the mirror): refresh once.
    logged apt-get -q -o Dpkg::Use-Pty=0 update
    # shellcheck disable=SC2086
    logged apt-get "${APT_OPTS[@]}" install --no-install-recommends $missing
}

# apt may create and start the system's default cluster; tests use their own.
stop_default_cluster() {
    if command -v pg_ctlcluster >/dev/null 2>&1; then
        pg_ctlcluster "$PG_MAJOR" main stop >>"$LOG" 2>&1 || true
    fi
}

fetch_pgvector_source() {
    local mirror
    mirror=$(bookworm_mirror | head -n 1)
    [[ -n $mirror ]] || die "found no bookworm mirror in /etc/apt/sources.list or /etc/apt/sources.list.d/"
    say "fetching pgvector source from trixie on the bookworm mirror ($mirror)"
    mkdir -p "$APT_DIR/sources.list.d" "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial"
    cat >"$APT_DIR/sources.list.d/trixie-src.sources" <<EOF
Types: deb-src
URIs: $mirror
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    local apt_private=(-q -o Dpkg::Use-Pty=0
        -o Dir::Etc::SourceList=/dev/null
        -o "Dir::Etc::SourceParts=$APT_DIR/sources.list.d"
        -o "Dir::State::Lists=$APT_DIR/lists"
        -o "Dir::Cache=$APT_DIR/cache")
    logged apt-get "${apt_private[@]}" update
    rm -rf "$BUILD_DIR"
    mkdir -p "$BUILD_DIR/src"
    # Let apt's unprivileged download user write here (avoids the "unsandboxed" fallback).
    chown _apt "$BUILD_DIR/src" 2>/dev/null || true
    (cd "$BUILD_DIR/src" && logged apt-get "${apt_private[@]}" source --download-only pgvector)
    local dsc
    dsc=$(compgen -G "$BUILD_DIR/src/pgvector_*.dsc" | head -n 1) || true
    [[ -n $dsc ]] || die "apt-get source downloaded no pgvector .dsc (see $LOG)"
    case $(basename "$dsc") in
        "pgvector_${PGVECTOR_VERSION}-"*) ;;
        *) say "note: trixie now has $(basename "$dsc" .dsc), not pgvector $PGVECTOR_VERSION; building it anyway" ;;
    esac
    logged dpkg-source -x "$dsc" "$BUILD_DIR/tree"
}

build_pgvector() {
    # OPTFLAGS= : no -march=native, so a cached build stays valid on another CPU.
    logged make -C "$BUILD_DIR/tree" PG_CONFIG="$PG_CONFIG" OPTFLAGS= -j"$(nproc)"
    touch "$BUILD_DIR/built.stamp"
}

cmd_install() {
    mkdir -p "$CACHE"
    exec 9>"$LOCK"
    flock 9
    : >"$LOG"
    local t0=$SECONDS

    apt_install_packages
    stop_default_cluster
    [[ -x $PG_CONFIG ]] || die "$PG_CONFIG is missing after installing postgresql-server-dev-$PG_MAJOR"

    local sharedir pkglibdir
    sharedir=$("$PG_CONFIG" --sharedir)
    pkglibdir=$("$PG_CONFIG" --pkglibdir)
    if [[ -f $sharedir/extension/vector.control && -f $pkglibdir/vector.so ]]; then
        say "PostgreSQL $PG_MAJOR with pgvector is already installed ($((SECONDS - t0))s)"
        return 0
    fi

    if [[ ! -f $BUILD_DIR/built.stamp || ! -d $BUILD_DIR/tree ]]; then
        fetch_pgvector_source
        say "building pgvector"
        build_pgvector
    else
        say "reinstalling pgvector from the cached build in $BUILD_DIR/tree"
    fi
    logged make -C "$BUILD_DIR/tree" PG_CONFIG="$PG_CONFIG" OPTFLAGS= install
    [[ -f $sharedir/extension/vector.control ]] || die "make install did not install vector.control"
    say "PostgreSQL $PG_MAJOR with pgvector installed ($((SECONDS - t0))s)"
}

abs_dir() {
    case $1 in
        /*) printf '%s\n' "$1" ;;
        *) printf '%s\n' "$PWD/$1" ;;
    esac
}

as_postgres() { (cd / && runuser -u postgres -- "$@"); }

stop_cluster_in() {
    local dir=$1
    if [[ -f $dir/postmaster.pid && -x $PG_BIN/pg_ctl ]]; then
        as_postgres "$PG_BIN/pg_ctl" -D "$dir" -m immediate -w stop >/dev/null 2>&1 || true
    fi
}

cmd_start() {
    [[ $# -eq 2 ]] || die "usage: $0 start DIR PORT"
    local dir port
    dir=$(abs_dir "$1")
    port=$2
    [[ $port =~ ^[0-9]+$ ]] || die "PORT must be a number, got '$port'"
    [[ $dir != *[[:space:]]* ]] || die "DIR must not contain whitespace: $dir"
    [[ -x $PG_BIN/initdb ]] || die "PostgreSQL $PG_MAJOR is not installed: run '$0 install' first"
    id postgres >/dev/null 2>&1 || die "no 'postgres' user: run '$0 install' first"
    # The server's socket lives in DIR; Unix socket paths are limited to 107 bytes.
    (( ${#dir} + 20 < 108 )) || die "DIR is too long for a Unix socket path: $dir"

    if [[ -e $dir ]]; then
        stop_cluster_in "$dir"
        rm -rf "$dir"
    fi
    mkdir -p "$dir"
    chown postgres:postgres "$dir"
    chmod 700 "$dir"
    as_postgres test -w "$dir" || die "the postgres user cannot reach $dir (check its parents' permissions)"

    local initlog
    initlog=$(mktemp)
    if ! as_postgres "$PG_BIN/initdb" -D "$dir" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >"$initlog" 2>&1; then
        cat "$initlog" >&2
        rm -f "$initlog"
        die "initdb failed in $dir"
    fi
    rm -f "$initlog"
    local log=$dir/server.log
    if ! as_postgres "$PG_BIN/pg_ctl" -D "$dir" -l "$log" \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=300 -c shared_buffers=128MB" \
        -w start >/dev/null 2>&1; then
        tail -n 40 "$log" >&2 || true
        die "could not start PostgreSQL on 127.0.0.1:$port"
    fi

    local url=postgres://postgres@127.0.0.1:$port/postgres
    local check_url=postgres://postgres@127.0.0.1:$port/adam_vector_check
    local psql=(env -u PGPASSWORD -u PGSERVICE psql -X -q -v ON_ERROR_STOP=1)
    if ! { "${psql[@]}" "$url" -c 'CREATE DATABASE adam_vector_check' &&
           "${psql[@]}" "$check_url" -c 'CREATE EXTENSION vector' &&
           "${psql[@]}" "$url" -c 'DROP DATABASE adam_vector_check'; } >&2; then
        stop_cluster_in "$dir"
        die "CREATE EXTENSION vector failed: run '$0 install'"
    fi
    say "PostgreSQL $PG_MAJOR with pgvector is up in $dir (log: $log)"
    echo "$url"
}

cmd_stop() {
    [[ $# -eq 1 ]] || die "usage: $0 stop DIR"
    local dir
    dir=$(abs_dir "$1")
    [[ -e $dir ]] || return 0
    stop_cluster_in "$dir"
    rm -rf "$dir"
}

main() {
    local cmd=${1:-}
    [[ $# -gt 0 ]] && shift
    case $cmd in
        install) cmd_install "$@" ;;
        start) cmd_start "$@" ;;
        stop) cmd_stop "$@" ;;
        *) die "usage: $0 install | start DIR PORT | stop DIR" ;;
    esac
}

main "$@"
