"""dimr.profile and the zoo: parameter counts and GMACs against the official code and the paper.

Two kinds of reference, kept apart:

* counts measured by instantiating the **official code** (docs/official-code.md §7), recorded once as
  the presets' ``official_params``: an independent check of every model the released code can build;
* Table 2 rows 2–4 have **no released code** (docs/official-code.md §8). Their reference counts below are
  the closed-form counts of the constructions this repository chose to fit the paper's sizes, i.e. of
  the same constructions the presets build: they only guard those constructions against drift and are
  not independent. The independent check for Table 2 is against the sizes the paper prints, at the
  paper's precision (0.1M): ``test_table2_counts_round_to_the_printed_params``.
"""
import dataclasses
import json
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dimr.nn import build_model
from dimr.presets import PRESETS, get_preset
from dimr.profile import MacCounter, count_gmacs, count_params, fmt_params
from dimr.reproduction.paper import matches_printed, paper_rows

OFFICIAL_PARAMS = {name: p.official_params for name, p in PRESETS.items() if p.official_params is not None}
# This repository's own reconstructions (see the module docstring): not an independent reference.
RECONSTRUCTED_PARAMS = {"Table2/row2": 202.401e6, "Table2/row3": 217.898e6, "Table2/row4": 153.84e6}
REFERENCE_PARAMS = {**OFFICIAL_PARAMS, **RECONSTRUCTED_PARAMS}
# The paper's printed GFLOPs (= GMACs), Tables 1, 5, 6, 7 and the README for G/2R.
PAPER_GMACS = {"DiMR-M/3R": 54, "DiMR-L/3R": 111, "DiMR-XL/2R": 160, "DiMR-XL/3R": 206, "DiMR-G/2R": 331,
               "U-ViT-M/4": 35, "U-ViT-L/4": 77, "U-ViT-H/2": 133, "U-ViT-H/4": 133, "U-ViT-L/2": 77, "DiT-XL/2": 119}


def _params(name: str, **changes) -> int:
    cfg = get_preset(name).model
    return count_params(build_model(dataclasses.replace(cfg, **changes) if changes else cfg, device="meta"))


@pytest.mark.parametrize("name", list(REFERENCE_PARAMS))
def test_params_match_official_definitions(name):
    assert abs(_params(name) / REFERENCE_PARAMS[name] - 1) < 1e-3


@pytest.mark.parametrize("name", list(PAPER_GMACS))
def test_gmacs_round_to_the_papers_integer(name):
    assert round(count_gmacs(get_preset(name).model)) == PAPER_GMACS[name]


# Table 2's #Params as printed (p. 9; the transcription is checked against the paper's text in test_tables).
TABLE2_PRINTED = {r["row"]: r["params"] for r in paper_rows("2")}


def _td_rmsnorm_miss(row: int):
    """Rows 4–6 as the presets build them (TD-RMSNorm block norms, as the released configs) miss the
    printed size by 0.1M; the reason names the measured count."""
    n = _params(f"Table2/row{row}")
    return pytest.mark.xfail(strict=True, reason=f"Table2/row{row} with TD-RMSNorm block norms has {fmt_params(n)}, "
                                                 f"printed {TABLE2_PRINTED[row]}: it matches only with TD-LN block norms")


@pytest.mark.parametrize("row", [1, 2, 3] + [pytest.param(r, marks=_td_rmsnorm_miss(r)) for r in (4, 5, 6)])
def test_table2_counts_round_to_the_printed_params(row):
    """Each preset's count, at the paper's precision (rows 2 and 3: 202.4M and 217.9M)."""
    n = _params(f"Table2/row{row}")
    assert matches_printed(n, TABLE2_PRINTED[row]), (row, fmt_params(n), TABLE2_PRINTED[row])


@pytest.mark.parametrize("row", [4, 5, 6])
def test_table2_rows_4_to_6_round_to_the_printed_params_with_td_ln_block_norms(row):
    """With the norm the paper names (TD-LN) in the blocks, rows 4–6 give the printed 154.0M / 132.9M."""
    n = _params(f"Table2/row{row}", block_norm="tdln")
    assert matches_printed(n, TABLE2_PRINTED[row]), (row, fmt_params(n), TABLE2_PRINTED[row])


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
    assert table.returncode == 0
    assert fmt_params(_params("DiMR-XL/2R")) in table.stdout and fmt_params(_params("DiT-XL/2")) in table.stdout
    bad = _run_cli("zoo", "DiMR-Z/1R")
    assert bad.returncode == 2 and "unknown preset" in bad.stderr and "Traceback" not in bad.stderr
