"""Sample the tiny-shapes model with diffusers components: FlowMatchEulerDiscreteScheduler + classifier-free
guidance, following DiTPipeline.__call__ (diffusers 0.42.1 pipelines/dit/pipeline_dit.py:101-251) except that
there is no VAE (pixel space) and the latents may be non-square (model.forward_hw).

Noise: image i of a request with seed s is drawn as `torch.randn((1, 3, H, W), generator=Generator().manual_seed(s + i))`
(CPU, float32) — the Darkroom rule "image i uses seed + i". Output pixels: clamp(x / 2 + 0.5, 0, 1) * 255, rounded.

    python tools/train/sample.py --model models/tiny-shapes --out grid.png               # all labels, all sizes
    python tools/train/sample.py --model models/tiny-shapes --labels "red circle" --sizes 64x64 --per-label 4
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import torch
from PIL import Image, ImageDraw

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import forward_hw  # noqa: E402


def load(model_dir: str):
    from diffusers import DiTTransformer2DModel, FlowMatchEulerDiscreteScheduler

    transformer = DiTTransformer2DModel.from_pretrained(os.path.join(model_dir, "transformer")).eval()
    scheduler = FlowMatchEulerDiscreteScheduler.from_pretrained(os.path.join(model_dir, "scheduler"))
    with open(os.path.join(model_dir, "model_index.json")) as f:
        index = json.load(f)
    id2label = {int(k): v for k, v in index["id2label"].items()}
    darkroom = {}
    p = os.path.join(model_dir, "darkroom.json")
    if os.path.exists(p):
        with open(p) as f:
            darkroom = json.load(f)
    return transformer, scheduler, id2label, darkroom


def initial_noise(seeds: list[int], height: int, width: int) -> torch.Tensor:
    return torch.cat([torch.randn((1, 3, height, width), generator=torch.Generator().manual_seed(s)) for s in seeds])


@torch.no_grad()
def generate(transformer, scheduler, class_ids: list[int], seeds: list[int], height: int, width: int,
             steps: int, guidance: float, null_id: int) -> np.ndarray:
    """uint8 [B, H, W, 3]."""
    B = len(class_ids)
    latents = initial_noise(seeds, height, width)
    labels = torch.tensor(class_ids, dtype=torch.long)
    cfg = guidance > 1
    xin = torch.cat([latents, latents]) if cfg else latents
    y = torch.cat([labels, torch.full((B,), null_id, dtype=torch.long)]) if cfg else labels
    scheduler.set_timesteps(steps)
    for t in scheduler.timesteps:
        if cfg:
            xin = torch.cat([xin[:B], xin[:B]])
        tt = t.to(torch.float32).expand(xin.shape[0])
        out = forward_hw(transformer, xin, tt, y)
        if cfg:
            c, u = out[:B], out[B:]
            g = u + guidance * (c - u)
            out = torch.cat([g, g])
        xin = scheduler.step(out, t, xin).prev_sample
    x = xin[:B] if cfg else xin
    img = (x / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    return (img * 255).round().astype(np.uint8)


def parse_size(s: str) -> tuple[int, int]:
    w, h = s.lower().split("x")
    return int(w), int(h)


def grid(transformer, scheduler, id2label: dict[int, str], sizes: list[tuple[int, int]], class_ids: list[int],
         per_label: int, seed: int, steps: int, guidance: float, scale: int = 2) -> Image.Image:
    """One row per label; per size `per_label` images; a header row names the sizes, a left column the labels."""
    null_id = len(id2label)
    pad, left, top = 4, 96, 16
    col_w = [per_label * (w * scale + pad) + 2 * pad for (w, h) in sizes]
    row_h = max(h for (_, h) in sizes) * scale + pad
    G = Image.new("RGB", (left + sum(col_w), top + len(class_ids) * row_h + pad), (30, 30, 30))
    d = ImageDraw.Draw(G)
    x0 = left
    for (w, h), cw in zip(sizes, col_w):
        d.text((x0 + pad, 2), f"{w}x{h}", fill=(220, 220, 220))
        for r0 in range(0, len(class_ids), 32):
            chunk = class_ids[r0:r0 + 32]
            ids = [c for c in chunk for _ in range(per_label)]
            seeds = [seed + k for _ in chunk for k in range(per_label)]
            imgs = generate(transformer, scheduler, ids, seeds, h, w, steps, guidance, null_id)
            for n, img in enumerate(imgs):
                r, k = r0 + n // per_label, n % per_label
                tile = Image.fromarray(img).resize((w * scale, h * scale), Image.NEAREST)
                G.paste(tile, (x0 + pad + k * (w * scale + pad), top + r * row_h))
        x0 += cw
    for r, c in enumerate(class_ids):
        d.text((4, top + r * row_h + 4), id2label[c], fill=(220, 220, 220))
    return G


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/tiny-shapes")
    ap.add_argument("--out", default="samples.png")
    ap.add_argument("--labels", nargs="*", help="label names (default: all)")
    ap.add_argument("--sizes", nargs="*", help="WxH (default: the served sizes)")
    ap.add_argument("--per-label", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--steps", type=int)
    ap.add_argument("--guidance", type=float)
    ap.add_argument("--shift", type=float, help="override the scheduler shift")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    transformer, scheduler, id2label, dr = load(args.model)
    if args.shift is not None:
        from diffusers import FlowMatchEulerDiscreteScheduler
        scheduler = FlowMatchEulerDiscreteScheduler.from_config(scheduler.config, shift=args.shift)
    label2id = {v: k for k, v in id2label.items()}
    class_ids = [label2id[s.lower()] for s in args.labels] if args.labels else sorted(id2label)
    sizes = [parse_size(s) for s in args.sizes] if args.sizes else [tuple(s) for s in dr.get("sizes", [[64, 64]])]
    steps = args.steps or dr.get("default_steps", 24)
    guidance = args.guidance if args.guidance is not None else dr.get("default_guidance", 4.0)
    g = grid(transformer, scheduler, id2label, sizes, class_ids, args.per_label, args.seed, steps, guidance)
    g.save(args.out)
    print(f"wrote {args.out} (steps {steps}, guidance {guidance}, shift {scheduler.config.shift})")


if __name__ == "__main__":
    main()
