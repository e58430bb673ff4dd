"""The run plan: which experiments regenerate which table, at each profile.

:func:`build_plan` returns it — experiment name → :class:`Experiment`, the parameterised notebook
(``notebooks/train.py`` or ``notebooks/evaluate.py``) with its papermill parameters per profile.
:mod:`dimr.reproduction.reproduce` executes it; nothing here runs anything.  Training runs feed no table (their
record holds loss curves, throughput and a sample grid); each evaluation run feeds the table row of the
model it evaluates.  A parameter left out (or ``None``) takes the preset's recipe.

* **Table 2** (the ablation path U-ViT → DiMR): ``smoke`` and ``cpu`` use the CPU-scale rows
  ``Table2-T/row1..6`` on the offline shapes (32×32, 8 classes); ``paper`` uses the full rows
  ``Table2/row1..6`` on ImageNet 64×64 with Table 4's recipe; at ``small`` the rows are configurations
  of the claims study, with its seeds.
* **Tables 5 / 1 / 6 / 7** (``paper`` only): the DiMR models with Table 4's settings exactly — batch,
  iterations, learning rate, warm-up and sampler steps come from the presets, never retyped here.
* **The 10-minute CPU runs** (``small``): DiMR-T/3R and U-ViT-T/4 trained for 10 minutes on 2 cores with
  every setting at its default (the README's first example), then evaluated.
* **The claims study** (``small``; :mod:`dimr.reproduction.study`): every configuration × seed, trained for
  :data:`~dimr.reproduction.study.STUDY_STEPS` steps of the tiny recipe and evaluated on
  :data:`~dimr.reproduction.study.STUDY_SAMPLES` samples with the run's seed; learning-curve runs train on and are
  evaluated at every length of :data:`~dimr.reproduction.study.CURVE_STEPS`. Its records are read by the Evidence
  chapter and by Table 2's measured column, which shows their mean ± interval per row.
* At the ``cpu`` profile (``make book``) only Table 2's two ends are trained, for the same number of
  steps, as many as a calibration on the reader's machine says fit :data:`CPU_MINUTES` each
  (:data:`CALIBRATION`); rows 2–5 come from the committed ``small`` study.

Paths under ``checkpoints/`` are outside git; ``data/…`` paths of the ``paper`` profile are where a
user puts ImageNet (folders) or its SD-VAE latents (``python -m dimr encode-latents``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Mapping

from ..data.fashion_mnist import DEFAULT_ROOT as FASHION_MNIST_ROOT
from ..presets import get_preset
from ..bookkeeping import CHECKPOINT_NAME, snapshot_name
from . import paper, study
from .runs import PROFILES

__all__ = ["Experiment", "build_plan", "TABLE2_ROWS", "PAPER_MODELS", "CPU_SCALE", "SMALL_EVALUATE", "CPU_MINUTES", "CALIBRATION",
           "CPU_ROWS", "STUDY_SMOKE", "rows_of"]


@dataclass(frozen=True)
class Experiment:
    """One planned experiment; each (experiment, profile) is one run, ``runs/<name>/<profile>/``.

    Args:
        name: folder name under ``runs/`` (``"train-table2-row6"``).
        notebook: the Jupytext py:percent notebook, relative to the repository root.
        parameters: profile → papermill parameters; a profile absent here is not run for it.
        feeds: table rows its metrics stand beside (``"table2/row6"``, ``"table5/row3"``; see
            :mod:`dimr.reproduction.tables`).
        preset_parameter: the parameter naming the preset, copied into the run record.
        description: one line for the book's Experiments page.
        reads: the experiment whose run this one reads (an evaluation's training run); where that run
            diverged (:func:`dimr.reproduction.runs.diverged_at`) there is nothing to read and this one is not run.
    """

    name: str
    notebook: str
    parameters: Mapping[str, Mapping[str, Any]]
    feeds: tuple[str, ...] = ()
    preset_parameter: str = "preset"
    description: str = ""
    reads: str = ""

    def __post_init__(self):
        unknown = set(self.parameters) - set(PROFILES)
        if unknown:
            raise ValueError(f"experiment {self.name!r}: unknown profiles {sorted(unknown)}; use {PROFILES}")
        if not self.name or self.name.startswith(".") or "/" in self.name:
            raise ValueError(f"invalid experiment name {self.name!r}")


TABLE2_ROWS = range(1, 7)
#: DiMR models trained at the ``paper`` profile: preset → (dataset, data root, table rows fed)
PAPER_MODELS = {
    "DiMR-M/3R": ("imagenet", "data/imagenet/train", ("5",)),
    "DiMR-L/3R": ("imagenet", "data/imagenet/train", ("5",)),
    "DiMR-XL/2R": ("latents", "data/latents256", ("1a", "6")),
    "DiMR-XL/3R": ("latents", "data/latents512", ("1b", "7")),
}
_TINY_STEPS = get_preset("DiMR-T/3R").recipe.sampling_steps
#: minutes of 2 CPU cores each learning model gets, on average, at the ``cpu`` profile (``make book``)
CPU_MINUTES = 7.0
#: the ``cpu`` profile's calibration (notebooks/calibrate.py): Table 2's two ends train the same number of
#: steps, as many as fit CPU_MINUTES each on this machine now (:mod:`dimr.reproduction.calibrate`)
CALIBRATION = "calibrate-table2"
#: the wall-time guard of a calibrated ``cpu`` training: far above CPU_MINUTES, so that load cannot make the
#: two ends of Table 2 train different numbers of steps
GUARD_MINUTES = 5 * CPU_MINUTES
#: what the cheap profiles train: (steps, global batch, grid samples, sampler steps) and evaluation size;
#: a batch of ``None`` takes the recipe's. Table 2's ``small`` runs are the claims study's.
CPU_SCALE = {
    "smoke": dict(train=dict(steps=3, batch_size=8, num_grid_samples=16, sample_steps=3),
                  evaluate=dict(num_samples=32, steps=3, batch_size=32)),
    # `make book` trains the two ends of Table 2 (U-ViT-T/4 and DiMR-T/3R) long enough to learn, within
    # 30 minutes of a 2-core laptop in all; rows 2-5 come from the committed `small` study
    # equal steps from the calibration. The time limit guards only a calibration gone wrong, never the load: a
    # machine that gets busier after the calibration trains longer, not less; Table 2 shows every cell's steps
    "cpu": dict(train=dict(steps=1_000_000, steps_from=CALIBRATION, batch_size=None, time_limit_minutes=GUARD_MINUTES,
                           num_grid_samples=32, sample_steps=_TINY_STEPS),
                evaluate=dict(num_samples=300, steps=_TINY_STEPS, batch_size=100)),
}
#: how every ``small`` evaluation of a tiny model runs (the claims study sets its own seed)
SMALL_EVALUATE = dict(num_samples=1000, steps=_TINY_STEPS, batch_size=250)
#: Table 2 rows trained at the ``cpu`` profile (the others: ``smoke``, ``small``, ``paper`` only)
CPU_ROWS = (1, 6)
#: the one study configuration and seed that the ``smoke`` plan also runs (every notebook parameter the study
#: uses, a seed other than 0 included, exercised in seconds; the other runs would add minutes to the tests)
STUDY_SMOKE = ("row6", study.SEEDS[-1])


def build_plan() -> dict[str, Experiment]:
    """The whole plan, in execution order: experiment name → :class:`Experiment`."""
    plan: dict[str, Experiment] = {}
    for exp in (*_table2(), *_paper_models(), *_ten_minute_runs(), *_claims_study()):
        if exp.name in plan:
            raise ValueError(f"experiment {exp.name!r} is planned twice")
        plan[exp.name] = exp
    return plan


def _paper_train(preset: str, dataset: str, data_root: str, exp: str) -> dict:
    """Table 4's recipe for ``preset``: lr, warm-up and EMA are left out, so the training loop takes them
    from the preset's recipe; 8 processes per node, fp16 autocast and activation checkpointing as the
    official code."""
    r = get_preset(preset).recipe
    return dict(preset=preset, dataset=dataset, data_root=data_root, checkpoint_dir=f"checkpoints/{exp}/paper",
                steps=r.iterations, batch_size=r.batch_size, nproc=8, amp="fp16", grad_checkpointing=True,
                sample_steps=r.sampling_steps, num_grid_samples=64, resume=True)


def _paper_evaluate(preset: str, exp_train: str) -> dict:
    r = get_preset(preset).recipe
    return dict(checkpoint=f"checkpoints/{exp_train}/paper/latest.pt", num_samples=50_000, steps=r.sampling_steps,
                batch_size=250, inception_weights=".cache/torch/hub/checkpoints/weights-inception-2015-12-05-6726825d.pth")


def _table2() -> Iterator[Experiment]:
    presets = [f"Table2-T/row{r}" for r in CPU_ROWS]
    yield Experiment(CALIBRATION, "notebooks/calibrate.py",
                     {"smoke": dict(presets=presets, minutes_each=0.05, calibration_steps=4),
                      "cpu": dict(presets=presets, minutes_each=CPU_MINUTES)},
                     description="how many steps Table 2's two ends can both train in the cpu profile's budget")
    for row in TABLE2_ROWS:
        train_exp, eval_exp = f"train-table2-row{row}", f"eval-table2-row{row}"
        tiny, full = f"Table2-T/row{row}", f"Table2/row{row}"
        profiles = {p: s for p, s in CPU_SCALE.items() if p != "cpu" or row in CPU_ROWS}  # small: the study
        train_params = {p: dict(preset=tiny, checkpoint_dir=f"checkpoints/{train_exp}/{p}", **s["train"])
                        for p, s in profiles.items()}
        train_params["paper"] = _paper_train(full, "imagenet", "data/imagenet/train", train_exp)
        yield Experiment(train_exp, "notebooks/train.py", train_params,
                         description=f"Table 2 row {row}: train {tiny} (CPU scale) or {full} (paper)")
        eval_params = {p: dict(checkpoint=f"checkpoints/{train_exp}/{p}/latest.pt", **s["evaluate"])
                       for p, s in profiles.items()}
        eval_params["paper"] = _paper_evaluate(full, train_exp)
        yield Experiment(eval_exp, "notebooks/evaluate.py", eval_params, feeds=(f"table2/row{row}",),
                         preset_parameter="checkpoint",
                         description=f"Table 2 row {row}: evaluate the model of {train_exp}")


def rows_of(preset: str, tables_: tuple[str, ...]) -> tuple[str, ...]:
    """``("table5/row3", …)``: every printed row of ``tables_`` that this repo implements as ``preset``."""
    return tuple(f"table{key}/row{r['row']}" for key in tables_ for r in paper.paper_rows(key)
                 if paper.implementation(key, r) == preset)


def _paper_models() -> Iterator[Experiment]:
    for preset, (dataset, root, table_keys) in PAPER_MODELS.items():
        slug = preset.lower().replace("/", "-")
        yield Experiment(f"train-{slug}", "notebooks/train.py",
                         {"paper": _paper_train(preset, dataset, root, f"train-{slug}")},
                         description=f"{preset} with Table 4's settings")
        yield Experiment(f"eval-{slug}", "notebooks/evaluate.py", {"paper": _paper_evaluate(preset, f"train-{slug}")},
                         feeds=rows_of(preset, table_keys), preset_parameter="checkpoint",
                         description=f"FID-50K of {preset}")


def _ten_minute_runs() -> Iterator[Experiment]:
    """The newcomer's path (README): ``python -m dimr train --preset P --out D --time-limit 10``, nothing
    else, then ``python -m dimr evaluate``; recorded at ``small`` for DiMR-T/3R and U-ViT-T/4."""
    for preset, slug in (("DiMR-T/3R", "dimr-t3r"), ("U-ViT-T/4", "uvit-t4")):
        train_exp, eval_exp = f"train-{slug}-10min", f"eval-{slug}-10min"
        yield Experiment(
            train_exp, "notebooks/train.py",
            {"smoke": dict(preset=preset, checkpoint_dir=f"checkpoints/{train_exp}/smoke", **CPU_SCALE["smoke"]["train"]),
             "small": dict(preset=preset, checkpoint_dir=f"checkpoints/{train_exp}/small", steps=1_000_000, batch_size=None,
                           time_limit_minutes=10.0, num_grid_samples=64, sample_steps=_TINY_STEPS)},
            description=f"{preset} on the offline shapes for 10 minutes of 2 CPU cores, every setting at its default")
        yield Experiment(
            eval_exp, "notebooks/evaluate.py",
            {"smoke": dict(checkpoint=f"checkpoints/{train_exp}/smoke/latest.pt", **CPU_SCALE["smoke"]["evaluate"]),
             "small": dict(checkpoint=f"checkpoints/{train_exp}/small/latest.pt", **SMALL_EVALUATE)},
            preset_parameter="checkpoint", description=f"classifier accuracy, FID (shapes classifier), rejection and "
                                                       f"distortion of the 10-minute {preset} run")


def _claims_study() -> Iterator[Experiment]:
    """``train-study-<config>-s<seed>`` and ``eval-study-<config>-s<seed>`` for every configuration and
    seed of :mod:`dimr.reproduction.study` at the ``small`` profile (and :data:`STUDY_SMOKE` at ``smoke``); a run that
    trains past :data:`~dimr.reproduction.study.STUDY_STEPS` (a learning curve) keeps a snapshot at every length its
    configuration evaluates, and each other length has its evaluation, ``eval-study-<config>-s<seed>-k<steps>``."""
    for slug, conf in study.CONFIGS.items():
        root = "" if conf.dataset == "shapes" else FASHION_MNIST_ROOT
        what = conf.label or conf.preset
        for seed in conf.seeds:
            train_exp, _ = study.experiment_names(slug, seed)
            snapshots = conf.snapshots(seed)
            common = dict(preset=conf.preset, dataset=conf.dataset, data_root=root, seed=seed)
            if conf.prediction is not None:
                common["prediction"] = conf.prediction
            small = dict(common, checkpoint_dir=f"checkpoints/{train_exp}/small", steps=conf.train_steps(seed),
                         batch_size=None, amp=study.STUDY_AMP, num_grid_samples=64, sample_steps=_TINY_STEPS)
            if len(snapshots) > 1:
                small["snapshot_steps"] = list(snapshots)
            train_params = {"small": small}
            if (slug, seed) == STUDY_SMOKE:
                train_params["smoke"] = dict(common, checkpoint_dir=f"checkpoints/{train_exp}/smoke",
                                             **CPU_SCALE["smoke"]["train"])
            yield Experiment(train_exp, "notebooks/train.py", train_params,
                             description=f"claims study: {what} on {conf.dataset}, seed {seed}"
                                         + (f", to step {snapshots[-1]:,} with snapshots" if len(snapshots) > 1 else ""))
            for steps in snapshots:
                _, eval_exp = study.experiment_names(slug, seed, steps)
                ckpt = CHECKPOINT_NAME if steps == snapshots[-1] else snapshot_name(steps)
                eval_params = {"small": dict(checkpoint=f"checkpoints/{train_exp}/small/{ckpt}", seed=seed,
                                             **{**SMALL_EVALUATE, "num_samples": study.STUDY_SAMPLES})}
                if (slug, seed) == STUDY_SMOKE:
                    eval_params["smoke"] = dict(checkpoint=f"checkpoints/{train_exp}/smoke/latest.pt", seed=seed,
                                                **CPU_SCALE["smoke"]["evaluate"])
                at = "" if steps == study.STUDY_STEPS else f" at step {steps:,}"
                yield Experiment(eval_exp, "notebooks/evaluate.py", eval_params, preset_parameter="checkpoint",
                                 description=f"claims study: evaluate {what} on {conf.dataset}, seed {seed}{at}",
                                 reads=train_exp)
