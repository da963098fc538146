#!/usr/bin/env python3
"""Text-encoder fixtures for Darkroom's `Text` module: random small Gemma2Model and T5EncoderModel configurations
(transformers 5.24 on PyTorch CPU), saved with save_pretrained as a diffusers `text_encoder/` folder would hold
them, and their last hidden states on padded batches of prompts tokenized by the fixture tokenizers.

Writes into Tests/TextTests/Fixtures/encoders/ (see ../README.md there):
  gemma2-f32/      Gemma2Model, float32, one model.safetensors
  gemma2-bf16/     Gemma2Model, bfloat16, sharded (model.safetensors.index.json + shards)
  t5-f32/          T5EncoderModel (v1.1: gated-gelu), float32, one file
  t5-f16/          T5EncoderModel, float16, sharded
  expected.safetensors   per model and batch: input_ids, attention_mask (int64 as float32) and last_hidden_state
  manifest.json    models, batches, prompts, padding side and max length

The references run in float32 (16-bit checkpoints loaded with dtype=torch.float32: exact upcasts), eager attention,
one thread. Every parameter is drawn from a seeded normal wide enough that norms, soft-capping, sliding windows
and the relative-position buckets all change the result.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil

import torch

torch.set_num_threads(1)

from safetensors.torch import save_file  # noqa: E402
from transformers import AutoTokenizer, Gemma2Config, Gemma2Model, T5Config, T5EncoderModel  # noqa: E402

PROMPTS = [
    "A red circle over a blue square.",
    "cat",
    "a small green triangle next to a large ring at night, cinematic light, soft focus",
    "Zürich café 東京 😀",
    "",
]
LONG = "portrait of an old man in a golden hour street, detailed painting, dark shadow, bright city, " * 2


def randomize(model: torch.nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:  # norms: around 0 for Gemma's (1 + w), around 1 for T5's w
                base = 1.0 if "layer_norm" in name else 0.0
                p.copy_(base + 0.3 * torch.randn(p.shape, generator=g))
            elif "relative_attention_bias" in name:
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
            elif "embed" in name or "shared" in name:
                p.copy_(torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p.shape[1]))


def gemma_config(vocab: int) -> Gemma2Config:
    return Gemma2Config(vocab_size=vocab, hidden_size=48, intermediate_size=96, num_hidden_layers=4,
                        num_attention_heads=4, num_key_value_heads=2, head_dim=16, query_pre_attn_scalar=24,
                        sliding_window=5, attn_logit_softcapping=3.0, final_logit_softcapping=30.0,
                        rms_norm_eps=1e-6, max_position_embeddings=512, pad_token_id=0, eos_token_id=1,
                        bos_token_id=2, attn_implementation="eager")


def t5_config(vocab: int) -> T5Config:
    return T5Config(vocab_size=vocab, d_model=32, d_kv=8, d_ff=64, num_layers=3, num_heads=4,
                    relative_attention_num_buckets=32, relative_attention_max_distance=20,
                    feed_forward_proj="gated-gelu", dropout_rate=0.0, layer_norm_epsilon=1e-6,
                    is_encoder_decoder=False, use_cache=False, attn_implementation="eager")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    out = os.path.join(args.out, "encoders")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    toks = {name: AutoTokenizer.from_pretrained(os.path.join(args.out, "tokenizers", name)) for name in ("gemma", "t5")}
    models = [
        ("gemma2-f32", "gemma", Gemma2Model, gemma_config(len(toks["gemma"])), torch.float32, None, 1),
        ("gemma2-bf16", "gemma", Gemma2Model, gemma_config(len(toks["gemma"])), torch.bfloat16, "60KB", 2),
        ("t5-f32", "t5", T5EncoderModel, t5_config(len(toks["t5"])), torch.float32, None, 3),
        ("t5-f16", "t5", T5EncoderModel, t5_config(len(toks["t5"])), torch.float16, "40KB", 4),
    ]
    tensors: dict[str, torch.Tensor] = {}
    manifest = {"models": [], "tolerance": "relative 1e-5 per element: |swift - torch| <= 1e-5 * max(1, |torch|)"}
    for name, tok_name, cls, config, dtype, shard, seed in models:
        torch.manual_seed(seed)
        model = cls(config).eval()
        randomize(model, seed)
        folder = os.path.join(out, name)
        model.to(dtype).save_pretrained(folder, max_shard_size=shard or "100MB")
        reloaded = cls.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval()
        tok = toks[tok_name]
        batches = []
        for b, (side, max_length, prompts) in enumerate([
            ("right", 24, PROMPTS),
            ("left", 24, PROMPTS[:3]),
            ("right", 64, [LONG, PROMPTS[0]]),
        ]):
            tok.padding_side = side
            enc = tok(prompts, padding="max_length", max_length=max_length, truncation=True, return_tensors="pt")
            with torch.no_grad():
                hidden = reloaded(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
            key = f"{name}/{b}"
            tensors[key + "/input_ids"] = enc["input_ids"].to(torch.float32)
            tensors[key + "/attention_mask"] = enc["attention_mask"].to(torch.float32)
            tensors[key + "/last_hidden_state"] = hidden.to(torch.float32).contiguous()
            batches.append({"key": key, "side": side, "max_length": max_length, "prompts": prompts,
                            "shape": list(hidden.shape)})
        files = sorted(os.listdir(folder))
        manifest["models"].append({"name": name, "tokenizer": tok_name, "class": cls.__name__,
                                   "dtype": str(dtype).replace("torch.", ""), "files": files, "batches": batches})
        print(name, files, [b["shape"] for b in batches])
    save_file(tensors, os.path.join(out, "expected.safetensors"))
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, ensure_ascii=False)


if __name__ == "__main__":
    main()
