"""Deterministic colour + shape analyser for tiny-shapes images (the checker's judge; numpy only, no learning).

One image in, ("<colour>", "<shape>", features) out:

  1. Background: a plane a + b*x + c*y per channel fitted (least squares, twice, dropping outliers) to the
     2-pixel border. shapes.py draws a plain or linear-gradient background, which a plane fits exactly.
  2. Foreground: pixels further than FG_DIST (RGB) from the background plane; the largest 8-connected
     component. Foreground colour = mean of its core (pixels at least CORE_FRAC of the strongest distance).
  3. Colour: the nearest palette colour of shapes.py (RGB distance) to that mean.
  4. Coverage alpha per pixel = projection of (pixel - background) on (colour - background), the inverse of
     the anti-aliased blend shapes.py draws. The shape is alpha >= 0.5.
  5. Ring: the largest region of background enclosed by the shape (not 4-reachable from the border) covers
     >= HOLE_FRAC of the shape's outer area (scattered pinholes of a noisy image do not add up), or the disc
     of radius CENTRE_R * (mean outline radius) around the outline's centroid is mostly empty (mean coverage
     < CENTRE_MAX): a ring broken by a gap is still a ring.
  6. Otherwise: alpha is upsampled UPx bilinearly, thresholded at 0.5, and its radial signature r(theta)
     (from the area of NBINS angular sectors around the centroid, r = sqrt(2 * sector area / dtheta)) is
     expanded in Fourier harmonics h_k = |R_k| / R_0 (rotation invariant). A circle has no harmonics; a
     triangle's strongest low one is 3, a square's 4, a star's 5. Only the polygons of the label set
     (shapes.SHAPES) compete: circle if their largest harmonic < CIRCLE_MAX, else the polygon whose
     harmonic is strongest.

    python tools/check/analyse.py --data --n 600      # accuracy on shapes.py ground truth, every served size
    python tools/check/analyse.py --features --n 60   # per-class feature ranges (for calibration)
    python tools/check/analyse.py img1.png img2.png   # classify files
"""
from __future__ import annotations

import argparse
import os
import sys
from collections import deque

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "train"))
import shapes  # noqa: E402  (tools/train/shapes.py: the palette and the ground-truth generator)

SERVED_SIZES = [(32, 32), (64, 64), (64, 32)]
# polygon shapes of the label set and the harmonic that marks each
POLYGONS = {k: name for k, name in ((3, "triangle"), (4, "square"), (5, "star")) if name in shapes.SHAPES}
PALETTE_NAMES = list(shapes.COLOURS)
PALETTE = np.array([shapes.COLOURS[n] for n in PALETTE_NAMES], dtype=np.float64)

FG_DIST = 45.0  # RGB distance from the background plane that counts as foreground (bg/fg gap is >= ~100)
CORE_FRAC = 0.85  # core pixels: distance >= CORE_FRAC * (95th percentile distance in the component)
HOLE_FRAC = 0.10  # largest enclosed background region / outer area for a ring (a ring's is 0.24..0.39)
CENTRE_R = 0.35  # ring test 2: radius of the central disc, in units of the outline's mean radius
CENTRE_MAX = 0.5  # ... whose mean coverage is below this for a ring (a ring's inner radius is 0.50..0.62 r)
UP = 8  # upsampling factor for the radial signature
NBINS = 90  # angular sectors
CIRCLE_MAX = 0.03  # largest of h3, h4, h5 for a circle: circles <= 0.005, squares >= 0.065 (see --features)


def _fit_background(img: np.ndarray) -> np.ndarray:
    """Per-pixel background estimate [H, W, 3]: a plane per channel fitted to the 2-pixel border."""
    H, W, _ = img.shape
    ys, xs = np.mgrid[0:H, 0:W]
    border = np.zeros((H, W), dtype=bool)
    border[:2, :] = border[-2:, :] = border[:, :2] = border[:, -2:] = True
    A = np.stack([np.ones(H * W), xs.ravel() / W - 0.5, ys.ravel() / H - 0.5], axis=1)
    pix = img.reshape(-1, 3)
    keep = border.ravel().copy()
    coef = np.zeros((3, 3))
    for _ in range(3):
        coef, *_ = np.linalg.lstsq(A[keep], pix[keep], rcond=None)
        res = np.linalg.norm(pix - A @ coef, axis=1)
        # drop border pixels far off the plane (a shape touching the border), keep at least half
        cut = max(12.0, 3.0 * float(np.median(res[border.ravel()])))
        new = border.ravel() & (res <= cut)
        if new.sum() < 0.5 * border.sum():
            break
        keep = new
    return (A @ coef).reshape(H, W, 3)


def _components(mask: np.ndarray, eight: bool) -> list[np.ndarray]:
    """Connected components of a boolean mask, largest first, as boolean masks."""
    H, W = mask.shape
    label = np.full((H, W), -1, dtype=np.int32)
    nbrs = [(1, 0), (-1, 0), (0, 1), (0, -1)]
    if eight:
        nbrs += [(1, 1), (1, -1), (-1, 1), (-1, -1)]
    sizes = []
    for y0, x0 in zip(*np.nonzero(mask)):
        if label[y0, x0] >= 0:
            continue
        k = len(sizes)
        label[y0, x0] = k
        q, n = deque([(y0, x0)]), 0
        while q:
            y, x = q.popleft()
            n += 1
            for dy, dx in nbrs:
                ny, nx = y + dy, x + dx
                if 0 <= ny < H and 0 <= nx < W and mask[ny, nx] and label[ny, nx] < 0:
                    label[ny, nx] = k
                    q.append((ny, nx))
        sizes.append(n)
    order = sorted(range(len(sizes)), key=lambda k: -sizes[k])
    return [label == k for k in order]


def _enclosed(shape: np.ndarray) -> np.ndarray:
    """Non-shape pixels not 4-reachable from the image border (the holes)."""
    free = ~shape
    reach = np.zeros_like(shape)
    reach[0, :] = free[0, :]
    reach[-1, :] = free[-1, :]
    reach[:, 0] |= free[:, 0]
    reach[:, -1] |= free[:, -1]
    while True:  # flood fill by repeated 4-neighbour dilation inside `free`
        grown = reach.copy()
        grown[1:, :] |= reach[:-1, :]
        grown[:-1, :] |= reach[1:, :]
        grown[:, 1:] |= reach[:, :-1]
        grown[:, :-1] |= reach[:, 1:]
        grown &= free
        if (grown == reach).all():
            return free & ~reach
        reach = grown


def _upsample(a: np.ndarray, f: int) -> np.ndarray:
    """Bilinear upsampling by an integer factor, sample points at pixel centres (edges clamped)."""
    H, W = a.shape

    def coords(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        c = (np.arange(n * f) + 0.5) / f - 0.5
        c = np.clip(c, 0, n - 1)
        i0 = np.floor(c).astype(int)
        i1 = np.minimum(i0 + 1, n - 1)
        return i0, i1, c - i0

    y0, y1, wy = coords(H)
    x0, x1, wx = coords(W)
    top = a[y0][:, x0] * (1 - wx) + a[y0][:, x1] * wx
    bot = a[y1][:, x0] * (1 - wx) + a[y1][:, x1] * wx
    return top * (1 - wy[:, None]) + bot * wy[:, None]


def _harmonics(alpha: np.ndarray) -> tuple[np.ndarray, float, float, float]:
    """(h[0..8] = |R_k| / R_0 of the radial signature, mean radius, centroid x, centroid y; pixels) of the
    alpha >= 0.5 region."""
    hi = _upsample(alpha, UP) >= 0.5
    ys, xs = np.nonzero(hi)
    if len(xs) < UP * UP:
        return np.zeros(9), 0.0, 0.0, 0.0
    cx, cy = xs.mean(), ys.mean()
    ang = np.arctan2(ys - cy, xs - cx)
    b = np.floor((ang + np.pi) / (2 * np.pi) * NBINS).astype(int) % NBINS
    area = np.bincount(b, minlength=NBINS).astype(np.float64)  # in (1/UP)^2 pixel units
    r = np.sqrt(2.0 * area / (2 * np.pi / NBINS)) / UP
    R = np.abs(np.fft.rfft(r))
    return R[:9] / max(R[0], 1e-9), float(r.mean()), (cx + 0.5) / UP, (cy + 0.5) / UP


def _centre_fill(alpha: np.ndarray, cx: float, cy: float, radius: float) -> float:
    """Mean coverage (upsampled alpha) within `radius` of (cx, cy); pixel coordinates, centres at +0.5."""
    hi = _upsample(alpha, UP)
    H, W = hi.shape
    ys, xs = np.mgrid[0:H, 0:W]
    inside = ((xs + 0.5) / UP - cx) ** 2 + ((ys + 0.5) / UP - cy) ** 2 <= radius * radius
    return float(hi[inside].mean()) if inside.any() else 1.0


def colour_and_coverage(x: np.ndarray, bg: np.ndarray, diff: np.ndarray, dist: np.ndarray,
                        comp: np.ndarray) -> tuple[str, np.ndarray, np.ndarray]:
    """(palette colour, mean core colour [3], coverage alpha [H, W]) of one foreground component: steps 2-4."""
    d = dist[comp]
    core = comp & (dist >= CORE_FRAC * np.percentile(d, 95))
    mean = x[core].mean(axis=0)
    colour = PALETTE_NAMES[int(np.argmin(((PALETTE - mean) ** 2).sum(axis=1)))]

    # coverage, restricted to the component grown by one pixel (other blobs do not count)
    near = comp.copy()
    near[1:, :] |= comp[:-1, :]
    near[:-1, :] |= comp[1:, :]
    near[:, 1:] |= comp[:, :-1]
    near[:, :-1] |= comp[:, 1:]
    v = mean[None, None, :] - bg
    alpha = np.clip((diff * v).sum(axis=2) / np.maximum((v * v).sum(axis=2), 1.0), 0.0, 1.0) * near
    return colour, mean, alpha


def classify(img: np.ndarray) -> tuple[str, str, dict]:
    """(colour, shape, features) of a uint8 [H, W, 3] image; ('none', 'none', ...) when no shape is found."""
    x = img.astype(np.float64)
    H, W, _ = x.shape
    bg = _fit_background(x)
    diff = x - bg
    dist = np.linalg.norm(diff, axis=2)
    comps = _components(dist > FG_DIST, eight=True)
    if not comps or comps[0].sum() < 4:
        return "none", "none", {"area": 0}
    colour, mean, alpha = colour_and_coverage(x, bg, diff, dist, comps[0])
    solid = alpha >= 0.5
    holes = _enclosed(solid)
    hole_parts = _components(holes, eight=False)
    biggest = float(hole_parts[0].sum()) if hole_parts else 0.0
    hole_frac = biggest / max(float(solid.sum() + holes.sum()), 1.0)
    h, rmean, cx, cy = _harmonics(np.where(holes, 1.0, alpha))  # the outline (holes filled)
    centre = _centre_fill(alpha, cx, cy, CENTRE_R * rmean)
    feats = {"area": float(alpha.sum()), "hole": round(hole_frac, 3), "centre": round(centre, 3), "r": round(rmean, 2),
             "h3": round(float(h[3]), 4), "h4": round(float(h[4]), 4), "h5": round(float(h[5]), 4),
             "mean": [round(float(c)) for c in mean]}
    if (hole_frac >= HOLE_FRAC and biggest >= 2) or centre < CENTRE_MAX:
        shape = "ring"
    elif max(h[k] for k in POLYGONS) < CIRCLE_MAX:
        shape = "circle"
    else:
        shape = POLYGONS[max(POLYGONS, key=lambda k: h[k])]
    return colour, shape, feats


def load_png(path: str) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


def ground_truth_accuracy(n: int, seed: int = 12345, sizes=SERVED_SIZES, verbose: bool = False,
                          noise: float = 0.0) -> dict:
    """{(w, h): (colour ok, shape ok, both ok, n)} on shapes.render images 0..n-1 of a seed not trained on
    (plus Gaussian pixel noise of std `noise`, a robustness probe)."""
    out = {}
    for (w, hgt) in sizes:
        c_ok = s_ok = b_ok = 0
        rng = np.random.default_rng([seed, w, hgt])
        for i in range(n):
            img, cid = shapes.render(seed, w, hgt, i)
            if noise > 0:
                img = np.clip(np.rint(img + rng.normal(0.0, noise, img.shape)), 0, 255).astype(np.uint8)
            col, shp, f = classify(img)
            tc, ts = shapes.label_parts(cid)
            c_ok += col == tc
            s_ok += shp == ts
            b_ok += col == tc and shp == ts
            if verbose and (col != tc or shp != ts):
                print(f"  {w}x{hgt} #{i} {tc} {ts} -> {col} {shp} {f}")
        out[(w, hgt)] = (c_ok, s_ok, b_ok, n)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*", help="PNG files to classify")
    ap.add_argument("--data", action="store_true", help="accuracy on shapes.py ground truth at every served size")
    ap.add_argument("--features", action="store_true", help="per-class feature ranges on ground truth")
    ap.add_argument("--n", type=int, default=600, help="ground-truth images per size")
    ap.add_argument("--seed", type=int, default=12345, help="ground-truth data seed (training used 0)")
    ap.add_argument("--noise", type=float, default=0.0, help="--data: add Gaussian pixel noise of this std")
    ap.add_argument("-v", "--verbose", action="store_true", help="--data: print every miss")
    a = ap.parse_args()
    if a.data:
        res = ground_truth_accuracy(a.n, a.seed, verbose=a.verbose, noise=a.noise)
        tot = [0, 0, 0, 0]
        print("| size | colour | shape | both |\n| --- | --- | --- | --- |")
        for (w, h), (c, s, b, n) in res.items():
            print(f"| {w}x{h} | {100 * c / n:.1f}% | {100 * s / n:.1f}% | {100 * b / n:.1f}% ({b}/{n}) |")
            tot = [t + v for t, v in zip(tot, (c, s, b, n))]
        print(f"| all | {100 * tot[0] / tot[3]:.1f}% | {100 * tot[1] / tot[3]:.1f}% | "
              f"{100 * tot[2] / tot[3]:.1f}% ({tot[2]}/{tot[3]}) |")
    elif a.features:
        for (w, h) in SERVED_SIZES:
            print(f"{w}x{h}")
            feats: dict[str, list] = {s: [] for s in shapes.SHAPES}
            for i in range(a.n):
                img, cid = shapes.render(a.seed, w, h, i)
                _, _, f = classify(img)
                feats[shapes.label_parts(cid)[1]].append(f)
            for s, fs in feats.items():
                cols = {k: [f[k] for f in fs if k in f] for k in ("hole", "centre", "h3", "h4", "h5", "r")}
                print(f"  {s:9s} " + "  ".join(f"{k} {min(v):.3f}..{max(v):.3f}" for k, v in cols.items() if v))
    else:
        for p in a.files:
            c, s, f = classify(load_png(p))
            print(f"{p}: {c} {s} {f}")


if __name__ == "__main__":
    main()
