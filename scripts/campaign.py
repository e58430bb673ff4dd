"""Run the claims study's missing runs in the background, several at a time, most valuable first.

    nohup python scripts/campaign.py --workers 2 > campaign.log 2>&1 &

Each worker takes the next configuration × seed of :func:`queue` that has no complete record and no
other worker on it (a lock folder under ``.cache/campaign/``; a lock whose process is gone is taken
over), and runs ``python -m dimr reproduce --profile small --no-build --only <its training> --only
<its evaluations>`` with one thread (``OMP_NUM_THREADS=1``: a core another run holds slows torch's
spinning threads by an order of magnitude) at low priority. An interrupted training resumes where its
checkpoint left it; a finished one is skipped. Stop it with Ctrl-C or ``kill``; run it again to go on.

Run it from a clean checkout of one commit (a ``git worktree``) so that every record names the same
code, and copy the finished ``runs/*-study-*/small`` folders back to commit them.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from dimr import study
from dimr.plan import build_plan
from dimr.runs import is_complete, repo_root

#: the order of value (issue 26): first the seeds that decide the paper's underpowered claims (C2–C4 rows),
#: then the one-change-at-a-time configurations, then C1's ends and the patch-2 pair, then the ε check;
#: within a group seed by seed, so every group gains paired seeds together
GROUPS = (
    ("row3", "row4", "row5", "row6"),
    ("row4-tdln", "loo-adaln", "loo-mlp", "loo-1branch"),
    ("row1", "row2"),
    ("uvit-t2", "dimr-t2r"),
    ("eps-row1", "eps-row5", "eps-row6"),
)


#: seeds recorded by earlier code, run again (``--force``) on this commit first: the same configuration and seed
#: on today's code shows whether the numerics moved (the old record is kept in git; compare, then restore it)
RECHECK = (("row6", 0),)


def queue() -> list[tuple[str, list[str], bool]]:
    """``[(training experiment, [its evaluation experiments], forced), …]`` in the order of value."""
    plan = build_plan()
    out = [(study.experiment_names(slug, seed)[0], [study.experiment_names(slug, seed)[1]], True)
           for slug, seed in RECHECK]
    for group in GROUPS:
        seeds = sorted({s for slug in group for s in study.CONFIGS[slug].seeds})
        for seed in seeds:
            for slug in group:
                conf = study.CONFIGS[slug]
                if seed not in conf.seeds:
                    continue
                train = study.experiment_names(slug, seed)[0]
                evals = [study.experiment_names(slug, seed, k)[1] for k in conf.snapshots(seed)]
                assert train in plan and all(e in plan for e in evals), (train, evals)
                out.append((train, evals, False))
    return out


def _done(root: Path, experiments: list[str]) -> bool:
    return all(is_complete(root / "runs" / e / "small") for e in experiments)


def _claim(lock: Path) -> bool:
    """Take ``lock`` (a folder holding the owner's pid); a lock whose owner is gone is taken over."""
    try:
        lock.mkdir(parents=True)
    except FileExistsError:
        try:
            os.kill(int((lock / "pid").read_text()), 0)
            return False
        except (ProcessLookupError, ValueError, FileNotFoundError):
            pass  # stale: its process is gone
    (lock / "pid").write_text(str(os.getpid()))
    return True


def _marker(root: Path, train: str) -> Path:
    return root / ".cache" / "campaign" / f"{train}.rechecked"


def work(root: Path) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    for train, evals, forced in queue():
        if (_marker(root, train).exists() if forced else _done(root, [train, *evals])):
            continue
        lock = root / ".cache" / "campaign" / train
        if not _claim(lock):
            continue
        try:
            cmd = [sys.executable, "-m", "dimr", "reproduce", "--profile", "small", "--no-build", "--only", train]
            for e in evals:
                cmd += ["--only", e]
            cmd += ["--force"] if forced else []
            print(time.strftime("%H:%M:%S"), " ".join(cmd[1:]), flush=True)
            rc = subprocess.call(["nice", "-n", "10", *cmd], cwd=root, env=env)
            print(time.strftime("%H:%M:%S"), f"{train}: exit {rc}", flush=True)
            if forced and rc == 0:
                _marker(root, train).write_text(time.strftime("%Y-%m-%dT%H:%M:%S"))
        finally:
            (lock / "pid").unlink(missing_ok=True)
            lock.rmdir()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=1, help="runs at once (never more than the cores)")
    ap.add_argument("--dry-run", action="store_true", help="print what would run, in order, and exit")
    args = ap.parse_args()
    root = repo_root()
    if args.dry_run:
        for train, evals, forced in queue():
            done = _marker(root, train).exists() if forced else _done(root, [train, *evals])
            print("done" if done else "left", "(again)" if forced else "", train, *evals)
        return 0
    workers = [subprocess.Popen([sys.executable, __file__, "--workers", "1"]) for _ in range(args.workers - 1)]
    work(root)
    return max([w.wait() for w in workers], default=0)


if __name__ == "__main__":
    sys.exit(main())
