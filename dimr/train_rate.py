"""The default ``dimr train``'s throughput under two conditions: two revisions, or alone and on a busy machine.

**Before/after** (:func:`before_after`, ``python -m dimr bench --before REV``): ``python -m dimr train --preset P``
with every default, once in a git worktree of ``REV`` and once in this checkout, alternating.

**Contention** (:func:`contention`, ``python -m dimr bench --contention N``):

A laptop is rarely idle. On two cores with one other busy process, torch's OpenMP threads that spin
while waiting for a core the other process holds can make a run many times slower than its fair share
(half). :func:`contention` measures it as a user meets it: the default training command of each preset
(:func:`default_train_rate`), alone and then with ``busy`` processes that each keep one core busy
(:func:`busy_processes`, a spinning Python loop like a busy browser tab), alternating for ``rounds``
rounds, under each environment ``variant`` (e.g. ``{"GOMP_SPINCOUNT": "10000"}``) so mechanisms compare
in one run. The record holds each side's median images/s and their ratio::

    python -m dimr bench --contention 1 --preset U-ViT-T/4 DiMR-T/3R --variant OMP_WAIT_POLICY=PASSIVE

Measure nothing else while it runs: every other process on the machine is part of the measurement.
"""
from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

__all__ = ["BUSY_CODE", "busy_processes", "default_train_rate", "before_after", "contention"]

#: what a busy process runs: one core held at 100% in user time, no memory traffic to speak of
BUSY_CODE = "while True: pass"


@contextlib.contextmanager
def busy_processes(n: int) -> Iterator[list[subprocess.Popen]]:
    """``n`` processes that each keep one core busy for the duration of the block (killed after it)."""
    procs = [subprocess.Popen([sys.executable, "-c", BUSY_CODE]) for _ in range(n)]
    try:
        yield procs
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


def default_train_rate(tree: str | os.PathLike, preset: str, windows: int, extra: Sequence[str] = (),
                       env: Mapping[str, str] | None = None) -> dict:
    """``python -m dimr train --preset P`` (defaults but ``extra``) run from the checkout ``tree``, stopped by
    SIGTERM once ``windows`` windows of 10 steps after the first are logged. Returns the median images/s of
    those windows (the first holds start-up, compilation and warm-up) and what the run chose."""
    env = {**(os.environ if env is None else env), "PYTHONPATH": str(tree)}
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "dimr", "train", "--preset", preset, "--out", tmp, "--no-progress",
               "--log-every", "10", *extra]
        proc = subprocess.Popen(cmd, cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        metrics = Path(tmp) / "metrics.jsonl"
        while proc.poll() is None:
            if metrics.exists() and len(metrics.read_text().splitlines()) >= windows + 1:
                proc.send_signal(signal.SIGTERM)  # the trainer stops after the step, with a checkpoint
                break
            time.sleep(1.0)
        _, err = proc.communicate()
        if proc.returncode not in (0, 130, -signal.SIGTERM):
            raise RuntimeError(f"{tree}: {err[-2000:]}")
        rows = [json.loads(x) for x in metrics.read_text().splitlines()]
        summary = json.loads((Path(tmp) / "summary.json").read_text())
    timed = rows[1:windows + 1]
    return {"images_per_s": statistics.median(r["images_per_s"] for r in timed), "windows": len(timed),
            "first_window_s": rows[0]["elapsed_s"], "amp": summary.get("amp"), "compile": summary.get("compile", "off")}


def contention(presets: Sequence[str], busy: int = 1, windows: int = 8, rounds: int = 2, train_args: str = "",
               variants: Mapping[str, Mapping[str, str]] | None = None,
               progress: Callable[[str], None] = print) -> dict:
    """Each preset's default training alone and beside ``busy`` busy processes, per environment variant
    (name → variables set on top of this process's environment; ``{"defaults": {}}`` when None),
    alternating (alone, busy) for ``rounds`` rounds. Returns the record: per variant and preset the median
    images/s of each side over rounds and ``busy_over_alone``, and every run."""
    from .runs import hardware_info

    variants = dict(variants or {"defaults": {}})
    root = Path(__file__).resolve().parent.parent
    runs: dict = {v: {p: {"alone": [], "busy": []} for p in presets} for v in variants}
    with tempfile.TemporaryDirectory() as wt:
        base = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(Path(wt) / "inductor")}
        for r, (name, setting), preset, side in itertools.product(range(rounds), variants.items(), presets,
                                                                  ("alone", "busy")):
            with busy_processes(busy if side == "busy" else 0):
                got = default_train_rate(root, preset, windows, train_args.split(), {**base, **setting})
            runs[name][preset][side].append(got)
            progress(f"round {r + 1} [{name}] {preset} {side}: {got['images_per_s']:.1f} images/s "
                     f"(amp {got['amp']}, compile {got['compile']})")
    results = {}
    for name, by_preset in runs.items():
        results[name] = {}
        for preset, sides in by_preset.items():
            alone = statistics.median(g["images_per_s"] for g in sides["alone"])
            loaded = statistics.median(g["images_per_s"] for g in sides["busy"])
            results[name][preset] = {"alone_images_per_s": alone, "busy_images_per_s": loaded,
                                     "busy_over_alone": loaded / alone, "runs": sides}
    flags = f" {train_args}" if train_args else ""
    return {"what": f"`python -m dimr train --preset P{flags}` with every other setting at its default, stopped after "
                    f"{windows} logged windows of 10 steps after the first; alone and beside {busy} busy process(es) "
                    f"(`python -c '{BUSY_CODE}'`), alternating in one run; median images/s of those windows",
            "busy": busy, "rounds": rounds, "train_args": train_args, "variants": variants, "results": results,
            "cpu_count": os.cpu_count(), "hardware": hardware_info(), "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "command": "python -m dimr bench --contention"}


def _git(root: Path, *args: str) -> str:
    res = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    if res.returncode != 0:
        raise ValueError(f"git {' '.join(args)} failed in {root}: {res.stderr.strip()}")
    return res.stdout.strip()


def before_after(before: str, presets: Sequence[str], windows: int = 12, rounds: int = 2, train_args: str = "",
                 progress: Callable[[str], None] = print) -> dict:
    """The default training command of each preset at git revision ``before`` and in this checkout, alternating
    (before, after) for ``rounds`` rounds, each run from its own fresh inductor cache folder (round 1 compiles
    cold, later rounds find the cache warm). Returns the record: per preset the median images/s of each side
    over rounds, the speed-up and every run."""
    root = Path(__file__).resolve().parent.parent
    rev, after = _git(root, "rev-parse", "--short", before), _git(root, "rev-parse", "--short", "HEAD")
    dirty = bool(_git(root, "status", "--porcelain", "--", "dimr"))
    runs = {p: {"before": [], "after": []} for p in presets}
    with tempfile.TemporaryDirectory() as wt:
        env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(Path(wt) / "inductor")}
        tree = Path(wt) / "before"
        _git(root, "worktree", "add", "--detach", str(tree), rev)
        try:
            for r, preset, (label, where) in itertools.product(range(rounds), presets, (("before", tree), ("after", root))):
                got = default_train_rate(where, preset, windows, train_args.split(), env)
                runs[preset][label].append(got)
                progress(f"round {r + 1} {preset} {label}: {got['images_per_s']:.1f} images/s (first window "
                         f"{got['first_window_s']:.0f} s, amp {got['amp']}, compile {got['compile']})")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=root, capture_output=True)
    flags = f" {train_args}" if train_args else ""
    return {"what": f"`python -m dimr train --preset P{flags}` with every other setting at its default (the recipe's "
                    f"full length, stopped by SIGTERM after {windows} logged windows of 10 steps after the first), "
                    "before and after, alternating in one run; median images/s of those windows. Round 1 starts "
                    "from an empty inductor cache",
            "train_args": train_args, "before": rev, "after": after + (" (uncommitted changes in dimr/)" if dirty else ""),
            "rounds": rounds, "results": {p: _before_after_summary(d) for p, d in runs.items()},
            "hardware": hardware_info(), "command": "python -m dimr bench --before"}


def _before_after_summary(runs: dict) -> dict:
    """``{"before_images_per_s", "after_images_per_s", "speedup", "before": [...], "after": [...], "runs"}`` from
    each side's runs (medians over rounds)."""
    ips = {side: [r["images_per_s"] for r in rs] for side, rs in runs.items()}
    b, a = statistics.median(ips["before"]), statistics.median(ips["after"])
    return {"before_images_per_s": b, "after_images_per_s": a, "speedup": a / b, **ips, "runs": runs}
