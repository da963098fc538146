"""Choose tiny-shapes' default guidance and scheduler shift with evidence: for each (guidance, shift) pair,
sample N images per label and size with diffusers components (tools/train/sample.py) and score them with the
checker's analyser (tools/check/analyse.py). Seeds 5000.. (not the checker's 0..N-1, so the defaults are not
fitted to the images the checker then judges). Prints one table row per pair; the defaults live in
darkroom.json (`default_guidance`) and scheduler/scheduler_config.json (`shift`).

    .venv/bin/python tools/check/tune.py --model models/tiny-shapes --guidance 2 3 4 5 --shift 1 2 3 --n 2
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools", "train"))  # sample.py, shapes.py
sys.path.insert(0, HERE)
import analyse  # noqa: E402  (tools/check/analyse.py)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "tiny-shapes"))
    ap.add_argument("--guidance", type=float, nargs="+", default=[4.0])
    ap.add_argument("--shift", type=float, nargs="+", default=[3.0])
    ap.add_argument("--steps", type=int, help="default: the model's default_steps")
    ap.add_argument("--n", type=int, default=2, help="images per label and size")
    ap.add_argument("--seed", type=int, default=5000)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()

    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler
    from diffusers.utils import logging as dlog
    import sample

    dlog.set_verbosity_error()
    torch.set_num_threads(a.threads)
    tr, sch0, id2label, dr = sample.load(a.model)
    sizes = [tuple(s) for s in dr["sizes"]]
    steps = a.steps or int(dr["default_steps"])
    ids = sorted(id2label)
    print(f"model {a.model}, {steps} steps, {a.n} per label and size, seeds from {a.seed}")
    print("| guidance | shift | " + " | ".join(f"{w}x{h}" for w, h in sizes) + " | worst |")
    print("| --- | --- | " + " | ".join("---" for _ in sizes) + " | --- |")
    for shift in a.shift:
        sch = FlowMatchEulerDiscreteScheduler.from_config(sch0.config, shift=shift)
        for g in a.guidance:
            t0 = time.time()
            rates = []
            for (w, h) in sizes:
                ok = n = 0
                for k in range(a.n):
                    seeds = [a.seed + k * len(ids) + c for c in ids]
                    imgs = sample.generate(tr, sch, ids, seeds, h, w, steps, g, len(ids))
                    for cid, img in zip(ids, imgs):
                        colour, shape, _ = analyse.classify(img)
                        ok += f"{colour} {shape}" == id2label[cid]
                        n += 1
                rates.append(ok / n)
            cells = " | ".join(f"{100 * r:.1f}%" for r in rates)
            print(f"| {g:g} | {shift:g} | {cells} | {100 * min(rates):.1f}% |  ({time.time() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
