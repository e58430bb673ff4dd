import json
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dimr.nn import build_model
from dimr.presets import PRESETS, get_preset
from dimr.profile import MacCounter, count_gmacs, count_params, profile_preset

# Counts measured by instantiating the official code (docs/official-code.md §7).
FACTS_PARAMS = {
    "DiMR-M/3R": 132_827_913, "DiMR-L/3R": 284_137_737, "DiMR-XL/2R": 505_046_408, "DiMR-XL/3R": 525_027_372,
    "DiMR-G/2R": 1_056_352_904, "U-ViT-M/4": 130_940_292, "U-ViT-L/4": 286_827_652, "U-ViT-H/2": 500_832_016,
    "U-ViT-H/4": 500_942_656, "U-ViT-L/2": 286_763_172, "DiT-XL/2": 675_129_632,
    # Table 2 closed forms (docs/official-code.md §8): rows 2–4 have no released code, only these reconstructions
    "Table2/row1": 130_940_292, "Table2/row2": 202.401e6, "Table2/row3": 217.898e6, "Table2/row4": 153.84e6,
    "Table2/row5": 132_827_913, "Table2/row6": 132_827_913,
}
# The paper's printed GFLOPs (= GMACs), Tables 1, 5, 6, 7 and the README for G/2R.
PAPER_GMACS = {"DiMR-M/3R": 54, "DiMR-L/3R": 111, "DiMR-XL/2R": 160, "DiMR-XL/3R": 206, "DiMR-G/2R": 331,
               "U-ViT-M/4": 35, "U-ViT-L/4": 77, "U-ViT-H/2": 133, "U-ViT-H/4": 133, "U-ViT-L/2": 77, "DiT-XL/2": 119}


@pytest.mark.parametrize("name", list(FACTS_PARAMS))
def test_params_match_official_definitions(name):
    params = count_params(build_model(get_preset(name).model, device="meta"))
    assert abs(params / FACTS_PARAMS[name] - 1) < 1e-3


@pytest.mark.parametrize("name", list(PAPER_GMACS))
def test_gmacs_round_to_the_papers_integer(name):
    assert round(count_gmacs(get_preset(name).model)) == PAPER_GMACS[name]


def test_table2_rows_round_to_the_printed_millions():
    printed = {1: 130.9, 2: 202.4, 3: 217.9, 5: 132.9, 6: 132.9}  # row 4 (154.0) is 153.84 with TD-RMSNorm
    for row, value in printed.items():
        assert round(profile_preset(f"Table2/row{row}").params / 1e6, 1) in (value, round(value - 0.1, 1))


def test_mac_counter_counts_linear_conv_and_attention():
    x = torch.randn(2, 10, 16)
    with MacCounter() as c:
        nn.Linear(16, 8)(x)
    assert c.total == 2 * 10 * 16 * 8
    with MacCounter() as c:
        nn.Conv2d(4, 6, 3, padding=1)(torch.randn(1, 4, 5, 5))
    assert c.total == 6 * 5 * 5 * 4 * 9
    with MacCounter() as c:  # depthwise: one input channel per output
        nn.Conv2d(4, 4, 7, padding=3, groups=4)(torch.randn(1, 4, 5, 5))
    assert c.total == 4 * 5 * 5 * 49
    q = torch.randn(2, 3, 10, 8)
    with MacCounter() as c:
        F.scaled_dot_product_attention(q, q, q)
    assert c.total == 2 * 3 * 10 * 10 * (8 + 8)  # QKᵀ and AV, which common counters drop
    with MacCounter() as c:
        F.layer_norm(torch.randn(3, 7), (7,))
    assert c.total == 4 * 21
    with MacCounter() as c:
        nn.LayerNorm(7)(torch.randn(3, 7))
    assert c.total == 5 * 21


def test_meta_counting_equals_real_counting():
    cfg = get_preset("DiMR-T/3R").model
    assert count_gmacs(cfg, device="meta") == pytest.approx(count_gmacs(cfg, device="cpu"), rel=1e-9)


def test_attention_is_part_of_the_count():
    counter = MacCounter()
    model = build_model(get_preset("U-ViT-M/4").model, device="meta")
    from dimr.profile import example_inputs
    with torch.no_grad(), counter:
        model(*(t.to("meta") for t in example_inputs(model.cfg)))
    attention = sum(v for k, v in counter.by_op.items() if "attention" in k or k in ("bmm", "baddbmm"))
    assert 1.6e9 < attention < 1.9e9  # docs/official-code.md §7: 1.74 GMACs of attention in U-ViT-M/4


def _run_cli(*args):
    return subprocess.run([sys.executable, "-m", "dimr", *args], capture_output=True, text=True, timeout=300)


def test_zoo_cli_json_and_table():
    res = _run_cli("zoo", "--json")
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert {r["name"] for r in rows} == set(PRESETS)
    for r in rows:
        assert {"name", "params", "gmacs", "paper_params", "paper_gmacs"} <= set(r)
        if r["name"] in PAPER_GMACS:
            assert round(r["gmacs"]) == r["paper_gmacs"] == PAPER_GMACS[r["name"]]
    m3r = next(r for r in rows if r["name"] == "DiMR-M/3R")
    assert {v["value"] for v in m3r["paper_params_all"]} == {133_000_000, 132_700_000, 132_900_000}
    table = _run_cli("zoo", "DiMR-XL/2R", "DiT-XL/2")
    assert table.returncode == 0 and "505.05M" in table.stdout and "675.13M" in table.stdout
    bad = _run_cli("zoo", "DiMR-Z/1R")
    assert bad.returncode == 2 and "unknown preset" in bad.stderr and "Traceback" not in bad.stderr
