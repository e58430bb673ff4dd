"""Paired-seed statistics (dimr.reproduction.stats) against textbook values and scipy's own tests."""
import math

import pytest
from scipy import stats as sp

from dimr.reproduction.stats import format_interval, holm, paired_t_p, seeds_for_power, t_interval, tost_p


def test_t_interval_matches_the_textbook():
    iv = t_interval([1.0, 2.0, 3.0])  # mean 2, s = 1, t(0.975, 2) = 4.3027
    assert iv.n == 3 and iv.mean == pytest.approx(2.0)
    assert iv.hi - iv.mean == pytest.approx(4.302653 / math.sqrt(3), rel=1e-5)
    assert iv.mean - iv.lo == pytest.approx(iv.hi - iv.mean) and not iv.clipped
    wide = t_interval([1.0, 2.0, 3.0], level=0.99)
    assert wide.lo < iv.lo and wide.hi > iv.hi
    one = t_interval([5.0])
    assert one.mean == 5.0 and math.isnan(one.lo) and math.isnan(one.hi)
    assert t_interval([]).n == 0


def test_an_interval_stays_inside_what_the_quantity_can_take():
    iv = t_interval([0.95, 1.0, 0.9], bounds=(0.0, 1.0))  # accuracy near 1: the t interval would pass 1
    assert iv.hi == 1.0 and iv.lo > 0.7 and iv.clipped
    assert iv.half == pytest.approx(iv.mean - iv.lo)  # the wider side
    assert format_interval(iv).endswith(", 1]") and "±" not in format_interval(iv)
    assert format_interval(t_interval([0.4, 0.5, 0.6], bounds=(0.0, 1.0))).count("±") == 1


def test_the_paired_t_p_value_is_scipys():
    diffs = [0.1, 0.25, -0.05, 0.3, 0.12]
    assert paired_t_p(diffs) == pytest.approx(sp.ttest_1samp(diffs, 0.0).pvalue)
    assert paired_t_p([0.2, 0.2, 0.2]) == 0.0 and paired_t_p([0.0, 0.0]) == 1.0
    assert math.isnan(paired_t_p([0.3]))


def test_holm_steps_down_and_keeps_the_order():
    adj = holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.2, "e": math.nan})
    # m = 4 valid tests: 0.01·4, max(0.03·3, 0.04), max(0.04·2, 0.09), max(0.2·1, 0.09)
    assert adj["a"] == pytest.approx(0.04) and adj["c"] == pytest.approx(0.09)
    assert adj["b"] == pytest.approx(0.09) and adj["d"] == pytest.approx(0.2)
    assert math.isnan(adj["e"])
    assert holm({"x": 0.6, "y": 0.7}) == {"x": 1.0, "y": 1.0}  # capped at 1


def test_tost_calls_equivalent_only_when_the_interval_fits_the_margin():
    tight = [0.001, -0.002, 0.0015, 0.0005, -0.001, 0.002]
    assert tost_p(tight, margin=0.02) < 0.001
    assert tost_p(tight, margin=0.0005) > 0.05  # a margin inside the noise: not shown equivalent
    far = [0.05, 0.06, 0.055, 0.052]
    assert tost_p(far, margin=0.02) > 0.5  # clearly different: not equivalent
    # the larger one-sided p equals scipy's one-sided test against the nearer margin
    xs = [0.01, -0.005, 0.012, 0.003]
    upper = sp.ttest_1samp(xs, 0.02, alternative="less").pvalue
    lower = sp.ttest_1samp(xs, -0.02, alternative="greater").pvalue
    assert tost_p(xs, 0.02) == pytest.approx(max(upper, lower))


def test_seeds_for_power_grows_with_noise_and_strictness():
    n = seeds_for_power(effect=0.1, sd=0.1)  # d = 1: the textbook paired t needs 10 at α = 0.05, 80% power
    assert n == 10
    assert seeds_for_power(0.1, 0.2) > n and seeds_for_power(0.1, 0.1, alpha=0.005) > n
    assert seeds_for_power(0.5, 0.01) == 2  # a huge effect: two seeds (the fewest a t test can use)
    assert seeds_for_power(0.0, 0.1) == math.inf and math.isnan(seeds_for_power(0.1, math.nan))
