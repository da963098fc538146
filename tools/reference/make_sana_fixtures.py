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
from diffusers import AutoencoderDC, PixArtTransformer2DModel, SanaTransformer2DModel  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

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
    with open(os.path.join(w.root, "sana-manifest.json"), "w") as f:
        json.dump(w.manifest, f, indent=1, sort_keys=True)
    for k, v in w.manifest["components"].items():
        print(k, {kk: vv for kk, vv in v.items() if "rel" in kk or "alone" in kk})


if __name__ == "__main__":
    main()
