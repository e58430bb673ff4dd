"""Atomic file writes: the one rule for every file this package publishes.

A file is written to a temporary sibling (``.<name>.<random>.tmp`` in the same folder, so the rename
never crosses a file system), flushed and fsynced, then moved over the target with ``os.replace``.
A reader — or a run killed at any instant, even by SIGKILL — therefore sees the old file or the new
one, never half of one. Checkpoints, run records, metrics, executed notebooks and latent-cache
metadata all go through :func:`atomic_write`.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Callable, Iterator

__all__ = ["atomic_write", "atomic_write_json", "user_cache_file", "stale_temporaries"]


def atomic_write(path: str | os.PathLike, write: Callable[[IO], None], *, binary: bool = False) -> Path:
    """Call ``write(f)`` on a temporary sibling of ``path``, then publish it as ``path`` atomically.

    ``binary`` opens the file in ``"wb"`` (e.g. for ``torch.save``), otherwise ``"w"`` UTF-8 text.
    If ``write`` or the move fails, ``path`` is untouched and the temporary file is removed.
    Returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with (os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8")) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically (:func:`atomic_write`)."""
    def write(f):
        json.dump(obj, f, indent=2, sort_keys=False, ensure_ascii=False)
        f.write("\n")
    return atomic_write(path, write)


def user_cache_file(name: str) -> Path:
    """``$XDG_CACHE_HOME/dimr/<name>`` (``~/.cache/dimr/<name>`` without the variable): what this package
    remembers about the user's machine between runs (advisory; safe to delete)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dimr" / name


def stale_temporaries(path: str | os.PathLike) -> Iterator[Path]:
    """The temporary siblings that writes of ``path`` cut short by SIGKILL left behind (safe to delete)."""
    path = Path(path)
    return path.parent.glob(f".{path.name}.*.tmp")
