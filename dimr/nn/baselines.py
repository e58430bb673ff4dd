"""The baselines the paper compares against, written from their papers and their code (docs/official-code.md §9):

* :class:`UViT` — U-ViT (Bao et al., CVPR 2023): time, label and patch tokens in one Transformer with
  long skips; Table 2 row 1, Tables 1/5/6/7.  ``time_conditioning="adaln_zero"`` gives Table 2 row 2.
* :class:`DiT` — DiT (Peebles & Xie, ICCV 2023): adaLN-Zero blocks; Tables 1/6/7 and the PCA of Fig. 3.

Both follow this package's interface: ``forward(x, t, y) -> [eps]`` where ``t`` is the noise level
as the original code feeds it (``t·999`` for U-ViT's continuous time, the integer step for DiT).
"""
from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import nn

from ..config import DiTConfig, UViTConfig
from .blocks import AdaLNModulation, TransformerBlock, run_with_long_skips, maybe_checkpoint
from .embeddings import TimestepEmbedder, init_trunc_normal, sinusoidal_embedding
from .tdln import make_norm

__all__ = ["UViT", "DiT", "unpatchify", "sincos_2d_embedding"]


def unpatchify(x: torch.Tensor, patch: int, channels: int) -> torch.Tensor:
    """Tokens back to an image: ``[B, L, p·p·C] -> [B, C, √L·p, √L·p]`` with the per-token layout
    ``(p1, p2, C)`` that U-ViT and DiT both use."""
    g = math.isqrt(x.shape[1])
    return rearrange(x, "b (gh gw) (p1 p2 c) -> b c (gh p1) (gw p2)", gh=g, p1=patch, p2=patch)


def sincos_2d_embedding(dim: int, grid: int) -> torch.Tensor:
    """DiT's fixed 2-D sine-cosine position embedding: ``[grid·grid, dim]`` (half the channels
    encode the row, half the column; each half is [sin, cos])."""
    def one_axis(d: int, pos: torch.Tensor) -> torch.Tensor:
        omega = 1.0 / 10000 ** (torch.arange(d // 2, dtype=torch.float64) / (d / 2.0))
        out = pos.reshape(-1, 1).double() * omega
        return torch.cat([out.sin(), out.cos()], dim=1)

    ys, xs = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    # DiT builds the grid as (w, h), so the first half of the channels follows the column index.
    return torch.cat([one_axis(dim // 2, xs), one_axis(dim // 2, ys)], dim=1).float()


class UViT(nn.Module):
    """U-ViT, ``forward(x: [B, C, H, W], t: [B], y: [B]) -> [eps: [B, C, H, W]]``.

    Time-token mode: sequence ``[time, label, patches]``, the time token being the raw sinusoidal
    embedding of ``t`` (``mlp_time_embed=False`` as in the ImageNet configs).
    adaLN-Zero mode (Table 2 row 2): no time token; ``c = MLP(sinusoid(t)) + label_embedding(y)``
    drives a two-layer modulation MLP in every block.
    """

    def __init__(self, cfg: UViTConfig):
        super().__init__()
        self.cfg = cfg
        d, p = cfg.dim, cfg.patch_size
        self.grad_checkpointing = False
        self.num_patches = (cfg.image_size // p) ** 2
        self.patch_embed = nn.Conv2d(cfg.in_channels, d, kernel_size=p, stride=p)
        self.label_embed = nn.Embedding(cfg.num_classes, d)
        adaln = cfg.time_conditioning == "adaln_zero"
        self.extras = 1 if adaln else 2
        self.time_mlp = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d)) if adaln else None
        self.pos_embed = nn.Parameter(torch.zeros(1, self.extras + self.num_patches, d))
        n = cfg.depth // 2 * 2 + 1
        self.blocks = nn.ModuleList(
            TransformerBlock(d, cfg.heads, "gelu", cfg.mlp_ratio, "ln", qkv_bias=cfg.qkv_bias,
                             upcast_attention=cfg.upcast_attention,
                             adaln=AdaLNModulation(d, d, hidden=d) if adaln else None)
            for _ in range(n))
        self.skip_linears = nn.ModuleList(nn.Linear(2 * d, d) for _ in range(n // 2))
        self.norm = make_norm("ln", d)
        self.decoder_pred = nn.Linear(d, p * p * cfg.in_channels)
        self.final_conv = nn.Conv2d(cfg.in_channels, cfg.in_channels, 3, padding=1) if cfg.conv_head else None
        self.init_weights()

    def init_weights(self) -> None:
        init_trunc_normal(self)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        for m in self.modules():
            if isinstance(m, AdaLNModulation):
                m.zero_init()

    def set_grad_checkpointing(self, enabled: bool = True) -> "UViT":
        self.grad_checkpointing = enabled
        return self

    def forward(self, x: torch.Tensor, t: torch.Tensor | float, y: torch.Tensor) -> list[torch.Tensor]:
        b = x.shape[0]
        t = torch.as_tensor(t, device=x.device, dtype=torch.float32).reshape(-1).expand(b)
        tokens = rearrange(self.patch_embed(x), "b d h w -> b (h w) d")  # [B, L, d]
        label = self.label_embed(y).unsqueeze(1)
        time_feat = sinusoidal_embedding(t, self.cfg.dim).to(tokens.dtype)
        if self.time_mlp is None:
            tokens = torch.cat([time_feat.unsqueeze(1), label, tokens], dim=1)
            cond = None
        else:
            tokens = torch.cat([label, tokens], dim=1)
            cond = self.time_mlp(time_feat) + label.squeeze(1)
        tokens = tokens + self.pos_embed

        def block_fn(block, z):
            return maybe_checkpoint(self.grad_checkpointing, block, z, None, cond)

        tokens, _ = run_with_long_skips(self.blocks, self.skip_linears, tokens, block_fn)
        out = self.decoder_pred(self.norm(tokens))[:, self.extras:]
        out = unpatchify(out, self.cfg.patch_size, self.cfg.in_channels)
        if self.final_conv is not None:
            out = self.final_conv(out)
        return [out]


class DiTFinalLayer(nn.Module):
    """Non-affine LN modulated by ``SiLU → Linear(d, 2d)`` (shift, scale), then ``Linear(d, p²·C_out)``."""

    def __init__(self, dim: int, patch: int, out_channels: int):
        super().__init__()
        self.norm = make_norm("ln_noaffine", dim)
        self.adaln = AdaLNModulation(dim, dim, n_chunks=2)
        self.linear = nn.Linear(dim, patch * patch * out_channels)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaln(cond)
        return self.linear(self.norm(x) * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1))


class DiT(nn.Module):
    """DiT, ``forward(x: [B, C, H, W], t: [B], y: [B]) -> [eps: [B, C, H, W]]``.

    With ``learn_sigma`` the head has ``2·C`` output channels (the count DiT reports); the variance
    half is returned by :meth:`forward_full` only, since this package trains ε-prediction alone.
    The label table has ``num_classes + 1`` rows: the last is the null label of classifier-free guidance.
    """

    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.cfg = cfg
        d, p = cfg.dim, cfg.patch_size
        self.grad_checkpointing = False
        self.out_channels = cfg.in_channels * (2 if cfg.learn_sigma else 1)
        grid = cfg.image_size // p
        self.x_embedder = nn.Conv2d(cfg.in_channels, d, kernel_size=p, stride=p)
        self.t_embedder = TimestepEmbedder(d)
        self.y_embedder = nn.Embedding(cfg.num_classes + 1, d)
        # Fixed sin-cos embedding; a frozen Parameter, as in DiT, so that it counts like DiT's 675M.
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid, d), requires_grad=False)
        self.blocks = nn.ModuleList(
            TransformerBlock(d, cfg.heads, "gelu_tanh", cfg.mlp_ratio, "ln_noaffine", qkv_bias=True,
                             upcast_attention=False, adaln=AdaLNModulation(d, d))
            for _ in range(cfg.depth))
        self.final_layer = DiTFinalLayer(d, p, self.out_channels)
        self.init_weights()

    def init_weights(self) -> None:
        """DiT's init: Xavier-uniform Linears (zero bias), sin-cos positions, N(0, 0.02) label and
        timestep embeddings, zeroed adaLN modulations and output layer."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        grid = self.cfg.image_size // self.cfg.patch_size
        if not self.pos_embed.is_meta:
            self.pos_embed.data.copy_(sincos_2d_embedding(self.cfg.dim, grid).unsqueeze(0))
        w = self.x_embedder.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.x_embedder.bias)
        nn.init.normal_(self.y_embedder.weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[2].weight, std=0.02)
        for m in self.modules():
            if isinstance(m, AdaLNModulation):
                m.zero_init()
        nn.init.zeros_(self.final_layer.linear.weight)
        nn.init.zeros_(self.final_layer.linear.bias)

    def set_grad_checkpointing(self, enabled: bool = True) -> "DiT":
        self.grad_checkpointing = enabled
        return self

    def forward_full(self, x: torch.Tensor, t: torch.Tensor | float, y: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W] -> [B, C_out, H, W]`` (ε and, with ``learn_sigma``, the variance channels)."""
        b = x.shape[0]
        t = torch.as_tensor(t, device=x.device, dtype=torch.float32).reshape(-1).expand(b)
        tokens = rearrange(self.x_embedder(x), "b d h w -> b (h w) d") + self.pos_embed
        cond = self.t_embedder(t) + self.y_embedder(y)

        def block_fn(block, z):
            return maybe_checkpoint(self.grad_checkpointing, block, z, None, cond)

        for block in self.blocks:
            tokens = block_fn(block, tokens)
        return unpatchify(self.final_layer(tokens, cond), self.cfg.patch_size, self.out_channels)

    def forward(self, x: torch.Tensor, t: torch.Tensor | float, y: torch.Tensor) -> list[torch.Tensor]:
        return [self.forward_full(x, t, y)[:, : self.cfg.in_channels]]
