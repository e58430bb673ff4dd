"""Run records: what an executed experiment leaves behind, written so that it is never half-true.

A run lives in ``runs/<experiment>/<run>/`` and holds ``run.json`` (the record), the executed
notebook, ``metrics.json`` (if the notebook measured anything) and small figures.  The record says
which preset and profile ran, with which parameters, on which commit and hardware, for how long, and
what was measured — each metric with the label and scale a reader needs to read it.

Atomicity (the invariant every reader relies on): **a run is complete exactly when
``<run>/run.json`` exists and says ``"status": "complete"``.**

* Every JSON file is written to a temporary sibling and moved into place with ``os.replace``: a
  reader sees the old file or the new one, never a truncated one.
* A run is staged in a hidden sibling directory ``runs/<experiment>/.<run>.partial/`` (hidden folders
  are invisible to the book and to :func:`list_runs`); only after the notebook has finished and
  ``run.json`` is written there is the whole directory renamed to ``runs/<experiment>/<run>/``.
* A run that fails is moved aside to ``runs/<experiment>/.<run>.failed/`` with
  ``"status": "failed"`` and the error, for debugging; nothing complete-looking is left behind.

The schema (``SCHEMA_VERSION`` 1) of ``run.json``::

    {"schema": 1, "status": "complete", "experiment": str, "run": str, "profile": str,
     "preset": str | null, "parameters": {...}, "feeds": ["table2/row6", ...],
     "notebook": "train.ipynb", "git": {"commit": str | null, "dirty": bool | null},
     "hardware": {"cpu": str, "cpu_count": int, "gpu": str | null, "torch": str, "python": str},
     "started": ISO-8601, "finished": ISO-8601, "wall_time_s": float,
     "scale": str, "metrics": {name: {"value": float, "label": str, "scale": str}}}

Metric names that stand beside the paper's columns: ``fid``, ``fid_wo_cfg``, ``is``, ``precision``,
``recall`` (see :mod:`dimr.reproduction.tables`).  Anything else is kept and shown on the run's own page.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

from ..files import atomic_write_json
from ..provenance import git_info, hardware_info, mark_external

__all__ = [
    "SCHEMA_VERSION", "COMPLETE", "FAILED", "RUN_FILE", "METRICS_FILE", "PROFILES", "COMMITTED_PROFILES",
    "is_committed_profile",
    "RunRecord", "metric", "write_metrics", "read_metrics", "staging_dir", "run_beside", "failed_dir",
    "recording", "load_run", "list_runs", "is_complete", "DIVERGED_METRIC", "diverged_at", "trained_steps",
]

SCHEMA_VERSION = 1
COMPLETE = "complete"
FAILED = "failed"
RUN_FILE = "run.json"
METRICS_FILE = "metrics.json"

#: The scales a parameterised notebook runs at, cheapest first (what each runs: :mod:`dimr.reproduction.plan`).
PROFILES = ("smoke", "cpu", "small", "paper")
#: Runs of these profiles are costly and are committed to git; the cheap ones (smoke, cpu) are
#: regenerated on every machine (``make book``) and stay out of git.
COMMITTED_PROFILES = frozenset({"small", "paper"})
#: the metric a training run records when its loss stopped being finite (the step): a recorded outcome
DIVERGED_METRIC = "training_diverged_at_step"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def metric(value: float, label: str, scale: str) -> dict:
    """One measured number as a run stores it: its value, what it is (``"FID (shapes classifier)"``)
    and the scale it was measured at (``"32×32 shapes, 2k steps, 1k samples, CPU"``)."""
    if not label or not scale:
        raise ValueError("a metric needs a label and a scale: a number without them cannot be read")
    return {"value": float(value), "label": str(label), "scale": str(scale)}


def write_metrics(run_dir: str | os.PathLike, metrics: Mapping[str, Mapping[str, Any]]) -> None:
    """What a notebook calls to hand its measurements to the run record (``<run_dir>/metrics.json``).

    ``metrics`` maps a name to :func:`metric` dicts; :func:`recording` folds the file into ``run.json``."""
    for name, m in metrics.items():
        if not {"value", "label", "scale"} <= set(m):
            raise ValueError(f"metric {name!r} needs value, label and scale; build it with dimr.reproduction.runs.metric()")
    atomic_write_json(Path(run_dir) / METRICS_FILE, {k: dict(v) for k, v in metrics.items()})


def read_metrics(run_dir: str | os.PathLike) -> dict:
    p = Path(run_dir) / METRICS_FILE
    return json.loads(p.read_text(encoding="utf-8")) if p.exists() else {}


def staging_dir(root: str | os.PathLike, experiment: str, run: str) -> Path:
    """Where a run is built before it is complete: ``<root>/<experiment>/.<run>.partial``."""
    return Path(root) / experiment / f".{run}.partial"


def run_beside(run_dir: str | os.PathLike, experiment: str, run: str) -> Path:
    """The published folder of another experiment's run in the same runs root as ``run_dir`` (a notebook's
    staged :func:`staging_dir`): ``<root>/<experiment>/<run>``. A notebook that reads an earlier run of the
    plan finds it so, wherever the plan's runs root is."""
    return Path(run_dir).parent.parent / experiment / run


def portable_record(text: str, staging: str | os.PathLike, removed: str | os.PathLike) -> str:
    """A record's JSON text with the paths a reader can open: ``staging`` (``<exp>/.<run>.partial``) becomes
    the published ``<exp>/<run>``, files under ``removed`` (a scratch folder deleted after the run) are
    marked ``<not kept>/name``, and an absolute path outside the repository keeps only its file name,
    marked ``<external>/name``."""
    staging = Path(staging)
    final = staging.parent / staging.name[1:].removesuffix(".partial")
    text = re.sub(re.escape(Path(removed).as_posix()) + r'(?=["/])', "<not kept>", text)
    return mark_external(text.replace(staging.as_posix(), final.as_posix()))


def failed_dir(root: str | os.PathLike, experiment: str, run: str) -> Path:
    """Where a failed run is kept for debugging: ``<root>/<experiment>/.<run>.failed``."""
    return Path(root) / experiment / f".{run}.failed"


def _check_name(kind: str, name: str) -> None:
    if not name or name.startswith(".") or "/" in name or "\\" in name or name in ("..",):
        raise ValueError(f"invalid {kind} name {name!r}: use a plain folder name")


@dataclass
class RunRecord:
    """A run in progress inside :func:`recording`: ``dir`` is the staging folder to write into,
    ``record`` the dict that becomes ``run.json``.  Add metrics with :meth:`add_metric` (or let the
    notebook call :func:`write_metrics` on ``dir``)."""

    dir: Path
    final_dir: Path
    record: dict

    def add_metric(self, name: str, value: float, label: str, scale: str) -> None:
        self.record["metrics"][name] = metric(value, label, scale)


@contextlib.contextmanager
def recording(root: str | os.PathLike, experiment: str, run: str, *, profile: str,
              preset: str | None = None, parameters: Mapping[str, Any] | None = None,
              feeds: tuple[str, ...] | list[str] = (), notebook: str | None = None, scale: str = "",
              force: bool = False, repo: str | os.PathLike | None = None) -> Iterator[RunRecord]:
    """Stage, then atomically publish, one run.

    ``with recording("runs", "train-table2", "cpu", profile="cpu", preset="DiMR-T/3R") as rec:``
    — write files into ``rec.dir``; when the block exits normally, ``metrics.json`` (if any) is
    merged, ``run.json`` is written with ``"status": "complete"`` and the folder is renamed to
    ``<root>/<experiment>/<run>``.  If the block raises, the staged folder is moved to
    ``.<run>.failed`` with a ``"failed"`` record and the exception propagates.

    An existing complete run of the same name raises ``FileExistsError`` unless ``force``; with
    ``force`` the old run is replaced only once the new one is complete.
    """
    _check_name("experiment", experiment)
    _check_name("run", run)
    root = Path(root)
    final = root / experiment / run
    if is_complete(final) and not force:
        raise FileExistsError(f"{final} is already recorded; pass force=True to replace it")
    stage = staging_dir(root, experiment, run)
    if stage.exists():  # left over from an interrupted attempt: it never counted
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    rec = RunRecord(stage, final, {
        "schema": SCHEMA_VERSION, "status": "running", "experiment": experiment, "run": run,
        "profile": profile, "preset": preset,
        # the notebook gets the parameters as given; the record names no path of this machine
        "parameters": json.loads(mark_external(json.dumps(dict(parameters or {})))), "feeds": list(feeds),
        "notebook": notebook, "git": git_info(repo), "hardware": hardware_info(),
        "started": _now(), "finished": None, "wall_time_s": None, "scale": scale, "metrics": {},
    })
    t0 = time.perf_counter()
    # The staged record says "running": if the process dies here, nothing reads as complete.
    atomic_write_json(stage / RUN_FILE, rec.record)
    try:
        yield rec
        rec.record["metrics"].update(read_metrics(stage))
    except BaseException as exc:
        rec.record.update(status=FAILED, finished=_now(), wall_time_s=round(time.perf_counter() - t0, 3),
                          error=f"{type(exc).__name__}: {exc}")
        with contextlib.suppress(OSError):
            atomic_write_json(stage / RUN_FILE, rec.record)
            dead = failed_dir(root, experiment, run)
            if dead.exists():
                shutil.rmtree(dead)
            os.replace(stage, dead)
        raise
    rec.record.update(status=COMPLETE, finished=_now(), wall_time_s=round(time.perf_counter() - t0, 3))
    atomic_write_json(stage / RUN_FILE, rec.record)
    _publish(stage, final)


def _publish(stage: Path, final: Path) -> None:
    """Rename the staged folder onto ``final``; an old run there is moved aside first and deleted
    after (a directory cannot be ``os.replace``d onto a non-empty one)."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old")
        if old.exists():
            shutil.rmtree(old)
        os.replace(final, old)
    os.replace(stage, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def is_committed_profile(profile: str) -> bool:
    """Whether runs of ``profile`` are kept in git (costly) or regenerated (cheap)."""
    return profile in COMMITTED_PROFILES


def is_complete(run_dir: str | os.PathLike) -> bool:
    """True iff ``run_dir/run.json`` parses and says ``"status": "complete"``."""
    p = Path(run_dir) / RUN_FILE
    try:
        return json.loads(p.read_text(encoding="utf-8")).get("status") == COMPLETE
    except (OSError, ValueError, AttributeError):
        return False


def diverged_at(run_dir: str | os.PathLike) -> int | None:
    """The step at which the complete training run in ``run_dir`` diverged (:data:`DIVERGED_METRIC`),
    or None — also when there is no complete record."""
    try:
        value = load_run(run_dir).get("metrics", {}).get(DIVERGED_METRIC, {}).get("value")
    except (OSError, ValueError):
        return None
    return None if value is None else int(value)


def load_run(path: str | os.PathLike) -> dict:
    """Read a run record from its folder (or its ``run.json``). Adds ``"path"`` (the folder).

    Raises ``FileNotFoundError`` if there is no record and ``ValueError`` if it is not complete."""
    p = Path(path)
    if p.name != RUN_FILE:
        p = p / RUN_FILE
    record = json.loads(p.read_text(encoding="utf-8"))
    if not isinstance(record, dict) or record.get("status") != COMPLETE:
        status = record.get("status") if isinstance(record, dict) else None
        raise ValueError(f"{p} is not a complete run record (status {status!r})")
    record["path"] = str(p.parent)
    return record


_TRAINED = re.compile(r"trained ([0-9][0-9,]*) steps")


def trained_steps(rec: dict) -> int | None:
    """How many training steps the model behind a run record had: the evaluation's ``train_step``
    (``evaluation.json`` in the run's folder), else the "trained N steps" its metrics' scale says, else a
    training run's own ``steps`` metric; None when the record does not say. Runs of the ``cpu`` profile train
    for a time or
    for steps from a calibration, so two rows of one table may differ: the tables show it."""
    path = Path(rec.get("path", ""))
    report = path / "evaluation.json"
    if report.exists():
        step = json.loads(report.read_text(encoding="utf-8")).get("train_step")
        if step is not None:
            return int(step)
    for m in rec.get("metrics", {}).values():
        hit = _TRAINED.search(str(m.get("scale", "")))
        if hit:
            return int(hit.group(1).replace(",", ""))
    steps = rec.get("metrics", {}).get("steps", {}).get("value")
    return None if steps is None else int(steps)


def list_runs(root: str | os.PathLike = "runs", experiment: str | None = None,
              profile: str | None = None) -> list[dict]:
    """Every complete run under ``root`` (``<root>/<experiment>/<run>/run.json``), sorted by
    experiment then run name; hidden (staging, failed) folders and incomplete records are skipped."""
    root = Path(root)
    if not root.is_dir():
        return []
    runs = []
    for exp_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if experiment is not None and exp_dir.name != experiment:
            continue
        for run_dir in sorted(p for p in exp_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if not is_complete(run_dir):
                continue
            rec = load_run(run_dir)
            if profile is not None and rec.get("profile") != profile:
                continue
            runs.append(rec)
    return runs
