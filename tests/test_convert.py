import subprocess
import sys

import pytest
import torch

from dimr.checkpoint import model_from_checkpoint
from dimr.config import config_from_dict
from dimr.convert import ConversionError, convert_state_dict, from_official, ours_to_official_key, to_official
from dimr.nn import build_model
from dimr.presets import get_preset


@pytest.fixture(scope="module")
def reference(data_dir):
    """Outputs recorded from the official MRModel (scripts/make_official_reference.py)."""
    return torch.load(data_dir / "official_tiny_reference.pt", weights_only=False)


def test_converted_model_reproduces_official_outputs(reference):
    assert {c["norm_type"] for c in reference["cases"]} == {"TDRMSN", "LN"}
    for case in reference["cases"]:
        model = from_official(case["state_dict"], config_from_dict(case["config"])).eval()
        with torch.no_grad():
            outs = model(case["x"], case["log_snr"], case["y"])
        assert len(outs) == len(case["outputs"]) == 3
        for ours, theirs in zip(outs, case["outputs"]):
            assert ours.shape == theirs.shape
            assert (ours - theirs).abs().max() <= 1e-4


def test_round_trip_is_exact(reference):
    case = reference["cases"][0]
    cfg = config_from_dict(case["config"])
    back = to_official(convert_state_dict(case["state_dict"], cfg), cfg)
    assert back.keys() == case["state_dict"].keys()
    assert all(torch.equal(back[k], case["state_dict"][k]) for k in back)


def test_xl2r_layout_matches_the_official_state_dict(data_dir):
    """Every key pattern and shape of the official DiMR-XL/2R (tests/data TSV, docs/official-code.md §10) is produced."""
    rows = [line.split("\t") for line in (data_dir / "official-dimr-xl-2r-state-dict.tsv").read_text().splitlines()
            if line and not line.startswith(("#", "key\t"))]
    expected = {key: (shape, int(count)) for key, shape, count in rows}
    cfg = get_preset("DiMR-XL/2R").model
    ours = build_model(cfg, device="meta").state_dict()
    seen = {}
    import re
    for key, value in ours.items():
        official = ours_to_official_key(key, cfg)
        pattern = re.sub(r"\.(blocks|skip_denses)\.\d+\.", r".\1.<i>.", official)
        shape = "[" + ", ".join(map(str, value.shape)) + "]"
        assert expected[pattern][0] == shape, pattern
        seen[pattern] = seen.get(pattern, 0) + 1
    assert {k: v[1] for k, v in expected.items()} == seen
    assert sum(v[1] for v in expected.values()) == 1018 == len(ours)


def synthetic_official(preset):
    """A random state dict in the official layout for ``preset``."""
    cfg = get_preset(preset).model
    model = build_model(cfg)
    return {k: torch.randn_like(v) for k, v in to_official(model.state_dict(), cfg).items()}


def test_wrong_preset_names_the_first_mismatched_key():
    sd = synthetic_official("DiMR-T/3R")
    with pytest.raises(ConversionError, match=r"official key 'stages\.0\.[\w.]+' has shape \(64, 128\), the preset expects \(256, 128\)"):
        convert_state_dict(sd, "DiMR-T/2R")


def test_truncated_and_foreign_state_dicts_are_refused():
    sd = synthetic_official("DiMR-T/3R")
    missing = dict(sd)
    del missing["stages.2.blocks.1.block2.w1.bias"]
    with pytest.raises(ConversionError, match=r"lacks 'stages\.2\.blocks\.1\.block2\.w1\.bias'"):
        convert_state_dict(missing, "DiMR-T/3R")
    extra = dict(sd, **{"stages.0.text_conditioning.weight": torch.zeros(1)})
    with pytest.raises(ConversionError, match="text_conditioning"):
        convert_state_dict(extra, "DiMR-T/3R")
    with pytest.raises(ConversionError, match="DiMR networks"):
        convert_state_dict(sd, "U-ViT-M/4")
    with pytest.raises(ConversionError, match="cascade"):
        import dataclasses
        convert_state_dict(sd, dataclasses.replace(get_preset("DiMR-T/3R").model, cascade="last"))


def test_wrapped_state_dicts_are_accepted():
    sd = synthetic_official("DiMR-T/2R")
    wrapped = {"model": {"module." + k: v for k, v in sd.items()}}
    assert convert_state_dict(wrapped, "DiMR-T/2R").keys() == convert_state_dict(sd, "DiMR-T/2R").keys()


def test_convert_cli_end_to_end(tmp_path):
    sd = synthetic_official("DiMR-T/3R")
    src = tmp_path / "nnet_ema.pth"
    torch.save(sd, src)
    out = tmp_path / "converted.pt"
    res = subprocess.run([sys.executable, "-m", "dimr", "convert", "--checkpoint", str(tmp_path),
                          "--preset", "DiMR-T/3R", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    model = model_from_checkpoint(out)
    ref = from_official(sd, "DiMR-T/3R").eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        for a, b in zip(model(x, torch.tensor([0.1, -2.0]), torch.tensor([1, 2])),
                        ref(x, torch.tensor([0.1, -2.0]), torch.tensor([1, 2]))):
            torch.testing.assert_close(a, b)
    bad = subprocess.run([sys.executable, "-m", "dimr", "convert", "--checkpoint", str(src), "--preset", "DiMR-T/2R",
                          "--out", str(tmp_path / "x.pt")], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "stages.0.input_layer.3.position_embeddings.weight" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "x.pt").exists()
