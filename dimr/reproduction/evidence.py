"""The claims study as a reader sees it: the scorecard, each claim's evidence, and the records behind
them, as MyST Markdown for the book's Evidence chapter and the component chapters' claim boxes.

Every number comes from :func:`dimr.reproduction.study.collect` (recorded runs, checked against the study's settings)
through :func:`dimr.reproduction.study.scorecard` (the declared verdicts); the paper's numbers come from
:mod:`dimr.reproduction.tables`. Nothing here is typed in: the scale line is read from the records themselves.
"""
from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from . import paper, study
from .stats import Interval, format_interval, sample_sd, t_interval

__all__ = ["format_with_n", "arm_interval", "arm_label", "paper_table2_fids", "scale_line", "scorecard_table",
           "claim_block", "claim_evidence", "power_table", "leave_one_out", "curve", "records_table", "recheck",
           "pca_evidence"]

#: the claims that take one component out of DiMR-T/3R (or put one back), with the component each names
LEAVE_ONE_OUT = {"L-TD": "TD norms (vs adaLN-Zero)", "L-GLU": "GeGLU (vs GELU MLP)", "C3": "multi-scale loss",
                 "L-MR": "multi-resolution branches (with their loss)"}


def format_with_n(iv: Interval) -> str:
    """``"0.52 ± 0.03 (n = 3)"``: :func:`dimr.reproduction.stats.format_interval` with its number of seeds."""
    return format_interval(iv) + (f" (n = {iv.n})" if iv.n else "")


def arm_interval(records: Mapping, name: str, metric: str) -> Interval:
    """Mean ± 95% interval over an arm's valid seeds, clipped to the metric's range (diverged seeds out)."""
    return t_interval(list(study.metric_values(records, name, metric).values()), study.LEVEL,
                      study.METRICS[metric].bounds if metric in study.METRICS else (-math.inf, math.inf))


def arm_label(name: str) -> str:
    """``"Table 2 row 1 (U-ViT-T/4) at 5,108 steps"`` for ``"row1@5108"`` (or ``"row1@matched"``)."""
    slug, _, steps = study.resolve(name).partition("@")
    label = study.CONFIGS[slug].label or slug
    return f"{label} at {int(steps):,} steps" if steps else label


def paper_table2_fids() -> dict[int, str]:
    """Table 2's printed FID-50K per row (ImageNet 64×64, as printed)."""
    return {r["row"]: r["fid"] for r in paper.paper_rows("2")}


def _values(records: Mapping, where: str, key: str) -> list:
    """``key`` of the ``where`` record (``"train"`` or ``"run"``, the evaluation) of every valid evaluation."""
    return [rec[where]["parameters"].get(key) for rec in study.evaluated(records).values()
            if rec.get(where) and "parameters" in rec[where]]


def _listed(values: Iterable) -> str:
    counts = Counter(v for v in values if v is not None)
    return ", ".join(f"{v:,}" if isinstance(v, int) else str(v) for v, _ in counts.most_common()) or "—"


def scale_line(records: Mapping) -> str:
    """What the recorded runs were, read from the records (training lengths, precision, evaluation size,
    sampler steps, CPUs, code states): the study's settings are checked, this says what they produced."""
    cpus = Counter(rec["run"].get("hardware", {}).get("cpu", "?") for rec in records.values())
    return (f"**Scale, from the records**: {len(records)} evaluated or diverged (configuration, length, seed); "
            f"trained {_listed(_values(records, 'train', 'steps'))} optimiser steps in "
            f"{_listed(_values(records, 'train', 'amp'))} autocast (batch: the tiny recipe's); evaluated on "
            f"{_listed(_values(records, 'run', 'num_samples'))} samples with {_listed(_values(records, 'run', 'steps'))} "
            f"DPM-Solver steps; on {', '.join(f'{c} ({n})' for c, n in cpus.most_common())}; "
            f"{len(study.code_states(records))} code states (commits).")


def _fmt_p(p: float) -> str:
    return "—" if math.isnan(p) else ("< 0.001" if p < 0.001 else f"{p:.3f}")


def _paper_pair(claim: study.Claim) -> str:
    if not claim.table2_rows:
        return "—"
    fids = paper_table2_fids()
    a, b = claim.table2_rows
    return f"FID {fids[a]} → {fids[b]}"


def _seeds_needed(r: study.ClaimResult) -> str:
    return "—" if math.isnan(r.seeds_needed) else "> 1,000" if math.isinf(r.seeds_needed) else f"{r.seeds_needed:.0f}"


def scorecard_table(results: Sequence[study.ClaimResult]) -> str:
    """One line per claim: its primary metric's paired difference (+ = better in the paper's direction)
    with its 95% interval, the Holm-adjusted p, the verdict, the seeds it has and would need, and the
    paper's printed pair (Table 2, ImageNet 64×64, one run each)."""
    rows = ["| claim | what changes | primary metric | difference (+ = better), 95% CI | p, Holm-adjusted | "
            "verdict | seeds (needed for 80% power) | paper (Table 2) |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        c = r.claim
        verdict = f"**{r.verdict}**" + (f"; {r.equivalence}" if r.equivalence else "")
        if r.diverged:
            verdict += " (" + "; ".join(r.diverged) + ": scored as failures)"
        verdict += f"; *{_interim(r)}*" if _interim(r) else ""
        rows.append(f"| {c.key}{' †' if c.beyond else ''} | {c.changes} | {study.METRICS[c.primary].label} | "
                    f"{format_interval(r.difference)} | {_fmt_p(r.p_holm)} | {verdict} | {r.difference.n} "
                    f"({_seeds_needed(r)}) | {_paper_pair(c)} |")
    return "\n".join(rows) + ("\n\n† beyond the paper: a question this study adds, corrected as its own family. "
                              "Holm's method at α = " f"{study.ALPHA:g} within each family; seeds needed at the "
                              "strictest level Holm can apply, α/m, for the observed effect. *Interim*: fewer "
                              "paired seeds recorded than declared; the declared verdict is the one at all of them.")


def _interim(r: study.ClaimResult) -> str:
    """``"interim: 3 of 8 declared seeds"`` while a verdict rests on fewer paired seeds than declared, else ``""``."""
    return f"interim: {r.difference.n} of {r.declared} declared seeds" if r.interim and r.difference.n >= 2 else ""


def claim_block(claim: study.Claim, records: Mapping, result: study.ClaimResult | None = None,
                title: bool = True) -> str:
    """MyST Markdown of one claim: baseline and treatment, the declared verdict (``result``, from
    :func:`dimr.reproduction.study.scorecard`), the paper's printed pair, and every metric's paired difference
    (descriptive; the primary one decides). ``title=False`` leaves the claim's name to a heading."""
    if result is None:
        result = next(r for r in study.scorecard(records) if r.claim.key == claim.key)
    paper = (f"The paper (Table 2, rows {claim.table2_rows[0]} → {claim.table2_rows[1]}; ImageNet 64×64, FID-50K, "
             f"one run each): {_paper_pair(claim)}." if claim.table2_rows else "The paper prints no such pair.")
    named = f"**{claim.key} — {claim.title}** " if title else ""
    lines = [f"{named}({claim.where}). Baseline: {arm_label(claim.baseline)}; treatment: "
             f"{arm_label(claim.treatment)}; what changes: {claim.changes}. {paper}", "",
             f"Verdict on the primary metric ({study.METRICS[claim.primary].label}): **{result.verdict}**, "
             f"difference {format_with_n(result.difference)}, p = {_fmt_p(result.p)} ({_fmt_p(result.p_holm)} "
             f"Holm-adjusted)" + (f"; equivalence (±{claim.equivalence_margin:g}, TOST): {result.equivalence}, "
                                  f"p = {_fmt_p(result.equivalence_p_holm)} Holm-adjusted"
                                  if claim.equivalence_margin is not None else "") + "."
             + (" " + "; ".join(result.diverged) + ", each scored as a failure." if result.diverged else "")
             + (f" *{_interim(result).capitalize()}.*" if _interim(result) else ""), "",
             "| metric | baseline | treatment | difference (+ = better) | its own 95% interval says |",
             "|---|---|---|---|---|"]
    for v in study.judge(claim, records):
        primary = " (primary)" if v.metric == claim.primary else ""
        lines.append(f"| {study.METRICS[v.metric].label}{primary} | "
                     f"{format_with_n(arm_interval(records, claim.baseline, v.metric))} | "
                     f"{format_with_n(arm_interval(records, claim.treatment, v.metric))} | "
                     f"{format_with_n(v.difference)} | {v.verdict} |")
    return "\n".join(lines)


def claim_evidence(keys: Iterable[str], records: Mapping | None = None, runs_root: str | Path | None = None) -> str:
    """MyST Markdown for a chapter's claim box: for each claim key of :data:`dimr.reproduction.study.CLAIMS`, its line
    of the scorecard and its evidence (:func:`claim_block`). ``records`` defaults to
    :func:`dimr.reproduction.study.collect` over ``runs_root``."""
    keys = list(keys)
    by_key = {c.key: c for c in study.CLAIMS}
    unknown = [k for k in keys if k not in by_key]
    if unknown:
        raise KeyError(f"unknown claims {unknown}; the claims are {list(by_key)}")
    records = study.collect(runs_root) if records is None else records
    results = {r.claim.key: r for r in study.scorecard(records)}
    intro = ("*This repository's evidence*: the claims study (`dimr.reproduction.study`): tiny presets trained on the offline "
             "shapes or Fashion-MNIST at 32×32 on CPU, paired seeds, a primary metric declared per claim before its "
             "runs and Holm's correction across claims. " + scale_line(records)
             + " The {doc}`Evidence chapter </book/evidence>` has the scorecard and every configuration.")
    return "\n\n".join([intro, *(claim_block(by_key[k], records, results[k]) for k in keys)])


def power_table(results: Sequence[study.ClaimResult], records: Mapping) -> str:
    """Per claim: the observed mean difference of its primary metric and its seed-to-seed spread, the seeds
    it has, and the seeds a two-sided paired t test at α/m would need for 80% power at that effect."""
    rows = ["| claim | primary metric | mean difference | s.d. over seeds | seeds | needed at α/m |",
            "|---|---|---|---|---|---|"]
    for r in results:
        diffs = study.paired_values(r.claim, records, r.claim.primary)
        sd = sample_sd(diffs)
        m = study.family_size(r.claim)
        mean, spread = (f"{r.difference.mean:.3g}", f"{sd:.2g}") if len(diffs) >= 2 else ("—", "—")  # no spread yet
        rows.append(f"| {r.claim.key} | {study.METRICS[r.claim.primary].label} | {mean} | {spread} | "
                    f"{r.difference.n} | {_seeds_needed(r)} (α/{m}) |")
    return "\n".join(rows)


def leave_one_out(results: Sequence[study.ClaimResult]) -> str:
    """Which component of DiMR-T/3R carries the distortion reduction: each one-change comparison's effect
    on the primary metric, largest first, with its verdict; the sentence under it is computed."""
    by_key = {r.claim.key: r for r in results}
    shown = [(by_key[k], what) for k, what in LEAVE_ONE_OUT.items() if k in by_key and by_key[k].difference.n >= 2]
    if not shown:
        return "No one-change comparison has two paired seeds yet."
    shown.sort(key=lambda t: -t[0].difference.mean)
    rows = ["| component put back into DiMR-T/3R | comparison | mean 1 − IoU lower by (95% CI) | verdict |",
            "|---|---|---|---|"]
    rows += [f"| {what} | {r.claim.key} | {format_with_n(r.difference)} | {r.verdict} |" for r, what in shown]
    decided = [(r, what) for r, what in shown if r.verdict == "supported"]
    if decided:
        top, what = decided[0]
        total = by_key.get("C1")
        share = (f", {top.difference.mean / total.difference.mean:.0%} of what the whole design gains over U-ViT-T/4 "
                 f"(C1)" if total and total.difference.n >= 2 and total.difference.mean > 0 else "")
        sentence = (f"The component whose removal costs the most distortion, among those whose effect is supported, "
                    f"is **{what}**: {top.difference.mean:.3f} mean 1 − IoU{share}.")
    else:
        sentence = "No single component's effect is supported yet at the declared level."
    return "\n".join(rows) + "\n\n" + sentence


def curve(records: Mapping, slug: str, metric: str = "distortion_mean") -> list[tuple[int, Interval]]:
    """``[(steps, interval over the curve seeds)]`` of a configuration's learning curve, shortest first,
    over :data:`dimr.reproduction.study.CURVE_SEEDS` only (so every length averages the same runs)."""
    out = []
    for steps in sorted({k for seed in study.CURVE_SEEDS for k in study.CONFIGS[slug].snapshots(seed)}):
        values = study.metric_values(records, study.arm(slug, steps), metric)
        iv = t_interval([v for s, v in values.items() if s in study.CURVE_SEEDS], study.LEVEL,
                        study.METRICS[metric].bounds)
        if iv.n:
            out.append((steps, iv))
    return out


def records_table(records: Mapping) -> str:
    """The records behind the study: which code each ran (commit → how many), what a valid record carries
    a note for (resumed, modified tree, mixed commits), and what was refused and why."""
    states = sorted(study.code_states(records).items(), key=lambda kv: -len(kv[1]))
    lines = [f"{len(states)} commits (records each): " + ", ".join(f"`{c[:10]}` ({len(keys)})" for c, keys in states) + "."]
    noted = [(k, rec["notes"]) for k, rec in sorted(records.items()) if rec.get("notes")]
    if noted:
        lines += ["", "Notes on valid records:", ""]
        lines += [f"* {arm_label(a)}, seed {s}: {'; '.join(n)}" for (a, s), n in noted]
    bad = study.rejected(records)
    lines += ["", "Refused (they disagree with the study's settings and count nowhere):" if bad else
              "No record disagrees with the study's settings.", ""]
    lines += [f"* {arm_label(a)}, seed {s}: {'; '.join(p)}" for (a, s), p in sorted(bad.items())]
    return "\n".join(lines)


def recheck(records: Mapping, path: str | Path | None = None) -> str:
    """The recheck (``runs/study-recheck.json``): one configuration and seed trained and evaluated again on the
    campaign's commit, metric by metric beside its first record, with the configuration's seed-to-seed
    standard deviation for scale. Bit-equal numbers say the code computes the same; otherwise the size of
    the change beside the seeds' spread says whether mixing the records' code states matters."""
    from ..provenance import repo_root

    path = Path(path) if path is not None else repo_root() / "runs" / "study-recheck.json"
    if not path.exists():
        return "No recheck is recorded."
    rec = json.loads(path.read_text())
    before, after = rec["before"], rec["after"]
    rows = ["| metric | first record | again on the campaign's commit | difference | seed-to-seed s.d. |",
            "|---|---|---|---|---|"]
    for name, m in study.METRICS.items():
        keys = [k for k in before["metrics"] if k.startswith(m.key)]
        if not keys:
            continue
        a, b = before["metrics"][keys[0]], after["metrics"][keys[0]]
        values = [v for (arm, s), r in study.evaluated(records).items() if arm == rec["config"]
                  for k, v in r["values"].items() if k == name]
        sd = sample_sd(values)
        rows.append(f"| {m.label} | {a:.4g} | {b:.4g} | {b - a:+.3g} | {sd:.2g} |")
    same = before["metrics"] == after["metrics"]
    return (f"{arm_label(rec['config'])}, seed {rec['seed']}: first trained on `{before['train_commit'][:10]}`, again on "
            f"`{after['train_commit'][:10]}` ({after['cpu']}). " + ("Every metric is bit-equal: the code computes the "
            "same." if same else "The numbers are not bit-equal: the code changed between the two commits, and a "
            "different rounding early on grows over thousands of steps. The table sets each change beside the "
            "configuration's seed-to-seed spread.")
            + "\n\n" + "\n".join(rows))


def pca_evidence(records: Mapping | None = None, runs_root: str | Path | None = None) -> str:
    """MyST Markdown: Fig. 3/6's question on the study's trained adaLN-Zero configurations — per seed,
    how many principal components explain 90% of a block's γ or β (:data:`dimr.reproduction.study.PCA`), and their
    mean ± 95% interval; configurations without an adaLN-Zero record are left out."""
    records = study.collect(runs_root) if records is None else records
    rows = ["| configuration | " + " | ".join(f"seed {s}" for s in study.SEEDS) + " | mean ± 95% interval |",
            "|---|" + "---|" * (len(study.SEEDS) + 1)]
    for slug, conf in study.CONFIGS.items():
        values = study.metric_values(records, slug, "pca")
        if values:
            cells = " | ".join(f"{values[s]:g}" if s in values else "·" for s in study.SEEDS)
            rows.append(f"| {conf.label or slug} | {cells} | {format_with_n(t_interval(list(values.values())))} |")
    if len(rows) == 2:
        return "No trained adaLN-Zero configuration of the claims study has a recorded evaluation yet."
    steps = _listed(_values(records, "train", "steps"))
    return (f"*This repository's evidence*: {study.PCA.label} (median over blocks and vectors), recorded by "
            f"the evaluation of each trained adaLN-Zero configuration of the claims study ({steps} steps on the "
            "offline shapes, CPU).\n\n" + "\n".join(rows))
