#!/usr/bin/env python3
"""Text-encoder benchmark: Darkroom vs transformers on PyTorch, CPU, 2 threads, same random weights, one run.

Models (random weights, built once into git-ignored folders under out/bench/text/):
  gemma2-2b   Gemma2Model shaped like google/gemma-2-2b (26 layers, hidden 2304, 8 heads, 4 KV heads, head_dim 256,
              intermediate 9216, sliding window 4096, query_pre_attn_scalar 256, soft-cap 50, vocab 256000),
              stored bfloat16 in shards (as Sana's text_encoder ships)
  t5-xl       T5EncoderModel shaped like google/t5-v1_1-xl (24 layers, d_model 2048, d_kv 64, 32 heads, d_ff 5120,
              gated-gelu, vocab 32128), stored bfloat16 in shards (as PixArt's text_encoder ships)
Ops: gemma2-2b on a 300-token prompt at batch 1 and 4, t5-xl on 120 tokens at batch 1.

Every measurement runs in its own child process (peak RSS from os.wait4, weights included), 2 threads:
PyTorch loads the checkpoint with dtype=float32 (its fp32 run; eager attention) via torch.set_num_threads(2) and
OMP/MKL_NUM_THREADS=2; Darkroom runs `<darkroom-cmd> --op text-encoder ...` (bench/text/README.md). 1 warm-up +
3 timed forward passes, best time; the two last hidden states are compared (max |Δ| / max(1, |ref|)).
Run through bench/text/run.sh.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(REPO, "out", "bench", "text")  # /out/ is git-ignored

GEMMA2_2B = dict(vocab_size=256000, hidden_size=2304, intermediate_size=9216, num_hidden_layers=26,
                 num_attention_heads=8, num_key_value_heads=4, head_dim=256, query_pre_attn_scalar=256,
                 sliding_window=4096, attn_logit_softcapping=50.0, final_logit_softcapping=30.0,
                 max_position_embeddings=8192, rms_norm_eps=1e-6, pad_token_id=0, eos_token_id=1, bos_token_id=2)
T5_XL = dict(vocab_size=32128, d_model=2048, d_kv=64, d_ff=5120, num_layers=24, num_heads=32,
             relative_attention_num_buckets=32, relative_attention_max_distance=128, feed_forward_proj="gated-gelu",
             dropout_rate=0.0, layer_norm_epsilon=1e-6, is_encoder_decoder=False, use_cache=False)
# (tag, model, batch, tokens)
OPS = [("gemma2-2b-b1-300", "gemma2-2b", 1, 300), ("gemma2-2b-b4-300", "gemma2-2b", 4, 300),
       ("t5-xl-b1-120", "t5-xl", 1, 120)]


def _engine_bench():
    """bench/engine/bench.py, for its child runner (one process per measurement, peak RSS from os.wait4)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("engine_bench", os.path.join(REPO, "bench", "engine", "bench.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_child(argv: list[str], threads: int) -> tuple[dict, int]:
    """(the JSON object on the child's last stdout line, its peak RSS in bytes), 2-thread environment."""
    return _engine_bench().run_child(argv, threads)


def model_dir(name: str, layers: int | None) -> str:
    return os.path.join(OUT, name + (f"-{layers}l" if layers else ""))


def cmd_build(args) -> None:
    """Random bf16 checkpoints, created in bf16 (no fp32 copy in memory) and saved in 2 GB shards."""
    import torch
    from transformers import Gemma2Config, Gemma2Model, T5Config, T5EncoderModel

    for name, cls, cfg_cls, shape, seed in [("gemma2-2b", Gemma2Model, Gemma2Config, GEMMA2_2B, 4001),
                                             ("t5-xl", T5EncoderModel, T5Config, T5_XL, 4002)]:
        folder = model_dir(name, args.layers)
        shape = dict(shape)
        if args.layers:
            shape["num_hidden_layers" if name.startswith("gemma") else "num_layers"] = args.layers
        stamp = os.path.join(folder, "darkroom-bench.json")
        want = {"shape": shape, "seed": seed}
        if os.path.exists(stamp) and json.load(open(stamp)) == want:
            print(f"up to date: {folder}", file=sys.stderr)
            continue
        t0 = time.time()
        torch.manual_seed(seed)
        torch.set_default_dtype(torch.bfloat16)
        model = cls(cfg_cls(**shape)).eval()
        with torch.no_grad():  # default init leaves Gemma's norms at 0 and is tiny elsewhere: widen it
            for p in model.parameters():
                p.normal_(0.0, 0.02 if p.dim() > 1 else 0.1)
        torch.set_default_dtype(torch.float32)
        model.save_pretrained(folder, max_shard_size="2GB")
        json.dump(want, open(stamp, "w"))
        del model
        print(f"built {folder} in {time.time() - t0:.0f} s", file=sys.stderr)


def inputs_file(model: str, batch: int, tokens: int) -> str:
    """ids seeded, rows of falling length (right padding) as a batch of real prompts would be. numpy only: the
    parent process stays small (a child's ru_maxrss starts from its parent's size at fork)."""
    import numpy as np
    from safetensors.numpy import save_file

    path = os.path.join(OUT, f"inputs-{model}-b{batch}-{tokens}.safetensors")
    if not os.path.exists(path):
        vocab = (GEMMA2_2B if model.startswith("gemma") else T5_XL)["vocab_size"]
        rng = np.random.default_rng(7)
        ids = rng.integers(3, vocab, size=(batch, tokens))
        mask = np.zeros((batch, tokens), dtype=np.float32)
        for b in range(batch):
            mask[b, : tokens - b * tokens // (2 * max(batch, 1))] = 1
        ids = np.where(mask > 0, ids, 0).astype(np.float32)
        save_file({"input_ids": ids, "attention_mask": mask}, path)
    return path


def cmd_torch_op(args) -> None:
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import Gemma2Model, T5EncoderModel

    torch.set_num_threads(args.threads)
    t0 = time.time()
    cls = Gemma2Model if "gemma" in os.path.basename(args.model) else T5EncoderModel
    model = cls.from_pretrained(args.model, dtype=torch.float32, attn_implementation="eager").eval()
    inp = load_file(args.inputs)
    ids, mask = inp["input_ids"].long(), inp["attention_mask"].long()
    load_s = time.time() - t0
    times, out = [], None
    with torch.no_grad():
        for i in range(args.warmup + args.repeats):
            t = time.perf_counter()
            out = model(input_ids=ids, attention_mask=mask).last_hidden_state
            dt = time.perf_counter() - t
            if i >= args.warmup:
                times.append(dt)
            print(f"torch call {i + 1}: {dt:.3f} s", file=sys.stderr)
    save_file({"out": out.float().contiguous()}, args.save)
    print(json.dumps({"times_s": times, "load_s": load_s, "threads": torch.get_num_threads()}))


def cpu_line() -> str:
    model, flags = "?", set()
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name") and model == "?":
            model = line.split(":", 1)[1].strip()
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
    vec = [f for f in ("avx", "avx2", "fma", "f16c", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16") if f in flags]
    return f"{model}, {os.cpu_count()} CPUs, vector extensions: {' '.join(vec) or 'none'}"


def cmd_run(args) -> None:
    import numpy as np
    from safetensors.numpy import load_file

    # The checkpoints are built in a child: this process must stay small, since each measured child's peak RSS
    # counts from the size of this process when it forks.
    subprocess.run([sys.executable, __file__, "build"] + (["--layers", str(args.layers)] if args.layers else []),
                   check=True, cwd=REPO)
    load_before = os.getloadavg()
    rows = []
    for tag, model, batch, tokens in OPS:
        if args.only and tag not in args.only:
            continue
        folder = model_dir(model, args.layers)
        inputs = inputs_file(model, batch, tokens)
        common = ["--model", folder, "--inputs", inputs, "--threads", str(args.threads), "--batch", str(batch),
                  "--warmup", str(args.warmup), "--repeats", str(args.repeats)]
        torch_out = os.path.join(OUT, f"out-torch-{tag}.safetensors")
        tj, trss = run_child([sys.executable, __file__, "torch-op", *common, "--save", torch_out], args.threads)
        row = {"op": tag, "torch_s": min(tj["times_s"]), "torch_rss": trss}
        if args.darkroom:
            dr_out = os.path.join(OUT, f"out-darkroom-{tag}.safetensors")
            dj, drss = run_child(shlex.split(args.darkroom) + ["--op", "text-encoder", *common, "--save", dr_out],
                                 args.threads)
            a, b = load_file(dr_out)["out"], load_file(torch_out)["out"]
            row.update(darkroom_s=min(dj["times_s"]), darkroom_rss=drss,
                       darkroom_rss_after_load=dj.get("rss_after_load_mib"),
                       rel=float((np.abs(a - b) / np.maximum(np.abs(b), 1)).max()))
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    load_after = os.getloadavg()
    lines = [f"CPU: {cpu_line()}; {args.threads} threads"
             + (f"; REDUCED to {args.layers} layers" if args.layers else ""),
             f"load average before {load_before[0]:.2f} / {load_before[1]:.2f} / {load_before[2]:.2f}, "
             f"after {load_after[0]:.2f} / {load_after[1]:.2f} / {load_after[2]:.2f}", "",
             "| op | PyTorch fp32 s | PyTorch peak RSS MiB | Darkroom s | Darkroom peak RSS MiB | speed-up (PyTorch s / Darkroom s) | RSS Darkroom / PyTorch | max rel diff |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "darkroom_s" in r:
            lines.append(f"| {r['op']} | {r['torch_s']:.2f} | {r['torch_rss'] / 2**20:,.0f} | {r['darkroom_s']:.2f} | "
                         f"{r['darkroom_rss'] / 2**20:,.0f} | {r['torch_s'] / r['darkroom_s']:.2f}× | "
                         f"{r['darkroom_rss'] / r['torch_rss']:.2f} | {r['rel']:.1e} |")
        else:
            lines.append(f"| {r['op']} | {r['torch_s']:.2f} | {r['torch_rss'] / 2**20:,.0f} | – | – | – | – | – |")
    text = "\n".join(lines)
    print(text)
    with open(os.path.join(OUT, "results.md"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump({"rows": rows, "load_before": load_before, "load_after": load_after, "cpu": cpu_line(),
                   "layers": args.layers}, f, indent=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd")
    for name in ("run", "build"):
        p = sub.add_parser(name)
        p.add_argument("--darkroom", help="the Darkroom hook, e.g. '.build/release/darkroom bench'")
        p.add_argument("--threads", type=int, default=2)
        p.add_argument("--warmup", type=int, default=1)
        p.add_argument("--repeats", type=int, default=3)
        p.add_argument("--only", nargs="*", help="op tags: " + ", ".join(t for t, *_ in OPS))
        p.add_argument("--layers", type=int, help="fewer layers (a quick check of the harness; not the benchmark)")
    t = sub.add_parser("torch-op")
    for a in ("--model", "--inputs", "--save"):
        t.add_argument(a, required=True)
    for a, d in (("--threads", 2), ("--batch", 1), ("--warmup", 1), ("--repeats", 3)):
        t.add_argument(a, type=int, default=d)
    args = ap.parse_args(sys.argv[1:] if len(sys.argv) > 1 and sys.argv[1] in ("run", "build", "torch-op")
                         else ["run", *sys.argv[1:]])
    os.makedirs(OUT, exist_ok=True)
    {"run": cmd_run, "build": cmd_build, "torch-op": cmd_torch_op}[args.cmd](args)


if __name__ == "__main__":
    main()
