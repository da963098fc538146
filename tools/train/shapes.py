"""Synthetic labelled shapes: the training data of the shipped model `tiny-shapes`.

Every image is a function of (seed, width, height, index) only, so the data set is deterministic and
needs no storage: image `index` has class `index % NUM_CLASSES` and its own numpy PCG64 stream seeded
with SeedSequence([seed, width, height, index]).

An image is one flat-coloured shape (circle, square, triangle, ring) in one of six well-separated
bright colours, at a random position, size and rotation, on a dark / muted background (plain or a soft
linear gradient). Backgrounds have HSV value <= 0.40 and saturation <= 0.45, shape colours have value
>= 0.85 (white included), so a background never matches the shape's colour.

`render(..., spread, turn)` narrows the centre toward the image centre (spread < 1) and the rotation toward
upright (turn < 1) with the same random draws; train.py uses spread 0.5, turn 0.06 (+-11 degrees).
Four shapes, not five: a five-pointed star at 32x32 has arms two or three pixels wide, and the first model
drew stars as blobs and triangles; the set keeps the four a 2M-parameter model draws reliably.

Label ids are fixed: id = colour_index * len(SHAPES) + shape_index, label "<colour> <shape>".

    python tools/train/shapes.py --out grid.png          # a labelled preview grid
"""
from __future__ import annotations

import argparse
import colorsys
import math

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ["circle", "square", "triangle", "ring"]
# Well separated in hue (0, 55, 130, 220, 290 deg) plus white; a small per-image jitter is added.
COLOURS = {
    "red": (225, 35, 35),
    "yellow": (240, 215, 35),
    "green": (40, 195, 60),
    "blue": (45, 95, 240),
    "purple": (185, 60, 225),
    "white": (245, 245, 245),
}
COLOUR_NAMES = list(COLOURS)
NUM_CLASSES = len(COLOUR_NAMES) * len(SHAPES)
ID2LABEL = {i: f"{COLOUR_NAMES[i // len(SHAPES)]} {SHAPES[i % len(SHAPES)]}" for i in range(NUM_CLASSES)}
LABEL2ID = {v: k for k, v in ID2LABEL.items()}

# polygon rotation (radians, y down) that draws the shape upright: square axis-aligned, triangle points up
UPRIGHT = {"circle": 0.0, "ring": 0.0, "square": math.pi / 4, "triangle": -math.pi / 2}

SUPERSAMPLE = 4  # shapes are drawn at 4x and box-filtered down: anti-aliased edges


def label_parts(class_id: int) -> tuple[str, str]:
    return COLOUR_NAMES[class_id // len(SHAPES)], SHAPES[class_id % len(SHAPES)]


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Dark or muted background, plain (40%) or a soft linear gradient (60%); float32 [H, W, 3] in 0..255."""

    def muted() -> np.ndarray:
        h = rng.random()
        s = rng.uniform(0.0, 0.45)
        v = rng.uniform(0.06, 0.40)
        return np.array(colorsys.hsv_to_rgb(h, s, v), dtype=np.float32) * 255.0

    c0 = muted()
    if rng.random() < 0.4:
        return np.broadcast_to(c0, (height, width, 3)).astype(np.float32)
    c1 = muted()
    angle = rng.uniform(0.0, 2.0 * math.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    xs = (xs + 0.5) / width - 0.5
    ys = (ys + 0.5) / height - 0.5
    t = xs * math.cos(angle) + ys * math.sin(angle)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    return (c0[None, None, :] * (1.0 - t[..., None]) + c1[None, None, :] * t[..., None]).astype(np.float32)


def _polygon(cx: float, cy: float, radii: list[float], rot: float) -> list[tuple[float, float]]:
    n = len(radii)
    return [
        (cx + r * math.cos(rot + 2.0 * math.pi * k / n), cy + r * math.sin(rot + 2.0 * math.pi * k / n))
        for k, r in enumerate(radii)
    ]


def _mask(rng: np.random.Generator, shape: str, width: int, height: int, spread: float = 1.0,
          turn: float = 1.0) -> np.ndarray:
    """Coverage of the shape, float32 [H, W] in 0..1. `spread` scales the centre's offset from the image centre,
    `turn` the rotation's range around upright."""
    s = SUPERSAMPLE
    W, H = width * s, height * s
    side = min(W, H)
    # radius of the shape's circumscribed circle: the shape spans 40%..75% of the short side
    r = rng.uniform(0.20, 0.375) * side
    if shape == "square":
        r *= 1.1  # a square of the same circumradius looks small; its half-diagonal is r
    margin = r + 1.0 * s
    cx = rng.uniform(margin, W - margin) if W - 2 * margin > 0 else W / 2
    cy = rng.uniform(margin, H - margin) if H - 2 * margin > 0 else H / 2
    if spread != 1.0:  # pull the centre toward the image centre (same random draws as spread 1)
        cx = W / 2 + spread * (cx - W / 2)
        cy = H / 2 + spread * (cy - H / 2)
    rot = rng.uniform(0.0, 2.0 * math.pi)
    if turn != 1.0:  # rotation within +-turn*180 deg of upright (same random draws as turn 1)
        rot = UPRIGHT[shape] + turn * (rot - math.pi)
    img = Image.new("L", (W, H), 0)
    d = ImageDraw.Draw(img)
    if shape == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
    elif shape == "ring":
        inner = r * rng.uniform(0.50, 0.62)
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
        d.ellipse([cx - inner, cy - inner, cx + inner, cy + inner], fill=0)
    elif shape == "square":
        d.polygon(_polygon(cx, cy, [r] * 4, rot), fill=255)
    elif shape == "triangle":
        # circumradius a bit larger so its area is comparable to the others
        d.polygon(_polygon(cx, cy, [r * 1.1] * 3, rot), fill=255)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    small = img.reduce(s)  # box filter: exact mean over each s x s block
    return np.asarray(small, dtype=np.float32) / 255.0


def render(seed: int, width: int, height: int, index: int, spread: float = 1.0,
           turn: float = 1.0) -> tuple[np.ndarray, int]:
    """Image `index` of the set for (seed, width, height): (uint8 [H, W, 3], class id).
    spread 1: the centre is uniform over every position that keeps the shape inside; spread k < 1 scales
    that centre's offset from the image centre by k (same random draws otherwise). turn 1: any rotation;
    turn k < 1: within +-k*180 degrees of upright."""
    class_id = index % NUM_CLASSES
    colour, shape = label_parts(class_id)
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, width, height, index])))
    bg = _background(rng, width, height)
    base = np.array(COLOURS[colour], dtype=np.float32)
    fg = np.clip(base + rng.uniform(-12.0, 12.0, size=3).astype(np.float32), 0.0, 255.0)
    a = _mask(rng, shape, width, height, spread, turn)[..., None]
    out = bg * (1.0 - a) + fg[None, None, :] * a
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), class_id


def batch(seed: int, width: int, height: int, indices, spread: float = 1.0,
          turn: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 [B, H, W, 3], int64 [B]) for the given image indices."""
    imgs, labels = [], []
    for i in indices:
        img, c = render(seed, width, height, int(i), spread, turn)
        imgs.append(img)
        labels.append(c)
    return np.stack(imgs), np.array(labels, dtype=np.int64)


def preview(seed: int, width: int, height: int, per_class: int, scale: int, spread: float = 1.0,
            turn: float = 1.0) -> Image.Image:
    """Grid: one row per class, `per_class` examples each, upscaled by `scale` (nearest)."""
    pad = 2
    cw, ch = width * scale, height * scale
    grid = Image.new("RGB", (per_class * (cw + pad) + pad, NUM_CLASSES * (ch + pad) + pad), (128, 128, 128))
    for c in range(NUM_CLASSES):
        for k in range(per_class):
            img, cid = render(seed, width, height, c + k * NUM_CLASSES, spread, turn)
            assert cid == c
            tile = Image.fromarray(img).resize((cw, ch), Image.NEAREST)
            grid.paste(tile, (pad + k * (cw + pad), pad + c * (ch + pad)))
    return grid


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--height", type=int, default=64)
    ap.add_argument("--per-class", type=int, default=8)
    ap.add_argument("--scale", type=int, default=2)
    ap.add_argument("--spread", type=float, default=1.0, help="position spread (1: anywhere inside)")
    ap.add_argument("--turn", type=float, default=1.0, help="rotation range (1: any; k: +-k*180 deg of upright)")
    ap.add_argument("--out", default="shapes-preview.png")
    ap.add_argument("--labels", action="store_true", help="print id2label and exit")
    args = ap.parse_args()
    if args.labels:
        for k, v in ID2LABEL.items():
            print(k, v)
        return
    preview(args.seed, args.width, args.height, args.per_class, args.scale, args.spread, args.turn).save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
