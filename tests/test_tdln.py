import pytest
import torch
import torch.nn.functional as F

from dimr.nn.tdln import TDLayerNorm, TDRMSNorm, TimeDependentParameter, make_norm, set_time_dependence


@pytest.mark.parametrize("form", ["official", "paper"])
def test_tdln_is_layernorm_when_endpoints_equal(form):
    torch.manual_seed(0)
    norm = TDLayerNorm(16, form=form)
    with torch.no_grad():  # equal, but not the trivial (1, 0), endpoints
        if form == "official":
            w, b = torch.randn(16), torch.randn(16)
            norm.weight.param0.copy_(w), norm.weight.param1.copy_(w)
            norm.bias.param0.copy_(b), norm.bias.param1.copy_(b)
            norm.weight.nodecay_weight.normal_(), norm.bias.nodecay_bias.normal_()
        else:
            w, b = torch.randn(16), torch.randn(16)
            norm.p1.copy_(w), norm.p2.copy_(w), norm.p3.copy_(b), norm.p4.copy_(b)
            norm.gate.gate_weight.fill_(3.0)
    x = torch.randn(4, 5, 16)
    tau = torch.tensor([-2.0, -0.3, 0.4, 5.0])
    expected = F.layer_norm(x, (16,), weight=w, bias=b, eps=1e-5)
    torch.testing.assert_close(norm(x, tau), expected)


@pytest.mark.parametrize("form", ["official", "paper"])
def test_time_changes_output_once_endpoints_differ(form):
    torch.manual_seed(0)
    norm = TDLayerNorm(8, form=form)
    x = torch.randn(1, 3, 8).expand(2, 3, 8)
    tau = torch.tensor([-1.0, 1.0])
    out = norm(x, tau)
    torch.testing.assert_close(out[0], out[1])  # time-blind at init
    set_time_dependence(norm, torch.Generator().manual_seed(0))
    out = norm(x, tau)
    assert (out[0] - out[1]).abs().max() > 1e-2


def test_tdp_matches_equation_6():
    tdp = TimeDependentParameter(3, 1.0)
    with torch.no_grad():
        tdp.param0.copy_(torch.tensor([1.0, 2.0, 3.0]))
        tdp.param1.copy_(torch.tensor([0.0, -1.0, 5.0]))
        tdp.nodecay_weight.copy_(torch.tensor([0.5, 0.0, -0.5]))
        tdp.nodecay_bias.copy_(torch.tensor([0.0, 1.0, 0.0]))
    tau = torch.tensor([0.7])
    s = torch.sigmoid(torch.tensor([1.5, 1.0, 0.5]) * 0.7 + torch.tensor([0.0, 1.0, 0.0]))
    expected = s * tdp.param0 + (1 - s) * tdp.param1
    torch.testing.assert_close(tdp(tau)[0], expected)


def test_tdrmsnorm_formula_eps_outside_sqrt():
    norm = TDRMSNorm(4)
    x = torch.tensor([[[3.0, -1.0, 2.0, 0.5]]])
    rms = x.pow(2).mean(-1, keepdim=True).sqrt()
    torch.testing.assert_close(norm(x, torch.zeros(1)), x / (rms + 1e-8))
    # scale only: no centring, so a constant input is not mapped to zero (LayerNorm would)
    c = torch.full((1, 1, 4), 2.0)
    torch.testing.assert_close(norm(c, torch.zeros(1)), torch.ones(1, 1, 4))


def test_parameter_counts_per_norm():
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(TDLayerNorm(10)) == 80            # 8·C (γ and β, four tensors each)
    assert count(TDLayerNorm(10, form="paper")) == 42  # p1..p4 and one (w, b)
    assert count(TDRMSNorm(10)) == 40               # 4·C
    assert count(make_norm("ln", 10)) == 20
    with pytest.raises(ValueError, match="unknown norm"):
        make_norm("batchnorm", 10)


def test_time_is_an_argument_not_state():
    norm = TDLayerNorm(8)
    set_time_dependence(norm, torch.Generator().manual_seed(1))
    x = torch.randn(2, 8)
    a = norm(x, torch.tensor([0.3, 0.3]))
    norm(x, torch.tensor([5.0, -5.0]))  # another call must not leave anything behind
    torch.testing.assert_close(norm(x, torch.tensor([0.3, 0.3])), a)
    assert not any(isinstance(v, torch.Tensor) and not isinstance(v, torch.nn.Parameter)
                   for v in vars(norm).values())
