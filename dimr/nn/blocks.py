"""The building blocks (paper §4.1, §4.3): attention, GeGLU / GELU MLPs, the Transformer block,
the ConvNeXt block, adaLN-Zero modulation, and U-ViT long skips.

Everything works channels-last: tokens ``[B, N, C]`` in Transformer blocks, ``[B, H, W, C]`` in
ConvNeXt blocks.  Every block takes the same ``(x, t, cond)`` arguments: ``t`` (τ, or the network's
:class:`~dimr.nn.tdln.TimeValues`) feeds TD norms,
``cond`` (``[B, C]``) feeds adaLN-Zero modulation; a block ignores what it does not use.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..device import autocast_off
from .depthwise import DepthwiseConv2d
from .tdln import make_norm

__all__ = [
    "Attention",
    "GeGLU",
    "GeluMLP",
    "make_mlp",
    "AdaLNModulation",
    "TransformerBlock",
    "ConvNeXtBlock",
    "run_with_long_skips",
]


class Attention(nn.Module):
    """Multi-head self-attention through ``F.scaled_dot_product_attention``.

    Official DiMR: ``qkv`` without bias, output projection with bias, q/k/v cast to fp32
    (``upcast=True``).  Shapes: ``[B, N, C] -> [B, N, C]``."""

    def __init__(self, dim: int, heads: int, qkv_bias: bool = False, upcast: bool = True):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads, self.upcast = heads, upcast
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = rearrange(self.qkv(x), "b n (three h d) -> three b h n d", three=3, h=self.heads).unbind(0)
        dtype = x.dtype
        if self.upcast:
            # fp32 attention means fp32 under autocast too: autocast would cast q, k, v straight back
            # to bf16 (and CPU's bf16 attention backward is several times slower than fp32's)
            with autocast_off(x.device.type):
                out = F.scaled_dot_product_attention(q.float(), k.float(), v.float())
        else:
            out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(rearrange(out.to(dtype), "b h n d -> b n (h d)"))


class GeGLU(nn.Module):
    """GeGLU MLP (paper §4.3, Shazeer 2020): ``w2(GELU(w0·x) ⊙ w1·x)``, exact (erf) GELU.

    ``hidden = 2·dim`` in every official config ("2× expansion"); 6d² + 5d parameters at that width.
    Shapes: ``[B, ..., C] -> [B, ..., C]``."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.w0 = nn.Linear(dim, hidden)
        self.w1 = nn.Linear(dim, hidden)
        self.w2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.compiler.is_compiling():
            # compiled: one matrix product with w0, w1 stacked reads x once, and the compiler fuses GELU·value
            # over its two halves
            h = F.linear(x, torch.cat([self.w0.weight, self.w1.weight]), torch.cat([self.w0.bias, self.w1.bias]))
            gate, value = h.chunk(2, dim=-1)
        else:
            # eager: two products, since GELU and its backward on half of one product would run on a strided
            # view, which on CPU costs more than the second product
            gate, value = self.w0(x), self.w1(x)
        return self.w2(F.gelu(gate) * value)


class GeluMLP(nn.Module):
    """The vanilla Transformer MLP: ``fc2(GELU(fc1·x))`` (Table 2 rows 1–4 use 4× expansion).

    ``approximate="tanh"`` gives DiT's variant.  Shapes: ``[B, ..., C] -> [B, ..., C]``."""

    def __init__(self, dim: int, hidden: int, approximate: str = "none"):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.approximate = approximate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate=self.approximate))


def make_mlp(kind: str, dim: int, ratio: float) -> nn.Module:
    """``"geglu"`` (hidden = ratio·dim, official ratio 2) or ``"gelu"`` / ``"gelu_tanh"``."""
    hidden = int(round(dim * ratio))
    if kind == "geglu":
        return GeGLU(dim, hidden)
    if kind in ("gelu", "gelu_tanh"):
        return GeluMLP(dim, hidden, approximate="tanh" if kind == "gelu_tanh" else "none")
    raise ValueError(f"unknown mlp {kind!r}; expected geglu, gelu or gelu_tanh")


class AdaLNModulation(nn.Module):
    """adaLN-Zero (DiT; the paper's eqs. (3)–(4) write its modulation as γ·LN(x) + β, DiT's code — followed here,
    ``_modulate`` — as LN(x)·(1 + γ′) + β, the same family with γ = 1 + γ′): a conditioning vector
    ``c: [B, C_c]`` is mapped to ``n_chunks`` per-channel vectors (shift, scale, gate, …), each ``[B, C]``.

    ``hidden=None`` gives DiT's ``SiLU → Linear(C_c, n·C)``; an integer gives the two-layer
    ``Linear(C_c, hidden) → SiLU → Linear(hidden, n·C)`` that reproduces Table 2 row 2's count.
    The last Linear is zero-initialised (the "Zero"), so each gated residual starts as identity."""

    def __init__(self, cond_dim: int, dim: int, n_chunks: int = 6, hidden: int | None = None):
        super().__init__()
        self.n_chunks = n_chunks
        if hidden is None:
            self.net = nn.Sequential(nn.SiLU(), nn.Linear(cond_dim, n_chunks * dim))
        else:
            self.net = nn.Sequential(nn.Linear(cond_dim, hidden), nn.SiLU(), nn.Linear(hidden, n_chunks * dim))

    def zero_init(self) -> None:
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, cond: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.net(cond).chunk(self.n_chunks, dim=-1)


def _modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``x·(1 + scale) + shift`` with ``[B, C]`` modulation broadcast over the spatial axes."""
    view = (x.shape[0],) + (1,) * (x.ndim - 2) + (x.shape[-1],)
    return x * (1 + scale.view(view)) + shift.view(view)


def _gate(g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return g.view((x.shape[0],) + (1,) * (x.ndim - 2) + (x.shape[-1],)) * x


class TransformerBlock(nn.Module):
    """Pre-norm Transformer block: ``x += Attn(norm1(x))``, ``x += MLP(norm2(x))``.

    Args:
        norm: block norm (``"tdrmsn"`` official, ``"tdln"`` paper, ``"ln"`` U-ViT, ``"ln_noaffine"`` DiT).
        adaln: ``None``, or an :class:`AdaLNModulation` factory result — then the two sub-blocks are
            modulated by shift/scale and gated (adaLN-Zero).
    Shapes: ``forward(x: [B, N, C], t: τ [B] | TimeValues | None, cond: [B, C_c] | None) -> [B, N, C]``.
    """

    def __init__(self, dim: int, heads: int, mlp: str = "geglu", mlp_ratio: float = 2.0,
                 norm: str = "tdrmsn", tdp_form: str = "official", qkv_bias: bool = False,
                 upcast_attention: bool = True, adaln: AdaLNModulation | None = None, dropout: float = 0.0):
        super().__init__()
        self.norm1 = make_norm(norm, dim, tdp_form)
        self.attn = Attention(dim, heads, qkv_bias=qkv_bias, upcast=upcast_attention)
        self.norm2 = make_norm(norm, dim, tdp_form)
        self.mlp = make_mlp(mlp, dim, mlp_ratio)
        self.adaln = adaln
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, t=None, cond: torch.Tensor | None = None) -> torch.Tensor:
        if self.adaln is None:
            x = x + self.drop(self.attn(self.norm1(x, t)))
            return x + self.drop(self.mlp(self.norm2(x, t)))
        sh1, sc1, g1, sh2, sc2, g2 = self.adaln(cond)
        x = x + _gate(g1, self.drop(self.attn(_modulate(self.norm1(x, t), sh1, sc1))))
        return x + _gate(g2, self.drop(self.mlp(_modulate(self.norm2(x, t), sh2, sc2))))


class ConvNeXtBlock(nn.Module):
    """The official ConvNeXt block (two residuals, no layer-scale):
    ``x += DWConv_{k×k}(x)`` (no norm, no activation) then ``x += MLP(norm(x))``.

    With adaLN the dwconv input is shift/scale-modulated and both residuals are gated (Table 2 row 3).
    Shapes: ``forward(x: [B, H, W, C], t, cond) -> [B, H, W, C]`` (channels-last)."""

    def __init__(self, dim: int, kernel_size: int = 7, mlp: str = "geglu", mlp_ratio: float = 2.0,
                 norm: str = "tdrmsn", tdp_form: str = "official", adaln: AdaLNModulation | None = None,
                 dropout: float = 0.0):
        super().__init__()
        self.dwconv = DepthwiseConv2d(dim, kernel_size)
        self.norm = make_norm(norm, dim, tdp_form)
        self.mlp = make_mlp(mlp, dim, mlp_ratio)
        self.adaln = adaln
        self.drop = nn.Dropout(dropout)

    def _dw(self, x: torch.Tensor) -> torch.Tensor:
        return rearrange(self.dwconv(rearrange(x, "b h w c -> b c h w")), "b c h w -> b h w c")

    def forward(self, x: torch.Tensor, t=None, cond: torch.Tensor | None = None) -> torch.Tensor:
        if self.adaln is None:
            x = x + self.drop(self._dw(x))
            return x + self.drop(self.mlp(self.norm(x, t)))
        sh1, sc1, g1, sh2, sc2, g2 = self.adaln(cond)
        x = x + _gate(g1, self.drop(self._dw(_modulate(x, sh1, sc1))))
        return x + _gate(g2, self.drop(self.mlp(_modulate(self.norm(x, t), sh2, sc2))))


def run_with_long_skips(
    blocks: Sequence[nn.Module],
    skip_linears: Sequence[nn.Module],
    x: torch.Tensor,
    block_fn: Callable[[nn.Module, torch.Tensor], torch.Tensor],
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """U-ViT long skips (Bao et al. 2023): ``n//2`` in-blocks push their outputs on a stack, one mid
    block, then each out-block first applies ``Linear(2C → C)`` to ``concat[x, popped skip]``.

    ``len(blocks)`` must be odd and ``len(skip_linears) == len(blocks)//2``.  ``block_fn(block, x)``
    runs one block (so callers decide on τ, conditioning and checkpointing).
    Returns the final features and every block's output, in order (the official "external skips")."""
    n_in = len(blocks) // 2
    if len(blocks) % 2 != 1 or len(skip_linears) != n_in:
        raise ValueError(f"long skips need an odd block count and n//2 skip linears, got {len(blocks)} and {len(skip_linears)}")
    stack, outputs = [], []
    for block in blocks[:n_in]:
        x = block_fn(block, x)
        stack.append(x)
        outputs.append(x)
    x = block_fn(blocks[n_in], x)
    outputs.append(x)
    for block, skip in zip(blocks[n_in + 1:], skip_linears):
        x = skip(torch.cat([x, stack.pop()], dim=-1))
        x = block_fn(block, x)
        outputs.append(x)
    return x, outputs


def maybe_checkpoint(enabled: bool, fn: Callable, *args):
    """Run ``fn(*args)`` under activation checkpointing when ``enabled`` and grads are on."""
    if enabled and torch.is_grad_enabled():
        return checkpoint(fn, *args, use_reentrant=False)
    return fn(*args)


__all__ += ["maybe_checkpoint"]
