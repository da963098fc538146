"""The tiny-scenes networks: stock diffusers / transformers classes of the Sana architecture, kept small enough
that the whole training fits ~100 minutes on two shared CPU cores (see tools/train/scenes_train.py).

  vae          diffusers AutoencoderDC (DC-AE): 8x compression per side (conv_in pixel-unshuffle + two
               downsample stages), `latent_channels` latent channels (the shipped model 8, the recipe after it
               16); ResBlocks in the shallow stages and an EfficientViTBlock (ReLU linear attention with a 5x5
               multi-scale branch) in the deepest, as DC-AE does.
  text_encoder transformers Gemma2Model, 2 layers, hidden 128 (Sana uses Gemma-2 2B's last hidden state).
  transformer  diffusers SanaTransformer2DModel (width = heads x 32, `layers` blocks), patch 1 on the 8x8
               (64x64 image) latent grid: linear self-attention + Mix-FFN (GLUMBConv) + cross-attention to the
               caption, adaLN-single. With interpolation_scale set, PatchEmbed adds sin-cos positions (Sana 1.0
               relies on the Mix-FFN's 3x3 depthwise conv alone; here left/right/above/below must be read off
               absolute positions on a tiny grid, so the explicit positions are kept, as Sana's 4K variant does).
"""
from __future__ import annotations

import torch

# The architecture knobs a run fixes once (tools/train/scenes_train.py keeps them in <state>/arch.json, so a resumed
# run cannot silently build other shapes). SHIPPED is models/tiny-scenes as exported on 2026-11-30; RECIPE is the
# from-scratch recipe its model card names next (16 latent channels; a transformer of width 256). A block of width d
# holds 15.5 d^2 weights (self- and cross-attention 8 d^2, Mix-FFN ratio 2.5: 7.5 d^2), so at d = 256 six blocks
# (6.7 M parameters with the timestep and caption embeddings, 27 MB float32) are what fits the 40 MB
# folder beside the autoencoder (~9 MB) and the text encoder (1.4 MB); eight would make it ~45 MB.
SHIPPED = {"latent_channels": 8, "dit_width": 128, "dit_layers": 6}
RECIPE = {"latent_channels": 16, "dit_width": 256, "dit_layers": 6}
HEAD_DIM = 32  # transformer self- and cross-attention heads are HEAD_DIM wide; width must be a multiple

AE_CONFIG = dict(
    in_channels=3,
    latent_channels=8,
    attention_head_dim=16,
    encoder_block_types=("ResBlock", "ResBlock", "ResBlock", "EfficientViTBlock"),
    decoder_block_types=("ResBlock", "ResBlock", "ResBlock", "EfficientViTBlock"),
    encoder_block_out_channels=(32, 48, 96, 128),
    decoder_block_out_channels=(32, 48, 96, 128),
    encoder_layers_per_block=(0, 1, 1, 1),
    decoder_layers_per_block=(0, 1, 2, 2),
    encoder_qkv_multiscales=((), (), (), (5,)),
    decoder_qkv_multiscales=((), (), (), (5,)),
    upsample_block_type="pixel_shuffle",
    downsample_block_type="pixel_unshuffle",
    decoder_norm_types="rms_norm",
    decoder_act_fns="silu",
    encoder_out_shortcut=True,
    decoder_in_shortcut=True,
    decoder_conv_act_fn="relu",
    scaling_factor=1.0,  # set at export: 1 / std of the latents over the training scenes
)

TE_HIDDEN = 128
TE_CONFIG = dict(
    vocab_size=384,  # scenes_tokenizer.VOCAB_SIZE
    hidden_size=TE_HIDDEN,
    intermediate_size=256,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=32,
    hidden_activation="gelu_pytorch_tanh",
    max_position_embeddings=512,
    rms_norm_eps=1e-6,
    query_pre_attn_scalar=32,
    sliding_window=512,
    attn_logit_softcapping=50.0,
    final_logit_softcapping=30.0,
    pad_token_id=0,
    eos_token_id=1,
    bos_token_id=2,
    tie_word_embeddings=True,
)

TRANSFORMER_CONFIG = dict(
    in_channels=8,
    out_channels=8,
    num_attention_heads=4,
    attention_head_dim=32,
    num_layers=6,
    num_cross_attention_heads=4,
    cross_attention_head_dim=32,
    cross_attention_dim=128,
    caption_channels=TE_HIDDEN,
    mlp_ratio=2.5,
    dropout=0.0,
    attention_bias=False,
    sample_size=8,  # latent grid of a 64x64 image; SanaPipeline must be called with use_resolution_binning=False
    patch_size=1,
    norm_elementwise_affine=False,
    norm_eps=1e-6,
    interpolation_scale=1,
)


def build_vae(latent_channels: int = 8):
    from diffusers import AutoencoderDC

    # encoder_out_shortcut / decoder_in_shortcut average / repeat channel groups: 128 must be a multiple
    if AE_CONFIG["encoder_block_out_channels"][-1] % latent_channels:
        raise ValueError(f"latent_channels {latent_channels} must divide {AE_CONFIG['encoder_block_out_channels'][-1]}")
    return AutoencoderDC(**dict(AE_CONFIG, latent_channels=latent_channels))


def build_text_encoder():
    from transformers import Gemma2Config, Gemma2Model

    cfg = Gemma2Config(**TE_CONFIG)
    cfg._attn_implementation = "eager"  # softcapping needs eager attention (transformers warns otherwise)
    return Gemma2Model(cfg)


def transformer_config(latent_channels: int = 8, width: int = 128, layers: int = 6) -> dict:
    if width % HEAD_DIM:
        raise ValueError(f"transformer width {width} must be a multiple of {HEAD_DIM}")
    heads = width // HEAD_DIM
    # cross_attention_dim is the width: the caption is projected to it (caption_projection) before cross-attention
    return dict(TRANSFORMER_CONFIG, in_channels=latent_channels, out_channels=latent_channels, num_layers=layers,
                num_attention_heads=heads, num_cross_attention_heads=heads, cross_attention_dim=width)


def build_transformer(latent_channels: int = 8, width: int = 128, layers: int = 6):
    from diffusers import SanaTransformer2DModel

    m = SanaTransformer2DModel(**transformer_config(latent_channels, width, layers))
    torch.nn.init.zeros_(m.proj_out.weight)  # the prediction starts at zero (as DiT's initialisation)
    torch.nn.init.zeros_(m.proj_out.bias)
    return m


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())
