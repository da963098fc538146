#!/usr/bin/env bash
# Text-encoder benchmark: Darkroom vs transformers/PyTorch on the CPU (2 threads, same random bf16 weights).
#   bench/text/run.sh                                                 # PyTorch side only
#   bench/text/run.sh --darkroom '.build/release/darkroom bench'      # both engines, side by side
#   bench/text/run.sh --darkroom '...' --layers 2 --only t5-xl-b1-120 # a quick check of the harness (not published)
# Builds out/bench/text/{gemma2-2b,t5-xl} (~5.2 + 2.4 GB bf16, git-ignored) on first use.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="$("$repo/tools/venv.sh" | tail -1)"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec "$venv/bin/python" "$repo/bench/text/bench.py" "$@"
