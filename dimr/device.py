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
* :func:`tune_cpu_allocator` — glibc returns every freed block above its mmap threshold to the
  kernel and gets it back page by page on the next allocation. A CPU training step allocates and frees
  activations of several MB hundreds of times, so this page-faulting took about a third of a DiMR-T/3R
  step on 2 cores. Raising the thresholds keeps those blocks in the heap; nothing else changes.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools

import torch

__all__ = ["pick_device", "autocast_dtype", "auto_precision", "cpu_has_native_bf16", "tune_cpu_allocator",
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
        amp = auto_precision(device)[0]
    return {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[amp]


def auto_precision(device: torch.device) -> tuple[str, str]:
    """What ``amp="auto"`` means on ``device``, and why: ``("bf16" | "none", reason)``. Decided from what
    the device can do (:func:`cpu_has_native_bf16`), so it is the same for every run of a machine."""
    if device.type == "cuda":
        return "bf16", "CUDA: bf16 autocast"
    if device.type == "cpu" and cpu_has_native_bf16():
        return "bf16", "this CPU has native bf16 matrix kernels (oneDNN: AVX512-BF16 or AMX)"
    return "none", f"no native bf16 kernels on this {device.type} (emulated bf16 is slower than fp32): fp32"


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
