"""Reading ``dimr bench`` records back: every record under ``runs/bench/``, the latest measure of a preset, and
a table of them (the book's full-scale page). :mod:`dimr.bench` writes them.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

from ..provenance import repo_root

__all__ = ["bench_records", "latest_measure", "records_table", "contention_table", "huge_pages_table",
           "before_after_records", "before_after_table", "under_load_records", "make_book_table"]


def bench_records(folder: str | os.PathLike | None = None) -> list[dict]:
    """Every ``dimr bench`` record in ``folder`` (default ``runs/bench/``), oldest first (the older scripts'
    records, which lack its fields, are left out)."""
    records = _records(folder, "*.json")
    return sorted((r for r in records if r.get("what", "").startswith("python -m dimr bench")), key=lambda r: r["when"])


def latest_measure(records: Sequence[dict], preset: str, measure: str = "train") -> tuple[dict, dict] | None:
    """``(record, entry)`` of the latest eager fp32 CPU measure ``measure`` of ``preset`` among ``records``
    (:func:`bench_records`, oldest first), or None."""
    found = [(r, e) for r in records if r["preset"] == preset and r["device"] == "cpu" and not r["compile"]
             and r["amp"] != "bf16" for e in r["results"] if e.get("measure") == measure and "sides" in e]
    return found[-1] if found else None


def records_table(records: Sequence[dict]) -> str:
    """Markdown: one row per measure of each record (and side, side by side) with what it was measured on,
    images/s, achieved FLOP/s, MFU and, side by side, ours/official."""
    lines = ["| preset | measure | batch | precision, compile | side | ckpt | images/s | GFLOP/s | MFU | "
             "ours / official | measured on |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for rec in records:
        where = (f"{rec['device_name']}, {rec['threads']} threads" if rec["device"] == "cpu" else rec["device_name"])
        where += (f", torch {rec['torch'].split('+')[0]}, {rec['when'][:10]}, commit {rec['git']['commit'][:7]}"
                  + (" with changes" if rec["git"].get("dirty") else ""))
        how = f"{'bf16' if rec['amp'] == 'bf16' else 'fp32'}, {'compiled' if rec['compile'] else 'eager'}"
        for e in rec["results"]:
            if "error" in e:
                lines.append(f"| {rec['preset']} | {e.get('measure', '-')} | {e['batch']} | {how} | | | {e['error']} "
                             f"| | | | {where} |")
                continue
            ratio = f"{e['ours_over_official']:.2f}×" if "ours_over_official" in e else ""
            for side, r in e["sides"].items():
                mfu = f"{100 * r['mfu']:.0f}%" if r["mfu"] is not None else "–"
                lines.append(f"| {rec['preset']} | {e['measure']} | {e['batch']} | {how} | {side} | "
                             f"{'yes' if r['gradient_checkpointing'] else 'no'} | {r['images_per_s']:.3g} | "
                             f"{1e3 * r['achieved_tflops']:.3g} | {mfu} | {ratio if side == 'ours' else ''} | {where} |")
    return "\n".join(lines)


def _records(folder: str | os.PathLike | None, pattern: str) -> list[dict]:
    """The JSON files matching ``pattern`` in ``folder`` (default ``runs/bench/``), by name."""
    folder = Path(folder) if folder is not None else repo_root() / "runs" / "bench"
    return [json.loads(f.read_text(encoding="utf-8")) for f in sorted(folder.glob(pattern))]


def contention_table(folder: str | os.PathLike | None = None) -> str:
    """Markdown: each ``dimr bench --contention`` record's default training alone and beside busy processes,
    per environment variant (and ``--train-args``) and preset (medians over its rounds), with the fair share it
    is judged against and round 1's start-up (the first logged window: an empty compile cache, warm-up)."""
    lines = ["| measured on | preset | setting | alone, images/s | beside busy, images/s | busy / alone | "
             "fair share | start-up, s (alone, busy) | rounds |", "|---|---|---|---|---|---|---|---|---|"]
    for rec in _records(folder, "contention-*.json"):
        hw, busy = rec["hardware"], rec["busy"]
        fair = f"{(rec['cpu_count'] - busy) / rec['cpu_count']:.2f}" if busy < rec["cpu_count"] else "–"  # the free cores' share
        flags = f" `{rec['train_args']}`" if rec.get("train_args") else ""
        for variant, by_preset in rec["results"].items():
            for preset, d in by_preset.items():
                start = ", ".join(f"{d['runs'][side][0]['first_window_s']:.0f}" for side in ("alone", "busy"))
                lines.append(f"| {hw['cpu']}, {rec['cpu_count']} cores, {rec['when'][:10]} | {preset} | {variant}{flags} | "
                             f"{d['alone_images_per_s']:.0f} | {d['busy_images_per_s']:.0f} ({busy} busy) | "
                             f"{d['busy_over_alone']:.2f} | {fair} | {start} | {rec['rounds']} |")
    return "\n".join(lines) if len(lines) > 2 else ""


def huge_pages_table(folder: str | os.PathLike | None = None) -> str:
    """Markdown: each ``dimr bench --huge-pages`` record's training step with huge pages off and on (every
    round, then the medians' ratio) and the choice it made for its CPU."""
    lines = ["| measured on | preset, batch | off, images/s | on, images/s | on / off | choice |", "|---|---|---|---|---|---|"]
    for rec in _records(folder, "huge-pages-*.json"):
        choice = "on" if rec["choice"]["huge_pages"] else "off"
        for workload, d in rec["results"].items():
            rates = [", ".join(f"{x:.3g}" for x in d[side]) for side in ("off", "on")]
            lines.append(f"| {rec['hardware']['cpu']}, {rec['when'][:10]} | {workload} | {rates[0]} | {rates[1]} | "
                         f"{d['on_over_off']:.2f}× | {choice} |")
    return "\n".join(lines) if len(lines) > 2 else ""


def before_after_records(folder: str | os.PathLike | None = None) -> list[dict]:
    """The ``dimr bench --before`` records in ``folder`` (default ``runs/bench/``), by name."""
    return _records(folder, "before-*.json")


def before_after_table(rec: dict) -> str:
    """Markdown: a ``dimr bench --before`` record's default training at two revisions, per preset: every round's
    images/s, the ratio of the medians, the threads each side chose and whether it compiled, and each run's
    start-up (its first logged window: compilation and warm-up, left out of the rates)."""
    def rates(runs: list) -> str:
        return ", ".join(f"{r['images_per_s']:.0f}" for r in runs) or "–"

    def threads(runs: list) -> str:
        counts = "/".join(sorted({str(r["threads"]) for r in runs if r.get("threads") is not None})) or "–"
        compiled = "/".join(sorted({"compiled" if r["compile"] == "on" else "eager" for r in runs if r.get("compile")}))
        return f"{counts} ({compiled})" if compiled else counts

    def startup(runs: list) -> str:
        return ", ".join(f"{r['first_window_s']:.0f}" for r in runs) or "–"

    lines = [f"{rec['what']}: `{rec['before']}` → `{rec['after']}`, {rec['hardware']['cpu']} "
             f"({rec['hardware']['cpu_count']} cores).", "",
             "| preset | before, images/s by round | after, images/s by round | after / before (medians) | "
             "threads (compiled?) before / after | start-up before / after (s, by round) |", "|---|---|---|---|---|---|"]
    for preset, d in rec["results"].items():
        b, a = d.get("runs", {}).get("before", []), d.get("runs", {}).get("after", [])
        lines.append(f"| {preset} | {rates(b)} | {rates(a)} | {d['speedup']:.2f}× | {threads(b)} / {threads(a)} | "
                     f"{startup(b)} / {startup(a)} |")
    return "\n".join(lines)


def under_load_records(job: str, folder: str | os.PathLike | None = None) -> list[dict]:
    """The records of ``scripts/under_load.py`` for ``job`` (``"make-book"`` or ``"ten-minutes"``), in the order
    they ran (their ``when``; by name where equal)."""
    if job not in ("make-book", "ten-minutes"):
        raise ValueError(f"job {job!r}: expected 'make-book' or 'ten-minutes'")
    return sorted(_records(folder, f"{job}-busy-*.json"), key=lambda rec: rec.get("when", ""))


def make_book_table(folder: str | os.PathLike | None = None) -> str:
    """Markdown: each fresh-clone ``make book`` record beside its busy processes: the wall time, whether the
    book built, the calibration's equal steps and the steps, threads and slow note of Table 2's two trainings."""
    lines = ["| measured on | busy processes | make book, min | built | calibrated steps | U-ViT-T/4 trained | "
             "DiMR-T/3R trained | threads | slow note | commit |", "|---|---|---|---|---|---|---|---|---|---|"]
    for rec in under_load_records("make-book", folder):
        runs = rec["runs"]
        cal = (runs.get("calibrate-table2") or {}).get("metrics", {}).get("equal_steps")
        steps = [rec["table2_steps"].get(f"eval-table2-row{r}") for r in (1, 6)]
        how = [(runs.get(f"train-table2-row{r}") or {}).get("run", {}) for r in (1, 6)]
        notes = "; ".join(h["slow_note"] for h in how if h.get("slow_note")) or "none"
        lines.append(f"| {rec['hardware']['cpu']}, {rec['cpu_count']} cores, {rec['when'][:10]} | {rec['busy']} | "
                     f"{rec['wall_s'] / 60:.1f} | {'yes' if rec['book_built'] else 'no'} | "
                     f"{'–' if cal is None else f'{cal:,.0f}'} | "
                     + " | ".join("–" if s is None else f"{s:,}" for s in steps)
                     + f" | {' / '.join(str(h.get('threads', '–')) for h in how)} | {notes} | "
                       f"{(rec['git'].get('commit') or '?')[:7]} |")
    return "\n".join(lines) if len(lines) > 2 else ""
