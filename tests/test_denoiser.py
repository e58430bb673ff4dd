"""The denoiser (noise level in, any prediction out), per-branch targets, loss weighting, training times."""
import dataclasses

import pytest
import torch

from dimr.config import BranchConfig, DiMRConfig
from dimr.diffusion import (
    PREDICTIONS,
    Denoiser,
    SDScaledLinearSchedule,
    VPLinearSchedule,
    branch_target,
    convert_prediction,
    downsample_noise,
    draw_training_t,
    loss_weight,
    multiscale_loss,
    null_label,
)
from dimr.presets import get_preset


def _process(seed=0, b=4, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    x0 = (torch.rand(b, 3, 8, 8, generator=g) * 2 - 1).to(dtype)
    eps = torch.randn(b, 3, 8, 8, generator=g).to(dtype)
    t = torch.tensor([0.02, 0.3, 0.7, 0.97], dtype=dtype)[:b]
    sch = VPLinearSchedule()
    a, s = sch.alpha(t), sch.sigma(t)
    x_t = sch.add_noise(x0, eps, t)
    v = a.view(-1, 1, 1, 1) * eps - s.view(-1, 1, 1, 1) * x0
    return x_t, {"eps": eps, "x0": x0, "v": v}, a, s, t, sch


@pytest.mark.parametrize("source", PREDICTIONS)
@pytest.mark.parametrize("target", PREDICTIONS)
def test_every_prediction_converts_to_every_other(source, target):
    x_t, truth, a, s, _, _ = _process(dtype=torch.float64)
    got = convert_prediction(truth[source], x_t, a, s, source, target)
    torch.testing.assert_close(got, truth[target], rtol=1e-9, atol=1e-9)


def test_conversion_is_affine_and_rejects_unknown_kinds():
    x_t, truth, a, s, _, _ = _process(1)
    p, q = torch.randn_like(x_t), torch.randn_like(x_t)
    for src in PREDICTIONS:
        lhs = convert_prediction(0.3 * p + 0.7 * q, x_t, a, s, src, "eps")
        rhs = 0.3 * convert_prediction(p, x_t, a, s, src, "eps") + 0.7 * convert_prediction(q, x_t, a, s, src, "eps")
        torch.testing.assert_close(lhs, rhs, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="prediction"):
        convert_prediction(p, x_t, a, s, "score", "eps")


class Recorder(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg, self.levels = cfg, []

    def forward(self, x, level, y):
        self.levels.append(level.clone())
        return [x * 0.5]


def test_the_denoiser_feeds_each_family_its_noise_level():
    t = torch.tensor([0.1, 0.6])
    x = torch.randn(2, 3, 8, 8)
    y = torch.tensor([0, 1])
    for name, expected in (("DiMR-T/3R", VPLinearSchedule().network_input(t, "log_snr")),
                           ("U-ViT-T/4", 999 * t), ("DiT-T/2", 999 * t)):
        net = Recorder(get_preset(name).model)
        Denoiser(net, VPLinearSchedule())(x, t, y)
        torch.testing.assert_close(net.levels[0], expected)
    net = Recorder(get_preset("DiMR-XL/2R").model)  # the latent schedule's official proxy 8t − 4
    Denoiser(net, SDScaledLinearSchedule())(x, t, y)
    torch.testing.assert_close(net.levels[0], 8 * t - 4)


def test_the_denoiser_reads_the_output_as_its_prediction():
    x_t, truth, a, s, t, sch = _process(2)

    class Oracle(torch.nn.Module):
        cfg = get_preset("DiMR-T/3R").model

        def __init__(self, kind):
            super().__init__()
            self.kind = kind

        def forward(self, x, level, y):
            return [truth[self.kind]]

    for kind in PREDICTIONS:
        d = Denoiser(Oracle(kind), sch, kind)
        for want in PREDICTIONS:
            torch.testing.assert_close(d.predict(x_t, t, None, want), truth[want], rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError):
        Denoiser(Oracle("eps"), sch, "score")


def test_null_label_rule():
    k = 8
    assert null_label(get_preset("DiT-T/2").model, k) == k  # DiT adds its own row
    t3r = get_preset("DiMR-T/3R").model  # 9 labels for 8 classes: trained with dropout
    assert null_label(t3r, k) == k
    assert null_label(dataclasses.replace(t3r, num_classes=k), k) is None  # no dropout, no null row
    assert null_label(get_preset("U-ViT-T/4").model, k) == k


def test_branch_targets():
    x_t, truth, a, s, t, _ = _process(3)
    x0, eps = truth["x0"], truth["eps"]
    for kind in PREDICTIONS:  # at full resolution each target is the quantity itself
        torch.testing.assert_close(branch_target(x0, eps, a, s, 1, kind), truth[kind])
    k = 4
    pooled = torch.nn.functional.avg_pool2d(x0, k)
    torch.testing.assert_close(branch_target(x0, eps, a, s, k, "eps"), downsample_noise(eps, k, "official"))
    torch.testing.assert_close(branch_target(x0, eps, a, s, k, "x0"), pooled)
    v_low = a.view(-1, 1, 1, 1) * k * torch.nn.functional.avg_pool2d(eps, k) - s.view(-1, 1, 1, 1) * pooled
    torch.testing.assert_close(branch_target(x0, eps, a, s, k, "v"), v_low)
    # the paper's noise target changes the noise part only
    v_paper = a.view(-1, 1, 1, 1) * torch.nn.functional.avg_pool2d(eps, k) - s.view(-1, 1, 1, 1) * pooled
    torch.testing.assert_close(branch_target(x0, eps, a, s, k, "v", "paper"), v_paper)


def test_the_official_downsampled_v_keeps_its_noise_at_unit_scale():
    g = torch.Generator().manual_seed(0)
    eps = torch.randn(256, 3, 32, 32, generator=g)
    x0 = torch.zeros_like(eps)
    one = torch.ones(256)
    for k in (2, 4):
        for target, expected in (("official", 1.0), ("paper", 1.0 / k)):
            std = float(branch_target(x0, eps, one, 0 * one, k, "v", target).std())
            assert std == pytest.approx(expected, rel=0.05)


def test_a_perfect_prediction_has_zero_loss_and_v_needs_the_image():
    x_t, truth, a, s, t, _ = _process(4)
    preds = [branch_target(truth["x0"], truth["eps"], a, s, k, "v") for k in (4, 2, 1)]
    out = multiscale_loss(preds, truth["eps"], (1 / 16, 1 / 4, 1), prediction="v", x0=truth["x0"], alpha=a, sigma=s)
    assert float(out.total) == pytest.approx(0.0, abs=1e-10)
    with pytest.raises(ValueError, match="x0"):
        multiscale_loss(preds, truth["eps"], (1 / 16, 1 / 4, 1), prediction="v")


def test_min_snr_weights_the_same_error_alike_in_every_parameterisation():
    """An error δ in ε̂ is δ/α in v̂ and −(σ/α)δ in x̂₀; min-SNR-γ gives each the same weighted loss."""
    x_t, truth, a, s, t, _ = _process(5)
    eps_hat = truth["eps"] + 0.1 * torch.randn_like(truth["eps"])
    snr = (a / s) ** 2
    losses = {}
    for kind in PREDICTIONS:
        pred = convert_prediction(eps_hat, x_t, a, s, "eps", kind)
        w = loss_weight(snr, kind, "min_snr", gamma=5.0)
        losses[kind] = multiscale_loss([pred], truth["eps"], (1.0,), prediction=kind, x0=truth["x0"], alpha=a,
                                       sigma=s, weight=w).per_sample
    torch.testing.assert_close(losses["v"], losses["eps"], rtol=1e-3, atol=1e-6)
    torch.testing.assert_close(losses["x0"], losses["eps"], rtol=1e-3, atol=1e-6)
    w = loss_weight(snr, "eps", "min_snr", 5.0)
    torch.testing.assert_close(w, torch.minimum(snr, torch.tensor(5.0)) / snr)
    assert float(w[-1]) == pytest.approx(1.0)  # low SNR: unweighted
    assert loss_weight(snr, "eps", "uniform") is None
    with pytest.raises(ValueError):
        loss_weight(snr, "eps", "edm")


def test_training_time_distributions():
    g = torch.Generator().manual_seed(0)
    uni = draw_training_t(VPLinearSchedule(), 20000, g)
    ln = draw_training_t(VPLinearSchedule(), 20000, g, "logit_normal")
    assert 0 <= float(uni.min()) and float(uni.max()) < 1
    assert float(ln.mean()) == pytest.approx(0.5, abs=0.01)
    # logit-normal(0, 1) puts fewer draws near the ends than uniform does
    assert float(((ln < 0.1) | (ln > 0.9)).float().mean()) < 0.5 * float(((uni < 0.1) | (uni > 0.9)).float().mean())
    shifted = draw_training_t(VPLinearSchedule(), 20000, g, "logit_normal", loc=1.0)
    assert float(shifted.mean()) > 0.6
    sd = draw_training_t(SDScaledLinearSchedule(), 5000, g, "logit_normal")
    n = sd * 1000
    torch.testing.assert_close(n, n.round())  # on the discrete schedule's steps
    assert float(n.min()) >= 1 and float(n.max()) <= 1000
    with pytest.raises(ValueError):
        draw_training_t(VPLinearSchedule(), 4, g, "beta")


def test_a_tiny_dimr_trains_with_every_target():
    torch.manual_seed(0)
    cfg = DiMRConfig(image_size=8, in_channels=3, num_classes=3,
                     branches=(BranchConfig("transformer", 16, 1, 2), BranchConfig("convnext", 8, 1)))
    from dimr.nn import build_model

    x_t, truth, a, s, t, sch = _process(6)
    for kind in PREDICTIONS:
        d = Denoiser(build_model(cfg), sch, kind)
        preds = d(x_t, t, torch.tensor([0, 1, 2, 0]))
        assert [p.shape[-1] for p in preds] == [4, 8]
        loss = multiscale_loss(preds, truth["eps"], (0.25, 1.0), prediction=kind, x0=truth["x0"], alpha=a, sigma=s)
        loss.total.backward()
        assert all(p.grad is not None for p in d.net.parameters() if p.requires_grad)
