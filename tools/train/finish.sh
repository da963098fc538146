#!/usr/bin/env bash
# After a training run: draw the loss curve and the labelled sample grid (diffusers components) into
# models/tiny-shapes/ (loss.png, samples.png). Uses the project venv, one thread, low priority.
# The quality numbers come from the Swift engine checker: tools/check/run.sh.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
py="$root/.venv/bin/python"
m="$root/models/tiny-shapes"
cd "$root"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONUNBUFFERED=1
nice -n 10 "$py" tools/train/plot_loss.py --csv "$m/train_loss.csv" --out "$m/loss.png"
nice -n 10 "$py" tools/train/sample.py --model "$m" --out "$m/samples.png" --per-label 2 --seed 1 2>&1 | grep -v accelerate
