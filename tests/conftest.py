import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"

# Tests never write into the home folder and never reach the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A run folder with a one-step DiMR-T/3R checkpoint on the shapes (``latest.pt``), for tests that
    sample or evaluate and do not care about image quality."""
    from dimr.train import TrainConfig, train

    run = tmp_path_factory.mktemp("tiny-run")
    train(TrainConfig(preset="DiMR-T/3R", steps=1, batch_size=2, dataset_size=16, warmup_steps=1, log_every=1,
                      progress=False), run)
    return run
