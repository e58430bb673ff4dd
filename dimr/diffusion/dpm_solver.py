"""DPM-Solver (Lu et al. 2022) and DPM-Solver++ (Lu et al. 2022b) as pure functions.

The sampler solves the probability-flow ODE of a VP schedule (:mod:`dimr.diffusion.schedules`) from
``t_start`` (pure noise, ``T = 1``) to ``t_end`` (the schedule's ``eps``) given a noise predictor

    eps_fn(x: [B, ...], t: [B]) -> ε̂: [B, ...]        (t continuous, in (0, 1])

— e.g. :func:`dimr.diffusion.guidance.guided_model_fn`. Nothing here holds state: a solver step is a
function of ``(x, times, model values)``.

**Exponential integrators.** With the half log-SNR ``λ_t = log(α_t/σ_t)`` (``= schedule.log_snr/2``),
``h = λ_t − λ_s > 0`` for a step from s to t, the exact solution is (DPM-Solver eq. 3.4; ++ eq. 8)

    noise prediction:  x_t = (α_t/α_s)·x_s − α_t ∫_{λ_s}^{λ_t} e^{−λ} ε̂(λ) dλ
    data prediction:   x_t = (σ_t/σ_s)·x_s + σ_t ∫_{λ_s}^{λ_t} e^{λ} x̂_0(λ) dλ,   x̂_0 = (x − σ ε̂)/α.

Expanding the model value ``m`` (ε̂ or x̂_0) in λ around λ_s gives, in one form for both,

    x_t = A·x_s − C·[φ₁(η)·m + φ₂(η)·D₁ + φ₃(η)·D₂],   D₁ ≈ h·m′,  D₂ ≈ h²·m″,

with ``(A, C, η) = (α_t/α_s, σ_t, h)`` for noise prediction and ``(σ_t/σ_s, α_t, −h)`` for data
prediction, and ``φ₁(η) = e^η − 1``, ``φ₂ = φ₁/η − 1``, ``φ₃ = φ₂/η − ½``. Solvers differ in how they
estimate D₁, D₂:

* **singlestep** order k: k − 1 extra model calls inside the step, at ``λ_s + r_i·h``
  (DPM-Solver Alg. 1–2; the "DPM-Solver" update of its reference code, not the "taylor" one);
* **multistep** order k: finite differences of the k − 1 previous steps' model values
  (DPM-Solver++ Alg. 2 and its third-order extension).

**A sample is three choices** (k-diffusion's shape: the grid is built before the loop, the loop only
walks it): the *step allocation* — the order of every step (:func:`step_orders`); the *grid* — the
times of every model call (:func:`get_time_steps`, :func:`singlestep_grid`); and the *loop*
(:func:`sample_singlestep`, :func:`sample_multistep`). :func:`sample_dpm_solver` makes all three.

**Step allocations** (``allocation``, :data:`ALLOCATIONS`), for a budget of ``steps`` model evaluations (NFE):

* ``"fast"`` — the default, "DPM-Solver-fast" of the DPM-Solver paper. Singlestep, order 3:
  ``K = steps//3 + 1`` steps of orders ``[3]*(K−2) + [2, 1]`` (steps % 3 == 0), ``[3]*(K−1) + [1]``
  (== 1) or ``[3]*(K−1) + [2]`` (== 2); order 2: ``[2]*(steps/2)`` or ``[2]*(steps//2) + [1]``; order 1:
  ``steps`` DDIM steps — exactly ``steps`` NFE (:func:`singlestep_orders`). Multistep: a warm-up of
  orders 1, …, order − 1, then ``order``, lowered again over the last steps when there are fewer than
  10 (the reference code's ``lower_order_final``).
* ``"full"`` — every step at ``order``. Singlestep: ``steps // order`` steps, so
  ``order·⌊steps/order⌋`` NFE (the reference code's ``method='singlestep_fixed'``; U-ViT's and DiMR's
  ``method='singlestep'``). Multistep: full order from the end of the warm-up to the last step. The
  warm-up cannot run at full order without extra model calls; it leaves multistep order 3 an
  ``O(NFE⁻²)`` term with a small coefficient (the solver chapter measures it).

**Singlestep grids** (:func:`singlestep_grid`): a flat grid of NFE + 1 times that the steps walk in
order, step k spanning as many intervals as its order, its inner points being the grid points inside
it. For ``"fast"`` on a ``time_uniform`` (or quadratic) grid that is one grid of ``steps + 1`` points,
as in the official DiMR sampler (``DPM_Solver(predict_x0=True).sample(steps, eps=1/1000, T=1)`` = data
prediction, order 3, "fast", time-uniform: 250 NFE → 83 third-order steps + 1 first-order step;
50 NFE → 16×3 + 1×2). Otherwise (``"fast"`` on ``logSNR``, as in the DPM-Solver paper; every
``"full"`` grid, as in U-ViT's and DiMR's ``dpm_solver.py``) the K + 1 step ends follow ``skip`` and
each step is split evenly in λ (r = 1/3, 2/3 or 1/2). (U-ViT's and DiMR's ``method='fast'`` on a logSNR
grid differs: one λ-uniform grid of ``steps + 1`` points, as for time-uniform; and the reference code's
``'singlestep_fixed'`` splits a time-uniform step evenly in t; neither is offered here.)

**A correction to the reference multistep order 3.** Its second difference ``D₂ = (D₁,₀ − D₁,₁)/(r₀ + r₁)``
estimates ``h²m″/2``, yet is weighted like the singlestep ``D₂ ≈ h²m″`` (the same factor appears in
diffusers). That halves the ``h³`` term, leaving a local O(h³) error: the method is then second order
(our order test sees slope ≈ 2). ``multistep_third="taylor"`` (default) doubles it and is third order;
``"reference"`` reproduces the reference/diffusers update exactly.

Sources (facts only): DPM-Solver's reference ``dpm_solver_pytorch.py`` (LuChengTHU/dpm-solver:
``get_orders_and_timesteps_for_singlestep_solver``, ``sample`` with ``'singlestep_fixed'`` and
``lower_order_final``); U-ViT's ``dpm_solver_pp.py`` and DiMR's copy ``dpm_solver.py`` (``sample`` with
``method='fast'`` and ``'singlestep'``).
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Sequence

import torch

from .schedules import Schedule

__all__ = [
    "EpsFn",
    "SKIP_TYPES",
    "ALLOCATIONS",
    "get_time_steps",
    "singlestep_grid",
    "get_singlestep_time_steps",
    "singlestep_orders",
    "multistep_orders",
    "step_orders",
    "first_order_update",
    "singlestep_update",
    "multistep_update",
    "sample_singlestep",
    "sample_multistep",
    "sample_dpm_solver",
    "diffusers_scheduler",
    "sample_diffusers",
    "trained_betas",
]

EpsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
SKIP_TYPES = ("time_uniform", "logSNR", "time_quadratic")
#: step allocations: ``"fast"`` (DPM-Solver-fast, the default) and ``"full"`` (every step at the full order)
ALLOCATIONS = ("fast", "full")
_PREDICTS = ("noise", "data")
_METHODS = ("singlestep", "multistep")


# ---------------------------------------------------------------------------------------------
# Time grids
# ---------------------------------------------------------------------------------------------
def _half_log_snr(schedule: Schedule, t: torch.Tensor) -> torch.Tensor:
    """DPM-Solver's λ_t = log(α_t/σ_t) = ½·log-SNR."""
    return 0.5 * schedule.log_snr(t)


def get_time_steps(schedule: Schedule, steps: int, skip: str = "time_uniform", t_start: float | None = None,
                   t_end: float | None = None) -> torch.Tensor:
    """``steps + 1`` times from ``t_start`` (default ``schedule.T``) down to ``t_end`` (default
    ``schedule.eps``), float64 ``[steps + 1]``.

    ``"time_uniform"``: uniform in t; ``"logSNR"``: uniform in λ (mapped back with
    ``schedule.inverse_log_snr``); ``"time_quadratic"``: uniform in √t."""
    t_start = schedule.T if t_start is None else float(t_start)
    t_end = schedule.eps if t_end is None else float(t_end)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if not 0.0 < t_end < t_start:
        raise ValueError(f"need 0 < t_end < t_start, got t_start={t_start}, t_end={t_end}")
    if skip == "time_uniform":
        return torch.linspace(t_start, t_end, steps + 1, dtype=torch.float64)
    if skip == "time_quadratic":
        return torch.linspace(t_start ** 0.5, t_end ** 0.5, steps + 1, dtype=torch.float64) ** 2
    if skip == "logSNR":
        ends = torch.tensor([t_start, t_end], dtype=torch.float64)
        lam = _half_log_snr(schedule, ends)
        lams = torch.linspace(float(lam[0]), float(lam[1]), steps + 1, dtype=torch.float64)
        ts = schedule.inverse_log_snr(2.0 * lams)
        ts[0], ts[-1] = t_start, t_end  # exact end points
        return ts
    raise ValueError(f"skip must be one of {SKIP_TYPES}, got {skip!r}")


def singlestep_grid(schedule: Schedule, orders: Sequence[int], skip: str = "time_uniform", allocation: str = "fast",
                    t_start: float | None = None, t_end: float | None = None) -> torch.Tensor:
    """The times of every model call of a singlestep solve, and its end: float64 ``[sum(orders) + 1]``.

    Step k starts at index ``o₁ + … + o_{k−1}`` and spans ``o_k`` intervals; the points inside a step are
    its inner points (``s₁, s₂`` of DPM-Solver Alg. 1–2). ``"fast"`` on ``time_uniform`` or
    ``time_quadratic``: one grid of ``skip`` (the official DiMR sampler). Otherwise the ``len(orders) + 1``
    step ends follow ``skip`` and each step is split evenly in λ — the DPM-Solver paper's logSNR setting,
    and U-ViT's and DiMR's ``method='singlestep'`` (inner ``r = 1/3, 2/3`` or ``1/2``)."""
    if allocation not in ALLOCATIONS:
        raise ValueError(f"allocation must be one of {ALLOCATIONS}, got {allocation!r}")
    if allocation == "fast" and skip != "logSNR":
        return get_time_steps(schedule, sum(orders), skip, t_start, t_end)
    ends = get_time_steps(schedule, len(orders), skip, t_start, t_end)
    # each sub-grid ends exactly on the next step end (get_time_steps pins its end points)
    steps = [get_time_steps(schedule, o, "logSNR", float(ends[k]), float(ends[k + 1]))[1:]
             for k, o in enumerate(orders)]
    return torch.cat([ends[:1]] + steps)


def get_singlestep_time_steps(schedule: Schedule, steps: int, order: int, skip: str = "time_uniform",
                              t_start: float | None = None, t_end: float | None = None,
                              allocation: str = "fast") -> tuple[torch.Tensor, list[int]]:
    """Step ends (float64 ``[K + 1]``) and the K per-step orders of the singlestep solver: the points of
    :func:`singlestep_grid` at the cumulative orders ``0, o₁, o₁ + o₂, …``."""
    orders = singlestep_orders(steps, order, allocation)
    grid = singlestep_grid(schedule, orders, skip, allocation, t_start, t_end)
    return grid[torch.cumsum(torch.tensor([0] + orders), 0)], orders


# ---------------------------------------------------------------------------------------------
# Step allocation
# ---------------------------------------------------------------------------------------------
def singlestep_orders(steps: int, order: int, allocation: str = "fast") -> list[int]:
    """The order of each singlestep solver step for a budget of ``steps`` NFE (module docstring).

    >>> singlestep_orders(250, 3) == [3] * 83 + [1]
    True
    >>> singlestep_orders(50, 3) == [3] * 16 + [2]
    True
    >>> singlestep_orders(50, 3, "full") == [3] * 16      # 48 NFE
    True
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if order not in (1, 2, 3):
        raise ValueError(f"order must be 1, 2 or 3, got {order}")
    if allocation == "full":
        if steps < order:
            raise ValueError(f"a full-order singlestep solve of order {order} needs at least {order} steps")
        return [order] * (steps // order)
    if allocation != "fast":
        raise ValueError(f"allocation must be one of {ALLOCATIONS}, got {allocation!r}")
    if order == 3:
        K = steps // 3 + 1
        if steps % 3 == 0:
            return [3] * (K - 2) + [2, 1]
        if steps % 3 == 1:
            return [3] * (K - 1) + [1]
        return [3] * (K - 1) + [2]
    return [2] * (steps // 2) + [1] * (steps % 2) if order == 2 else [1] * steps


def multistep_orders(steps: int, order: int, allocation: str = "fast") -> list[int]:
    """The order of each of the ``steps`` multistep solver steps (one model call each).

    Step n (from 1) can use at most n model values, so the first ``order − 1`` steps warm up at orders
    1, 2, …; ``"fast"`` also lowers the last steps' orders to 2, 1 when ``steps < 10`` (the reference
    code's ``lower_order_final``, which it finds steadies very short solves).

    >>> multistep_orders(5, 3), multistep_orders(5, 3, "full"), multistep_orders(10, 3)
    ([1, 2, 3, 2, 1], [1, 2, 3, 3, 3], [1, 2, 3, 3, 3, 3, 3, 3, 3, 3])
    """
    if order not in (1, 2, 3):
        raise ValueError(f"order must be 1, 2 or 3, got {order}")
    if allocation not in ALLOCATIONS:
        raise ValueError(f"allocation must be one of {ALLOCATIONS}, got {allocation!r}")
    if steps < order:
        raise ValueError(f"multistep order {order} needs at least {order} steps, got {steps}")
    orders = [min(order, n) for n in range(1, steps + 1)]
    if allocation == "fast" and steps < 10:
        orders = [min(o, steps + 1 - n) for n, o in enumerate(orders, start=1)]
    return orders


def step_orders(steps: int, order: int, method: str = "singlestep", allocation: str = "fast") -> list[int]:
    """The per-step orders of ``method`` (``"singlestep"`` or ``"multistep"``) under ``allocation``
    (:func:`singlestep_orders`, :func:`multistep_orders`); their sum (singlestep) or count (multistep)
    is the NFE."""
    if method == "singlestep":
        return singlestep_orders(steps, order, allocation)
    if method == "multistep":
        return multistep_orders(steps, order, allocation)
    raise ValueError(f"method must be 'singlestep' or 'multistep', got {method!r}")


# ---------------------------------------------------------------------------------------------
# Solver steps
# ---------------------------------------------------------------------------------------------
def _phis(eta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """φ₁(η) = e^η − 1, φ₂ = φ₁/η − 1, φ₃ = φ₂/η − ½ (float64 scalars: no cancellation trouble for
    the step sizes used in sampling)."""
    phi1 = torch.expm1(eta)
    phi2 = phi1 / eta - 1.0
    phi3 = phi2 / eta - 0.5
    return phi1, phi2, phi3


class _Coeffs:
    """Scalar (float64) schedule quantities of a step s → t and the (A, C, η) of the module docstring."""

    def __init__(self, schedule: Schedule, s: torch.Tensor, t: torch.Tensor, predict: str):
        self.log_alpha_s, self.log_alpha_t = schedule.log_alpha(s), schedule.log_alpha(t)
        self.sigma_s, self.sigma_t = schedule.sigma(s), schedule.sigma(t)
        self.alpha_t = torch.exp(self.log_alpha_t)
        self.h = _half_log_snr(schedule, t) - _half_log_snr(schedule, s)
        if predict == "noise":
            self.A = torch.exp(self.log_alpha_t - self.log_alpha_s)
            self.C = self.sigma_t
            self.eta = self.h
        else:
            self.A = self.sigma_t / self.sigma_s
            self.C = self.alpha_t
            self.eta = -self.h


def _model_value(eps_fn: EpsFn, schedule: Schedule, x: torch.Tensor, t: torch.Tensor,
                 predict: str) -> torch.Tensor:
    """m(x, t): the noise prediction ε̂, or the data prediction x̂₀ = (x − σ_t ε̂)/α_t."""
    # times travel in at least float32, also for half-precision x (t·1000 must not be rounded)
    t_vec = t.to(device=x.device, dtype=torch.promote_types(x.dtype, torch.float32)).expand(x.shape[0])
    eps = eps_fn(x, t_vec)
    if predict == "noise":
        return eps
    alpha, sigma = schedule.alpha(t).to(x.dtype), schedule.sigma(t).to(x.dtype)
    return (x - sigma * eps) / alpha


def _combine(c: _Coeffs, x: torch.Tensor, m: torch.Tensor, D1=None, D2=None) -> torch.Tensor:
    """x_t = A·x − C·[φ₁ m + φ₂ D₁ + φ₃ D₂] (terms that are None are left out)."""
    phi1, phi2, phi3 = _phis(c.eta)
    acc = float(phi1) * m
    if D1 is not None:
        acc = acc + float(phi2) * D1
    if D2 is not None:
        acc = acc + float(phi3) * D2
    return float(c.A) * x - float(c.C) * acc


def first_order_update(eps_fn: EpsFn, schedule: Schedule, x: torch.Tensor, s: torch.Tensor, t: torch.Tensor,
                       predict: str = "data", m_s: torch.Tensor | None = None) -> torch.Tensor:
    """DPM-Solver-1 (= DDIM) from s to t: ``x_t = A·x_s − C·φ₁(η)·m_s``. ``x: [B, ...]``; s, t 0-d."""
    if m_s is None:
        m_s = _model_value(eps_fn, schedule, x, s, predict)
    return _combine(_Coeffs(schedule, s, t, predict), x, m_s)


def singlestep_update(eps_fn: EpsFn, schedule: Schedule, x: torch.Tensor, s: torch.Tensor, t: torch.Tensor,
                      order: int, inner: Sequence[torch.Tensor] = (), predict: str = "data",
                      m_s: torch.Tensor | None = None) -> torch.Tensor:
    """One singlestep DPM-Solver step of ``order`` from s to t (``order`` model calls).

    ``inner``: the ``order − 1`` intermediate times s₁ (, s₂) strictly between s and t; their
    ``r_i = (λ_{s_i} − λ_s)/h`` enter the update (order 2: DPM-Solver-2 with r₁; order 3: DPM-Solver-3,
    third order when r₂ → 2/3). Returns ``x_t: [B, ...]``."""
    if order == 1:
        return first_order_update(eps_fn, schedule, x, s, t, predict, m_s)
    if len(inner) != order - 1:
        raise ValueError(f"a singlestep order-{order} update needs {order - 1} inner times, got {len(inner)}")
    c = _Coeffs(schedule, s, t, predict)
    if m_s is None:
        m_s = _model_value(eps_fn, schedule, x, s, predict)
    lam_s = _half_log_snr(schedule, s)
    s1 = inner[0]
    r1 = float((_half_log_snr(schedule, s1) - lam_s) / c.h)
    x_s1 = _combine(_Coeffs(schedule, s, s1, predict), x, m_s)
    m_s1 = _model_value(eps_fn, schedule, x_s1, s1, predict)
    if order == 2:
        # DPM-Solver-2: D₁ estimated by (m_{s1} − m_s)/r₁ and weighted by φ₁/2 (the "dpmsolver" form)
        return _combine(c, x, m_s + (0.5 / r1) * (m_s1 - m_s))
    if order != 3:
        raise ValueError(f"order must be 1, 2 or 3, got {order}")
    s2 = inner[1]
    r2 = float((_half_log_snr(schedule, s2) - lam_s) / c.h)
    # second-order (Taylor) prediction at s₂, using D₁ ≈ (r₂/r₁)(m_{s1} − m_s) over the sub-step
    x_s2 = _combine(_Coeffs(schedule, s, s2, predict), x, m_s, D1=(r2 / r1) * (m_s1 - m_s))
    m_s2 = _model_value(eps_fn, schedule, x_s2, s2, predict)
    return _combine(c, x, m_s, D1=(1.0 / r2) * (m_s2 - m_s))


def multistep_update(schedule: Schedule, x: torch.Tensor, m_prev: Sequence[torch.Tensor],
                     t_prev: Sequence[torch.Tensor], t: torch.Tensor, order: int, predict: str = "data",
                     third: str = "taylor") -> torch.Tensor:
    """One multistep step of ``order`` from ``t_prev[-1]`` to t (no model call).

    ``m_prev``/``t_prev``: the last ``order`` model values and their times, oldest first.
    ``third``: ``"taylor"`` (correct D₂ weight, third order) or ``"reference"`` (the reference code's
    and diffusers' weight; see the module docstring)."""
    if len(m_prev) < order or len(t_prev) < order:
        raise ValueError(f"a multistep order-{order} update needs {order} previous values")
    c = _Coeffs(schedule, t_prev[-1], t, predict)
    m0 = m_prev[-1]
    if order == 1:
        return _combine(c, x, m0)
    lam = [_half_log_snr(schedule, tp) for tp in t_prev[-order:]]
    m1 = m_prev[-2]
    r0 = float((lam[-1] - lam[-2]) / c.h)
    D1_0 = (m0 - m1) / r0  # ≈ h·m′ at λ_{prev0} − h₀/2
    if order == 2:
        return _combine(c, x, m0 + 0.5 * D1_0)
    if order != 3:
        raise ValueError(f"order must be 1, 2 or 3, got {order}")
    m2 = m_prev[-3]
    r1 = float((lam[-2] - lam[-3]) / c.h)
    D1_1 = (m1 - m2) / r1
    D1 = D1_0 + (r0 / (r0 + r1)) * (D1_0 - D1_1)  # ≈ h·m′ (second-order accurate)
    D2_half = (D1_0 - D1_1) / (r0 + r1)  # ≈ h²·m″/2
    if third == "taylor":
        D2 = 2.0 * D2_half
    elif third == "reference":
        D2 = D2_half
    else:
        raise ValueError(f"third must be 'taylor' or 'reference', got {third!r}")
    return _combine(c, x, m0, D1=D1, D2=D2)


# ---------------------------------------------------------------------------------------------
# Sampling loops: walk a grid built beforehand
# ---------------------------------------------------------------------------------------------
Callback = Callable[[int], None]


def sample_singlestep(eps_fn: EpsFn, x: torch.Tensor, schedule: Schedule, grid: torch.Tensor,
                      orders: Sequence[int], predict: str = "data", callback: Callback | None = None) -> torch.Tensor:
    """Singlestep DPM-Solver along ``grid`` (float64 ``[sum(orders) + 1]``, :func:`singlestep_grid`).

    Step k goes from ``grid[i]`` to ``grid[i + o_k]`` (``i = o₁ + … + o_{k−1}``) with the grid points
    between as its inner points, ``o_k`` model calls (DPM-Solver Alg. 1–2). ``x: [B, ...]`` at ``grid[0]``;
    returns ``[B, ...]`` at ``grid[-1]``. ``callback(o_k)`` after each step."""
    i = 0
    for o in orders:
        x = singlestep_update(eps_fn, schedule, x, grid[i], grid[i + o], o, list(grid[i + 1:i + o]), predict)
        i += o
        if callback is not None:
            callback(o)
    return x


def sample_multistep(eps_fn: EpsFn, x: torch.Tensor, schedule: Schedule, grid: torch.Tensor,
                     orders: Sequence[int], predict: str = "data", third: str = "taylor",
                     callback: Callback | None = None) -> torch.Tensor:
    """Multistep DPM-Solver(++) along ``grid`` (float64 ``[len(orders) + 1]``), one model call per step
    (DPM-Solver++ Alg. 2; ``third`` as in :func:`multistep_update`).

    ``x: [B, ...]`` at ``grid[0]``; returns ``[B, ...]`` at ``grid[-1]``. ``callback(1)`` after each step."""
    keep = max(orders)  # model values a step may need
    m_prev, t_prev = [_model_value(eps_fn, schedule, x, grid[0], predict)], [grid[0]]
    for n, o in enumerate(orders, start=1):
        x = multistep_update(schedule, x, m_prev, t_prev, grid[n], o, predict, third)
        if n < len(orders):  # the last model value is never needed
            m_prev = (m_prev + [_model_value(eps_fn, schedule, x, grid[n], predict)])[-keep:]
            t_prev = (t_prev + [grid[n]])[-keep:]
        if callback is not None:
            callback(1)
    return x


# ---------------------------------------------------------------------------------------------
# The sampler
# ---------------------------------------------------------------------------------------------
def _check_grid(timesteps, nfe: int) -> torch.Tensor:
    """An explicit grid, float64 on the CPU, checked: ``nfe + 1`` points, strictly decreasing, positive."""
    grid = torch.as_tensor(timesteps, dtype=torch.float64).flatten().cpu()
    if grid.numel() != nfe + 1:
        raise ValueError(f"timesteps has {grid.numel()} points for {nfe} model calls (need steps + 1 = {nfe + 1})")
    if not bool((grid[1:] < grid[:-1]).all()) or float(grid[-1]) <= 0.0:
        raise ValueError("timesteps must be strictly decreasing and positive")
    return grid


@contextlib.contextmanager
def _progress_bar(show: bool, total: int, desc: str) -> Iterator[Callback | None]:
    """A tqdm bar over ``total`` model calls, as a callback (``None`` when not shown)."""
    if not show:
        yield None
        return
    from tqdm.auto import tqdm
    with tqdm(total=total, desc=desc, leave=False) as bar:
        yield bar.update


@torch.no_grad()
def sample_dpm_solver(eps_fn: EpsFn, x_T: torch.Tensor, schedule: Schedule, steps: int, order: int = 3,
                      method: str = "singlestep", predict: str = "data", skip: str = "time_uniform",
                      t_start: float | None = None, t_end: float | None = None,
                      timesteps: torch.Tensor | None = None, lower_order_final: bool = True,
                      multistep_third: str = "taylor", denoise_to_zero: bool = False,
                      progress: bool = False, allocation: str = "fast") -> torch.Tensor:
    """Solve the probability-flow ODE from ``x_T`` at ``t_start`` to ``t_end`` with ``steps`` NFE.

    Args:
        eps_fn: ``(x: [B, ...], t: [B]) -> ε̂: [B, ...]``, continuous t.
        x_T: ``[B, ...]`` the starting point (standard normal at ``t_start = T``).
        schedule: a :mod:`~dimr.diffusion.schedules` schedule.
        steps: number of model evaluations (NFE), ``+1`` with ``denoise_to_zero`` (``"full"`` singlestep:
            ``order·⌊steps/order⌋``).
        order: 1, 2 or 3.
        method: ``"singlestep"`` or ``"multistep"``.
        predict: ``"noise"`` (DPM-Solver) or ``"data"`` (DPM-Solver++; the official DiMR sampler).
        skip: ``"time_uniform"`` (official), ``"logSNR"`` or ``"time_quadratic"``.
        t_start, t_end: default ``schedule.T`` and ``schedule.eps``.
        timesteps: optional explicit decreasing grid ``[NFE + 1]`` overriding ``skip``/``t_*`` (each
            singlestep step takes its inner points from it; e.g. diffusers' integer timesteps).
        lower_order_final: ``False`` makes a multistep solve ``"full"`` (kept for its callers).
        multistep_third: ``"taylor"`` or ``"reference"`` (module docstring).
        denoise_to_zero: finish with x̂₀ at ``t_end`` (one extra NFE).
        progress: show a tqdm bar over the model calls.
        allocation: ``"fast"`` (DPM-Solver-fast; the official sampler) or ``"full"`` (every step at
            ``order``), :func:`step_orders`.

    Returns ``x_{t_end}: [B, ...]`` (``x̂₀`` with ``denoise_to_zero``). Runs under ``torch.no_grad``.
    The defaults are the official DiMR sampler (docs/official-code.md §6).
    """
    if predict not in _PREDICTS:
        raise ValueError(f"predict must be one of {_PREDICTS}, got {predict!r}")
    if method == "multistep" and not lower_order_final:
        allocation = "full"
    orders = step_orders(steps, order, method, allocation)
    nfe = sum(orders) if method == "singlestep" else len(orders)
    if timesteps is not None:
        grid = _check_grid(timesteps, nfe)
    elif method == "singlestep":
        grid = singlestep_grid(schedule, orders, skip, allocation, t_start, t_end)
    else:
        grid = get_time_steps(schedule, nfe, skip, t_start, t_end)
    with _progress_bar(progress, nfe, f"DPM-Solver-{order} ({method}, {allocation}, {predict})") as tick:
        if method == "singlestep":
            x = sample_singlestep(eps_fn, x_T, schedule, grid, orders, predict, tick)
        else:
            x = sample_multistep(eps_fn, x_T, schedule, grid, orders, predict, multistep_third, tick)
    if denoise_to_zero:
        x = _model_value(eps_fn, schedule, x, grid[-1], "data")
    return x


# ---------------------------------------------------------------------------------------------
# The diffusers route
# ---------------------------------------------------------------------------------------------
def trained_betas(schedule: Schedule, num_steps: int = 1000) -> torch.Tensor:
    """Discrete betas whose ``ᾱ_n`` equal the schedule's ``α(n/N)²`` at ``n = 1..N`` (float64 ``[N]``):
    the SD betas for ``sd_scaled_linear``, a 1000-step discretisation of ``vp_linear``."""
    t = torch.arange(0, num_steps + 1, dtype=torch.float64) / num_steps
    log_abar = 2.0 * schedule.log_alpha(t)
    if getattr(schedule, "name", "") == "sd_scaled_linear":
        log_abar[0] = 0.0  # ᾱ_0 = 1 (the interpolant's extension is not part of the schedule)
    return -torch.expm1(log_abar[1:] - log_abar[:-1])


def diffusers_scheduler(schedule: Schedule, order: int = 2, method: str = "multistep", predict: str = "data",
                        num_train_steps: int = 1000, **overrides):
    """A diffusers DPM-Solver scheduler for ``schedule`` (diffusers imported lazily).

    ``DPMSolverMultistepScheduler`` / ``DPMSolverSinglestepScheduler`` with ``trained_betas`` from
    :func:`trained_betas`, ε-prediction, ``algorithm_type`` ``"dpmsolver++"`` (data) or ``"dpmsolver"``
    (noise), ``solver_type="midpoint"``, ``final_sigmas_type="sigma_min"`` (end at t = 1/N like
    ours), ``lower_order_final=False``; ``overrides`` go to the constructor.

    When it is **equivalent** to :func:`sample_dpm_solver` (checked in ``tests/test_dpm_solver.py``):
    multistep, order 1 or 2 (order 3 with ``multistep_third="reference"``), on the same grid — pass
    ``timesteps=diffusers_time_grid`` (:func:`sample_diffusers` does this and returns it).

    When it is **not**:

    * diffusers is discrete-only: timesteps are integers k = 0..N−1 (our t = (k+1)/N), its default
      ``timestep_spacing="linspace"`` rounds ``linspace(0, N−1, steps+1)``, so its grid equals our
      time-uniform grid only when ``(N−1)/steps`` is an integer (e.g. 27 or 37 steps for N = 1000);
      a continuous schedule is only seen at its 1000 knots;
    * its multistep order 3 uses the reference D₂ weight (second order, see the module docstring);
    * its singlestep solver interleaves orders as ``[1, 2, 3]`` on the grid and builds the
      intermediate point of an order-3 step with the midpoint (or, with ``solver_type="heun"``, the
      final update with a Taylor) form, so it differs from DPM-Solver-3 (and the official sampler)
      at O(h³) per step; singlestep order 2 matches;
    * sigmas are stored as float32, so agreement is to ~1e-6 relative at best;
    * ``solver_order=3`` with ``use_lu_lambdas=True`` and ``final_sigmas_type="sigma_min"`` produced
      NaN when it was tried; avoid that combination.
    """
    import diffusers  # lazy: optional dependency (extra "latents")

    if predict not in _PREDICTS:
        raise ValueError(f"predict must be one of {_PREDICTS}, got {predict!r}")
    cls = {"multistep": diffusers.DPMSolverMultistepScheduler,
           "singlestep": diffusers.DPMSolverSinglestepScheduler}.get(method)
    if cls is None:
        raise ValueError(f"method must be 'multistep' or 'singlestep', got {method!r}")
    kwargs = dict(num_train_timesteps=num_train_steps,
                  trained_betas=trained_betas(schedule, num_train_steps).tolist(),
                  solver_order=order, prediction_type="epsilon",
                  algorithm_type="dpmsolver++" if predict == "data" else "dpmsolver",
                  solver_type="midpoint", lower_order_final=False, final_sigmas_type="sigma_min")
    kwargs.update(overrides)
    return cls(**kwargs)


@torch.no_grad()
def sample_diffusers(eps_fn: EpsFn, x_T: torch.Tensor, scheduler, steps: int,
                     num_train_steps: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """Run a diffusers DPM-Solver ``scheduler`` with our continuous-time ``eps_fn``.

    diffusers' integer timestep k is our ``t = (k + 1)/N``. Returns ``(x_end, grid)`` where ``grid``
    (float64 ``[steps + 1]``) is the continuous-time grid diffusers used, ending at its last sigma
    (``t = 1/N`` with ``final_sigmas_type="sigma_min"``) — pass it as ``timesteps`` to
    :func:`sample_dpm_solver` to compare on equal footing."""
    scheduler.set_timesteps(steps)
    x = x_T
    for k in scheduler.timesteps:
        t = torch.full((x.shape[0],), (float(k) + 1.0) / num_train_steps, device=x.device,
                       dtype=torch.promote_types(x.dtype, torch.float32))
        x = scheduler.step(eps_fn(x, t), k, x).prev_sample
    if scheduler.config.final_sigmas_type != "sigma_min":
        raise ValueError("sample_diffusers reports the grid only for final_sigmas_type='sigma_min' "
                         "(a final sigma of 0 is t = 0, outside the continuous schedule)")
    ks = scheduler.timesteps.to(torch.float64)
    grid = torch.cat([(ks + 1.0) / num_train_steps, torch.tensor([1.0 / num_train_steps], dtype=torch.float64)])
    return x, grid

