"""The tiny-shapes quality checker (issue 4 item 4): Swift engine images, judged by tools/check/analyse.py.

For every served size of the model (darkroom.json `sizes`) and every label, `darkroom generate` makes N images
(seeds 0..N-1: `--seed 0 --count N`, image i uses seed i) at the model's default steps and guidance (no
--steps / --guidance flags: the engine applies the defaults itself; the PNG `parameters` text is read back to
report them). Each image is classified; the table gives colour, shape and both-right rates per size.

Then, for COMPARE images per size (spread over labels and seeds), the same image is sampled by diffusers
(tools/train/sample.py: FlowMatchEulerDiscreteScheduler + CFG, noise `torch.randn((1,3,H,W),
generator=torch.Generator().manual_seed(seed))`, one generator per image) and the max |Swift - diffusers|
pixel difference is reported in 1/255 units (target <= 2).

Usually run through tools/check/run.sh, which builds darkroom first. Exit status 0 when both targets are
met (>= 90% both-right per size, <= 2/255), 1 when not (results are written either way), other on errors.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools", "train"))  # shapes.py, sample.py
sys.path.insert(0, HERE)  # tools/check/analyse.py
import analyse  # noqa: E402  (tools/check/analyse.py)

TARGET_MATCH = 0.90
TARGET_DIFF = 2
GT_MIN = 0.98  # the analyser must score at least this on shapes.py ground truth, or the check stops


def png_params(path: str) -> str:
    from PIL import Image

    with Image.open(path) as im:
        return str(im.info.get("parameters", ""))


def generate(darkroom: str, model: str, label: str, n: int, w: int, h: int, out_dir: str,
             extra: list[str] = ()) -> list[str]:
    """N images of one label at one size with the Swift engine; returns their paths (seed i -> path i)."""
    stem = os.path.join(out_dir, f"{w}x{h}-{label.replace(' ', '_')}.png")
    cmd = [darkroom, "generate", "--model", model, "--prompt", label, "--seed", "0", "--count", str(n),
           "--width", str(w), "--height", str(h), "-o", stem, *extra]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"darkroom generate failed ({' '.join(cmd)}):\n{r.stderr.strip()[-2000:]}")
    paths = [ln.strip() for ln in r.stdout.splitlines() if ln.strip().endswith(".png")]
    if len(paths) != n:
        raise SystemExit(f"darkroom generate printed {len(paths)} paths, expected {n}: {r.stdout!r}")
    return paths


def diffusers_images(model: str, pairs: list[tuple[int, int]], w: int, h: int, steps: int, guidance: float,
                     cache: dict) -> np.ndarray:
    """uint8 [B, H, W, 3] for (class id, seed) pairs, with the diffusers scheduler and tools/train/sample.py."""
    import torch
    import sample

    if "m" not in cache:
        from diffusers.utils import logging as dlog

        dlog.set_verbosity_error()  # no "accelerate not found" advice
        torch.set_num_threads(1)
        cache["m"] = sample.load(model)
    tr, sch, id2label, _ = cache["m"]
    ids = [c for c, _ in pairs]
    seeds = [s for _, s in pairs]
    return sample.generate(tr, sch, ids, seeds, h, w, steps, guidance, len(id2label))


def sheet(rows: list[tuple[str, list[np.ndarray], list[str]]], path: str, scale: int = 2) -> None:
    """A contact sheet: one row per (size, label), the generated images with the analyser's verdict marks."""
    from PIL import Image, ImageDraw

    if not rows:
        return
    left, pad = 150, 3
    tw = max(img.shape[1] for _, imgs, _ in rows for img in imgs) * scale
    th = max(img.shape[0] for _, imgs, _ in rows for img in imgs) * scale
    ncol = max(len(imgs) for _, imgs, _ in rows)
    G = Image.new("RGB", (left + ncol * (tw + pad), len(rows) * (th + pad)), (40, 40, 40))
    d = ImageDraw.Draw(G)
    for r, (name, imgs, verdicts) in enumerate(rows):
        y = r * (th + pad)
        d.text((4, y + 2), name, fill=(230, 230, 230))
        for k, (img, v) in enumerate(zip(imgs, verdicts)):
            x = left + k * (tw + pad)
            G.paste(Image.fromarray(img).resize((img.shape[1] * scale, img.shape[0] * scale), Image.NEAREST), (x, y))
            if v:
                d.text((x + 1, y + th - 11), v, fill=(255, 80, 80))
    G.save(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "tiny-shapes"))
    ap.add_argument("--darkroom", default=os.path.join(ROOT, ".build-check", "debug", "darkroom"))
    ap.add_argument("--n", type=int, default=8, help="images per label and size (seeds 0..N-1)")
    ap.add_argument("--compare", type=int, default=4, help="images per size compared with diffusers (0: none)")
    ap.add_argument("--sizes", nargs="*", help="WxH (default: the model's served sizes)")
    ap.add_argument("--gt", type=int, default=300, help="ground-truth images per size to score the analyser")
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "darkroom-check"),
                    help="folder for the generated PNGs and sheet.png")
    ap.add_argument("--results", default=os.path.join(HERE, "results.md"))
    ap.add_argument("--cache-threshold", type=float, default=0,
                    help="generate with step caching (`darkroom generate --cache-threshold T`); 0: off")
    ap.add_argument("--command", default="tools/check/run.sh", help="the command line written into the results")
    a = ap.parse_args()
    if not 1 <= a.n <= 16:
        ap.error("--n must be 1..16 (one darkroom call per label and size)")
    t_start = time.time()

    with open(os.path.join(a.model, "model_index.json")) as f:
        id2label = {int(k): v for k, v in json.load(f)["id2label"].items()}
    with open(os.path.join(a.model, "darkroom.json")) as f:
        dr = json.load(f)
    sizes = [tuple(int(v) for v in s.lower().split("x")) for s in a.sizes] if a.sizes else [tuple(s) for s in dr["sizes"]]
    steps, guidance = int(dr["default_steps"]), float(dr["default_guidance"])
    trained = dr.get("training", {}).get("steps", "?")
    os.makedirs(a.work, exist_ok=True)

    print(f"model {a.model} (trained {trained} steps), defaults {steps} steps, guidance {guidance}", flush=True)
    print(f"analyser on shapes.py ground truth ({a.gt} per size, seed 12345) ...", flush=True)
    gt = analyse.ground_truth_accuracy(a.gt, sizes=sizes) if a.gt > 0 else {}
    gt_both = sum(v[2] for v in gt.values())
    gt_n = sum(v[3] for v in gt.values())
    if gt_n:
        print(f"  analyser ground-truth accuracy {100 * gt_both / gt_n:.2f}% ({gt_both}/{gt_n})", flush=True)
        if gt_both < GT_MIN * gt_n:
            raise SystemExit(f"the analyser scores below {100 * GT_MIN:.0f}% on ground truth: fix it before judging a model")

    table, misses, seen_params, sheet_rows = [], {}, set(), []
    cache: dict = {}
    ids = sorted(id2label)
    for si, (w, h) in enumerate(sizes):
        t0 = time.time()
        c_ok = s_ok = b_ok = 0
        swift: dict[tuple[int, int], np.ndarray] = {}
        for cid in ids:
            label = id2label[cid]
            paths = generate(a.darkroom, a.model, label, a.n, w, h, a.work,
                             ["--cache-threshold", f"{a.cache_threshold:g}"] if a.cache_threshold > 0 else [])
            txt = png_params(paths[0])
            seen_params.add(", ".join(p for p in txt.splitlines()[-1].split(", ")
                                      if p.split(":")[0] in ("Steps", "Sampler", "CFG scale", "Cache threshold")))
            tc, ts = label.split(" ", 1)
            verdicts, imgs = [], []
            for seed, p in enumerate(paths):
                img = analyse.load_png(p)
                swift[(cid, seed)] = img
                col, shp, _ = analyse.classify(img)
                c_ok += col == tc
                s_ok += shp == ts
                b_ok += col == tc and shp == ts
                ok = col == tc and shp == ts
                verdicts.append("" if ok else f"{col} {shp}")
                imgs.append(img)
                if not ok:
                    k = f"{label} -> {col} {shp}"
                    misses.setdefault((w, h), {}).setdefault(k, 0)
                    misses[(w, h)][k] += 1
            sheet_rows.append((f"{w}x{h} {label}", imgs, verdicts))
        n = len(ids) * a.n
        t_gen = time.time() - t0

        diff = None
        if a.compare > 0:
            # spread over colours, shapes and seeds: label (7k + 3*size index) mod labels, seed k mod N
            pairs = [((7 * k + 3 * si) % len(ids), k % a.n) for k in range(a.compare)]
            ref = diffusers_images(a.model, pairs, w, h, steps, guidance, cache)
            diff = max(int(np.abs(swift[p].astype(np.int32) - r.astype(np.int32)).max()) for p, r in zip(pairs, ref))
        table.append((w, h, n, c_ok, s_ok, b_ok, diff, len(pairs) if a.compare > 0 else 0))
        print(f"{w}x{h}: colour {100 * c_ok / n:.1f}%  shape {100 * s_ok / n:.1f}%  both {100 * b_ok / n:.1f}% "
              f"({b_ok}/{n})  max|swift-diffusers| {diff}/255  [{t_gen:.0f} s generate, "
              f"{time.time() - t0 - t_gen:.0f} s compare]", flush=True)

    sheet(sheet_rows, os.path.join(a.work, "sheet.png"))
    wall = time.time() - t_start
    worst = min(b / n for (_, _, n, _, _, b, _, _) in table)
    worst_diff = max((d for *_, d, _ in table if d is not None), default=None)
    shown_model = os.path.relpath(a.model, ROOT) if os.path.abspath(a.model).startswith(ROOT + os.sep) else a.model
    lines = [
        "# tiny-shapes checker results",
        "",
        f"Command: `{a.command}` ({wall / 60:.1f} min on this machine). Model: `{shown_model}` "
        f"(trained {trained} steps). Swift engine: `darkroom generate --model M --prompt LABEL --seed 0 --count {a.n} "
        f"--width W --height H` per label and size, i.e. seeds 0..{a.n - 1}, {len(ids)} labels; engine defaults "
        f"as read back from the PNGs: {'; '.join(sorted(seen_params))}.",
        "",
        "| size (W×H) | images | colour | shape | both (colour and shape) | max \\|Swift − diffusers\\| |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for (w, h, n, c, s, b, d, nc) in table:
        dtxt = f"{d}/255 ({nc} images)" if d is not None else "—"
        lines.append(f"| {w}×{h} | {n} | {100 * c / n:.1f}% | {100 * s / n:.1f}% | **{100 * b / n:.1f}%** ({b}/{n}) "
                     f"| {dtxt} |")
    lines += [
        "",
        f"Targets: ≥ {100 * TARGET_MATCH:.0f}% both per size — {'met' if worst >= TARGET_MATCH else 'NOT met'} "
        f"(worst size {100 * worst:.1f}%); Swift vs diffusers ≤ {TARGET_DIFF}/255 — "
        + ("not measured" if worst_diff is None else ('met' if worst_diff <= TARGET_DIFF else 'NOT met')
           + f" (max {worst_diff}/255)") + ".",
        "",
        f"Analyser (`tools/check/analyse.py`, deterministic, numpy only) on ground truth from `tools/train/shapes.py` "
        f"(seed 12345, not the training seed; {a.gt} images per size): "
        + (", ".join(f"{w}×{h} {100 * v[2] / v[3]:.1f}%" for (w, h), v in gt.items()) if gt else "not run")
        + (f"; overall {100 * gt_both / gt_n:.2f}% ({gt_both}/{gt_n})." if gt_n else "."),
        "",
        "Diffusers reference: `tools/train/sample.py` (`FlowMatchEulerDiscreteScheduler` from the model's "
        "`scheduler/`, CFG as DiTPipeline), noise `torch.randn((1,3,H,W), generator=torch.Generator().manual_seed(seed))` "
        f"per image, {steps} steps, guidance {guidance}; compared on labels `(7k + 3·size index) mod {len(ids)}`, seed `k mod N`.",
    ]
    if misses:
        lines += ["", "Most frequent misses per size (label → analyser verdict):", ""]
        for (w, h), m in misses.items():
            top = sorted(m.items(), key=lambda kv: -kv[1])[:5]
            lines.append(f"* {w}×{h}: " + "; ".join(f"{k} ×{v}" for k, v in top))
    text = "\n".join(lines) + "\n"
    with open(a.results, "w") as f:
        f.write(text)
    print()
    print(text)
    print(f"wrote {a.results}; images and sheet.png in {a.work}")
    met = worst >= TARGET_MATCH and (worst_diff is None or worst_diff <= TARGET_DIFF)
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
