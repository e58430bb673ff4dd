"""Diffusion where everything is known in closed form: Gaussian data, and mixtures of Gaussians.

For data ``x₀ ~ N(μ, s²I)`` the marginal is ``x_t ~ N(α_t μ, v_t I)`` with ``v_t = α_t² s² + σ_t²``,
the exact noise predictor is ``ε*(x, t) = σ_t (x − α_t μ) / v_t``, and the probability-flow ODE
maps ``x_a`` at time ``a`` to ``x_b = α_b μ + √(v_b / v_a) · (x_a − α_a μ)``.

For a mixture ``Σ_k π_k N(μ_k, s²I)`` the noise predictor is the responsibility-weighted average of
the components' predictors — the unconditional model of a class-conditional toy problem, against
which classifier-free guidance can be watched at work.  These serve the solver tests and the
solver / guidance chapters of the book.
"""
from __future__ import annotations

from typing import Callable

import torch

__all__ = ["gaussian_eps_fn", "gaussian_flow_solution", "mixture_eps_fn"]

EpsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _coeffs(schedule, t: torch.Tensor, x: torch.Tensor):
    shape = (-1,) + (1,) * (x.dim() - 1)
    t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
    return schedule.alpha(t).reshape(shape), schedule.sigma(t).reshape(shape)


def gaussian_eps_fn(schedule, mu: float | torch.Tensor, s: float) -> EpsFn:
    """Exact ``ε*(x, t)`` for data ``N(μ, s²I)``: ``(x: [B, ...], t: [B]) -> [B, ...]``."""

    def eps_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a, sig = _coeffs(schedule, t, x)
        return sig * (x - a * mu) / (a * a * s * s + sig * sig)

    return eps_fn


def gaussian_flow_solution(schedule, x_start: torch.Tensor, t_end: float, mu: float | torch.Tensor, s: float,
                           t_start: float = 1.0) -> torch.Tensor:
    """The exact probability-flow ODE solution from ``t_start`` to ``t_end`` for data ``N(μ, s²I)``."""
    f = dict(dtype=x_start.dtype, device=x_start.device)
    a1, s1 = schedule.alpha(torch.tensor(t_start, **f)), schedule.sigma(torch.tensor(t_start, **f))
    ae, se = schedule.alpha(torch.tensor(t_end, **f)), schedule.sigma(torch.tensor(t_end, **f))
    return ae * mu + torch.sqrt(ae ** 2 * s ** 2 + se ** 2) / torch.sqrt(a1 ** 2 * s ** 2 + s1 ** 2) * (x_start - a1 * mu)


def mixture_eps_fn(schedule, means: torch.Tensor, s: float, weights: torch.Tensor | None = None,
                   labels: torch.Tensor | None = None) -> EpsFn:
    """Exact ``ε*`` for points ``x: [B, D]`` under a mixture of ``N(μ_k, s²I)``, ``means: [K, D]``.

    With ``labels: [B]`` each sample uses its own component (the class-conditional model); without,
    the whole mixture (the unconditional model)."""
    K = means.shape[0]
    logw = torch.log(weights if weights is not None else torch.full((K,), 1.0 / K, dtype=means.dtype))

    def eps_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a, sig = _coeffs(schedule, t, x)
        v = a * a * s * s + sig * sig                             # [B, 1]
        diff = x[:, None, :] - a[:, :, None] * means[None]        # [B, K, D]
        if labels is not None:
            resp = torch.nn.functional.one_hot(labels, K).to(x.dtype)
        else:
            resp = torch.softmax(logw.to(x) - diff.pow(2).sum(-1) / (2 * v), dim=1)
        return sig * (resp[..., None] * diff).sum(1) / v

    return eps_fn
