"""Profiling in the paper's conventions: parameter counts and GMACs (throughput: :mod:`dimr.bench`).

**GMACs.** The paper's "GFLOPs" are multiply-accumulates of one forward pass at batch 1, attention
matmuls included — fvcore's ``FlopCountAnalysis`` convention (docs/official-code.md §7).  :class:`MacCounter`
reproduces that convention with a ``TorchDispatchMode`` over the aten ops a forward pass issues:

* ``mm``/``addmm``/``bmm``/``baddbmm``: ``M·N·K`` (biases free);
* ``convolution``: ``out_numel · C_in/groups · kernel_area``;
* every ``scaled_dot_product_attention`` kernel: ``B·H·N_q·N_k·(d_qk + d_v)`` — the QKᵀ and AV
  matmuls that fvcore and ``FlopCounterMode`` silently drop on SDPA (the pitfall of docs/official-code.md §7);
* ``native_layer_norm``: 5 per element with an affine weight, 4 without (fvcore's estimate);
* element-wise ops, softmax, reductions: 0 (fvcore ignores them).

Because it works at the dispatch level it runs on ``meta`` tensors: full-size models are counted
without allocating their weights.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from .config import ModelConfig
from .nn import build_model

__all__ = ["count_params", "time_conditioning_params", "MacCounter", "count_gmacs", "example_inputs", "ProfileRow",
           "profile_preset"]

aten = torch.ops.aten


def count_params(model: nn.Module) -> int:
    """All parameters, frozen ones included (DiT's fixed position embedding counts, as in its paper)."""
    return sum(p.numel() for p in model.parameters())


def time_conditioning_params(model: nn.Module) -> int:
    """Parameters that exist to bring time into the network (§4.2's comparison of TD-LN with
    adaLN-Zero): adaLN-Zero's per-block modulation MLPs and the timestep embedder that feeds them, or
    TD-LN's time-dependent parameters (both endpoints and the gate of every γ(t), β(t))."""
    from .nn.blocks import AdaLNModulation
    from .nn.embeddings import TimestepEmbedder
    from .nn.tdln import TDLayerNorm, TimeDependentParameter

    kinds = (AdaLNModulation, TimestepEmbedder, TimeDependentParameter, TDLayerNorm)
    # by id: a TD-LN holds its TimeDependentParameters, so nested modules would count them twice
    params = {id(p): p for m in model.modules() if isinstance(m, kinds) for p in m.parameters()}
    return sum(p.numel() for p in params.values())


def _mm(args, out) -> int:
    a, b = args[0], args[1]
    return a.shape[0] * a.shape[1] * b.shape[1]


def _addmm(args, out) -> int:
    return _mm(args[1:], out)


def _bmm(args, out) -> int:
    a, b = args[0], args[1]
    return a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2]


def _baddbmm(args, out) -> int:
    return _bmm(args[1:], out)


def _conv(args, out) -> int:
    x, w = args[0], args[1]
    groups = args[8] if len(args) > 8 else 1
    out_t = out[0] if isinstance(out, (tuple, list)) else out
    return out_t.numel() * (x.shape[1] // groups) * prod(w.shape[2:])


def _sdpa(args, out) -> int:
    q, k, v = args[0], args[1], args[2]
    *batch, n_q, d_qk = q.shape
    n_k, d_v = k.shape[-2], v.shape[-1]
    return prod(batch) * n_q * n_k * (d_qk + d_v)


def _layer_norm(args, out) -> int:
    weight = args[2] if len(args) > 2 else None
    return args[0].numel() * (5 if weight is not None else 4)


_HANDLERS = {
    aten.mm.default: _mm,
    aten.addmm.default: _addmm,
    aten.bmm.default: _bmm,
    aten.baddbmm.default: _baddbmm,
    aten.convolution.default: _conv,
    aten.native_layer_norm.default: _layer_norm,
}
for _name in ("_scaled_dot_product_flash_attention", "_scaled_dot_product_efficient_attention",
              "_scaled_dot_product_cudnn_attention", "_scaled_dot_product_flash_attention_for_cpu",
              "_scaled_dot_product_fused_attention_overrideable"):
    if hasattr(aten, _name):
        _HANDLERS[getattr(aten, _name).default] = _sdpa


class MacCounter(TorchDispatchMode):
    """Counts multiply-accumulates of everything run inside ``with MacCounter() as c:``; ``c.total``.

    ``c.by_op`` splits the total by aten op (e.g. how much is attention)."""

    def __init__(self):
        super().__init__()
        self.total = 0
        self.by_op: dict[str, int] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        handler = _HANDLERS.get(func)
        if handler is not None:
            macs = int(handler(args, out))
            self.total += macs
            name = func.overloadpacket.__name__
            self.by_op[name] = self.by_op.get(name, 0) + macs
        return out


def example_inputs(cfg: ModelConfig, batch: int = 1, device="cpu", generator: torch.Generator | None = None):
    """``(x, noise_level, y)`` for a config: standard-normal ``x``, ``log_snr = 0.5`` (DiMR, the input
    the official counts were taken with: docs/official-code.md §7) or ``t = 500`` (U-ViT/DiT), label 1."""
    x = torch.randn(batch, cfg.in_channels, cfg.image_size, cfg.image_size, generator=generator).to(device)
    level = torch.full((batch,), 0.5 if cfg.noise_input == "log_snr" else 500.0, device=device)
    y = torch.ones(batch, dtype=torch.long, device=device)
    return x, level, y


def count_gmacs(cfg: ModelConfig, batch: int = 1, device: str = "meta", model: nn.Module | None = None) -> float:
    """GMACs of one forward pass at ``batch`` (the paper's "GFLOPs" at batch 1), built on ``device``."""
    model = model if model is not None else build_model(cfg, device=device)
    if device == "meta":
        x, level, y = (t.to("meta") for t in example_inputs(cfg, batch))
    else:
        x, level, y = example_inputs(cfg, batch, device)
    with torch.no_grad(), MacCounter() as counter:
        model(x, level, y)
    return counter.total / 1e9


@dataclass(frozen=True)
class ProfileRow:
    name: str
    params: int
    gmacs: float
    paper_params: tuple
    paper_gmacs: tuple
    official_params: int | None
    description: str


def profile_preset(name: str) -> ProfileRow:
    """Count a preset's parameters and GMACs on the meta device (seconds even for DiMR-G/2R)."""
    from .presets import get_preset

    p = get_preset(name)
    model = build_model(p.model, device="meta")
    return ProfileRow(
        name=p.name, params=count_params(model), gmacs=count_gmacs(p.model, model=model),
        paper_params=tuple((v.value, v.where) for v in p.paper_params),
        paper_gmacs=tuple((v.value, v.where) for v in p.paper_gmacs),
        official_params=p.official_params, description=p.description)


def fmt_params(n: int) -> str:
    """``132827913 -> "132.83M"``, ``1056352904 -> "1.056B"``."""
    return f"{n / 1e9:.3f}B" if n >= 1e9 else f"{n / 1e6:.2f}M"
