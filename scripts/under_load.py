"""`make book`, or the README's ten-minute run, from a fresh clone beside N busy processes; a record of what it trained.

    python scripts/under_load.py book --busy 0          # runs/bench/make-book-busy-0-<cpu>-<date>.json
    python scripts/under_load.py book --busy 1          # the same beside one busy process
    python scripts/under_load.py ten-minutes --busy 1   # runs/bench/ten-minutes-busy-1-<cpu>-<date>.json (+ its grid)

A laptop is rarely idle. These are the two things a newcomer runs first, run as a newcomer runs them: a fresh
``git clone`` of this checkout's HEAD (its own ``.venv``, caches and run records: nothing measured here before is
remembered), with ``busy`` processes that each hold one core (:func:`dimr.train_rate.busy_processes`, the busy
process of ``dimr bench --contention``) for the whole command.

- ``book``: ``make book`` (install, the ``cpu`` profile's runs, the book). The record holds the wall time, the
  calibration's equal steps and each Table 2 training's steps, images/s, threads and slow note: Table 2's
  "measured" column compares models that trained the same number of steps on a busy machine too.
- ``ten-minutes``: ``make install`` (not timed, no busy process), then beside the busy processes the ``small``
  profile's ``train-dimr-t3r-10min`` and ``eval-dimr-t3r-10min`` (``dimr train --time-limit 10`` with every other
  setting at its default, then ``dimr evaluate``); the record holds the steps and the evaluation's metrics.

Measure nothing else while it runs: every other process on the machine is part of the measurement.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dimr.files import atomic_write_json
from dimr.provenance import git_info, hardware_info, repo_root
from dimr.reproduction.plan import CALIBRATION, CPU_ROWS
from dimr.reproduction.runs import list_runs, trained_steps
from dimr.train_rate import BUSY_CODE, busy_processes, slug_of

#: the ten-minute run's experiments at the ``small`` profile (dimr.reproduction.plan._ten_minute_runs)
TEN_MINUTES = ("train-dimr-t3r-10min", "eval-dimr-t3r-10min")
#: variables a clone must not inherit from this shell: the Makefile sets its own, and the run decides the rest
UNSET = ("OMP_NUM_THREADS", "THP_MEM_ALLOC_ENABLE", "XDG_CACHE_HOME", "TORCHINDUCTOR_CACHE_DIR", "JUPYTER_PATH",
         "VIRTUAL_ENV", "PYTHONPATH", "MPLCONFIGDIR", "IPYTHONDIR", "JUPYTER_CONFIG_DIR", "TORCH_HOME")


def _make(clone: Path, goal: str, log: Path, extra: str = "") -> tuple[int, float]:
    """``make [--eval extra] goal`` in ``clone`` (the Makefile's exported environment, as ``make book`` has it),
    output appended to ``log``; returns (exit status, seconds)."""
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    cmd = ["make", "-s", *(["--eval", extra] if extra else []), goal]
    t0 = time.monotonic()
    with open(log, "a") as out:
        rc = subprocess.run(cmd, cwd=clone, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    return rc, time.monotonic() - t0


def _summary(clone: Path, experiment: str, profile: str) -> dict:
    """What a training's ``summary.json`` says about how it ran (threads, precision, a slow note)."""
    path = clone / "checkpoints" / experiment / profile / "summary.json"
    s = json.loads(path.read_text()) if path.is_file() else {}
    keys = ("threads", "threads_reason", "amp", "amp_reason", "compile", "compile_reason", "huge_pages", "slow_note", "usual_images_per_s",
            "slow_windows", "logged_windows", "stop_reason")
    return {k: s.get(k) for k in keys if k in s}


def _runs(clone: Path, experiments: list[str], profile: str) -> dict:
    """Per experiment: its metrics' values, steps trained and its training's summary."""
    out = {}
    for exp in experiments:
        recs = list_runs(clone / "runs", exp, profile)
        if not recs:
            out[exp] = None
            continue
        rec = recs[0]
        out[exp] = {"trained_steps": trained_steps(rec), "metrics": {k: m["value"] for k, m in rec["metrics"].items()},
                    "scale": next(iter(rec["metrics"].values()), {}).get("scale")}
        if exp.startswith("train-"):
            out[exp]["run"] = _summary(clone, exp, profile)
    return out


def book(clone: Path, busy: int, log: Path) -> dict:
    """``make book`` in ``clone`` beside ``busy`` busy processes: the record's fields (wall time, built, each
    Table 2 run, ``table2_steps`` of the two evaluated models and whether they are ``equal_steps``)."""
    with busy_processes(busy):
        rc, seconds = _make(clone, "book", log)
    exps = [CALIBRATION] + [f"{kind}-table2-row{r}" for r in CPU_ROWS for kind in ("train", "eval")]
    runs = _runs(clone, exps, "cpu")
    steps = {e: (r or {}).get("trained_steps") for e, r in runs.items() if e.startswith("eval-")}
    return {"command": "make book", "exit_status": rc, "wall_s": round(seconds, 1),
            "book_built": (clone / "_build" / "html" / "index.html").is_file(), "runs": runs,
            "table2_steps": steps, "equal_steps": None not in steps.values() and len(set(steps.values())) == 1}


def ten_minutes(clone: Path, busy: int, log: Path) -> dict:
    """``make install``, then the README's ten-minute DiMR-T/3R run and its evaluation (``small``, forced) beside
    ``busy`` busy processes: the record's fields (wall time, both runs, the evaluation's grid)."""
    rc, _ = _make(clone, "install", log)
    if rc:
        return {"command": "make install", "exit_status": rc}
    only = " ".join(f"--only {e}" for e in TEN_MINUTES)
    goal = f"ten-minutes: install ; $(BIN)/python -m dimr reproduce --profile small --force --no-build {only}"
    with busy_processes(busy):
        rc, seconds = _make(clone, "ten-minutes", log, extra=goal)
    grid = clone / "runs" / TEN_MINUTES[1] / "small" / "grid.png"
    return {"command": f"python -m dimr reproduce --profile small --force --no-build {only}", "exit_status": rc,
            "wall_s": round(seconds, 1), "runs": _runs(clone, list(TEN_MINUTES), "small"),
            "grid": str(grid) if grid.is_file() else None}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("job", choices=("book", "ten-minutes"))
    ap.add_argument("--busy", type=int, default=1, help="busy processes beside it (each holds one core)")
    ap.add_argument("--out", help="the record's path (default runs/bench/<job>-busy-N-<cpu>-<date>.json)")
    ap.add_argument("--keep", action="store_true", help="keep the clone (its path is printed)")
    args = ap.parse_args(argv)
    if args.busy < 0:
        ap.error("--busy must be 0 or more")
    root = repo_root()
    tmp = Path(tempfile.mkdtemp(prefix="dimr-under-load-"))
    clone, log = tmp / "repo", tmp / "log.txt"
    subprocess.run(["git", "clone", "-q", str(root), str(clone)], check=True)
    print(f"{args.job} beside {args.busy} busy process(es) in {clone}; output in {log}", flush=True)
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    result = (book if args.job == "book" else ten_minutes)(clone, args.busy, log)
    hw = hardware_info()
    job = "make-book" if args.job == "book" else args.job  # the record names bench_records reads
    name = f"{job}-busy-{args.busy}-{slug_of(hw['cpu'])}-{started[:10]}"
    out = Path(args.out) if args.out else root / "runs" / "bench" / f"{name}.json"
    if result.get("grid"):
        result["grid"] = shutil.copyfile(result["grid"], out.with_suffix(".png")).name
    record = {"what": f"{args.job} from a fresh clone beside {args.busy} busy process(es) (`python -c '{BUSY_CODE}'`)",
              "job": args.job, "busy": args.busy, "when": started, "git": git_info(clone), **result,
              "log_tail": log.read_text(errors="replace")[-3000:], "hardware": hw, "cpu_count": os.cpu_count(),
              "script": "python scripts/under_load.py " + " ".join(sys.argv[1:] if argv is None else argv)}
    atomic_write_json(out, record)
    print(f"exit {result.get('exit_status')}, {result.get('wall_s')} s; record -> {out}")
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return int(bool(result.get("exit_status")))


if __name__ == "__main__":
    sys.exit(main())
