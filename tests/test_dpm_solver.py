"""DPM-Solver checked where the answer is known in closed form.

Gaussian data x₀ ~ N(μ, s²I) makes everything analytic: x_t ~ N(α_t μ, (α_t² s² + σ_t²) I), the exact
noise predictor is ε*(x, t) = σ_t (x − α_t μ)/(α_t² s² + σ_t²), and the probability-flow ODE maps
x_1 to x_end = α_end μ + sqrt(α_end² s² + σ_end²)/sqrt(α_1² s² + σ_1²) · (x_1 − α_1 μ).
"""
import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from dimr.diffusion import analytic
from dimr.diffusion import (
    ALLOCATIONS,
    SKIP_TYPES,
    SDScaledLinearSchedule,
    VPLinearSchedule,
    diffusers_scheduler,
    get_singlestep_time_steps,
    get_time_steps,
    multistep_orders,
    sample_diffusers,
    sample_dpm_solver,
    singlestep_grid,
    singlestep_orders,
    step_orders,
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


def test_full_order_allocation_runs_every_step_at_the_order():
    """DPM-Solver's `singlestep_fixed`, U-ViT's and DiMR's `method='singlestep'`: steps // order steps."""
    assert singlestep_orders(50, 3, "full") == [3] * 16  # 48 NFE
    assert singlestep_orders(13, 2, "full") == [2] * 6 and singlestep_orders(5, 1, "full") == [1] * 5
    assert multistep_orders(6, 3) == [1, 2, 3, 3, 2, 1]  # "fast": lower orders at the end below 10 steps
    assert multistep_orders(6, 3, "full") == [1, 2, 3, 3, 3, 3]  # the warm-up stays
    assert multistep_orders(12, 3) == multistep_orders(12, 3, "full") == [1, 2] + [3] * 10
    assert step_orders(12, 3, "multistep", "full") == multistep_orders(12, 3, "full")
    assert step_orders(12, 3, "singlestep", "full") == singlestep_orders(12, 3, "full")
    with pytest.raises(ValueError, match="allocation"):
        singlestep_orders(12, 3, "adaptive")
    with pytest.raises(ValueError, match="at least 3"):
        singlestep_orders(2, 3, "full")


@pytest.mark.parametrize("skip", ["time_uniform", "logSNR"])
def test_full_order_solve_calls_the_model_where_the_official_singlestep_does(skip):
    """K = 13 // 3 = 4 steps between the 5 points of the `skip` grid, each called at its start and at
    r = 1/3, 2/3 of its step in λ (the inner points of U-ViT's and DiMR's `method='singlestep'`)."""
    sch = SDScaledLinearSchedule()
    calls = []
    sample_dpm_solver(gaussian_eps_fn(sch, calls), x_start((2, 3)), sch, 13, skip=skip, allocation="full")
    called = torch.stack([c[0] for c in calls]).reshape(4, 3)  # [step, (s, s₁, s₂)]
    ends = get_time_steps(sch, 4, skip)
    torch.testing.assert_close(called[:, 0], ends[:-1], rtol=0, atol=1e-12)
    lam, lam_ends = sch.log_snr(called) / 2, sch.log_snr(ends) / 2
    r = (lam - lam_ends[:-1, None]) / (lam_ends[1:] - lam_ends[:-1])[:, None]
    torch.testing.assert_close(r, torch.tensor([[0.0, 1 / 3, 2 / 3]], dtype=F64).expand(4, 3), rtol=0, atol=1e-9)


def test_singlestep_grids():
    sch = VPLinearSchedule()
    orders = singlestep_orders(20, 3)
    # "fast" on a time-uniform grid: one grid of NFE + 1 points (the official sampler)
    assert torch.equal(singlestep_grid(sch, orders, "time_uniform"), get_time_steps(sch, 20))
    # "full" on a logSNR grid: K + 1 λ-uniform step ends split in thirds is one λ-uniform grid
    torch.testing.assert_close(singlestep_grid(sch, [3] * 6, "logSNR", "full"), get_time_steps(sch, 18, "logSNR"),
                               rtol=1e-12, atol=0)
    # "full" on a time-uniform grid: time-uniform step ends, each split evenly in λ
    grid = singlestep_grid(sch, [3] * 6, "time_uniform", "full")
    assert grid.shape == (19,) and torch.equal(grid[::3], get_time_steps(sch, 6))
    lam = sch.log_snr(grid) / 2
    torch.testing.assert_close(lam[1::3] - lam[0:-1:3], (lam[3::3] - lam[0:-1:3]) / 3)


def test_full_order_is_more_accurate_than_fast_at_twelve_evaluations():
    """Order 3 at NFE 12: "fast" spends 6 of its 12 evaluations on steps of order 2 and 1 at the end,
    where λ moves fastest; "full" takes four third-order steps."""
    sch = SDScaledLinearSchedule()
    x1 = x_start()
    ref = exact_flow(sch, x1, 1e-3)
    for skip in ("time_uniform", "logSNR"):
        err = {a: float((sample_dpm_solver(gaussian_eps_fn(sch), x1, sch, 12, skip=skip, allocation=a) - ref)
                        .abs().max()) for a in ALLOCATIONS}
        assert err["full"] < err["fast"], (skip, err)


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
# NFE ≡ 2 (mod 6) doubling, where every slope below has settled (the solver chapter's local slopes): the
# "fast" singlestep-3 allocation then ends with a second-order step (with ≡ 0 or 1 it ends with a first-order
# step, which makes the whole solve second order) and singlestep-2 takes only second-order steps.
STEPS = [158, 320, 638]


def convergence_slope(method, predict, order, allocation="fast", third="taylor", steps=STEPS):
    """−d log(max error)/d log(NFE), fitted over ``steps``, on the logSNR grid of the VP schedule."""
    sch = VPLinearSchedule()
    x1 = x_start((8, 4))
    ref = exact_flow(sch, x1, 1e-3)
    nfes, errs = [], []
    for n in steps:
        orders = step_orders(n, order, method, allocation)
        nfes.append(sum(orders) if method == "singlestep" else len(orders))
        x = sample_dpm_solver(gaussian_eps_fn(sch), x1, sch, n, order, method, predict, "logSNR", t_end=1e-3,
                              multistep_third=third, allocation=allocation)
        errs.append(float((x - ref).abs().max()))
    assert errs[-1] < errs[0]
    return -np.polyfit(np.log(nfes), np.log(errs), 1)[0]


@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("predict", ["noise", "data"])
@pytest.mark.parametrize("allocation", ALLOCATIONS)
@pytest.mark.parametrize("method", ["singlestep", "multistep"])
def test_error_falls_at_the_solver_order(method, allocation, predict, order):
    slope = convergence_slope(method, predict, order, allocation)
    label = f"{method} {allocation} {predict} order {order}: error ∝ NFE^-{slope:.2f}"
    if method == "multistep" and order == 3:
        # Not within 0.5 of 3 at any NFE this test can afford: an NFE⁻⁴ term of the third-order steps leads
        # here, and beyond it the warm-up's first-order step leaves NFE⁻² (the solver chapter, "Why a
        # measured slope is not the order", computes both parts). At least third order where it is used:
        assert slope > order - 0.5, label
    else:
        assert abs(slope - order) <= 0.5, label


def test_reference_multistep_third_order_is_only_second_order():
    """The reference/diffusers D₂ weight halves the h³ term: the documented reason for the fix."""
    slope = convergence_slope("multistep", "data", 3, third="reference", steps=[80, 161, 320, 641])
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
    with pytest.raises(ValueError, match="allocation"):
        sample_dpm_solver(f, x, sch, 10, allocation="adaptive")
    with pytest.raises(ValueError, match="at least 3 steps"):
        sample_dpm_solver(f, x, sch, 2, order=3, method="multistep")
    with pytest.raises(ValueError, match="steps \\+ 1"):
        sample_dpm_solver(f, x, sch, 10, timesteps=torch.linspace(1, 0.01, 5))


# ---------------------------------------------------------------------------------------------
# the defaults are what they were before grids, allocations and loops were split (issue 30)
# ---------------------------------------------------------------------------------------------
FIXTURE = Path(__file__).parent / "data" / "dpm_solver_defaults.pt"
FIXTURE_SCHEDULES = {"vp": VPLinearSchedule(), "sd": SDScaledLinearSchedule()}


def fixture_cases():
    """Every method, order, prediction and grid at 7, 12 and 20 NFE on both schedules, and the other options."""
    grid = itertools.product(FIXTURE_SCHEDULES, ("singlestep", "multistep"), (1, 2, 3), ("noise", "data"),
                             ("time_uniform", "logSNR", "time_quadratic"), (7, 12, 20))
    cases = [dict(schedule=sc, method=m, order=o, predict=p, skip=sk, steps=n) for sc, m, o, p, sk, n in grid]
    given = torch.linspace(1.0, 0.002, 10, dtype=F64) ** 1.5
    return cases + [
        dict(schedule="sd", method="multistep", order=3, predict="data", skip="logSNR", steps=8,
             multistep_third="reference"),
        dict(schedule="vp", method="multistep", order=3, predict="data", skip="time_uniform", steps=8,
             lower_order_final=False),
        dict(schedule="sd", method="singlestep", order=3, predict="data", skip="time_uniform", steps=20,
             denoise_to_zero=True),
        dict(schedule="vp", method="singlestep", order=3, predict="noise", skip="logSNR", steps=11,
             t_start=0.8, t_end=0.01),
        dict(schedule="sd", method="singlestep", order=3, predict="data", steps=9, timesteps=given),
        dict(schedule="vp", method="multistep", order=2, predict="noise", steps=9, timesteps=given)]


def fixture_key(case):
    return ",".join(f"{k}={'grid' if torch.is_tensor(v) else v}" for k, v in case.items())


def run_fixture_case(case):
    kw = dict(case)
    sch = FIXTURE_SCHEDULES[kw.pop("schedule")]
    x = torch.randn(2, 3, generator=torch.Generator().manual_seed(0), dtype=F64)
    return sample_dpm_solver(analytic.gaussian_eps_fn(sch, MU, S), x, sch, kw.pop("steps"), **kw)


def test_defaults_give_the_outputs_recorded_before_the_split():
    """``tests/data/dpm_solver_defaults.pt``: ``{"keys": [fixture_key(case)], "outputs": float64 [222, 2, 3]}``,
    written by the single-function ``sample_dpm_solver`` of commit 00bb52b (before issue 30) with
    ``torch.save({"keys": ..., "outputs": torch.stack([run_fixture_case(c) for c in fixture_cases()])}, path)``.
    Equal bit for bit on the machine that wrote it (the split kept every floating-point operation and its
    order); compared to 1e-12 so that a CPU whose vector units round the last bit of exp or log otherwise
    still passes, while any change of the method would be off by far more."""
    recorded = torch.load(FIXTURE, weights_only=True)
    cases = fixture_cases()
    assert recorded["keys"] == [fixture_key(c) for c in cases]
    outputs = torch.stack([run_fixture_case(c) for c in cases])
    torch.testing.assert_close(outputs, recorded["outputs"], rtol=1e-12, atol=1e-14)


def test_lower_order_final_off_is_the_full_multistep_allocation():
    sch = VPLinearSchedule()
    f, x = gaussian_eps_fn(sch), x_start((2, 3))
    off = sample_dpm_solver(f, x, sch, 6, 3, "multistep", lower_order_final=False)
    assert torch.equal(off, sample_dpm_solver(f, x, sch, 6, 3, "multistep", allocation="full"))
    assert not torch.equal(off, sample_dpm_solver(f, x, sch, 6, 3, "multistep"))


def test_the_sample_command_offers_every_grid_and_allocation():
    from dimr.sample import _parser

    actions = {a.dest: a for a in _parser()._actions}
    assert tuple(actions["skip"].choices) == SKIP_TYPES and tuple(actions["allocation"].choices) == ALLOCATIONS
    args = _parser().parse_args(["--checkpoint", "c", "--skip", "logSNR", "--allocation", "full"])
    assert (args.skip, args.allocation) == ("logSNR", "full")


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
