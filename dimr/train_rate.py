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

**Huge pages** (:func:`huge_page_rates`, ``python -m dimr bench --huge-pages``): one training step's images/s
(``python -m dimr bench --measure train``) with ``THP_MEM_ALLOC_ENABLE`` off and on, alternating, per workload;
the record's ``choice`` is what :mod:`dimr.allocator` then uses on this CPU.

Measure nothing else while it runs: every other process on the machine is part of the measurement.
"""
from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

from .allocator import ENV
from .files import atomic_write_json
from .provenance import hardware_info, repo_root

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
            "first_window_s": rows[0]["elapsed_s"], "amp": summary.get("amp"), "compile": summary.get("compile", "off"),
            "threads": summary.get("threads"), "threads_reason": summary.get("threads_reason")}


def contention(presets: Sequence[str], busy: int = 1, windows: int = 8, rounds: int = 2, train_args: str = "",
               variants: Mapping[str, Mapping[str, str]] | None = None,
               progress: Callable[[str], None] = print) -> dict:
    """Each preset's default training alone and beside ``busy`` busy processes, per environment variant
    (name → variables set on top of this process's environment; ``{"defaults": {}}`` when None),
    alternating (alone, busy) for ``rounds`` rounds. Returns the record: per variant and preset the median
    images/s of each side over rounds and ``busy_over_alone``, and every run."""
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
                 progress: Callable[[str], None] = print, busy: int = 0) -> dict:
    """The default training command of each preset at git revision ``before`` and in this checkout, alternating
    (before, after) for ``rounds`` rounds, each run from its own fresh inductor cache folder (round 1 compiles
    cold, later rounds find the cache warm), every run beside ``busy`` busy processes (none: the machine as it
    is). Returns the record: per preset the median images/s of each side over rounds, the speed-up and every
    run."""
    if busy < 0:
        raise ValueError(f"busy processes must be 0 or more, got {busy}")
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
                with busy_processes(busy):
                    got = default_train_rate(where, preset, windows, train_args.split(), env)
                runs[preset][label].append(got)
                progress(f"round {r + 1} {preset} {label}: {got['images_per_s']:.1f} images/s (first window "
                         f"{got['first_window_s']:.0f} s, amp {got['amp']}, compile {got['compile']})")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=root, capture_output=True)
    flags = f" {train_args}" if train_args else ""
    return {"what": f"`python -m dimr train --preset P{flags}` with every other setting at its default (the recipe's "
                    f"full length, stopped by SIGTERM after {windows} logged windows of 10 steps after the first), "
                    f"before and after, alternating in one run{_beside(busy)}; median images/s of those windows. "
                    "Round 1 starts from an empty inductor cache",
            "busy": busy, "train_args": train_args, "before": rev, "after": after + (" (uncommitted changes in dimr/)" if dirty else ""),
            "rounds": rounds, "results": {p: _before_after_summary(d) for p, d in runs.items()},
            "hardware": hardware_info(), "command": "python -m dimr bench --before"}


def _beside(busy: int) -> str:
    return f", every run beside {busy} busy process(es) (`python -c '{BUSY_CODE}'`)" if busy else ""


def _before_after_summary(runs: dict) -> dict:
    """``{"before_images_per_s", "after_images_per_s", "speedup", "before": [...], "after": [...], "runs"}`` from
    each side's runs (medians over rounds)."""
    ips = {side: [r["images_per_s"] for r in rs] for side, rs in runs.items()}
    b, a = statistics.median(ips["before"]), statistics.median(ips["after"])
    return {"before_images_per_s": b, "after_images_per_s": a, "speedup": a / b, **ips, "runs": runs}


#: the workloads ``--huge-pages`` measures by default: the large model whose step the setting was made for, at
#: the batch of the side-by-side with the official code, and a tiny preset at the bench's batch
HUGE_PAGE_WORKLOADS = (("DiMR-M/3R", 4), ("DiMR-T/3R", 16))
#: huge pages are chosen when a workload trains at least this much faster with them and none this much slower
HUGE_PAGE_MARGIN = 0.05


def _bench_train_rate(preset: str, batch: int, warmup: int, steps: int, env: Mapping[str, str]) -> float:
    """Images/s of ``python -m dimr bench --measure train`` for one preset and batch, in a fresh process."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        cmd = [sys.executable, "-m", "dimr", "bench", "--preset", preset, "--batch-size", str(batch), "--measure",
               "train", "--warmup", str(warmup), "--steps", str(steps), "--out", str(out)]
        res = subprocess.run(cmd, env=dict(env), capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[1:])}: {res.stderr[-2000:]}")
        return float(json.loads(out.read_text())["results"][0]["sides"]["ours"]["images_per_s"])


def huge_page_choice(on_over_off: Mapping[str, float], margin: float = HUGE_PAGE_MARGIN) -> bool:
    """On when some workload trains ``margin`` faster with huge pages and none ``margin`` slower."""
    ratios = list(on_over_off.values())
    return any(r >= 1 + margin for r in ratios) and not any(r <= 1 - margin for r in ratios)


def huge_page_rates(workloads: Sequence[tuple[str, int]] = HUGE_PAGE_WORKLOADS, rounds: int = 2, warmup: int = 2,
                    steps: int = 4, progress: Callable[[str], None] = print) -> dict:
    """Each (preset, batch)'s training-step images/s with huge pages off and on, alternating (off, on) for
    ``rounds`` rounds. Returns the record: per workload every rate, the medians' ratio ``on_over_off``, and
    the ``choice`` (:func:`huge_page_choice`)."""
    rates = {f"{p} b{b}": {"off": [], "on": []} for p, b in workloads}
    for r, (preset, batch), side in itertools.product(range(rounds), workloads, ("off", "on")):
        got = _bench_train_rate(preset, batch, warmup, steps, {**os.environ, ENV: "1" if side == "on" else "0"})
        rates[f"{preset} b{batch}"][side].append(got)
        progress(f"round {r + 1} {preset} b{batch} huge pages {side}: {got:.3f} images/s")
    ratios = {k: statistics.median(v["on"]) / statistics.median(v["off"]) for k, v in rates.items()}
    results = {k: {**v, "on_over_off": ratios[k]} for k, v in rates.items()}
    on = huge_page_choice(ratios)
    return {"what": f"one training step's images/s (`python -m dimr bench --measure train --warmup {warmup} --steps "
                    f"{steps}`, fresh process each) with {ENV}=0 and =1, alternating in one run; medians over rounds",
            "rounds": rounds, "workloads": [{"preset": p, "batch": b} for p, b in workloads], "results": results,
            "choice": {"huge_pages": on, "rule": f"on when a workload is >= {1 + HUGE_PAGE_MARGIN:g}x faster with huge "
                                                 f"pages and none <= {1 - HUGE_PAGE_MARGIN:g}x"},
            "hardware": hardware_info(), "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "command": "python -m dimr bench --huge-pages"}


# ---------------------------------------------------------------------------------------------
# The modes of `python -m dimr bench` that run here (its parser: dimr.bench)
# ---------------------------------------------------------------------------------------------
def slug_of(name: str) -> str:
    """A record file's name part: ``"AMD EPYC"`` → ``"amd-epyc"``, ``"DiMR-T/3R"`` → ``"dimr-t-3r"``."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _print(line: str) -> None:
    print(line, flush=True)


def cli_before_after(args) -> int:
    busy = args.contention or 0
    record = before_after(args.before, args.preset, args.windows, args.rounds, args.train_args or "", _print, busy)
    for preset, d in record["results"].items():
        print(f"{preset}: {d['before_images_per_s']:.1f} -> {d['after_images_per_s']:.1f} images/s ({d['speedup']:.2f}x)")
    slug = "-".join(slug_of(p) for p in args.preset) + (f"-busy-{busy}" if busy else "")
    out = Path(args.out) if args.out else repo_root() / "runs" / "bench" / f"before-{record['before']}-{slug}.json"
    atomic_write_json(out, record)
    print(f"record -> {out}")
    return 0


def _variants(specs: Sequence[str] | None) -> dict[str, dict[str, str]]:
    """``{"defaults": {}, "OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"}, …}`` from ``--variant`` specs."""
    out: dict[str, dict[str, str]] = {"defaults": {}}
    for spec in specs or ():
        pairs = [item.split("=", 1) for item in spec.split(",") if item]
        if not pairs or any(len(p) != 2 or not p[0] for p in pairs):
            raise ValueError(f"--variant {spec!r}: expected VAR=VALUE[,VAR=VALUE]")
        out[spec] = dict(pairs)
    return out


def _workloads(specs: Sequence[str]) -> list[tuple[str, int]]:
    """``[("DiMR-M/3R", 4), …]`` from ``PRESET@BATCH`` specs (the defaults when there are none)."""
    out = []
    for spec in specs:
        preset, _, batch = spec.rpartition("@")
        if not preset or not batch.isdigit() or int(batch) < 1:
            raise ValueError(f"--huge-pages {spec!r}: expected PRESET@BATCH, e.g. DiMR-M/3R@4")
        out.append((preset, int(batch)))
    return out or list(HUGE_PAGE_WORKLOADS)


def cli_huge_pages(args) -> int:
    from .allocator import remember

    record = huge_page_rates(_workloads(args.huge_pages), args.rounds, args.warmup, args.steps, _print)
    for name, d in record["results"].items():
        print(f"{name}: huge pages on/off {d['on_over_off']:.2f}x")
    cpu = record["hardware"]["cpu"]
    slug = slug_of(cpu)
    out = Path(args.out) if args.out else repo_root() / "runs" / "bench" / f"huge-pages-{slug}-{record['when'][:10]}.json"
    atomic_write_json(out, record)
    remember(cpu, record["choice"]["huge_pages"], out)
    print(f"huge pages {'on' if record['choice']['huge_pages'] else 'off'} on {cpu} from now on\nrecord -> {out}")
    return 0


def cli_contention(args) -> int:
    record = contention(args.preset, args.contention, args.windows, args.rounds, args.train_args or "",
                        _variants(args.variant), _print)
    for name, by_preset in record["results"].items():
        for preset, d in by_preset.items():
            print(f"[{name}] {preset}: alone {d['alone_images_per_s']:.1f}, beside {args.contention} busy "
                  f"{d['busy_images_per_s']:.1f} images/s ({d['busy_over_alone']:.2f} of alone)")
    cpu = slug_of(record["hardware"]["cpu"])
    out = Path(args.out) if args.out else (repo_root() / "runs" / "bench" /
                                           f"contention-{args.contention}-{cpu}-{record['when'][:10]}.json")
    atomic_write_json(out, record)
    print(f"record -> {out}")
    return 0
