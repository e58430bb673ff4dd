"""One resolution branch of the multi-resolution network (paper eq. (2), Fig. 2):

    f_{θ,r}(x_t, y_{r−1}, t, c) = Conv3×3(g_{θ,r}(Patchify(x_t) + Upsample(y_{r−1}), t, c))

* Patchify: ``Conv2d`` with kernel = stride = 2^(R−r), then a learned absolute position embedding.
* Upsample (the feature cascade): TD-LN → Linear(C_low → 4·C) → pixel shuffle ×2 → TD-LN,
  applied to the previous branch's features (official: all n_b + 1 intermediate features
  concatenated; paper: the last block's output).
* g_{θ,r}: Transformer blocks (r = 1, with the class token prepended) or ConvNeXt blocks (r > 1),
  wired with U-ViT long skips.
* Head: TD-LN → Conv3×3 back to the input channels: this branch's noise prediction ε_θ(x_t, c, r).
  With ``top_patch`` p > 1 (the one-branch ablation, beyond the paper) a token covers p×p output pixels:
  TD-LN → Linear(C → p²·C_img) → pixel shuffle ×p → Conv3×3.
"""
from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from ..config import DiMRConfig
from .blocks import AdaLNModulation, ConvNeXtBlock, TransformerBlock, maybe_checkpoint, run_with_long_skips
from .embeddings import TimestepEmbedder
from .tdln import TDLayerNorm, TimeValues, make_norm

__all__ = ["pixel_shuffle_channels_last", "CascadeUpsample", "OutputHead", "Branch"]


def pixel_shuffle_channels_last(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Pixel shuffle in the official channel order: ``[B, H, W, f·f·C] -> [B, H·f, W·f, C]`` where
    channel ``(i·f + j)·C + c`` lands on pixel ``(h·f + i, w·f + j)``.

    (``nn.PixelShuffle`` instead reads channel ``c·f² + i·f + j``; :mod:`dimr.convert` needs no
    permutation because this module uses the official order.)"""
    return rearrange(x, "b h w (i j c) -> b (h i) (w j) c", i=factor, j=factor)


def _head_norm(cfg: DiMRConfig, dim: int) -> nn.Module:
    """TD-LN in the upsample and output heads; the adaLN ablation uses a non-affine LN there."""
    if cfg.time_conditioning == "adaln_zero":
        return make_norm("ln_noaffine", dim)
    return TDLayerNorm(dim, form=cfg.tdp_form)


class CascadeUpsample(nn.Module):
    """Upsample(y_{r−1}): ``[B, h, w, C_low] -> [B, h·f, w·f, C]``: norm → Linear(C_low → f²·C) →
    pixel shuffle → norm."""

    def __init__(self, cfg: DiMRConfig, low_dim: int, dim: int, factor: int):
        super().__init__()
        self.factor = factor
        self.norm_in = _head_norm(cfg, low_dim)
        self.proj = nn.Linear(low_dim, dim * factor * factor)
        self.norm_out = _head_norm(cfg, dim)

    def forward(self, low: torch.Tensor, t: TimeValues | torch.Tensor) -> torch.Tensor:
        x = self.proj(self.norm_in(low, t))
        return self.norm_out(pixel_shuffle_channels_last(x, self.factor), t)


class OutputHead(nn.Module):
    """norm → Conv3×3: ``[B, H, W, C] (channels-last) -> [B, C_img, H, W]``; with ``cfg.top_patch`` p > 1,
    norm → Linear(C → p²·C_img) → pixel shuffle ×p → Conv3×3: ``-> [B, C_img, H·p, W·p]``."""

    def __init__(self, cfg: DiMRConfig, dim: int):
        super().__init__()
        self.norm = _head_norm(cfg, dim)
        self.patch = cfg.top_patch
        self.unpatchify = nn.Linear(dim, self.patch ** 2 * cfg.in_channels) if self.patch > 1 else None
        self.conv = nn.Conv2d(cfg.in_channels if self.patch > 1 else dim, cfg.in_channels, 3, padding=1)

    def forward(self, x: torch.Tensor, t: TimeValues | torch.Tensor) -> torch.Tensor:
        x = self.norm(x, t)
        if self.unpatchify is not None:
            x = pixel_shuffle_channels_last(self.unpatchify(x), self.patch)
        return self.conv(rearrange(x, "b h w c -> b c h w"))


class Branch(nn.Module):
    """Branch r ∈ {1..R} of a :class:`~dimr.config.DiMRConfig`.

    Args:
        cfg: the network config. r: 1-based branch index.
        low_dim: channel width of the previous branch's cascade features (None for r = 1).
    """

    def __init__(self, cfg: DiMRConfig, r: int, low_dim: int | None):
        super().__init__()
        bc = cfg.branches[r - 1]
        self.r, self.dim, self.kind = r, bc.dim, bc.block
        self.cascade = cfg.cascade
        self.res = cfg.resolution(r)
        self.grad_checkpointing = False
        p = cfg.patch_size(r)
        self.patchify = nn.Conv2d(cfg.in_channels, bc.dim, kernel_size=p, stride=p)
        self.pos_embed = nn.Parameter(torch.zeros(self.res * self.res, bc.dim))
        self.class_embed = nn.Embedding(cfg.num_classes, bc.dim) if bc.block == "transformer" else None
        self.upsample = CascadeUpsample(cfg, low_dim, bc.dim, 2) if low_dim is not None else None

        adaln = cfg.time_conditioning == "adaln_zero"
        norm = cfg.block_norm
        self.time_embed = TimestepEmbedder(bc.dim) if adaln else None
        n = cfg.built_depth(r)
        blocks = []
        for _ in range(n):
            mod = AdaLNModulation(bc.dim, bc.dim) if adaln else None
            if bc.block == "transformer":
                blocks.append(TransformerBlock(bc.dim, bc.heads, cfg.mlp, cfg.mlp_ratio, norm, cfg.tdp_form,
                                               upcast_attention=cfg.upcast_attention, adaln=mod, dropout=cfg.dropout))
            else:
                blocks.append(ConvNeXtBlock(bc.dim, bc.kernel_size, cfg.mlp, cfg.mlp_ratio, norm, cfg.tdp_form,
                                            adaln=mod, dropout=cfg.dropout))
        self.blocks = nn.ModuleList(blocks)
        self.skip_linears = nn.ModuleList(nn.Linear(2 * bc.dim, bc.dim) for _ in range(n // 2))
        self.head = OutputHead(cfg, bc.dim)

    @property
    def feature_dim(self) -> int:
        """Width of what this branch hands to the next: ``dim·(n_blocks + 1)`` (official) or ``dim``."""
        return self.dim * (len(self.blocks) + 1) if self.cascade == "all" else self.dim

    def forward(self, x: torch.Tensor, t: TimeValues | torch.Tensor, y: torch.Tensor, low: torch.Tensor | None,
                t_embed_input: torch.Tensor | None = None,
                need_features: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Run branch r.

        Shapes: ``x: [B, C_img, H, W]`` (the full-resolution noisy input), ``t``: τ ``[B]`` or the
        network's :class:`~dimr.nn.tdln.TimeValues`, ``y: [B]``
        (long), ``low: [B, h, w, C_low]`` or None.
        Returns ``(eps_r: [B, C_img, H/2^(R−r), W/2^(R−r)], features: [B, h_r, w_r, feature_dim])``;
        ``features`` is None when ``need_features`` is False (the last branch hands nothing up).
        """
        # contiguous channels-last: a permuted NCHW view would make every later op (the depthwise conv
        # and its backward above all) run on a strided layout, several times slower on CPU
        h = rearrange(self.patchify(x), "b d h w -> b h w d").contiguous()  # [B, res, res, dim]
        h = h + self.pos_embed.view(1, self.res, self.res, self.dim)
        if self.upsample is not None:
            h = h + self.upsample(low, t)
        cond = self.time_embed(t_embed_input) if self.time_embed is not None else None

        if self.kind == "transformer":
            tokens = rearrange(h, "b h w d -> b (h w) d")
            tokens = torch.cat([self.class_embed(y).unsqueeze(1).to(tokens.dtype), tokens], dim=1)
            unflatten = lambda t: rearrange(t[:, 1:], "b (h w) d -> b h w d", h=self.res)  # noqa: E731 - drop class token
        else:
            tokens, unflatten = h, (lambda t: t)

        def block_fn(block, z):
            return maybe_checkpoint(self.grad_checkpointing, block, z, t, cond)

        out, block_outputs = run_with_long_skips(self.blocks, self.skip_linears, tokens, block_fn)
        last = unflatten(out)
        if not need_features:
            features = None
        elif self.cascade == "all":
            features = torch.cat([h] + [unflatten(o) for o in block_outputs], dim=-1)
        else:
            features = last
        return self.head(last, t), features
