"""A labelled prompt grid from the exported tiny-scenes folder, made by diffusers' own SanaPipeline (called as
darkroom.json `call` says; default steps and guidance; image i of a prompt uses seed i).

    python tools/train/scenes_sample.py --model models/tiny-scenes --out models/tiny-scenes/samples.png
    python tools/train/scenes_sample.py --prompt "a red circle above a blue square" --per-prompt 4 --out a.png
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

import scenes

# (width, height, prompt): the card's page; the examples first, then one of each form of the grammar
PROMPTS = [
    (64, 64, "a red circle above a blue square"),
    (64, 64, "a small red circle above a large blue square"),
    (64, 64, "blue square on the right, red triangle on the left, grey background"),
    (64, 64, "a yellow ring"),
    (64, 64, "the large white triangle"),
    (64, 64, "a green square to the left of a purple circle"),
    (64, 64, "purple ring below a small yellow triangle"),
    (64, 64, "a white circle on top of a red square on a navy background"),
    (64, 32, "a blue triangle left of a yellow square"),
    (64, 32, "red ring on the left, green circle on the right"),
    (32, 64, "a purple square above a white ring"),
    (32, 64, "a yellow circle at the top and a blue ring at the bottom"),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/tiny-scenes")
    ap.add_argument("--out", default="samples.png")
    ap.add_argument("--prompt", action="append", help="prompt(s) at 64x64 instead of the card's list")
    ap.add_argument("--per-prompt", type=int, default=3)
    ap.add_argument("--scale", type=int, default=2)
    a = ap.parse_args()
    from diffusers import SanaPipeline
    from diffusers.utils import logging as dlog

    dlog.set_verbosity_error()
    with open(os.path.join(a.model, "darkroom.json")) as f:
        dj = json.load(f)
    call = dj.get("call", {})
    pipe = SanaPipeline.from_pretrained(a.model)
    pipe.set_progress_bar_config(disable=True)
    todo = [(64, 64, p) for p in a.prompt] if a.prompt else PROMPTS
    s, k = a.scale, a.per_prompt
    label_w, cell = 260, 64 * a.scale + 4
    grid = Image.new("RGB", (label_w + k * cell + 4, len(todo) * cell + 4), (36, 36, 36))
    d = ImageDraw.Draw(grid)
    font = ImageFont.load_default()
    for r, (W, H, p) in enumerate(todo):
        imgs = pipe([p] * k, height=H, width=W, num_inference_steps=dj["default_steps"],
                    guidance_scale=dj["default_guidance"], negative_prompt=call.get("negative_prompt", ""),
                    generator=[torch.Generator().manual_seed(i) for i in range(k)],
                    use_resolution_binning=call.get("use_resolution_binning", False),
                    complex_human_instruction=call.get("complex_human_instruction"), output_type="np").images
        y = 4 + r * cell
        lines = scenes.wrap(p, 40)
        for j, line in enumerate(lines):
            d.text((6, y + 4 + 12 * j), line, fill=(235, 235, 235), font=font)
        d.text((6, y + 4 + 12 * len(lines)), f"{W}x{H}, seeds 0..{k - 1}", fill=(150, 150, 150), font=font)
        for i, im in enumerate(imgs):
            tile = Image.fromarray(np.clip(np.rint(im * 255), 0, 255).astype(np.uint8))
            grid.paste(tile.resize((W * s, H * s), Image.NEAREST), (label_w + i * cell, y))
    grid.save(a.out)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
