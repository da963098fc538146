#!/usr/bin/env bash
# Engine benchmark: Darkroom vs diffusers/PyTorch on the CPU (2 threads, float32, same random weights).
#   bench/engine/run.sh                                          # PyTorch side only
#   bench/engine/run.sh --darkroom '.build/release/darkroom bench'  # both engines, side by side
# Builds out/bench/dit-xl-2-256 (~3.3 GB, git-ignored) on first use. Table: stdout and out/bench/results.md.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="$("$repo/tools/venv.sh" | tail -1)"
export HF_HUB_OFFLINE=1
exec "$venv/bin/python" "$repo/bench/engine/bench.py" "$@"
