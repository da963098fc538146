#!/usr/bin/env bash
# Regenerate the step-caching fixture in Tests/DiffusionTests/Fixtures (expected/latent-ddim-fbc.safetensors,
# cache-manifest.json): diffusers FirstBlockCache on the latent-dit folder). Single-threaded and niced: the machine is shared.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="$("$repo/tools/venv.sh" | tail -1)"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 HF_HUB_OFFLINE=1 PYTHONHASHSEED=0
exec nice -n 10 "$venv/bin/python" "$repo/tools/reference/make_cache_fixtures.py" --out "$repo/Tests/DiffusionTests/Fixtures" "$@"
