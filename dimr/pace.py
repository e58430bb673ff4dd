"""How fast this machine usually trains a configuration, and a note when a run falls far below it.

A laptop is rarely idle: a browser, an IDE or a second notebook on one of two cores can slow a training
run several times over (torch's threads wait for a core another process holds). A time-limited run then
trains far fewer steps than the same command did before, and nothing in its result says why. So every
finished run remembers its images/s on this machine (:func:`remember`, a small JSON file in the user's
cache, keyed by CPU, preset, batch, precision, compile and threads: :func:`pace_key`), and a later run
of the same key compares each logging window with it (:func:`slow_note`): far below, its progress line
and its summary say so ("another process is using the CPU: 23 img/s, expected ≈200").

Nothing here changes what a run computes; the file is advisory and safe to delete.
"""
from __future__ import annotations

import json
import statistics
from pathlib import Path

from .files import atomic_write, user_cache_file

__all__ = ["SLOW_FRACTION", "REMEMBERED_RUNS", "pace_file", "pace_key", "expected", "remember", "slow_note", "PaceWatch"]

#: a window slower than this fraction of the usual rate is called out (one busy process on two cores
#: leaves a fair share of one half; far below that, something else holds the cores)
SLOW_FRACTION = 0.5
#: how many recent runs of a key the expectation is the median of
REMEMBERED_RUNS = 5


def pace_file() -> Path:
    """``$XDG_CACHE_HOME/dimr/pace.json`` (``~/.cache/dimr/pace.json`` without the variable)."""
    return user_cache_file("pace.json")


def pace_key(cpu: str, preset: str, batch: int, amp: str, compiled: bool, threads: int) -> str:
    """What a rate is a rate of: ``"AMD EPYC|DiMR-T/3R|b16|bf16|compiled|2 threads"``."""
    return f"{cpu}|{preset}|b{batch}|{amp}|{'compiled' if compiled else 'eager'}|{threads} threads"


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def expected(key: str, path: Path | None = None) -> float | None:
    """The usual images/s of ``key`` on this machine (median of its last :data:`REMEMBERED_RUNS` runs), or
    None when no run of it finished here."""
    rates = _read(path or pace_file()).get(key)
    return statistics.median(rates) if rates else None


def remember(key: str, images_per_s: float, path: Path | None = None) -> None:
    """Add a finished run's rate to ``key``'s memory (the last :data:`REMEMBERED_RUNS` are kept)."""
    path = path or pace_file()
    data = _read(path)
    data[key] = (data.get(key, []) + [float(images_per_s)])[-REMEMBERED_RUNS:]
    atomic_write(path, lambda f: f.write(json.dumps(data, indent=1, sort_keys=True) + "\n"))


def slow_note(images_per_s: float, usual: float | None, fraction: float = SLOW_FRACTION) -> str | None:
    """``"another process is using the CPU: 23 img/s, expected ≈200"`` when ``images_per_s`` is below
    ``fraction`` of the ``usual`` rate; None when it is not, or nothing is usual yet."""
    if usual is None or usual <= 0 or images_per_s >= fraction * usual:
        return None
    return f"another process is using the CPU: {images_per_s:.0f} img/s, expected ≈{usual:.0f}"


class PaceWatch:
    """One run's comparison with its key's usual rate: :meth:`note` per logging window (the first is left
    out: it holds the compile and the warm-up), :meth:`finish` at the end (the summary's fields; a run that
    completed and was not mostly slow is remembered)."""

    def __init__(self, key: str | None, path: Path | None = None):
        self.key, self.path = key, path
        self.usual = expected(key, path) if key else None
        self.windows = self.slow = 0

    def note(self, images_per_s: float) -> str | None:
        """The slow note for one window's rate, or None."""
        self.windows += 1
        note = slow_note(images_per_s, self.usual) if self.windows > 1 else None
        self.slow += note is not None
        return note

    def finish(self, images_per_s: float, complete: bool) -> dict:
        """``{"usual_images_per_s", "slow_windows", "logged_windows", "slow_note"}`` for the run's summary."""
        timed = self.windows - 1  # the windows :meth:`note` judged
        mostly_slow = timed > 0 and 2 * self.slow > timed
        if self.key and complete and timed >= 2 and not mostly_slow:
            remember(self.key, images_per_s, self.path)
        note = slow_note(images_per_s, self.usual) if mostly_slow else None
        return {"usual_images_per_s": self.usual, "slow_windows": self.slow, "logged_windows": max(timed, 0),
                "slow_note": note}
