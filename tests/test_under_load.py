"""scripts/under_load.py: what it reads from a clone's records (no make, no timing)."""
import importlib.util
import json
from pathlib import Path

import pytest

from dimr.reproduction.runs import recording

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def under_load():
    spec = importlib.util.spec_from_file_location("under_load", ROOT / "scripts" / "under_load.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _record(clone: Path, exp: str, profile: str, metrics: dict, steps: int | None = None) -> None:
    with recording(clone / "runs", exp, profile, profile=profile, repo=ROOT) as rec:
        for k, v in metrics.items():
            rec.add_metric(k, v, k, f"shapes 32×32; model trained {steps:,} steps" if steps else "shapes")


def _fake_book(clone: Path, steps_row6: int, monkeypatch, under_load) -> dict:
    _record(clone, "calibrate-table2", "cpu", {"equal_steps": 1000})
    for row, steps in ((1, 1000), (6, steps_row6)):
        _record(clone, f"train-table2-row{row}", "cpu", {"steps": steps})
        _record(clone, f"eval-table2-row{row}", "cpu", {"accuracy_shapes_classifier": 0.5}, steps)
        summary = clone / "checkpoints" / f"train-table2-row{row}" / "cpu" / "summary.json"
        summary.parent.mkdir(parents=True)
        summary.write_text(json.dumps({"threads": 1, "threads_reason": "1 of 2 cores free", "slow_note": None,
                                       "unrelated": 3}))
    monkeypatch.setattr(under_load, "_make", lambda *a, **k: (0, 12.5))
    return under_load.book(clone, 0, clone / "log.txt")


def test_book_reads_each_table2_cell_steps_and_how_its_training_ran(tmp_path, monkeypatch, under_load):
    got = _fake_book(tmp_path, 1000, monkeypatch, under_load)
    assert got["table2_steps"] == {"eval-table2-row1": 1000, "eval-table2-row6": 1000} and got["equal_steps"]
    assert got["runs"]["calibrate-table2"]["metrics"] == {"equal_steps": 1000}
    assert got["runs"]["train-table2-row6"]["run"] == {"threads": 1, "threads_reason": "1 of 2 cores free",
                                                      "slow_note": None}
    assert got["wall_s"] == 12.5 and got["exit_status"] == 0 and not got["book_built"]


def test_book_says_when_the_two_ends_trained_different_steps(tmp_path, monkeypatch, under_load):
    got = _fake_book(tmp_path, 863, monkeypatch, under_load)
    assert got["table2_steps"]["eval-table2-row6"] == 863 and not got["equal_steps"]


def test_a_missing_record_is_none_not_equal(tmp_path, monkeypatch, under_load):
    monkeypatch.setattr(under_load, "_make", lambda *a, **k: (2, 1.0))
    got = under_load.book(tmp_path, 0, tmp_path / "log.txt")
    assert got["runs"]["eval-table2-row1"] is None and not got["equal_steps"] and got["exit_status"] == 2
