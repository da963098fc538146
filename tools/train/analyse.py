"""A simple deterministic analyser for tiny-shapes images: which colour, which shape.

Rules (no learning; they follow from how shapes.py draws the data):
  * foreground = pixels whose brightest channel is >= 150 (backgrounds are <= 0.40 * 255 = 102, shape colours
    >= ~200); keep the largest 4-connected component.
  * colour = nearest palette entry (RGB distance) to the mean of the foreground's core pixels (max channel >= 180).
  * shape: background pixels enclosed by the component (not reachable from the border) covering >= 4% of the
    component's area: ring. Otherwise solidity = area / convex-hull area (hull over pixel corners):
    < 0.74: star. Else fill = area / (pi * r_max^2), r_max the largest corner distance from the centroid:
    > 0.78: circle, > 0.52: square, else triangle.

    python tools/train/analyse.py --data --sizes 32x32 64x64 64x32 --n 300   # accuracy on the training data
    python tools/train/analyse.py --model models/tiny-shapes --n 4            # accuracy of generated images
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from collections import deque

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shapes  # noqa: E402

FG_THRESHOLD = 150
CORE_THRESHOLD = 180


def _largest_component(mask: np.ndarray) -> np.ndarray:
    H, W = mask.shape
    seen = np.zeros_like(mask, dtype=bool)
    best: list[tuple[int, int]] = []
    for y0, x0 in zip(*np.nonzero(mask)):
        if seen[y0, x0]:
            continue
        comp, q = [], deque([(y0, x0)])
        seen[y0, x0] = True
        while q:
            y, x = q.popleft()
            comp.append((y, x))
            for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                ny, nx = y + dy, x + dx
                if 0 <= ny < H and 0 <= nx < W and mask[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    q.append((ny, nx))
        if len(comp) > len(best):
            best = comp
    out = np.zeros_like(mask, dtype=bool)
    if best:
        ys, xs = zip(*best)
        out[list(ys), list(xs)] = True
    return out


def _enclosed(comp: np.ndarray) -> int:
    """Number of non-component pixels not 4-reachable from the image border."""
    H, W = comp.shape
    free = ~comp
    reach = np.zeros_like(comp, dtype=bool)
    q = deque()
    for y in range(H):
        for x in (0, W - 1):
            if free[y, x] and not reach[y, x]:
                reach[y, x] = True
                q.append((y, x))
    for x in range(W):
        for y in (0, H - 1):
            if free[y, x] and not reach[y, x]:
                reach[y, x] = True
                q.append((y, x))
    while q:
        y, x = q.popleft()
        for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            ny, nx = y + dy, x + dx
            if 0 <= ny < H and 0 <= nx < W and free[ny, nx] and not reach[ny, nx]:
                reach[ny, nx] = True
                q.append((ny, nx))
    return int((free & ~reach).sum())


def _hull_area(points: np.ndarray) -> float:
    """Area of the convex hull of integer points (Andrew's monotone chain + shoelace)."""
    pts = sorted(set(map(tuple, points.tolist())))
    if len(pts) < 3:
        return 0.0

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower, upper = [], []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    hull = lower[:-1] + upper[:-1]
    a = 0.0
    for i in range(len(hull)):
        x1, y1 = hull[i]
        x2, y2 = hull[(i + 1) % len(hull)]
        a += x1 * y2 - x2 * y1
    return abs(a) / 2


def classify(img: np.ndarray) -> tuple[str, str, dict]:
    """(colour, shape, features) for a uint8 [H, W, 3] image; ('none', 'none', ...) when nothing is found."""
    img = img.astype(np.int32)
    maxc = img.max(axis=2)
    comp = _largest_component(maxc >= FG_THRESHOLD)
    area = int(comp.sum())
    if area < 6:
        return "none", "none", {"area": area}
    core = comp & (maxc >= CORE_THRESHOLD)
    sel = core if core.sum() >= 3 else comp
    mean = img[sel].mean(axis=0)
    names = shapes.COLOUR_NAMES
    pal = np.array([shapes.COLOURS[n] for n in names], dtype=np.float64)
    colour = names[int(np.argmin(((pal - mean) ** 2).sum(axis=1)))]

    holes = _enclosed(comp)
    ys, xs = np.nonzero(comp)
    corners = np.concatenate([np.stack([xs + dx, ys + dy], axis=1) for dx in (0, 1) for dy in (0, 1)])
    hull = _hull_area(corners)
    solidity = area / hull if hull > 0 else 0.0
    cx, cy = xs.mean() + 0.5, ys.mean() + 0.5
    rmax = float(np.sqrt(((corners[:, 0] - cx) ** 2 + (corners[:, 1] - cy) ** 2).max()))
    fill = area / (math.pi * rmax * rmax)
    feats = {"area": area, "holes": holes, "solidity": round(solidity, 3), "fill": round(fill, 3),
             "mean": [round(float(v)) for v in mean]}
    if holes >= 0.04 * area:
        shape = "ring"
    elif solidity < 0.74:
        shape = "star"
    elif fill > 0.78:
        shape = "circle"
    elif fill > 0.52:
        shape = "square"
    else:
        shape = "triangle"
    return colour, shape, feats


def _report(results: dict) -> float:
    worst = 1.0
    for (w, h), rs in results.items():
        ok = sum(1 for cid, c, s in rs if shapes.ID2LABEL[cid] == f"{c} {s}")
        col = sum(1 for cid, c, s in rs if shapes.label_parts(cid)[0] == c)
        shp = sum(1 for cid, c, s in rs if shapes.label_parts(cid)[1] == s)
        n = len(rs)
        print(f"{w}x{h}: {ok}/{n} = {100 * ok / n:.1f}% match (colour {100 * col / n:.1f}%, shape {100 * shp / n:.1f}%)")
        worst = min(worst, ok / n)
        miss: dict[str, int] = {}
        for cid, c, s in rs:
            if shapes.ID2LABEL[cid] != f"{c} {s}":
                k = f"{shapes.ID2LABEL[cid]} -> {c} {s}"
                miss[k] = miss.get(k, 0) + 1
        for k, v in sorted(miss.items(), key=lambda kv: -kv[1])[:8]:
            print(f"    {v:3d}  {k}")
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", action="store_true", help="classify training data (checks the analyser)")
    ap.add_argument("--model", help="pipeline folder: generate and classify")
    ap.add_argument("--sizes", nargs="*", help="WxH (default: the model's served sizes, or 32x32 64x64 64x32)")
    ap.add_argument("--n", type=int, default=4, help="--data: images per size; --model: images per label and size")
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument("--steps", type=int)
    ap.add_argument("--guidance", type=float)
    ap.add_argument("--shift", type=float)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    results: dict = {}
    if a.data:
        sizes = [tuple(map(int, s.split("x"))) for s in (a.sizes or ["32x32", "64x64", "64x32"])]
        for (w, h) in sizes:
            rs = []
            for i in range(a.n):
                img, cid = shapes.render(a.seed, w, h, i)
                c, s, _ = classify(img)
                rs.append((cid, c, s))
            results[(w, h)] = rs
    elif a.model:
        import torch
        import sample

        torch.set_num_threads(a.threads)
        tr, sch, id2label, dr = sample.load(a.model)
        if a.shift is not None:
            from diffusers import FlowMatchEulerDiscreteScheduler
            sch = FlowMatchEulerDiscreteScheduler.from_config(sch.config, shift=a.shift)
        sizes = [tuple(map(int, s.split("x"))) for s in a.sizes] if a.sizes else [tuple(s) for s in dr["sizes"]]
        steps = a.steps or dr["default_steps"]
        g = a.guidance if a.guidance is not None else dr["default_guidance"]
        print(f"steps {steps}, guidance {g}, shift {sch.config.shift}, {a.n} per label and size, seeds from {a.seed}")
        ids = sorted(id2label)
        for (w, h) in sizes:
            rs = []
            for k in range(a.n):
                seeds = [a.seed + k * len(ids) + c for c in ids]
                imgs = sample.generate(tr, sch, ids, seeds, h, w, steps, g, len(ids))
                for cid, img in zip(ids, imgs):
                    c, s, _ = classify(img)
                    rs.append((cid, c, s))
            results[(w, h)] = rs
    else:
        ap.error("--data or --model")
    worst = _report(results)
    print(f"worst size: {100 * worst:.1f}%")


if __name__ == "__main__":
    main()
