"""The statistics of paired-seed comparisons: intervals, tests, multiplicity and power.

Everything here is a pure function of numbers (no records, no runs); :mod:`dimr.reproduction.study` applies it to
the claims. The conventions:

* an :class:`Interval` is a mean with its two-sided Student-t interval at ``level`` (n − 1 degrees of
  freedom), clipped to the range the quantity can take (an accuracy stays in [0, 1], a difference of
  accuracies in [−1, 1]);
* a paired comparison tests the mean of per-seed differences against 0 with the two-sided one-sample t
  test (:func:`paired_t_p`);
* several claims are corrected together with Holm's step-down method (:func:`holm`), which controls the
  family-wise error rate at α without assuming independence;
* an equivalence ("B matches A") is the two one-sided tests of Schuirmann (:func:`tost_p`) against a
  margin declared before the runs: equivalent when the 1 − 2α interval lies inside ±margin;
* :func:`seeds_for_power` is the number of paired seeds a two-sided t test needs to detect a given
  standardised effect with the stated power (noncentral t).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

__all__ = ["Interval", "t_interval", "format_interval", "sample_sd", "paired_t_p", "holm", "tost_p", "seeds_for_power"]


@dataclass(frozen=True)
class Interval:
    """Mean of ``n`` values with its two-sided Student-t interval ``[lo, hi]`` (NaN when n < 2)."""

    mean: float
    lo: float
    hi: float
    n: int

    @property
    def half(self) -> float:
        """Half-width of the interval (the wider side where clipping made it lopsided); 0 when every value
        is equal (the width is then rounding, not spread); NaN when n < 2."""
        h = max(self.hi - self.mean, self.mean - self.lo)
        if math.isnan(h):
            return h
        return h if h > 1e-9 else 0.0

    @property
    def clipped(self) -> bool:
        """Whether a bound of the quantity cut the interval (it is then shown as ``[lo, hi]``)."""
        return not math.isnan(self.half) and abs((self.hi - self.mean) - (self.mean - self.lo)) > 1e-9


def _t_ppf(p: float, dof: int) -> float:
    from scipy.stats import t

    return float(t.ppf(p, dof))


def t_interval(values: Sequence[float], level: float = 0.95,
               bounds: tuple[float, float] = (-math.inf, math.inf)) -> Interval:
    """Mean ± t_{(1+level)/2, n−1}·s/√n of ``values`` (``s`` the sample standard deviation), clipped to
    ``bounds``: ``[n] -> Interval``."""
    xs = [float(v) for v in values]
    n = len(xs)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    mean = sum(xs) / n
    if n < 2:
        return Interval(mean, math.nan, math.nan, n)
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    half = _t_ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n)
    lo, hi = bounds
    return Interval(mean, max(mean - half, lo), min(mean + half, hi), n)


def format_interval(iv: Interval, digits: int = 3) -> str:
    """``"0.52 ± 0.03"``; ``"0.98 [0.93, 1]"`` where a bound clipped it; the mean alone for one value;
    ``"—"`` for none (no n: callers say it once)."""
    if iv.n == 0:
        return "—"
    if iv.n < 2:
        return f"{iv.mean:.{digits}g}"
    if iv.clipped:
        return f"{iv.mean:.{digits}g} [{iv.lo:.2g}, {iv.hi:.2g}]"
    return f"{iv.mean:.{digits}g} ± {iv.half:.2g}"


def sample_sd(xs: Sequence[float]) -> float:
    """Sample standard deviation (n − 1); 0 where the spread is only the rounding of equal values, NaN for
    fewer than two values."""
    if len(xs) < 2:
        return math.nan
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))
    return 0.0 if sd <= 1e-12 * max(1.0, abs(m)) else sd


def _moments(differences: Sequence[float]) -> tuple[int, float, float] | None:
    """``(n, mean, sample s.d.)`` of the differences, or None with fewer than two."""
    xs = [float(v) for v in differences]
    return (len(xs), sum(xs) / len(xs), sample_sd(xs)) if len(xs) >= 2 else None


def paired_t_p(differences: Sequence[float]) -> float:
    """Two-sided p of the one-sample t test of mean(differences) = 0; NaN with fewer than two values,
    0 or 1 when every difference is equal (nonzero or zero)."""
    from scipy.stats import t

    if (moments := _moments(differences)) is None:
        return math.nan
    n, mean, sd = moments
    if sd == 0:
        return 0.0 if mean != 0 else 1.0
    return float(2 * t.sf(abs(mean) / (sd / math.sqrt(n)), n - 1))


def holm(pvalues: Mapping[str, float]) -> dict[str, float]:
    """Holm-adjusted p-values: sort the m p-values ascending, multiply the i-th (from 0) by m − i, take the
    running maximum, cap at 1. A NaN (a test that could not be run) is left NaN and not counted in m."""
    valid = sorted((p, k) for k, p in pvalues.items() if not math.isnan(p))
    m, out, running = len(valid), {k: math.nan for k in pvalues}, 0.0
    for i, (p, k) in enumerate(valid):
        running = max(running, min(1.0, (m - i) * p))
        out[k] = running
    return out


def tost_p(differences: Sequence[float], margin: float) -> float:
    """p of the two one-sided tests that the mean difference lies within ``(−margin, margin)``: the larger
    of the two one-sided p-values (equivalent at α when it is below α). NaN with fewer than two values."""
    from scipy.stats import t

    if (moments := _moments(differences)) is None:
        return math.nan
    n, mean, sd = moments
    if sd == 0:
        return 0.0 if abs(mean) < margin else 1.0
    se = sd / math.sqrt(n)
    p_low = t.sf((mean + margin) / se, n - 1)  # H0: mean ≤ −margin
    p_high = t.cdf((mean - margin) / se, n - 1)  # H0: mean ≥ +margin
    return float(max(p_low, p_high))


def seeds_for_power(effect: float, sd: float, alpha: float = 0.05, power: float = 0.8, max_n: int = 1000) -> float:
    """The smallest number of paired seeds n ≥ 2 at which a two-sided one-sample t test at ``alpha``
    detects a true mean difference ``effect`` (seed-to-seed standard deviation ``sd``) with probability
    ``power``; ``inf`` when not within ``max_n`` (or the effect is 0), NaN when sd is unknown."""
    from scipy.stats import nct, t

    if math.isnan(effect) or math.isnan(sd):
        return math.nan
    if sd == 0:
        return 2.0 if effect != 0 else math.inf
    d = abs(effect) / sd
    if d == 0:
        return math.inf
    for n in range(2, max_n + 1):
        crit = t.ppf(1 - alpha / 2, n - 1)
        nc = d * math.sqrt(n)
        # the far tail underflows to NaN in scipy's noncentral t for large effects: it is then 0
        far = float(nct.cdf(-crit, n - 1, nc))
        achieved = float(nct.sf(crit, n - 1, nc)) + (0.0 if math.isnan(far) else far)
        if achieved >= power:
            return float(n)
    return math.inf
