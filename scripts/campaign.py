"""Run the claims study's missing runs in the background, several at a time, most valuable first.

    nohup python scripts/campaign.py --workers 2 > campaign.log 2>&1 &

Each worker takes the next configuration × seed of :func:`queue` that has no complete record from this
checkout's commit and no other worker on it (a lock folder under ``.cache/campaign/``; a lock whose process is gone is taken
over), and runs ``python -m dimr reproduce --profile small --no-build --only <its training> --only
<its evaluations>`` with one thread (``OMP_NUM_THREADS=1``: a core another run holds slows torch's
spinning threads by an order of magnitude) at low priority. An interrupted training resumes where its
checkpoint left it; a finished one is skipped. Stop it with Ctrl-C or ``kill``; run it again to go on.

Run it from a clean checkout of one commit (a ``git worktree``) so that every record names the same
code, and copy the finished records back to commit them::

    git worktree add ../campaign <commit> && ln -s "$PWD/.venv" ../campaign/.venv
    cd ../campaign && PYTHONPATH=$PWD nohup ../main/.venv/bin/python ../main/scripts/campaign.py --workers 2 &
    PYTHONPATH=$PWD ../main/.venv/bin/python ../main/scripts/campaign.py --land ../main   # now and then
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

try:
    from dimr.provenance import repo_root
    from dimr.reproduction import study
    from dimr.reproduction.plan import build_plan
    from dimr.reproduction.runs import DIVERGED_METRIC, is_complete
except ImportError:  # a campaign checkout from before the package had two levels (00bb52b)
    from dimr import study
    from dimr.plan import build_plan
    from dimr.runs import DIVERGED_METRIC, is_complete, repo_root

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


def queue(root: Path) -> list[tuple[str, list[str]]]:
    """``[(training experiment, [its evaluation experiments]), …]`` in the order of value: per group, the
    seeds not yet run first, then the ones recorded by other code than this checkout's commit (run again,
    so that every record of the study comes from one commit)."""
    plan, head = build_plan(), _head(root)
    out = []
    for group in GROUPS:
        items = []
        for seed in sorted({s for slug in group for s in study.CONFIGS[slug].seeds}):
            for slug in group:
                conf = study.CONFIGS[slug]
                if seed not in conf.seeds:
                    continue
                train = study.experiment_names(slug, seed)[0]
                evals = [study.experiment_names(slug, seed, k)[1] for k in conf.snapshots(seed)]
                assert train in plan and all(e in plan for e in evals), (train, evals)
                items.append((train, evals))
        fresh = [i for i in items if not _recorded(root, i)]
        out += fresh + [i for i in items if i not in fresh and not _done(root, i, head)]
    return out


def _head(root: Path) -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True).stdout.strip()


def _recorded(root: Path, item: tuple[str, list[str]]) -> bool:
    train, evals = item
    return all(is_complete(root / "runs" / e / "small") for e in [train, *evals])


def _done(root: Path, item: tuple[str, list[str]], head: str) -> bool:
    """Recorded, by this commit (a diverged training has no evaluation to wait for)."""
    train, evals = item
    folder = root / "runs" / train / "small"
    if not is_complete(folder):
        return False
    rec = json.loads((folder / "run.json").read_text())
    if rec.get("git", {}).get("commit") != head:
        return False
    if DIVERGED_METRIC in rec.get("metrics", {}):
        return True
    return all(is_complete(root / "runs" / e / "small") and
               json.loads((root / "runs" / e / "small" / "run.json").read_text()).get("git", {}).get("commit") == head
               for e in evals)


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


def work(root: Path) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    head = _head(root)
    for train, evals in queue(root):
        if _done(root, (train, evals), head):  # another worker finished it meanwhile
            continue
        lock = root / ".cache" / "campaign" / train
        if not _claim(lock):
            continue
        try:
            forced = _recorded(root, (train, evals))  # recorded by other code: run again on this commit
            cmd = [sys.executable, "-m", "dimr", "reproduce", "--profile", "small", "--no-build", "--only", train]
            for e in evals:
                cmd += ["--only", e]
            cmd += ["--force"] if forced else []
            print(time.strftime("%H:%M:%S"), " ".join(cmd[1:]), flush=True)
            rc = subprocess.call(["nice", "-n", "10", *cmd], cwd=root, env=env)
            print(time.strftime("%H:%M:%S"), f"{train}: exit {rc}", flush=True)
        finally:
            (lock / "pid").unlink(missing_ok=True)
            lock.rmdir()


def land(root: Path, dest: Path) -> list[str]:
    """Copy every complete study record of ``root`` that ``dest`` lacks, or holds from other code, into ``dest``'s
    runs (whole run folders); returns what it copied. Nothing is deleted in ``root``."""
    import shutil

    copied = []
    for run in sorted((root / "runs").glob("*-study-*/small/run.json")):
        rec = json.loads(run.read_text())
        if rec.get("status") != "complete":
            continue
        target = dest / "runs" / run.parent.relative_to(root / "runs")
        old = json.loads((target / "run.json").read_text()) if (target / "run.json").exists() else None
        if old is None or old.get("git", {}).get("commit") != rec.get("git", {}).get("commit"):
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(run.parent, target)
            copied.append(str(target.relative_to(dest)))
    return copied


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=1, help="runs at once (never more than the cores)")
    ap.add_argument("--dry-run", action="store_true", help="print what would run, in order, and exit")
    ap.add_argument("--land", metavar="CHECKOUT", help="copy the finished records into CHECKOUT's runs/ and exit")
    args = ap.parse_args()
    root = repo_root()
    if args.land:
        print("\n".join(land(root, Path(args.land).resolve())) or "nothing new")
        return 0
    if args.dry_run:
        for item in queue(root):
            print("again" if _recorded(root, item) else "new", item[0], *item[1])
        return 0
    workers = [subprocess.Popen([sys.executable, __file__, "--workers", "1"]) for _ in range(args.workers - 1)]
    work(root)
    return max([w.wait() for w in workers], default=0)


if __name__ == "__main__":
    sys.exit(main())
