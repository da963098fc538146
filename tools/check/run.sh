#!/usr/bin/env bash
# tools/check/run.sh [--model DIR] [--n N] [more tools/check/check.py options]
#
# The tiny-shapes quality check in one command: builds `darkroom` (scratch path .build-check) if needed,
# generates N images per label (default 8, seeds 0..N-1) at every served size with the Swift engine at the
# model's default steps and guidance, classifies them with tools/check/analyse.py, compares a few images per
# size with the diffusers pipeline, prints a per-size table and writes tools/check/results.md.
# Runs under `nice`, one torch thread; about 4 minutes on this 2-core machine with N = 8. Exit status 0 when
# the targets are met (>= 90% of images right per size, Swift vs diffusers <= 2/255), 1 when not.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

model="models/tiny-shapes"
args=()
cmdline="tools/check/run.sh"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --model) model="$2"; cmdline+=" --model $2"; shift 2 ;;
        --model=*) model="${1#--model=}"; cmdline+=" $1"; shift ;;
        *) args+=("$1"); cmdline+=" $1"; shift ;;
    esac
done

py="$root/.venv/bin/python"
if [[ ! -x "$py" ]] || ! "$py" -c 'import torch, diffusers' 2>/dev/null; then
    echo "building the reference venv (tools/venv.sh) ..." >&2
    py="$(tools/venv.sh | tail -1)/bin/python"
fi

scratch="${DARKROOM_CHECK_SCRATCH:-.build-check}"
echo "building darkroom (swift build --scratch-path $scratch --product darkroom) ..." >&2
nice -n 10 swift build --scratch-path "$scratch" --product darkroom >&2
darkroom="$root/$scratch/debug/darkroom"

export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONUNBUFFERED=1
exec nice -n 10 "$py" tools/check/check.py --model "$model" --darkroom "$darkroom" --command "$cmdline" "${args[@]}"
