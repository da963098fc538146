#!/usr/bin/env bash
# tools/venv.sh — create (idempotently) the reference Python venv at <repo>/.venv (git-ignored).
#
# Contents: torch (CPU-only wheel from PyPI, no CUDA packages), diffusers 0.42.1, safetensors, numpy, pillow, and for
# the text-to-image references transformers 5.24.0, tokenizers 0.23.3, sentencepiece 0.2.3 (with protobuf, to read a
# SentencePiece model's normalizer_spec).
#
# Why torch 2.13.0+cpu: PyPI's plain `torch==2.15.0` wheel is the CUDA build; installed with --no-deps it fails
# at `import torch` (libcudart.so.13 / libcublasLt missing), and with deps it pulls several GB of nvidia-* wheels.
# PyPI also carries `2.13.0+cpu` (192 MB, MKL, GCC 13.3, AVX2/AVX512 dispatch), whose torch.randn reproduces every
# test vector of docs/engine.md §5.5 bit for bit. Override with TORCH_SPEC=... if needed.
#
# Usage:  tools/venv.sh            # prints the venv path on the last line
#         . "$(tools/venv.sh | tail -1)/bin/activate"
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${DARKROOM_VENV:-$repo/.venv}"
torch_spec="${TORCH_SPEC:-torch==2.13.0+cpu}"
# Pure-python torch deps (from the wheel's METADATA, minus the CUDA/triton ones).
torch_deps=(filelock "typing-extensions>=4.13.0" "sympy>=1.13.3" "networkx>=2.5.1" jinja2 "fsspec>=0.8.5")
pkgs=(diffusers==0.42.1 numpy safetensors pillow transformers==5.24.0 tokenizers==0.23.3 sentencepiece==0.2.3 protobuf)
stamp_text="$torch_spec ${torch_deps[*]} ${pkgs[*]}"
stamp="$venv/.darkroom-reference-stamp"

if [[ -f "$stamp" && "$(cat "$stamp")" == "$stamp_text" ]] && "$venv/bin/python" -c 'import torch, diffusers, transformers, sentencepiece' 2>/dev/null; then
    echo "$venv"
    exit 0
fi

python="${PYTHON:-python3}"
[[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
# --no-deps keeps pip from resolving torch's nvidia-*/triton requirements (not needed on CPU).
"${pip[@]}" install --no-deps "$torch_spec" >&2
"${pip[@]}" install "${torch_deps[@]}" "${pkgs[@]}" >&2
"$venv/bin/python" -c 'import torch, diffusers; print("torch", torch.__version__, "diffusers", diffusers.__version__)' >&2
echo "$stamp_text" > "$stamp"
echo "$venv"
