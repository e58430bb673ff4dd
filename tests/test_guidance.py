import math

import pytest
import torch

from dimr.config import BranchConfig, DiMRConfig
from dimr.diffusion import (
    Denoiser,
    SDScaledLinearSchedule,
    VPLinearSchedule,
    apply_guidance,
    cosine_ramp_weight,
    drop_labels,
    guided_model_fn,
    guided_prediction,
    sample_dpm_solver,
    weight_from_scale,
)
from dimr.nn.network import MultiResolutionNetwork

NULL = 4


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    cfg = DiMRConfig(image_size=8, in_channels=3, num_classes=NULL + 1,
                     branches=(BranchConfig("transformer", 32, 1, 2), BranchConfig("convnext", 16, 1)))
    return MultiResolutionNetwork(cfg).eval()


class Recorder:
    """Wraps a model and records each call's batch size and noise input."""

    def __init__(self, model):
        self.model, self.calls, self.cfg = model, [], model.cfg

    def __call__(self, x, noise_in, y):
        self.calls.append((x.shape[0], noise_in.detach().clone(), y.detach().clone()))
        return self.model(x, noise_in, y)


def test_drop_labels():
    y = torch.arange(4).repeat(5000)
    g = torch.Generator().manual_seed(0)
    out = drop_labels(y, 0.1, NULL, generator=g)
    dropped = out == NULL
    assert float(dropped.float().mean()) == pytest.approx(0.1, abs=0.01)
    torch.testing.assert_close(out[~dropped], y[~dropped])  # the rest is untouched
    assert not bool((y == NULL).any())  # input not modified
    torch.testing.assert_close(drop_labels(y, 0.0, NULL), y)
    assert bool((drop_labels(y, 1.0, NULL) == NULL).all())
    torch.testing.assert_close(drop_labels(y, 0.3, NULL, torch.Generator().manual_seed(5)),
                               drop_labels(y, 0.3, NULL, torch.Generator().manual_seed(5)))
    with pytest.raises(ValueError):
        drop_labels(y, 1.5, NULL)


def test_weights():
    assert weight_from_scale(0.4) == pytest.approx(1.4)  # official default scale → w = 1.4
    w = cosine_ramp_weight(scale=4.0, power=1.0)
    t = torch.tensor([1.0, 0.5, 0.0])
    # 1 + 3·½·(1 − cos(π·(1 − t)))
    torch.testing.assert_close(w(t), torch.tensor([1.0, 2.5, 4.0]))
    w2 = cosine_ramp_weight(scale=3.0, power=2.0)
    ts = torch.linspace(0, 1, 101)
    vals = w2(ts)
    assert bool((vals[1:] <= vals[:-1]).all()), "the ramp rises as t goes to 0"
    expected = 1 + 2.0 * 0.5 * (1 - math.cos(math.pi * (1 - 0.3) ** 2))
    assert float(w2(torch.tensor(0.3))) == pytest.approx(expected)
    with pytest.raises(ValueError):
        cosine_ramp_weight(scale=0.4, power=1.0)


def test_apply_guidance_per_sample_weight():
    c, u = torch.ones(2, 3, 2, 2), torch.zeros(2, 3, 2, 2)
    out = apply_guidance(c, u, torch.tensor([0.5, 2.0]))
    assert float(out[0].max()) == 0.5 and float(out[1].min()) == 2.0


def den(model, schedule=None, prediction="eps", noise_input=None):
    return Denoiser(model, schedule or VPLinearSchedule(), prediction, NULL, noise_input)


def test_doubled_batch_equals_two_passes(net):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 3, 8, 8, generator=g)
    t = torch.tensor([0.9, 0.5, 0.1])
    sch = VPLinearSchedule()
    log_snr = sch.network_input(t, "log_snr")
    y = torch.tensor([0, 2, 3])
    rec = Recorder(net)
    with torch.no_grad():
        guided = guided_prediction(den(rec), x, t, y, 1.4)
        cond = net(x, log_snr, y)[-1]
        uncond = net(x, log_snr, torch.full_like(y, NULL))[-1]
    assert len(rec.calls) == 1 and rec.calls[0][0] == 6  # one forward, doubled batch
    torch.testing.assert_close(rec.calls[0][2], torch.tensor([0, 2, 3, NULL, NULL, NULL]))
    assert not torch.allclose(cond, uncond)  # the label matters, so the checks below can fail
    # (assert_close also checks the shape: only the full-resolution prediction comes back)
    torch.testing.assert_close(guided, uncond + 1.4 * (cond - uncond), rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        torch.testing.assert_close(guided_prediction(den(net), x, t, y, 1.0), cond, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(guided_prediction(den(net), x, t, y, 0.0), uncond, rtol=1e-5, atol=1e-5)
        # a weight per sample applies to its own sample: conditional, unconditional, guided
        mixed = guided_prediction(den(net), x, t, y, torch.tensor([1.0, 0.0, 1.4]))
    torch.testing.assert_close(mixed, torch.stack([cond[0], uncond[1], guided[2]]), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="null label"):
        guided_prediction(Denoiser(net, sch), x, t, y, 2.0)


@pytest.mark.parametrize("prediction", ["v", "x0"])
def test_guidance_is_the_same_on_any_prediction(net, prediction):
    """Guiding ε̂ equals guiding the network's own v̂ / x̂₀ and converting afterwards (affine maps)."""
    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, 3, 8, 8, generator=g)
    t = torch.tensor([0.7, 0.2])
    y = torch.tensor([1, 3])
    d = den(net, prediction=prediction)
    with torch.no_grad():
        cond, uncond = d(x, t, y)[-1], d(x, t, torch.full_like(y, NULL))[-1]
        expected = d.convert(uncond + 2.5 * (cond - uncond), x, t, "eps")
        torch.testing.assert_close(guided_prediction(d, x, t, y, 2.5), expected, rtol=1e-4, atol=1e-4)


def test_guided_model_fn_feeds_the_schedule_input(net):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 3, 8, 8, generator=g)
    y = torch.tensor([1, 3])
    t = torch.tensor([0.25, 0.8])
    for sch in (SDScaledLinearSchedule(), VPLinearSchedule()):
        rec = Recorder(net)
        with torch.no_grad():
            out = guided_model_fn(den(rec, sch), y, 2.0)(x, t)
            direct = guided_prediction(den(net, sch), x, t, y, 2.0)
        torch.testing.assert_close(rec.calls[0][1], sch.network_input(t, "log_snr").repeat(2))
        torch.testing.assert_close(out, direct)
    # t999 models get 999·t
    rec = Recorder(net)
    with torch.no_grad():
        guided_model_fn(den(rec, noise_input="t999"), y, 2.0)(x, t)
    torch.testing.assert_close(rec.calls[0][1], (999 * t).repeat(2))
    # w = 1: a single un-doubled pass; a time-dependent weight is evaluated per sample
    rec = Recorder(net)
    with torch.no_grad():
        guided_model_fn(den(rec), y, 1.0)(x, t)
    assert rec.calls[0][0] == 2
    ramp = cosine_ramp_weight(3.0, 1.0)
    sch = SDScaledLinearSchedule()
    with torch.no_grad():
        out = guided_model_fn(den(net, sch), y, ramp)(x, t)
        expected = guided_prediction(den(net, sch), x, t, y, ramp(t))
    torch.testing.assert_close(out, expected)
    with torch.no_grad():
        assert not torch.allclose(out, guided_prediction(den(net, sch), x, t, y, 3.0))  # the ramp is not constant


def test_guided_sampling_end_to_end(net):
    sch = SDScaledLinearSchedule()
    y = torch.tensor([0, 3])
    eps_fn = guided_model_fn(den(net, sch), y, weight_from_scale(0.4))
    x_T = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    x0 = sample_dpm_solver(eps_fn, x_T, sch, steps=5)
    assert x0.shape == x_T.shape and bool(torch.isfinite(x0).all())
    assert not torch.allclose(x0, x_T)
