#!/usr/bin/env bash
# Installs the official OpenAI Python SDK (PyPI `openai[realtime]`, every wheel pinned by
# SHA-256 in tests/openai_sdk/requirements.txt) into its own virtualenv, idempotently. The
# integration test `openai_realtime` drives a real Adam with it (tests/openai_sdk/).
#
#   bash scripts/openai-sdk.sh          install if needed, print the venv's python
#
#   ADAM_OPENAI_SDK_VENV   the virtualenv (default: /var/cache/adam/openai-sdk-venv, or
#                          .openai-sdk-venv in the repository when that is not writable)
set -euo pipefail
cd "$(dirname "$0")/.."

OPENAI_VERSION=3.63.0
requirements="tests/openai_sdk/requirements.txt"
venv="${ADAM_OPENAI_SDK_VENV:-/var/cache/adam/openai-sdk-venv}"
if [[ -z "${ADAM_OPENAI_SDK_VENV:-}" ]] && { ! mkdir -p "$(dirname "$venv")" 2>/dev/null || [[ ! -w "$(dirname "$venv")" ]]; }; then
    venv="$PWD/.openai-sdk-venv"
fi
py="$venv/bin/python"

installed() {
    [[ -x "$py" ]] && "$py" -c "import openai, websockets, sys; sys.exit(openai.__version__ != '$OPENAI_VERSION')" 2>/dev/null
}

if ! installed; then
    echo "openai-sdk: installing openai[realtime] $OPENAI_VERSION into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps --require-hashes -r "$requirements"
    installed || { echo "openai-sdk: the install did not yield openai $OPENAI_VERSION" >&2; exit 1; }
fi
echo "$py"
