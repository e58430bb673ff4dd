"""Classifier-free guidance (Ho & Salimans): label dropout at training, guided noise at sampling.

Conventions. The guidance **weight** ``w`` is the usual one,

    ε̂ = ε_u + w·(ε_c − ε_u),

so ``w = 1`` is the conditional model and ``w = 0`` the unconditional one. The official DiMR/U-ViT code
writes ``ε_c + s·(ε_c − ε_u)`` with a **scale** ``s`` (``config.sample.scale = 0.4``), i.e.
``w = 1 + s`` (:func:`weight_from_scale`); ``Recipe.cfg_scale`` stores that ``s``.

The official optional DiT-style ramp (``eval.py``, ``--cfg_scale_pow > 0``, needs ``scale ≥ 1``) uses
``scale`` directly as the final weight:

    w(t) = 1 + (scale − 1)·½·(1 − cos(π·(1 − t_step/1000)^pow)),   t_step = 1000·t ∈ [0, 1000],

rising from 1 at pure noise (t_step = 1000) to ``scale`` as t_step → 0 (:func:`cosine_ramp_weight`).

Training drops labels to the null class ``K`` (``num_classes − 1`` of the model's embedding table)
with probability ``p_uncond`` (official: 0.1, null label 1000 of 1001).

At sampling the conditional and unconditional predictions come from **one** forward of a doubled
batch (the official code runs two passes; the result is the same, :func:`guided_prediction`).
"""
from __future__ import annotations

import math
from typing import Callable, Union

import torch

from .schedules import Schedule

__all__ = [
    "drop_labels",
    "weight_from_scale",
    "cosine_ramp_weight",
    "apply_guidance",
    "guided_prediction",
    "guided_model_fn",
    "model_eps_fn",
    "Weight",
]

#: a guidance weight: a constant, or a function of the continuous time ``t: [B]`` giving ``[B]``
Weight = Union[float, Callable[[torch.Tensor], torch.Tensor]]


def drop_labels(y: torch.Tensor, p_uncond: float, null_class: int,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Replace each label by ``null_class`` with probability ``p_uncond`` (CFG training).

    ``y: [B]`` long -> ``[B]`` long (a new tensor; ``y`` is not modified)."""
    if not 0.0 <= p_uncond <= 1.0:
        raise ValueError(f"p_uncond must be in [0, 1], got {p_uncond}")
    if p_uncond == 0.0:
        return y.clone()
    drop = torch.rand(y.shape, generator=generator, device=generator.device if generator is not None
                      else y.device).to(y.device) < p_uncond
    return torch.where(drop, torch.full_like(y, null_class), y)


def weight_from_scale(scale: float) -> float:
    """The official ``scale`` s of ``ε_c + s(ε_c − ε_u)`` as the usual weight: ``w = 1 + s``
    (official default s = 0.4 → w = 1.4)."""
    return 1.0 + float(scale)


def cosine_ramp_weight(scale: float, power: float,
                       num_steps: int = 1000) -> Callable[[torch.Tensor], torch.Tensor]:
    """The official cosine-ramped weight as a function of continuous time ``t: [B]`` (``eval.py``).

    ``w(t) = 1 + (scale − 1)·½·(1 − cos(π·(1 − t_step/1000)^power))`` with ``t_step = num_steps·t``;
    ``w = 1`` at ``t = 1`` and ``w → scale`` as ``t → 0``. Requires ``scale ≥ 1`` and ``power > 0``."""
    if scale < 1.0 or power <= 0.0:
        raise ValueError(f"the cosine ramp needs scale >= 1 and power > 0, got scale={scale}, power={power}")

    def weight(t: torch.Tensor) -> torch.Tensor:
        t_step = torch.as_tensor(t) * num_steps
        ramp = 0.5 * (1.0 - torch.cos(math.pi * (1.0 - t_step / 1000.0).clamp(min=0.0) ** power))
        return 1.0 + (scale - 1.0) * ramp

    return weight


def apply_guidance(eps_cond: torch.Tensor, eps_uncond: torch.Tensor,
                   w: Union[float, torch.Tensor]) -> torch.Tensor:
    """``ε̂ = ε_u + w·(ε_c − ε_u)``. ``eps_*: [B, ...]``; ``w``: scalar or ``[B]``."""
    w = torch.as_tensor(w, dtype=eps_cond.dtype, device=eps_cond.device)
    if w.dim() > 0:
        w = w.reshape(-1, *([1] * (eps_cond.dim() - 1)))
    return eps_uncond + w * (eps_cond - eps_uncond)


def _full_res(out) -> torch.Tensor:
    """The full-resolution prediction: the last element of a list output (DiMR, baselines)."""
    return out[-1] if isinstance(out, (list, tuple)) else out


def guided_prediction(model: Callable, x: torch.Tensor, net_in: torch.Tensor, y: torch.Tensor,
                      null_class: int, w: Union[float, torch.Tensor]) -> torch.Tensor:
    """Guided full-resolution noise from **one** forward of the doubled batch.

    ``model(x: [2B, ...], net_in: [2B], labels: [2B]) -> list[Tensor]`` (or a tensor); ``x: [B, C, H, W]``;
    ``net_in: [B]`` (or scalar) is what the network is fed (see ``Schedule.network_input``);
    ``y: [B]``; ``w``: scalar or ``[B]``. Returns ``[B, C, H, W]`` — only the guided full-resolution
    prediction (the last list element); lower-resolution outputs are not used at sampling."""
    B = x.shape[0]
    net_in = torch.as_tensor(net_in, device=x.device)
    net_in = net_in.reshape(-1).expand(B) if net_in.numel() == 1 else net_in.reshape(B)
    labels = torch.cat([y, torch.full_like(y, null_class)])
    out = _full_res(model(torch.cat([x, x]), torch.cat([net_in, net_in]), labels))
    eps_cond, eps_uncond = out[:B], out[B:]
    return apply_guidance(eps_cond, eps_uncond, w)


def model_eps_fn(model: Callable, y: torch.Tensor, noise_input: str,
                 schedule: Schedule) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """An unguided ``eps_fn(x, t) -> ε`` for the solvers: the full-resolution prediction of
    ``model(x, schedule.network_input(t, noise_input), y)``. ``t``: continuous times ``[B]``."""

    def eps_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return _full_res(model(x, schedule.network_input(t, noise_input), y))

    return eps_fn


def guided_model_fn(model: Callable, y: torch.Tensor, null_class: int, w: Weight, noise_input: str,
                    schedule: Schedule) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """A guided ``eps_fn(x, t) -> ε̂`` for :func:`dimr.diffusion.dpm_solver.sample_dpm_solver`.

    ``t: [B]`` continuous times; the network gets ``schedule.network_input(t, noise_input)``. ``w`` is
    a constant weight or a function of ``t`` (e.g. :func:`cosine_ramp_weight`). With ``w == 1`` the
    unconditional half is skipped (the result is the conditional prediction either way)."""
    if not callable(w) and float(w) == 1.0:
        return model_eps_fn(model, y, noise_input, schedule)

    def eps_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        weight = w(t) if callable(w) else w
        return guided_prediction(model, x, schedule.network_input(t, noise_input), y, null_class, weight)

    return eps_fn
