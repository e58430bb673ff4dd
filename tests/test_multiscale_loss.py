import pytest
import torch
import torch.nn.functional as F

from dimr.config import BranchConfig, DiMRConfig
from dimr.diffusion import SDScaledLinearSchedule, downsample_noise, multiscale_loss, paper_coefficients
from dimr.nn.network import MultiResolutionNetwork
from dimr.presets import PRESETS


@pytest.mark.parametrize("k", [2, 4, 8])
def test_official_target_keeps_unit_variance_paper_target_shrinks(k):
    g = torch.Generator().manual_seed(0)
    eps = torch.randn(16, 4, 64, 64, generator=g)
    official = downsample_noise(eps, k, "official")
    paper = downsample_noise(eps, k, "paper")
    assert official.shape == paper.shape == (16, 4, 64 // k, 64 // k)
    n = official.numel()
    tol = 4 / n ** 0.5 + 0.01  # a few standard errors of a std estimate
    assert float(official.std()) == pytest.approx(1.0, abs=tol)
    assert float(paper.std()) == pytest.approx(1.0 / k, abs=tol / k)


def test_official_target_is_the_depthwise_conv_of_sde_py():
    # sde.py: conv2d with a k×k kernel of value 1/k, stride k, groups = C
    g = torch.Generator().manual_seed(1)
    eps = torch.randn(2, 3, 16, 16, generator=g)
    for k in (2, 4):
        kernel = torch.full((3, 1, k, k), 1.0 / k)
        torch.testing.assert_close(downsample_noise(eps, k, "official"), F.conv2d(eps, kernel, stride=k, groups=3))
    assert downsample_noise(eps, 1) is eps


def test_paper_coefficients_and_presets():
    assert paper_coefficients(3) == (1 / 16, 1 / 4, 1.0)
    assert paper_coefficients(2) == (1 / 4, 1.0)
    assert paper_coefficients(1) == (1.0,)
    for p in PRESETS.values():
        if p.recipe is not None and p.name.startswith("DiMR-"):  # the DiMR family (not the Table 2 ablations)
            assert tuple(p.recipe.loss_coeffs) == paper_coefficients(p.model.num_branches), p.name


def _preds(B=3, C=2, H=16, R=3, seed=2):
    g = torch.Generator().manual_seed(seed)
    preds = [torch.randn(B, C, H // 2 ** (R - r), H // 2 ** (R - r), generator=g) for r in range(1, R + 1)]
    eps = torch.randn(B, C, H, H, generator=g)
    return preds, eps


@pytest.mark.parametrize("target", ["official", "paper"])
def test_loss_value_matches_eq8_by_hand(target):
    preds, eps = _preds()
    coeffs = (1 / 16, 1 / 4, 1.0)
    out = multiscale_loss(preds, eps, coeffs, target=target)
    by_hand = torch.zeros(3)
    for pred, c, k in zip(preds, coeffs, (4, 2, 1)):
        pooled = F.avg_pool2d(eps, k) * (k if target == "official" else 1)
        by_hand += c * ((pred - pooled) ** 2).mean(dim=(1, 2, 3))
    torch.testing.assert_close(out.per_sample, by_hand)
    torch.testing.assert_close(out.total, by_hand.mean())
    assert set(out.per_branch) == {4, 8, 16} and out.weights == {4: 1 / 16, 8: 1 / 4, 16: 1.0}
    torch.testing.assert_close(out.per_branch[16], ((preds[2] - eps) ** 2).mean())
    logged = out.log_dict()
    assert set(logged) == {"loss", "loss/4px", "loss/8px", "loss/16px"}


def test_zero_coefficient_branch_is_not_trained():
    preds, eps = _preds()
    preds = [p.requires_grad_() for p in preds]
    out = multiscale_loss(preds, eps, (0.0, 0.0, 1.0))
    out.total.backward()
    assert preds[0].grad is None and preds[1].grad is None
    assert preds[2].grad is not None and float(preds[2].grad.abs().sum()) > 0
    assert set(out.per_branch) == {16}
    # the untrained branches are not even looked at: NaN there changes nothing
    nan_preds = [torch.full_like(preds[0], float("nan")), torch.full_like(preds[1], float("nan")), preds[2]]
    torch.testing.assert_close(multiscale_loss(nan_preds, eps, (0.0, 0.0, 1.0)).total, out.total)
    # whereas a trained branch changes the loss
    assert float(multiscale_loss(preds, eps, (0.0, 0.25, 1.0)).total.detach()) > float(out.total.detach())


def test_shape_errors_are_clear():
    preds, eps = _preds()
    with pytest.raises(ValueError, match="3 predictions but 2 loss coefficients"):
        multiscale_loss(preds, eps, (0.25, 1.0))
    with pytest.raises(ValueError, match="branch 2 has shape"):
        multiscale_loss([preds[0], preds[1][:, :1], preds[2]], eps, (1, 1, 1))
    with pytest.raises(ValueError, match="not an integer downscale"):
        multiscale_loss([torch.zeros(3, 2, 5, 5), preds[2]], eps, (1, 1))
    with pytest.raises(ValueError, match="eps must be"):
        multiscale_loss(preds, eps[0], (1, 1, 1))
    with pytest.raises(ValueError, match="at least one loss coefficient"):
        multiscale_loss(preds, eps, (0, 0, 0))
    with pytest.raises(ValueError, match="target"):
        multiscale_loss(preds, eps, (1, 1, 1), target="bilinear")


def test_with_the_dimr_network_and_schedule():
    torch.manual_seed(0)
    cfg = DiMRConfig(image_size=8, in_channels=3, num_classes=5,
                     branches=(BranchConfig("transformer", 32, 1, 2), BranchConfig("convnext", 16, 1),
                               BranchConfig("convnext", 8, 1)))
    net = MultiResolutionNetwork(cfg)
    sch = SDScaledLinearSchedule()
    x0, eps = torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)
    t = sch.sample_training_t(4)
    preds = net(sch.add_noise(x0, eps, t), sch.network_input(t, cfg.noise_input), torch.tensor([0, 1, 2, 4]))
    out = multiscale_loss(preds, eps, paper_coefficients(3))
    out.total.backward()
    assert set(out.per_branch) == {2, 4, 8}
    assert all(p.grad is not None for p in net.branches[0].parameters() if p.requires_grad)
