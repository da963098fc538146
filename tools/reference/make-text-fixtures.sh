#!/usr/bin/env bash
# Regenerate Tests/TextTests/Fixtures (tokenizers trained with sentencepiece and their expected ids from
# transformers 5.24 / tokenizers 0.23.3; random small Gemma 2 and T5 encoders and their last hidden states).
# Makes the venv first (tools/venv.sh). Single-threaded and niced: the machine is shared.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="$("$repo/tools/venv.sh" | tail -1)"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 HF_HUB_OFFLINE=1 PYTHONHASHSEED=0 TOKENIZERS_PARALLELISM=false
out="$repo/Tests/TextTests/Fixtures"
nice -n 10 "$venv/bin/python" "$repo/tools/reference/make_text_fixtures.py" --out "$out"
if [ -f "$repo/tools/reference/make_encoder_fixtures.py" ]; then
    nice -n 10 "$venv/bin/python" "$repo/tools/reference/make_encoder_fixtures.py" --out "$out"
fi
