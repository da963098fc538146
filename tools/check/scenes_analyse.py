"""Scene analyser for tiny-scenes images (the checker's judge; numpy only, no learning). Builds on analyse.py
(tiny-shapes' analyser: background plane, components, colour, ring test, radial harmonics) and adds several
objects per image, sizes, relations and strict shape geometry.

One image in, a list of objects (colour, shape, size, centre, features) and the relation between two objects out:

  1. Background: analyse._fit_background (a plane per channel fitted to the border; scenes.py draws plain or
     linear-gradient backgrounds). Foreground: RGB distance > FG_DIST; 4-connected components of at least
     MIN_AREA pixels are objects (at most MAX_OBJECTS, largest first; more than that is reported).
  2. Per object, as analyse.classify: colour = nearest palette colour to the core mean; coverage alpha by
     projection on (colour - background); a ring has an enclosed background hole or an empty centre.
  3. Shape *class* from the radial signature's harmonics (analyse._harmonics: circle, 3-fold triangle, 4-fold
     square), then the shape must also have the shape's *geometry*, measured on the 8x-upsampled outline:
        fill     = area / (pi * Rmax^2), Rmax the farthest outline point from the centroid
                   (circle 1.0, square 2/pi = 0.64, triangle 3*sqrt(3)/(4*pi) = 0.41)
        solidity = area / convex-hull area (1 for any convex shape)
     within the ranges of GEOMETRY (calibrated on ground truth with --features, checked against distortions
     with --distort). A shape outside its range is reported as "bad-<shape>" and never counts as right: a
     pinched (concave) square has solidity < 0.93 and fill 0.41-0.57 (tiny-shapes' squares: 0.41-0.49), a
     triangle with corners rounded by a fifth of its circumradius has fill 0.53-0.65 (> 0.51), a filled ring has
     no hole and reads as a circle.
  4. Size: the outline's area against the shape's areas at scenes.SIZES (small / large; threshold at their
     geometric mean).
  5. Relation of object A to object B from the centroids: the dominant axis of B - A ("left" when A's x is
     smaller and |dx| > |dy|; y grows downward).

    python tools/check/scenes_analyse.py --data --n 300       # ground truth: every frame, both splits
    python tools/check/scenes_analyse.py --distort --n 200    # distorted renders must be rejected
    python tools/check/scenes_analyse.py --features --n 200   # feature ranges per shape (calibration)
    python tools/check/scenes_analyse.py a.png b.png          # analyse files
"""
from __future__ import annotations

import argparse
import math
import os
import sys

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "train"))
import analyse as A  # noqa: E402  (tools/check/analyse.py)
import scenes  # noqa: E402  (tools/train/scenes.py: palette, sizes and the ground-truth generator)
import shapes  # noqa: E402

FG_DIST = A.FG_DIST
MIN_AREA = 12  # pixels; the smallest object (small triangle) covers ~75
MAX_OBJECTS = 2
UP = A.UP
# shape: (fill min, fill max, solidity min); see --features (ground truth) and --distort
GEOMETRY = {
    "circle": (0.84, 1.10, 0.94),
    "ring": (0.84, 1.10, 0.94),  # of the outline with the hole filled
    "square": (0.60, 0.76, 0.93),
    "triangle": (0.38, 0.51, 0.92),
}


def _hull_area(pts: np.ndarray) -> float:
    """Area of the convex hull of 2-D points (Andrew's monotone chain)."""
    p = np.unique(pts, axis=0)
    if len(p) < 3:
        return 0.0
    p = p[np.lexsort((p[:, 1], p[:, 0]))]

    def half(seq):
        h = []
        for q in seq:
            while len(h) >= 2 and (h[-1][0] - h[-2][0]) * (q[1] - h[-2][1]) - \
                    (h[-1][1] - h[-2][1]) * (q[0] - h[-2][0]) <= 0:
                h.pop()
            h.append(tuple(q))
        return h

    hull = half(p)[:-1] + half(p[::-1])[:-1]
    x = np.array([q[0] for q in hull], dtype=np.float64)
    y = np.array([q[1] for q in hull], dtype=np.float64)
    return 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


def geometry(outline_alpha: np.ndarray) -> dict:
    """fill, solidity, area (pixels), centroid of the alpha >= 0.5 region (8x upsampled, holes filled)."""
    hi = A._upsample(outline_alpha, UP) >= 0.5
    ys, xs = np.nonzero(hi)
    if len(xs) < UP * UP:
        return {"fill": 0.0, "solidity": 0.0, "area": 0.0, "cx": 0.0, "cy": 0.0}
    cx, cy = xs.mean(), ys.mean()
    # farthest point: pixel corners, not centres (a sub-pixel upper bound of the true outline)
    rmax = float(np.sqrt(((np.abs(xs - cx) + 0.5) ** 2 + (np.abs(ys - cy) + 0.5) ** 2).max()))
    area = float(len(xs))
    # boundary pixels' corners for the hull
    edge = hi.copy()
    edge[1:-1, 1:-1] = hi[1:-1, 1:-1] & ~(hi[:-2, 1:-1] & hi[2:, 1:-1] & hi[1:-1, :-2] & hi[1:-1, 2:])
    ey, ex = np.nonzero(edge)
    corners = np.concatenate([np.stack([ex + dx, ey + dy], axis=1) for dx in (0, 1) for dy in (0, 1)])
    return {"fill": area / (math.pi * rmax * rmax), "solidity": area / max(_hull_area(corners), 1.0),
            "area": area / (UP * UP), "cx": (cx + 0.5) / UP, "cy": (cy + 0.5) / UP}


def expected_area(shape: str, size: str) -> float:
    r = scenes.SIZES[size]
    if shape in ("circle", "ring"):
        return math.pi * r * r
    R = 1.1 * r
    return 2 * R * R if shape == "square" else 3 * math.sqrt(3) / 4 * R * R


def _object(x: np.ndarray, bg: np.ndarray, diff: np.ndarray, dist: np.ndarray, comp: np.ndarray) -> dict:
    colour, mean, alpha = A.colour_and_coverage(x, bg, diff, dist, comp)
    solid = alpha >= 0.5
    holes = A._enclosed(solid)
    hole_parts = A._components(holes, eight=False)
    biggest = float(hole_parts[0].sum()) if hole_parts else 0.0
    hole_frac = biggest / max(float(solid.sum() + holes.sum()), 1.0)
    outline = np.where(holes, 1.0, alpha)
    h, rmean, hcx, hcy = A._harmonics(outline)
    centre = A._centre_fill(alpha, hcx, hcy, A.CENTRE_R * rmean)
    g = geometry(outline)
    if (hole_frac >= A.HOLE_FRAC and biggest >= 2) or centre < A.CENTRE_MAX:
        shape = "ring"
    elif max(h[k] for k in A.POLYGONS) < A.CIRCLE_MAX:
        shape = "circle"
    else:
        shape = A.POLYGONS[max(A.POLYGONS, key=lambda k: h[k])]
    lo, hi, smin = GEOMETRY[shape]
    if not (lo <= g["fill"] <= hi and g["solidity"] >= smin):
        shape = "bad-" + shape
    base = shape.removeprefix("bad-")
    a_small, a_large = expected_area(base, "small"), expected_area(base, "large")
    size = "small" if g["area"] < math.sqrt(a_small * a_large) else "large"
    return {"colour": colour, "shape": shape, "size": size, "cx": round(g["cx"], 2), "cy": round(g["cy"], 2),
            "fill": round(g["fill"], 3), "solidity": round(g["solidity"], 3), "area": round(g["area"], 1),
            "hole": round(hole_frac, 3), "centre": round(centre, 3), "h3": round(float(h[3]), 4),
            "h4": round(float(h[4]), 4), "mean": [round(float(c)) for c in mean]}


def analyse(img: np.ndarray) -> dict:
    """{"objects": [...] (largest first), "extra": number of components beyond MAX_OBJECTS}."""
    x = img.astype(np.float64)
    bg = A._fit_background(x)
    diff = x - bg
    dist = np.linalg.norm(diff, axis=2)
    comps = [c for c in A._components(dist > FG_DIST, eight=False) if c.sum() >= MIN_AREA]
    objs = [_object(x, bg, diff, dist, c) for c in comps[:MAX_OBJECTS]]
    return {"objects": objs, "extra": max(0, len(comps) - MAX_OBJECTS)}


def relation(a: dict, b: dict) -> str:
    """Relation of object a to object b ("left", "right", "above", "below") from their centroids."""
    dx, dy = b["cx"] - a["cx"], b["cy"] - a["cy"]
    if abs(dx) >= abs(dy):
        return "left" if dx > 0 else "right"
    return "above" if dy > 0 else "below"


def judge(img: np.ndarray, want: list[dict], rel: str | None, strict: bool = True) -> tuple[bool, str]:
    """Is the image right for the wanted objects (colour, shape; first object's relation to the second)?
    Returns (ok, reason). Every object's colour and shape must match, no other object may be present, and
    for two objects the relation must hold. Sizes are reported, not required (see check). strict=False accepts
    a shape class whose geometry is off ("bad-square" for a square): a diagnostic, never the verdict."""
    res = analyse(img)
    got = res["objects"]
    if not strict:
        got = [dict(g, shape=g["shape"].removeprefix("bad-")) for g in got]
    if res["extra"] or len(got) != len(want):
        return False, f"{len(got) + res['extra']} objects, want {len(want)}"
    # match wanted objects to found ones by (colour, shape); two objects: try both assignments
    orders = [[0]] if len(want) == 1 else [[0, 1], [1, 0]]
    for o in orders:
        pair = [got[i] for i in o]
        if all(p["colour"] == w["colour"] and p["shape"] == w["shape"] for p, w in zip(pair, want)):
            if rel is None or relation(pair[0], pair[1]) == rel:
                return True, "ok"
            return False, f"relation {relation(pair[0], pair[1])}, want {rel}"
    found = ", ".join(f"{g['colour']} {g['shape']}" for g in got)
    return False, f"found {found}"


def scene_truth(sc: dict) -> tuple[list[dict], str | None]:
    """The wanted objects (left / top first) and relation of a scenes.scene description."""
    objs = sc["objects"]
    if len(objs) == 1:
        return objs, None
    return objs, "left" if sc["axis"] == "horizontal" else "above"


# --- distortions: shapes the checker must reject -------------------------------------------------------------

def _draw_distorted(kind: str, W: int, H: int, o: dict) -> np.ndarray:
    """Coverage [H, W] of a distorted version of object o (4x supersampled as scenes._mask)."""
    s = shapes.SUPERSAMPLE
    img = Image.new("L", (W * s, H * s), 0)
    d = ImageDraw.Draw(img)
    cx, cy, r = o["cx"] * s, o["cy"] * s, o["r"] * s
    if kind == "pinched-square":  # corners where a square's are, side midpoints pulled in to 75%
        R = 1.1 * r
        pts = []
        for k in range(8):
            rad = R if k % 2 == 0 else R * math.cos(math.pi / 4) * 0.75
            ang = o["rot"] + math.pi / 4 * k
            pts.append((cx + rad * math.cos(ang), cy + rad * math.sin(ang)))
        d.polygon(pts, fill=255)
    elif kind == "rounded-triangle":  # the triangle shrunk by rho and grown back by a disc of radius rho = R / 5
        R, rho = 1.1 * r, 0.2 * 1.1 * r
        inner = shapes._polygon(cx, cy, [R - 2 * rho] * 3, o["rot"])
        d.polygon(inner, fill=255)
        for (px, py) in inner:
            d.ellipse([px - rho, py - rho, px + rho, py + rho], fill=255)
        for i in range(3):
            d.line([inner[i], inner[(i + 1) % 3]], fill=255, width=int(2 * rho))
    elif kind == "filled-ring":  # a ring whose hole is painted in its colour
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
    else:
        raise ValueError(kind)
    return np.asarray(img.reduce(s), dtype=np.float32) / 255.0


DISTORTIONS = {"pinched-square": "square", "rounded-triangle": "triangle", "filled-ring": "ring"}


def distorted(seed: int, W: int, H: int, index: int, kind: str) -> tuple[np.ndarray, dict]:
    """A training-distribution scene whose objects are all forced to the distortion's shape, drawn distorted."""
    sc = scenes.scene(seed, W, H, index)
    target = DISTORTIONS[kind]
    for o in sc["objects"]:
        o["shape"] = target
    if len(sc["objects"]) == 2 and sc["objects"][0]["colour"] == sc["objects"][1]["colour"]:
        sc["objects"][1]["colour"] = scenes.COLOUR_NAMES[(scenes.COLOUR_NAMES.index(sc["objects"][0]["colour"]) + 1)
                                                         % len(scenes.COLOUR_NAMES)]
    brng = np.random.Generator(np.random.PCG64(sc["bg_seed"]))
    out, _, _ = scenes._background(brng, W, H)
    out = out.copy()
    for o in sc["objects"]:
        a = _draw_distorted(kind, W, H, o)[..., None]
        fg = np.clip(np.array(scenes.COLOURS[o["colour"]], dtype=np.float32) + o["jitter"].astype(np.float32), 0, 255)
        out = out * (1.0 - a) + fg[None, None, :] * a
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), sc


def ground_truth(n: int, seed: int, split: str, verbose: bool = False) -> dict:
    """{frame: (fully right, size right, n)} on scenes renders of a seed not trained on."""
    out = {}
    for W, H in scenes.FRAMES:
        ok = size_ok = 0
        for i in range(n):
            img, sc = scenes.sample(seed, W, H, i, split)
            want, rel = scene_truth(sc)
            good, why = judge(img, want, rel)
            ok += good
            got = analyse(img)["objects"]
            if good and len(got) == len(want):
                size_ok += sorted(g["size"] for g in got) == sorted(w["size"] for w in want)
            if verbose and not good:
                print(f"  {W}x{H} #{i} {sc['caption']!r}: {why} {got}")
        out[(W, H)] = (ok, size_ok, n)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*")
    ap.add_argument("--data", action="store_true", help="accuracy on ground-truth renders, every frame and split")
    ap.add_argument("--distort", action="store_true", help="rejection rate on distorted renders")
    ap.add_argument("--features", action="store_true", help="fill / solidity ranges per shape on ground truth")
    ap.add_argument("--n", type=int, default=300, help="images per frame")
    ap.add_argument("--seed", type=int, default=4242, help="data seed (training used 0)")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    if a.data:
        print("| split | frame | fully right | size right |\n| --- | --- | --- | --- |")
        for split in ("train", "heldout"):
            for (W, H), (ok, sz, n) in ground_truth(a.n, a.seed, split, a.verbose).items():
                print(f"| {split} | {W}x{H} | {100 * ok / n:.1f}% ({ok}/{n}) | {100 * sz / n:.1f}% |")
    elif a.distort:
        print("| distortion | frame | rejected |\n| --- | --- | --- |")
        for kind, shape in DISTORTIONS.items():
            for W, H in scenes.FRAMES:
                rej = 0
                for i in range(a.n):
                    img, sc = distorted(a.seed, W, H, i, kind)
                    want, rel = scene_truth(sc)
                    good, why = judge(img, want, rel)
                    rej += not good
                    if a.verbose and good:
                        print(f"  accepted {kind} {W}x{H} #{i}: {analyse(img)['objects']}")
                print(f"| {kind} (prompted {shape}) | {W}x{H} | {100 * rej / a.n:.1f}% ({rej}/{a.n}) |")
    elif a.features:
        feats: dict[str, list] = {}
        for W, H in scenes.FRAMES:
            for i in range(a.n):
                img, sc = scenes.sample(a.seed, W, H, i)
                got = analyse(img)["objects"]
                want, _ = scene_truth(sc)
                if len(got) != len(want):
                    continue
                for g in got:
                    w = min(want, key=lambda o: (o["cx"] - g["cx"]) ** 2 + (o["cy"] - g["cy"]) ** 2)
                    feats.setdefault(f"{w['shape']} {w['size']}", []).append(g)
            for kind in DISTORTIONS:
                for i in range(a.n // 4):
                    img, _ = distorted(a.seed, W, H, i, kind)
                    for g in analyse(img)["objects"]:
                        feats.setdefault(kind, []).append(g)
        for k in sorted(feats):
            fs = feats[k]
            print(f"{k:22s} n {len(fs):4d}  " + "  ".join(
                f"{f} {np.percentile([g[f] for g in fs], 1):.3f}..{np.percentile([g[f] for g in fs], 99):.3f} "
                f"[{min(g[f] for g in fs):.3f}..{max(g[f] for g in fs):.3f}]" for f in ("fill", "solidity", "area")))
    else:
        for p in a.files:
            print(p, analyse(A.load_png(p)))


if __name__ == "__main__":
    main()
