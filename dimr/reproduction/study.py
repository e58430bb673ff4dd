"""The claims study: the paper's claims measured at a scale anyone can rerun, with seeds and intervals.

Each **configuration** is a tiny preset on a dataset. Every configuration trains from scratch for
:data:`STUDY_STEPS` optimiser steps of the CPU-scale recipe in :data:`STUDY_AMP` (the same training
images for every configuration, whatever it costs per image) once per seed of its ``seeds`` — the seed
sets the initialisation, the data order and the noise — and is evaluated on :data:`STUDY_SAMPLES`
samples drawn with that same seed. Using the same seeds for every configuration makes each comparison
**paired**. Some configurations also train on to :data:`CURVE_STEPS`'s end for :data:`CURVE_SEEDS`,
keeping a snapshot at every step of their ``curve`` (learning curves, the compute-matched arm); an
**arm** is a configuration at one length, ``"row1"`` (its :data:`STUDY_STEPS`) or ``"row1@8000"``.

A **claim** says that one arm (the treatment) beats another (the baseline). Everything that decides it
was declared here before the runs that decide it (the ``Declared`` comments): the seeds, one **primary
metric** per claim, Holm's correction over every claim's primary test at :data:`ALPHA`, and the margin
of the one equivalence claim. The verdict on the primary metric is the claim's verdict; other metrics
are descriptive. :mod:`dimr.reproduction.stats` holds the arithmetic; :func:`scorecard` applies it.

Nothing here trains or evaluates: :mod:`dimr.reproduction.plan` turns :data:`CONFIGS` into experiments of the
``small`` profile (``train-study-<config>-s<seed>``, ``eval-study-<config>-s<seed>[-k<steps>]``) and
this module reads their records back (:func:`collect`), checking each against the settings above.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from ..evaluate.distortion import COARSE_DISTORTION_THRESHOLD
from ..provenance import repo_root
from .runs import DIVERGED_METRIC, list_runs
from .stats import Interval, format_interval, holm, paired_t_p, sample_sd, seeds_for_power, t_interval, tost_p

__all__ = ["SEEDS", "STUDY_STEPS", "STUDY_AMP", "STUDY_SAMPLES", "LEVEL", "ALPHA", "POWER", "CURVE_SEEDS",
           "CURVE_STEPS", "compute_ratio", "matched_steps", "StudyConfig", "CONFIGS", "arm", "MATCHED", "resolve", "arms", "StudyMetric",
           "METRICS", "PCA", "Claim", "CLAIMS", "Interval", "Verdict", "t_interval", "format_interval",
           "paired_verdict", "experiment_names", "collect", "evaluated", "rejected", "metric_values",
           "paired_values", "diverged_seeds", "judge", "ClaimResult", "family", "family_size", "scorecard", "progress", "code_states"]

#: Declared (issue 26, before its runs): eight seeds for every configuration that decides a claim; seeds
#: 0–2 were recorded first, 3–7 decide with them (a power analysis from seeds 0–2 is in the Evidence chapter)
SEEDS = tuple(range(8))
#: the first three seeds, which the configurations added for secondary questions (Fashion-MNIST, ε, patch 1) keep
FIRST_SEEDS = SEEDS[:3]
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
#: Declared: family-wise error rate of the claims' primary tests, held by Holm's method within each of two
#: families: the paper's claims (confirmatory) and the questions this study adds (``Claim.beyond``)
ALPHA = 0.05
#: the power the "seeds needed" column asks for
POWER = 0.8
#: Declared: seeds whose runs train on past STUDY_STEPS for learning curves (three per curve)
CURVE_SEEDS = (5, 6, 7)
#: Declared: lengths at which a curve is evaluated (snapshots of one run per seed)
CURVE_STEPS = (1000, 2000, 4000, 8000)


@functools.cache
def compute_ratio(treatment: str = "Table2-T/row6", baseline: str = "Table2-T/row1") -> float:
    """Training compute per image of one preset over another: their forward GMACs (a training step is
    forward plus backward, three forwards' worth for both)."""
    from ..presets import get_preset
    from ..profile import count_gmacs

    return count_gmacs(get_preset(treatment).model) / count_gmacs(get_preset(baseline).model)


def matched_steps() -> int:
    """Steps at which U-ViT-T/4 (row 1) has had DiMR-T/3R's (row 6) training compute of
    :data:`STUDY_STEPS` steps: ``round(STUDY_STEPS · compute_ratio())``."""
    return round(STUDY_STEPS * compute_ratio())


@dataclass(frozen=True)
class StudyConfig:
    """One configuration: ``preset`` trained on ``dataset`` for each of ``seeds``; ``slug`` names its
    runs. ``prediction`` overrides the recipe's target (None keeps it); ``curve`` lists further lengths at
    which the runs of :data:`CURVE_SEEDS` are evaluated (they train to the longest); ``beyond`` says what
    it adds to the paper (empty for the paper's own rows and models)."""

    slug: str
    preset: str
    dataset: str = "shapes"
    label: str = ""
    seeds: tuple[int, ...] = SEEDS
    prediction: str | None = None
    curve: tuple[int, ...] = ()
    matched: bool = False
    beyond: str = ""

    def snapshots(self, seed: int) -> tuple[int, ...]:
        """Steps of ``seed``'s run that are evaluated: :data:`STUDY_STEPS`, and for curve seeds the curve's
        (with :func:`matched_steps` where ``matched``: the compute-matched arm)."""
        extra = (*self.curve, *((matched_steps(),) if self.matched else ())) if seed in CURVE_SEEDS else ()
        return tuple(sorted({STUDY_STEPS, *extra}))

    def train_steps(self, seed: int) -> int:
        """How long ``seed``'s run trains: its longest snapshot."""
        return self.snapshots(seed)[-1]


def _configs(*items: StudyConfig) -> dict[str, StudyConfig]:
    return {c.slug: c for c in items}


_SAME_AS = {1: " (U-ViT-T/4)", 6: " (DiMR-T/3R)"}  # rows 1 and 6 are the tiny presets' own models and recipe
_CURVE = CURVE_STEPS
#: every configuration of the study, in the order the book shows them
CONFIGS = _configs(
    *(StudyConfig(f"row{r}", f"Table2-T/row{r}", label=f"Table 2 row {r}" + _SAME_AS.get(r, ""),
                  curve=_CURVE if r in (1, 5, 6) else (), matched=r == 1) for r in range(1, 7)),
    StudyConfig("uvit-t2", "U-ViT-T/2", label="U-ViT-T, patch 2", curve=_CURVE),
    StudyConfig("uvit-t1", "U-ViT-T/1", label="U-ViT-T, patch 1", seeds=FIRST_SEEDS),
    StudyConfig("dimr-t2r", "DiMR-T/2R", label="DiMR-T/2R"),
    StudyConfig("fmnist-row1", "Table2-T/row1", "fashion-mnist", "Table 2 row 1 (U-ViT-T/4), Fashion-MNIST",
                seeds=FIRST_SEEDS),
    StudyConfig("fmnist-row6", "Table2-T/row6", "fashion-mnist", "Table 2 row 6 (DiMR-T/3R), Fashion-MNIST",
                seeds=FIRST_SEEDS),
    StudyConfig("row4-tdln", "Table2-T/row4-TDLN", label="Table 2 row 4 with TD-LN",
                beyond="row 4's TD-RMSNorm (the released code) replaced by TD-LN (the paper's text)"),
    StudyConfig("loo-adaln", "DiMR-T/3R-adaLN", label="DiMR-T/3R, adaLN-Zero instead of TD norms", curve=_CURVE,
                beyond="leave-one-out: the time conditioning"),
    StudyConfig("loo-mlp", "DiMR-T/3R-MLP", label="DiMR-T/3R, GELU MLP instead of GeGLU", curve=_CURVE,
                beyond="leave-one-out: the MLP"),
    StudyConfig("loo-1branch", "DiMR-T/1R", label="DiMR-T/1R: one branch at about DiMR-T/3R's GMACs", curve=_CURVE,
                beyond="leave-one-out: the multi-resolution branches"),
    *(StudyConfig(f"eps-row{r}", f"Table2-T/row{r}", label=f"Table 2 row {r}, ε-prediction", seeds=FIRST_SEEDS,
                  prediction="eps", beyond="the paper's ε target instead of the CPU recipe's x₀")
      for r in (1, 5, 6)),
)


def arm(slug: str, steps: int = STUDY_STEPS) -> str:
    """The name of a configuration at a length: ``"row1"`` at :data:`STUDY_STEPS`, else ``"row1@8000"``."""
    return slug if steps == STUDY_STEPS else f"{slug}@{steps}"


#: the length of an arm named ``"<slug>@matched"``: :func:`matched_steps` (computed when first read, not at import)
MATCHED = "matched"


def resolve(name: str) -> str:
    """An arm's name with ``@matched`` replaced by its steps: ``"row1@matched"`` → ``"row1@5108"``."""
    slug, _, steps = name.partition("@")
    return arm(slug, matched_steps()) if steps == MATCHED else name


def _split_arm(name: str) -> tuple[str, int]:
    slug, _, steps = name.partition("@")
    return slug, int(steps) if steps else STUDY_STEPS


def arms() -> dict[str, tuple[str, int, tuple[int, ...]]]:
    """Every arm of the study: name → (configuration slug, steps, seeds that have it)."""
    out = {}
    for slug, conf in CONFIGS.items():
        for seed in conf.seeds:
            for steps in conf.snapshots(seed):
                name = arm(slug, steps)
                out.setdefault(name, (slug, steps, ()))
                out[name] = (slug, steps, out[name][2] + (seed,))
    return out


@dataclass(frozen=True)
class StudyMetric:
    """A metric of the evaluation record: the key (or, ending in ``_``, the key prefix of a
    classifier-named metric such as ``accuracy_shapes_classifier``), what it is, its good direction, and
    the range it can take (intervals are clipped to it; its worst end is what a diverged seed scores)."""

    key: str
    label: str
    higher_is_better: bool
    bounds: tuple[float, float] = (-math.inf, math.inf)

    @property
    def worst(self) -> float:
        """The worst value the metric can take (infinite for an unbounded one)."""
        return self.bounds[0] if self.higher_is_better else self.bounds[1]


_UNIT = (0.0, 1.0)
METRICS = {
    "accuracy": StudyMetric("accuracy_", "classifier accuracy", True, _UNIT),
    "fid": StudyMetric("fid_", "FID (dataset classifier's features)", False, (0.0, math.inf)),
    "flagged": StudyMetric("flagged_fraction_", "flagged fraction, p(class) < 0.2", False, _UNIT),
    "distortion_rate": StudyMetric("geometric_distortion_rate_coarse",
                                   f"distortion rate, 1 − IoU > {COARSE_DISTORTION_THRESHOLD:g}", False, _UNIT),
    "distortion_mean": StudyMetric("geometric_distortion_mean", "mean 1 − IoU", False, _UNIT),
}
#: Fig. 3/6's question asked of the adaLN-Zero configurations (Table 2 rows 2 and 3), whose evaluation
#: records it: how many principal components explain 90% of a block's γ or β along the sampling
#: trajectory (median over blocks and vectors). Not a quality metric, so no claim judges it; the paper
#: says two, for DiT-XL/2 (App. E).
PCA = StudyMetric("adaln_pca_components_90", "principal components for 90% of adaLN-Zero's γ/β variance", False)


@dataclass(frozen=True)
class Claim:
    """``treatment`` beats ``baseline`` (arms, see :func:`arm`) as the paper says at ``where`` (or, with
    ``beyond``, a question this study adds). ``primary`` is the declared metric whose Holm-adjusted test
    is the verdict; ``metrics`` are shown beside it. ``equivalence_margin`` adds Schuirmann's test that
    the two match within ± that much of the primary metric. ``table2_rows`` are the (baseline, treatment)
    rows of the paper's Table 2 that print the pair (the book reads their FIDs from :mod:`dimr.reproduction.tables`)."""

    key: str
    title: str
    where: str
    baseline: str
    treatment: str
    metrics: tuple[str, ...]
    table2_rows: tuple[int, int] | None = None
    primary: str = "distortion_mean"
    equivalence_margin: float | None = None
    beyond: bool = False
    changes: str = ""


_SHAPES = ("distortion_mean", "distortion_rate", "accuracy", "fid")
_REAL = ("fid", "accuracy", "flagged")
#: Declared: the claims, in the paper's order, then the questions this study adds; each one's primary
#: metric is mean 1 − IoU (distortion, measurable exactly on the shapes) except on Fashion-MNIST, which
#: has no templates: there FID. C2's equivalence margin is 0.02 mean 1 − IoU (about a tenth of rows 3
#: and 4's level on seeds 0–2, set before seeds 3–7 ran).
CLAIMS = (
    Claim("C1", "the whole DiMR design lowers distortion (U-ViT-T/4 → DiMR-T/3R)", "§1, §4.1, §5.3, §5.4", "row1",
          "row6", _SHAPES, (1, 6), changes="branches, TD norms, GeGLU, multi-scale loss, ConvNeXt blocks at once"),
    Claim("C1-p2", "the whole DiMR design at about the same compute per image (U-ViT-T/2 → DiMR-T/2R)", "§4.1",
          "uvit-t2", "dimr-t2r", _SHAPES, changes="as C1, with 16×16 tokens on both sides"),
    Claim("C1-fmnist", "the whole DiMR design on a real dataset (U-ViT-T/4 → DiMR-T/3R on Fashion-MNIST)",
          "§4.1, §5.4", "fmnist-row1", "fmnist-row6", _REAL, (1, 6), primary="fid", changes="as C1"),
    Claim("C2", "TD-LN matches adaLN-Zero at a fraction of the parameters (Table 2 row 3 → 4)", "§4.2, §5.4", "row3",
          "row4", _SHAPES, (3, 4), equivalence_margin=0.02,
          changes="adaLN-Zero → TD norm, and LN → RMSNorm (the released code's TD-RMSNorm)"),
    Claim("C3", "the multi-scale loss, eq. (8) (Table 2 row 5 → 6)", "§4.3, §5.4", "row5", "row6", _SHAPES, (5, 6),
          changes="final-branch loss → eq. (8) over every branch (x₀ targets in this recipe)"),
    Claim("C4", "GeGLU instead of the GELU MLP (Table 2 row 4 → 5)", "§4.3, §5.4", "row4", "row5", _SHAPES, (4, 5),
          changes="4× GELU MLP → 2× GeGLU"),
    Claim("C2-TDLN", "TD-LN instead of adaLN-Zero, one change (row 3 → row 4 with TD-LN)", "§4.2", "row3",
          "row4-tdln", _SHAPES, beyond=True, changes="adaLN-Zero → TD-LN; LN kept"),
    Claim("R1-2", "adaLN-Zero instead of the time token (Table 2 row 1 → 2)", "§5.4", "row1", "row2", _SHAPES, (1, 2),
          beyond=True, changes="time token → adaLN-Zero"),
    Claim("R2-3", "multi-branch instead of one branch, adaLN-Zero on both (Table 2 row 2 → 3)", "§5.4", "row2", "row3",
          _SHAPES, (2, 3), beyond=True, changes="U-ViT → three branches (ConvNeXt above the Transformer)"),
    Claim("L-TD", "leave one out: TD norms (DiMR-T/3R with adaLN-Zero → DiMR-T/3R)", "§4.2", "loo-adaln", "row6",
          _SHAPES, beyond=True, changes="adaLN-Zero + LN → TD-RMSNorm"),
    Claim("L-GLU", "leave one out: GeGLU (DiMR-T/3R with GELU MLP → DiMR-T/3R)", "§4.3", "loo-mlp", "row6", _SHAPES,
          beyond=True, changes="4× GELU MLP → 2× GeGLU"),
    Claim("L-MR", "leave one out: the branches (DiMR-T/1R → DiMR-T/3R)", "§4.1", "loo-1branch", "row6", _SHAPES,
          beyond=True, changes="one branch → three, with the multi-scale loss the branches make possible"),
    Claim("L-MR-alone", "multi-resolution alone (DiMR-T/1R → Table 2 row 5, both one loss)", "§4.1", "loo-1branch",
          "row5", _SHAPES, beyond=True, changes="one branch → three; final-branch loss on both"),
    Claim("C1-matched", "the whole design at equal training compute (U-ViT-T/4 trained longer → DiMR-T/3R)",
          "§4.1", f"row1@{MATCHED}", "row6", _SHAPES, beyond=True,
          changes="as C1, the baseline trained for the same FLOPs"),
    Claim("C1-eps", "C1 under the paper's ε target", "§5.4", "eps-row1", "eps-row6", _SHAPES, beyond=True,
          changes="as C1, both trained to predict ε"),
    Claim("C3-eps", "C3 under the paper's ε target", "§4.3", "eps-row5", "eps-row6", _SHAPES, beyond=True,
          changes="as C3, both trained to predict ε"),
)


@dataclass(frozen=True)
class Verdict:
    """A claim's verdict on one metric: the paired difference (positive = better in the paper's
    direction), the word its unadjusted interval earns, and the test's p-value (two-sided, unadjusted)."""

    claim: str
    metric: str
    difference: Interval
    verdict: str
    p: float = math.nan


def paired_verdict(baseline: Mapping[int, float], treatment: Mapping[int, float], higher_is_better: bool,
                   level: float = LEVEL, bounds: tuple[float, float] = (-math.inf, math.inf)) -> tuple[Interval, str]:
    """The paired difference over the seeds both have (clipped to ``bounds``, the range a difference of the
    metric can take) and the word its ``level`` interval earns: supported (above 0), contradicted (below
    0), inconclusive, or not enough seeds (fewer than two pairs). Unadjusted: :func:`scorecard` corrects."""
    sign = 1.0 if higher_is_better else -1.0
    seeds = sorted(set(baseline) & set(treatment))
    diff = t_interval([sign * (treatment[s] - baseline[s]) for s in seeds], level, bounds)
    if diff.n < 2:
        return diff, "not enough seeds"
    if diff.lo > 0:
        return diff, "supported"
    if diff.hi < 0:
        return diff, "contradicted"
    return diff, "inconclusive"


def experiment_names(slug: str, seed: int, steps: int = STUDY_STEPS) -> tuple[str, str]:
    """``(train experiment, evaluation experiment)`` of one configuration and seed; the evaluation of
    another length than :data:`STUDY_STEPS` is ``eval-study-<slug>-s<seed>-k<steps>``."""
    k = "" if steps == STUDY_STEPS else f"-k{steps}"
    return f"train-study-{slug}-s{seed}", f"eval-study-{slug}-s{seed}{k}"


def _value(metrics: Mapping[str, Mapping], m: StudyMetric) -> float | None:
    if not m.key.endswith("_"):
        return metrics[m.key]["value"] if m.key in metrics else None
    hits = [k for k in metrics if k.startswith(m.key) and k.endswith("_classifier")]
    return metrics[hits[0]]["value"] if len(hits) == 1 else None


def _check(train: Mapping | None, evaluation: Mapping | None, conf: StudyConfig, seed: int, steps: int) -> list[str]:
    """What in a pair of run records disagrees with the study's settings (empty: none). Old records that
    predate a recorded field are checked on what they hold."""
    from ..presets import get_preset

    bad = []
    if train is not None:
        p = train.get("parameters", {})
        want = {"preset": conf.preset, "dataset": conf.dataset, "seed": seed, "amp": STUDY_AMP,
                "steps": conf.train_steps(seed)}
        bad += [f"training {k} = {p.get(k)!r}, the study says {v!r}" for k, v in want.items() if p.get(k) != v]
        if p.get("batch_size") not in (None, 0):
            bad.append(f"training batch {p.get('batch_size')}, the study uses the recipe's")
        if p.get("prediction") != conf.prediction:
            bad.append(f"training prediction {p.get('prediction')!r}, the study says {conf.prediction!r}")
        if steps != STUDY_STEPS or conf.train_steps(seed) != STUDY_STEPS:
            if steps not in (p.get("snapshot_steps") or ()) and steps != p.get("steps"):
                bad.append(f"training kept no snapshot at step {steps}")
    if evaluation is not None:
        p, m = evaluation.get("parameters", {}), evaluation.get("metrics", {})
        want = {"seed": seed, "num_samples": STUDY_SAMPLES, "steps": get_preset(conf.preset).recipe.sampling_steps}
        bad += [f"evaluation {k} = {p.get(k)!r}, the study says {v!r}" for k, v in want.items() if p.get(k) != v]
        if "checkpoint_step" in m and int(m["checkpoint_step"]["value"]) != steps:
            bad.append(f"evaluated a checkpoint of step {int(m['checkpoint_step']['value'])}, not {steps}")
    return bad


def _notes(train: Mapping | None, evaluation: Mapping | None) -> list[str]:
    """What a reader should know of a valid record: a resumed training, a dirty tree, a pair whose
    training and evaluation ran on different code."""
    notes = []
    if train and "resumed_from_step" in train.get("metrics", {}):
        notes.append(f"training resumed from step {int(train['metrics']['resumed_from_step']['value'])}")
    for what, rec in (("training", train), ("evaluation", evaluation)):
        if rec and rec.get("git", {}).get("dirty"):
            notes.append(f"{what} ran on a modified tree")
    if train and evaluation and train.get("git", {}).get("commit") != evaluation.get("git", {}).get("commit"):
        notes.append("training and evaluation ran on different commits")
    return notes


def collect(runs_root: str | Path | None = None, profile: str = "small") -> dict[tuple[str, int], dict]:
    """``{(arm, seed): record}`` of every study outcome at ``profile``, each checked against the study's
    settings. A record holds ``values`` (metric name of :data:`METRICS`, or ``"pca"`` for :data:`PCA`, →
    value), the evaluation's run record as ``run``, the training's as ``train``, ``notes`` (resumed,
    modified tree, mixed commits) and ``problems``: a record that disagrees with the settings (other steps,
    precision, samples, seed, preset…) keeps its problems and no ``values``, so it counts nowhere
    (:func:`rejected` lists them). A seed whose training diverged is an outcome too: no ``values``, its
    training record as ``run``, and the step as ``diverged_at_step`` (:func:`metric_values` scores it as a
    failure)."""
    root = Path(runs_root) if runs_root is not None else repo_root() / "runs"
    trains, evals = {}, {}
    for slug, conf in CONFIGS.items():
        for seed in conf.seeds:
            for steps in conf.snapshots(seed):
                train_exp, eval_exp = experiment_names(slug, seed, steps)
                trains[train_exp] = (slug, seed)
                evals[eval_exp] = (slug, seed, steps)
    train_runs, eval_runs = {}, {}
    for rec in list_runs(root):
        if rec.get("profile") != profile:
            continue
        if rec.get("experiment") in trains:
            train_runs[trains[rec["experiment"]]] = rec
        elif rec.get("experiment") in evals:
            eval_runs[evals[rec["experiment"]]] = rec
    out = {}
    for (slug, seed), train in train_runs.items():
        if DIVERGED_METRIC in train.get("metrics", {}):
            conf = CONFIGS[slug]
            for steps in conf.snapshots(seed):
                step = int(train["metrics"][DIVERGED_METRIC]["value"])
                if step <= steps:  # snapshots before the divergence are still outcomes of their own
                    out[(arm(slug, steps), seed)] = {"values": {}, "run": train, "train": train,
                                                     "diverged_at_step": step, "notes": [], "problems": []}
    for (slug, seed, steps), rec in eval_runs.items():
        train = train_runs.get((slug, seed))
        problems = _check(train, rec, CONFIGS[slug], seed, steps)
        values = {name: _value(rec.get("metrics", {}), m) for name, m in {**METRICS, "pca": PCA}.items()}
        out[(arm(slug, steps), seed)] = {"values": {} if problems else {k: v for k, v in values.items() if v is not None},
                                         "run": rec, "train": train, "notes": _notes(train, rec),
                                         "problems": problems}
    return out


def evaluated(records: Mapping[tuple[str, int], dict]) -> dict[tuple[str, int], dict]:
    """The records of :func:`collect` that hold a valid evaluation (``rec["run"]`` is its run): without the
    seeds whose training diverged (no evaluation to read) and the records :func:`rejected` lists."""
    return {k: rec for k, rec in records.items() if "diverged_at_step" not in rec and not rec.get("problems")}


def rejected(records: Mapping[tuple[str, int], dict]) -> dict[tuple[str, int], list[str]]:
    """``{(arm, seed): problems}``: the records that disagree with the study's settings and count nowhere."""
    return {k: rec["problems"] for k, rec in records.items() if rec.get("problems")}


def metric_values(records: Mapping[tuple[str, int], dict], slug: str, metric: str,
                  failures: bool = False) -> dict[int, float]:
    """``{seed: value}`` of one arm's metric in ``records`` (from :func:`collect`). With ``failures``, a
    seed whose training diverged scores the metric's worst value (:attr:`StudyMetric.worst`; for an
    unbounded metric, the worst value any valid record of the study reached) instead of being left out."""
    slug = resolve(slug)
    out = {seed: rec["values"][metric] for (c, seed), rec in records.items() if c == slug and metric in rec["values"]}
    if failures:
        lost = diverged_seeds(records, slug)
        if lost:
            m = METRICS[metric]
            worst = m.worst
            if math.isinf(worst):
                seen = [rec["values"][metric] for rec in records.values() if metric in rec["values"]]
                worst = (min if m.higher_is_better else max)(seen) if seen else math.nan
            out.update({seed: worst for seed in lost})
    return out


def diverged_seeds(records: Mapping[tuple[str, int], dict], slug: str) -> dict[int, int]:
    """``{seed: step}`` of the arm's seeds whose training diverged (see :func:`collect`)."""
    slug = resolve(slug)
    return {seed: rec["diverged_at_step"] for (c, seed), rec in records.items() if c == slug and "diverged_at_step" in rec}


def paired_values(claim: Claim, records: Mapping[tuple[str, int], dict], metric: str) -> list[float]:
    """The per-seed differences of ``metric`` for ``claim`` (positive = better in the paper's direction), over
    the seeds both arms have, a diverged seed scored as a failure (:func:`metric_values`)."""
    base = metric_values(records, claim.baseline, metric, failures=True)
    treat = metric_values(records, claim.treatment, metric, failures=True)
    sign = 1.0 if METRICS[metric].higher_is_better else -1.0
    return [sign * (treat[s] - base[s]) for s in sorted(set(base) & set(treat))]


def declared_seeds(claim: Claim) -> int:
    """How many paired seeds the study declared for ``claim``: the seeds both of its arms are planned with.
    A verdict on fewer is an interim look (the declared test is the one at this many)."""
    planned = arms()
    return len(set(planned[resolve(claim.baseline)][2]) & set(planned[resolve(claim.treatment)][2]))


def _difference_bounds(metric: str) -> tuple[float, float]:
    lo, hi = METRICS[metric].bounds
    return (lo - hi, hi - lo)


def judge(claim: Claim, records: Mapping[tuple[str, int], dict], level: float = LEVEL) -> list[Verdict]:
    """One unadjusted :class:`Verdict` per metric of ``claim`` (primary first), diverged seeds scored as
    failures; :func:`scorecard` gives the claim's adjusted verdict."""
    out = []
    for name in claim.metrics:
        diffs = paired_values(claim, records, name)
        diff = t_interval(diffs, level, _difference_bounds(name))
        word = ("not enough seeds" if diff.n < 2 else "supported" if diff.lo > 0 else
                "contradicted" if diff.hi < 0 else "inconclusive")
        out.append(Verdict(claim.key, name, diff, word, paired_t_p(diffs)))
    return out


@dataclass(frozen=True)
class ClaimResult:
    """One line of the scorecard: ``claim``'s primary-metric difference, its unadjusted and Holm-adjusted
    p, the verdict, the seeds a test at :data:`ALPHA` would need for :data:`POWER` at the observed effect
    (``seeds_needed``), the equivalence test's adjusted p where the claim has a margin, and the diverged
    seeds of either arm (each scored as a failure)."""

    claim: Claim
    difference: Interval
    p: float
    p_holm: float
    verdict: str
    seeds_needed: float
    equivalence_p: float = math.nan
    equivalence_p_holm: float = math.nan
    equivalence: str = ""
    diverged: tuple[str, ...] = ()
    declared: int = 0  # the paired seeds declared for it (:func:`declared_seeds`); fewer recorded = interim

    @property
    def interim(self) -> bool:
        """Whether the verdict rests on fewer paired seeds than were declared (it may still change)."""
        return self.difference.n < self.declared


def _word(diff: Interval, p_adj: float, needed: float) -> str:
    if diff.n < 2 or math.isnan(p_adj):
        return "not enough seeds"
    if p_adj < ALPHA:
        return "supported" if diff.mean > 0 else "contradicted"
    return "inconclusive (underpowered)" if needed > diff.n else "inconclusive"


def family(claim: Claim, claims: Sequence[Claim] = CLAIMS) -> list[Claim]:
    """The claims corrected together with ``claim``: the paper's, or the questions this study adds."""
    return [c for c in claims if c.beyond == claim.beyond]


def family_size(claim: Claim, claims: Sequence[Claim] = CLAIMS) -> int:
    """How many tests Holm corrects ``claim``'s among: its family's primary and equivalence tests."""
    return sum(1 + (c.equivalence_margin is not None) for c in family(claim, claims))


def scorecard(records: Mapping[tuple[str, int], dict], claims: Sequence[Claim] = CLAIMS) -> list[ClaimResult]:
    """Every claim's verdict on its primary metric, Holm-adjusted over the primary (and equivalence) tests
    of its :func:`family` at :data:`ALPHA`. ``seeds_needed`` asks for :data:`POWER` at the strictest level
    Holm can apply, α/m (m = :func:`family_size`); "underpowered" marks an inconclusive claim whose
    observed effect needs more seeds than it has."""
    tests, rows = {}, {}
    for c in claims:
        diffs = paired_values(c, records, c.primary)
        tests[c.key] = paired_t_p(diffs)
        if c.equivalence_margin is not None:
            tests[c.key + "≈"] = tost_p(diffs, c.equivalence_margin)
        rows[c.key] = diffs
    adjusted = {}
    for beyond in (False, True):
        keys = {c.key for c in claims if c.beyond == beyond}
        adjusted.update(holm({k: p for k, p in tests.items() if k.rstrip("≈") in keys}))
    out = []
    for c in claims:
        diffs = rows[c.key]
        diff = t_interval(diffs, LEVEL, _difference_bounds(c.primary))
        needed = seeds_for_power(diff.mean, sample_sd(diffs), ALPHA / family_size(c, claims), POWER)
        lost = tuple(f"{side} seed {s} diverged at step {step:,}" for side, slug in (("baseline", c.baseline),
                     ("treatment", c.treatment)) for s, step in sorted(diverged_seeds(records, slug).items()))
        eq = {}
        if c.equivalence_margin is not None:
            p_eq = adjusted[c.key + "≈"]
            eq = dict(equivalence_p=tests[c.key + "≈"], equivalence_p_holm=p_eq,
                      equivalence=("not enough seeds" if math.isnan(p_eq) else
                                   f"equivalent within ±{c.equivalence_margin:g}" if p_eq < ALPHA else
                                   f"not shown equivalent within ±{c.equivalence_margin:g}"))
        out.append(ClaimResult(c, diff, tests[c.key], adjusted[c.key], _word(diff, adjusted[c.key], needed), needed,
                               diverged=lost, declared=declared_seeds(c), **eq))
    return out


def progress(records: Mapping[tuple[str, int], dict]) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """``(done, left)``: the (arm, seed) pairs with and without a recorded outcome (a valid evaluation, or
    a training run that diverged before that length)."""
    pairs = [(name, s) for name, (_, _, seeds) in arms().items() for s in seeds]
    ok = {k for k, rec in records.items() if not rec.get("problems")}
    return [p for p in pairs if p in ok], [p for p in pairs if p not in ok]


def code_states(records: Mapping[tuple[str, int], dict]) -> dict[str, list[tuple[str, int]]]:
    """``{commit: [(arm, seed), …]}``: which code each recorded evaluation (or diverged training) ran."""
    out: dict[str, list[tuple[str, int]]] = {}
    for key, rec in sorted(records.items()):
        out.setdefault(rec["run"].get("git", {}).get("commit", "?"), []).append(key)
    return out
