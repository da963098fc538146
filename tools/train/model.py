"""The tiny-shapes network: a stock diffusers `DiTTransformer2DModel` in pixel space, plus a forward pass
that also works for non-square inputs.

diffusers 0.42.1 `DiTTransformer2DModel.forward` (models/transformers/dit_transformer_2d.py:185-221) runs
PatchEmbed with the runtime grid (embeddings.py:375-384 recomputes the sin-cos table for any (h, w)), but
its unpatchify assumes a square grid: `height = width = int(hidden_states.shape[1] ** 0.5)` (line 213).
`forward_hw` below is that forward, line for line, with the one change that the grid is taken from the
input (H/p, W/p) instead. For square inputs it is identical to `model(x, t, y).sample` (checked by
`python tools/train/model.py`). The saved weights and config are those of the stock class; the Swift
engine implements the non-square unpatchify natively.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers import DiTTransformer2DModel

# Kept small so the whole run fits the 2-core CPU budget (see train.py).
CONFIG = dict(
    num_attention_heads=4,
    attention_head_dim=32,
    in_channels=3,
    out_channels=3,
    num_layers=6,
    dropout=0.0,
    attention_bias=True,
    sample_size=64,  # base grid for the sin-cos positions: 64 / patch 4 = 16; other sizes are interpolated
    patch_size=4,
    activation_fn="gelu-approximate",
    norm_type="ada_norm_zero",
    norm_elementwise_affine=False,
    norm_eps=1e-5,
)


def build(num_classes: int) -> DiTTransformer2DModel:
    model = DiTTransformer2DModel(num_embeds_ada_norm=num_classes, **CONFIG)
    # The table keeps its null row (index num_classes) because the class was built with dropout 0.1;
    # label dropout is done once per sample by the trainer, not independently inside every block.
    for block in model.transformer_blocks:
        block.norm1.emb.class_embedder.dropout_prob = 0.0
    return model


def dit_init(model: DiTTransformer2DModel) -> None:
    """The DiT paper's initialisation (facebookresearch/DiT models.py `initialize_weights`): xavier linears,
    N(0, 0.02) class / timestep embeddings, and zero adaLN modulation and output layers."""
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            torch.nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                torch.nn.init.zeros_(m.bias)
    w = model.pos_embed.proj.weight
    torch.nn.init.xavier_uniform_(w.view(w.shape[0], -1))
    torch.nn.init.zeros_(model.pos_embed.proj.bias)
    for block in model.transformer_blocks:
        emb = block.norm1.emb
        torch.nn.init.normal_(emb.class_embedder.embedding_table.weight, std=0.02)
        torch.nn.init.normal_(emb.timestep_embedder.linear_1.weight, std=0.02)
        torch.nn.init.normal_(emb.timestep_embedder.linear_2.weight, std=0.02)
        torch.nn.init.zeros_(block.norm1.linear.weight)
        torch.nn.init.zeros_(block.norm1.linear.bias)
    for lin in (model.proj_out_1, model.proj_out_2):
        torch.nn.init.zeros_(lin.weight)
        torch.nn.init.zeros_(lin.bias)


def forward_hw(model: DiTTransformer2DModel, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """DiTTransformer2DModel.forward (dit_transformer_2d.py:185-221) with a non-square unpatchify."""
    p = model.patch_size
    gh, gw = x.shape[-2] // p, x.shape[-1] // p
    h = model.pos_embed(x)
    for block in model.transformer_blocks:
        h = block(h, attention_mask=None, encoder_hidden_states=None, encoder_attention_mask=None,
                  timestep=t, cross_attention_kwargs=None, class_labels=y)
    cond = model.transformer_blocks[0].norm1.emb(t, y, hidden_dtype=h.dtype)
    shift, scale = model.proj_out_1(F.silu(cond)).chunk(2, dim=1)
    h = model.norm_out(h) * (1 + scale[:, None]) + shift[:, None]
    h = model.proj_out_2(h)
    c = model.out_channels
    h = h.reshape(-1, gh, gw, p, p, c)  # the only change: (gh, gw) instead of int(sqrt(N)) twice
    h = torch.einsum("nhwpqc->nchpwq", h)
    return h.reshape(-1, c, gh * p, gw * p)


if __name__ == "__main__":
    torch.manual_seed(0)
    m = build(30).eval()
    for p_ in m.parameters():
        torch.nn.init.normal_(p_, std=0.05)
    x = torch.randn(2, 3, 64, 64)
    t = torch.tensor([500.0, 10.0])
    y = torch.tensor([3, 30])
    with torch.no_grad():
        a = m(x, t, y).sample
        b = forward_hw(m, x, t, y)
        print("square max |diff| vs stock forward:", (a - b).abs().max().item())
        print("non-square output shape:", tuple(forward_hw(m, torch.randn(1, 3, 32, 64), t[:1], y[:1]).shape))
    print("parameters:", sum(p_.numel() for p_ in m.parameters()))
