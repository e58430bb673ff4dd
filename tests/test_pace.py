"""A run far slower than this machine's usual rate says so (dimr.pace); the logic, not timings."""
import json

from dimr import pace


def test_the_usual_rate_is_the_median_of_the_last_runs(tmp_path):
    path = tmp_path / "pace.json"
    key = pace.pace_key("Test CPU", "DiMR-T/3R", 16, "bf16", True, 2)
    assert pace.expected(key, path) is None
    for rate in (100.0, 210.0, 190.0, 200.0, 205.0, 195.0):
        pace.remember(key, rate, path)
    assert json.loads(path.read_text())[key] == [210.0, 190.0, 200.0, 205.0, 195.0]  # the last five
    assert pace.expected(key, path) == 200.0
    other = pace.pace_key("Test CPU", "DiMR-T/3R", 16, "none", True, 2)  # another precision: another key
    assert pace.expected(other, path) is None


def test_the_note_names_the_rate_and_the_expectation():
    assert pace.slow_note(23.0, 200.0) == "another process is using the CPU: 23 img/s, expected ≈200"
    assert pace.slow_note(120.0, 200.0) is None  # a fair share of two cores is half: not called out
    assert pace.slow_note(23.0, None) is None


def test_a_watch_skips_the_first_window_and_remembers_only_runs_that_were_not_mostly_slow(tmp_path):
    path = tmp_path / "pace.json"
    key = "k"
    pace.remember(key, 200.0, path)
    watch = pace.PaceWatch(key, path)
    assert watch.note(5.0) is None  # the first window holds the compile
    assert watch.note(190.0) is None and watch.note(30.0).startswith("another process")
    out = watch.finish(150.0, complete=True)
    assert out["slow_windows"] == 1 and out["logged_windows"] == 2 and out["slow_note"] is None
    assert pace.expected(key, path) == 175.0  # remembered: median of 200 and 150
    busy = pace.PaceWatch(key, path)
    for rate in (5.0, 20.0, 25.0, 180.0):
        busy.note(rate)
    out = busy.finish(40.0, complete=True)
    assert out["slow_note"] == "another process is using the CPU: 40 img/s, expected ≈175"
    assert pace.expected(key, path) == 175.0  # a mostly slow run does not teach the machine a slow rate
    assert pace.PaceWatch(None, path).finish(10.0, complete=True)["usual_images_per_s"] is None


def test_a_training_run_reports_its_pace(tmp_path, monkeypatch):
    from dimr.train import TrainConfig, train

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cfg = TrainConfig(preset="DiMR-T/3R", dataset_size=64, batch_size=4, warmup_steps=2, log_every=1, progress=False,
                      amp="none", compile="off")
    first = train(TrainConfig(**{**cfg.__dict__, "steps": 4}), tmp_path / "a")
    assert first["usual_images_per_s"] is None and first["logged_windows"] == 3
    second = train(TrainConfig(**{**cfg.__dict__, "steps": 4}), tmp_path / "b")
    assert second["usual_images_per_s"] == first["images_per_s"]  # the first run taught it
