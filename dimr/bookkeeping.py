"""A training run's bookkeeping: its checkpoint, its log, and the moment it stops.

:class:`Checkpointer` writes and restores ``latest.pt`` (and the snapshots a learning curve needs);
:class:`MetricsLog` appends ``metrics.jsonl``; :class:`StopRequest` turns SIGTERM, Ctrl-C, a time limit
and a diverged loss into one decision that every process takes after the same step;
:func:`progress_line` is what a run without a progress bar prints. :func:`dimr.train.train` joins them.
"""
from __future__ import annotations

import json
import math
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .config import config_to_dict
from .determinism import rng_state, set_rng_state
from .files import atomic_write, stale_temporaries

if TYPE_CHECKING:
    from .optim import EMA
    from .train import Run, _Dist

__all__ = ["CHECKPOINT_NAME", "snapshot_name", "Checkpointer", "MetricsLog", "StopRequest", "progress_line"]

CHECKPOINT_NAME = "latest.pt"


def snapshot_name(step: int) -> str:
    """``step-NNNNNNN.pt``: the copy of the checkpoint a run keeps at ``step`` (``snapshot_steps``)."""
    return f"step-{step:07d}.pt"


class Checkpointer:
    """``out/latest.pt``: model, EMA, optimiser, grad scaler, step, RNG states and the run's configs,
    written atomically by rank 0 (every rank then meets at a barrier)."""

    def __init__(self, run: Run, enabled: bool = True):
        self.run, self.enabled, self.path = run, enabled, run.out / CHECKPOINT_NAME
        if run.env.main:
            run.out.mkdir(parents=True, exist_ok=True)
            for stale in stale_temporaries(self.path):  # writes cut short by SIGKILL
                stale.unlink()

    @staticmethod
    def read(out: Path, resume: bool) -> dict | None:
        """The checkpoint in ``out`` to resume, or None for a new run; a new run refuses to overwrite one."""
        path = out / CHECKPOINT_NAME
        if not path.exists():
            return None
        if not resume:
            raise CheckpointError(f"{path} exists: pass --resume to continue that run, or choose another --out")
        return load_checkpoint(path)

    @staticmethod
    def restore(saved: dict, out: Path, model, ema: EMA, opt, scaler) -> int:
        """Load ``saved`` into the run's pieces and the global RNGs; returns the step to continue from."""
        try:
            model.load_state_dict(saved["model"])
            ema.load_state_dict(saved["ema"])
            opt.load_state_dict(saved["optimizer"])
            if saved.get("scaler"):
                scaler.load_state_dict(saved["scaler"])
        except (RuntimeError, KeyError, ValueError) as e:
            raise CheckpointError(f"checkpoint {out / CHECKPOINT_NAME} does not fit this run: {e}") from e
        set_rng_state(saved["rng"])
        return int(saved["step"])

    def save(self, step: int, snapshot: bool = False) -> None:
        """Write ``latest.pt`` at ``step``; with ``snapshot``, also keep a copy (:func:`snapshot_name`)."""
        r = self.run
        if not self.enabled:
            return
        if r.env.main:
            d = r.dataset
            save_checkpoint(self.path, r.model_cfg, r.model.state_dict(), preset=r.preset.name,
                            ema_state=r.ema.state_dict(r.model), optimizer=r.opt.state_dict(),
                            scaler=r.scaler.state_dict(), step=step, rng=rng_state(),
                            train_config=config_to_dict(r.cfg), recipe=config_to_dict(r.preset.recipe),
                            dataset={"name": r.cfg.dataset, "num_classes": d.num_classes,
                                     "class_names": list(getattr(d, "class_names", [])),
                                     "image_shape": list(d.image_shape)})
            if snapshot:
                atomic_write(r.out / snapshot_name(step), lambda f: f.write(self.path.read_bytes()), binary=True)
        if r.env.world > 1:
            dist.barrier()


class MetricsLog:
    """``out/metrics.jsonl``: one line per ``log_every`` steps (and at the last step), the window's mean
    logs with step, EMA rate, images/s and elapsed time. A resumed run first drops the lines an
    interrupted attempt wrote after its last checkpoint.

    Steps hand in their logs as device tensors; :meth:`read` brings the window's to the host in one
    transfer — the one place the training loop waits for the device."""

    def __init__(self, run: Run):
        self.path, self.write = run.out / "metrics.jsonl", run.env.main
        self.batch_size, self.ema = run.cfg.batch_size, run.ema
        self.window: list[tuple[int, dict]] = []  # (step, logs) since the last record
        self.last_loss = float("nan")  # the loss of the last step recorded
        self.t_start = self.t_window = time.perf_counter()
        if self.write and self.path.exists():
            keep = [line for line in self.path.read_text().splitlines()
                    if line.strip() and json.loads(line).get("step", 0) <= run.start_step]
            self.path.write_text("".join(line + "\n" for line in keep))

    def add(self, step: int, logs: dict) -> None:
        """A step's logs (its tensors are read later, by :meth:`read`)."""
        self.window.append((step, logs))

    def read(self) -> int | None:
        """Bring every log of the window still on the device to the host (one transfer); returns the first
        step of the window whose loss is not finite, or None."""
        pending = [(i, k) for i, (_, logs) in enumerate(self.window) for k, v in logs.items() if torch.is_tensor(v)]
        if pending:
            values = torch.stack([self.window[i][1][k].float() for i, k in pending]).tolist()
            for (i, k), v in zip(pending, values):
                self.window[i][1][k] = v
        return next((step for step, logs in self.window if not math.isfinite(logs["loss"])), None)

    def record(self, step: int) -> dict:
        """The record of the window up to ``step`` (later steps are dropped: a diverged run's log ends on the
        step that diverged); on rank 0 appended to the file. Call after :meth:`read`."""
        window = [logs for s, logs in self.window if s <= step]
        self.last_loss, now = window[-1]["loss"], time.perf_counter()
        rec = {k: sum(w[k] for w in window) / len(window) for k in window[0] if k != "lr"}
        rec.update(step=step, lr=window[-1]["lr"], ema_rate=self.ema.rate_at(step - 1),
                   images_per_s=len(self.window) * self.batch_size / max(now - self.t_window, 1e-9),
                   elapsed_s=now - self.t_start)
        if self.write:
            with self.path.open("a") as f:
                f.write(json.dumps(rec) + "\n")
        self.window, self.t_window = [], now
        return rec


class StopRequest:
    """Why a run stops early, agreed by every process at the loop's sync points (see :func:`train`).

    SIGTERM or a first Ctrl-C (SIGINT) on any process asks to stop (a second Ctrl-C aborts at once,
    without a checkpoint); ``time_limit_s`` is read from rank 0's clock only. :meth:`poll` takes the
    maximum of every rank's request in one all-reduce, so all ranks leave the loop after the same step —
    none waits in the checkpoint barrier while another waits in the next step's gradient all-reduce."""

    RUNNING, SIGNALLED, TIME_LIMITED, DIVERGED = 0, 1, 2, 3

    def __init__(self, env: "_Dist", time_limit_s: float | None):
        self.env, self.time_limit_s, self.t_start = env, time_limit_s, time.perf_counter()
        self.signalled, self.reason, self.diverged_at, self._old = False, self.RUNNING, None, {}

    def _on_signal(self, signum, frame):
        if self.signalled and signum == signal.SIGINT:
            raise KeyboardInterrupt  # the second Ctrl-C: abort now
        self.signalled = True

    def __enter__(self):
        if threading.current_thread() is not threading.main_thread():
            return self  # signal handlers can only be set from the main thread
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._old[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
        return False

    def _timed_out(self) -> bool:
        return (self.env.main and self.time_limit_s is not None
                and time.perf_counter() - self.t_start >= self.time_limit_s)

    def wanted(self) -> bool:
        """Whether this process has a reason to stop (read from the host alone: no device, no other rank)."""
        return self.signalled or self._timed_out()

    def poll(self, diverged_at: int | None = None) -> int:
        """The stop reason every rank agrees on now (:attr:`RUNNING` to go on). ``diverged_at`` is the first
        step at which this rank's loss was not finite; it outranks every other reason, and
        :attr:`diverged_at` becomes the earliest such step of any rank."""
        local = (self.DIVERGED if diverged_at is not None else self.SIGNALLED if self.signalled
                 else self.TIME_LIMITED if self._timed_out() else self.RUNNING)
        first = diverged_at
        if self.env.world > 1:  # one all-reduce: the largest reason and the smallest diverged step
            never = torch.iinfo(torch.int64).max
            agreed = torch.tensor([local, -(never if diverged_at is None else diverged_at)], device=self.env.device)
            dist.all_reduce(agreed, op=dist.ReduceOp.MAX)
            local, first = int(agreed[0]), -int(agreed[1])
            first = None if first == never else first
        self.reason, self.diverged_at = local, first
        return local


def progress_line(rec: dict, total: int, start: int, time_limit_s: float | None = None) -> str:
    """``step 120/4000  loss 0.1234  52 img/s  1m 10s elapsed, ~1h 13m to go`` (at the rate so far, and
    never past the time limit)."""
    def hms(s: float) -> str:
        s = int(s)
        return f"{s // 3600}h {s % 3600 // 60}m" if s >= 3600 else f"{s // 60}m {s % 60}s"
    done, elapsed = rec["step"] - start, rec["elapsed_s"]
    left = elapsed / done * (total - rec["step"]) if done > 0 else float("inf")
    if time_limit_s is not None:
        left = min(left, max(time_limit_s - elapsed, 0.0))
    eta = f", ~{hms(left)} to go" if math.isfinite(left) and rec["step"] < total else ""
    return (f"step {rec['step']}/{total}  loss {rec['loss']:.4f}  {rec['images_per_s']:.0f} img/s  "
            f"{hms(elapsed)} elapsed{eta}")
