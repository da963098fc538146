#!/usr/bin/env python3
"""Reference fixtures for Darkroom's Sana / PixArt / DC-AE components, computed with PyTorch + diffusers 0.42.1 on CPU.

Writes into Tests/DiffusionTests/Fixtures/ (see the README.md there, section "Sana, PixArt and DC-AE components"):
  sana/<component>/     tiny random-weight models saved with save_pretrained (config.json + safetensors)
  expected/<component>.safetensors   forward outputs of each component in sana/
  sana-manifest.json    configs, inputs (timesteps, masks, guidance) and measured float32-vs-float64 distances

Run through tools/reference/make-sana-fixtures.sh (makes the venv). Deterministic: every random number comes from an
explicit torch.Generator().manual_seed(...). Single-threaded on purpose (shared 2-core machine).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil

import numpy as np
import torch

torch.set_num_threads(1)

import diffusers  # noqa: E402
from diffusers import (  # noqa: E402
    AutoencoderDC,
    AutoencoderKL,
    DPMSolverMultistepScheduler,
    PixArtAlphaPipeline,
    PixArtSigmaPipeline,
    PixArtTransformer2DModel,
    SanaPipeline,
    SanaSprintPipeline,
    SanaTransformer2DModel,
    SCMScheduler,
)
from diffusers.utils.pil_utils import numpy_to_pil  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import Gemma2Model, GemmaTokenizerFast, T5EncoderModel, T5TokenizerFast  # noqa: E402

diffusers.utils.logging.set_verbosity_error()
diffusers.utils.logging.disable_progress_bar()


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------------------------------------------------
# Component configs: the smallest shapes that still exercise every branch.

SANA = dict(  # as Sana 600M/1600M: no positional table, no qk_norm, no guidance embedding, patch 1
    in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=8, num_layers=2,
    num_cross_attention_heads=2, cross_attention_head_dim=8, cross_attention_dim=16, caption_channels=12,
    mlp_ratio=2.5, attention_bias=False, sample_size=8, patch_size=1,
)
SANA_PE = dict(  # sin-cos table (interpolation_scale set), qk_norm across heads, attention bias, patch 2
    in_channels=4, out_channels=8, num_attention_heads=2, attention_head_dim=8, num_layers=2,
    num_cross_attention_heads=4, cross_attention_head_dim=4, cross_attention_dim=16, caption_channels=12,
    mlp_ratio=2.5, attention_bias=True, sample_size=8, patch_size=2, interpolation_scale=2,
    qk_norm="rms_norm_across_heads",
)
SANA_SPRINT = dict(  # as Sana Sprint: guidance embedding, qk_norm across heads, timestep_scale
    in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=8, num_layers=2,
    num_cross_attention_heads=2, cross_attention_head_dim=8, cross_attention_dim=16, caption_channels=12,
    mlp_ratio=2.5, attention_bias=False, sample_size=8, patch_size=1, guidance_embeds=True,
    qk_norm="rms_norm_across_heads", timestep_scale=1000.0,
)
PIXART_SIGMA = dict(  # as PixArt-Σ: no extra conditions, interpolation_scale given
    num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=8, num_layers=2,
    cross_attention_dim=16, caption_channels=12, sample_size=8, patch_size=2, interpolation_scale=2,
    use_additional_conditions=False, norm_type="ada_norm_single", num_embeds_ada_norm=1000,
)
PIXART_ALPHA = dict(  # as PixArt-α 1024-MS: resolution and aspect-ratio conditions (width divisible by 3)
    num_attention_heads=3, attention_head_dim=8, in_channels=4, out_channels=8, num_layers=2,
    cross_attention_dim=24, caption_channels=12, sample_size=8, patch_size=2,
    use_additional_conditions=True, norm_type="ada_norm_single", num_embeds_ada_norm=1000,
)
DCAE_SANA = dict(  # as dc-ae-f32c32-sana-1.0: ResBlocks then EfficientViT blocks with a 5x5 multi-scale branch,
    # RMSNorm + SiLU everywhere, stride-2 conv down, nearest-interpolate + conv up
    in_channels=3, latent_channels=8, attention_head_dim=8,
    encoder_block_types=["ResBlock", "ResBlock", "EfficientViTBlock"],
    decoder_block_types=["ResBlock", "ResBlock", "EfficientViTBlock"],
    encoder_block_out_channels=[8, 16, 32], decoder_block_out_channels=[8, 16, 32],
    encoder_layers_per_block=[1, 1, 2], decoder_layers_per_block=[1, 1, 2],
    encoder_qkv_multiscales=[[], [], [5]], decoder_qkv_multiscales=[[], [], [5]],
    downsample_block_type="Conv", upsample_block_type="interpolate",
    decoder_norm_types="rms_norm", decoder_act_fns="silu", scaling_factor=0.41407,
)
DCAE_IN = dict(  # as dc-ae-f32c32-in-1.0 / f64c128: no first-stage layers (pixel-unshuffle conv_in and
    # pixel-shuffle conv_out), BatchNorm + ReLU ResBlocks in the decoder, pixel (un)shuffle up/down, no multi-scale
    in_channels=3, latent_channels=8, attention_head_dim=8,
    encoder_block_types=["ResBlock", "ResBlock", "EfficientViTBlock"],
    decoder_block_types=["ResBlock", "ResBlock", "EfficientViTBlock"],
    encoder_block_out_channels=[8, 16, 32], decoder_block_out_channels=[8, 16, 32],
    encoder_layers_per_block=[0, 1, 1], decoder_layers_per_block=[0, 2, 1],
    encoder_qkv_multiscales=[[], [], []], decoder_qkv_multiscales=[[], [], []],
    downsample_block_type="pixel_unshuffle", upsample_block_type="pixel_shuffle",
    decoder_norm_types=["batch_norm", "batch_norm", "rms_norm"], decoder_act_fns=["relu", "relu", "silu"],
)


# --------------------------------------------------------------------------------------------------------------------
# Random weights: EVERY parameter and BatchNorm statistic overwritten (the default init zeroes some layers).


def std_for(name: str, p: torch.Tensor) -> float:
    if name.endswith("scale_shift_table"):
        return 0.3
    if p.dim() == 1:
        return 0.1 if ("norm" in name) else 0.05
    fan_in = int(np.prod(p.shape[1:]))
    gain = 1.0
    if name.endswith(".linear.weight") and ("time_embed" in name or "adaln_single" in name):
        gain = 0.5  # modulation ~ 0.5
    if "conv2" in name or "to_out" in name or "conv_point" in name or "ff.net.2" in name:
        gain = 0.6
    return gain / fan_in**0.5


@torch.no_grad()
def randomize(model: torch.nn.Module, seed: int) -> None:
    g = gen(seed)
    for name, p in sorted(model.named_parameters()):
        v = torch.randn(p.shape, generator=g, dtype=torch.float32) * std_for(name, p)
        if p.dim() == 1 and "norm" in name and name.endswith(".weight"):
            v = v + 1.0
        p.copy_(v)
    for name, b in sorted(model.named_buffers()):
        if name.endswith("running_mean"):
            b.copy_(torch.randn(b.shape, generator=g) * 0.2)
        elif name.endswith("running_var"):
            b.copy_(0.5 + torch.rand(b.shape, generator=g))


def build(cls, config: dict, seed: int, folder: str):
    model = cls(**config)
    randomize(model, seed)
    model.eval()
    if os.path.exists(folder):
        shutil.rmtree(folder)
    model.save_pretrained(folder, safe_serialization=True)
    loaded = cls.from_pretrained(folder).eval()
    for (n1, a), (n2, b) in zip(sorted(model.state_dict().items()), sorted(loaded.state_dict().items())):
        assert n1 == n2 and torch.equal(a, b), f"{folder}: {n1} did not round-trip"
    return loaded


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max() / b.double().abs().max())


class Writer:
    def __init__(self, root: str):
        self.root = root
        self.manifest: dict = {
            "generated_by": "tools/reference/make-sana-fixtures.sh",
            "torch": torch.__version__,
            "diffusers": diffusers.__version__,
            "components": {},
            "files": {},
        }

    def save(self, fname: str, tensors: dict[str, torch.Tensor], about: str) -> None:
        out = {k: v.detach().to(torch.float32).contiguous() for k, v in tensors.items()}
        save_file(out, os.path.join(self.root, "expected", fname), metadata={"about": about})
        self.manifest["files"][fname] = {k: list(v.shape) for k, v in out.items()}


# --------------------------------------------------------------------------------------------------------------------
# Cases


def transformer_inputs(config: dict, seed: int, kept: int):
    """x [2,C,8,8], x_8x12 [2,C,8,12], caption [2,6,caption_channels], mask [2,6] (row 1 keeps `kept` tokens)."""
    c, cap = config["in_channels"], config["caption_channels"]
    x = torch.randn(2, c, 8, 8, generator=gen(seed + 1))
    x_ns = torch.randn(2, c, 8, 12, generator=gen(seed + 2))
    enc = torch.randn(2, 6, cap, generator=gen(seed + 3))
    mask = torch.tensor([[1] * 6, [1] * kept + [0] * (6 - kept)], dtype=torch.int64)
    return x, x_ns, enc, mask


@torch.no_grad()
def sana_case(w: Writer, name: str, config: dict, seed: int) -> None:
    model = build(SanaTransformer2DModel, config, seed, os.path.join(w.root, "sana", name))
    x, x_ns, enc, mask = transformer_inputs(config, seed, kept=3)
    t = torch.tensor([999.0, 20.5])
    kwargs = {}
    if config.get("guidance_embeds"):
        kwargs["guidance"] = torch.tensor([0.45, 0.3])
    out = model(x, encoder_hidden_states=enc, timestep=t, encoder_attention_mask=mask, **kwargs).sample
    out_ns = model(x_ns, encoder_hidden_states=enc, timestep=t, encoder_attention_mask=mask, **kwargs).sample
    # float64 probe: the same inputs through a float64 copy
    m64 = SanaTransformer2DModel.from_pretrained(os.path.join(w.root, "sana", name)).double().eval()
    kw64 = {k: v.double() for k, v in kwargs.items()}
    out64 = m64(x.double(), encoder_hidden_states=enc.double(), timestep=t.double(), encoder_attention_mask=mask,
                **kw64).sample
    # batch independence: row 1 alone equals row 1 of the batch
    alone = model(x[1:], encoder_hidden_states=enc[1:], timestep=t[1:], encoder_attention_mask=mask[1:],
                  **{k: v[1:] for k, v in kwargs.items()}).sample
    tensors = {"x": x, "x_8x12": x_ns, "encoder_hidden_states": enc, "encoder_attention_mask": mask.float(),
               "timestep": t, "out": out, "out_8x12": out_ns}
    tensors.update({k: v for k, v in kwargs.items()})
    w.save(f"{name}.safetensors", tensors, f"SanaTransformer2DModel sana/{name}: forward outputs")
    w.manifest["components"][name] = {
        "class": "SanaTransformer2DModel", "config": config, "seed": seed, "timestep": t.tolist(),
        "guidance": kwargs["guidance"].tolist() if "guidance" in kwargs else None, "mask": mask.tolist(),
        "out_rel_f32_vs_f64": rel(out, out64), "row1_alone_vs_batched_max_abs": float((alone - out[1:]).abs().max()),
    }


@torch.no_grad()
def pixart_case(w: Writer, name: str, config: dict, seed: int) -> None:
    model = build(PixArtTransformer2DModel, config, seed, os.path.join(w.root, "sana", name))
    x, x_ns, enc, mask = transformer_inputs(config, seed, kept=2)
    t = torch.tensor([999, 20], dtype=torch.int64)
    added = {"resolution": None, "aspect_ratio": None}
    added_ns = dict(added)
    if config.get("use_additional_conditions"):
        added = {"resolution": torch.tensor([[64.0, 64.0], [64.0, 64.0]]),
                 "aspect_ratio": torch.tensor([[1.0], [1.0]])}
        added_ns = {"resolution": torch.tensor([[64.0, 96.0], [64.0, 96.0]]),
                    "aspect_ratio": torch.tensor([[1.5], [1.5]])}
    out = model(x, encoder_hidden_states=enc, timestep=t, added_cond_kwargs=added,
                encoder_attention_mask=mask).sample
    out_ns = model(x_ns, encoder_hidden_states=enc, timestep=t, added_cond_kwargs=added_ns,
                   encoder_attention_mask=mask).sample
    m64 = PixArtTransformer2DModel.from_pretrained(os.path.join(w.root, "sana", name)).double().eval()
    a64 = {k: (v.double() if v is not None else None) for k, v in added.items()}
    out64 = m64(x.double(), encoder_hidden_states=enc.double(), timestep=t, added_cond_kwargs=a64,
                encoder_attention_mask=mask).sample
    tensors = {"x": x, "x_8x12": x_ns, "encoder_hidden_states": enc, "encoder_attention_mask": mask.float(),
               "timestep": t.float(), "out": out, "out_8x12": out_ns}
    if config.get("use_additional_conditions"):
        tensors.update({"resolution": added["resolution"], "aspect_ratio": added["aspect_ratio"],
                        "resolution_8x12": added_ns["resolution"], "aspect_ratio_8x12": added_ns["aspect_ratio"]})
    w.save(f"{name}.safetensors", tensors, f"PixArtTransformer2DModel sana/{name}: forward outputs")
    w.manifest["components"][name] = {
        "class": "PixArtTransformer2DModel", "config": config, "seed": seed, "timestep": t.tolist(),
        "mask": mask.tolist(), "out_rel_f32_vs_f64": rel(out, out64),
    }


@torch.no_grad()
def dcae_case(w: Writer, name: str, config: dict, seed: int) -> None:
    model = build(AutoencoderDC, config, seed, os.path.join(w.root, "sana", name))
    lat = config["latent_channels"]
    z = torch.randn(1, lat, 4, 4, generator=gen(seed + 1))
    z_ns = torch.randn(2, lat, 4, 6, generator=gen(seed + 2))
    z_tiny = torch.randn(1, lat, 2, 2, generator=gen(seed + 3))  # H*W = 4 <= head dim 8: quadratic attention
    img = torch.rand(1, 3, 16, 16, generator=gen(seed + 4)) * 2 - 1
    img_ns = torch.rand(1, 3, 16, 24, generator=gen(seed + 5)) * 2 - 1
    decoded = model.decode(z).sample
    decoded_ns = model.decode(z_ns).sample
    decoded_tiny = model.decode(z_tiny).sample
    encoded = model.encode(img).latent
    encoded_ns = model.encode(img_ns).latent
    m64 = AutoencoderDC.from_pretrained(os.path.join(w.root, "sana", name)).double().eval()
    d64 = m64.decode(z.double()).sample
    e64 = m64.encode(img.double()).latent
    w.save(f"{name}.safetensors",
           {"z": z, "decoded": decoded, "z_4x6": z_ns, "decoded_4x6": decoded_ns, "z_2x2": z_tiny,
            "decoded_2x2": decoded_tiny, "image": img, "encoded": encoded, "image_16x24": img_ns,
            "encoded_16x24": encoded_ns},
           f"AutoencoderDC sana/{name}: decode and encode (no scaling factor applied)")
    w.manifest["components"][name] = {
        "class": "AutoencoderDC", "config": config, "seed": seed,
        "decoded_rel_f32_vs_f64": rel(decoded, d64), "encoded_rel_f32_vs_f64": rel(encoded, e64),
    }


# --------------------------------------------------------------------------------------------------------------------
# Whole text-to-image pipelines: the text fixtures' tiny tokenizers and encoders (Tests/TextTests/Fixtures) with tiny
# random transformers and autoencoders, saved with save_pretrained and run by the stock diffusers pipelines.

PIPE_PIXART = dict(  # PixArt-Σ-shaped, caption = the T5 fixture's d_model 32
    num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=8, num_layers=2, cross_attention_dim=16,
    caption_channels=32, sample_size=32, patch_size=2, interpolation_scale=1, use_additional_conditions=False,
    norm_type="ada_norm_single", num_embeds_ada_norm=1000,
)
PIPE_PIXART_ALPHA = dict(  # PixArt-α-1024-shaped: sample_size 128 turns on the resolution/aspect conditions
    num_attention_heads=3, attention_head_dim=8, in_channels=4, out_channels=8, num_layers=2, cross_attention_dim=24,
    caption_channels=32, sample_size=128, patch_size=2, norm_type="ada_norm_single", num_embeds_ada_norm=1000,
)
PIPE_VAE = dict(  # the latent-dit fixture's AutoencoderKL shape (x4)
    in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 3, up_block_types=["UpDecoderBlock2D"] * 3,
    block_out_channels=[16, 32, 32], layers_per_block=1, latent_channels=4, norm_num_groups=8, sample_size=32,
)
PIPE_PIXART_SCHEDULER = dict(  # PixArt-Σ's scheduler_config.json
    algorithm_type="dpmsolver++", beta_end=0.02, beta_schedule="linear", beta_start=0.0001, lower_order_final=True,
    num_train_timesteps=1000, prediction_type="epsilon", solver_order=2, solver_type="midpoint",
    timestep_spacing="linspace",
)
PIPE_SANA = dict(SANA, caption_channels=48, in_channels=8, out_channels=8, sample_size=16)  # Gemma hidden 48; latent 8;
# sample_size 16 = the 512 bins (PixArt's 32 = the 256 bins)
PIPE_SPRINT = dict(SANA_SPRINT, caption_channels=48, in_channels=8, out_channels=8)
PIPE_SANA_SCHEDULER = dict(  # Sana_600M's scheduler_config.json
    algorithm_type="dpmsolver++", beta_end=0.02, beta_schedule="linear", beta_start=0.0001, final_sigmas_type="zero",
    flow_shift=3.0, lower_order_final=True, num_train_timesteps=1000, prediction_type="flow_prediction", solver_order=2,
    solver_type="midpoint", timestep_spacing="linspace", use_flow_sigmas=True,
)


def randomized(cls, config: dict, seed: int):
    model = cls(**config)
    randomize(model, seed)
    return model.eval()


def text_parts(root: str, kind: str):
    text = os.path.join(root, "..", "..", "TextTests", "Fixtures")
    if kind == "t5":
        tok = T5TokenizerFast.from_pretrained(os.path.join(text, "tokenizers", "t5"))
        enc = T5EncoderModel.from_pretrained(os.path.join(text, "encoders", "t5-f32")).eval()
    else:
        tok = GemmaTokenizerFast.from_pretrained(os.path.join(text, "tokenizers", "gemma"))
        enc = Gemma2Model.from_pretrained(os.path.join(text, "encoders", "gemma2-f32")).eval()
    assert len(tok) > 100, "tokenizer lost its vocabulary (see field notes)"
    return tok, enc


def save_pipeline(pipe, folder: str, cls):
    if os.path.exists(folder):
        shutil.rmtree(folder)
    pipe.save_pretrained(folder, safe_serialization=True)
    loaded = cls.from_pretrained(folder)
    loaded.set_progress_bar_config(disable=True)
    return loaded


@torch.no_grad()
def pipeline_case(w: Writer, pipe, name: str, folder: str, *, prompts, seeds, steps, guidance, height, width,
                  negative=None, binning=False) -> None:
    kwargs = dict(prompt=prompts, generator=[gen(s) for s in seeds], height=height, width=width, output_type="pt",
                  use_resolution_binning=binning, guidance_scale=guidance)
    if isinstance(pipe, (PixArtSigmaPipeline, PixArtAlphaPipeline)):
        kwargs.update(clean_caption=False, num_inference_steps=steps, negative_prompt=negative or "")
    elif isinstance(pipe, SanaPipeline):
        kwargs.update(num_inference_steps=steps, negative_prompt=negative or "")
    else:
        kwargs.update(num_inference_steps=steps)
        if steps != 2:
            kwargs.update(intermediate_timesteps=None)
    captured = {}
    original = pipe.vae.decode

    def decode(z, *a, **k):  # the scaled latents the pipeline decodes
        captured["decoder_input"] = z.clone()
        return original(z, *a, **k)

    pipe.vae.decode = decode
    image = pipe(**kwargs).images  # [B, 3, H, W] in [0, 1]
    pipe.vae.decode = original
    C = pipe.transformer.config.in_channels
    scale = 2 ** (len(pipe.vae.config.block_out_channels) - 1) if hasattr(pipe.vae.config, "block_out_channels") \
        else 2 ** (len(pipe.vae.config.encoder_block_out_channels) - 1)
    gh, gw = captured["decoder_input"].shape[2] * scale, captured["decoder_input"].shape[3] * scale  # the bin
    init = torch.cat([torch.randn(1, C, gh // scale, gw // scale, generator=gen(s)) for s in seeds])
    hwc = image.permute(0, 2, 3, 1).float().numpy()
    u8 = (hwc * 255).round()
    for i in range(len(prompts)):
        numpy_to_pil(hwc[i:i + 1])[0].save(os.path.join(w.root, "expected", f"{name}-{i}.png"), optimize=False)
    w.save(f"{name}.safetensors", {"latents_init": init, "decoder_input": captured["decoder_input"], "image": image,
                                   "image_u8_hwc": torch.from_numpy(u8)},
           f"{type(pipe).__name__} sana/{os.path.basename(folder)}: a whole image")
    w.manifest["pipelines"][name] = {
        "folder": f"sana/{os.path.basename(folder)}", "class": type(pipe).__name__, "prompts": prompts,
        "negative_prompt": negative, "seeds": seeds, "steps": steps, "guidance_scale": guidance, "height": height,
        "width": width, "use_resolution_binning": binning, "generated_size": [gh, gw], "clamped_fraction": float(((image == 0) | (image == 1)).float().mean()),
    }


def build_pipelines(w: Writer) -> None:
    w.manifest["pipelines"] = {}
    tok, enc = text_parts(w.root, "t5")
    folder = os.path.join(w.root, "sana", "pixart-sigma-pipeline")
    pipe = PixArtSigmaPipeline(tokenizer=tok, text_encoder=enc,
                               transformer=randomized(PixArtTransformer2DModel, PIPE_PIXART, 8001),
                               vae=randomized(AutoencoderKL, PIPE_VAE, 8002),
                               scheduler=DPMSolverMultistepScheduler(**PIPE_PIXART_SCHEDULER))
    pipe = save_pipeline(pipe, folder, PixArtSigmaPipeline)
    pipeline_case(w, pipe, "pixart-sigma-2prompts", folder, prompts=["a red circle", "Blue square ON green"],
                  seeds=[1, 2], steps=6, guidance=4.5, height=32, width=32)
    pipeline_case(w, pipe, "pixart-sigma-negative-32x48", folder, prompts=["a yellow star"], seeds=[3], steps=5,
                  guidance=3.0, height=32, width=48, negative="blurry, dark")
    pipeline_case(w, pipe, "pixart-sigma-binning-48x32", folder, prompts=["a green triangle"], seeds=[10], steps=3,
                  guidance=4.5, height=48, width=32, binning=True)

    folder = os.path.join(w.root, "sana", "pixart-alpha-pipeline")
    pipe = PixArtAlphaPipeline(tokenizer=tok, text_encoder=enc,
                               transformer=randomized(PixArtTransformer2DModel, PIPE_PIXART_ALPHA, 8301),
                               vae=randomized(AutoencoderKL, PIPE_VAE, 8302),
                               scheduler=DPMSolverMultistepScheduler(**PIPE_PIXART_SCHEDULER))
    pipe = save_pipeline(pipe, folder, PixArtAlphaPipeline)
    pipeline_case(w, pipe, "pixart-alpha-negative-32x48", folder, prompts=["a red circle", "a yellow star"], seeds=[12, 13],
                  steps=4, guidance=4.5, height=32, width=48, negative="blurry")

    tok, enc = text_parts(w.root, "gemma")
    vae = randomized(AutoencoderDC, DCAE_SANA, 8102)
    folder = os.path.join(w.root, "sana", "sana-pipeline")
    pipe = SanaPipeline(tokenizer=tok, text_encoder=enc, transformer=randomized(SanaTransformer2DModel, PIPE_SANA, 8101),
                        vae=vae, scheduler=DPMSolverMultistepScheduler(**PIPE_SANA_SCHEDULER))
    pipe = save_pipeline(pipe, folder, SanaPipeline)
    pipeline_case(w, pipe, "sana-2prompts", folder, prompts=["a red circle", "Blue square ON green"], seeds=[4, 5],
                  steps=6, guidance=4.5, height=32, width=32)
    pipeline_case(w, pipe, "sana-negative-32x64", folder, prompts=["a yellow star"], seeds=[6], steps=5, guidance=3.0,
                  height=32, width=64, negative="blurry, dark")
    pipeline_case(w, pipe, "sana-binning-32x64", folder, prompts=["a green triangle"], seeds=[11], steps=3, guidance=4.5,
                  height=32, width=64, binning=True)

    folder = os.path.join(w.root, "sana", "sprint-pipeline")
    pipe = SanaSprintPipeline(tokenizer=tok, text_encoder=enc,
                              transformer=randomized(SanaTransformer2DModel, PIPE_SPRINT, 8201), vae=vae,
                              scheduler=SCMScheduler())
    pipe = save_pipeline(pipe, folder, SanaSprintPipeline)
    pipeline_case(w, pipe, "sprint-2steps", folder, prompts=["a red circle", "Blue square ON green"], seeds=[7, 8],
                  steps=2, guidance=4.5, height=32, width=32)
    pipeline_case(w, pipe, "sprint-1step-32x64", folder, prompts=["a yellow star"], seeds=[9], steps=1, guidance=4.5,
                  height=32, width=64)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    w = Writer(os.path.abspath(args.out))
    os.makedirs(os.path.join(w.root, "expected"), exist_ok=True)
    os.makedirs(os.path.join(w.root, "sana"), exist_ok=True)
    sana_case(w, "sana-transformer", SANA, 5001)
    sana_case(w, "sana-pe-transformer", SANA_PE, 5101)
    sana_case(w, "sprint-transformer", SANA_SPRINT, 5201)
    pixart_case(w, "pixart-sigma-transformer", PIXART_SIGMA, 6001)
    pixart_case(w, "pixart-alpha-transformer", PIXART_ALPHA, 6101)
    dcae_case(w, "dcae-sana", DCAE_SANA, 7001)
    dcae_case(w, "dcae-in", DCAE_IN, 7101)
    build_pipelines(w)
    with open(os.path.join(w.root, "sana-manifest.json"), "w") as f:
        json.dump(w.manifest, f, indent=1, sort_keys=True)
    for k, v in w.manifest["components"].items():
        print(k, {kk: vv for kk, vv in v.items() if "rel" in kk or "alone" in kk})
    for k, v in w.manifest["pipelines"].items():
        print(k, v["generated_size"], v["clamped_fraction"])


if __name__ == "__main__":
    main()
