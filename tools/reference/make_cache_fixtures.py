#!/usr/bin/env python3
"""Step-caching reference: diffusers 0.42.1's FirstBlockCache on the stock DiTPipeline over the latent-dit fixture.

Writes Tests/DiffusionTests/Fixtures/expected/latent-ddim-fbc.safetensors and cache-manifest.json. Each image is
generated alone (one DiTPipeline call, batch of one: with guidance its conditional and unconditional rows share one
transformer call, hence one cache decision, as in Darkroom), with `apply_first_block_cache(pipe.transformer,
FirstBlockCacheConfig(threshold))` applied to a freshly loaded pipeline (the hook state starts empty). DiTPipeline
sets no cache context, so the script sets one ("cond") around the call. Recorded per image: the image, how many
steps ran every block (a forward hook on the last block's feed-forward counts them), and the relative change of
block 0's residual the hook measured at each step after the first (mean|r - r_prev| / mean|r_prev|).

The threshold is chosen so that every measured change is at least 0.01 away from it (checked below): the skip
pattern then cannot flip on float32 rounding differences between engines.

Run through tools/reference/make-cache-fixtures.sh. Deterministic, single-threaded.
"""
from __future__ import annotations

import argparse
import json
import os

import torch

torch.set_num_threads(1)

import diffusers  # noqa: E402
from diffusers import DiTPipeline  # noqa: E402
from diffusers.hooks import FirstBlockCacheConfig, apply_first_block_cache  # noqa: E402
from diffusers.hooks import first_block_cache  # noqa: E402
from diffusers.hooks.hooks import CacheContext, _set_cache_context  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

diffusers.utils.logging.set_verbosity_error()
diffusers.utils.logging.disable_progress_bar()

THRESHOLD = 0.33
STEPS = 10
# (label, seed, guidance): two guided images and one without guidance (one row per forward).
IMAGES = [(1, 1, 4.0), (3, 2, 4.0), (2, 7, 1.0)]
MARGIN = 0.01

changes: list[float] = []
_original = first_block_cache.FBCHeadBlockHook._should_compute_remaining_blocks


def _recording(self, residual):
    """The hook's own decision, with the value it compares recorded (same expression as the hook)."""
    state = self.state_manager.get_state()
    if state.head_block_residual is not None:
        prev = state.head_block_residual
        changes.append(float(((residual - prev).abs().mean() / prev.abs().mean()).item()))
    return _original(self, residual)


first_block_cache.FBCHeadBlockHook._should_compute_remaining_blocks = _recording


def generate(folder: str, label: int, seed: int, guidance: float, threshold: float | None):
    pipe = DiTPipeline.from_pretrained(folder)
    full = [0]
    last = pipe.transformer.transformer_blocks[-1]
    last.ff.register_forward_hook(lambda m, i, o: full.__setitem__(0, full[0] + 1))
    if threshold is not None:
        apply_first_block_cache(pipe.transformer, FirstBlockCacheConfig(threshold=threshold))
        _set_cache_context(pipe.transformer, CacheContext("cond"))
    finals = []
    decode = pipe.vae.decode
    pipe.vae.decode = lambda z, *a, **k: (finals.append(z * pipe.vae.config.scaling_factor), decode(z, *a, **k))[1]
    changes.clear()
    out = pipe(class_labels=[label], num_inference_steps=STEPS, guidance_scale=guidance,
               generator=torch.Generator().manual_seed(seed), output_type="np")
    image = torch.from_numpy(out.images).permute(0, 3, 1, 2)[0].float()        # [3, H, W] in [0, 1]
    return image, finals[0][0].float(), full[0], list(changes)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, help="Tests/DiffusionTests/Fixtures")
    args = ap.parse_args()
    folder = os.path.join(args.out, "latent-dit")
    cached, plain, cases = [], [], []
    for label, seed, guidance in IMAGES:
        image, final, full, measured = generate(folder, label, seed, guidance, THRESHOLD)
        reference, final_plain, full_plain, _ = generate(folder, label, seed, guidance, None)
        assert full_plain == STEPS
        margin = min(abs(c - THRESHOLD) for c in measured)
        assert margin >= MARGIN, f"change {margin} too close to the threshold"
        assert full < STEPS, "the fixture must skip blocks"
        cached.append((image, final))
        plain.append((reference, final_plain))
        psnr = float(-10 * torch.log10(((image - reference) ** 2).mean()))
        latent_change = float((final - final_plain).abs().max() / final_plain.abs().max())
        cases.append({"label": label, "seed": seed, "guidance_scale": guidance, "full_steps": full,
                      "skipped_steps": STEPS - full, "changes": measured, "margin": margin,
                      "psnr_vs_uncached_db": psnr,
                      "latents_final_max_rel_change_vs_uncached": latent_change})
    tensors = {"image": torch.stack([c[0] for c in cached]), "latents_final": torch.stack([c[1] for c in cached]),
               "image_uncached": torch.stack([p[0] for p in plain]),
               "latents_final_uncached": torch.stack([p[1] for p in plain])}
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    save_file(tensors, os.path.join(args.out, "expected", "latent-ddim-fbc.safetensors"),
              metadata={"about": "DiTPipeline + FirstBlockCache(threshold=%g) on latent-dit, each image alone, "
                                 "DDIM %d steps; image [B,3,H,W] in [0,1], latents_final [B,4,8,8] (the sample before "
                                 "1/scaling_factor and the VAE); *_uncached: the same without the cache"
                                 % (THRESHOLD, STEPS)})
    manifest = {"generated_by": "tools/reference/make-cache-fixtures.sh", "torch": torch.__version__,
                "diffusers": diffusers.__version__, "pipeline": "latent-dit", "sampler": "ddim",
                "num_inference_steps": STEPS, "threshold": THRESHOLD, "image_height": 32, "image_width": 32,
                "file": "latent-ddim-fbc.safetensors", "images": cases}
    with open(os.path.join(args.out, "cache-manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    for c in cases:
        print(c)


if __name__ == "__main__":
    main()
