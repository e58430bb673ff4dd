"""Device choice, mixed precision and CPU allocator settings: the one place for each.

* :func:`pick_device` — ``"auto"`` means CUDA when present, else the CPU. Every ``--device`` option,
  and every library function with a ``device`` argument, goes through it (sampling, evaluation,
  torch-fidelity's feature extraction, the ViT classifier, latent encoding, training).
* :func:`autocast_dtype` — ``amp="auto"`` is bf16 on CUDA and on CPUs with native bf16 matrix
  kernels (AVX512-BF16 / AMX, as oneDNN reports them), fp32 elsewhere. Native kernels are not enough
  on a CPU: on a 2-core AMD EPYC with AVX512-BF16 a DiMR-T/3R training step was faster in bf16
  (``runs/train-throughput/``), on a 2-core Intel Xeon with AMX it was *slower*. So a training
  run that gets ``auto`` on such a CPU measures both on its own model (:func:`faster_autocast`) and
  keeps the faster; without native bf16 the emulation is slower than fp32, so it is off.
* :func:`tune_cpu_allocator` — glibc returns every freed block above its mmap threshold to the
  kernel and gets it back page by page on the next allocation. A CPU training step allocates and frees
  activations of several MB hundreds of times, so this page-faulting took about a third of a DiMR-T/3R
  step on 2 cores. Raising the thresholds keeps those blocks in the heap; nothing else changes.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import statistics
import time
from typing import Callable

import torch

__all__ = ["pick_device", "autocast_dtype", "cpu_has_native_bf16", "faster_autocast", "tune_cpu_allocator",
           "AMP_CHOICES"]

AMP_CHOICES = ("auto", "none", "bf16", "fp16")

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def pick_device(name: str | torch.device = "auto") -> torch.device:
    """``"auto"`` → ``cuda`` when available, else ``cpu``; anything else (``"cpu"``, ``"cuda:1"``, a
    ``torch.device``) is passed to ``torch.device``.

    Raises ``ValueError`` for a name torch does not know, and for a CUDA device when torch sees none
    (at once, rather than at the first tensor moved there)."""
    if isinstance(name, str) and name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"bad device {name!r}: {err}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name} requested but torch sees no CUDA device; use --device cpu")
    return device


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """Whether oneDNN runs bf16 matrix products natively on this CPU (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def autocast_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``amp`` (one of :data:`AMP_CHOICES`) on ``device``; ``None`` = fp32."""
    if amp not in AMP_CHOICES:
        raise ValueError(f"amp must be one of {AMP_CHOICES}, got {amp!r}")
    if amp == "auto":
        native = device.type == "cuda" or (device.type == "cpu" and cpu_has_native_bf16())
        return torch.bfloat16 if native else None
    return {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[amp]


def faster_autocast(work: Callable[[torch.dtype | None], None], candidates: tuple[str, ...] = ("none", "bf16"),
                    rounds: int = 7, margin: float = 0.05, clock: Callable[[], float] = time.perf_counter) -> str:
    """Which of ``candidates`` (names of :data:`AMP_CHOICES`) runs ``work`` fastest on this machine.

    ``work(dtype)`` does one representative piece of work (a training run passes a forward and backward
    pass of its own model; ``dtype`` is the autocast dtype, ``None`` = fp32). Each candidate runs once
    to warm up, then ``rounds`` times, alternating, so that a busy moment of the machine hits both; the
    median time of each counts (on a shared 2-core machine single timings swing by ±20%, so a best-of-few
    picked the slower precision now and then). The first candidate is the fallback: another wins only
    when it is faster by more than ``margin`` (a choice that changes the arithmetic should not rest on
    timing noise)."""
    dtypes = {name: autocast_dtype(name, torch.device("cpu")) for name in candidates}
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for name in candidates:
        work(dtypes[name])
    for _ in range(rounds):
        for name in candidates:
            start = clock()
            work(dtypes[name])
            times[name].append(clock() - start)
    typical = {name: statistics.median(ts) for name, ts in times.items()}
    fallback = candidates[0]
    winner = min(candidates, key=typical.__getitem__)
    return winner if typical[winner] < (1.0 - margin) * typical[fallback] else fallback


@functools.lru_cache(maxsize=1)
def tune_cpu_allocator(mmap_threshold: int = 32 << 20, trim_threshold: int = 1 << 30) -> bool:
    """Keep freed activation buffers in the process heap (glibc only; a no-op elsewhere).

    Sets ``M_MMAP_THRESHOLD`` (32 MiB, glibc's maximum) and ``M_TRIM_THRESHOLD`` (1 GiB). Returns
    whether both were accepted. Idempotent; it affects allocation speed only, never results."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and bool(mallopt(_M_TRIM_THRESHOLD, trim_threshold))
