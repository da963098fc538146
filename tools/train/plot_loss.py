"""Draw the training loss curve (from train.py's loss CSV) as a PNG with pillow only.

Grey: every step's loss; coloured: moving average (window --window steps of that size) per training size.
Log-scale y axis.

    python tools/train/plot_loss.py --csv models/tiny-shapes/train_loss.csv --out models/tiny-shapes/loss.png
"""
from __future__ import annotations

import argparse
import csv
import math

from PIL import Image, ImageDraw

PALETTE = [(230, 80, 60), (240, 190, 40), (70, 180, 90), (70, 130, 230), (190, 90, 220), (200, 200, 200)]


def moving_average(v: list[float], n: int) -> list[float]:
    out, acc = [], 0.0
    for i, x in enumerate(v):
        acc += x
        if i >= n:
            acc -= v[i - n]
        out.append(acc / min(i + 1, n))
    return out


def plot(rows: list[dict], out: str, window: int, title: str) -> None:
    W, H = 900, 520
    L, R, T, B = 70, 20, 40, 50
    img = Image.new("RGB", (W, H), (255, 255, 255))
    d = ImageDraw.Draw(img)
    steps = [int(r["step"]) for r in rows]
    losses = [max(float(r["loss"]), 1e-6) for r in rows]
    smax = max(steps)
    lo = 10 ** math.floor(math.log10(min(moving_average(losses, window))) - 0.0)
    hi = 10 ** math.ceil(math.log10(max(losses)))

    def X(s: float) -> float:
        return L + (W - L - R) * s / smax

    def Y(v: float) -> float:
        v = min(max(v, lo), hi)
        return T + (H - T - B) * (math.log10(hi) - math.log10(v)) / (math.log10(hi) - math.log10(lo))

    # grid + ticks
    e = math.floor(math.log10(lo))
    while 10 ** e <= hi:
        for m in (1, 2, 5):
            v = m * 10 ** e
            if lo <= v <= hi:
                y = Y(v)
                d.line([(L, y), (W - R, y)], fill=(225, 225, 225))
                d.text((8, y - 6), f"{v:g}", fill=(60, 60, 60))
        e += 1
    raw = smax / 6
    tick = min((m * 10 ** e for e in range(0, 7) for m in (1, 2, 5) if m * 10 ** e >= raw), default=raw)
    s = 0
    while s <= smax:
        d.line([(X(s), T), (X(s), H - B)], fill=(235, 235, 235))
        d.text((X(s) - 12, H - B + 6), f"{int(s)}", fill=(60, 60, 60))
        s += tick
    d.rectangle([L, T, W - R, H - B], outline=(0, 0, 0))
    d.text((W // 2 - 20, H - 22), "step", fill=(0, 0, 0))
    d.text((L, 12), title, fill=(0, 0, 0))
    for s, v in zip(steps, losses):
        d.point((X(s), Y(v)), fill=(160, 160, 160))
    sizes = sorted({(int(r["width"]), int(r["height"])) for r in rows}, key=lambda t: (t[0] * t[1], t))
    for i, (w, h) in enumerate(sizes):
        sel = [(int(r["step"]), max(float(r["loss"]), 1e-6)) for r in rows
               if int(r["width"]) == w and int(r["height"]) == h]
        ma = moving_average([v for _, v in sel], max(1, window // len(sizes)))
        col = PALETTE[i % len(PALETTE)]
        d.line([(X(s), Y(v)) for (s, _), v in zip(sel, ma)], fill=col, width=2)
        d.rectangle([W - R - 130, T + 10 + 16 * i, W - R - 118, T + 20 + 16 * i], fill=col)
        d.text((W - R - 112, T + 8 + 16 * i), f"{w}x{h}", fill=(0, 0, 0))
    img.save(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--csv", default="models/tiny-shapes/train_loss.csv")
    ap.add_argument("--out", default="models/tiny-shapes/loss.png")
    ap.add_argument("--window", type=int, default=250, help="moving-average window in steps")
    ap.add_argument("--title", default="tiny-shapes training loss (flow matching MSE, log scale)")
    a = ap.parse_args()
    with open(a.csv) as f:
        rows = list(csv.DictReader(f))
    plot(rows, a.out, a.window, a.title)
    print(f"wrote {a.out} ({len(rows)} steps)")


if __name__ == "__main__":
    main()
