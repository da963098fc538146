#!/usr/bin/env bash
# After a training run: draw the loss curve, the labelled sample grid and the Python analyser's numbers into
# models/tiny-shapes/ (loss.png, samples.png, quality.txt). Uses the project venv, one thread, low priority.
#   tools/train/finish.sh            # defaults: analyser with 4 images per label and size
#   tools/train/finish.sh 10         # 10 images per label and size
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
py="$root/.venv/bin/python"
m="$root/models/tiny-shapes"
n="${1:-4}"
cd "$root"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONUNBUFFERED=1
nice -n 10 "$py" tools/train/plot_loss.py --csv "$m/train_loss.csv" --out "$m/loss.png"
nice -n 10 "$py" tools/train/sample.py --model "$m" --out "$m/samples.png" --per-label 2 --seed 1 2>&1 | grep -v accelerate
nice -n 10 "$py" tools/train/analyse.py --model "$m" --n "$n" 2>&1 | grep -v -e accelerate -e '^```' -e '^\.$' | tee "$m/quality.txt"
