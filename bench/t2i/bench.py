#!/usr/bin/env python3
"""Text-to-image benchmark: Darkroom vs diffusers on PyTorch, CPU, float32, same random weights, one run.

Components shaped like the released models (issue 11, point 7), random weights, built once under out/bench/t2i/:
  sana-600m    SanaTransformer2DModel like Sana_600M_512px: 28 layers, 36 heads x 32, cross-attention 16 x 72
               (1152), caption 2304, 32 latent channels, patch 1, sample_size 16; forward at 512 px (16x16 latents),
               batch 2 (CFG), 300 caption tokens
  pixart-sigma PixArtTransformer2DModel like PixArt-Sigma-XL-2-512-MS: 28 layers, 16 heads x 72, caption 4096,
               4 latent channels, patch 2, sample_size 64; forward at 512 px, batch 2, 300 caption tokens
  dc-ae        AutoencoderDC like dc-ae-f32c32-sana-1.0 (the diffusers defaults with Sana's interpolate/conv
               up/down blocks): decode of a [1, 32, 16, 16] latent to 512 px
  sana-sprint  a SanaSprintPipeline folder: a SanaTransformer2DModel shaped like Sana_Sprint_0.6B (the sana-600m shape
               with guidance_embeds, qk_norm rms_norm_across_heads, timestep_scale 1000), the dc-ae decoder,
               SCMScheduler, models/tiny-scenes' tokenizer and a 1-layer Gemma2 of width 2304: op `sana-sprint` is
               the whole 2-step 512 px image from given caption embeddings (prompt_embeds; no text encoder run)
  sana-sprint-2b the same with bench/text's Gemma-2-2B-shaped bf16 encoder: op `sana-sprint-text` is the whole
               image from a prompt, the text encoder included (Sana's complex_human_instruction prefix as diffusers
               sends it; the tokenizer is tiny-scenes' 384-piece one, so the encoder sees more tokens than with
               Gemma's). Only with --only sana-sprint-text (builds 5.2 GB).
`--precision bf16` adds a Darkroom row per op with the weights held as bf16 (`darkroom bench --precision bf16`),
against the same PyTorch float32 figures.
Every measurement runs in its own child process (peak RSS from os.wait4), 2 threads. The helpers (children,
comparison) are bench/engine/bench.py's. `--layers N` and `--size S` give reduced runs (a check of the harness,
not the benchmark). Run through bench/t2i/run.sh; the Darkroom hook is `darkroom bench --op sana-transformer |
pixart-transformer | dcae-decode` (bench/t2i/README.md).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "bench", "engine"))
from bench import compare, fmt_mb, run_child, write_results  # noqa: E402  (bench/engine/bench.py: same child and diff rules)

OUT = os.path.join(REPO, "out", "bench", "t2i")  # git-ignored

SANA_600M = dict(
    in_channels=32, out_channels=32, num_attention_heads=36, attention_head_dim=32, num_layers=28,
    num_cross_attention_heads=16, cross_attention_head_dim=72, cross_attention_dim=1152, caption_channels=2304,
    mlp_ratio=2.5, dropout=0.0, attention_bias=False, sample_size=16, patch_size=1, norm_elementwise_affine=False,
    norm_eps=1e-6,
)
PIXART_SIGMA_512 = dict(
    num_attention_heads=16, attention_head_dim=72, in_channels=4, out_channels=8, num_layers=28,
    cross_attention_dim=1152, caption_channels=4096, sample_size=64, patch_size=2, norm_type="ada_norm_single",
    norm_elementwise_affine=False, norm_eps=1e-6, use_additional_conditions=False, interpolation_scale=1,
    attention_bias=True, activation_fn="gelu-approximate", num_embeds_ada_norm=1000, upcast_attention=False,
)
DC_AE_F32C32 = dict(
    in_channels=3, latent_channels=32, attention_head_dim=32,
    encoder_block_types=["ResBlock"] * 3 + ["EfficientViTBlock"] * 3,
    decoder_block_types=["ResBlock"] * 3 + ["EfficientViTBlock"] * 3,
    encoder_block_out_channels=[128, 256, 512, 512, 1024, 1024], decoder_block_out_channels=[128, 256, 512, 512, 1024, 1024],
    encoder_layers_per_block=[2, 2, 2, 3, 3, 3], decoder_layers_per_block=[3, 3, 3, 3, 3, 3],
    encoder_qkv_multiscales=[[], [], [], [5], [5], [5]], decoder_qkv_multiscales=[[], [], [], [5], [5], [5]],
    upsample_block_type="interpolate", downsample_block_type="Conv", decoder_norm_types="rms_norm",
    decoder_act_fns="silu", scaling_factor=0.41407,
)
SPRINT_600M = dict(SANA_600M, guidance_embeds=True, guidance_embeds_scale=0.1, qk_norm="rms_norm_across_heads",
                   timestep_scale=1000.0, sample_size=32)
TINY_GEMMA_2304 = dict(vocab_size=384, hidden_size=2304, intermediate_size=512, num_hidden_layers=1,
                       num_attention_heads=8, num_key_value_heads=4, head_dim=256, query_pre_attn_scalar=256,
                       sliding_window=4096, max_position_embeddings=8192, rms_norm_eps=1e-6, pad_token_id=0,
                       eos_token_id=1, bos_token_id=2)
SCM = {"_class_name": "SCMScheduler", "_diffusers_version": "0.42.1", "num_train_timesteps": 1000,
       "prediction_type": "trigflow", "sigma_data": 0.5}
CAPTION_TOKENS = 300
SPRINT_STEPS = 2
PROMPT = "a red fox in the snow, photograph"
# (op, model, batch)
OPS = [("sana-transformer", "sana-600m", 2), ("pixart-transformer", "pixart-sigma", 2), ("dcae-decode", "dc-ae", 1),
       ("sana-sprint", "sana-sprint", 1)]
EXTRA_OPS = [("sana-sprint-text", "sana-sprint-2b", 1)]   # only when named in --only


def model_dir(name: str, layers: int | None) -> str:
    return os.path.join(OUT, name if layers is None else f"{name}-{layers}l")


def config_of(name: str, layers: int | None) -> dict:
    cfg = dict({"sana-600m": SANA_600M, "pixart-sigma": PIXART_SIGMA_512, "dc-ae": DC_AE_F32C32,
                "sana-sprint": SPRINT_600M}[name])
    if layers is not None:
        if name == "dc-ae":
            cfg["decoder_layers_per_block"] = [min(layers, n) for n in cfg["decoder_layers_per_block"]]
            cfg["encoder_layers_per_block"] = [min(layers, n) for n in cfg["encoder_layers_per_block"]]
        else:
            cfg["num_layers"] = layers
    return cfg


def cmd_build(args) -> None:
    """Builds the random-weight component folders (idempotent: a stamp holds the config and seed)."""
    import torch
    from diffusers import AutoencoderDC, PixArtTransformer2DModel, SanaTransformer2DModel

    classes = {"sana-600m": SanaTransformer2DModel, "pixart-sigma": PixArtTransformer2DModel, "dc-ae": AutoencoderDC}
    for seed, name in enumerate(classes, start=4001):
        d, cfg = model_dir(name, args.layers), config_of(name, args.layers)
        stamp = os.path.join(d, "darkroom-bench.json")
        want = {"config": cfg, "seed": seed}
        if os.path.exists(stamp) and json.load(open(stamp)) == want:
            continue
        t0 = time.time()
        torch.manual_seed(seed)
        model = classes[name](**cfg).eval()
        with torch.no_grad():  # default inits leave some zero tensors (adaLN, out projections): draw them all
            for p in model.parameters():
                p.normal_(0, 0.02) if p.dim() > 1 else p.normal_(0, 0.1)
        model.save_pretrained(d, safe_serialization=True, max_shard_size="100GB")
        json.dump(want, open(stamp, "w"))
        print(f"built {d} in {time.time() - t0:.0f} s", file=sys.stderr)
    build_sprint(args.layers, with_2b=bool(args.only and "sana-sprint-text" in args.only))


def text_bench():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_text", os.path.join(REPO, "bench", "text", "bench.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def build_sprint(layers: int | None, with_2b: bool) -> None:
    """The SanaSprintPipeline folders: transformer (random, seed 4004), vae -> the dc-ae folder, SCMScheduler,
    tiny-scenes' tokenizer; text_encoder a 1-layer Gemma2 of width 2304 (sana-sprint) or bench/text's
    Gemma-2-2B-shaped bf16 checkpoint (sana-sprint-2b, built here as bench/text builds it when missing)."""
    import shutil

    import torch
    from diffusers import SanaTransformer2DModel
    from transformers import Gemma2Config, Gemma2Model

    root = model_dir("sana-sprint", layers)
    t_dir, cfg = os.path.join(root, "transformer"), config_of("sana-sprint", layers)
    stamp = os.path.join(t_dir, "darkroom-bench.json")
    want = {"config": cfg, "seed": 4004}
    if not (os.path.exists(stamp) and json.load(open(stamp)) == want):
        torch.manual_seed(4004)
        model = SanaTransformer2DModel(**cfg).eval()
        with torch.no_grad():
            for p in model.parameters():
                p.normal_(0, 0.02) if p.dim() > 1 else p.normal_(0, 0.1)
        model.save_pretrained(t_dir, safe_serialization=True, max_shard_size="100GB")
        json.dump(want, open(stamp, "w"))
    te = os.path.join(root, "text_encoder")
    if not os.path.exists(os.path.join(te, "model.safetensors")):
        torch.manual_seed(4005)
        enc = Gemma2Model(Gemma2Config(**TINY_GEMMA_2304)).eval()
        with torch.no_grad():
            for p in enc.parameters():
                p.normal_(0.0, 0.02 if p.dim() > 1 else 0.1)
        enc.save_pretrained(te)
    shutil.copytree(os.path.join(REPO, "models", "tiny-scenes", "tokenizer"), os.path.join(root, "tokenizer"), dirs_exist_ok=True)
    os.makedirs(os.path.join(root, "scheduler"), exist_ok=True)
    json.dump(SCM, open(os.path.join(root, "scheduler", "scheduler_config.json"), "w"), indent=1)
    index = {"_class_name": "SanaSprintPipeline", "_diffusers_version": "0.42.1",
             "scheduler": ["diffusers", "SCMScheduler"], "text_encoder": ["transformers", "Gemma2Model"],
             "tokenizer": ["transformers", "GemmaTokenizer"], "transformer": ["diffusers", "SanaTransformer2DModel"],
             "vae": ["diffusers", "AutoencoderDC"]}
    json.dump(index, open(os.path.join(root, "model_index.json"), "w"), indent=1)
    vae = os.path.join(root, "vae")
    if not os.path.lexists(vae):
        os.symlink(os.path.relpath(model_dir("dc-ae", layers), root), vae)
    if not with_2b:
        return
    tb = text_bench()
    gemma = tb.model_dir("gemma2-2b", layers)
    shape = dict(tb.GEMMA2_2B, **({"num_hidden_layers": layers} if layers else {}))
    gstamp = os.path.join(gemma, "darkroom-bench.json")
    if not (os.path.exists(gstamp) and json.load(open(gstamp)) == {"shape": shape, "seed": 4001}):
        torch.manual_seed(4001)   # bench/text/bench.py cmd_build's recipe, the Gemma half
        torch.set_default_dtype(torch.bfloat16)
        enc = Gemma2Model(Gemma2Config(**shape)).eval()
        with torch.no_grad():
            for p in enc.parameters():
                p.normal_(0.0, 0.02 if p.dim() > 1 else 0.1)
        torch.set_default_dtype(torch.float32)
        enc.save_pretrained(gemma, max_shard_size="2GB")
        json.dump({"shape": shape, "seed": 4001}, open(gstamp, "w"))
        del enc
    big = model_dir("sana-sprint-2b", layers)
    os.makedirs(big, exist_ok=True)
    for part in ["transformer", "tokenizer", "scheduler", "model_index.json"]:
        if not os.path.lexists(os.path.join(big, part)):
            os.symlink(os.path.join("..", os.path.basename(root), part), os.path.join(big, part))
    if not os.path.lexists(os.path.join(big, "vae")):
        os.symlink(os.path.relpath(model_dir("dc-ae", layers), big), os.path.join(big, "vae"))
    if not os.path.lexists(os.path.join(big, "text_encoder")):
        os.symlink(os.path.relpath(gemma, big), os.path.join(big, "text_encoder"))


def make_inputs(op: str, batch: int, size: int) -> dict:
    import torch

    g = torch.Generator().manual_seed(0)
    if op == "sana-sprint":   # prompt_embeds [1, L, 2304] and prompt_attention_mask [1, L]
        return {"caption": torch.randn(batch, CAPTION_TOKENS, 2304, generator=g), "mask": torch.ones(batch, CAPTION_TOKENS)}
    if op == "sana-sprint-text":
        return {"unused": torch.zeros(1)}
    if op == "dcae-decode":
        return {"z": torch.randn(batch, 32, size // 32, size // 32, generator=g)}
    c, f, dc = (32, 32, 2304) if op == "sana-transformer" else (4, 8, 4096)
    mask = torch.ones(batch, CAPTION_TOKENS)
    mask[1:, CAPTION_TOKENS // 2:] = 0  # the second row (the negative prompt's) shorter: masks are exercised
    return {"x": torch.randn(batch, c, size // f, size // f, generator=g), "t": torch.full((batch,), 500.0),
            "caption": torch.randn(batch, CAPTION_TOKENS, dc, generator=g), "mask": mask}


def cmd_torch_op(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    from diffusers import AutoencoderDC, PixArtTransformer2DModel, SanaTransformer2DModel
    from safetensors.torch import load_file, save_file

    t0 = time.time()
    ins = load_file(args.inputs)
    if args.op in ("sana-sprint", "sana-sprint-text"):
        from diffusers import SanaSprintPipeline

        pipe = SanaSprintPipeline.from_pretrained(args.model, torch_dtype=torch.float32)
        kw = dict(num_inference_steps=args.steps, height=args.size, width=args.size, use_resolution_binning=False,
                  guidance_scale=4.5, output_type="pt")
        if args.op == "sana-sprint":
            kw.update(prompt_embeds=ins["caption"], prompt_attention_mask=ins["mask"])
        else:
            kw.update(prompt=args.prompt)

        def fn():
            return pipe(generator=torch.Generator().manual_seed(0), **kw).images
    elif args.op == "dcae-decode":
        model = AutoencoderDC.from_pretrained(args.model, low_cpu_mem_usage=False).eval()

        def fn():
            return model.decode(ins["z"]).sample
    else:
        cls = SanaTransformer2DModel if args.op == "sana-transformer" else PixArtTransformer2DModel
        model = cls.from_pretrained(args.model, low_cpu_mem_usage=False).eval()
        kw = {"added_cond_kwargs": {"resolution": None, "aspect_ratio": None}} if args.op == "pixart-transformer" else {}

        def fn():
            return model(ins["x"], encoder_hidden_states=ins["caption"], encoder_attention_mask=ins["mask"],
                         timestep=ins["t"], return_dict=False, **kw)[0]
    load_s = time.time() - t0
    times = []
    with torch.inference_mode():
        for i in range(args.warmup + args.repeats):
            t = time.perf_counter()
            out = fn()
            if i >= args.warmup:
                times.append(time.perf_counter() - t)
    if args.save:
        save_file({"out": out.contiguous()}, args.save)
    print(json.dumps({"times_s": times, "load_s": load_s, "threads": torch.get_num_threads()}))


def cpu_line() -> str:
    """bench/text/bench.py's line: CPU model, CPU count and vector extensions."""
    return text_bench().cpu_line()


def cmd_run(args) -> None:
    import torch
    from safetensors.torch import save_file

    me = [sys.executable, os.path.abspath(__file__)]
    build = me + ["build"] + (["--layers", str(args.layers)] if args.layers else []) + (["--only", args.only] if args.only else [])
    subprocess.run(build, check=True, cwd=REPO)
    load_before = os.getloadavg()
    os.makedirs(OUT, exist_ok=True)
    ops = [o for o in OPS + EXTRA_OPS if (o in OPS and not args.only) or (args.only and o[0] in args.only.split(","))]
    rows = []
    for op, name, batch in ops:
        tag = f"{op}-b{batch}-{args.size}" + (f"-{args.layers}l" if args.layers else "")
        ins_path = os.path.join(OUT, f"inputs-{tag}.safetensors")
        save_file({k: v.contiguous() for k, v in make_inputs(op, batch, args.size).items()}, ins_path)
        common = ["--op", op, "--model", model_dir(name, args.layers), "--inputs", ins_path, "--batch", str(batch),
                  "--size", str(args.size), "--warmup", str(args.warmup), "--repeats", str(args.repeats),
                  "--threads", str(args.threads)]
        if op.startswith("sana-sprint"):
            common += ["--steps", str(SPRINT_STEPS)] + (["--prompt", PROMPT] if op == "sana-sprint-text" else [])
        torch_out = os.path.join(OUT, f"torch-{tag}.safetensors")
        res, rss = run_child(me + ["torch-op", "--save", torch_out] + common, args.threads)
        row = {"op": tag, "torch_s": min(res["times_s"]), "torch_median_s": statistics.median(res["times_s"]),
               "torch_rss": rss}
        print(f"  torch {tag}: {row['torch_s']:.3f} s, peak RSS {fmt_mb(rss)} MiB", file=sys.stderr)
        if args.darkroom:
            dr_out = os.path.join(OUT, f"darkroom-{tag}.safetensors")
            res, rss = run_child(shlex.split(args.darkroom) + ["--save", dr_out] + common, args.threads)
            row.update(darkroom_s=min(res["times_s"]), darkroom_rss=rss, rel_diff=compare(dr_out, torch_out))
            print(f"  darkroom {tag}: {row['darkroom_s']:.3f} s, peak RSS {fmt_mb(rss)} MiB", file=sys.stderr)
        rows.append(row)
        if args.darkroom and args.precision:
            p_out = os.path.join(OUT, f"darkroom-{args.precision}-{tag}.safetensors")
            res, rss = run_child(shlex.split(args.darkroom) + ["--save", p_out, "--precision", args.precision] + common,
                                 args.threads)
            rows.append(dict(row, op=f"{tag} (Darkroom {args.precision})", darkroom_s=min(res["times_s"]),
                             darkroom_rss=rss, rel_diff=compare(p_out, torch_out)))
            print(f"  darkroom {args.precision} {tag}: {rows[-1]['darkroom_s']:.3f} s, peak RSS {fmt_mb(rss)} MiB",
                  file=sys.stderr)
    load_after = os.getloadavg()
    lines = [
        f"CPU: {cpu_line()}; {args.threads} threads, float32; torch {torch.__version__}; best of {args.repeats} "
        f"after {args.warmup} warm-up" + (f"; REDUCED: {args.layers} layers (not the benchmark)" if args.layers else "") + ".",
        "Load average (1/5/15 min) before: " + " / ".join(f"{x:.2f}" for x in load_before)
        + ", after: " + " / ".join(f"{x:.2f}" for x in load_after) + ".",
        "",
        "| op | PyTorch s | PyTorch peak RSS MiB | Darkroom s | Darkroom peak RSS MiB | speed-up (PyTorch s / Darkroom s) "
        "| RSS Darkroom / PyTorch | max rel diff |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        cells = [r["op"], f"{r['torch_s']:.2f}", fmt_mb(r["torch_rss"])]
        if "darkroom_s" in r:
            d = r["rel_diff"]
            cells += [f"{r['darkroom_s']:.2f}", fmt_mb(r["darkroom_rss"]), f"{r['torch_s'] / r['darkroom_s']:.2f}×",
                      f"{r['darkroom_rss'] / r['torch_rss']:.2f}", "—" if d is None else f"{d:.1e}"]
        else:
            cells += ["—"] * 5
        lines.append("| " + " | ".join(cells) + " |")
    write_results(OUT, lines, {"rows": rows, "cpu": cpu_line(), "threads": args.threads, "torch": torch.__version__,
                               "loadavg_before": load_before, "loadavg_after": load_after})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd")
    b = sub.add_parser("build", help="build the random-weight component folders (idempotent)")
    b.add_argument("--layers", type=int, default=None)
    b.add_argument("--only", default=None)
    t = sub.add_parser("torch-op", help="one PyTorch measurement (child process; same contract as --darkroom)")
    for p in (t,):
        p.add_argument("--op", choices=[o[0] for o in OPS + EXTRA_OPS], required=True)
        p.add_argument("--steps", type=int, default=SPRINT_STEPS)
        p.add_argument("--prompt", default=PROMPT)
        p.add_argument("--model", required=True)
        p.add_argument("--inputs", required=True)
        p.add_argument("--save", default=None)
        p.add_argument("--batch", type=int, default=1)
        p.add_argument("--size", type=int, default=512)
        p.add_argument("--warmup", type=int, default=1)
        p.add_argument("--repeats", type=int, default=3)
        p.add_argument("--threads", type=int, default=2)
    r = sub.add_parser("run", help="build + every measurement, prints the table (default)")
    for p in (r, ap):
        p.add_argument("--threads", type=int, default=2)
        p.add_argument("--warmup", type=int, default=1)
        p.add_argument("--repeats", type=int, default=3)
        p.add_argument("--size", type=int, default=512, help="image side in px (512: the benchmark)")
        p.add_argument("--layers", type=int, default=None, help="reduced models (a harness check, not the benchmark)")
        p.add_argument("--only", default=None, help="comma list of ops: sana-transformer,pixart-transformer,dcae-decode,"
                       "sana-sprint,sana-sprint-text (the last only when named)")
        p.add_argument("--precision", default=None, choices=["bf16", "fp16"],
                       help="also run Darkroom with its weights held at this precision (extra rows)")
        p.add_argument("--darkroom", default=None, help="Darkroom bench command prefix, e.g. '.build/release/darkroom bench'")
    args = ap.parse_args()
    {"build": cmd_build, "torch-op": cmd_torch_op}.get(args.cmd, cmd_run)(args)


if __name__ == "__main__":
    main()
