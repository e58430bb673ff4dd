"""FLOPs and peaks in one place: what a training or sampling image costs, and what a device can do.

FLOPs come from the zoo's MAC count (:func:`dimr.profile.count_gmacs`: one forward pass at batch 1, the paper's
"GFLOPs"), 2 FLOPs per MAC: a forward pass is 1×, a training image 3× (the backward costs about two forwards), 4×
with activation checkpointing (the forward runs again in the backward). The **peak** MFU is taken against: on CUDA
the dense datasheet peak of the device (:data:`DATASHEET_PEAKS`), on a CPU an achievable peak measured in-process
(:func:`measure_cpu_peak`). :mod:`dimr.bench` and the book's full-scale page read both from here.
"""
from __future__ import annotations

import time

import torch

__all__ = ["MEASURES", "DATASHEET_PEAKS", "flops_per_image", "datasheet_peak", "measure_cpu_peak", "device_peak"]

MEASURES = ("train", "sample", "forward", "forward-backward")


#: dense (no sparsity) peak TFLOP/s by a substring of the CUDA device name, first match wins (NVIDIA datasheets:
#: H100 SXM/HBM3 and H200 989 bf16 / 67 fp32, H100 PCIe 756 / 51, A100 312 / 19.5); fp32 is the non-tensor peak
DATASHEET_PEAKS = (
    ("H100 PCIe", {"bf16": 756.0, "fp32": 51.0}),
    ("H100", {"bf16": 989.0, "fp32": 67.0}),
    ("H200", {"bf16": 989.0, "fp32": 67.0}),
    ("A100", {"bf16": 312.0, "fp32": 19.5}),
)


def flops_per_image(gmacs: float, measure: str, checkpointing: bool = False) -> float:
    """FLOPs of one image (one network image for ``sample``) in ``measure`` from the forward GMACs at batch 1:
    2 FLOPs per MAC; ``forward``/``sample`` 1×, ``train``/``forward-backward`` 3× (backward ≈ 2 forwards), 4× with
    activation checkpointing (the backward re-runs the forward)."""
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {', '.join(MEASURES)}, got {measure!r}")
    passes = 1 if measure in ("forward", "sample") else 4 if checkpointing else 3
    return 2e9 * gmacs * passes


def datasheet_peak(device_name: str, dtype: str) -> float | None:
    """Dense datasheet TFLOP/s of a CUDA device named ``device_name`` in ``dtype`` (``"bf16"``/``"fp32"``),
    None for a device not in :data:`DATASHEET_PEAKS`."""
    for key, peaks in DATASHEET_PEAKS:
        if key.lower() in device_name.lower():
            return peaks[dtype]
    return None


def measure_cpu_peak(dtype: torch.dtype = torch.float32, seconds: float = 1.0, n: int = 2048) -> float:
    """An achievable peak of this CPU, TFLOP/s: ``[n, n] @ [n, n]`` products in ``dtype`` repeated for about
    ``seconds`` at torch's current thread count; the fastest product counts (2n³ FLOPs)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b  # the first product pays for allocation and kernel selection
    best, start = float("inf"), time.perf_counter()
    while time.perf_counter() - start < seconds or best == float("inf"):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e12


def device_peak(device: torch.device, amp: str, override: float | None = None, cpu_seconds: float = 1.0) -> dict:
    """``{"tflops": float | None, "dtype", "source"}``: the peak MFU is taken against (``override``, the
    datasheet for CUDA, a measurement for CPUs)."""
    dtype = "bf16" if amp == "bf16" else "fp32"
    if override is not None:
        return {"tflops": float(override), "dtype": dtype, "source": "--peak-tflops (given on the command line)"}
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        tflops = datasheet_peak(name, dtype)
        source = (f"NVIDIA datasheet, dense {dtype} peak of {name}" if tflops is not None else
                  f"unknown: {name} is not in dimr.bench.DATASHEET_PEAKS; pass --peak-tflops")
        return {"tflops": tflops, "dtype": dtype, "source": source}
    n, threads = 2048, torch.get_num_threads()
    tflops = measure_cpu_peak(torch.bfloat16 if dtype == "bf16" else torch.float32, cpu_seconds, n)
    return {"tflops": tflops, "dtype": dtype,
            "source": f"measured here: fastest {n}×{n} {dtype} matmul over {cpu_seconds:g} s at {threads} threads"}
