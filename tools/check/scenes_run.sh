#!/usr/bin/env bash
# tools/check/scenes_run.sh [--generator diffusers|darkroom] [--darkroom BINARY] [--model DIR] [--n N] [more scenes_check.py options]
#
# The tiny-scenes quality check in one command:
#   1. proves the analyser (tools/check/scenes_analyse.py) on ground-truth renders of every frame, training and
#      held-out combinations (>= 99% fully right required), and on distorted renders (pinched squares, rounded
#      triangles, filled rings: >= 99% rejected required); tables into tools/check/scenes_analyser.md;
#   2. generates N images per frame for prompts never seen in training (held-out seeds of trained combinations,
#      and held-out combinations) and judges them (tools/check/scenes_check.py); tools/check/scenes_results.md.
# Generator: diffusers' SanaPipeline (default) or the Swift engine (`--generator darkroom`, built here with
# swift build --scratch-path .build-check, or the binary given with --darkroom) with a Swift-vs-diffusers comparison.
# Runs under nice, one torch thread. Exit status 0 when the analyser proofs and the seen-combinations goal
# (>= 90%) hold, 1 when not.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
py="$root/.venv/bin/python"
if [[ ! -x "$py" ]] || ! "$py" -c 'import torch, diffusers, transformers' 2>/dev/null; then
    echo "building the reference venv (tools/venv.sh) ..." >&2
    py="$(tools/venv.sh | tail -1)/bin/python"
fi
command="tools/check/scenes_run.sh $*"
args=()
generator=diffusers
gt_n="${SCENES_GT_N:-100}"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --generator) generator="$2"; args+=("$1" "$2"); shift 2 ;;
        --darkroom) binary="$2"; shift 2 ;;
        *) args+=("$1"); shift ;;
    esac
done
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONUNBUFFERED=1
if [[ "$generator" == darkroom && -n "${binary:-}" ]]; then
    args+=(--darkroom "$binary")
elif [[ "$generator" == darkroom ]]; then
    scratch="${DARKROOM_CHECK_SCRATCH:-.build-check}"
    echo "building darkroom (swift build --scratch-path $scratch --product darkroom) ..." >&2
    nice -n 10 swift build --scratch-path "$scratch" --product darkroom >&2
    args+=(--darkroom "$root/$scratch/debug/darkroom")
fi
out=tools/check/scenes_analyser.md
{
    echo "# tiny-scenes analyser proofs"
    echo
    echo "\`tools/check/scenes_analyse.py --data --n $gt_n\` (ground-truth renders, data seed 4242):"
    echo
    nice -n 10 "$py" tools/check/scenes_analyse.py --data --n "$gt_n"
    echo
    echo "\`tools/check/scenes_analyse.py --distort --n $gt_n\` (distorted renders; rejected = judged wrong for the prompt):"
    echo
    nice -n 10 "$py" tools/check/scenes_analyse.py --distort --n "$gt_n"
} > "$out"
cat "$out"
"$py" - "$out" <<'PY'
import re, sys
bad = []
for line in open(sys.argv[1]):
    m = re.match(r"\| (train|heldout|[a-z-]+ \(prompted \w+\)) \| (\S+) \| ([\d.]+)%", line)
    if m and float(m.group(3)) < 99.0:
        bad.append(line.strip())
if bad:
    sys.exit("analyser proof failed (< 99%):\n" + "\n".join(bad))
PY
exec nice -n 10 "$py" tools/check/scenes_check.py --command "$command" "${args[@]}"
