"""Captioned scenes of one or two shapes: the training data of the shipped text-to-image model `tiny-scenes`.

Extends shapes.py (same palette, same four shapes, same anti-aliased 4x-supersampled drawing, same dark/muted
backgrounds) to scenes with captions. Every scene is a function of (seed, width, height, index, split) only:
its own numpy PCG64 stream seeded with SeedSequence([seed, width, height, index, SPLIT_SALT[split]]).

A scene:
  * 1 object (25%) or 2 objects (75%), each one of 6 colours x 4 shapes and one of two sizes (small: circumradius
    ~7 px, large: ~12 px, +-8%), rotation within +-11 degrees of upright (tiny-shapes' lesson: any rotation
    teaches the mean, a blob). Two objects never have the same colour *and* shape.
  * two objects stand in a relation: left of / right of (64x64 and 64x32 frames) or above / below (64x64 and
    32x64). Each sits in its half of the frame, the offset across the relation's axis is at most half the offset
    along it, so the relation is never ambiguous.
  * background: a named plain colour (35%: black, grey, navy, brown, dark green), an unnamed muted plain colour
    (25%) or a soft linear gradient (40%), all dark/muted as in shapes.py so objects always stand out.
  * frames 64x64, 64x32 and 32x64.

Captions come from a small grammar (see `caption`): optional determiners ("a", "the", none), optional sizes,
several phrasings of each relation ("to the left of", "left of", "on the left of"; "above", "over", "on top of"
...), the inverted order ("B right of A" for A left of B), the positional form ("A on the left, B on the right",
either order), and optional backgrounds ("on a grey background", ", grey background", "on a gradient background").

Held-out combinations: a two-object scene's *canonical key* is (colour, shape, axis, colour, shape) with the
first object the left (or top) one; "A left of B" and "B right of A" are the same key. HELD_OUT is a fixed 10%
of the 24 * 23 * 2 = 1104 keys; split "train" never draws them, split "heldout" draws only them.

    python tools/train/scenes.py --out scenes-preview.png     # a captioned preview grid
    python tools/train/scenes.py --captions 20                # print captions
"""
from __future__ import annotations

import argparse
import math

import numpy as np
from PIL import Image, ImageDraw

import shapes

SHAPES = shapes.SHAPES
COLOUR_NAMES = shapes.COLOUR_NAMES
COLOURS = shapes.COLOURS
SIZES = {"small": 7.0, "large": 12.0}  # circumradius in pixels (circle / ring); squares x1.1, triangles x1.1
SIZE_JITTER = 0.08
FRAMES = [(64, 64), (64, 32), (32, 64)]
BACKGROUNDS = {  # named plain backgrounds (dark / muted: HSV value <= 0.40, like shapes.py's)
    "black": (14, 14, 16),
    "grey": (96, 96, 100),
    "navy": (22, 30, 76),
    "brown": (84, 52, 30),
    "dark green": (22, 64, 34),
}
AXES = ["horizontal", "vertical"]
SPLIT_SALT = {"train": 101, "heldout": 202}
TURN = 0.06  # rotation within +-TURN*180 degrees of upright

# relation phrases: the relation of the first-named object to the second
REL_PHRASES = {
    "left": ["to the left of", "left of", "on the left of"],
    "right": ["to the right of", "right of", "on the right of"],
    "above": ["above", "over", "on top of"],
    "below": ["below", "under", "beneath"],
}
# positional form: "<obj> on the left, <obj> on the right"
POS_PHRASES = {
    "left": ["on the left", "at the left"],
    "right": ["on the right", "at the right"],
    "above": ["at the top", "on top"],
    "below": ["at the bottom", "below"],
}


def all_keys() -> list[tuple[str, str, str, str, str]]:
    """Every canonical two-object key (colour1, shape1, axis, colour2, shape2), object 1 left / top."""
    objs = [(c, s) for c in COLOUR_NAMES for s in SHAPES]
    return [(a[0], a[1], ax, b[0], b[1]) for ax in AXES for a in objs for b in objs if a != b]


def _held_out() -> frozenset:
    keys = all_keys()
    perm = np.random.Generator(np.random.PCG64(20261130)).permutation(len(keys))
    return frozenset(keys[i] for i in perm[: round(0.10 * len(keys))])


HELD_OUT = _held_out()
TRAIN_KEYS = [k for k in all_keys() if k not in HELD_OUT]
HELD_OUT_KEYS = [k for k in all_keys() if k in HELD_OUT]


def _choose(rng: np.random.Generator, seq):
    return seq[int(rng.integers(len(seq)))]


def _background(rng: np.random.Generator, width: int, height: int) -> tuple[np.ndarray, str | None, str]:
    """(float32 [H, W, 3] 0..255, name or None, kind "named" | "plain" | "gradient")."""
    u = rng.random()
    if u < 0.35:
        name = _choose(rng, list(BACKGROUNDS))
        c = np.array(BACKGROUNDS[name], dtype=np.float32) + rng.uniform(-6, 6, size=3).astype(np.float32)
        return np.broadcast_to(np.clip(c, 0, 255), (height, width, 3)).astype(np.float32), name, "named"
    # shapes.py's own backgrounds: 40% plain / 60% gradient of its draws; force the kind by retrying
    want_plain = u < 0.60
    while True:
        bg = shapes._background(rng, width, height)
        plain = bool(np.all(bg == bg[0, 0]))
        if plain == want_plain:
            return bg, None, "plain" if plain else "gradient"


def _layout(rng: np.random.Generator, width: int, height: int, radii: list[float], axis: str | None):
    """Centres (pixels) of 1 or 2 objects with effective radii `radii`; object 0 is left / top."""
    if len(radii) == 1:
        r = radii[0]
        cx = width / 2 + 0.6 * rng.uniform(-1, 1) * max(0.0, width / 2 - r - 1)
        cy = height / 2 + 0.6 * rng.uniform(-1, 1) * max(0.0, height / 2 - r - 1)
        return [(cx, cy)]
    along, across = (width, height) if axis == "horizontal" else (height, width)
    cells = []
    for i, r in enumerate(radii):
        a = along / 4 + i * along / 2 + rng.uniform(-1, 1) * max(0.0, along / 4 - r - 1)
        cells.append(a)
    gap = abs(cells[1] - cells[0])
    lim = [min(max(0.0, across / 2 - r - 1), 0.25 * gap) for r in radii]
    cross = [across / 2 + rng.uniform(-1, 1) * lim[i] for i in range(2)]
    if axis == "horizontal":
        return [(cells[i], cross[i]) for i in range(2)]
    return [(cross[i], cells[i]) for i in range(2)]


def effective_radius(shape: str, r: float) -> float:
    return r * 1.1 if shape in ("square", "triangle") else r


def _mask(shape: str, width: int, height: int, cx: float, cy: float, r: float, rot: float,
          inner: float) -> np.ndarray:
    """Coverage float32 [H, W] in 0..1 of one shape (drawn like shapes._mask, at SUPERSAMPLE x)."""
    s = shapes.SUPERSAMPLE
    img = Image.new("L", (width * s, height * s), 0)
    d = ImageDraw.Draw(img)
    cx, cy, r = cx * s, cy * s, r * s
    if shape == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
    elif shape == "ring":
        ri = r * inner
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
        d.ellipse([cx - ri, cy - ri, cx + ri, cy + ri], fill=0)
    elif shape == "square":
        d.polygon(shapes._polygon(cx, cy, [r * 1.1] * 4, rot), fill=255)
    elif shape == "triangle":
        d.polygon(shapes._polygon(cx, cy, [r * 1.1] * 3, rot), fill=255)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return np.asarray(img.reduce(s), dtype=np.float32) / 255.0


def scene(seed: int, width: int, height: int, index: int, split: str = "train") -> dict:
    """The scene description (no pixels): objects, relation, background; and its caption."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, width, height, index,
                                                                        SPLIT_SALT[split]])))
    n = 1 if (split == "train" and rng.random() < 0.25) else 2
    if n == 2:
        axis = "horizontal" if (width, height) == (64, 32) else "vertical" if (width, height) == (32, 64) \
            else _choose(rng, AXES)
        pool = [k for k in (TRAIN_KEYS if split == "train" else HELD_OUT_KEYS) if k[2] == axis]
        key = _choose(rng, pool)
        kinds = [(key[0], key[1]), (key[3], key[4])]
    else:
        axis, key = None, None
        kinds = [(_choose(rng, COLOUR_NAMES), _choose(rng, SHAPES))]
    objs = []
    for colour, shape in kinds:
        size = _choose(rng, list(SIZES))
        r = SIZES[size] * (1 + rng.uniform(-SIZE_JITTER, SIZE_JITTER))
        objs.append({"colour": colour, "shape": shape, "size": size, "r": r})
    centres = _layout(rng, width, height, [effective_radius(o["shape"], o["r"]) for o in objs], axis)
    for o, (cx, cy) in zip(objs, centres):
        o["cx"], o["cy"] = cx, cy
        o["rot"] = shapes.UPRIGHT[o["shape"]] + TURN * (rng.uniform(0.0, 2.0 * math.pi) - math.pi)
        o["inner"] = rng.uniform(0.50, 0.62)
        o["jitter"] = rng.uniform(-12.0, 12.0, size=3)
    bg_seed = int(rng.integers(2**31))
    sc = {"width": width, "height": height, "objects": objs, "axis": axis, "key": key, "bg_seed": bg_seed}
    sc["caption"] = caption(sc, rng)
    return sc


def draw(sc: dict) -> np.ndarray:
    """uint8 [H, W, 3] of a scene."""
    W, H = sc["width"], sc["height"]
    brng = np.random.Generator(np.random.PCG64(sc["bg_seed"]))
    out, name, kind = _background(brng, W, H)
    sc["background"], sc["background_kind"] = name, kind
    out = out.copy()
    for o in sc["objects"]:
        a = _mask(o["shape"], W, H, o["cx"], o["cy"], o["r"], o["rot"], o["inner"])[..., None]
        fg = np.clip(np.array(COLOURS[o["colour"]], dtype=np.float32) + o["jitter"].astype(np.float32), 0, 255)
        out = out * (1.0 - a) + fg[None, None, :] * a
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _object_phrase(rng: np.random.Generator, o: dict) -> str:
    det = _choose(rng, ["a ", "a ", "the ", ""])
    size = o["size"] + " " if rng.random() < 0.6 else ""
    if size and rng.random() < 0.3:
        size = {"small": "little ", "large": "big "}[o["size"]]
    return f"{det}{size}{o['colour']} {o['shape']}"


def caption(sc: dict, rng: np.random.Generator) -> str:
    """The grammar. Background names need the drawn background, so the background is decided here too."""
    brng = np.random.Generator(np.random.PCG64(sc["bg_seed"]))
    _, bg_name, bg_kind = _background(brng, sc["width"], sc["height"])
    objs = sc["objects"]
    if len(objs) == 1:
        body = _object_phrase(rng, objs[0])
    else:
        a, b = objs  # a is left / top
        first, second = ("left", "right") if sc["axis"] == "horizontal" else ("above", "below")
        form = rng.random()
        pa, pb = _object_phrase(rng, a), _object_phrase(rng, b)
        if form < 0.35:
            body = f"{pa} {_choose(rng, REL_PHRASES[first])} {pb}"
        elif form < 0.70:
            body = f"{pb} {_choose(rng, REL_PHRASES[second])} {pa}"
        else:
            parts = [f"{pa} {_choose(rng, POS_PHRASES[first])}", f"{pb} {_choose(rng, POS_PHRASES[second])}"]
            if rng.random() < 0.5:
                parts.reverse()
            body = _choose(rng, [", ", " and ", ", "]).join(parts)
    bg = ""
    if bg_name is not None and rng.random() < 0.6:
        bg = bg_name
    elif bg_kind == "gradient" and rng.random() < 0.3:
        bg = "gradient"
    if bg:
        v = rng.random()
        if v < 0.5:
            body = f"{body} on a {bg} background"
        elif v < 0.8:
            body = f"{body}, {bg} background"
        else:
            body = f"{_choose(rng, ['a ', ''])}{bg} background, {body}"
    return body


def sample(seed: int, width: int, height: int, index: int, split: str = "train") -> tuple[np.ndarray, dict]:
    sc = scene(seed, width, height, index, split)
    return draw(sc), sc


def batch(seed: int, width: int, height: int, indices, split: str = "train") -> tuple[np.ndarray, list[str]]:
    """(uint8 [B, H, W, 3], captions) for the given indices."""
    imgs, caps = [], []
    for i in indices:
        img, sc = sample(seed, width, height, int(i), split)
        imgs.append(img)
        caps.append(sc["caption"])
    return np.stack(imgs), caps


def corpus(n: int, seed: int = 0) -> list[str]:
    """n captions over every frame (the tokenizer's training text)."""
    out = []
    for i in range(n):
        W, H = FRAMES[i % len(FRAMES)]
        out.append(scene(seed, W, H, i, "train")["caption"])
    return out


def wrap(text: str, width: int) -> list[str]:
    """Lines of at most `width` characters (words kept whole), for captions under images."""
    lines, cur = [], ""
    for w in text.split():
        if cur and len(cur) + len(w) + 1 > width:
            lines.append(cur)
            cur = w
        else:
            cur = (cur + " " + w).strip()
    return lines + [cur]


def preview(seed: int, n: int, scale: int, split: str) -> Image.Image:
    from PIL import ImageFont

    font = ImageFont.load_default()
    cw, ch, cap_h = 64 * scale, 64 * scale, 36
    cols = 6
    rows = (n + cols - 1) // cols
    grid = Image.new("RGB", (cols * (cw + 4) + 4, rows * (ch + cap_h + 4) + 4), (40, 40, 40))
    dr = ImageDraw.Draw(grid)
    for k in range(n):
        W, H = FRAMES[k % len(FRAMES)]
        img, sc = sample(seed, W, H, k, split)
        tile = Image.fromarray(img).resize((W * scale, H * scale), Image.NEAREST)
        x, y = 4 + (k % cols) * (cw + 4), 4 + (k // cols) * (ch + cap_h + 4)
        grid.paste(tile, (x, y))
        for j, line in enumerate(wrap(sc["caption"], 22)[:3]):
            dr.text((x, y + ch + 1 + 11 * j), line, fill=(230, 230, 230), font=font)
    return grid


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=24)
    ap.add_argument("--scale", type=int, default=2)
    ap.add_argument("--split", choices=list(SPLIT_SALT), default="train")
    ap.add_argument("--out", default="scenes-preview.png")
    ap.add_argument("--captions", type=int, default=0, help="print N captions and exit")
    a = ap.parse_args()
    if a.captions:
        for c in corpus(a.captions, a.seed):
            print(c)
        return
    preview(a.seed, a.n, a.scale, a.split).save(a.out)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
