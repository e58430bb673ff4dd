"""Where a number came from: the repository, the commit and the machine that produced it.

Every record this package writes (a training's ``summary``, an evaluation, a benchmark, a run of the
reproduction) names these, so that a reader can tell two numbers of different code or hardware apart.
"""
from __future__ import annotations

import os
import platform
import re
import subprocess
from pathlib import Path

__all__ = ["repo_root", "git_info", "cpu_name", "hardware_info", "mark_external"]


def repo_root(start: str | os.PathLike | None = None) -> Path:
    """The repository root: the nearest folder above ``start`` (default: cwd) holding ``_toc.yml`` and
    ``dimr/``; failing that, the folder above this package."""
    here = Path(start or os.getcwd()).resolve()
    for p in (here, *here.parents):
        if (p / "_toc.yml").exists() and (p / "dimr").is_dir():
            return p
    return Path(__file__).resolve().parent.parent


def git_info(root: str | os.PathLike | None = None) -> dict:
    """``{"commit": sha | None, "dirty": bool | None, "changed": [path, …]}``; read-only (no index
    refresh), None without git. ``changed`` lists the tracked files that differ from the commit, outside
    ``runs/`` (run records change as runs land and say nothing about the code that made them);
    ``dirty`` is whether there are any."""
    root = Path(root or repo_root())
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, env=env, capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, env=env,
                                capture_output=True, text=True, timeout=30, check=True).stdout
        changed = [line[3:] for line in status.splitlines() if line.strip() and not line[3:].startswith("runs/")]
        return {"commit": sha or None, "dirty": bool(changed), "changed": changed}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None, "changed": None}


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), e.g. ``"AMD EPYC"``."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def hardware_info() -> dict:
    """CPU model and count, GPU name (None without CUDA), torch and Python versions."""
    gpu = None
    torch_version = None
    try:
        import torch

        torch_version = torch.__version__
        if torch.cuda.is_available():
            n = torch.cuda.device_count()
            gpu = f"{n}× {torch.cuda.get_device_name(0)}" if n > 1 else torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return {"cpu": cpu_name(), "cpu_count": os.cpu_count(), "gpu": gpu, "torch": torch_version,
            "python": platform.python_version(), "platform": platform.platform()}


def mark_external(text: str) -> str:
    """``text`` with every absolute path (outside the repository, so not a file a reader has) reduced to
    its last name, marked ``<external>/name``: ``/usr/share/datasets/fashion-mnist`` → ``<external>/fashion-mnist``."""
    return re.sub(r'(?<![\w.<>-])/[^\s"\')]*/([^/\s"\')]+)', r"<external>/\1", text)
