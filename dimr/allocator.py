"""The CPU allocator's transparent huge pages: on only where they measured faster.

PyTorch puts CPU tensors of 2 MiB and more on transparent huge pages when ``THP_MEM_ALLOC_ENABLE=1``
(read once, at the process's first allocation, so it must be decided before torch is imported). A large
model's training step allocates gigabytes of activations afresh; on 4 KiB pages every step pays hundreds of
thousands of page faults, which ``python -m dimr bench`` shows as the step's system time. Whether huge
pages win depends on the CPU and the kernel, not only on the model: they removed the page-fault time of
DiMR-M/3R's step on the AMD EPYC machines this project measured, and can cost time elsewhere.

So the setting is a measurement, never an assumption (:func:`huge_pages`, in this order):

1. ``THP_MEM_ALLOC_ENABLE`` set in the environment: it stands.
2. This machine's own measurement, kept in the user's cache by ``python -m dimr bench --huge-pages``.
3. The CPUs measured in this repository (:data:`MEASURED`, each with its committed record).
4. Otherwise off: PyTorch's own default.

:func:`apply` sets the variable for this process and its children; every ``python -m dimr`` command and
the project's Jupyter kernel (:mod:`dimr.kernel`) call it before torch is imported. This module imports
no torch.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import MutableMapping

from .files import atomic_write_json, user_cache_file
from .provenance import cpu_name

__all__ = ["ENV", "MEASURED", "machine_file", "huge_pages", "remember", "apply"]

ENV = "THP_MEM_ALLOC_ENABLE"

#: CPU model → (huge pages on?, the committed record of ``python -m dimr bench --huge-pages`` that decided
#: it). ``tests/test_allocator.py`` checks each entry against its record.
MEASURED: dict[str, tuple[bool, str]] = {
    "AMD EPYC": (True, "runs/bench/huge-pages-amd-epyc-2026-12-07.json"),
}


def machine_file() -> Path:
    """``$XDG_CACHE_HOME/dimr/machine.json`` (``~/.cache/dimr/machine.json`` without the variable): what was
    measured on this machine, by CPU model."""
    return user_cache_file("machine.json")


def _local(cpu: str) -> dict | None:
    try:
        return json.loads(machine_file().read_text(encoding="utf-8")).get(cpu, {}).get("huge_pages")
    except (OSError, ValueError, AttributeError):
        return None  # absent or unreadable: advisory only


def huge_pages(cpu: str | None = None, environ: MutableMapping[str, str] | None = None) -> tuple[bool, str]:
    """Whether CPU tensors go on huge pages on ``cpu`` (default: this machine's), and why."""
    environ = os.environ if environ is None else environ
    if ENV in environ:
        return environ[ENV] == "1", f"{ENV}={environ[ENV]} set in the environment"
    cpu = cpu or cpu_name()
    local = _local(cpu)
    if local is not None:
        return bool(local["on"]), f"measured on this machine ({local.get('record', machine_file())})"
    if cpu in MEASURED:
        on, record = MEASURED[cpu]
        return on, f"measured on {cpu} ({record})"
    return False, f"not measured on {cpu}: off (python -m dimr bench --huge-pages measures it)"


def remember(cpu: str, on: bool, record: str) -> Path:
    """Keep this machine's measurement (:func:`huge_pages` reads it before :data:`MEASURED`)."""
    path = machine_file()
    try:
        known = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    known.setdefault(cpu, {})["huge_pages"] = {"on": bool(on), "record": str(record)}
    return atomic_write_json(path, known)


def apply(environ: MutableMapping[str, str] | None = None) -> str:
    """Decide (:func:`huge_pages`) and set ``THP_MEM_ALLOC_ENABLE`` for this process and its children;
    returns the reason. Call before torch is imported."""
    environ = os.environ if environ is None else environ
    on, why = huge_pages(environ=environ)
    environ[ENV] = "1" if on else "0"
    return why
