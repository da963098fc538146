"""Train tiny-shapes: a class-conditional DiT in pixel space with flow matching (rectified flow).

    x_t = (1 - s) * x0 + s * noise,   target v = noise - x0,   model(x_t, t = 1000 * s, label) ~ v

which is what FlowMatchEulerDiscreteScheduler.step (x' = x + (s_next - s) * v) integrates from s = 1 to 0.
s ~ shift(sigmoid(N(0, 1))) for 90% of samples (logit-normal, SD3, then the same shift
s -> 3s / (1 + 2s) the scheduler applies at inference: median s = 0.75, because the layout of a flat shape is
decided at high noise), uniform for 10%. Labels are replaced by the null
class (id = num_classes = num_embeds_ada_norm) with probability 0.1, so classifier-free guidance works.

Two phases, each a cosine learning-rate cycle: steps [0, 5000) at peak lr 5e-4 on shapes anywhere in the image,
then a warm restart, steps [5000, 11000) at peak 4e-4 on shapes nearer the centre and near upright
(shapes.render spread 0.5, turn 0.12 = +-22 degrees): phase 1 alone gave round blobs, the mean over all
positions and rotations, which the small model never broke into corners; phase 2 makes that mean shape-like.

Several resolutions, one per batch, cycling; batch sizes keep ~6k tokens per step. AdamW, linear warmup then
cosine decay, grad clip 1, EMA of the weights (the EMA is what gets exported). bf16 autocast on CPU (weights
and optimizer stay float32) unless --fp32. Checkpoints every --ckpt-minutes into --ckpt-dir; --resume
continues bit-for-bit from the last one (data order, noise and optimizer state are all in it).

    tools/train/train.sh                       # the real run (defaults below), then exports models/tiny-shapes
    tools/train/train.sh --resume              # continue an interrupted run
    tools/train/train.sh --export-only         # re-export the pipeline folder from the last checkpoint
"""
from __future__ import annotations

import argparse
import copy
import csv
import json
import math
import os
import shutil
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model as M  # noqa: E402
import shapes  # noqa: E402

# (width, height, batch size): served sizes, 32x32 .. 64x64 (4x pixels), one landscape and one portrait.
SIZES = [(32, 32, 96), (48, 48, 44), (64, 64, 24), (64, 32, 48), (32, 64, 48)]
SCHEDULER_SHIFT = 3.0
DEFAULT_STEPS = 24
DEFAULT_GUIDANCE = 4.0


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=11000)
    ap.add_argument("--phase1", type=int, default=5000, help="length of the first cosine cycle")
    ap.add_argument("--lr2", type=float, default=4e-4, help="peak lr of the second cycle")
    ap.add_argument("--warmup2", type=int, default=100)
    ap.add_argument("--spread2", type=float, default=0.5, help="data position spread in the second cycle")
    ap.add_argument("--turn2", type=float, default=0.12, help="data rotation range in the second cycle")
    ap.add_argument("--sigma-shift", type=float, default=SCHEDULER_SHIFT, help="shift of the training sigmas")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--min-lr-frac", type=float, default=0.1)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--label-dropout", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0, help="data and training seed")
    ap.add_argument("--batch-scale", type=float, default=1.0, help="multiply every batch size")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--fp32", action="store_true", help="no bf16 autocast")
    ap.add_argument("--ckpt-dir", default=".state/train-ckpt")
    ap.add_argument("--ckpt-minutes", type=float, default=4.0)
    ap.add_argument("--sample-every", type=int, default=1000, help="write a sample grid every N steps (0: never)")
    ap.add_argument("--out", default="models/tiny-shapes")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--export-only", action="store_true")
    ap.add_argument("--no-export", action="store_true")
    return ap.parse_args()


def _cosine(step: int, peak: float, warmup: int, total: int, min_frac: float) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    p = (step - warmup) / max(1, total - warmup)
    return peak * (min_frac + (1 - min_frac) * 0.5 * (1 + math.cos(math.pi * min(1.0, p))))


def lr_at(step: int, a: argparse.Namespace) -> float:
    """Two cosine cycles (a warm restart): phase 1 [0, phase1) and phase 2 [phase1, steps)."""
    if step < a.phase1:
        return _cosine(step, a.lr, a.warmup, a.phase1, a.min_lr_frac)
    return _cosine(step - a.phase1, a.lr2, a.warmup2, a.steps - a.phase1, a.min_lr_frac)


def data_at(step: int, a: argparse.Namespace) -> tuple[float, float]:
    """(spread, turn) of the data (shapes.render): anywhere and any rotation in phase 1; in phase 2 nearer the
    centre and within +-turn2*180 degrees of upright."""
    return (1.0, 1.0) if step < a.phase1 else (a.spread2, a.turn2)


def save_ckpt(path: str, state: dict) -> None:
    tmp = path + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)


def export(ema: torch.nn.Module, out: str, a: argparse.Namespace, step: int, loss_csv: str | None) -> None:
    """Write a complete diffusers pipeline folder (plus darkroom.json) with the EMA weights."""
    from diffusers import FlowMatchEulerDiscreteScheduler
    import diffusers

    os.makedirs(out, exist_ok=True)
    clean = M.build(shapes.NUM_CLASSES)
    clean.load_state_dict(ema.state_dict())
    clean.save_pretrained(os.path.join(out, "transformer"), safe_serialization=True)
    FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=SCHEDULER_SHIFT).save_pretrained(
        os.path.join(out, "scheduler"))
    index = {
        "_class_name": "DiTPipeline",
        "_diffusers_version": diffusers.__version__,
        "transformer": ["diffusers", "DiTTransformer2DModel"],
        "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
        "vae": [None, None],
        "id2label": {str(k): v for k, v in shapes.ID2LABEL.items()},
    }
    with open(os.path.join(out, "model_index.json"), "w") as f:
        json.dump(index, f, indent=2)
        f.write("\n")
    darkroom = {
        "name": "tiny-shapes",
        "kind": "class-conditional",
        "latent_space": "pixel",
        "pixel_decode": "rgb = round(clamp(x / 2 + 0.5, 0, 1) * 255), x is the final sample [3, H, W]",
        "prediction": "flow (v = noise - x0); timestep = sigma * 1000",
        "null_class_id": shapes.NUM_CLASSES,
        "sizes": [[w, h] for (w, h, _) in SIZES],
        "default_size": [64, 64],
        "granularity": 4 * 4,
        "default_steps": DEFAULT_STEPS,
        "default_guidance": DEFAULT_GUIDANCE,
        "default_sampler": "flow_euler",
        "training": {"steps": step, "seed": a.seed, "script": "tools/train/train.sh"},
    }
    with open(os.path.join(out, "darkroom.json"), "w") as f:
        json.dump(darkroom, f, indent=2)
        f.write("\n")
    if loss_csv and os.path.exists(loss_csv):
        shutil.copyfile(loss_csv, os.path.join(out, "train_loss.csv"))
    print(f"exported step {step} to {out}", flush=True)


def main() -> None:
    a = parse_args()
    torch.set_num_threads(a.threads)
    os.makedirs(a.ckpt_dir, exist_ok=True)
    ckpt_path = os.path.join(a.ckpt_dir, "ckpt.pt")
    loss_csv = os.path.join(a.ckpt_dir, "loss.csv")
    sizes = [(w, h, max(1, int(round(b * a.batch_scale)))) for (w, h, b) in SIZES]

    torch.manual_seed(a.seed)
    net = M.build(shapes.NUM_CLASSES)
    M.dit_init(net)
    ema = copy.deepcopy(net).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    decay, no_decay = [], []
    for n, p in net.named_parameters():
        (no_decay if p.ndim < 2 or "embedding_table" in n else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=a.lr, betas=(0.9, 0.99))
    gen = torch.Generator().manual_seed(a.seed + 1)
    step, counters, elapsed = 0, [0] * len(sizes), 0.0

    if a.resume or a.export_only:
        if not os.path.exists(ckpt_path):
            sys.exit(f"no checkpoint at {ckpt_path}")
        st = torch.load(ckpt_path, weights_only=False)
        net.load_state_dict(st["model"])
        ema.load_state_dict(st["ema"])
        opt.load_state_dict(st["opt"])
        gen.set_state(st["gen"])
        step, counters, elapsed = st["step"], st["counters"], st["elapsed"]
        print(f"resumed at step {step} ({elapsed / 60:.1f} min so far)", flush=True)
    if a.export_only:
        export(ema, a.out, a, step, loss_csv)
        return

    # the loss log keeps exactly the rows up to the checkpoint's step
    rows = []
    if (a.resume) and os.path.exists(loss_csv):
        with open(loss_csv) as f:
            rows = [r for r in csv.DictReader(f) if int(r["step"]) <= step]
    with open(loss_csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "width", "height", "loss", "lr", "minutes"])
        for r in rows:
            w.writerow([r["step"], r["width"], r["height"], r["loss"], r["lr"], r["minutes"]])
    log = open(loss_csv, "a", newline="")
    logw = csv.writer(log)

    def checkpoint() -> None:
        save_ckpt(ckpt_path, {"model": net.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
                              "gen": gen.get_state(), "step": step, "counters": counters,
                              "elapsed": elapsed, "args": vars(a)})
        log.flush()

    net.train()
    t_start = time.time() - elapsed
    last_ckpt = time.time()
    smooth = None
    while step < a.steps:
        k = step % len(sizes)
        W, H, bs = sizes[k]
        imgs, labels = shapes.batch(a.seed, W, H, range(counters[k], counters[k] + bs), *data_at(step, a))
        counters[k] += bs
        x0 = torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        y = torch.from_numpy(labels)
        drop = torch.rand(bs, generator=gen) < a.label_dropout
        y = torch.where(drop, torch.full_like(y, shapes.NUM_CLASSES), y)
        noise = torch.randn(x0.shape, generator=gen)
        sig = torch.sigmoid(torch.randn(bs, generator=gen))
        sig = a.sigma_shift * sig / (1 + (a.sigma_shift - 1) * sig)
        uni = torch.rand(bs, generator=gen)
        sig = torch.where(torch.rand(bs, generator=gen) < 0.1, uni, sig)
        s4 = sig[:, None, None, None]
        xt = (1 - s4) * x0 + s4 * noise
        target = noise - x0

        lr = lr_at(step, a)
        for g in opt.param_groups:
            g["lr"] = lr
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=not a.fp32):
            pred = M.forward_hw(net, xt, sig * 1000.0, y)
        loss = (pred.float() - target).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        d = min(a.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, pn in zip(ema.parameters(), net.parameters()):
                pe.lerp_(pn, 1 - d)
        step += 1
        elapsed = time.time() - t_start
        lv = loss.item()
        smooth = lv if smooth is None else 0.98 * smooth + 0.02 * lv
        logw.writerow([step, W, H, f"{lv:.5f}", f"{lr:.3e}", f"{elapsed / 60:.2f}"])
        if step % 50 == 0:
            print(f"step {step}/{a.steps} loss {lv:.4f} (avg {smooth:.4f}) lr {lr:.2e} "
                  f"{elapsed / 60:.1f} min, {elapsed / step:.2f} s/step", flush=True)
        if a.sample_every and step % a.sample_every == 0:
            sample_grid(ema, os.path.join(a.ckpt_dir, f"samples-{step:06d}.png"))
        if time.time() - last_ckpt > a.ckpt_minutes * 60:
            checkpoint()
            last_ckpt = time.time()
    checkpoint()
    log.close()
    print(f"done: {step} steps in {elapsed / 60:.1f} min", flush=True)
    if not a.no_export:
        export(ema, a.out, a, step, loss_csv)


def sample_grid(ema: torch.nn.Module, path: str) -> None:
    """Progress grid from the EMA weights: every label at 32x32, 64x64 and 64x32."""
    from diffusers import FlowMatchEulerDiscreteScheduler
    import sample

    t0 = time.time()
    sch = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=SCHEDULER_SHIFT)
    g = sample.grid(ema, sch, shapes.ID2LABEL, [(32, 32), (64, 64), (64, 32)], sorted(shapes.ID2LABEL),
                    per_label=1, seed=1, steps=DEFAULT_STEPS, guidance=DEFAULT_GUIDANCE)
    g.save(path)
    print(f"wrote {path} ({time.time() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
