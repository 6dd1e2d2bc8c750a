#!/usr/bin/env bash
# Bounded fuzzing of Adam's untrusted inputs with cargo-fuzz (libFuzzer); see
# docs/fuzzing.md. Not part of `make test` or CI: it needs the nightly toolchain and minutes
# of CPU per target.
#
#   scripts/fuzz.sh                  # every target, FUZZ_SECONDS each
#   scripts/fuzz.sh extract_pdf      # only these targets
#
# Environment:
#   FUZZ_SECONDS      run time per target (default 60)
#   FUZZ_TIMEOUT      seconds one input may take before it counts as a hang (default 10)
#   FUZZ_RSS_MB       memory limit of the fuzzing process, MiB (default 2048)
#   FUZZ_SANITIZER    none (default: safe Rust, twice the executions) or address
#   FUZZ_CODEGEN_UNITS  codegen units of the build (default 16: a much faster build)
#   CARGO_TARGET_DIR  build directory (default fuzz/target)
#
# Each target starts from its committed seeds (fuzz/corpus/<target>) plus what earlier runs
# found (fuzz/corpus-run/<target>, not committed). A crash, hang or out-of-memory input is
# saved under fuzz/artifacts/<target>/; reproduce it with
#   cargo +nightly fuzz run -s none <target> fuzz/artifacts/<target>/<file>
# Exits 1 when any target found something.
set -euo pipefail

cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
timeout=${FUZZ_TIMEOUT:-10}
rss_mb=${FUZZ_RSS_MB:-2048}
sanitizer=${FUZZ_SANITIZER:-none}
target_dir=${CARGO_TARGET_DIR:-$PWD/fuzz/target}

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz.sh: cargo-fuzz needs the nightly toolchain: rustup toolchain install nightly" >&2
    exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

build=(-s "$sanitizer" --codegen-units "${FUZZ_CODEGEN_UNITS:-16}" --target-dir "$target_dir")
if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

echo "== building ${#targets[@]} fuzz targets (sanitizer: $sanitizer)"
cargo +nightly fuzz build "${build[@]}"

logs=fuzz/logs
mkdir -p "$logs"
summary=()
failed=0
for target in "${targets[@]}"; do
    mkdir -p "fuzz/corpus-run/$target" "fuzz/artifacts/$target"
    log="$logs/$target.log"
    echo "== $target: ${seconds}s ($(uptime | sed 's/.*load average/load average/'))"
    # New inputs go to the first directory (scratch), the seeds are only read.
    status=0
    cargo +nightly fuzz run "${build[@]}" "$target" \
        "fuzz/corpus-run/$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -timeout="$timeout" -rss_limit_mb="$rss_mb" \
        -print_final_stats=1 >"$log" 2>&1 || status=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    if [ -z "$execs" ]; then
        # libFuzzer prints no final stats when it dies on a finding: take the last status line.
        execs=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#')
    fi
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || true)
    if [ "$status" -eq 0 ]; then
        result="no crash"
    else
        failed=1
        kind=$(grep -oE 'ERROR: libFuzzer: [a-z-]+|panicked at [^:]*:[0-9]+' "$log" | head -1 || true)
        artifact=$(grep -o 'Test unit written to [^ ]*' "$log" | tail -1 | sed 's/Test unit written to //' || true)
        result="FOUND (${kind:-exit $status}) ${artifact}"
    fi
    summary+=("$(printf '%-14s %12s execs  cov %-6s %s' "$target" "${execs:-?}" "${cov:-?}" "$result")")
    echo "   ${summary[-1]}"
done

echo
echo "== summary (${seconds}s per target; logs in $logs/)"
printf '%s\n' "${summary[@]}"
exit "$failed"
