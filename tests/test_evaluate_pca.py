"""PCA of adaLN-Zero modulations (Fig. 3 / Fig. 6): the PCA itself, the hooks, the layer choice."""
import numpy as np
import pytest
import torch

from dimr.diffusion import Denoiser, get_schedule
from dimr.evaluate.pca import (CHUNK_INDEX, MODULATIONS, adaln_layers, adaln_pca, collect_modulations,
                               explained_variance_ratio, plot_explained_variance, quarter_layers, record_modulations)
from dimr.nn import build_model
from dimr.presets import get_preset
from dimr.sample import SamplerConfig


def test_rank_two_signal_is_explained_by_two_components():
    g = torch.Generator().manual_seed(0)
    t = torch.linspace(0, 1, 400)
    u, v = torch.randn(64, generator=g), torch.randn(64, generator=g)
    # a time-dependent mix of two directions (what TD-LN's interpolation models), plus tiny noise
    x = torch.sigmoid(8 * t - 4)[:, None] * u + (t ** 2)[:, None] * v + 1e-3 * torch.randn(400, 64, generator=g)
    r = explained_variance_ratio(x)
    assert r.shape == (64,) and float(r.sum()) == pytest.approx(1.0)
    assert bool((r[:-1] >= r[1:]).all())
    assert float(r[:2].sum()) > 0.999 and float(r[2]) < 1e-3


def test_pca_matches_the_covariance_eigenvalues():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(50, 6, generator=g) @ torch.randn(6, 6, generator=g)
    eig = np.sort(np.linalg.eigvalsh(np.cov(x.numpy(), rowvar=False)))[::-1]
    assert np.allclose(explained_variance_ratio(x).numpy(), eig / eig.sum(), atol=1e-6)
    assert float(explained_variance_ratio(torch.ones(5, 3)).sum()) == 0.0  # constant data: no variance


def test_quarter_layers_are_figure_6s():
    assert quarter_layers(28) == [7, 14, 21, 28]
    assert quarter_layers(6) == [2, 3, 5, 6]
    assert quarter_layers(1) == [1]


def _dit_with_random_modulation():
    cfg = get_preset("DiT-T/2").model
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    for mod in adaln_layers(model):  # adaLN-Zero starts at zero: give the MLPs some weights
        torch.nn.init.normal_(mod.net[-1].weight, std=0.05)
        torch.nn.init.normal_(mod.net[-1].bias, std=0.05)
    return model


def test_hooks_collect_gamma_beta_along_the_sampling_trajectory():
    model = _dit_with_random_modulation()
    assert len(adaln_layers(model)) == model.cfg.depth  # the final layer's 2-chunk adaLN is not a block
    labels = torch.tensor([0, 3, 5])
    steps = 3
    got = collect_modulations(Denoiser(model, get_schedule("vp_linear"), null_class=8), labels,
                              sampler=SamplerConfig(steps=steps, guidance=2.0), batch_size=2, layers=[2, 6],
                              progress=False)
    assert set(got) == {2, 6} and set(got[2]) == set(MODULATIONS)
    # NFE × (2 × batch) rows: CFG runs conditional and null labels in one doubled batch
    assert got[2]["gamma1"].shape == (steps * 2 * len(labels), model.cfg.dim)
    assert not any(m._forward_hooks for m in adaln_layers(model))  # hooks removed afterwards
    # a recorded row is exactly the chunk the block's MLP produces for that conditioning
    with record_modulations(model, [6]) as store:
        cond = torch.randn(4, model.cfg.dim)
        direct = adaln_layers(model)[5](cond)
    for name in MODULATIONS:
        assert torch.equal(store[6][name][0], direct[CHUNK_INDEX[name]])
    pca = adaln_pca(got)
    assert float(pca[6]["beta2"].sum()) == pytest.approx(1.0)
    fig = plot_explained_variance(pca, [2, 6], depth=6, title="test")
    assert len(fig.axes) == 2 * 4


def test_conditional_only_keeps_the_first_half():
    model = _dit_with_random_modulation()
    with record_modulations(model, [1], conditional_only=True) as store:
        adaln_layers(model)[0](torch.randn(6, model.cfg.dim))
    assert store[1]["gamma1"][0].shape == (3, model.cfg.dim)


def test_models_without_adaln_zero_are_refused():
    with pytest.raises(ValueError, match="no adaLN-Zero"):
        adaln_layers(build_model(get_preset("DiMR-T/3R").model))
    with pytest.raises(ValueError, match="outside"):
        with record_modulations(_dit_with_random_modulation(), [7]):
            pass
    # Table 2 row 2 (U-ViT + adaLN-Zero) is analysable too
    assert len(adaln_layers(build_model(get_preset("Table2-T/row2").model))) > 0


def test_components_for_a_share_of_the_variance():
    import torch

    from dimr.evaluate.pca import components_for

    assert components_for(torch.tensor([0.6, 0.3, 0.1])) == 2  # 0.9 reached exactly at the second
    assert components_for(torch.tensor([0.95, 0.05])) == 1
    assert components_for(torch.tensor([0.5, 0.3, 0.15, 0.05])) == 3
    assert components_for(torch.tensor([0.5, 0.3, 0.15, 0.05]), share=0.99) == 4
    assert components_for(torch.zeros(3)) == 0
