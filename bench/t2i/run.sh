#!/usr/bin/env bash
# Text-to-image benchmark: Darkroom vs diffusers/PyTorch on the CPU (2 threads, float32, same random weights):
# Sana-600M and PixArt-Σ-512 transformers at batch 2, DC-AE f32c32 decode, at 512 px.
#   bench/t2i/run.sh --darkroom '.build/release/darkroom bench'              # both engines, side by side
#   bench/t2i/run.sh --darkroom '...' --layers 2 --size 128 --repeats 1      # a quick check of the harness only
# Builds out/bench/t2i/ (git-ignored) on first use. Table: stdout and out/bench/t2i/results.md.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="$("$repo/tools/venv.sh" | tail -1)"
export HF_HUB_OFFLINE=1
exec "$venv/bin/python" "$repo/bench/t2i/bench.py" "$@"
