"""Noise schedules: the one place that converts between diffusion time and everything derived from it.

Both schedules are variance preserving (VP): ``x_t = α_t·x_0 + σ_t·ε`` with ``α_t² + σ_t² = 1`` and
continuous time ``t ∈ [0, T]``, ``T = 1``. From ``log α_t`` everything else follows:

* ``σ_t = sqrt(1 − α_t²)``;
* the **true log-SNR** ``log_snr(t) = log(α_t² / σ_t²)``. DPM-Solver's "half log-SNR" is
  ``λ_t = log(α_t/σ_t) = log_snr/2``; only :mod:`dimr.diffusion.dpm_solver` uses λ, and it halves
  ``log_snr`` itself;
* what the **network is fed**, :meth:`network_input`, which is *not* always the true log-SNR (below).

Two schedules, named as in :class:`dimr.presets.Recipe`:

``"vp_linear"`` — :class:`VPLinearSchedule`
    The continuous VP-SDE with a linear β(t) from β₀ = 0.1 to β₁ = 20 (Song et al.; U-ViT's and
    DiMR's ``sde.py``; the pixel 64×64 models): ``log α_t = −¼·t²·(β₁ − β₀) − ½·t·β₀``. Training draws
    ``t ~ U[0, 1)`` (``sde.py``: ``torch.rand``).

``"sd_scaled_linear"`` — :class:`SDScaledLinearSchedule`
    The discrete Stable-Diffusion schedule of the official latent models (DiMR ``train.py``):
    ``β_n = linspace(√0.00085, √0.012, 1000)²``, ``ᾱ_n = Π_{m≤n}(1 − β_m)``, ``n = 1..1000``. Training
    draws ``n ~ U{1..1000}``; here that is ``t = n/1000``. As a continuous-time object (needed by
    DPM-Solver) ``log α_t`` is DPM-Solver's piecewise-linear interpolation of ``½·log ᾱ_n`` over the
    knots ``t_n = n/1000`` (extended linearly beyond them), so it is exact at every training step.

What the network is fed (``noise_input`` of the model config, :mod:`dimr.config`):

=================  ==============================================  ====================================
``noise_input``    ``vp_linear``                                   ``sd_scaled_linear``
=================  ==============================================  ====================================
``"log_snr"``      true log-SNR, clamped as the official           the official **proxy**
(DiMR)             ``sde.py``: NSR = expm1(∫β) ∈ [1e-12, 1e6],      ``8·t − 4`` (= ``8n/1000 − 4``), a
                   SNR = 1/NSR ∈ [1e-12, 1e6], fed ``log SNR``      linear step index that *increases*
                                                                   with noise — not the log-SNR
``"t999"``         ``999·t`` (U-ViT ``sde.py``)                    ``999·t`` as well
(U-ViT, DiT)
=================  ==============================================  ====================================

All methods take ``t`` as a float or a tensor of any shape and return a tensor of the same shape
(dtype of ``t``; float32 for Python floats). They are pure functions of ``t``; the schedules are frozen
dataclasses with no hidden state.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Union

import torch

__all__ = [
    "VPLinearSchedule",
    "SDScaledLinearSchedule",
    "Schedule",
    "SCHEDULES",
    "get_schedule",
    "sd_scaled_linear_betas",
    "NOISE_INPUTS",
    "TIME_DISTRIBUTIONS",
    "draw_training_t",
]

#: the two things a network may be fed as its noise level (``ModelConfig.noise_input``)
NOISE_INPUTS = ("log_snr", "t999")

_TensorLike = Union[float, torch.Tensor]


def _as_tensor(t: _TensorLike) -> torch.Tensor:
    t = torch.as_tensor(t)
    return t if t.is_floating_point() else t.to(torch.get_default_dtype())


def _broadcast_to(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Reshape a per-sample ``[B]`` (or scalar) coefficient to broadcast against ``x: [B, ...]``."""
    if v.dim() == 0:
        return v
    if v.numel() == 1:
        return v.reshape(())
    return v.reshape(-1, *([1] * (x.dim() - 1)))


class _VPSchedule:
    """Shared VP algebra; subclasses define :meth:`log_alpha` and :meth:`inverse_log_snr`."""

    name: str
    T: float
    eps: float

    # --- what subclasses provide -------------------------------------------------------------
    def log_alpha(self, t: _TensorLike) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def inverse_log_snr(self, log_snr: _TensorLike) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def network_input(self, t: _TensorLike, noise_input: str) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def sample_training_t(self, batch: int, generator: torch.Generator | None = None,
                          device: torch.device | str | None = None) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    # --- derived quantities -------------------------------------------------------------------
    def alpha(self, t: _TensorLike) -> torch.Tensor:
        """Signal scale ``α_t = exp(log α_t)``; same shape as ``t``."""
        return torch.exp(self.log_alpha(t))

    def sigma(self, t: _TensorLike) -> torch.Tensor:
        """Noise scale ``σ_t = sqrt(1 − α_t²)``, computed as ``sqrt(−expm1(2 log α_t))`` for accuracy
        near ``t = 0``; same shape as ``t``."""
        return torch.sqrt(-torch.expm1(2.0 * self.log_alpha(t)))

    def log_snr(self, t: _TensorLike) -> torch.Tensor:
        """True log signal-to-noise ratio ``log(α_t²/σ_t²) = 2·log α_t − log(1 − α_t²)`` (unclamped);
        DPM-Solver's λ_t is half of it. Same shape as ``t``."""
        two_log_alpha = 2.0 * self.log_alpha(t)
        return two_log_alpha - torch.log(-torch.expm1(two_log_alpha))

    def add_noise(self, x0: torch.Tensor, eps: torch.Tensor, t: _TensorLike) -> torch.Tensor:
        """The forward process ``x_t = α_t·x_0 + σ_t·ε``.

        ``x0, eps: [B, ...]``; ``t``: scalar or ``[B]``. Returns ``[B, ...]``."""
        if x0.shape != eps.shape:
            raise ValueError(f"x0 {tuple(x0.shape)} and eps {tuple(eps.shape)} must have the same shape")
        t = _as_tensor(t).to(device=x0.device, dtype=x0.dtype)
        return _broadcast_to(self.alpha(t), x0) * x0 + _broadcast_to(self.sigma(t), x0) * eps

    def _check_noise_input(self, noise_input: str) -> None:
        if noise_input not in NOISE_INPUTS:
            raise ValueError(f"noise_input must be one of {NOISE_INPUTS}, got {noise_input!r}")


@dataclass(frozen=True)
class VPLinearSchedule(_VPSchedule):
    """Continuous VP-SDE with linear β(t) = β₀ + t(β₁ − β₀) (pixel models, as U-ViT).

    ``log α_t = −¼·t²·(β₁ − β₀) − ½·t·β₀``, i.e. ``α_t² = exp(−∫₀ᵗ β)``. ``eps`` is the default end
    time of sampling (U-ViT samples its pixel models to 1e-4)."""

    beta_min: float = 0.1
    beta_max: float = 20.0
    T: float = 1.0
    eps: float = 1e-4
    #: clamp of the official ``sde.py`` on NSR and SNR before the log that the network is fed
    snr_clamp: tuple[float, float] = (1e-12, 1e6)
    name: str = "vp_linear"

    def log_alpha(self, t: _TensorLike) -> torch.Tensor:
        """``log α_t = −¼·t²·(β₁ − β₀) − ½·t·β₀``; same shape as ``t``."""
        t = _as_tensor(t)
        return -0.25 * t ** 2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min

    def inverse_log_snr(self, log_snr: _TensorLike) -> torch.Tensor:
        """The time ``t`` whose true log-SNR is ``log_snr`` (same shape).

        Solves ``∫₀ᵗ β = log(1 + e^{−log_snr})``, a quadratic in t, in the cancellation-free form
        ``t = 2c / (sqrt(β₀² + 2(β₁ − β₀)c) + β₀)`` with ``c = softplus(−log_snr)``."""
        c = torch.nn.functional.softplus(-_as_tensor(log_snr))
        db = self.beta_max - self.beta_min
        return 2.0 * c / (torch.sqrt(self.beta_min ** 2 + 2.0 * db * c) + self.beta_min)

    def network_input(self, t: _TensorLike, noise_input: str) -> torch.Tensor:
        """What the network is fed at time ``t`` (same shape as ``t``).

        * ``"log_snr"``: ``log SNR`` with the official clamp (``sde.py`` ``nsr``/``snr``):
          ``NSR = clamp(expm1(∫₀ᵗβ), 1e-12, 1e6)``, ``SNR = clamp(1/NSR, 1e-12, 1e6)`` — so the input
          lies in ``[log 1e-12, log 1e6] ≈ [−27.6, 13.8]``; inside the clamp it is the true log-SNR.
        * ``"t999"``: ``999·t`` (U-ViT's ``sde.py``: ``nnet(x, t * 999)``)."""
        self._check_noise_input(noise_input)
        t = _as_tensor(t)
        if noise_input == "t999":
            return 999.0 * t
        lo, hi = self.snr_clamp
        nsr = torch.expm1(-2.0 * self.log_alpha(t)).clamp(min=lo, max=hi)
        return torch.log((1.0 / nsr).clamp(min=lo, max=hi))

    def sample_training_t(self, batch: int, generator: torch.Generator | None = None,
                          device: torch.device | str | None = None) -> torch.Tensor:
        """``t ~ U[0, 1)`` per sample, as ``sde.py`` (``torch.rand``). Returns float32 ``[batch]``."""
        return torch.rand(batch, generator=generator, device=device) * self.T


@functools.lru_cache(maxsize=8)
def _sd_log_alpha_knots(beta_start: float, beta_end: float, num_steps: int) -> torch.Tensor:
    """``½·log ᾱ_n`` for n = 1..N in float64 (index n − 1), cached per schedule."""
    betas = sd_scaled_linear_betas(beta_start, beta_end, num_steps)
    return 0.5 * torch.cumsum(torch.log1p(-betas), dim=0)


def sd_scaled_linear_betas(beta_start: float = 0.00085, beta_end: float = 0.012,
                           num_steps: int = 1000) -> torch.Tensor:
    """Stable Diffusion's "scaled linear" betas ``β_n = linspace(√β_start, √β_end, N)²``, float64 ``[N]``
    (index ``n − 1`` holds β_n; DiMR ``train.py`` ``stable_diffusion_beta_schedule``)."""
    return torch.linspace(beta_start ** 0.5, beta_end ** 0.5, num_steps, dtype=torch.float64) ** 2


@dataclass(frozen=True)
class SDScaledLinearSchedule(_VPSchedule):
    """The discrete SD scaled-linear schedule (official latent models), seen in continuous time.

    Training steps ``n = 1..N`` sit at ``t_n = n/N``; between knots ``log α_t`` is linear in ``t``
    (DPM-Solver's ``NoiseScheduleVP('discrete')``), beyond them the end segments are extended.
    Meaningful for ``t ∈ [1/N, 1]``; ``eps`` (default end time of sampling) is ``1/N``."""

    beta_start: float = 0.00085
    beta_end: float = 0.012
    num_steps: int = 1000
    T: float = 1.0
    eps: float = 1e-3
    name: str = "sd_scaled_linear"

    def betas(self) -> torch.Tensor:
        """``β_n``, float64 ``[N]``."""
        return sd_scaled_linear_betas(self.beta_start, self.beta_end, self.num_steps)

    def alphas_cumprod(self) -> torch.Tensor:
        """``ᾱ_n``, float64 ``[N]`` (index ``n − 1``)."""
        return torch.exp(2.0 * _sd_log_alpha_knots(self.beta_start, self.beta_end, self.num_steps))

    def log_alpha(self, t: _TensorLike) -> torch.Tensor:
        """Piecewise-linear ``log α_t`` through ``(n/N, ½·log ᾱ_n)``; same shape and dtype as ``t``."""
        t = _as_tensor(t)
        knots = _sd_log_alpha_knots(self.beta_start, self.beta_end, self.num_steps).to(t.device)
        n = t.to(torch.float64) * self.num_steps  # continuous step index; knots at n = 1..N
        # segment [i, i + 1] in 1-based step numbers, the end segments extended
        i = torch.floor(n).clamp(1, self.num_steps - 1)
        lo = knots[(i - 1).long()]
        hi = knots[i.long()]
        return (lo + (n - i) * (hi - lo)).to(t.dtype)

    def inverse_log_snr(self, log_snr: _TensorLike) -> torch.Tensor:
        """Inverse of :meth:`log_snr` on the interpolated schedule (exact up to rounding): maps the
        true log-SNR to ``log α = −½·softplus(−log_snr)`` and inverts the piecewise-linear ``log α_t``."""
        log_snr = _as_tensor(log_snr)
        knots = _sd_log_alpha_knots(self.beta_start, self.beta_end, self.num_steps).to(log_snr.device)
        y = -0.5 * torch.nn.functional.softplus(-log_snr.to(torch.float64))
        # knots decrease with n; search on their negation, which increases
        j = torch.searchsorted(-knots, (-y).contiguous().reshape(-1)).reshape(y.shape)
        j = j.clamp(1, self.num_steps - 1)  # segment between 0-based knots j − 1 and j
        lo, hi = knots[j - 1], knots[j]
        n = j.to(torch.float64) + (y - lo) / (hi - lo)  # 1-based step number of knot j − 1 is j
        return (n / self.num_steps).to(log_snr.dtype)

    def network_input(self, t: _TensorLike, noise_input: str) -> torch.Tensor:
        """What the network is fed at time ``t`` (same shape as ``t``).

        * ``"log_snr"``: the official **proxy** ``8·(N·t)/1000 − 4`` = ``8t − 4`` for N = 1000
          (DiMR ``train.py``: ``log_snr = n/1000·8 − 4``; sampling feeds ``n = t·N`` unrounded). It is a
          linear step index in ``(−4, 4]`` that grows with noise, *not* :meth:`log_snr`.
        * ``"t999"``: ``999·t``."""
        self._check_noise_input(noise_input)
        t = _as_tensor(t)
        if noise_input == "t999":
            return 999.0 * t
        return (t * self.num_steps) / 1000.0 * 8.0 - 4.0

    def sample_training_t(self, batch: int, generator: torch.Generator | None = None,
                          device: torch.device | str | None = None) -> torch.Tensor:
        """``n ~ U{1..N}`` per sample, returned as ``t = n/N`` (float32 ``[batch]``), so that
        :meth:`network_input` gives exactly ``8n/1000 − 4`` and :meth:`alpha` exactly ``√ᾱ_n``."""
        n = torch.randint(1, self.num_steps + 1, (batch,), generator=generator, device=device)
        return n.to(torch.float32) / self.num_steps


Schedule = Union[VPLinearSchedule, SDScaledLinearSchedule]
SCHEDULES = {"vp_linear": VPLinearSchedule, "sd_scaled_linear": SDScaledLinearSchedule}


#: where training draws its times (``Recipe.time_distribution``)
TIME_DISTRIBUTIONS = ("uniform", "logit_normal")


def draw_training_t(schedule: Schedule, batch: int, generator: torch.Generator | None = None,
                    distribution: str = "uniform", loc: float = 0.0, scale: float = 1.0) -> torch.Tensor:
    """Training times ``[batch]`` (float32) for one batch.

    ``"uniform"`` is the schedule's own rule (:meth:`sample_training_t`; the paper's). ``"logit_normal"``
    (an option of this repo, as Esser et al. 2024 for flows) draws ``u = sigmoid(loc + scale·z)``,
    ``z ~ N(0, 1)``, so training sees the middle of the trajectory more often than its ends; a discrete
    schedule rounds ``u`` up to its next step ``n/N``."""
    if distribution == "uniform":
        return schedule.sample_training_t(batch, generator=generator)
    if distribution != "logit_normal":
        raise ValueError(f"time distribution must be one of {TIME_DISTRIBUTIONS}, got {distribution!r}")
    u = torch.sigmoid(loc + scale * torch.randn(batch, generator=generator))
    if isinstance(schedule, SDScaledLinearSchedule):
        n = torch.ceil(u * schedule.num_steps).clamp(1, schedule.num_steps)
        return n / schedule.num_steps
    return u * schedule.T


def get_schedule(name: str, **overrides) -> Schedule:
    """The schedule a :class:`~dimr.presets.Recipe` names (``recipe.schedule``), with optional field
    overrides (e.g. ``eps=1e-3``)."""
    if name not in SCHEDULES:
        raise ValueError(f"unknown noise schedule {name!r}; expected one of {sorted(SCHEDULES)}")
    return SCHEDULES[name](**overrides)

