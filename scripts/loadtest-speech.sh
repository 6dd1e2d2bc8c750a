#!/bin/sh
# Writes loadtest/speech.wav, the customer's utterance for load tests against a server whose
# VAD is Silero (`adam-loadtest --vad silero`): a question spoken by espeak-ng (22,050 Hz
# PCM16; the load tester resamples it), about 1.8 s. Generated rather than committed; the
# same espeak-ng (scripts/setup.sh installs it) gives the same file.
set -eu
cd "$(dirname "$0")/.."
out="${1:-loadtest/speech.wav}"
command -v espeak-ng >/dev/null || { echo "espeak-ng is missing (scripts/setup.sh)" >&2; exit 1; }
espeak-ng -v en -s 165 -w "$out" "When are you open on Saturday?"
echo "wrote $out"
