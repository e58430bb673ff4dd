"""DPM-Solver checked where the answer is known in closed form.

Gaussian data x₀ ~ N(μ, s²I) makes everything analytic: x_t ~ N(α_t μ, (α_t² s² + σ_t²) I), the exact
noise predictor is ε*(x, t) = σ_t (x − α_t μ)/(α_t² s² + σ_t²), and the probability-flow ODE maps
x_1 to x_end = α_end μ + sqrt(α_end² s² + σ_end²)/sqrt(α_1² s² + σ_1²) · (x_1 − α_1 μ).
"""
import math

import numpy as np
import pytest
import torch

from dimr.diffusion import analytic
from dimr.diffusion import (
    SDScaledLinearSchedule,
    VPLinearSchedule,
    diffusers_scheduler,
    get_singlestep_time_steps,
    get_time_steps,
    sample_diffusers,
    sample_dpm_solver,
    singlestep_orders,
    trained_betas,
)

F64 = torch.float64
MU, S = 0.7, 0.5


def gaussian_eps_fn(sch, calls=None):
    exact = analytic.gaussian_eps_fn(sch, MU, S)

    def eps_fn(x, t):
        if calls is not None:
            calls.append(t.clone())
        return exact(x, t)
    return eps_fn


def exact_flow(sch, x1, t_end, t_start=1.0):
    return analytic.gaussian_flow_solution(sch, x1, t_end, MU, S, t_start)


def x_start(shape=(4, 2, 3, 3), seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


# ---------------------------------------------------------------------------------------------
# step allocation and grids
# ---------------------------------------------------------------------------------------------
def test_fast_allocation_matches_the_official_examples():
    assert singlestep_orders(250, 3) == [3] * 83 + [1]  # 250 NFE → 83 third-order + 1 first-order
    assert singlestep_orders(50, 3) == [3] * 16 + [2]  # 50 NFE → 16×3 + 1×2
    assert singlestep_orders(51, 3) == [3] * 16 + [2, 1]
    assert singlestep_orders(7, 2) == [2, 2, 2, 1] and singlestep_orders(8, 2) == [2] * 4
    assert singlestep_orders(5, 1) == [1] * 5
    for steps in range(1, 40):
        for order in (1, 2, 3):
            assert sum(singlestep_orders(steps, order)) == steps
    with pytest.raises(ValueError):
        singlestep_orders(10, 4)


def test_singlestep_time_steps_are_points_of_one_grid():
    sch = SDScaledLinearSchedule()
    outer, orders = get_singlestep_time_steps(sch, 250, 3, "time_uniform")
    grid = get_time_steps(sch, 250)
    assert len(outer) == 85 and len(orders) == 84
    assert float(outer[0]) == 1.0 and float(outer[-1]) == pytest.approx(1e-3)
    assert torch.equal(outer, grid[np.cumsum([0] + orders)])
    # logSNR: a λ-uniform grid of K + 1 step ends
    outer, orders = get_singlestep_time_steps(sch, 50, 3, "logSNR")
    lam = sch.log_snr(outer) / 2
    torch.testing.assert_close(lam[1:] - lam[:-1], torch.full((17,), float(lam[1] - lam[0]), dtype=F64))


def test_official_sampler_evaluates_on_the_time_uniform_grid():
    """DiMR: data prediction, order 3, "fast", time-uniform, steps + 1 points from 1 to 1e-3:
    exactly `steps` model calls, all at grid points (the intermediate points are grid points)."""
    sch = SDScaledLinearSchedule()
    for steps in (50, 250):
        calls = []
        sample_dpm_solver(gaussian_eps_fn(sch, calls), x_start((2, 3)), sch, steps)
        assert len(calls) == steps
        called = torch.stack([c[0] for c in calls])
        torch.testing.assert_close(called, get_time_steps(sch, steps)[:-1], rtol=0, atol=1e-12)


def test_time_grids():
    sch = VPLinearSchedule()
    tu = get_time_steps(sch, 10, "time_uniform", 1.0, 1e-3)
    torch.testing.assert_close(tu, torch.linspace(1.0, 1e-3, 11, dtype=F64))
    tq = get_time_steps(sch, 10, "time_quadratic", 1.0, 1e-3)
    torch.testing.assert_close(tq.sqrt()[1:] - tq.sqrt()[:-1], torch.full((10,), float(tq.sqrt()[1] - 1.0), dtype=F64))
    tl = get_time_steps(sch, 10, "logSNR", 1.0, 1e-3)
    lam = sch.log_snr(tl) / 2
    torch.testing.assert_close(lam[1:] - lam[:-1], torch.full((10,), float(lam[1] - lam[0]), dtype=F64))
    assert float(tl[0]) == 1.0 and float(tl[-1]) == 1e-3
    assert float(get_time_steps(sch, 4)[-1]) == sch.eps  # default end time is the schedule's
    with pytest.raises(ValueError, match="skip"):
        get_time_steps(sch, 10, "karras")
    with pytest.raises(ValueError, match="t_end"):
        get_time_steps(sch, 10, "time_uniform", 0.5, 0.7)


# ---------------------------------------------------------------------------------------------
# convergence order against the exact solution
# ---------------------------------------------------------------------------------------------
# 80, 161, 320, 641 ≡ 2 (mod 3): the "fast" singlestep-3 allocation ends with a second-order step
# (with ≡ 0 or 1 it ends with a first-order step, which makes the whole solve second order).
STEPS = [80, 161, 320, 641]


def convergence_slope(method, predict, order, third="taylor"):
    sch = VPLinearSchedule()
    x1 = x_start((8, 4))
    ref = exact_flow(sch, x1, 1e-3)
    errs = [float((sample_dpm_solver(gaussian_eps_fn(sch), x1, sch, n, order, method, predict, "logSNR",
                                     t_end=1e-3, multistep_third=third) - ref).abs().max()) for n in STEPS]
    assert errs[-1] < errs[0]
    return -np.polyfit(np.log(STEPS), np.log(errs), 1)[0]


@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("predict", ["noise", "data"])
@pytest.mark.parametrize("method", ["singlestep", "multistep"])
def test_error_falls_at_the_solver_order(method, predict, order):
    slope = convergence_slope(method, predict, order)
    assert slope > order - 0.5, f"{method} {predict} order {order}: error ∝ steps^-{slope:.2f}"


def test_reference_multistep_third_order_is_only_second_order():
    """The reference/diffusers D₂ weight halves the h³ term: the documented reason for the fix."""
    slope = convergence_slope("multistep", "data", 3, third="reference")
    assert 1.5 < slope < 2.5


def test_sd_schedule_official_sampler_converges_to_the_exact_flow():
    sch = SDScaledLinearSchedule()
    x1 = x_start()
    ref = exact_flow(sch, x1, 1e-3)
    errs = {n: float((sample_dpm_solver(gaussian_eps_fn(sch), x1, sch, n) - ref).abs().max()) for n in (20, 50, 250)}
    assert errs[250] < errs[50] < errs[20]
    assert errs[250] < 5e-3
    # denoise_to_zero returns x̂₀ at t_end (one extra NFE), here close to the Gaussian's posterior mean
    calls = []
    x0 = sample_dpm_solver(gaussian_eps_fn(sch, calls), x1, sch, 20, denoise_to_zero=True)
    assert len(calls) == 21 and bool(torch.isfinite(x0).all())


def test_bad_arguments():
    sch = VPLinearSchedule()
    f, x = gaussian_eps_fn(sch), x_start((2, 3))
    with pytest.raises(ValueError, match="predict"):
        sample_dpm_solver(f, x, sch, 10, predict="v")
    with pytest.raises(ValueError, match="method"):
        sample_dpm_solver(f, x, sch, 10, method="adaptive")
    with pytest.raises(ValueError, match="at least 3 steps"):
        sample_dpm_solver(f, x, sch, 2, order=3, method="multistep")
    with pytest.raises(ValueError, match="steps \\+ 1"):
        sample_dpm_solver(f, x, sch, 10, timesteps=torch.linspace(1, 0.01, 5))


# ---------------------------------------------------------------------------------------------
# the diffusers route
# ---------------------------------------------------------------------------------------------
# diffusers warns that algorithm_type="dpmsolver" (noise prediction) is deprecated, and about numpy 2
QUIET = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning")


def test_trained_betas_reproduce_the_schedules():
    sd = SDScaledLinearSchedule()
    torch.testing.assert_close(trained_betas(sd), sd.betas(), rtol=1e-10, atol=0)
    vp = VPLinearSchedule()
    abar = torch.cumprod(1 - trained_betas(vp), 0)
    torch.testing.assert_close(abar, vp.alpha(torch.arange(1, 1001, dtype=F64) / 1000) ** 2, rtol=1e-10, atol=0)


EQUIVALENT = [("multistep", 1, "taylor"), ("multistep", 2, "taylor"), ("multistep", 3, "reference"),
              ("singlestep", 2, "taylor")]


@QUIET
@pytest.mark.parametrize("predict", ["data", "noise"])
@pytest.mark.parametrize("method,order,third", EQUIVALENT)
def test_diffusers_route_agrees_where_equivalent(method, order, third, predict):
    pytest.importorskip("diffusers")
    sch = SDScaledLinearSchedule()
    x1, f = x_start(), gaussian_eps_fn(sch)
    steps = 20 if method == "singlestep" else 27
    x_diff, grid = sample_diffusers(f, x1, diffusers_scheduler(sch, order, method, predict), steps)
    ours = sample_dpm_solver(f, x1, sch, steps, order, method, predict, timesteps=grid, multistep_third=third,
                             lower_order_final=False)
    torch.testing.assert_close(ours, x_diff, rtol=1e-5, atol=1e-5)  # diffusers keeps sigmas in float32
    assert float((ours - x1).abs().max()) > 0.1  # the solve did something


@QUIET
def test_diffusers_grid_and_where_it_differs():
    pytest.importorskip("diffusers")
    sch = SDScaledLinearSchedule()
    x1, f = x_start(), gaussian_eps_fn(sch)
    # 999/27 is an integer: diffusers' rounded integer grid is exactly our time-uniform grid
    _, grid = sample_diffusers(f, x1, diffusers_scheduler(sch, 2), 27)
    torch.testing.assert_close(grid, get_time_steps(sch, 27), rtol=0, atol=1e-12)
    _, grid20 = sample_diffusers(f, x1, diffusers_scheduler(sch, 2), 20)
    assert float((grid20 - get_time_steps(sch, 20)).abs().max()) > 1e-4  # rounding moves the points
    # third-order multistep: diffusers uses the reference D₂ weight, our default is the corrected one
    x_diff, grid = sample_diffusers(f, x1, diffusers_scheduler(sch, 3), 27)
    ours = sample_dpm_solver(f, x1, sch, 27, 3, "multistep", timesteps=grid, lower_order_final=False)
    assert float((ours - x_diff).abs().max()) > 1e-3
    assert math.isfinite(float(x_diff.abs().max()))


def test_mixture_predictor_matches_autograd_score():
    """ε* = −σ ∇ log p_t: check the mixture formula against autograd of the mixture log-density."""
    sch = VPLinearSchedule()
    means = torch.tensor([[1.0, 0.0], [-0.5, 0.8], [0.0, -1.0]], dtype=F64)
    s, t = 0.3, torch.full((5,), 0.4, dtype=F64)
    x = torch.randn(5, 2, dtype=F64, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    a, sig = sch.alpha(t)[:, None], sch.sigma(t)[:, None]
    v = a * a * s * s + sig * sig
    logp = torch.logsumexp(-((x[:, None] - a[:, :, None] * means) ** 2).sum(-1) / (2 * v), dim=1)
    (grad,) = torch.autograd.grad(logp.sum(), x)
    torch.testing.assert_close(analytic.mixture_eps_fn(sch, means, s)(x.detach(), t), -sig * grad)
    cond = analytic.mixture_eps_fn(sch, means, s, labels=torch.tensor([0, 1, 2, 0, 1]))(x.detach(), t)
    torch.testing.assert_close(cond[2], (sig[2] * (x[2] - a[2] * means[2]) / v[2]).detach())
