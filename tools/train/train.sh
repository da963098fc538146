#!/usr/bin/env bash
# Train (or resume, or re-export) the shipped model tiny-shapes with the project venv (tools/venv.sh).
# Runs at low priority on two threads; all arguments go to tools/train/train.py (see its --help), e.g.
#   tools/train/train.sh                 full run (~90 min on both cores), exports models/tiny-shapes
#   tools/train/train.sh --resume        continue from .state/train-ckpt/ckpt.pt
#   tools/train/train.sh --export-only   re-export models/tiny-shapes from the checkpoint
# Background:  nohup tools/train/train.sh > .state/train.log 2>&1 &
# TRAIN_PY names another trainer to run the same way (tools/train/scenes.sh sets it); TRAIN_NICE the niceness
# added (default 10).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
py="$root/.venv/bin/python"
if [[ ! -x "$py" ]]; then
    echo "no venv at $root/.venv: run tools/venv.sh first" >&2
    exit 1
fi
cd "$root"
export OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 PYTHONUNBUFFERED=1
exec nice -n "${TRAIN_NICE:-10}" "$py" "${TRAIN_PY:-tools/train/train.py}" "$@"
