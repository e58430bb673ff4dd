import math

import numpy as np
import pytest
import torch

from dimr.diffusion import (
    SDScaledLinearSchedule,
    VPLinearSchedule,
    get_schedule,
    sd_scaled_linear_betas,
)
from dimr.presets import PRESETS

F64 = torch.float64
SCHEDULES = [VPLinearSchedule(), SDScaledLinearSchedule()]


@pytest.mark.parametrize("sch", SCHEDULES, ids=lambda s: s.name)
def test_variance_preserving_and_monotone(sch):
    t = torch.linspace(1e-3, 1.0, 2001, dtype=F64)
    a, s = sch.alpha(t), sch.sigma(t)
    torch.testing.assert_close(a ** 2 + s ** 2, torch.ones_like(t))
    assert bool((a[1:] < a[:-1]).all()), "alpha_t must decrease with t"
    ls = sch.log_snr(t)
    assert bool((ls[1:] < ls[:-1]).all()), "the log-SNR must decrease with t"
    torch.testing.assert_close(ls, torch.log(a ** 2 / s ** 2))


def test_vp_linear_matches_integral_of_beta():
    sch = VPLinearSchedule()
    # independent: α_t² = exp(−∫₀ᵗ β(τ) dτ) with β linear from 0.1 to 20, integrated numerically
    tau = torch.linspace(0, 0.6, 60001, dtype=F64)
    integral = torch.trapezoid(0.1 + tau * (20 - 0.1), tau)
    assert float(sch.alpha(torch.tensor(0.6, dtype=F64)) ** 2) == pytest.approx(math.exp(-integral), rel=1e-9)
    # the closed form of the issue: log ᾱ(t)/2 = −¼t²(β1−β0) − ½tβ0
    assert float(sch.log_alpha(0.5)) == pytest.approx(-0.25 * 0.25 * 19.9 - 0.5 * 0.5 * 0.1)


def test_sd_betas_and_knots_are_exact():
    sch = SDScaledLinearSchedule()
    betas = np.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=np.float64) ** 2
    abar = np.cumprod(1.0 - betas)
    np.testing.assert_allclose(sch.betas().numpy(), betas, rtol=1e-12)
    n = torch.arange(1, 1001, dtype=F64)
    np.testing.assert_allclose((sch.alpha(n / 1000) ** 2).numpy(), abar, rtol=1e-10)
    # linear in log α between knots (DPM-Solver's interpolation), extended beyond them
    la = sch.log_alpha(torch.tensor([0.0375, 0.037, 0.038], dtype=F64))
    assert float(la[0]) == pytest.approx(float((la[1] + la[2]) / 2), rel=1e-12)
    assert float(sch.log_alpha(torch.tensor(1.0005, dtype=F64))) < float(sch.log_alpha(1.0))


def test_sd_betas_match_diffusers_scaled_linear():
    diffusers = pytest.importorskip("diffusers")
    ref = diffusers.DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                                  num_train_timesteps=1000)
    np.testing.assert_allclose(sd_scaled_linear_betas().numpy(), ref.betas.double().numpy(), rtol=1e-6)
    np.testing.assert_allclose(SDScaledLinearSchedule().alphas_cumprod().numpy(),
                               ref.alphas_cumprod.double().numpy(), rtol=1e-5)


@pytest.mark.parametrize("sch", SCHEDULES, ids=lambda s: s.name)
def test_inverse_log_snr_round_trip(sch):
    t = torch.cat([torch.linspace(1e-3, 1.0, 997, dtype=F64), torch.tensor([0.0015, 0.9995], dtype=F64)])
    back = sch.inverse_log_snr(sch.log_snr(t))
    torch.testing.assert_close(back, t, rtol=1e-9, atol=1e-12)
    # and the other way: log-SNR values, not only grid images
    ls = torch.linspace(float(sch.log_snr(0.999)), float(sch.log_snr(0.002)), 50, dtype=F64)
    torch.testing.assert_close(sch.log_snr(sch.inverse_log_snr(ls)), ls, rtol=1e-9, atol=1e-9)


def test_vp_network_input_is_clamped_true_log_snr():
    sch = VPLinearSchedule()
    t = torch.tensor([0.05, 0.3, 0.9, 1.0], dtype=F64)
    torch.testing.assert_close(sch.network_input(t, "log_snr"), sch.log_snr(t))
    # SNR is capped at 1e6 near t = 0, as the official sde.py does
    tiny = torch.tensor([0.0, 1e-9], dtype=F64)
    torch.testing.assert_close(sch.network_input(tiny, "log_snr"), torch.full((2,), math.log(1e6), dtype=F64))
    assert float(sch.log_snr(1e-9)) > math.log(1e6)  # the true value is above the cap
    torch.testing.assert_close(sch.network_input(t, "t999"), 999 * t)


def test_sd_network_input_is_the_official_proxy():
    sch = SDScaledLinearSchedule()
    n = torch.tensor([1, 250, 500, 1000])
    t = n.double() / 1000
    expected = n.double() / 1000 * 8 - 4  # train.py: log_snr = n/1000·8 − 4
    torch.testing.assert_close(sch.network_input(t, "log_snr"), expected)
    assert float(sch.network_input(t, "log_snr")[0]) == pytest.approx(-3.992)
    # a proxy, not the true log-SNR: it even grows with the noise level
    assert not torch.allclose(sch.network_input(t, "log_snr"), sch.log_snr(t), atol=0.5)
    assert float(sch.network_input(1.0, "log_snr")) > float(sch.network_input(0.5, "log_snr"))
    torch.testing.assert_close(sch.network_input(t, "t999"), 999 * t)
    with pytest.raises(ValueError, match="noise_input"):
        sch.network_input(t, "sigma")


def test_training_times():
    sd = SDScaledLinearSchedule()
    g = torch.Generator().manual_seed(0)
    t = sd.sample_training_t(50_000, generator=g)
    n = torch.round(t * 1000)
    torch.testing.assert_close(t, n / 1000)
    assert int(n.min()) == 1 and int(n.max()) == 1000  # n ~ U{1..1000}, both ends reachable
    assert float(t.mean()) == pytest.approx(0.5005, abs=5e-3)
    # reproducible with a generator
    torch.testing.assert_close(sd.sample_training_t(8, torch.Generator().manual_seed(3)),
                               sd.sample_training_t(8, torch.Generator().manual_seed(3)))
    vp = VPLinearSchedule().sample_training_t(50_000, generator=g)
    assert float(vp.min()) >= 0.0 and float(vp.max()) < 1.0
    assert float(vp.mean()) == pytest.approx(0.5, abs=5e-3)


@pytest.mark.parametrize("sch", SCHEDULES, ids=lambda s: s.name)
def test_add_noise(sch):
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(3, 2, 4, 4, generator=g, dtype=F64)
    eps = torch.randn(3, 2, 4, 4, generator=g, dtype=F64)
    t = torch.tensor([0.1, 0.5, 1.0], dtype=F64)
    xt = sch.add_noise(x0, eps, t)
    for i in range(3):
        torch.testing.assert_close(xt[i], sch.alpha(t[i]) * x0[i] + sch.sigma(t[i]) * eps[i])
    # x_t has variance α²·1 + σ²·1 = 1 for unit-variance data (variance preserving)
    big0, big_eps = torch.randn(200_000, generator=g, dtype=F64), torch.randn(200_000, generator=g, dtype=F64)
    assert float(sch.add_noise(big0, big_eps, 0.4).var()) == pytest.approx(1.0, abs=0.01)
    with pytest.raises(ValueError, match="same shape"):
        sch.add_noise(x0, eps[:2], t)


def test_get_schedule_covers_every_recipe():
    names = {p.recipe.schedule for p in PRESETS.values() if p.recipe is not None}
    assert names == {"vp_linear", "sd_scaled_linear"}
    for name in names:
        assert get_schedule(name).name == name
    assert get_schedule("vp_linear", eps=1e-3).eps == 1e-3
    assert SDScaledLinearSchedule().eps == pytest.approx(1e-3) and VPLinearSchedule().eps == pytest.approx(1e-4)
    with pytest.raises(ValueError, match="unknown noise schedule"):
        get_schedule("cosine")
