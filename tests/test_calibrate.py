"""Equal steps from a calibration (dimr.reproduction.calibrate): the arithmetic, and a rate measured without traces."""
import pytest

from dimr.reproduction.calibrate import equal_steps, measure_rate


def test_equal_steps_fit_the_budget_for_the_slowest_and_the_fastest_together():
    rates = {"fast": 4.0, "slow": 1.0}  # steps/s
    n = equal_steps(rates, minutes_each=1.0)  # 120 s in all: n/4 + n/1 ≤ 120 → n = 96 → 90
    assert n == 90
    assert n / 4.0 + n / 1.0 <= 120.0
    busy = equal_steps({"fast": 0.4, "slow": 0.1}, minutes_each=1.0)  # a machine ten times slower
    assert busy == 10 and busy < n  # fewer steps, still equal for both
    assert equal_steps({"a": 1e-6}, minutes_each=1.0) == 10  # never below one logging interval
    with pytest.raises(ValueError, match="positive, finite rate"):
        equal_steps({"a": 0.0}, 1.0)


def test_a_rate_is_measured_on_the_run_itself_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    rate = measure_rate("DiMR-T/3R", steps=8, batch_size=2, amp="none")
    assert rate > 0
    assert [p.name for p in tmp_path.iterdir()] == ["cache"]  # no checkpoint or log left in the working folder
