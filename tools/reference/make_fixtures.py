#!/usr/bin/env python3
"""Reference fixtures for Darkroom's engine tests, computed with PyTorch + diffusers 0.42.1 on CPU.

Writes into Tests/DiffusionTests/Fixtures/ (see the README.md there for every file and tensor):
  latent-dit/   tiny random-weight DiTPipeline folder (DiTTransformer2DModel + AutoencoderKL + DDIMScheduler)
  pixel-dit/    tiny random-weight pixel-space DiT folder (no vae, FlowMatchEulerDiscreteScheduler)
  expected/     reference tensors (safetensors, float32 only) + PNGs
  manifest.json every case's settings, labels, seeds, timesteps, sigmas and measured tolerances

Run through tools/reference/make-fixtures.sh (makes the venv). Deterministic: every random number comes from an
explicit torch.Generator().manual_seed(...). Single-threaded on purpose (shared 2-core machine).
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import inspect
import json
import os
import shutil
import sys
import textwrap

import numpy as np
import torch

torch.set_num_threads(1)

import diffusers  # noqa: E402
from diffusers import (  # noqa: E402
    AutoencoderKL,
    DDIMScheduler,
    DiTPipeline,
    DiTTransformer2DModel,
    DPMSolverMultistepScheduler,
    FlowMatchEulerDiscreteScheduler,
)
from diffusers.models.embeddings import get_timestep_embedding  # noqa: E402
from diffusers.models.transformers import dit_transformer_2d  # noqa: E402
from diffusers.utils.pil_utils import numpy_to_pil  # noqa: E402
from diffusers.utils.torch_utils import randn_tensor  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

diffusers.utils.logging.set_verbosity_error()
diffusers.utils.logging.disable_progress_bar()

# --------------------------------------------------------------------------------------------------------------------
# Component shapes


LATENT_DIT = dict(
    num_attention_heads=2,
    attention_head_dim=8,  # E = 16
    in_channels=4,
    out_channels=8,  # learned sigma: [eps | variance]
    num_layers=2,
    sample_size=8,  # latent 8x8 -> image 32x32
    patch_size=2,
    num_embeds_ada_norm=1000,  # stock DiTPipeline hard-codes the null class 1000 (pipeline_dit.py:180)
)
LATENT_VAE = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=["DownEncoderBlock2D"] * 3,
    up_block_types=["UpDecoderBlock2D"] * 3,
    block_out_channels=[16, 32, 32],  # x4 spatial; 32->16 gives a conv_shortcut in up_blocks.2.resnets.0
    layers_per_block=1,  # decoder: 2 resnets per up block
    latent_channels=4,
    norm_num_groups=8,  # 2 or 4 channels per group: group statistics are really exercised
    sample_size=32,
)
LATENT_DDIM = dict(  # as facebook/DiT-XL-2-256's scheduler, every key written by save_pretrained
    num_train_timesteps=1000,
    beta_start=0.0001,
    beta_end=0.02,
    beta_schedule="linear",
    clip_sample=False,
    set_alpha_to_one=True,
    steps_offset=0,
    prediction_type="epsilon",
)
LATENT_ID2LABEL = {
    "0": "red circle, red disc",
    "1": "blue square",
    "2": "green triangle",
    "3": "yellow star",
    "4": "white ring",
}

PIXEL_DIT = dict(
    num_attention_heads=2,
    attention_head_dim=16,  # E = 32
    in_channels=3,
    out_channels=3,  # no learned sigma: the whole output is the velocity
    num_layers=2,
    sample_size=16,  # 16x16 RGB
    patch_size=2,
    num_embeds_ada_norm=6,  # 6 classes, null class = 6
)
PIXEL_FLOW = dict(num_train_timesteps=1000, shift=2.0)
PIXEL_ID2LABEL = {
    "0": "red circle",
    "1": "blue square",
    "2": "green triangle",
    "3": "yellow star",
    "4": "white ring",
    "5": "black cross",
}

# --------------------------------------------------------------------------------------------------------------------
# Random weights


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def dit_std(name: str, p: torch.Tensor, out_gain: float = 1.0) -> float:
    """Per-parameter std for DiT weights: O(1) activations, non-trivial AdaLN-zero modulation and output."""
    if name.endswith(".bias"):
        return 0.05
    if "embedding_table" in name:
        return 1.0
    fan_in = int(np.prod(p.shape[1:]))
    gain = 1.0
    if name.endswith("norm1.linear.weight") or name.startswith("proj_out_1."):
        gain = 0.5  # shift/scale/gate ~ 0.5
    if name.startswith("proj_out_2."):
        gain = out_gain
    return gain / fan_in**0.5


def vae_std(name: str, p: torch.Tensor) -> float:
    if "norm" in name:  # GroupNorm affine: 1 + N(0, 0.1) and N(0, 0.1) (offset added below)
        return 0.1
    if name.endswith(".bias"):
        return 0.05
    fan_in = int(np.prod(p.shape[1:]))
    gain = 1.0
    if name.endswith("conv2.weight") or name.endswith("to_out.0.weight"):
        gain = 0.5  # residual branches: keep growth modest
    if name == "decoder.conv_out.weight":
        gain = 0.8  # decoded image std ~ 0.5: few pixels clamp in (x/2 + 0.5).clamp(0, 1)
    return gain / fan_in**0.5


@torch.no_grad()
def randomize(model: torch.nn.Module, seed: int, std_fn) -> None:
    """Overwrite EVERY parameter (sorted by name) with N(0, std) from one generator. The default init zeroes the
    AdaLN-zero linears and the output layer, which would make the DiT output trivial."""
    g = gen(seed)
    for name, p in sorted(model.named_parameters()):
        v = torch.randn(p.shape, generator=g, dtype=torch.float32) * std_fn(name, p)
        if "norm" in name and name.endswith(".weight") and p.dim() == 1:
            v = v + 1.0
        p.copy_(v)


# --------------------------------------------------------------------------------------------------------------------
# Sampling loop: pipeline_dit.py:101-251 written out, generalised to (height, width), any null class, no VAE.


class Record:
    def __init__(self):
        self.step_input, self.step_noise_pred, self.step_model_output, self.step_output = [], [], [], []


@torch.no_grad()
def dit_loop(transformer, scheduler, vae, labels, guidance_scale, num_inference_steps, generator, height, width,
             null_class, record: Record | None = None, init_latents: torch.Tensor | None = None):
    """Returns (initial latents [B,C,H,W], final latents [B,C,H,W], image [B,3,H',W'] in [0,1]).

    Identical op-for-op to DiTPipeline.__call__ when height == width == sample_size, null_class == 1000 and
    vae is not None (checked bit-exact against the stock pipeline below). Differences, all forced by the stock
    pipeline's limits: latent size (height, width) instead of sample_size; null class = num_embeds_ada_norm
    instead of the hard-coded 1000; scale_model_input skipped when the scheduler has none (FlowMatch); without a
    VAE the final sample IS the image in [-1, 1].
    """
    batch_size = len(labels)
    latent_channels = transformer.config.in_channels
    latents = randn_tensor(shape=(batch_size, latent_channels, height, width), generator=generator,
                           device=torch.device("cpu"), dtype=transformer.dtype)
    if init_latents is not None:  # precision probe only: the same float32 draws, run in float64
        latents = init_latents.to(transformer.dtype)
    latent_model_input = torch.cat([latents] * 2) if guidance_scale > 1 else latents
    class_labels = torch.tensor(labels).reshape(-1)
    class_null = torch.tensor([null_class] * batch_size)
    class_labels_input = torch.cat([class_labels, class_null], 0) if guidance_scale > 1 else class_labels

    scheduler.set_timesteps(num_inference_steps)
    for t in scheduler.timesteps:
        if guidance_scale > 1:
            half = latent_model_input[: len(latent_model_input) // 2]
            latent_model_input = torch.cat([half, half], dim=0)
        if hasattr(scheduler, "scale_model_input"):
            latent_model_input = scheduler.scale_model_input(latent_model_input, t)
        timesteps = t[None].expand(latent_model_input.shape[0])
        noise_pred = transformer(latent_model_input, timestep=timesteps, class_labels=class_labels_input).sample
        if record is not None:
            record.step_input.append(latent_model_input.clone())
            record.step_noise_pred.append(noise_pred.clone())
        if guidance_scale > 1:
            eps, rest = noise_pred[:, :latent_channels], noise_pred[:, latent_channels:]
            cond_eps, uncond_eps = torch.split(eps, len(eps) // 2, dim=0)
            half_eps = uncond_eps + guidance_scale * (cond_eps - uncond_eps)
            eps = torch.cat([half_eps, half_eps], dim=0)
            noise_pred = torch.cat([eps, rest], dim=1)
        if transformer.config.out_channels // 2 == latent_channels:
            model_output, _ = torch.split(noise_pred, latent_channels, dim=1)
        else:
            model_output = noise_pred
        latent_model_input = scheduler.step(model_output, t, latent_model_input).prev_sample
        if record is not None:
            record.step_model_output.append(model_output.clone())
            record.step_output.append(latent_model_input.clone())

    final = latent_model_input.chunk(2, dim=0)[0] if guidance_scale > 1 else latent_model_input
    if vae is not None:
        samples = vae.decode(1 / vae.config.scaling_factor * final).sample
    else:
        samples = final
    samples = (samples / 2 + 0.5).clamp(0, 1)
    return latents, final, samples


# --------------------------------------------------------------------------------------------------------------------
# Non-square grids. diffusers' DiT unpatchify assumes a square token grid (dit_transformer_2d.py:
# `height = width = int(hidden_states.shape[1] ** 0.5)`), although forward() already computed the runtime
# height/width (in patches) on its first line and PatchEmbed already recomputes the sin-cos table for a non-square
# grid. The patch deletes exactly that one line, so unpatchify uses the runtime (height, width). Nothing else changes.

UNPATCHIFY_LINE = "height = width = int(hidden_states.shape[1] ** 0.5)"


@contextlib.contextmanager
def nonsquare_unpatchify():
    original = DiTTransformer2DModel.forward
    src = textwrap.dedent(inspect.getsource(original))
    if src.count(UNPATCHIFY_LINE) != 1:
        raise SystemExit("diffusers DiT forward changed: cannot apply the non-square unpatchify patch")
    src = src.replace(UNPATCHIFY_LINE, "pass  # darkroom fixture patch: keep the runtime height/width")
    namespace: dict = {}
    exec(compile(src, inspect.getsourcefile(original), "exec"), dit_transformer_2d.__dict__, namespace)
    DiTTransformer2DModel.forward = namespace["forward"]
    try:
        yield
    finally:
        DiTTransformer2DModel.forward = original


# --------------------------------------------------------------------------------------------------------------------
# Output helpers


class Writer:
    def __init__(self, root: str):
        self.root = root
        self.expected = os.path.join(root, "expected")
        self.manifest: dict = {
            "generated_by": "tools/reference/make-fixtures.sh",
            "torch": torch.__version__,
            "diffusers": diffusers.__version__,
            "numpy": np.__version__,
            "layout": "row-major float32; images [B,3,H,W] unless named *_hwc",
            "files": {},
            "cases": {},
        }

    def save(self, fname: str, tensors: dict[str, torch.Tensor], about: str) -> None:
        out = {k: v.detach().to(torch.float32).contiguous() for k, v in tensors.items()}
        save_file(out, os.path.join(self.expected, fname), metadata={"about": about})
        self.manifest["files"][fname] = {k: list(v.shape) for k, v in out.items()}

    def png(self, fname: str, image01: torch.Tensor) -> torch.Tensor:
        """image01 [3,H,W] in [0,1] -> PNG via diffusers' numpy_to_pil; returns the uint8 [H,W,3] as float32."""
        hwc = image01.permute(1, 2, 0).float().numpy()
        numpy_to_pil(hwc)[0].save(os.path.join(self.expected, fname), optimize=False)
        return torch.from_numpy((hwc * 255).round().astype("uint8").astype(np.float32))


def max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max())


def scheduler_tables(scheduler) -> dict[str, torch.Tensor]:
    out = {"timesteps": scheduler.timesteps.to(torch.float32)}
    if getattr(scheduler, "sigmas", None) is not None and isinstance(scheduler.sigmas, torch.Tensor):
        out["sigmas"] = scheduler.sigmas.to(torch.float32)
    return out


def jlist(t: torch.Tensor) -> list:
    return [float(x) if t.is_floating_point() else int(x) for x in t.flatten().tolist()]


# --------------------------------------------------------------------------------------------------------------------
# Builders


def build_pipeline(folder: str, dit_config: dict, dit_seed: int, vae_config: dict | None, vae_seed: int | None,
                   scheduler, id2label: dict[str, str], out_gain: float = 1.0) -> None:
    """Random-weight DiTPipeline folder (also used by bench/engine for the DiT-XL/2-256-shaped benchmark model)."""
    transformer = DiTTransformer2DModel(**dit_config)
    randomize(transformer, dit_seed, lambda n, p: dit_std(n, p, out_gain=out_gain))
    vae = None
    if vae_config is not None:
        vae = AutoencoderKL(**vae_config)
        randomize(vae, vae_seed, vae_std)
    pipe = DiTPipeline(transformer=transformer, vae=vae, scheduler=scheduler, id2label=id2label)
    pipe.save_pretrained(folder, safe_serialization=True)
    add_id2label(folder, id2label)


def build_latent_dit(folder: str) -> None:
    build_pipeline(folder, LATENT_DIT, 1001, LATENT_VAE, 1002, DDIMScheduler(**LATENT_DDIM), LATENT_ID2LABEL)


def add_id2label(folder: str, id2label: dict[str, str]) -> None:
    """DiTPipeline takes id2label as an __init__ kwarg but does not register it, so save_pretrained drops it. The Hub
    folder (facebook/DiT-XL-2-256) carries it in model_index.json, where from_pretrained passes it back to __init__."""
    path = os.path.join(folder, "model_index.json")
    with open(path) as f:
        index = json.load(f)
    index["id2label"] = id2label
    with open(path, "w") as f:
        json.dump(index, f, indent=2, sort_keys=True)
        f.write("\n")


def build_pixel_dit(folder: str) -> None:
    # out_gain 0.4: fewer clamped pixels in the final images
    build_pipeline(folder, PIXEL_DIT, 2001, None, None, FlowMatchEulerDiscreteScheduler(**PIXEL_FLOW),
                   PIXEL_ID2LABEL, out_gain=0.4)


def check_folder(folder: str) -> None:
    """A pipeline folder must hold only JSON configs and safetensors weights (no pickles, no time stamps)."""
    for dirpath, _, files in os.walk(folder):
        for f in files:
            if not (f.endswith(".json") or f.endswith(".safetensors")):
                raise SystemExit(f"unexpected file in pipeline folder: {os.path.join(dirpath, f)}")


# --------------------------------------------------------------------------------------------------------------------
# Cases


def run_case(w: Writer, name: str, pipe_dir: str, transformer, scheduler, vae, *, labels, seeds, guidance, steps,
             height, width, null_class, sampler, nonsquare=False, stock=None, keep_noise_pred=True):
    generators = [gen(s) for s in seeds]
    rec = Record()
    ctx = nonsquare_unpatchify() if nonsquare else contextlib.nullcontext()
    with ctx:
        latents, final, image = dit_loop(transformer, scheduler, vae, labels, guidance, steps, generators, height,
                                         width, null_class, rec)
        # Each request alone (batch of one, its own generator): what a non-batched engine run must match.
        solo_diff = 0.0
        if len(labels) > 1:
            for i, (lab, s) in enumerate(zip(labels, seeds)):
                _, _, img1 = dit_loop(transformer, scheduler, vae, [lab], guidance, steps, gen(s), height, width,
                                      null_class)
                solo_diff = max(solo_diff, max_abs(img1[0], image[i]))
        # Precision probe: the same run in float64 (same float32 initial latents and weights). Its distance to
        # the float32 image is the error any correct float32 implementation may have (tolerance sanity check).
        t64 = copy.deepcopy(transformer).double()
        v64 = copy.deepcopy(vae).double() if vae is not None else None
        s64 = type(scheduler).from_config(scheduler.config)
        _, _, img64 = dit_loop(t64, s64, v64, labels, guidance, steps, None, height, width, null_class,
                               init_latents=latents)
        f64_diff = max_abs(img64.float(), image)
    # step_output is not stored: it is recoverable exactly (documented in the Fixtures README).
    for k in range(len(rec.step_output) - 1):
        assert torch.equal(rec.step_input[k + 1], rec.step_output[k]), "step_input[k+1] != step output k"
    assert torch.equal(final, rec.step_output[-1][: len(labels)])
    tables = scheduler_tables(scheduler)
    tensors = {
        "latents_init": latents,
        "latents_final": final,
        "image": image,
        "step_input": torch.stack(rec.step_input),
        "step_model_output": torch.stack(rec.step_model_output),
        **tables,
    }
    if keep_noise_pred:
        tensors["step_noise_pred"] = torch.stack(rec.step_noise_pred)
    pngs = []
    u8 = []
    for i in range(len(labels)):
        fname = f"{name}-{i}.png"
        u8.append(w.png(fname, image[i]))
        pngs.append(fname)
    tensors["image_u8_hwc"] = torch.stack(u8)
    fname = f"{name}.safetensors"
    w.save(fname, tensors, f"case {name}")
    entry = {
        "pipeline": pipe_dir,
        "sampler": sampler,
        "scheduler_class": type(scheduler).__name__,
        "labels": labels,
        "null_class": null_class,
        "seeds": seeds,
        "generator": "one torch.Generator().manual_seed(seed) per request (randn_tensor with a generator list)",
        "guidance_scale": guidance,
        "num_inference_steps": steps,
        "latent_height": height,
        "latent_width": width,
        "image_height": int(image.shape[2]),
        "image_width": int(image.shape[3]),
        "nonsquare_unpatchify_patch": nonsquare,
        "timesteps": jlist(scheduler.timesteps),
        "file": fname,
        "pngs": pngs,
        "max_abs_image_batched_vs_solo": solo_diff,
        "max_abs_image_f32_vs_f64": f64_diff,
        "clamped_fraction": float(((image == 0) | (image == 1)).float().mean()),
    }
    if "sigmas" in tables:
        entry["sigmas"] = jlist(tables["sigmas"])
    if stock is not None:
        entry["max_abs_vs_stock_DiTPipeline"] = stock(image)
    w.manifest["cases"][name] = entry
    print(f"  {name}: image {tuple(image.shape)} solo diff {solo_diff:.2e} f64 diff {f64_diff:.2e} "
          f"clamped {entry['clamped_fraction']:.3f}", file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, help="Tests/DiffusionTests/Fixtures")
    args = ap.parse_args()
    root = os.path.abspath(args.out)
    for sub in ("latent-dit", "pixel-dit", "expected"):
        shutil.rmtree(os.path.join(root, sub), ignore_errors=True)
    os.makedirs(os.path.join(root, "expected"))
    w = Writer(root)

    latent_dir = os.path.join(root, "latent-dit")
    pixel_dir = os.path.join(root, "pixel-dit")
    build_latent_dit(latent_dir)
    build_pixel_dit(pixel_dir)
    check_folder(latent_dir)
    check_folder(pixel_dir)

    # Everything below uses the pipelines as loaded back from disk, exactly as a user would.
    latent = DiTPipeline.from_pretrained(latent_dir)
    latent.set_progress_bar_config(disable=True)
    lt, vae = latent.transformer.eval(), latent.vae.eval()
    pixel = DiTPipeline.from_pretrained(pixel_dir, vae=None)  # model_index has "vae": [null, null]
    pt = pixel.transformer.eval()
    assert pixel.vae is None
    assert latent.labels["red disc"] == 0 and pixel.labels["black cross"] == 5

    # ---- RNG -------------------------------------------------------------------------------------------------
    g = gen(0)
    randn1_twice = torch.cat([torch.randn(1, generator=g), torch.randn(1, generator=g)])
    w.save("rng.safetensors", {
        "seed0_n4": torch.randn(4, generator=gen(0)),
        "seed0_n1_twice": randn1_twice,
        "seed0_n16": torch.randn(16, generator=gen(0)),
        "seed42_n17": torch.randn(17, generator=gen(42)),
        "seed33_1x4x32x32": torch.randn(1, 4, 32, 32, generator=gen(33)),
        "seed4294967301_n20": torch.randn(20, generator=gen(4294967301)),
        "seed1_batch2x4x8x8_one_generator": randn_tensor((2, 4, 8, 8), generator=gen(1)),
        "seed1_2_batch2x4x8x8_generator_list": randn_tensor((2, 4, 8, 8), generator=[gen(1), gen(2)]),
        "seed3_1x3x16x24": randn_tensor((1, 3, 16, 24), generator=gen(3)),
    }, "torch.randn / randn_tensor vectors")

    # ---- timestep embedding + one transformer forward (latent) -----------------------------------------------
    with torch.no_grad():
        t_int = torch.tensor([0, 1, 37, 500, 999], dtype=torch.int64)
        t_float = torch.tensor([999.0, 500.5, 973.9, 0.25], dtype=torch.float32)
        emb = lt.transformer_blocks[0].norm1.emb
        x = torch.randn(4, 4, 8, 8, generator=gen(100))
        t = torch.tensor([999, 500, 20, 0], dtype=torch.int64)
        y = torch.tensor([1, 3, 1000, 7], dtype=torch.int64)
        out = lt(x, timestep=t, class_labels=y).sample
        with nonsquare_unpatchify():
            out_sq_patched = lt(x, timestep=t, class_labels=y).sample
            x_ns = torch.randn(2, 4, 8, 12, generator=gen(101))
            t_ns = torch.tensor([980, 480], dtype=torch.int64)
            y_ns = torch.tensor([2, 1000], dtype=torch.int64)
            out_ns = lt(x_ns, timestep=t_ns, class_labels=y_ns).sample
        assert torch.equal(out, out_sq_patched), "non-square patch must not change square outputs"
        lt64 = copy.deepcopy(lt).double()
        out64 = lt64(x.double(), timestep=t, class_labels=y).sample
        w.save("latent-dit-forward.safetensors", {
            "temb_sinusoid_t_int": get_timestep_embedding(t_int, 256, flip_sin_to_cos=True, downscale_freq_shift=1),
            "temb_sinusoid_t_float": get_timestep_embedding(t_float, 256, flip_sin_to_cos=True,
                                                            downscale_freq_shift=1),
            "cond_block0": emb(t, y, hidden_dtype=torch.float32),
            "cond_block1": lt.transformer_blocks[1].norm1.emb(t, y, hidden_dtype=torch.float32),
            "x": x, "out": out,
            "x_8x12": x_ns, "out_8x12": out_ns,
        }, "latent-dit transformer forward")
        w.manifest["latent-dit-forward"] = {
            "temb_t_int": jlist(t_int), "temb_t_float": jlist(t_float),
            "t": jlist(t), "labels": jlist(y), "t_8x12": jlist(t_ns), "labels_8x12": jlist(y_ns),
            "out_max_abs_f32_vs_f64_over_max_abs": float((out.double() - out64).abs().max() / out64.abs().max()),
        }

        # ---- VAE -------------------------------------------------------------------------------------------------
        z = torch.randn(1, 4, 8, 8, generator=gen(200))
        z_ns = torch.randn(1, 4, 8, 12, generator=gen(201))
        img_in = torch.rand(1, 3, 32, 32, generator=gen(300)) * 2 - 1
        dist = vae.encode(img_in).latent_dist
        w.save("latent-dit-vae.safetensors", {
            "z": z, "decoded": vae.decode(z).sample,
            "z_8x12": z_ns, "decoded_8x12": vae.decode(z_ns).sample,
            "encode_input": img_in, "encode_mean": dist.mean, "encode_logvar": dist.logvar, "encode_std": dist.std,
        }, "latent-dit AutoencoderKL decode/encode")

        # ---- pixel forward -------------------------------------------------------------------------------------
        xp = torch.randn(2, 3, 16, 16, generator=gen(400))
        tp = torch.tensor([973.5, 12.25], dtype=torch.float32)
        yp = torch.tensor([2, 6], dtype=torch.int64)
        outp = pt(xp, timestep=tp, class_labels=yp).sample
        with nonsquare_unpatchify():
            xp_ns = torch.randn(2, 3, 16, 24, generator=gen(401))
            outp_ns = pt(xp_ns, timestep=tp, class_labels=yp).sample
        w.save("pixel-dit-forward.safetensors", {
            "x": xp, "out": outp, "x_16x24": xp_ns, "out_16x24": outp_ns,
        }, "pixel-dit transformer forward")
        w.manifest["pixel-dit-forward"] = {"t": jlist(tp), "labels": jlist(yp)}

    # ---- scheduler tables -----------------------------------------------------------------------------------
    w.save("schedulers.safetensors", {
        "ddim_alphas_cumprod": latent.scheduler.alphas_cumprod,
        "ddim_betas": latent.scheduler.betas,
        "flow_sigmas_train": FlowMatchEulerDiscreteScheduler.from_config(pixel.scheduler.config).sigmas,
    }, "scheduler tables")

    # ---- whole images ---------------------------------------------------------------------------------------
    def stock_check(labels, seeds, guidance, steps, scheduler):
        def check(image):
            latent.scheduler = scheduler
            out = latent(class_labels=labels, guidance_scale=guidance, generator=[gen(s) for s in seeds],
                         num_inference_steps=steps, output_type="np").images
            return max_abs(torch.from_numpy(out).permute(0, 3, 1, 2), image)
        return check

    ddim = DDIMScheduler.from_config(latent.scheduler.config)
    run_case(w, "latent-ddim-cfg4", "latent-dit", lt, ddim, vae, labels=[1, 3], seeds=[1, 2], guidance=4.0,
             steps=10, height=8, width=8, null_class=1000, sampler="ddim",
             stock=stock_check([1, 3], [1, 2], 4.0, 10, DDIMScheduler.from_config(latent.scheduler.config)))
    dpm_config = latent.scheduler.config
    dpm = DPMSolverMultistepScheduler.from_config(dpm_config)
    run_case(w, "latent-dpmpp2m-cfg2.5", "latent-dit", lt, dpm, vae, labels=[0, 4], seeds=[5, 6], guidance=2.5,
             steps=12, height=8, width=8, null_class=1000, sampler="dpmpp_2m",
             stock=stock_check([0, 4], [5, 6], 2.5, 12, DPMSolverMultistepScheduler.from_config(dpm_config)))
    run_case(w, "latent-ddim-nocfg-8x12", "latent-dit", lt, DDIMScheduler.from_config(latent.scheduler.config), vae,
             labels=[2], seeds=[7], guidance=1.0, steps=6, height=8, width=12, null_class=1000, sampler="ddim",
             nonsquare=True)
    flow = FlowMatchEulerDiscreteScheduler.from_config(pixel.scheduler.config)
    run_case(w, "pixel-flow-cfg3", "pixel-dit", pt, flow, None, labels=[0, 5], seeds=[11, 12], guidance=3.0,
             steps=8, height=16, width=16, null_class=PIXEL_DIT["num_embeds_ada_norm"], sampler="flow_euler", keep_noise_pred=False)
    run_case(w, "pixel-flow-cfg3-16x24", "pixel-dit", pt,
             FlowMatchEulerDiscreteScheduler.from_config(pixel.scheduler.config), None, labels=[2, 3],
             seeds=[13, 14], guidance=3.0, steps=8, height=16, width=24,
             null_class=PIXEL_DIT["num_embeds_ada_norm"], sampler="flow_euler", nonsquare=True,
             keep_noise_pred=False)

    with open(os.path.join(root, "manifest.json"), "w") as f:
        json.dump(w.manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    total = 0
    for dirpath, _, files in os.walk(root):
        total += sum(os.path.getsize(os.path.join(dirpath, f)) for f in files)
    print(f"fixtures written to {root}: {total / 1e6:.2f} MB", file=sys.stderr)


if __name__ == "__main__":
    main()
