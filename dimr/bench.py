"""Benchmarks on this machine: training and sampling images/s, peak memory, achieved FLOP/s and MFU.

    python -m dimr bench --preset DiMR-T/3R --batch-size 16                                    # CPU, fp32
    python -m dimr bench --preset DiMR-XL/2R --device cuda --batch-size 128 --grad-checkpointing  # bf16 on CUDA
    python -m dimr bench --preset DiMR-XL/2R --device cuda --batch-size 32 64 128 --measure forward forward-backward
    python -m dimr bench --preset DiMR-T/3R --batch-size 16 --official ~/src/DiMR             # beside the official code
    python -m dimr bench --before b5a2f80 --preset DiMR-T/3R U-ViT-T/4                        # `dimr train`, before vs now
    python -m dimr bench --before b5a2f80 --contention 1 --preset DiMR-T/3R                   # ... beside a busy process

Each measure times *calls*, every call synchronised with the device before its clock stops:

* ``train`` — one optimiser step of :func:`dimr.train.train_step` (forward, the multi-scale loss of eq. (8)
  over every branch's output, backward, AdamW, EMA) on a fixed synthetic batch of the preset's shape (no data
  loading); the run is built by :func:`dimr.train.setup`, so its precision, checkpointing and compile are
  the trainer's own;
* ``sample`` — drawing one batch with :func:`dimr.sample.sample_images`: DPM-Solver with the recipe's steps and
  CFG weight (a guided step is one forward of the doubled batch);
* ``forward`` / ``forward-backward`` — the network alone at the batch (no optimiser).

``--warmup`` untimed calls, then ``--steps`` timed ones (sampling: one warm-up, ``--sample-runs`` timed);
images/s = images per call / the median seconds of a call.

**FLOPs** and **peaks** come from :mod:`dimr.flops` (2 FLOPs per MAC of the zoo's count; a training image
3×, 4× with activation checkpointing; sampling counts the network images a call really evaluates); achieved
FLOP/s = FLOPs per call / median seconds; **MFU** = achieved / peak (``--peak-tflops`` overrides the peak). **Peak memory**: CUDA ``max_memory_allocated``; on a CPU the process's peak resident set
(``VmHWM``, reset before each call), which counts everything the process holds.

**Side by side** (``--official PATH``, a checkout of github.com/qihao067/DiMR, never committed here): the
official network is built and checked equal to ours by :mod:`dimr.official`; if it is not, nothing is
timed. Then the same calls of both
alternate in one process (ours, official, ours, …) through the same training step, loss, optimiser and sampler;
the record gives each side's median and the ratio ours/official. The official blocks always checkpoint their
activations (docs/official-code.md §2); ours do with ``--grad-checkpointing`` (the record says which side did).
Both sides run at ``--amp`` (the official training ran under fp16 autocast, §5).

**Before/after** (``--before REV``) and **contention** (``--contention N``): the default ``python -m dimr train``
at two revisions, or alone and beside busy processes; both together compare the revisions beside busy
processes (:mod:`dimr.train_rate`).

Every record is a JSON file under ``runs/bench/`` (or ``--out``); nothing here is a test.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as _dt
import gc
import itertools
import os
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

from .cli import parser
from .config import from_namespace
from .device import pick_device
from .diffusion import data_classes
from .flops import MEASURES, device_peak, flops_per_image
from .official import (OFFICIAL_TOLERANCE, check_equivalence, official_code, official_commit,
                       official_libs, official_side)
from .files import atomic_write_json
from .provenance import git_info, hardware_info, mark_external, repo_root
from .train_rate import HUGE_PAGE_WORKLOADS, cli_before_after, cli_contention, cli_huge_pages, slug_of

__all__ = ["PeakMemory", "bench_run", "Work", "make_work", "time_calls", "BenchConfig", "bench", "default_out",
           "format_summary", "cli"]





# ---------------------------------------------------------------------------------------------
# Memory
# ---------------------------------------------------------------------------------------------








class PeakMemory:
    """Peak memory of what runs between :meth:`reset` and :meth:`read` (bytes). CUDA: ``max_memory_allocated``;
    Linux CPU: the process's peak resident set ``VmHWM``, reset through ``/proc/self/clear_refs``; elsewhere
    the process's peak since it started (``ru_maxrss``). :attr:`kind` says which."""

    def __init__(self, device: torch.device):
        self.device = device
        if device.type == "cuda":
            self.kind = "CUDA max_memory_allocated"
        elif self._clear_refs():
            self.kind = "process peak RSS (VmHWM, reset before each call; the whole process)"
        else:
            self.kind = "process peak RSS since start (ru_maxrss; the whole process)"

    @staticmethod
    def _clear_refs() -> bool:
        try:
            Path("/proc/self/clear_refs").write_text("5")  # 5: reset the peak RSS to the current RSS
            return True
        except OSError:
            return False

    def reset(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        elif self.kind.startswith("process peak RSS (VmHWM"):
            self._clear_refs()

    def read(self) -> int:
        if self.device.type == "cuda":
            return int(torch.cuda.max_memory_allocated(self.device))
        with contextlib.suppress(OSError):
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


# ---------------------------------------------------------------------------------------------
# The runs and the work a call does
# ---------------------------------------------------------------------------------------------
class _SyntheticData(torch.utils.data.Dataset):
    """Random ``[C, H, W]`` images and labels of a preset's shape: what :func:`dimr.train.setup` fits a run to."""

    def __init__(self, shape: tuple[int, int, int], num_classes: int, n: int = 64):
        self.image_shape, self.num_classes = tuple(shape), num_classes
        self.class_names = [str(i) for i in range(num_classes)]
        g = torch.Generator().manual_seed(0)
        self.x, self.y = torch.randn(n, *shape, generator=g), torch.randint(0, num_classes, (n,), generator=g)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def bench_run(preset: str, batch: int, device: str = "cpu", amp: str = "none", checkpointing: bool = False,
              compile_: bool = False):
    """A :class:`dimr.train.Run` of ``preset`` at ``batch`` built by :func:`dimr.train.setup` on synthetic data of
    the preset's shape, whose every step takes one fixed batch (``x0: [batch, C, H, W]``, ``y: [batch]``)."""
    from .presets import get_preset
    from .train import TrainConfig, setup

    p = get_preset(preset)
    cfg = p.model
    data = _SyntheticData((cfg.in_channels, cfg.image_size, cfg.image_size), data_classes(cfg, p.recipe.p_uncond > 0),
                          n=batch)
    train_cfg = TrainConfig(preset=p.name, batch_size=batch, steps=1_000_000, warmup_steps=0, amp=amp,
                            grad_checkpointing=checkpointing, compile="on" if compile_ else "off", device=device,
                            progress=False)
    with tempfile.TemporaryDirectory(prefix="dimr-bench-") as tmp:
        # the data fixes the network's input size and classes (setup fits the preset to its data); every step
        # takes the same batch; nothing is written (the bench never checkpoints or logs)
        return setup(train_cfg, Path(tmp) / "run", dataset=data, batches=itertools.repeat((data.x, data.y)))


@dataclass
class Work:
    """What one timed call of a measure does: ``call()`` processes ``images`` images; ``flops()`` gives the FLOPs
    of one call (sampling knows them once a call has counted its network images)."""

    measure: str
    call: Callable[[], None]
    images: int
    flops: Callable[[], float]
    info: Callable[[], dict] = dict


def _autocast(run):
    return torch.autocast(run.env.device.type, dtype=run.amp_dtype, enabled=run.amp_dtype is not None)


def _one_batch(run):
    """The fixed batch with step 0's label dropout, times and noise, on the device: ``x0, y, t, eps``."""
    from .determinism import draw_noise

    x0, y = next(run.batches)
    y, t, eps = draw_noise(0, run.sampler.sample_ids(0), y, x0.shape[1:], run.schedule, run.cfg, run.null_class)
    return (v.to(run.env.device) for v in (x0, y, t, eps))


def _train_work(run, per_image: float) -> Work:
    from .train import train_step

    steps = itertools.count()

    def call():
        run.model.train()
        train_step(run, next(steps))
    return Work("train", call, run.cfg.batch_size, lambda: per_image * run.cfg.batch_size)


def _network_work(run, measure: str, per_image: float) -> Work:
    """``forward`` (no grad, eval mode) or ``forward-backward`` (the training loss's backward, no optimiser)."""
    from .train import training_loss

    x0, y, t, eps = _one_batch(run)
    x_t = run.schedule.add_noise(x0, eps, t)

    def forward():
        run.model.eval()
        with torch.no_grad(), _autocast(run):
            run.fwd(x_t, t, y)

    def forward_backward():
        run.model.train()
        training_loss(run.fwd, run.schedule, x0, y, t, eps, run.cfg, run.amp_dtype).total.backward()
        run.model.zero_grad(set_to_none=True)
    call = forward if measure == "forward" else forward_backward
    return Work(measure, call, len(y), lambda: per_image * len(y))


def _sample_work(run, sampler, per_image: float) -> Work:
    """One batch drawn by :func:`dimr.sample.sample_images` (eager: sampling does not run through compile); a
    pre-hook on the network counts the network images it evaluates."""
    from .sample import even_labels, sample_images

    batch, labels = run.cfg.batch_size, even_labels(run.cfg.batch_size, run.dataset.num_classes)
    seen = {"images": 0, "calls": 0}
    # the denoiser's own forward sees every network batch, guided (doubled) or not
    run.net.register_forward_pre_hook(lambda module, args: seen.__setitem__("images", seen["images"] + len(args[0])))

    def call():
        run.model.eval()
        seen["calls"] += 1
        with _autocast(run):
            sample_images(run.net, labels, sampler, seed=0, batch_size=batch, device=run.env.device, progress=False)

    def per_call() -> float:
        return seen["images"] / max(seen["calls"], 1)
    return Work("sample", call, batch, lambda: per_image * per_call(), lambda: {"network_images_per_call": per_call()})


def make_work(measure: str, run, gmacs: float, checkpointing: bool, sampler=None) -> Work:
    """The :class:`Work` of ``measure`` on ``run`` (``sampler``: a :class:`dimr.sample.SamplerConfig` for ``sample``);
    ``checkpointing`` is whether this network checkpoints its activations (it sets the FLOP factor)."""
    per_image = flops_per_image(gmacs, measure, checkpointing)
    if measure == "train":
        return _train_work(run, per_image)
    if measure == "sample":
        return _sample_work(run, sampler, per_image)
    return _network_work(run, measure, per_image)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(works: Sequence[Work], warmup: int, timed: int, device: torch.device, memory: PeakMemory,
               names: Sequence[str] = ("ours", "official"), progress: Callable[[str], None] | None = print) -> list[dict]:
    """Alternate the calls of ``works`` (A B A B …): ``warmup`` untimed rounds, then ``timed`` rounds. Per work:
    ``{"seconds": [timed calls], "median_s", "peak_memory_bytes", "host": {...}}`` (memory reset before each call,
    off the clock); ``host`` holds the medians over timed calls of this process's CPU seconds in user and system
    (kernel) mode and of its minor page faults (the kernel's time goes mostly to those on large CPU steps)."""
    seconds, peaks = [[] for _ in works], [0] * len(works)
    host = [{"user_s": [], "system_s": [], "minor_page_faults": []} for _ in works]
    for i in range(warmup + timed):
        line = []
        for k, work in enumerate(works):
            memory.reset()
            _sync(device)
            r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
            work.call()
            _sync(device)
            dt, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
            peaks[k] = max(peaks[k], memory.read())
            if i >= warmup:
                seconds[k].append(dt)
                for key, v in (("user_s", r1.ru_utime - r0.ru_utime), ("system_s", r1.ru_stime - r0.ru_stime),
                               ("minor_page_faults", r1.ru_minflt - r0.ru_minflt)):
                    host[k][key].append(v)
            line.append(f"{names[k]} {dt:.3f} s" if len(works) > 1 else f"{dt:.3f} s")
        if progress:
            phase = f"warm-up {i + 1}/{warmup}" if i < warmup else f"timed {i + 1 - warmup}/{timed}"
            progress(f"  {works[0].measure} {phase}: " + ", ".join(line))
    return [{"seconds": s, "median_s": statistics.median(s), "peak_memory_bytes": p,
             "host": {key: statistics.median(v) for key, v in h.items()}} for s, p, h in zip(seconds, peaks, host)]


def _side_result(work: Work, timing: dict, peak_tflops: float | None, checkpointing: bool) -> dict:
    median = timing["median_s"]
    flops = work.flops()
    achieved = flops / median / 1e12
    return {"images_per_s": work.images / median, "median_s": median, "seconds": timing["seconds"],
            "images_per_call": work.images, "gradient_checkpointing": checkpointing, "flops_per_call": flops,
            "achieved_tflops": achieved, "mfu": achieved / peak_tflops if peak_tflops else None,
            "peak_memory_gib": timing["peak_memory_bytes"] / 2 ** 30, "host_per_call": timing["host"], **work.info()}


# ---------------------------------------------------------------------------------------------
# A benchmark of one preset: the record
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BenchConfig:
    """What :func:`bench` measures. ``amp=None``: bf16 on CUDA, ``"none"`` (fp32) elsewhere; ``sample_steps=None``:
    the recipe's sampling steps; ``official``: a checkout of qihao067/DiMR to run side by side."""

    preset: str = "DiMR-T/3R"
    batch_sizes: tuple[int, ...] = (16,)
    device: str = "auto"
    amp: str | None = None
    grad_checkpointing: bool = False
    compile: bool = False
    measures: tuple[str, ...] = ("train", "sample")
    warmup: int = 3
    steps: int = 10
    sample_runs: int = 3
    sample_steps: int | None = None
    official: str | None = None
    official_commit: str | None = None
    peak_tflops: float | None = None
    peak_seconds: float = 1.0


def _validate(cfg: BenchConfig) -> None:
    bad = [m for m in cfg.measures if m not in MEASURES]
    if bad:
        raise ValueError(f"unknown measure {bad[0]!r}; choose from {', '.join(MEASURES)}")
    if cfg.amp not in (None, "bf16", "none"):
        raise ValueError(f"amp must be 'bf16' or 'none', got {cfg.amp!r}")
    if min(cfg.batch_sizes) < 1 or cfg.steps < 1 or cfg.sample_runs < 1 or cfg.warmup < 0:
        raise ValueError("batch sizes, timed steps and sample runs must be positive, warm-up steps not negative")


def _sampler(preset, steps: int | None):
    """The recipe's DPM-Solver (its steps, time grid and CFG weight w = 1 + scale) as :mod:`dimr.sample` builds it."""
    from .sample import recipe_sampler

    r = preset.recipe
    return recipe_sampler({"steps": r.sampling_steps, "skip": r.sampling_skip, "cfg_scale": r.cfg_scale}, steps=steps)


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _bench_batch(cfg: BenchConfig, batch: int, amp: str, gmacs: float, mrmodel, sampler, peak, memory,
                 progress) -> tuple[list[dict], float | None]:
    """Every measure at one batch size (both sides with ``mrmodel``); returns the result entries and, side by
    side, the equivalence check's largest difference."""
    device, diff = pick_device(cfg.device), None
    progress(f"{cfg.preset}, batch {batch}: building" + (" ours and the official network" if mrmodel else ""))
    try:
        runs = [bench_run(cfg.preset, batch, str(device), amp, cfg.grad_checkpointing, cfg.compile)]
        if mrmodel is not None:
            runs.append(official_side(runs[0], mrmodel))
            diff = check_equivalence(runs[0].model, runs[1].model, runs[0].model_cfg, device)
            progress(f"  equivalence: outputs agree to {diff:.2g} (allowed {OFFICIAL_TOLERANCE:g}, fp32)")
    except torch.OutOfMemoryError:
        _free(device)
        return [{"batch": batch, "error": "out of memory while building the run"}], diff
    names, checkpointing = ("ours", "official")[:len(runs)], (cfg.grad_checkpointing, True)[:len(runs)]
    entries = []
    for measure in cfg.measures:
        warmup, timed = (1, cfg.sample_runs) if measure == "sample" else (cfg.warmup, cfg.steps)
        progress(f"  {measure} at batch {batch}: {warmup} warm-up, {timed} timed call(s)")
        try:
            works = [make_work(measure, r, gmacs, c, sampler) for r, c in zip(runs, checkpointing)]
            timings = time_calls(works, warmup, timed, device, memory, names, progress)
        except torch.OutOfMemoryError:
            _free(device)
            entries.append({"batch": batch, "measure": measure, "error": "out of memory"})
            continue
        sides = {n: _side_result(w, t, peak["tflops"], c) for n, w, t, c in zip(names, works, timings, checkpointing)}
        entry = {"batch": batch, "measure": measure, "sides": sides}
        if len(sides) == 2:
            entry["ours_over_official"] = sides["ours"]["images_per_s"] / sides["official"]["images_per_s"]
        entries.append(entry)
    del runs
    _free(device)
    return entries, diff


def bench(cfg: BenchConfig, progress: Callable[[str], None] = print) -> dict:
    """Run every measure of ``cfg`` at each batch size and return the record (a JSON-ready dict; see the module
    docstring for what is timed and how FLOPs, peaks and memory are counted)."""
    from .convert import official_model_config
    from .presets import get_preset
    from .profile import profile_preset

    _validate(cfg)
    device, preset = pick_device(cfg.device), get_preset(cfg.preset)
    amp = cfg.amp or ("bf16" if device.type == "cuda" else "none")
    if cfg.official:  # a preset the official code cannot build, or no checkout, fails before any work
        official_model_config(preset.model)
        official_libs(cfg.official)
    row, sampler = profile_preset(preset.name), _sampler(preset, cfg.sample_steps)
    progress(f"{preset.name}: {row.params / 1e6:.2f}M parameters, {row.gmacs:.3f} GMACs per forward image")
    peak, memory = device_peak(device, amp, cfg.peak_tflops, cfg.peak_seconds), PeakMemory(device)
    progress(f"peak: {peak['tflops'] or float('nan'):.3g} TFLOP/s ({peak['source']})")
    results, diffs = [], {}
    with official_code(cfg.official) if cfg.official else contextlib.nullcontext() as mrmodel:
        for batch in cfg.batch_sizes:
            entries, diffs[str(batch)] = _bench_batch(cfg, batch, amp, row.gmacs, mrmodel, sampler, peak, memory,
                                                      progress)
            results += entries
    return _record(cfg, preset, row, amp, device, peak, memory, sampler, diffs, results)


def _record(cfg: BenchConfig, preset, row, amp, device, peak, memory, sampler, diffs, results) -> dict:
    hw = hardware_info()
    ckpt = {"ours": cfg.grad_checkpointing, **({"official": True} if cfg.official else {})}
    official = None if not cfg.official else {
        "checkout": mark_external(str(Path(cfg.official).expanduser().resolve())),
        "commit": official_commit(cfg.official, cfg.official_commit), "repository": "github.com/qihao067/DiMR",
        "how": "MRModel imported at run time from a temporary copy of the checkout's libs/, built by "
               "dimr.convert.official_model_config, initialised by its own code; its state dict converted by "
               "dimr.convert into this package's network; calls alternate ours, official, ours, ...",
        "equivalence_tolerance": OFFICIAL_TOLERANCE, "equivalence_max_abs_diff_by_batch": diffs,
        "gradient_checkpointing": "always (its Transformer and ConvNeXt blocks call torch.utils.checkpoint)"}
    return {
        "what": "python -m dimr bench: images/s of training steps and sampling, peak memory, achieved FLOP/s, MFU",
        "preset": preset.name, "params": row.params, "gmacs_per_image": row.gmacs,
        "gmacs_source": "dimr.profile.profile_preset: one forward pass at batch 1 (the paper's GFLOPs convention)",
        "batch_sizes": list(cfg.batch_sizes), "measures": list(cfg.measures), "amp": amp,
        "gradient_checkpointing": ckpt, "compile": cfg.compile, "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else hw["cpu"],
        "threads": torch.get_num_threads(), "torch": torch.__version__, "hardware": hw, "git": git_info(),
        # CPU tensors on huge pages or not (dimr.allocator decides it for every dimr command): it moves CPU step times
        "thp_mem_alloc_enable": os.environ.get("THP_MEM_ALLOC_ENABLE"),
        "when": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "peak": peak,
        "flops": "2 FLOPs per MAC of gmacs_per_image; forward and sample 1x per network image, train and "
                 "forward-backward 3x per image (4x for a side that checkpoints activations); sampling counts the "
                 "network images each call evaluates",
        "timing": {"train_forward": {"warmup_calls": cfg.warmup, "timed_calls": cfg.steps},
                   "sample": {"warmup_calls": 1, "timed_calls": cfg.sample_runs},
                   "statistic": "median wall seconds of a call, the device synchronised before and after each "
                                "call; side by side, the two sides' calls alternate",
                   "data": "one fixed synthetic batch of the preset's shape (no data loading); sampling runs eager"},
        "memory": memory.kind + ("; side by side, both networks are resident" if cfg.official else ""),
        "sampler": dataclasses.asdict(sampler), "official": official, "results": results,
    }


def default_out(record: dict) -> Path:
    """``runs/bench/<preset>-<device>-<precision>-b<batches>[-ckpt][-compile][-vs-official].json``."""
    name = slug_of(record["preset"])
    parts = [name, record["device"].split(":")[0], "bf16" if record["amp"] == "bf16" else "fp32",
             "b" + "-".join(map(str, record["batch_sizes"]))]
    parts += ["ckpt"] * record["gradient_checkpointing"]["ours"] + ["compile"] * record["compile"]
    parts += ["vs-official"] * (record["official"] is not None)
    return repo_root() / "runs" / "bench" / ("-".join(parts) + ".json")


def format_summary(record: dict) -> str:
    """The record as a table: one row per measure, batch and side, then the ratios ours/official."""
    head = (f"{record['preset']} on {record['device_name']} ({record['device']}, {record['threads']} threads), "
            f"{record['amp'] if record['amp'] == 'bf16' else 'fp32'}, compile {'on' if record['compile'] else 'off'}; "
            f"peak {record['peak']['tflops'] or float('nan'):.3g} TFLOP/s ({record['peak']['source']})")
    lines = [head, "", "| measure | batch | side | ckpt | images/s | s/call | TFLOP/s | MFU | peak memory |",
             "|---|---|---|---|---|---|---|---|---|"]
    ratios = []
    for e in record["results"]:
        if "error" in e:
            lines.append(f"| {e.get('measure', '-')} | {e['batch']} | | | {e['error']} | | | | |")
            continue
        for side, r in e["sides"].items():
            mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] is not None else "-"
            lines.append(f"| {e['measure']} | {e['batch']} | {side} | {'yes' if r['gradient_checkpointing'] else 'no'} "
                         f"| {r['images_per_s']:.2f} | {r['median_s']:.4f} | {r['achieved_tflops']:.4g} | {mfu} | "
                         f"{r['peak_memory_gib']:.2f} GiB |")
        if "ours_over_official" in e:
            ratios.append(f"{e['measure']} at batch {e['batch']}: ours/official = {e['ours_over_official']:.2f}x")
    lines += ["", f"peak memory: {record['memory']}"] + (["", *ratios] if ratios else [])
    return "\n".join(lines)








# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    ap = parser("bench", __doc__.splitlines()[0])
    D = BenchConfig()  # every default is the config's: one source
    ap.add_argument("--preset", nargs="+", default=[D.preset],
                    help="a name from `python -m dimr zoo` (several only with --before)")
    ap.add_argument("--device", default=D.device, help="auto, cpu, cuda or cuda:K")
    ap.add_argument("--amp", choices=["bf16", "none"], help="autocast dtype (default: bf16 on CUDA, none = fp32 elsewhere)")
    ap.add_argument("--batch-size", type=int, nargs="+", default=list(D.batch_sizes), help="batch sizes, one measurement each")
    ap.add_argument("--grad-checkpointing", action="store_true", help="activation checkpointing in our network")
    ap.add_argument("--compile", action="store_true", help="torch.compile the training step's network")
    ap.add_argument("--measure", nargs="+", choices=MEASURES, default=list(D.measures), metavar="MEASURE",
                    help=f"what to time: {', '.join(MEASURES)}")
    ap.add_argument("--warmup", type=int, default=D.warmup,
                    help="untimed calls before the timed ones (train, forward; with --compile the first compiles)")
    ap.add_argument("--steps", type=int, default=D.steps, help="timed calls (train, forward)")
    ap.add_argument("--sample-runs", type=int, default=D.sample_runs, help="timed sampling calls, after one warm-up")
    ap.add_argument("--sample-steps", type=int, help="DPM-Solver steps (default: the recipe's)")
    ap.add_argument("--peak-tflops", type=float, help="the peak MFU is taken against (default: datasheet on CUDA, "
                                                      "measured on CPUs)")
    ap.add_argument("--peak-seconds", type=float, default=D.peak_seconds, help="how long the CPU peak matmul is timed")
    ap.add_argument("--official", metavar="PATH", help="a checkout of github.com/qihao067/DiMR to run side by side")
    ap.add_argument("--official-commit", help="the checkout's commit, recorded when PATH is not a git repository")
    ap.add_argument("--out", help="the record's path (default: runs/bench/<preset>-<device>-<precision>-b<batch>….json)")
    c = ap.add_argument_group("contention (the default `dimr train` alone and beside busy processes)")
    c.add_argument("--contention", type=int, metavar="N",
                   help="busy processes beside the measured run; switches to this mode (with --before: beside every "
                        "run of both revisions)")
    c.add_argument("--variant", action="append", metavar="VAR=VALUE[,VAR=VALUE]",
                   help="an environment to measure besides the defaults (repeatable), e.g. OMP_WAIT_POLICY=PASSIVE")
    h = ap.add_argument_group("huge pages (one training step with THP_MEM_ALLOC_ENABLE off and on)")
    h.add_argument("--huge-pages", nargs="*", metavar="PRESET@BATCH", help="workloads to measure (default: "
                   + " ".join(f"{p}@{b}" for p, b in HUGE_PAGE_WORKLOADS) + "); switches to this mode and keeps "
                   "the choice for this machine (dimr.allocator)")
    g = ap.add_argument_group("before/after (the default `dimr train` at a git revision and in this checkout)")
    g.add_argument("--before", metavar="REV", help="git revision of the 'before' code; switches to this mode")
    g.add_argument("--windows", type=int, default=12, help="logged windows of 10 steps timed after the first")
    g.add_argument("--rounds", type=int, default=2, help="rounds of (before, after), or of (alone, busy)")
    g.add_argument("--train-args", help="extra `dimr train` flags for both sides, e.g. '--batch-size 64'")
    return ap


def _progress(line: str) -> None:
    print(line, flush=True)


def cli(argv: list[str]) -> int:
    """``python -m dimr bench --preset P [--device D] [--amp A] [--batch-size B …] [--official PATH]``"""
    args = _parser().parse_args(argv)
    try:
        if args.before:  # with --contention N: before and after, both beside N busy processes
            return cli_before_after(args)
        if args.contention is not None:
            return cli_contention(args)
        if args.huge_pages is not None:
            return cli_huge_pages(args)
    except (KeyError, ValueError, RuntimeError) as e:  # RuntimeError: a training run that failed (its stderr)
        print(f"dimr bench: {e.args[0] if e.args else e}", file=sys.stderr)
        return 2
    try:
        if len(args.preset) != 1:
            raise ValueError("one preset per record: run once per preset (several presets only with --before)")
        cfg = from_namespace(BenchConfig, args, preset=args.preset[0], batch_sizes=tuple(args.batch_size),
                             measures=tuple(args.measure))
        record = bench(cfg, _progress)
    except (KeyError, ValueError) as e:  # a bad preset, device or option; a network the official code lacks
        print(f"dimr bench: {e.args[0] if e.args else e}", file=sys.stderr)
        return 2
    record["command"] = mark_external("python -m dimr bench " + " ".join(argv))
    out = Path(args.out) if args.out else default_out(record)
    atomic_write_json(out, record)
    print("\n" + format_summary(record) + f"\n\nrecord -> {out}")
    return 0
