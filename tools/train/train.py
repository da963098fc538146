"""Train tiny-shapes: a class-conditional DiT in pixel space with flow matching (rectified flow).

    x_t = (1 - s) * x0 + s * noise,   target v = noise - x0,   model(x_t, t = 1000 * s, label) ~ v

which is what FlowMatchEulerDiscreteScheduler.step (x' = x + (s_next - s) * v) integrates from s = 1 to 0.
s ~ sigmoid(N(0, 1)) for 90% of samples (logit-normal, as SD3 trains: most of the training where a flat shape's
outline is decided, s ~ 0.3..0.7), uniform for 10%. Labels are replaced by the null class
(id = num_classes = num_embeds_ada_norm) with probability 0.1, so classifier-free guidance works.

One cosine learning-rate cycle on shapes near the centre and near upright (shapes.render spread 0.5, turn 0.06
= +-11 degrees). The first model (session 1) spent 5,000 steps on shapes anywhere at any rotation and a
shift-3 sigma distribution (median s 0.75): it drew round, ragged blobs, the mean over all rotations, and
its squares never got corners back; see docs in models/tiny-shapes/README.md.

Several resolutions, one per batch, cycling; batch sizes keep ~6k tokens per step. AdamW, linear warmup then
cosine decay, grad clip 1, EMA of the weights (the EMA is what gets exported). bf16 autocast on CPU (weights
and optimizer stay float32) unless --fp32. Two torch threads (both cores). Checkpoints every --ckpt-minutes
into --ckpt-dir; --resume continues bit-for-bit from the last one (data order, noise and optimizer state are
all in it).

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

# (width, height, batch size): served sizes, 32x32 .. 64x64 (4x pixels) and one landscape size.
SIZES = [(32, 32, 96), (64, 64, 24), (64, 32, 48)]
SCHEDULER_SHIFT = 3.0
DEFAULT_STEPS = 24
DEFAULT_GUIDANCE = 4.0


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=16000)
    ap.add_argument("--spread", type=float, default=0.5, help="data position spread (shapes.render)")
    ap.add_argument("--turn", type=float, default=0.06, help="data rotation range (shapes.render)")
    ap.add_argument("--scheduler-shift", type=float, default=SCHEDULER_SHIFT, help="shift of the exported scheduler")
    ap.add_argument("--sigma-shift", type=float, default=1.0, help="shift of the training sigmas (1: none)")
    ap.add_argument("--uniform", type=float, default=0.1, help="fraction of sigmas drawn uniformly")
    ap.add_argument("--lr", type=float, default=6e-4)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--min-lr-frac", type=float, default=0.1)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--label-dropout", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0, help="data and training seed")
    ap.add_argument("--batch-scale", type=float, default=1.0, help="multiply every batch size")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--fp32", action="store_true", help="no bf16 autocast")
    ap.add_argument("--ckpt-dir", default=".state/train-ckpt")
    ap.add_argument("--ckpt-minutes", type=float, default=4.0)
    ap.add_argument("--sample-every", type=int, default=2000, help="write a sample grid every N steps (0: never)")
    ap.add_argument("--out", default="models/tiny-shapes")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--export-only", action="store_true")
    ap.add_argument("--no-export", action="store_true")
    return ap.parse_args()


def cosine_lr(step: int, total: int, lr: float, warmup: int, min_lr_frac: float) -> float:
    """Linear warmup, then one cosine decay to min_lr_frac * lr at the last step (`total`)."""
    if step < warmup:
        return lr * (step + 1) / warmup
    p = (step - warmup) / max(1, total - warmup)
    return lr * (min_lr_frac + (1 - min_lr_frac) * 0.5 * (1 + math.cos(math.pi * min(1.0, p))))


def lr_at(step: int, a: argparse.Namespace) -> float:
    return cosine_lr(step, a.steps, a.lr, a.warmup, a.min_lr_frac)


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
    FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=a.scheduler_shift).save_pretrained(
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
        imgs, labels = shapes.batch(a.seed, W, H, range(counters[k], counters[k] + bs), a.spread, a.turn)
        counters[k] += bs
        x0 = torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        y = torch.from_numpy(labels)
        drop = torch.rand(bs, generator=gen) < a.label_dropout
        y = torch.where(drop, torch.full_like(y, shapes.NUM_CLASSES), y)
        noise = torch.randn(x0.shape, generator=gen)
        sig = torch.sigmoid(torch.randn(bs, generator=gen))
        sig = a.sigma_shift * sig / (1 + (a.sigma_shift - 1) * sig)
        uni = torch.rand(bs, generator=gen)
        sig = torch.where(torch.rand(bs, generator=gen) < a.uniform, uni, sig)
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
