import dataclasses

import pytest
import torch

from dimr.config import BranchConfig, DiMRConfig, DiTConfig, UViTConfig, config_from_dict, config_to_dict
from dimr.nn import build_model
from dimr.nn.branch import pixel_shuffle_channels_last
from dimr.nn.tdln import TimeDependent, TimeValues, set_time_dependence
from dimr.presets import PRESETS, get_preset
from dimr.profile import example_inputs


def shrink(cfg):
    """The preset's design at toy width/depth (same branches, resolution, options)."""
    if isinstance(cfg, DiMRConfig):
        dims = [32, 16, 8][: cfg.num_branches]
        depths = [3, 2, 1][: cfg.num_branches]
        branches = tuple(dataclasses.replace(b, dim=d, depth=n, heads=2 if b.block == "transformer" else 0)
                         for b, d, n in zip(cfg.branches, dims, depths))
        return dataclasses.replace(cfg, branches=branches, num_classes=7)
    if isinstance(cfg, UViTConfig):
        return dataclasses.replace(cfg, dim=32, depth=4, heads=2, num_classes=7)
    return dataclasses.replace(cfg, dim=32, depth=2, heads=2, num_classes=7)


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_forward_shapes(name):
    cfg = shrink(get_preset(name).model)
    torch.manual_seed(0)
    model = build_model(cfg)
    x, level, y = example_inputs(cfg, batch=2)
    y = torch.tensor([0, 6])
    with torch.no_grad():
        outs = model(x, level, y)
    assert isinstance(outs, list) and len(outs) == cfg.num_outputs
    for r, out in enumerate(outs, start=1):
        res = cfg.output_resolution(r) if isinstance(cfg, DiMRConfig) else cfg.image_size
        assert out.shape == (2, cfg.in_channels, res, res)
        assert torch.isfinite(out).all()


def test_tiny_presets_are_tiny_and_full_resolution_last():
    for name in ("DiMR-T/2R", "DiMR-T/3R"):
        p = get_preset(name)
        model = build_model(p.model)
        assert sum(q.numel() for q in model.parameters()) < 3_000_000
        x, level, y = example_inputs(p.model, batch=2)
        outs = model(x, level, y)
        assert [o.shape[-1] for o in outs] == sorted(o.shape[-1] for o in outs)
        assert outs[-1].shape == x.shape


def test_gradients_reach_every_branch_from_the_final_loss():
    cfg = shrink(get_preset("DiMR-M/3R").model)
    model = build_model(cfg)
    set_time_dependence(model, torch.Generator().manual_seed(0))
    x, level, y = example_inputs(cfg, batch=2)
    outs = model(x, torch.tensor([-2.0, 3.0]), y)
    outs[-1].pow(2).mean().backward()  # only the full-resolution prediction
    for r, branch in enumerate(model.branches[:-1]):
        g = branch.blocks[0].mlp.w0.weight.grad
        assert g is not None and g.abs().sum() > 0, f"branch {r} gets no gradient through the cascade"
    # the lower heads do not feed the last output; their grads must be absent
    assert model.branches[0].head.conv.weight.grad is None


def test_every_parameter_trains_once_time_dependence_exists():
    cfg = shrink(get_preset("DiMR-T/3R").model)
    model = build_model(cfg)
    set_time_dependence(model, torch.Generator().manual_seed(0))
    x, _, _ = example_inputs(cfg, batch=3)
    outs = model(x, torch.tensor([-3.0, 0.0, 4.0]), torch.tensor([0, 1, 2]))
    sum(o.pow(2).mean() for o in outs).backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert dead == []


@pytest.mark.parametrize("norms", [{}, {"block_norm": "tdln"}, {"block_norm": "tdln", "tdp_form": "paper"}])
def test_one_time_table_gives_every_td_norm_what_it_would_compute_itself(norms, monkeypatch):
    cfg = dataclasses.replace(shrink(get_preset("DiMR-T/3R").model), **norms)
    model = build_model(cfg)
    set_time_dependence(model, torch.Generator().manual_seed(0))
    with torch.no_grad():  # every official gate its own slope and offset, as training gives them
        for n, p in model.named_parameters():
            if n.endswith(("nodecay_weight", "nodecay_bias", "gate_weight", "gate_bias")):
                p.normal_()
    # the table holds every module with time terms, each once, in slot order
    held = [m for m in model.modules() if isinstance(m, TimeDependent) and m.has_time_terms]
    assert model.time_dependent == held and [m.time_slot for m in held] == list(range(len(held)))
    tau = torch.tensor([-1.5, 0.2, 2.0])
    table = TimeValues(model.time_dependent, tau)
    for m in held:  # the same arithmetic; a vectorised sigmoid may round the last bit differently
        torch.testing.assert_close(table.values_of(m), m.time_values(tau), rtol=1e-6, atol=1e-6)
    x, _, y = example_inputs(cfg, batch=3)
    batched = model(x, 4 * tau, y)
    monkeypatch.setattr(TimeValues, "values_of", lambda self, m: m.time_values(self.tau))  # each norm on its own
    for a, b in zip(batched, model(x, 4 * tau, y)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_official_init_is_time_blind_and_nodecay_grads_are_zero():
    cfg = shrink(get_preset("DiMR-T/2R").model)
    model = build_model(cfg)
    x = torch.randn(1, 3, 32, 32).expand(2, -1, -1, -1)
    y = torch.tensor([1, 1])
    outs = model(x, torch.tensor([-4.0, 4.0]), y)
    torch.testing.assert_close(outs[-1][0], outs[-1][1])
    outs[-1].pow(2).mean().backward()
    nodecay = [p.grad for n, p in model.named_parameters() if "nodecay" in n]
    assert nodecay and all(g is None or g.abs().max() == 0 for g in nodecay)


def test_official_init_statistics():
    torch.manual_seed(0)
    model = build_model(get_preset("DiMR-T/3R").model)
    lin = model.branches[0].blocks[0].attn.qkv.weight
    assert abs(lin.std().item() - 0.02) < 0.002 and abs(lin.mean().item()) < 0.002
    assert model.branches[0].blocks[0].attn.proj.bias.abs().max() == 0
    assert abs(model.branches[1].pos_embed.std().item() - 0.02) < 0.003
    # convolutions keep PyTorch's default (kaiming-uniform), not trunc-normal(0.02)
    assert model.branches[2].head.conv.weight.abs().max() > 0.05


def test_time_and_class_change_the_prediction():
    cfg = get_preset("DiMR-T/3R").model
    model = build_model(cfg)
    set_time_dependence(model, torch.Generator().manual_seed(0))
    x = torch.randn(1, 3, 32, 32)
    base = model(x, torch.tensor([0.0]), torch.tensor([1]))[-1]
    other_t = model(x, torch.tensor([2.0]), torch.tensor([1]))[-1]
    other_y = model(x, torch.tensor([0.0]), torch.tensor([2]))[-1]
    assert (base - other_t).abs().max() > 1e-4
    assert (base - other_y).abs().max() > 1e-4


def test_cascade_last_and_paper_tdln_variants_run():
    base = shrink(get_preset("DiMR-M/3R").model)
    for cfg in (dataclasses.replace(base, cascade="last"),
                dataclasses.replace(base, block_norm="tdln", tdp_form="paper")):
        model = build_model(cfg)
        outs = model(*example_inputs(cfg, batch=2))
        assert outs[-1].shape == (2, 3, 64, 64)
    last = build_model(dataclasses.replace(base, cascade="last"))
    assert last.branches[1].upsample.proj.in_features == base.branches[0].dim
    full = build_model(base)
    assert full.branches[1].upsample.proj.in_features == base.branches[0].dim * (3 + 1)


def test_even_depth_gets_one_more_block():
    cfg = get_preset("DiMR-M/3R").model
    assert [cfg.built_depth(r) for r in (1, 2, 3)] == [15, 9, 9]
    assert get_preset("DiMR-XL/2R").model.built_depth(2) == 21
    assert dataclasses.replace(cfg, odd_depth=False).built_depth(2) == 8


def test_pixel_shuffle_official_order():
    b, h, w, f, c = 1, 2, 3, 2, 5
    x = torch.arange(b * h * w * f * f * c, dtype=torch.float32).view(b, h, w, f * f * c)
    out = pixel_shuffle_channels_last(x, f)
    for i in range(f):
        for j in range(f):
            for ch in range(c):
                assert out[0, 1 * f + i, 2 * f + j, ch] == x[0, 1, 2, (i * f + j) * c + ch]
    # and it is not torch's PixelShuffle order
    torch_order = torch.nn.PixelShuffle(f)(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    assert not torch.equal(torch_order, out)


def test_config_json_round_trip_and_validation():
    for name in PRESETS:
        cfg = get_preset(name).model
        assert config_from_dict(config_to_dict(cfg)) == cfg
    with pytest.raises(ValueError, match="transformer branch"):
        DiMRConfig(image_size=32, in_channels=3, num_classes=2,
                   branches=(BranchConfig("convnext", 8, 2), BranchConfig("transformer", 8, 2, 2)))
    with pytest.raises(ValueError, match="heads"):
        BranchConfig("transformer", 30, 2, heads=4)
    with pytest.raises(ValueError, match="divisible"):
        DiMRConfig(image_size=30, in_channels=3, num_classes=2,
                   branches=(BranchConfig("transformer", 8, 2, 2), BranchConfig("convnext", 8, 2),
                             BranchConfig("convnext", 8, 2)))
    with pytest.raises(KeyError, match="known presets"):
        get_preset("DiMR-Q/9R")


def test_dit_and_uvit_specifics():
    dit = build_model(shrink(get_preset("DiT-XL/2").model))
    assert dit.y_embedder.num_embeddings == 8  # num_classes + the null label
    assert not dit.pos_embed.requires_grad
    full = dit.forward_full(*example_inputs(dit.cfg, batch=1))
    assert full.shape[1] == 2 * dit.cfg.in_channels  # learned-sigma channels
    uvit = build_model(shrink(get_preset("U-ViT-M/4").model))
    assert uvit.pos_embed.shape[1] == 2 + (64 // 4) ** 2  # time + label + patches
    row2 = build_model(shrink(get_preset("Table2/row2").model))
    assert row2.pos_embed.shape[1] == 1 + (64 // 4) ** 2  # time token dropped
    # adaLN-Zero starts as identity residuals: modulation outputs are zero
    assert all(m.net[-1].weight.abs().max() == 0 for m in row2.modules() if type(m).__name__ == "AdaLNModulation")


def test_gradient_checkpointing_gives_same_gradients():
    cfg = shrink(get_preset("DiMR-T/3R").model)
    torch.manual_seed(0)
    a = build_model(cfg)
    b = build_model(cfg)
    b.load_state_dict(a.state_dict())
    b.set_grad_checkpointing(True)
    x, level, y = example_inputs(cfg, batch=2)
    for m in (a, b):
        sum(o.pow(2).mean() for o in m(x, level, y)).backward()
    for (n, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        if pa.grad is not None:
            torch.testing.assert_close(pa.grad, pb.grad, msg=n)


def test_upcast_attention_stays_fp32_under_autocast(monkeypatch):
    # official `upcast`: q, k, v in fp32. Under bf16 autocast the product must not be cast back down
    import torch.nn.functional as F

    from dimr.nn import blocks

    seen = []
    real = F.scaled_dot_product_attention

    def spy(q, k, v, *args, **kwargs):
        out = real(q, k, v, *args, **kwargs)
        seen.append((q.dtype, out.dtype))
        return out

    monkeypatch.setattr(blocks.F, "scaled_dot_product_attention", spy)
    torch.manual_seed(0)
    attn, x = blocks.Attention(32, 4, upcast=True), torch.randn(2, 9, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = attn(x)
    assert seen == [(torch.float32, torch.float32)]
    with torch.no_grad():  # the same as the fp32 attention of the bf16 projections
        qkv = F.linear(x.bfloat16(), attn.qkv.weight.bfloat16()).view(2, 9, 3, 4, 8).permute(2, 0, 3, 1, 4)
        ref = real(*(t.float() for t in qkv.unbind(0))).transpose(1, 2).reshape(2, 9, 32)
        ref = F.linear(ref.bfloat16(), attn.proj.weight.bfloat16(), attn.proj.bias.bfloat16())
    torch.testing.assert_close(y, ref, atol=2e-2, rtol=2e-2)
    seen.clear()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        blocks.Attention(32, 4, upcast=False)(x)
    assert seen[0][0] == torch.bfloat16  # without upcast autocast decides


@pytest.mark.parametrize("name", ["DiMR-T/3R", "DiMR-T/2R", "Table2-T/row3", "Table2-T/row4"])
def test_the_network_traces_to_one_graph_without_breaks(name):
    """torch.compile sees the whole forward as one graph: no graph break (each would cost a compiled
    region's boundary on every call), the time table and the feature cascade included."""
    import torch._dynamo as dynamo

    cfg = shrink(get_preset(name).model)
    model = build_model(cfg)
    x, _, y = example_inputs(cfg, batch=2)
    dynamo.reset()
    explained = dynamo.explain(model)(x, torch.tensor([-1.0, 2.0]), y)
    assert (explained.graph_count, explained.graph_break_count) == (1, 0), explained.break_reasons
