"""Device choice, mixed precision and CPU allocator settings: the one place for each.

* :func:`pick_device` — ``"auto"`` means CUDA when present, else the CPU. Every ``--device`` option,
  and every library function with a ``device`` argument, goes through it (sampling, evaluation,
  torch-fidelity's feature extraction, the ViT classifier, latent encoding, training).
* :func:`autocast_dtype` / :func:`auto_precision` — ``amp="auto"`` is bf16 on CUDA and on CPUs with
  native bf16 matrix kernels (AVX512-BF16 / AMX, as oneDNN reports them), fp32 elsewhere (emulated bf16
  is slower than fp32). The choice is a property of the machine, never a timing: the same command trains
  with the same numerics on every run of a machine however busy it is, and the run records why. (On a
  2-core AMD EPYC with AVX512-BF16 a DiMR-T/3R step is faster in bf16, ``runs/bench/archive/cpu.json``; on an
  Intel Xeon with AMX eager bf16 measured a few percent slower — ``--amp none`` is the choice there for
  speed, at other numerics than the study's pinned bf16.)
* :func:`cpu_threads` / :func:`use_free_cores` — torch's OpenMP threads spin while they wait for each other, so
  a thread on a core another process holds stalls every parallel region: with one busy process beside it on
  two cores, a two-thread training ran at a fraction of its fair share (``runs/bench/contention-*``), while
  one thread ran at most of it. So a run starts with as many threads as there are cores *free* now — all of
  them on an idle machine (nothing changes there), fewer beside busy processes — unless ``OMP_NUM_THREADS``
  says otherwise. It is chosen once, at the start (compiled kernels keep the count they were built with).
* :func:`tune_cpu_allocator` — glibc returns every freed block above its mmap threshold to the
  kernel and gets it back page by page on the next allocation. A CPU training step allocates and frees
  activations of several MB hundreds of times, so this page-faulting took about a third of a DiMR-T/3R
  step on 2 cores. Raising the thresholds keeps those blocks in the heap; nothing else changes.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import time

import torch

__all__ = ["pick_device", "autocast_dtype", "autocast_off", "auto_precision", "cpu_has_native_bf16", "cpu_threads", "busy_cores_elsewhere",
           "use_free_cores", "free_cores_for", "tune_cpu_allocator", "AMP_CHOICES"]

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
        amp = auto_precision(device)[0]
    return {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[amp]


def autocast_off(device_type: str):
    """A region where autocast (if this device has it) is off; a no-op context elsewhere (``meta``)."""
    if torch.amp.is_autocast_available(device_type):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()


def auto_precision(device: torch.device) -> tuple[str, str]:
    """What ``amp="auto"`` means on ``device``, and why: ``("bf16" | "none", reason)``. Decided from what
    the device can do (:func:`cpu_has_native_bf16`), so it is the same for every run of a machine."""
    if device.type == "cuda":
        return "bf16", "CUDA: bf16 autocast"
    if device.type == "cpu" and cpu_has_native_bf16():
        return "bf16", "this CPU has native bf16 matrix kernels (oneDNN: AVX512-BF16 or AMX)"
    return "none", f"no native bf16 kernels on this {device.type} (emulated bf16 is slower than fp32): fp32"


def cpu_threads(cores: int, busy_elsewhere: float, ceiling: int | None = None) -> int:
    """Threads for a run on ``cores`` cores while other processes keep ``busy_elsewhere`` cores busy: the free
    cores (a core counts as busy from half its time on), at least one, at most ``ceiling``."""
    free = cores - int(busy_elsewhere + 0.5)
    return max(1, min(free, ceiling if ceiling is not None else cores))


def _proc_busy_ticks() -> tuple[float, float] | None:
    """``(busy ticks of the whole machine, ticks of this process)`` from ``/proc`` (Linux), or None."""
    try:
        cpu = [float(v) for v in open("/proc/stat").readline().split()[1:]]
        own = open("/proc/self/stat").read().rsplit(")", 1)[1].split()
    except (OSError, ValueError, IndexError):
        return None
    idle = cpu[3] + (cpu[4] if len(cpu) > 4 else 0.0)  # idle + iowait
    return sum(cpu[:8]) - idle, float(own[11]) + float(own[12])  # utime + stime


def busy_cores_elsewhere(seconds: float = 0.5) -> float | None:
    """How many cores other processes kept busy over the next ``seconds`` (this process's own use taken out),
    or None where ``/proc`` cannot tell."""
    before = _proc_busy_ticks()
    if before is None:
        return None
    time.sleep(seconds)
    after = _proc_busy_ticks()
    ticks = os.sysconf("SC_CLK_TCK") * seconds
    return max(0.0, ((after[0] - before[0]) - (after[1] - before[1])) / ticks)


def use_free_cores(seconds: float = 0.5) -> tuple[int, str]:
    """Set torch's thread count to the cores free now (:func:`cpu_threads`) and say why; an explicit
    ``OMP_NUM_THREADS`` is kept. Returns ``(threads, reason)``."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if os.environ.get("OMP_NUM_THREADS"):
        return torch.get_num_threads(), f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}"
    busy = busy_cores_elsewhere(seconds)
    if busy is None:
        return torch.get_num_threads(), "torch's default (no /proc to read the load from)"
    threads = cpu_threads(cores, busy, torch.get_num_threads())
    torch.set_num_threads(threads)
    return threads, f"{threads} of {cores} cores free (other processes kept {busy:.1f} busy at the start)"


def free_cores_for(device: str | torch.device) -> str | None:
    """:func:`use_free_cores` when ``device`` resolves to the CPU (its reason, for the command to print), else None."""
    return use_free_cores()[1] if pick_device(device).type == "cpu" else None


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
