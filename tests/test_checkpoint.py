"""Checkpoints load with weights_only=True: a .pt that would run code is refused; old ones upgrade."""
import subprocess
import sys

import numpy as np
import pytest
import torch

from dimr.checkpoint import (FORMAT, CheckpointError, UnsafeCheckpointError, load_checkpoint, safe_load,
                             upgrade_checkpoint)
from dimr.train import TrainConfig, train

TINY = dict(preset="DiMR-T/3R", dataset_size=32, batch_size=4, warmup_steps=2, log_every=1, progress=False, seed=5,
            amp="none", compile="off")


class _RunsCode:
    """What an attacker puts in a .pt: unpickling it calls open(marker, "w")."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_file_that_would_run_code_is_refused_and_runs_nothing(tmp_path):
    marker, bad = tmp_path / "pwned", tmp_path / "latest.pt"
    torch.save({"format": FORMAT, "version": 2, "model": _RunsCode(str(marker))}, bad)
    with pytest.raises(UnsafeCheckpointError, match="upgrade-checkpoint"):
        load_checkpoint(bad)
    assert not marker.exists()
    with pytest.raises(UnsafeCheckpointError):
        safe_load(bad)
    assert not marker.exists()


def test_a_version_1_checkpoint_upgrades_in_one_command_and_resumes_exactly(tmp_path):
    train(TrainConfig(**TINY, steps=2), tmp_path / "run")
    train(TrainConfig(**TINY, steps=4), tmp_path / "straight")
    path = tmp_path / "run" / "latest.pt"
    # rewrite it as version 1 wrote it: numpy's RNG state as get_state()'s tuple (an ndarray pickle)
    obj = torch.load(path, weights_only=True)
    np_state = obj["rng"]["numpy"]
    obj["rng"]["numpy"] = (np_state["bit_generator"], np_state["key"].numpy().astype(np.uint32), np_state["pos"],
                           np_state["has_gauss"], np_state["cached_gaussian"])
    obj["version"] = 1
    torch.save(obj, path)
    with pytest.raises(UnsafeCheckpointError, match=f"python -m dimr upgrade-checkpoint {path}"):
        load_checkpoint(path)
    res = subprocess.run([sys.executable, "-m", "dimr", "upgrade-checkpoint", str(path)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert load_checkpoint(path)["version"] == 2
    train(TrainConfig(**TINY, steps=4), tmp_path / "run", resume=True)
    a, b = load_checkpoint(path), load_checkpoint(tmp_path / "straight" / "latest.pt")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])  # the RNG state survived


def test_upgrade_refuses_what_is_not_a_dimr_checkpoint(tmp_path):
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(CheckpointError, match="not a dimr checkpoint"):
        upgrade_checkpoint(other)
    res = subprocess.run([sys.executable, "-m", "dimr", "upgrade-checkpoint", str(other)], capture_output=True, text=True)
    assert res.returncode == 2 and "not a dimr checkpoint" in res.stderr
    assert torch.load(other, weights_only=True)["weights"].shape == (2,)  # left as it was


def test_a_classifier_file_that_would_run_code_is_refused(tmp_path):
    from dimr.evaluate.classifier import FORMAT as CLASSIFIER, load_classifier

    marker, bad = tmp_path / "pwned", tmp_path / "classifier.pt"
    torch.save({"format": CLASSIFIER, "config": _RunsCode(str(marker))}, bad)
    with pytest.raises(ValueError, match="not a safe classifier file"):
        load_classifier(bad)
    assert not marker.exists()
