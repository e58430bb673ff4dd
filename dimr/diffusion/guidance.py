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

Training drops labels to the null class ``K`` (:func:`dimr.diffusion.denoiser.null_label`, the last
row of the model's embedding table) with probability ``p_uncond`` (official: 0.1, null label 1000 of 1001).

At sampling the conditional and unconditional predictions come from **one** forward of a doubled
batch (the official code runs two passes; the result is the same, :func:`guided_prediction`).
"""
from __future__ import annotations

import math
from typing import Callable, Union

import torch

from .denoiser import Denoiser

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


def drop_labels(y: torch.Tensor, p_uncond: float, null_class: int | None,
                generator: torch.Generator | None = None, uniform: torch.Tensor | None = None) -> torch.Tensor:
    """Replace each label by ``null_class`` with probability ``p_uncond`` (CFG training).

    ``y: [B]`` long -> ``[B]`` long (a new tensor; ``y`` is not modified). The label is dropped where a
    uniform draw is below ``p_uncond``: ``uniform: [B]`` when the caller drew them (the training loop draws
    a whole step's at once), else drawn here from ``generator``."""
    if not 0.0 <= p_uncond <= 1.0:
        raise ValueError(f"p_uncond must be in [0, 1], got {p_uncond}")
    if p_uncond == 0.0:
        return y.clone()
    if null_class is None:
        raise ValueError("label dropout needs a null label (a model with num_classes = K + 1)")
    if uniform is None:
        uniform = torch.rand(y.shape, generator=generator, device=generator.device if generator is not None
                             else y.device)
    drop = uniform.to(y.device) < p_uncond
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


def guided_prediction(denoiser: Denoiser, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor,
                      w: Union[float, torch.Tensor]) -> torch.Tensor:
    """Guided full-resolution ε̂ from **one** forward of the doubled batch.

    ``denoiser``: a :class:`~dimr.diffusion.denoiser.Denoiser` (it feeds the network its noise level,
    knows the null label and converts the network's prediction to ε̂); ``x: [B, C, H, W]``; ``t: [B]``
    (or scalar) continuous times; ``y: [B]``; ``w``: scalar or ``[B]``. Returns ``[B, C, H, W]``.
    Guidance combines the two ε̂; since every prediction kind is an affine function of ε̂ at fixed
    ``(x_t, t)``, combining x̂₀ or v̂ instead gives the same sample."""
    if denoiser.null_class is None:
        raise ValueError("this network has no null label (it was trained without label dropout): "
                         "guidance needs w = 1")
    B = x.shape[0]
    t = torch.as_tensor(t, device=x.device)
    t = t.reshape(-1).expand(B) if t.numel() == 1 else t.reshape(B)
    labels = torch.cat([y, torch.full_like(y, denoiser.null_class)])
    eps = denoiser.eps(torch.cat([x, x]), torch.cat([t, t]), labels)
    return apply_guidance(eps[:B], eps[B:], w)


def model_eps_fn(denoiser: Denoiser, y: torch.Tensor) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """An unguided ``eps_fn(x, t) -> ε̂`` for the solvers (``t``: continuous times ``[B]``)."""

    def eps_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return denoiser.eps(x, t, y)

    return eps_fn


def guided_model_fn(denoiser: Denoiser, y: torch.Tensor, w: Weight) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """A guided ``eps_fn(x, t) -> ε̂`` for :func:`dimr.diffusion.dpm_solver.sample_dpm_solver`.

    ``t: [B]`` continuous times. ``w`` is a constant weight or a function of ``t`` (e.g.
    :func:`cosine_ramp_weight`). With ``w == 1`` the unconditional half is skipped (the result is the
    conditional prediction either way)."""
    if not callable(w) and float(w) == 1.0:
        return model_eps_fn(denoiser, y)

    def eps_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return guided_prediction(denoiser, x, t, y, w(t) if callable(w) else w)

    return eps_fn
