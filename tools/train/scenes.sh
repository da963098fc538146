#!/usr/bin/env bash
# Train (or resume, or re-export) the text-to-image model tiny-scenes in one command: tokenizer, AutoencoderDC
# (gated on its strict round trip), Gemma-2 text encoder + SanaTransformer2DModel, export, check. Runs like
# tools/train/train.sh (project venv, nice 10 or $TRAIN_NICE, two threads); all arguments go to
# tools/train/scenes_train.py (see its --help), e.g.
#   tools/train/scenes.sh                  full run, exports models/tiny-scenes, checks it
#   tools/train/scenes.sh --resume         continue from the checkpoints in .state/scenes/
#   tools/train/scenes.sh --export-only    re-export models/tiny-scenes from the last checkpoints
#   tools/train/scenes.sh --state .state/scenes4 --out .state/scenes4/export    a candidate beside the shipped model
# Background:  nohup tools/train/scenes.sh > .state/scenes.log 2>&1 &
# Time per stage: <state>/timing.csv (per 25 steps, with the load average) and <state>/stages.json.
TRAIN_PY=tools/train/scenes_train.py exec "$(dirname "${BASH_SOURCE[0]}")/train.sh" "$@"
