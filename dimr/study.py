"""The claims study: the paper's claims measured at a scale anyone can rerun, with seeds and intervals.

Each **configuration** is a tiny preset on a dataset. Every configuration trains from scratch for
:data:`STUDY_STEPS` optimiser steps of the CPU-scale recipe in :data:`STUDY_AMP` (the same training
images for every configuration, whatever it costs per image) once per seed of :data:`SEEDS` — the seed sets the
initialisation, the data order and the noise — and is evaluated on :data:`STUDY_SAMPLES` samples drawn
with that same seed. Using the same seeds for every configuration makes each comparison **paired**.

A **claim** says that one configuration (the treatment) beats another (the baseline), as the paper
reports it. For each metric the verdict is computed from the per-seed differences, signed so that a
positive difference means "better, in the paper's direction":

* mean difference ± the two-sided Student-t interval at :data:`LEVEL` (n − 1 degrees of freedom);
* **supported** when the whole interval is above 0, **contradicted** when it is below 0,
  **inconclusive** when it contains 0, and **not enough seeds** with fewer than two paired seeds.

Nothing here trains or evaluates: :mod:`dimr.plan` turns :data:`CONFIGS` × :data:`SEEDS` into
experiments of the ``small`` profile (``train-study-<config>-s<seed>``, ``eval-study-<config>-s<seed>``)
and this module reads their records back (:func:`collect`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from .evaluate.distortion import COARSE_DISTORTION_THRESHOLD
from .runs import DIVERGED_METRIC, list_runs, repo_root

__all__ = ["SEEDS", "STUDY_STEPS", "STUDY_AMP", "STUDY_SAMPLES", "LEVEL", "StudyConfig", "CONFIGS", "StudyMetric", "METRICS", "PCA",
           "Claim", "CLAIMS", "Interval", "Verdict", "t_interval", "format_interval", "paired_verdict", "experiment_names",
           "collect", "evaluated", "metric_values", "diverged_seeds", "judge", "progress"]

#: seeds of every configuration (init, data order, noise, and the evaluation's samples)
SEEDS = (0, 1, 2)
#: optimiser steps of every study run, about what DiMR-T/3R reaches in the CPU recipe's ten minutes
#: (the budget at which it meets the recipe's bar); fixed as steps, not time, so every configuration
#: sees the same training images whatever it costs per image
STUDY_STEPS = 4000
#: autocast precision of every study run, pinned so the recipe does not depend on the machine (``--amp
#: auto`` would pick fp32 on a CPU without native bf16); bf16 halves the step time on CPUs that have it
STUDY_AMP = "bf16"
#: generated samples per evaluation (spread evenly over the classes)
STUDY_SAMPLES = 1000
#: confidence level of every interval
LEVEL = 0.95


@dataclass(frozen=True)
class StudyConfig:
    """One configuration: ``preset`` trained on ``dataset``; ``slug`` names its runs."""

    slug: str
    preset: str
    dataset: str = "shapes"
    label: str = ""


def _configs(*items: StudyConfig) -> dict[str, StudyConfig]:
    return {c.slug: c for c in items}


_SAME_AS = {1: " (U-ViT-T/4)", 6: " (DiMR-T/3R)"}  # rows 1 and 6 are the tiny presets' own models and recipe
#: every configuration of the study, in the order the book shows them
CONFIGS = _configs(
    *(StudyConfig(f"row{r}", f"Table2-T/row{r}", label=f"Table 2 row {r}" + _SAME_AS.get(r, "")) for r in range(1, 7)),
    StudyConfig("uvit-t2", "U-ViT-T/2", label="U-ViT-T, patch 2"),
    StudyConfig("uvit-t1", "U-ViT-T/1", label="U-ViT-T, patch 1"),
    StudyConfig("dimr-t2r", "DiMR-T/2R", label="DiMR-T/2R"),
    StudyConfig("fmnist-row1", "Table2-T/row1", "fashion-mnist", "Table 2 row 1 (U-ViT-T/4), Fashion-MNIST"),
    StudyConfig("fmnist-row6", "Table2-T/row6", "fashion-mnist", "Table 2 row 6 (DiMR-T/3R), Fashion-MNIST"),
)


@dataclass(frozen=True)
class StudyMetric:
    """A metric of the evaluation record: the key (or, ending in ``_``, the key prefix of a
    classifier-named metric such as ``accuracy_shapes_classifier``), what it is, and its good direction."""

    key: str
    label: str
    higher_is_better: bool


METRICS = {
    "accuracy": StudyMetric("accuracy_", "classifier accuracy", True),
    "fid": StudyMetric("fid_", "FID (dataset classifier's features)", False),
    "flagged": StudyMetric("flagged_fraction_", "flagged fraction, p(class) < 0.2", False),
    "distortion_rate": StudyMetric("geometric_distortion_rate_coarse",
                                   f"distortion rate, 1 − IoU > {COARSE_DISTORTION_THRESHOLD:g}", False),
    "distortion_mean": StudyMetric("geometric_distortion_mean", "mean 1 − IoU", False),
}
#: Fig. 3/6's question asked of the adaLN-Zero configurations (Table 2 rows 2 and 3), whose evaluation
#: records it: how many principal components explain 90% of a block's γ or β along the sampling
#: trajectory (median over blocks and vectors). Not a quality metric, so no claim judges it; the paper
#: says two, for DiT-XL/2 (App. E).
PCA = StudyMetric("adaln_pca_components_90", "principal components for 90% of adaLN-Zero's γ/β variance", False)


@dataclass(frozen=True)
class Claim:
    """``treatment`` beats ``baseline`` (configuration slugs) on each of ``metrics``, as the paper says at
    ``where``; ``table2_rows`` are the (baseline, treatment) rows of the paper's Table 2 that print it
    (the book reads their FIDs from :mod:`dimr.tables`), ``None`` where the paper prints no such pair."""

    key: str
    title: str
    where: str
    baseline: str
    treatment: str
    metrics: tuple[str, ...]
    table2_rows: tuple[int, int] | None = None


_SHAPES = ("distortion_rate", "distortion_mean", "accuracy", "fid")
_REAL = ("accuracy", "fid", "flagged")
CLAIMS = (
    Claim("C1", "multi-resolution lowers distortion (U-ViT-T/4 → DiMR-T/3R)", "§1, §4.1, §5.3, §5.4", "row1", "row6",
          _SHAPES, (1, 6)),
    Claim("C1-fmnist", "multi-resolution on a real dataset (U-ViT-T/4 → DiMR-T/3R on Fashion-MNIST)", "§4.1, §5.4",
          "fmnist-row1", "fmnist-row6", _REAL, (1, 6)),
    Claim("C1-p2", "multi-resolution at about the same compute per image (U-ViT-T/2 → DiMR-T/2R)", "§4.1",
          "uvit-t2", "dimr-t2r", _SHAPES),
    Claim("C2", "TD-LN instead of adaLN-Zero in the multi-branch network", "§4.2, §5.4", "row3", "row4", _SHAPES,
          (3, 4)),
    Claim("C4", "GeGLU instead of the GELU MLP", "§4.3, §5.4", "row4", "row5", _SHAPES, (4, 5)),
    Claim("C3", "the multi-scale loss, eq. (8)", "§4.3, §5.4", "row5", "row6", _SHAPES, (5, 6)),
)


@dataclass(frozen=True)
class Interval:
    """Mean of ``n`` values with its two-sided Student-t interval ``[lo, hi]`` (NaN when n < 2)."""

    mean: float
    lo: float
    hi: float
    n: int

    @property
    def half(self) -> float:
        """Half-width of the interval; 0 when every value is equal (``hi − mean`` is then rounding, not
        spread); NaN when n < 2."""
        h = self.hi - self.mean
        if math.isnan(h):
            return h
        return h if h > 1e-9 else 0.0


@dataclass(frozen=True)
class Verdict:
    """A claim's verdict on one metric: the paired difference (positive = better in the paper's
    direction) and the word the interval earns."""

    claim: str
    metric: str
    difference: Interval
    verdict: str


def _t_quantile(p: float, dof: int) -> float:
    from scipy.stats import t

    return float(t.ppf(p, dof))


def t_interval(values: Sequence[float], level: float = LEVEL) -> Interval:
    """Mean ± t_{(1+level)/2, n−1}·s/√n of ``values`` (``s`` the sample standard deviation)."""
    xs = [float(v) for v in values]
    n = len(xs)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    mean = sum(xs) / n
    if n < 2:
        return Interval(mean, math.nan, math.nan, n)
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    half = _t_quantile(0.5 + level / 2, n - 1) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n)


def format_interval(iv: Interval, digits: int = 3) -> str:
    """``"0.52 ± 0.03"``, the mean alone for one value, ``"—"`` for none (no n: callers say it once)."""
    if iv.n == 0:
        return "—"
    return f"{iv.mean:.{digits}g}" + ("" if iv.n < 2 else f" ± {iv.half:.2g}")


def paired_verdict(baseline: Mapping[int, float], treatment: Mapping[int, float], higher_is_better: bool,
                   level: float = LEVEL) -> tuple[Interval, str]:
    """The paired difference over the seeds both have and its verdict (see the module docstring)."""
    sign = 1.0 if higher_is_better else -1.0
    seeds = sorted(set(baseline) & set(treatment))
    diff = t_interval([sign * (treatment[s] - baseline[s]) for s in seeds], level)
    if diff.n < 2:
        return diff, "not enough seeds"
    if diff.lo > 0:
        return diff, "supported"
    if diff.hi < 0:
        return diff, "contradicted"
    return diff, "inconclusive"


def experiment_names(slug: str, seed: int) -> tuple[str, str]:
    """``(train experiment, evaluation experiment)`` of one configuration and seed."""
    return f"train-study-{slug}-s{seed}", f"eval-study-{slug}-s{seed}"


def _value(metrics: Mapping[str, Mapping], m: StudyMetric) -> float | None:
    if not m.key.endswith("_"):
        return metrics[m.key]["value"] if m.key in metrics else None
    hits = [k for k in metrics if k.startswith(m.key) and k.endswith("_classifier")]
    return metrics[hits[0]]["value"] if len(hits) == 1 else None


def collect(runs_root: str | Path | None = None, profile: str = "small") -> dict[tuple[str, int], dict]:
    """``{(config slug, seed): record}`` of every complete study evaluation at ``profile``; each record
    holds ``values`` (metric name of :data:`METRICS`, or ``"pca"`` for :data:`PCA`, → value) and the run
    record as ``run``. A seed whose training diverged (its record holds :data:`~dimr.runs.DIVERGED_METRIC`)
    is an outcome too: no ``values``, its training record as ``run`` and the step as ``diverged_at_step``
    — it is done, and it drops out of every mean and paired difference."""
    root = Path(runs_root) if runs_root is not None else repo_root() / "runs"
    evals = {experiment_names(c, s)[1]: (c, s) for c in CONFIGS for s in SEEDS}
    trains = {experiment_names(c, s)[0]: (c, s) for c in CONFIGS for s in SEEDS}
    out, diverged = {}, {}
    for rec in list_runs(root):
        if rec.get("profile") != profile:
            continue
        if rec.get("experiment") in trains and DIVERGED_METRIC in rec.get("metrics", {}):
            step = int(rec["metrics"][DIVERGED_METRIC]["value"])
            diverged[trains[rec["experiment"]]] = {"values": {}, "run": rec, "diverged_at_step": step}
        key = evals.get(rec.get("experiment"))
        if key is None:
            continue
        values = {name: _value(rec.get("metrics", {}), m) for name, m in {**METRICS, "pca": PCA}.items()}
        out[key] = {"values": {k: v for k, v in values.items() if v is not None}, "run": rec}
    return {**diverged, **out}  # an evaluation on record wins


def evaluated(records: Mapping[tuple[str, int], dict]) -> dict[tuple[str, int], dict]:
    """The records of :func:`collect` that hold an evaluation (``rec["run"]`` is its run), without the seeds
    whose training diverged (their ``rec["run"]`` is the training run: there is no evaluation to read)."""
    return {k: rec for k, rec in records.items() if "diverged_at_step" not in rec}


def metric_values(records: Mapping[tuple[str, int], dict], slug: str, metric: str) -> dict[int, float]:
    """``{seed: value}`` of one configuration's metric in ``records`` (from :func:`collect`)."""
    return {seed: rec["values"][metric] for (c, seed), rec in records.items() if c == slug and metric in rec["values"]}


def diverged_seeds(records: Mapping[tuple[str, int], dict], slug: str) -> dict[int, int]:
    """``{seed: step}`` of the configuration's seeds whose training diverged (see :func:`collect`)."""
    return {seed: rec["diverged_at_step"] for (c, seed), rec in records.items() if c == slug and "diverged_at_step" in rec}


def judge(claim: Claim, records: Mapping[tuple[str, int], dict], level: float = LEVEL) -> list[Verdict]:
    """One :class:`Verdict` per metric of ``claim`` from the recorded runs."""
    out = []
    for name in claim.metrics:
        diff, word = paired_verdict(metric_values(records, claim.baseline, name),
                                    metric_values(records, claim.treatment, name),
                                    METRICS[name].higher_is_better, level)
        out.append(Verdict(claim.key, name, diff, word))
    return out


def progress(records: Mapping[tuple[str, int], dict]) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """``(done, left)``: the (configuration, seed) pairs with and without a recorded outcome (a complete
    evaluation, or a training run that diverged)."""
    pairs = [(c, s) for c in CONFIGS for s in SEEDS]
    return [p for p in pairs if p in records], [p for p in pairs if p not in records]
