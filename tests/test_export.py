"""`python -m dimr export`: safetensors + JSON that load back bitwise, wherever a checkpoint is taken."""
import json
import subprocess
import sys

import pytest
import torch

from dimr.checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint
from dimr.export import export_checkpoint, from_pretrained
from dimr.train import TrainConfig, train


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    train(TrainConfig(preset="DiMR-T/3R", dataset_size=32, batch_size=4, steps=2, warmup_steps=1, progress=False,
                      amp="none", compile="off"), out)
    return out


def test_export_round_trips_the_ema_weights_bitwise(run, tmp_path):
    res = subprocess.run([sys.executable, "-m", "dimr", "export", "--checkpoint", str(run), "--out", str(tmp_path / "x")],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == ["config.json", "model.safetensors"]
    meta = json.loads((tmp_path / "x" / "config.json").read_text())
    assert meta["weights"] == "ema" and meta["preset"] == "DiMR-T/3R" and meta["step"] == 2
    ckpt = load_checkpoint(run)
    model = from_pretrained(tmp_path / "x")
    state = model.state_dict()
    assert state.keys() == ckpt["ema"].keys() and all(torch.equal(state[k], ckpt["ema"][k]) for k in state)
    assert any(not torch.equal(ckpt["ema"][k], ckpt["model"][k]) for k in state)  # EMA, not the raw weights
    # a folder works wherever a checkpoint does: the same network, the same outputs
    x, t, y = torch.randn(2, 3, 32, 32), torch.zeros(2), torch.tensor([0, 1])
    with torch.no_grad():
        a, b = model(x, t, y), model_from_checkpoint(run)(x, t, y)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert load_checkpoint(tmp_path / "x")["train_config"] == ckpt["train_config"]


def test_raw_weights_and_a_folder_that_is_not_an_export(run, tmp_path):
    export_checkpoint(run, tmp_path / "raw", use_ema=False)
    state, raw = from_pretrained(tmp_path / "raw").state_dict(), load_checkpoint(run)["model"]
    assert all(torch.equal(state[k], raw[k]) for k in raw)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "model.safetensors").write_bytes(b"")
    (tmp_path / "bad" / "config.json").write_text('{"format": "something-else"}')
    with pytest.raises(CheckpointError, match="not a dimr export"):
        load_checkpoint(tmp_path / "bad")
