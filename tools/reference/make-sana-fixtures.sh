#!/usr/bin/env bash
# Regenerate the Sana / PixArt / DC-AE component fixtures in Tests/DiffusionTests/Fixtures (sana/, expected/<component>.safetensors,
# sana-manifest.json). Single-threaded and niced: the machine is shared.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="$("$repo/tools/venv.sh" | tail -1)"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 HF_HUB_OFFLINE=1 PYTHONHASHSEED=0
exec nice -n 10 "$venv/bin/python" "$repo/tools/reference/make_sana_fixtures.py" --out "$repo/Tests/DiffusionTests/Fixtures" "$@"
