#!/usr/bin/env python3
"""Engine benchmark: Darkroom vs diffusers on PyTorch, CPU, float32, same random weights, one run.

Model: random weights shaped like facebook/DiT-XL-2-256 (DiTTransformer2DModel 28 layers, 16 heads x 72, patch 2,
4 latent channels, learned sigma, sample_size 32) + the SD VAE (AutoencoderKL [128,256,512,512], 2 layers per block),
built by tools/reference/make_fixtures.py's build_pipeline (the fixtures' script) into a git-ignored folder.

Every measurement runs in its own child process (`os.wait4` gives that child's peak RSS, weights included), with
2 threads: PyTorch via torch.set_num_threads(2) + OMP/MKL_NUM_THREADS=2; Darkroom via the command given with
--darkroom (contract in bench/engine/README.md). Run through bench/engine/run.sh.
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
DEFAULT_DIR = os.path.join(REPO, "out", "bench", "dit-xl-2-256")  # /out/ is git-ignored

DIT_XL_2_256 = dict(
    num_attention_heads=16, attention_head_dim=72, in_channels=4, out_channels=8, num_layers=28,
    sample_size=32, patch_size=2, num_embeds_ada_norm=1000,
)
SD_VAE = dict(
    in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 4,
    up_block_types=["UpDecoderBlock2D"] * 4, block_out_channels=[128, 256, 512, 512], layers_per_block=2,
    latent_channels=4, norm_num_groups=32, sample_size=256,
)
# The measurements of one run: (op, batch, image size in px).
OPS = [("transformer", 2, 256), ("transformer", 8, 256), ("vae-decode", 1, 256), ("vae-decode", 1, 512)]


def child_env(threads: int) -> dict:
    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[k] = str(threads)
    return env


def run_child(argv: list[str], threads: int) -> tuple[dict, int]:
    """Runs argv, returns (the JSON object on its last stdout line, peak RSS of the child in bytes)."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, env=child_env(threads), cwd=REPO, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage (peak RSS), unlike RUSAGE_CHILDREN
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"benchmark child failed ({code}): {shlex.join(argv)}")
    lines = [ln for ln in out.splitlines() if ln.strip()]
    if not lines:
        raise SystemExit(f"benchmark child printed nothing: {shlex.join(argv)}")
    return json.loads(lines[-1]), usage.ru_maxrss * 1024  # Linux: ru_maxrss in KiB


# --------------------------------------------------------------------------------------------------------------------
# Subcommand: build


def cmd_build(args) -> None:
    sys.path.insert(0, os.path.join(REPO, "tools", "reference"))
    import make_fixtures as mf  # noqa: E402  (the fixtures' script: same random-weight builder)
    from diffusers import DDIMScheduler

    stamp = os.path.join(args.dir, "darkroom-bench.json")
    want = {"transformer": DIT_XL_2_256, "vae": SD_VAE, "dit_seed": 3001, "vae_seed": 3002}
    if os.path.exists(stamp):
        with open(stamp) as f:
            if json.load(f) == want:
                print(f"model up to date: {args.dir}", file=sys.stderr)
                return
    t0 = time.time()
    mf.build_pipeline(args.dir, DIT_XL_2_256, 3001, SD_VAE, 3002, DDIMScheduler(**mf.LATENT_DDIM),
                      {str(i): f"class {i}" for i in range(1000)})
    with open(stamp, "w") as f:
        json.dump(want, f)
    print(f"built {args.dir} in {time.time() - t0:.0f} s", file=sys.stderr)


# --------------------------------------------------------------------------------------------------------------------
# Inputs shared by both engines (deterministic; also written to a file the Swift side may read)


def make_inputs(op: str, batch: int, size: int):
    import torch

    g = torch.Generator().manual_seed(0)
    if op == "transformer":
        x = torch.randn(batch, 4, size // 8, size // 8, generator=g)
        t = torch.full((batch,), 500, dtype=torch.int64)
        y = torch.tensor([(97 * i) % 1000 for i in range(batch)], dtype=torch.int64)
        return {"x": x, "t": t, "labels": y}
    z = torch.randn(batch, 4, size // 8, size // 8, generator=g)
    return {"z": z}


def inputs_file(op: str, batch: int, size: int) -> str:
    return os.path.join(REPO, "out", "bench", f"inputs-{op}-b{batch}-{size}.safetensors")


# --------------------------------------------------------------------------------------------------------------------
# Subcommand: torch-op (one measurement, in a child)


def cmd_torch_op(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    from diffusers import AutoencoderKL, DiTTransformer2DModel
    from safetensors.torch import save_file

    t0 = time.time()
    if args.inputs:  # same contract as the Darkroom side: inputs from the file the harness wrote
        from safetensors.torch import load_file

        inputs = load_file(args.inputs)
        for k in ("t", "labels"):
            if k in inputs:
                inputs[k] = inputs[k].to(torch.int64)
    else:
        inputs = make_inputs(args.op, args.batch, args.size)
    if args.op == "transformer":
        model = DiTTransformer2DModel.from_pretrained(os.path.join(args.dir, "transformer"),
                                                      low_cpu_mem_usage=False).eval()

        def fn():
            return model(inputs["x"], timestep=inputs["t"], class_labels=inputs["labels"]).sample
    else:
        model = AutoencoderKL.from_pretrained(os.path.join(args.dir, "vae"), low_cpu_mem_usage=False).eval()

        def fn():
            return model.decode(inputs["z"]).sample
    load_s = time.time() - t0
    times = []
    with torch.inference_mode():
        for i in range(args.warmup + args.repeats):
            t = time.perf_counter()
            out = fn()
            dt = time.perf_counter() - t
            if i >= args.warmup:
                times.append(dt)
    if args.save:
        save_file({"out": out.contiguous()}, args.save)
    print(json.dumps({"times_s": times, "load_s": load_s, "threads": torch.get_num_threads()}))


# --------------------------------------------------------------------------------------------------------------------
# Subcommand: sgemm (this machine's matmul rate at N threads)


def cmd_sgemm(args) -> None:
    import numpy as np

    res = {}
    shapes = [(2048, 2048, 2048), (512, 1152, 4608)]  # square; DiT-XL batch-2 MLP up-projection (M=tokens)
    rng = np.random.default_rng(0)
    for m, k, n in shapes:
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        best = float("inf")
        a @ b
        for _ in range(args.repeats):
            t = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - t)
        res[f"numpy_openblas_{m}x{k}x{n}"] = 2 * m * k * n / best / 1e9
    import torch

    torch.set_num_threads(args.threads)
    for m, k, n in shapes:
        a, b = torch.randn(m, k), torch.randn(k, n)
        best = float("inf")
        a @ b
        for _ in range(args.repeats):
            t = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - t)
        res[f"torch_mkl_{m}x{k}x{n}"] = 2 * m * k * n / best / 1e9
    try:
        cfg = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        res["numpy_blas"] = f"{cfg.get('name')} {cfg.get('version')}"
    except Exception:  # noqa: BLE001  (informational only)
        pass
    print(json.dumps(res))


# --------------------------------------------------------------------------------------------------------------------
# FLOPs (counted by torch's FlopCounterMode on meta tensors: 2 per multiply-add, matmuls/convs/attention)


def count_flops() -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    from diffusers import AutoencoderKL, DiTTransformer2DModel

    flops = {}
    with torch.device("meta"):
        dit = DiTTransformer2DModel(**DIT_XL_2_256)
        vae = AutoencoderKL(**SD_VAE)
        for op, batch, size in OPS:
            s = size // 8
            with FlopCounterMode(display=False) as fc:
                if op == "transformer":
                    dit(torch.empty(batch, 4, s, s), timestep=torch.empty(batch, dtype=torch.long),
                        class_labels=torch.empty(batch, dtype=torch.long))
                else:
                    vae.decode(torch.empty(batch, 4, s, s))
            flops[(op, batch, size)] = fc.get_total_flops()
    return flops


def compare(a_path: str, b_path: str) -> float | None:
    if not (os.path.exists(a_path) and os.path.exists(b_path)):
        return None
    from safetensors.torch import load_file

    a, b = load_file(a_path)["out"], load_file(b_path)["out"]
    if a.shape != b.shape:
        return float("nan")
    return float((a - b).abs().max() / b.abs().max())


def int8_folder(folder: str, binary: str) -> str:
    """The int8 copy of the bench folder (`darkroom models quantize DIR --to int8 -o DIR-int8`, made once by
    `binary`, the darkroom executable; git-ignored like DIR)."""
    out = folder.rstrip("/") + "-int8"
    if not os.path.exists(out):
        subprocess.run([binary, "models", "quantize", folder, "--to", "int8", "-o", out], check=True, cwd=REPO)
    return out


# --------------------------------------------------------------------------------------------------------------------
# Subcommand: run (default)



def write_results(out_dir: str, lines: list[str], payload: dict) -> None:
    """Prints the table and writes it as results.md, the raw numbers as results.json, under out_dir."""
    table = "\n".join(lines)
    print(table)
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(table + "\n")
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(payload, f, indent=1)

def fmt_mb(n: int) -> str:
    return f"{n / 2**20:,.0f}"


def cpu_line() -> str:
    """bench/text/bench.py's line: CPU model, CPU count and vector extensions."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_text", os.path.join(REPO, "bench", "text", "bench.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.cpu_line()


def cmd_run(args) -> None:
    import torch
    from safetensors.torch import save_file

    me = [sys.executable, os.path.abspath(__file__)]
    subprocess.run(me + ["build", "--dir", args.dir], check=True, cwd=REPO)
    load_before = os.getloadavg()
    os.makedirs(os.path.join(REPO, "out", "bench"), exist_ok=True)
    ops = OPS if not args.only else [o for o in OPS if f"{o[0]}-b{o[1]}-{o[2]}" in args.only.split(",")]

    sg, _ = run_child(me + ["sgemm", "--threads", str(args.threads)], args.threads)
    if args.darkroom and args.darkroom_sgemm:  # optional: the BLAS that Darkroom links, timed by Darkroom
        res, _ = run_child(shlex.split(args.darkroom) + ["--op", "sgemm", "--size", "2048", "--threads",
                                                         str(args.threads), "--warmup", "1", "--repeats", "5"],
                           args.threads)
        sg["darkroom_blas_2048x2048x2048"] = 2 * 2048**3 / min(res["times_s"]) / 1e9
    print(f"sgemm GFLOP/s at {args.threads} threads: {json.dumps(sg)}", file=sys.stderr)
    flops = count_flops()
    rows = []
    for op, batch, size in ops:
        ins = make_inputs(op, batch, size)
        save_file({k: v.to(torch.float32).contiguous() for k, v in ins.items()}, inputs_file(op, batch, size))
        tag = f"{op}-b{batch}-{size}"
        common = ["--op", op, "--batch", str(batch), "--size", str(size), "--warmup", str(args.warmup),
                  "--repeats", str(args.repeats)]
        torch_out = os.path.join(REPO, "out", "bench", f"torch-{tag}.safetensors")
        res, rss = run_child(me + ["torch-op", "--model", args.dir, "--inputs", inputs_file(op, batch, size),
                                   "--save", torch_out, "--threads", str(args.threads)] + common, args.threads)
        row = {"op": op, "batch": batch, "size": size, "gflop": flops[(op, batch, size)] / 1e9,
               "torch_s": min(res["times_s"]), "torch_median_s": statistics.median(res["times_s"]),
               "torch_rss": rss}
        print(f"  torch {tag}: {row['torch_s']:.3f} s, peak RSS {fmt_mb(rss)} MiB", file=sys.stderr)
        if args.darkroom:
            dr_out = os.path.join(REPO, "out", "bench", f"darkroom-{tag}.safetensors")
            argv = shlex.split(args.darkroom) + ["--model", args.dir, "--inputs", inputs_file(op, batch, size),
                                                  "--save", dr_out, "--threads", str(args.threads)] + common
            res, rss = run_child(argv, args.threads)
            row.update(darkroom_s=min(res["times_s"]), darkroom_median_s=statistics.median(res["times_s"]),
                       darkroom_rss=rss, rel_diff=compare(dr_out, torch_out))
            print(f"  darkroom {tag}: {row['darkroom_s']:.3f} s, peak RSS {fmt_mb(rss)} MiB", file=sys.stderr)
        rows.append(row)
        if args.darkroom and args.precision == "int8" and op != "transformer":
            pass  # the int8 folder's autoencoder is the fp32 one (`models quantize` leaves the VAE as it is)
        elif args.darkroom and args.precision:  # the same op with Darkroom's weights held at --precision
            p_out = os.path.join(REPO, "out", "bench", f"darkroom-{args.precision}-{tag}.safetensors")
            held = (["--model", int8_folder(args.dir, shlex.split(args.darkroom)[0])] if args.precision == "int8"
                    else ["--model", args.dir, "--precision", args.precision])
            argv = shlex.split(args.darkroom) + held + ["--inputs", inputs_file(op, batch, size),
                                                        "--save", p_out, "--threads", str(args.threads)] + common
            res, rss = run_child(argv, args.threads)
            rows.append(dict(row, precision=args.precision, darkroom_s=min(res["times_s"]),
                             darkroom_median_s=statistics.median(res["times_s"]), darkroom_rss=rss,
                             rel_diff=compare(p_out, torch_out)))
            print(f"  darkroom {args.precision} {tag}: {rows[-1]['darkroom_s']:.3f} s, peak RSS {fmt_mb(rss)} MiB",
                  file=sys.stderr)

    # "% of sgemm" is against the best OpenBLAS rate measured (numpy's bundled OpenBLAS, or Darkroom's own).
    peak = max(v for k, v in sg.items() if k.startswith(("numpy_openblas", "darkroom_blas")))
    lines = [
        f"CPU: {cpu_line()}.",
        f"Machine: {os.cpu_count()} CPUs, {args.threads} threads, float32; torch {torch.__version__}; "
        f"best of {args.repeats} after {args.warmup} warm-up.",
        f"sgemm (2048³, {args.threads} threads): OpenBLAS (numpy) "
        f"{sg.get('numpy_openblas_2048x2048x2048', 0):.0f} GFLOP/s, MKL (torch) "
        f"{sg.get('torch_mkl_2048x2048x2048', 0):.0f} GFLOP/s"
        + (f", Darkroom's BLAS {sg['darkroom_blas_2048x2048x2048']:.0f} GFLOP/s." if "darkroom_blas_2048x2048x2048"
           in sg else "."),
        "Load average (1/5/15 min) before the run: " + " / ".join(f"{x:.2f}" for x in load_before)
        + ", after: " + " / ".join(f"{x:.2f}" for x in os.getloadavg()) + f" ({os.cpu_count()} CPUs).",
        "",
        "| op | GFLOP | PyTorch s | PyTorch GFLOP/s | % of sgemm | PyTorch peak RSS MiB "
        "| Darkroom s | Darkroom GFLOP/s | % of sgemm | Darkroom peak RSS MiB "
        "| speed-up (PyTorch s / Darkroom s) | RSS Darkroom / PyTorch | max rel diff |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        name = f"{'DiT-XL/2 forward' if r['op'] == 'transformer' else 'VAE decode'}, batch {r['batch']}, {r['size']} px"
        if r.get("precision"):
            name += f" (Darkroom weights {r['precision']})"
        tr = r["gflop"] / r["torch_s"]
        cells = [name, f"{r['gflop']:.0f}", f"{r['torch_s']:.2f}", f"{tr:.0f}", f"{100 * tr / peak:.0f}%",
                 fmt_mb(r["torch_rss"])]
        if "darkroom_s" in r:
            dr = r["gflop"] / r["darkroom_s"]
            diff = r["rel_diff"]
            cells += [f"{r['darkroom_s']:.2f}", f"{dr:.0f}", f"{100 * dr / peak:.0f}%", fmt_mb(r["darkroom_rss"]),
                      f"{r['torch_s'] / r['darkroom_s']:.2f}×", f"{r['darkroom_rss'] / r['torch_rss']:.2f}",
                      "—" if diff is None else f"{diff:.1e}"]
        else:
            cells += ["—"] * 7
        lines.append("| " + " | ".join(cells) + " |")
    write_results(os.path.join(REPO, "out", "bench"), lines,
                  {"sgemm_gflops": sg, "rows": rows, "threads": args.threads, "torch": torch.__version__,
                   "loadavg_before": load_before, "loadavg_after": os.getloadavg()})


# --------------------------------------------------------------------------------------------------------------------
# Subcommand: image — the whole image, `darkroom generate` against diffusers' DiTPipeline

IMAGE = dict(label=97, seed=0, steps=8, guidance=4.0)  # one 256² image with CFG (two transformer rows per step)


def run_proc(argv: list[str], threads: int) -> tuple[str, str, int]:
    """Runs argv to the end; (stdout, stderr, this child's peak RSS in bytes). Output goes through temporary files
    so that os.wait4 reaps the child itself (its own rusage)."""
    import tempfile

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=child_env(threads), cwd=REPO, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if code != 0:
        raise SystemExit(f"benchmark child failed ({code}): {shlex.join(argv)}\n{stderr[-2000:]}")
    return stdout, stderr, usage.ru_maxrss * 1024


def cmd_torch_image(args) -> None:
    """Child: DiTPipeline.from_pretrained (float32), then `--repeats` images, each timed alone; saves the last PNG."""
    import torch

    torch.set_num_threads(args.threads)
    import diffusers
    from diffusers import DiTPipeline
    from diffusers.utils.pil_utils import numpy_to_pil

    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    t0 = time.perf_counter()
    pipe = DiTPipeline.from_pretrained(args.dir)
    load_s = time.perf_counter() - t0
    times = []
    for _ in range(args.warmup + args.repeats):
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = pipe(class_labels=[IMAGE["label"]], num_inference_steps=IMAGE["steps"],
                       guidance_scale=IMAGE["guidance"], generator=torch.Generator().manual_seed(IMAGE["seed"]),
                       output_type="np")
        times.append(time.perf_counter() - t0)
    numpy_to_pil(out.images)[0].save(args.save)
    print(json.dumps({"times_s": times[args.warmup:], "load_s": load_s}))


def psnr(a_png: str, b_png: str) -> float:
    import numpy as np
    from PIL import Image

    a = np.asarray(Image.open(a_png).convert("RGB"), dtype=np.float64)
    b = np.asarray(Image.open(b_png).convert("RGB"), dtype=np.float64)
    mse = float(((a - b) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def cmd_image(args) -> None:
    """One 8-step 256² DiT-XL/2 image with CFG: PyTorch fp32 (DiTPipeline) and `darkroom generate` fp32, at
    --precision, and with --cache-thresholds; each run in its own process (peak RSS from wait4), best of --repeats."""
    import re

    import torch

    me = [sys.executable, os.path.abspath(__file__)]
    subprocess.run(me + ["build", "--dir", args.dir], check=True, cwd=REPO)
    out_dir = os.path.join(REPO, "out", "bench", "image")
    os.makedirs(out_dir, exist_ok=True)
    load_before = os.getloadavg()
    rows = []
    torch_png = os.path.join(out_dir, "torch-fp32.png")
    previous = os.path.join(out_dir, "results.json")
    if args.reuse_torch and os.path.exists(previous) and os.path.exists(torch_png):
        with open(previous) as f:
            rows.append(dict(json.load(f)["rows"][0], reused=True))
    else:
        res, rss = run_child(me + ["torch-image", "--dir", args.dir, "--save", torch_png, "--threads",
                                   str(args.threads), "--warmup", "0", "--repeats", str(args.repeats)], args.threads)
        rows.append({"engine": "PyTorch (diffusers DiTPipeline)", "weights": "fp32", "cache": 0.0,
                     "s": min(res["times_s"]), "rss": rss, "png": torch_png, "load_s": res["load_s"]})
    print(f"  torch fp32: {rows[-1]['s']:.2f} s, peak RSS {fmt_mb(rows[-1]['rss'])} MiB"
          + (" (reused from the last run)" if rows[-1].get("reused") else ""), file=sys.stderr)
    if args.darkroom_bin:
        variants = [("fp32", 0.0)] + ([(args.precision, 0.0)] if args.precision else [])
        for t in [float(x) for x in args.cache_thresholds.split(",") if x] if args.cache_thresholds else []:
            variants.append((args.precision or "fp32", t))
        for weights, threshold in variants:
            png = os.path.join(out_dir, f"darkroom-{weights}" + (f"-cache{threshold:g}" if threshold else "") + ".png")
            model = int8_folder(args.dir, args.darkroom_bin) if weights == "int8" else args.dir
            argv = [args.darkroom_bin, "generate", "--model", model, "--class-id", str(IMAGE["label"]),
                    "--seed", str(IMAGE["seed"]), "--steps", str(IMAGE["steps"]), "--guidance", str(IMAGE["guidance"]),
                    "--sampler", "ddim", "-o", png]
            if weights not in ("fp32", "int8"):   # int8: the quantized folder itself
                argv += ["--precision", weights]
            if threshold:
                argv += ["--cache-threshold", f"{threshold:g}"]
            best, peak, skipped = None, 0, None
            for _ in range(args.repeats):   # one image per process: load, then the timed image (generate's own clock)
                _, err, r = run_proc(argv, args.threads)
                m = re.search(r"image\(s\) \d+x\d+, \d+ steps \S+, ([0-9.]+) s", err)
                if not m:
                    raise SystemExit(f"no timing line from darkroom generate:\n{err[-2000:]}")
                best = min(best or 1e9, float(m.group(1)))
                peak = max(peak, r)
                c = re.search(r"block 0 only at (\d+) of (\d+) steps", err)
                skipped = int(c.group(1)) if c else 0
            rows.append({"engine": "Darkroom (darkroom generate)", "weights": weights, "cache": threshold, "s": best,
                         "rss": peak, "png": png, "skipped_steps": skipped})
            print(f"  darkroom {weights} cache {threshold:g}: {best:.2f} s, peak RSS {fmt_mb(peak)} MiB"
                  + (f", {skipped} of {IMAGE['steps']} steps block 0 only" if threshold else ""), file=sys.stderr)
    fp32 = next((r for r in rows if r["engine"].startswith("Darkroom") and r["weights"] == "fp32" and not r["cache"]),
                None)
    torch_row = rows[0]
    lines = [
        f"CPU: {cpu_line()}.",
        f"Machine: {os.cpu_count()} CPUs, {args.threads} threads; torch {torch.__version__}. One image per process "
        f"(load not timed), best of {args.repeats}; class {IMAGE['label']}, seed {IMAGE['seed']}, {IMAGE['steps']} DDIM "
        f"steps, guidance {IMAGE['guidance']} (two transformer rows per step), 256×256 (latent 32×32), VAE decode included.",
        "Load average (1/5/15 min) before the run: " + " / ".join(f"{x:.2f}" for x in load_before)
        + ", after: " + " / ".join(f"{x:.2f}" for x in os.getloadavg()) + f" ({os.cpu_count()} CPUs).",
        "",
        "| engine | weights | cache_threshold | transformer steps skipped | s | speed-up vs PyTorch fp32 | peak RSS MiB "
        "| RSS / PyTorch fp32 | PSNR vs PyTorch fp32 dB | PSNR vs Darkroom fp32 dB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    if torch_row.get("reused"):
        lines.insert(3, "The PyTorch row is reused from an earlier run (`--reuse-torch`), not measured side by side.")
    for r in rows:
        cells = [r["engine"], r["weights"], f"{r['cache']:g}" if r["cache"] else "off",
                 "—" if not r["cache"] else f"{r['skipped_steps']} of {IMAGE['steps']}",
                 f"{r['s']:.2f}", f"{torch_row['s'] / r['s']:.2f}×" if r["s"] > 0 else "—", fmt_mb(r["rss"]),
                 f"{r['rss'] / torch_row['rss']:.2f}", "—" if r is torch_row else f"{psnr(r['png'], torch_row['png']):.1f}",
                 "—" if (fp32 is None or r is fp32 or r is torch_row) else f"{psnr(r['png'], fp32['png']):.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    write_results(out_dir, lines, {"rows": rows, "threads": args.threads, "torch": torch.__version__, "image": IMAGE,
                                   "loadavg_before": load_before, "loadavg_after": os.getloadavg()})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd")
    b = sub.add_parser("build", help="build the random-weight DiT-XL/2-256 + SD VAE folder (idempotent)")
    b.add_argument("--dir", default=DEFAULT_DIR)
    t = sub.add_parser("torch-op", help="one PyTorch measurement (child process; same contract as --darkroom)")
    t.add_argument("--model", "--dir", dest="dir", default=DEFAULT_DIR)
    t.add_argument("--inputs", default=None)
    t.add_argument("--op", choices=["transformer", "vae-decode"], required=True)
    t.add_argument("--batch", type=int, default=1)
    t.add_argument("--size", type=int, default=256)
    t.add_argument("--warmup", type=int, default=1)
    t.add_argument("--repeats", type=int, default=3)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--save", default=None)
    s = sub.add_parser("sgemm", help="this machine's sgemm GFLOP/s (numpy's OpenBLAS and torch's MKL)")
    s.add_argument("--threads", type=int, default=2)
    s.add_argument("--repeats", type=int, default=5)
    ti = sub.add_parser("torch-image", help="child: one whole DiTPipeline image, timed (see `image`)")
    ti.add_argument("--dir", default=DEFAULT_DIR)
    ti.add_argument("--save", required=True)
    ti.add_argument("--threads", type=int, default=2)
    ti.add_argument("--warmup", type=int, default=0)
    ti.add_argument("--repeats", type=int, default=1)
    im = sub.add_parser("image", help="the whole 8-step 256² image with CFG: DiTPipeline vs `darkroom generate`")
    im.add_argument("--dir", default=DEFAULT_DIR)
    im.add_argument("--threads", type=int, default=2)
    im.add_argument("--repeats", type=int, default=1, help="processes per row (best time, highest peak RSS)")
    im.add_argument("--darkroom-bin", default=None, help="the darkroom executable, e.g. .build/release/darkroom")
    im.add_argument("--precision", default=None, choices=["bf16", "fp16", "int8"],
                    help="also a row with these weights (int8: DIR-int8, made once with `darkroom models quantize`)")
    im.add_argument("--reuse-torch", action="store_true",
                    help="take the PyTorch row from the last run's results.json (not side by side: say so)")
    im.add_argument("--cache-thresholds", default=None,
                    help="comma list: rows with `--cache-threshold T` (at --precision when given, else fp32)")
    r = sub.add_parser("run", help="build + sgemm + every measurement, prints the table (default)")
    for p in (r, ap):
        p.add_argument("--dir", default=DEFAULT_DIR)
        p.add_argument("--threads", type=int, default=2)
        p.add_argument("--warmup", type=int, default=1)
        p.add_argument("--repeats", type=int, default=3)
        p.add_argument("--only", default=None, help="comma list of op tags, e.g. transformer-b2-256,vae-decode-b1-512")
        p.add_argument("--darkroom", default=None,
                       help="Darkroom bench command prefix, e.g. '.build/release/darkroom bench' (see README)")
        p.add_argument("--precision", default=None, choices=["bf16", "fp16", "int8"],
                       help="also run Darkroom with its weights held at this precision (extra rows; "
                            "`darkroom bench --precision`): bf16 goes through oneDNN's bf16 dot products where the "
                            "CPU has AVX512_BF16; int8 runs the transformer ops on DIR-int8 (`darkroom models "
                            "quantize`, made once), through int8 dot products where the CPU has VNNI")
        p.add_argument("--darkroom-sgemm", action="store_true",
                       help="also time sgemm through the Darkroom command (--op sgemm)")
    args = ap.parse_args()
    {"build": cmd_build, "torch-op": cmd_torch_op, "sgemm": cmd_sgemm, "torch-image": cmd_torch_image,
     "image": cmd_image}.get(args.cmd, cmd_run)(args)


if __name__ == "__main__":
    main()
