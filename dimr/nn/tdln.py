"""Time-Dependent Layer Normalization (paper §4.2, equations (5)–(7)).

Two readings of the same idea live here, side by side:

* ``form="official"`` — what the released code does (``libs/core/sigmoid/module.py``): every
  time-dependent parameter (TDP) is a per-channel vector with its *own* gate
  ``s = sigmoid((1 + w')·τ + b)`` (``w'``, ``b`` per channel, zero at init), and the value is
  ``s·p0 + (1 − s)·p1``.  ``w'`` and ``b`` are the "nodecay" parameters excluded from weight decay.
* ``form="paper"`` — equations (5)–(7) read literally: one scalar pair ``(w, b)`` per norm,
  shared by γ(t) and β(t), ``s(t) = sigmoid(w·t + b)``, ``γ = s·p1 + (1 − s)·p2`` and
  ``β = s·p3 + (1 − s)·p4``.

Time is always an argument (τ, one value per sample, the official code's ``log_snr / 4``), never
state stored on a module.  At initialisation ``p0 == p1`` so every norm is exactly time-independent
(the official code's behaviour); :func:`set_time_dependence` exists for tests and notebooks that want
to see time act.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "TimeDependentParameter",
    "TDLayerNorm",
    "TDRMSNorm",
    "RMSNorm",
    "broadcast_channels",
    "NODECAY_SUFFIXES",
]

#: Parameter-name suffixes the official optimiser puts in the no-weight-decay group.
NODECAY_SUFFIXES = ("nodecay_weight", "nodecay_bias", "gate_weight", "gate_bias")


def broadcast_channels(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Reshape per-sample channel values ``v: [B, C]`` (or ``[C]``) to broadcast against
    channels-last ``x: [B, ..., C]``."""
    if v.ndim == 1:
        return v
    return v.view(v.shape[0], *([1] * (x.ndim - 2)), v.shape[-1])


def _as_tau(tau: torch.Tensor | float, ref: torch.Tensor) -> torch.Tensor:
    """τ as a column ``[B, 1]`` (or ``[1, 1]``) on ``ref``'s device and dtype."""
    tau = torch.as_tensor(tau, device=ref.device, dtype=ref.dtype)
    return tau.reshape(-1, 1)


class TimeDependentParameter(nn.Module):
    """One official TDP: a tensor-valued function of time, ``value(τ) = s·p0 + (1 − s)·p1`` with
    ``s = sigmoid((1 + nodecay_weight)·τ + nodecay_bias)`` element-wise (official kernel.py).

    Shapes: ``forward(tau: [B]) -> [B, C]`` for a parameter of shape ``[C]``.
    Parameters: ``param0, param1, nodecay_weight, nodecay_bias``, each ``[C]`` (4·C in all).
    """

    def __init__(self, channels: int, init: float):
        super().__init__()
        self.param0 = nn.Parameter(torch.full((channels,), float(init)))
        self.param1 = nn.Parameter(torch.full((channels,), float(init)))
        self.nodecay_weight = nn.Parameter(torch.zeros(channels))
        self.nodecay_bias = nn.Parameter(torch.zeros(channels))

    def gate(self, tau: torch.Tensor) -> torch.Tensor:
        """``s(τ)``: ``[B, 1] -> [B, C]``, equation (5) with per-channel ``w = 1 + w'`` and ``b``."""
        return torch.sigmoid((1.0 + self.nodecay_weight) * tau + self.nodecay_bias)

    def forward(self, tau: torch.Tensor) -> torch.Tensor:
        s = self.gate(_as_tau(tau, self.param0))
        return s * self.param0 + (1.0 - s) * self.param1  # equation (6)


class _PaperTimeGate(nn.Module):
    """Equation (5) literally: ``s(t) = sigmoid(w·t + b)`` with one scalar ``w`` and ``b`` per norm.

    ``w`` starts at 1 so that, like the official ``1 + w'`` form, ``s`` starts at ``sigmoid(τ)``."""

    def __init__(self):
        super().__init__()
        self.gate_weight = nn.Parameter(torch.ones(1))
        self.gate_bias = nn.Parameter(torch.zeros(1))

    def forward(self, tau: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.gate_weight * tau + self.gate_bias)  # [B, 1]


class TDLayerNorm(nn.Module):
    """TD-LN, equation (7): ``z = LN(x; γ(t), β(t))``.

    Args:
        dim: channel count C (the last axis of ``x``).
        form: ``"official"`` (per-channel gates, one per γ and β) or ``"paper"`` (one shared scalar
            gate, parameters ``p1..p4``).
        eps: LayerNorm epsilon (1e-5, as the official ``F.layer_norm`` call).

    Shapes: ``forward(x: [B, ..., C], tau: [B]) -> [B, ..., C]``.
    Parameters: official 8·C; paper 4·C + 2.
    """

    def __init__(self, dim: int, form: str = "official", eps: float = 1e-5):
        super().__init__()
        if form not in ("official", "paper"):
            raise ValueError(f"TD-LN form must be 'official' or 'paper', got {form!r}")
        self.dim, self.form, self.eps = dim, form, eps
        if form == "official":
            self.weight = TimeDependentParameter(dim, 1.0)
            self.bias = TimeDependentParameter(dim, 0.0)
        else:
            self.gate = _PaperTimeGate()
            self.p1 = nn.Parameter(torch.ones(dim))
            self.p2 = nn.Parameter(torch.ones(dim))
            self.p3 = nn.Parameter(torch.zeros(dim))
            self.p4 = nn.Parameter(torch.zeros(dim))

    def gamma_beta(self, tau: torch.Tensor | float, ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """γ(t), β(t) as ``[B, C]`` (equation (6) and its β twin)."""
        tau = _as_tau(tau, ref)
        if self.form == "official":
            return self.weight(tau), self.bias(tau)
        s = self.gate(tau)
        return s * self.p1 + (1 - s) * self.p2, s * self.p3 + (1 - s) * self.p4

    def forward(self, x: torch.Tensor, tau: torch.Tensor | float) -> torch.Tensor:
        gamma, beta = self.gamma_beta(tau, x)
        x = F.layer_norm(x, (self.dim,), eps=self.eps)
        return x * broadcast_channels(gamma, x) + broadcast_channels(beta, x)


def _rms(x: torch.Tensor) -> torch.Tensor:
    """``sqrt(mean(x², -1))`` as ``[..., 1]``: one reduction (‖x‖₂/√C), no temporary x² tensor."""
    return torch.linalg.vector_norm(x, dim=-1, keepdim=True) * x.shape[-1] ** -0.5


class TDRMSNorm(nn.Module):
    """TD-RMSNorm, the official block norm (``norm_type="TDRMSN"``): scale only, no centring, no β.

    ``z = x / (‖x‖₂/√C + 1e-8) · γ(t)`` — the epsilon sits *outside* the square root, as in the
    official module, which is why ``F.rms_norm`` is not used.

    Shapes: ``forward(x: [B, ..., C], tau: [B]) -> [B, ..., C]``. Parameters: 4·C.
    """

    def __init__(self, dim: int, eps: float = 1e-8):
        super().__init__()
        self.dim, self.eps = dim, eps
        self.scale = TimeDependentParameter(dim, 1.0)

    def forward(self, x: torch.Tensor, tau: torch.Tensor | float) -> torch.Tensor:
        rms = _rms(x)
        gamma = self.scale(_as_tau(tau, x))
        return x / (rms + self.eps) * broadcast_channels(gamma, x)


class RMSNorm(nn.Module):
    """Plain RMSNorm with the official epsilon placement; time-blind. ``[B, ..., C] -> same``."""

    def __init__(self, dim: int, eps: float = 1e-8):
        super().__init__()
        self.dim, self.eps = dim, eps
        self.scale = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor, tau: torch.Tensor | float | None = None) -> torch.Tensor:
        return x / (_rms(x) + self.eps) * self.scale


class LayerNorm(nn.LayerNorm):
    """``nn.LayerNorm`` that accepts (and ignores) τ, so every norm shares one call signature."""

    def forward(self, x: torch.Tensor, tau: torch.Tensor | float | None = None) -> torch.Tensor:
        return super().forward(x)


def make_norm(kind: str, dim: int, tdp_form: str = "official") -> nn.Module:
    """Build a block norm by name.

    ``"tdrmsn"`` (official default), ``"tdln"`` (paper: TD-LN everywhere), ``"ln"`` (affine LN, the
    adaLN rows), ``"ln_noaffine"`` (DiT-style), ``"rmsn"`` (plain RMSNorm)."""
    if kind == "tdrmsn":
        return TDRMSNorm(dim)
    if kind == "tdln":
        return TDLayerNorm(dim, form=tdp_form)
    if kind == "ln":
        return LayerNorm(dim, eps=1e-5)
    if kind == "ln_noaffine":
        return LayerNorm(dim, eps=1e-6, elementwise_affine=False)
    if kind == "rmsn":
        return RMSNorm(dim)
    raise ValueError(f"unknown norm {kind!r}; expected one of tdrmsn, tdln, ln, ln_noaffine, rmsn")


__all__ += ["LayerNorm", "make_norm"]


def set_time_dependence(module: nn.Module, generator: torch.Generator | None = None, scale: float = 0.5) -> None:
    """Perturb every TD norm's second endpoint (``param1`` / ``p2``, ``p4``) so that γ(t), β(t) actually
    vary with time. Used by tests and notebooks to show time acting; training does this by itself."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, TimeDependentParameter):
                m.param1.add_(scale * torch.randn(m.param1.shape, generator=generator).to(m.param1))
            elif isinstance(m, TDLayerNorm) and m.form == "paper":
                m.p2.add_(scale * torch.randn(m.p2.shape, generator=generator).to(m.p2))
                m.p4.add_(scale * torch.randn(m.p4.shape, generator=generator).to(m.p4))


__all__ += ["set_time_dependence"]
