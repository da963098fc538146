#!/usr/bin/env bash
# Train (or resume, or re-export) the shipped text-to-image model tiny-scenes: tokenizer, AutoencoderDC, then
# Gemma-2 text encoder + SanaTransformer2DModel; exports models/tiny-scenes. Runs like tools/train/train.sh (project
# venv, nice 10, two threads); all arguments go to tools/train/scenes_train.py (see its --help), e.g.
#   tools/train/scenes.sh                  full run, exports models/tiny-scenes
#   tools/train/scenes.sh --resume         continue from the checkpoints in .state/scenes/
#   tools/train/scenes.sh --export-only    re-export models/tiny-scenes from the last checkpoints
# Background:  nohup tools/train/scenes.sh > .state/scenes.log 2>&1 &
TRAIN_PY=tools/train/scenes_train.py exec "$(dirname "${BASH_SOURCE[0]}")/train.sh" "$@"
