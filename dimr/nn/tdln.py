"""Time-Dependent Layer Normalization (paper §4.2, equations (5)–(7)).

Two readings of the same idea live here, side by side:

* ``form="official"`` — what the released code does (``libs/core/sigmoid/module.py``): every
  time-dependent parameter (TDP) is a per-channel vector with its *own* gate
  ``s = sigmoid((1 + w')·τ + b)`` (``w'``, ``b`` per channel, zero at init), and the value is
  ``s·p0 + (1 − s)·p1``.  ``w'`` and ``b`` are the "nodecay" parameters excluded from weight decay.
* ``form="paper"`` — equations (5)–(7) read literally: one scalar pair ``(w, b)`` per norm,
  shared by γ(t) and β(t), ``s(t) = sigmoid(w·t + b)``, ``γ = s·p1 + (1 − s)·p2`` and
  ``β = s·p3 + (1 − s)·p4``.

Time is always an argument, never state stored on a module: τ (one value per sample, the official
code's ``log_snr / 4``), or the :class:`TimeValues` table a network computes from τ once per forward,
every time-dependent value of every norm in one batched op.  At initialisation ``p0 == p1`` so every norm is exactly time-independent
(the official code's behaviour); :func:`set_time_dependence` exists for tests and notebooks that want
to see time act.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "gated_lerp",
    "TimeDependent",
    "TimeValues",
    "time_dependent_modules",
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


def gated_lerp(hi: torch.Tensor, lo: torch.Tensor, w: torch.Tensor, b: torch.Tensor,
               tau: torch.Tensor) -> torch.Tensor:
    """Equations (5)–(6) for any number of time-dependent values at once:
    ``s = sigmoid(w·τ + b)``, value ``= s·hi + (1 − s)·lo``, element-wise.

    Shapes: ``hi, lo, w, b: [P]``, ``tau: [B, 1] -> [B, P]``."""
    s = torch.sigmoid(w * tau + b)
    return s * hi + (1.0 - s) * lo


class TimeDependent(nn.Module):
    """A module with values that are functions of time through :func:`gated_lerp`.

    It states its terms (:meth:`time_terms`: ``hi, lo, w, b``, each ``[P]``) and gets its values
    ``[B, P]`` from ``t``: either a :class:`TimeValues` table that computed every such module of a
    network at once, or τ itself (``[B]``, a scalar or a float), from which it computes its own."""

    #: whether this module has terms of its own (a TD-LN of the official form holds two
    #: :class:`TimeDependentParameter` modules instead)
    has_time_terms = True

    def time_terms(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def time_values(self, t: "TimeValues | torch.Tensor | float") -> torch.Tensor:
        """This module's values at ``t``: ``[B, P]``."""
        if isinstance(t, TimeValues):
            return t.values_of(self)
        hi, lo, w, b = self.time_terms()
        return gated_lerp(hi, lo, w, b, torch.as_tensor(t, device=hi.device, dtype=hi.dtype).reshape(-1, 1))


def time_dependent_modules(root: nn.Module) -> list[TimeDependent]:
    """Every :class:`TimeDependent` module under ``root`` that has terms, in ``root.modules()`` order;
    each learns its position (``time_slot``) in the tables :class:`TimeValues` builds for ``root``."""
    found = [m for m in root.modules() if isinstance(m, TimeDependent) and m.has_time_terms]
    for slot, m in enumerate(found):
        m.time_slot = slot
    return found


class TimeValues:
    """Every time-dependent value of a network at τ, computed once per forward in one batched
    :func:`gated_lerp` over the concatenated terms of all its modules (instead of a few small ops per
    norm). Blocks pass it on where they would pass τ; each module reads its own slice.

    τ stays in the parameters' dtype (fp32) under autocast, as in the official code, which computes
    its time-dependent parameters before the network runs.

    Shapes: ``tau: [B]``; ``values_of(m) -> [B, P_m]``."""

    def __init__(self, modules: list[TimeDependent], tau: torch.Tensor):
        self.tau = tau
        terms = [m.time_terms() for m in modules]
        hi, lo, w, b = (torch.cat(parts) for parts in zip(*terms)) if terms else (tau.new_zeros(0),) * 4
        table = gated_lerp(hi, lo, w, b, tau.to(hi.dtype).reshape(-1, 1))
        self._values = table.split([t[0].numel() for t in terms], dim=1)

    def values_of(self, m: TimeDependent) -> torch.Tensor:
        return self._values[m.time_slot]


class TimeDependentParameter(TimeDependent):
    """One official TDP: a tensor-valued function of time, ``value(τ) = s·p0 + (1 − s)·p1`` with
    ``s = sigmoid((1 + nodecay_weight)·τ + nodecay_bias)`` element-wise (official kernel.py).

    Shapes: ``forward(t) -> [B, C]`` for a parameter of shape ``[C]`` (``t``: τ ``[B]`` or a
    :class:`TimeValues`). Parameters: ``param0, param1, nodecay_weight, nodecay_bias``, each ``[C]``
    (4·C in all).
    """

    def __init__(self, channels: int, init: float):
        super().__init__()
        self.param0 = nn.Parameter(torch.full((channels,), float(init)))
        self.param1 = nn.Parameter(torch.full((channels,), float(init)))
        self.nodecay_weight = nn.Parameter(torch.zeros(channels))
        self.nodecay_bias = nn.Parameter(torch.zeros(channels))

    def time_terms(self):
        # equation (5) with a gate per channel: slope w = 1 + w' (so s starts at sigmoid(τ)), offset b
        return self.param0, self.param1, 1.0 + self.nodecay_weight, self.nodecay_bias

    def forward(self, t: "TimeValues | torch.Tensor | float") -> torch.Tensor:
        return self.time_values(t)


class _PaperTimeGate(nn.Module):
    """Equation (5)'s scalar pair for one norm: ``s(t) = sigmoid(w·t + b)`` with one ``w`` and one ``b``.

    ``w`` starts at 1 so that, like the official ``1 + w'`` form, ``s`` starts at ``sigmoid(τ)``."""

    def __init__(self):
        super().__init__()
        self.gate_weight = nn.Parameter(torch.ones(1))
        self.gate_bias = nn.Parameter(torch.zeros(1))


class TDLayerNorm(TimeDependent):
    """TD-LN, equation (7): ``z = LN(x; γ(t), β(t))``.

    Args:
        dim: channel count C (the last axis of ``x``).
        form: ``"official"`` (per-channel gates, one per γ and β) or ``"paper"`` (one shared scalar
            gate, parameters ``p1..p4``).
        eps: LayerNorm epsilon (1e-5, as the official ``F.layer_norm`` call).

    Shapes: ``forward(x: [B, ..., C], t) -> [B, ..., C]`` (``t``: τ ``[B]`` or a :class:`TimeValues`).
    Parameters: official 8·C; paper 4·C + 2.
    """

    def __init__(self, dim: int, form: str = "official", eps: float = 1e-5):
        super().__init__()
        if form not in ("official", "paper"):
            raise ValueError(f"TD-LN form must be 'official' or 'paper', got {form!r}")
        self.dim, self.form, self.eps = dim, form, eps
        self.has_time_terms = form == "paper"
        if form == "official":
            self.weight = TimeDependentParameter(dim, 1.0)
            self.bias = TimeDependentParameter(dim, 0.0)
        else:
            self.gate = _PaperTimeGate()
            self.p1 = nn.Parameter(torch.ones(dim))
            self.p2 = nn.Parameter(torch.ones(dim))
            self.p3 = nn.Parameter(torch.zeros(dim))
            self.p4 = nn.Parameter(torch.zeros(dim))

    def time_terms(self):
        # the paper's form: γ and β side by side ([2C]) behind one scalar gate s(t) = sigmoid(w·t + b)
        w, b = self.gate.gate_weight.expand(2 * self.dim), self.gate.gate_bias.expand(2 * self.dim)
        return torch.cat([self.p1, self.p3]), torch.cat([self.p2, self.p4]), w, b

    def gamma_beta(self, t: "TimeValues | torch.Tensor | float") -> tuple[torch.Tensor, torch.Tensor]:
        """γ(t), β(t) as ``[B, C]`` (equation (6) and its β twin)."""
        if self.form == "official":
            return self.weight(t), self.bias(t)
        return self.time_values(t).chunk(2, dim=-1)

    def forward(self, x: torch.Tensor, t: "TimeValues | torch.Tensor | float") -> torch.Tensor:
        gamma, beta = self.gamma_beta(t)
        x = F.layer_norm(x, (self.dim,), eps=self.eps)
        return x * broadcast_channels(gamma, x) + broadcast_channels(beta, x)


def _rms(x: torch.Tensor) -> torch.Tensor:
    """``sqrt(mean(x², -1))`` as ``[..., 1]``: one reduction (‖x‖₂/√C), no temporary x² tensor."""
    return torch.linalg.vector_norm(x, dim=-1, keepdim=True) * x.shape[-1] ** -0.5


class TDRMSNorm(nn.Module):
    """TD-RMSNorm, the official block norm (``norm_type="TDRMSN"``): scale only, no centring, no β.

    ``z = x / (‖x‖₂/√C + 1e-8) · γ(t)`` — the epsilon sits *outside* the square root, as in the
    official module, which is why ``F.rms_norm`` is not used.

    Shapes: ``forward(x: [B, ..., C], t) -> [B, ..., C]`` (``t``: τ ``[B]`` or a :class:`TimeValues`).
    Parameters: 4·C.
    """

    def __init__(self, dim: int, eps: float = 1e-8):
        super().__init__()
        self.dim, self.eps = dim, eps
        self.scale = TimeDependentParameter(dim, 1.0)

    def forward(self, x: torch.Tensor, t: "TimeValues | torch.Tensor | float") -> torch.Tensor:
        return x / (_rms(x) + self.eps) * broadcast_channels(self.scale(t), x)


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
