"""The paper's Tables 1–7 rebuilt: the printed values (:mod:`.paper`) beside what this repository
computes and what it measured in recorded runs. Three kinds of number, never mixed up:

* **printed** — as the paper prints them (:mod:`.paper`); Tables 3 and 4 are **generated** from
  :mod:`dimr.presets` (configs and :class:`~dimr.presets.Recipe` fields), so that the tests check the
  presets against the printed tables.
* **computed** — parameter counts and GMACs from :func:`dimr.profile.profile_preset` (meta device, the
  paper's GFLOPs convention: multiply-accumulates at batch 1, attention included).
* **measured** — metrics from complete run records (:mod:`.runs`) whose ``feeds`` name the row
  (``"table2/row6"``), each with its label, scale and a link to its run; "not run" where none is recorded.

Every builder returns a :class:`Table` (columns, rows as plain dicts, notes); :func:`markdown` renders one
as a MyST table for the book.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable

from ..profile import fmt_params
from ..provenance import repo_root
from .paper import (DERIVED, IMPLEMENTED, PAGES, PAPER, derived_note, implementation, matches_printed, model_config, paper_rows,
                    param_check, profile_row)
from .runs import COMMITTED_PROFILES, list_runs, trained_steps

__all__ = [
    "Table", "measured_runs", "measured_cell", "study_cell",
    "table1", "table2", "table2_counts", "table3", "table4", "table5", "table6", "table7", "TABLES", "markdown",
    "NOT_RUN", "NOT_IMPLEMENTED",
]

NOT_RUN = "not run"
NOT_IMPLEMENTED = "—"


def _mark(ok: bool | None) -> str:
    return "" if ok is None else (" ✓" if ok else " ✗")


_METRIC_ORDER = ("fid_wo_cfg", "fid", "is", "precision", "recall")


def _runs_root(runs_root) -> Path:
    return Path(runs_root) if runs_root is not None else repo_root() / "runs"


def measured_runs(key: str, row: int, runs_root: str | Path | None = None) -> list[dict]:
    """Complete runs whose record says it feeds ``table<key>/row<row>`` (committed profiles first)."""
    tag = f"table{key}/row{row}"
    runs = [r for r in list_runs(_runs_root(runs_root)) if tag in r.get("feeds", ())]
    return sorted(runs, key=lambda r: (r.get("profile") not in COMMITTED_PROFILES, r["experiment"], r["run"]))


def _run_link(rec: dict, style: str) -> str:
    path = Path(rec["path"])
    root = repo_root(path)
    try:
        rel = path.resolve().relative_to(root).as_posix()
    except ValueError:
        rel = path.as_posix()
    # a run of a cheap profile was made by the build that shows it: on the reader's machine
    kind = "committed" if rec.get("profile") in COMMITTED_PROFILES else "your machine, just now"
    text = f"{rec['experiment']}/{rec['run']}, {kind}"
    if style != "myst":
        return f"{text}: {rel}"
    nb = rec.get("notebook")
    if nb and (path / nb).exists():
        return f"{{doc}}`{text} </{rel}/{Path(nb).stem}>`"
    return f"{{download}}`{text} </{rel}/run.json>`"


def _steps_text(rec: dict) -> str:
    n = trained_steps(rec)
    return "training steps not recorded" if n is None else f"{n:,} training steps"


def measured_cell(key: str, row: int, implemented: bool, runs_root=None, style: str = "myst",
                  table: "Table | None" = None, only: tuple[str, ...] | None = None,
                  labels: dict[str, str] | None = None) -> str:
    """One table cell: every metric of every run feeding the row, each with its label and scale,
    grouped by run (linked) with the training steps of the model it measured (:func:`trained_steps`);
    :data:`NOT_RUN` if the row is implemented but nothing is recorded; :data:`NOT_IMPLEMENTED` otherwise.

    With ``table``, each distinct scale becomes one of its numbered notes (rows measured at the same
    scale share it) and the cell carries the note's marker, so the cell stays short enough to read;
    without it the scale is written after every metric. ``only`` keeps the metrics whose names start with
    one of its prefixes, in that order (the run's page has the rest); ``labels`` gives a metric, by the
    prefix of its name, a shorter label than its record's."""
    runs = measured_runs(key, row, runs_root)
    if not runs:
        return NOT_RUN if implemented else NOT_IMPLEMENTED
    parts = []
    for rec in runs:
        metrics = rec.get("metrics", {})
        names = [m for m in _METRIC_ORDER if m in metrics] + sorted(m for m in metrics if m not in _METRIC_ORDER)
        if only is not None:
            names = [m for prefix in only for m in names if m.startswith(prefix)]
        if not names:
            parts.append(f"no metrics recorded ({_run_link(rec, style)})")
            continue
        short = {m: next((v for k, v in (labels or {}).items() if m.startswith(k)), metrics[m]["label"])
                 for m in names}
        shown = {m: f"{short[m]} **{metrics[m]['value']:.3g}**" if labels else
                 f"**{metrics[m]['value']:.4g}** {metrics[m]['label']}" for m in names}
        if table is None:
            parts += [f"{shown[m]}, {metrics[m]['scale']} ({_run_link(rec, style)}, {_steps_text(rec)})"
                      for m in names]
            continue
        by_scale: dict[str, list[str]] = {}
        for m in names:
            by_scale.setdefault(metrics[m]["scale"], []).append(shown[m])
        for scale, items in by_scale.items():
            marker = table.note(f"Measured at: {scale}.")
            parts.append(" · ".join(items) + f" — {_steps_text(rec)} ({_run_link(rec, style)}){marker}")
    return "; ".join(parts)


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------
_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


@dataclass
class Table:
    """A table ready to show: ``rows`` are dicts keyed by ``columns`` (display strings); ``notes``
    are the numbered footnotes the cells' superscript markers point to."""

    key: str
    title: str
    source: str
    columns: list[str]
    rows: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: column → superscript markers shown after its header (notes about a whole column)
    header_markers: dict[str, str] = field(default_factory=dict)

    def note(self, text: str) -> str:
        """Add a footnote (once) and return its superscript marker."""
        if text not in self.notes:
            self.notes.append(text)
        return str(self.notes.index(text) + 1).translate(_SUPERSCRIPT)

    def column_note(self, column: str, text: str) -> str:
        """Add a footnote about a whole column: its marker goes after the column's header, so no note is
        left without a marker pointing to it."""
        if column not in self.columns:
            raise KeyError(f"{self.key}: no column {column!r}")
        marker = self.note(text)
        if marker not in self.header_markers.get(column, ""):
            self.header_markers[column] = self.header_markers.get(column, "") + marker
        return marker

    def header(self, column: str) -> str:
        """The column's header as shown: its name and its notes' markers."""
        return column + self.header_markers.get(column, "")


_GMACS_NOTE = ("\"GFLOPs\" in the paper are multiply-accumulates (GMACs) of one forward pass at batch 1 with "
               "the attention matmuls included (fvcore's convention, confirmed on every row this repo "
               "implements); the computed column uses that convention (dimr.profile.count_gmacs).")
_MEASURED_NOTE = ("Measured: metrics of complete runs in runs/ whose record feeds this row, each labelled "
                  "with what it is and, in a numbered note, the scale it ran at (data, resolution, steps, "
                  "hardware); \"not run\" "
                  "means no run is recorded, \"—\" that this package does not implement the model.")


def _printed(value: float) -> str:
    """A paper value in millions as the paper prints it: ``133 -> "133M"``, ``1056 -> "1.056B"``."""
    return f"{value:g}M" if value < 1000 else f"{value / 1000:g}B"


def _sizes_note(name: str, both_norms: bool) -> str:
    """A preset the paper prints more than one size for: every printed size with where, this repo's
    count(s), and which printed sizes no count rounds to.  ``both_norms`` adds the count with TD-LN
    block norms beside the official TD-RMSNorm one."""
    from ..presets import get_preset

    printed = get_preset(name).paper_params
    counts = {"TD-RMSNorm block norms (the released configs)": profile_row(name)["params"]}
    if both_norms:
        counts["TD-LN block norms"] = profile_row(name, "tdln")["params"]
    sizes = ", ".join(f"{_printed(v.value)} ({v.where})" for v in printed[:-1]) + \
        f" and {_printed(printed[-1].value)} ({printed[-1].where})"
    built = " and ".join(f"{fmt_params(n)} with {label}" for label, n in counts.items())
    missed = [_printed(v.value) for v in printed
              if not any(matches_printed(n, _printed(v.value)) for n in counts.values())]
    text = f"The paper prints {sizes} for {name}. Built as the official code builds it, it has {built}"
    if missed:
        text += ("; neither rounds to " if len(counts) > 1 else "; it does not round to ") + " or ".join(missed)
    return text + " (docs/official-code.md §7)."


#: Rows whose model the paper prints several sizes for → (that preset, count both block norms?).
_SIZES_NOTES = {"DiMR-M/3R": ("DiMR-M/3R", True), "Table2/row5": ("DiMR-M/3R", True),
                "Table2/row6": ("DiMR-M/3R", True), "DiMR-XL/3R": ("DiMR-XL/3R", False)}


def _add_sizes_note(t: "Table", name: str) -> str:
    """The marker of ``name``'s several-printed-sizes note ("" if the paper prints one size)."""
    return t.note(_sizes_note(*_SIZES_NOTES[name])) if name in _SIZES_NOTES else ""


def _source(key: str, computed: bool = True) -> str:
    base = f"Printed values: Table {key[0]}{'(' + key[1] + ')' if len(key) > 1 else ''}, p. {PAGES[key]}, {PAPER}."
    if computed:
        base += (" Computed: this package's models counted on the meta device (dimr.profile). "
                 "✓/✗: the count rounds / does not round to the printed value at its printed precision.")
    return base


def _count_cell(t: Table, key: str, row: dict) -> str:
    chk = param_check(key, row)
    cell = fmt_params(chk["params"]) + _mark(chk["match"])
    if chk["alt"] is not None:
        cell = (f"{cell} (TD-RMSNorm) · {fmt_params(chk['alt']['params'])}{_mark(chk['alt']['match'])} "
                f"({chk['alt']['label']})")
    name = chk["name"]
    if name in DERIVED:
        cell += t.note(derived_note(name))
    return cell + _add_sizes_note(t, name)


def _gmacs_cell(name: str, printed: str) -> str:
    g = profile_row(name)["gmacs"]
    ok = None if printed.strip() in ("-", "") else round(g) == int(printed)
    return f"{g:.1f}{_mark(ok)}"


def _model_cell(row: dict) -> str:
    return f"{row['model']} {row['ref']}".strip()


def _benchmark_table(key: str, title: str, metric_cols: list[tuple[str, str]], with_type: bool,
                     runs_root=None, style: str = "myst") -> Table:
    """Tables 1(a), 1(b), 5, 6, 7: printed columns, then this repo's counts and measurements."""
    cols = ["Model"] + (["Type"] if with_type else []) + ["Epoch", "#Params", "#Params (this repo)", "GFLOPs",
                                                         "GMACs (this repo)"]
    cols += [label for _, label in metric_cols] + ["Measured (this repo)"]
    t = Table(key, title, _source(key), cols)
    for r in paper_rows(key):
        name = implementation(key, r)
        out = {"Model": _model_cell(r)}
        if with_type:
            out["Type"] = r["type"]
        out.update({"Epoch": r["epochs"], "#Params": r["params"], "GFLOPs": r["gflops"]})
        out["#Params (this repo)"] = _count_cell(t, key, r) if name else NOT_IMPLEMENTED
        out["GMACs (this repo)"] = _gmacs_cell(name, r["gflops"]) if name else NOT_IMPLEMENTED
        for field_, label in metric_cols:
            out[label] = r[field_]
        out["Measured (this repo)"] = measured_cell(key, r["row"], name is not None, runs_root, style, table=t)
        t.rows.append({c: out[c] for c in cols})
    t.column_note("GMACs (this repo)", _GMACS_NOTE)
    t.column_note("Measured (this repo)", _MEASURED_NOTE)
    return t


def table1(part: str = "a", runs_root=None, style: str = "myst") -> Table:
    """Table 1: class-conditional ImageNet 256×256 (``part="a"``) and 512×512 (``"b"``), FID-50K with
    and without classifier-free guidance."""
    if part not in ("a", "b"):
        raise ValueError("Table 1 has parts 'a' (256×256) and 'b' (512×512)")
    res = "256×256" if part == "a" else "512×512"
    t = _benchmark_table(f"1{part}", f"Table 1({part}): class-conditional ImageNet {res}",
                         [("fid_wo_cfg", "FID w/o CFG ↓"), ("fid", "FID ↓")], False, runs_root, style)
    if part == "b":
        dit = next(r for r in t.rows if r["Model"].startswith("DiT-XL/2"))
        dit["GFLOPs"] += t.note("Table 1(b) prints DiT-XL/2 at 525 GFLOPs: the 512×512 model (64×64×4 latents, 1024 "
                                "tokens). The same model is printed at 119 GFLOPs in Table 1(a) at 256×256.")
    return t


#: the claims-study metrics Table 2 shows, at most these (the Evidence chapter has every metric, the FID too)
TABLE2_STUDY_METRICS = ("accuracy", "distortion_rate")


def study_cell(records: dict, slug: str, table: Table) -> str:
    """Table 2's claims-study cell for one configuration: the metrics of :data:`TABLE2_STUDY_METRICS`, each the
    mean ± the half-width of its 95% Student-t interval over the recorded seeds, clipped to the metric's range,
    then the number of seeds and the training steps every seed of the arm had (the study checks each record
    against them); details: the Evidence chapter."""
    from . import study

    n = len(study.metric_values(records, slug, "accuracy"))
    lost = study.diverged_seeds(records, slug)
    lost_text = "".join(f"; seed {s} diverged at step {step:,}" for s, step in sorted(lost.items()))
    steps = study.arms().get(slug, (slug, study.STUDY_STEPS, ()))[1]
    marker = table.note(f"Claims study (dimr.reproduction.study): each row's CPU-scale preset (`Table2-T/row1` … `row6`) on the "
                        "offline shapes (32×32), "
                        f"trained {study.STUDY_STEPS:,} steps of the tiny recipe per seed (seeds "
                        f"{', '.join(map(str, study.SEEDS))}) and evaluated on {study.STUDY_SAMPLES:,} samples; "
                        "mean ± half-width of the 95% Student-t interval over the seeds recorded (n). Compare "
                        "rows with each other, never with the paper's ImageNet FIDs. Every metric, the FID with the "
                        "dataset classifier's features included, and the verdicts: {doc}`the Evidence chapter "
                        "</book/evidence>`.")
    if n == 0:
        state = "no seed evaluated" if lost else "not run yet"
        return f"{state} (0 of {len(study.SEEDS)} seeds{lost_text}){marker}"
    cells = []
    for key in TABLE2_STUDY_METRICS:
        iv = study.t_interval(list(study.metric_values(records, slug, key).values()), study.LEVEL,
                              study.METRICS[key].bounds)
        if iv.n:
            mean, _, rest = study.format_interval(iv).partition(" ")
            cells.append(f"{study.METRICS[key].label} **{mean}**" + (f" {rest}" if rest else ""))
    return " · ".join(cells) + f" (n = {n}{lost_text}) — {steps:,} training steps{marker}"


#: what Table 2's measured column shows of a run (as the study column: the run's page has everything)
_TABLE2_MEASURED = ("accuracy", "geometric_distortion_rate_coarse")

_COMPONENTS = (("adaln_zero", "adaLN-Zero"), ("td_ln", "TD-LN"), ("multi_branch", "multi-branch"), ("glu", "GLU"),
               ("multiscale_loss", "multi-scale loss"))


def table2(runs_root=None, style: str = "myst") -> Table:
    """Table 2: the ablation from U-ViT-M/4 to DiMR-M/3R on ImageNet 64×64 (FID-50K, no guidance), compact:
    the paper's row (its five ✓ columns as one "Components" cell, its FID and size, labelled "(paper)"), then
    this repository's two measurements — the claims study (mean and interval over seeds) and the runs of the
    ``cpu`` profile — each with the training steps behind it. The counts and GMACs of every row are
    :func:`table2_counts` (the page shows them one click away)."""
    cols = ["#", "Model", "Components (✓ in the paper)", "FID ↓ (paper)", "#Params (paper)",
            "Claims study (this repo)", "Measured (this repo)"]
    from . import study
    from ..nn import build_model

    study_records = study.collect(_runs_root(runs_root))
    labels = {"accuracy": study.METRICS["accuracy"].label,
              "geometric_distortion_rate_coarse": study.METRICS["distortion_rate"].label}
    t = Table("2", "Table 2: ablation study (ImageNet 64×64)", _source("2", computed=False), cols)
    printed = {r["row"]: r["params"] for r in paper_rows("2")}
    uvit_blocks = len(build_model(model_config("Table2/row2"), device="meta").blocks)
    rows23_note = (f"Table 2 rows 2 and 3 are not specified in the paper. This repo's constructions reproduce the "
                   f"printed counts ({printed[2]}: a two-layer modulation MLP Linear(d,d)→SiLU→Linear(d,6d) in "
                   f"each of U-ViT's {uvit_blocks} blocks plus a two-layer time MLP; {printed[3]}: DiT's adaLN-Zero in every "
                   "block with a DiT timestep embedder per branch and 4× GELU MLPs). They are guesses that fit "
                   "the counts, not the authors' code, and no single recipe explains both rows "
                   "(docs/official-code.md §8).")
    for r in paper_rows("2"):
        name = implementation("2", r)
        model = (f"{_model_cell(r)} · " if r["model"] else "") + f"preset `{name}`"
        if r["row"] in (2, 3):
            model += t.note(rows23_note)
        checked = ", ".join(label for key, label in _COMPONENTS if r[key] == "✓") or "none (U-ViT's time token)"
        t.rows.append({
            "#": str(r["row"]), "Model": model, "Components (✓ in the paper)": checked, "FID ↓ (paper)": r["fid"],
            "#Params (paper)": r["params"],
            "Claims study (this repo)": study_cell(study_records, f"row{r['row']}", t),
            "Measured (this repo)": measured_cell("2", r["row"], True, runs_root, style, table=t,
                                                 only=_TABLE2_MEASURED, labels=labels)})
    t.column_note("Measured (this repo)", _MEASURED_NOTE + " Each run shows the training steps of the model it "
                  "measured: the `cpu` profile trains for a time, not a number of steps, so two rows may differ.")
    return t


def table2_counts() -> Table:
    """Table 2's rows counted and costed by this package: parameters beside the printed size (✓/✗ whether the
    count rounds to it, twice for the TD-norm rows: TD-RMSNorm and TD-LN block norms) and GMACs."""
    from ..presets import get_preset

    cols = ["#", "Preset", "#Params (paper)", "#Params (this repo)", "GMACs (this repo)"]
    t = Table("2", "Table 2: parameters and compute of every row, counted by this package", _source("2"), cols)
    smaller = sorted({profile_row(f"Table2/row{i}", "tdln")["params"] - profile_row(f"Table2/row{i}")["params"]
                      for i in (4, 5, 6)})
    coeffs = {i: ", ".join(_coeff(c) for c in get_preset(f"Table2/row{i}").recipe.loss_coeffs) for i in (3, 6)}
    rows456_note = ("Rows 4–6 are counted twice: with TD-RMSNorm block norms (what the released configs use) and "
                    "with TD-LN block norms (the norm the paper names); ✓/✗ say which rounds to the printed "
                    f"count. TD-RMSNorm is {' to '.join(fmt_params(d) for d in smaller)} smaller. Rows 3–5 train "
                    f"on the last branch's loss only (loss coefficients {coeffs[3]}), row 6 on the multi-scale "
                    f"loss ({coeffs[6]}).")
    for r in paper_rows("2"):
        name = implementation("2", r)
        preset = f"`{name}`" + (t.note(rows456_note) if r["row"] in (4, 5, 6) else "")
        t.rows.append({"#": str(r["row"]), "Preset": preset, "#Params (paper)": r["params"],
                       "#Params (this repo)": _count_cell(t, "2", r),
                       "GMACs (this repo)": f"{profile_row(name)['gmacs']:.1f}"})
    g = {r: profile_row(f"Table2/row{r}")["gmacs"] for r in range(1, 7)}
    multi = [g[r] for r in (3, 4, 5, 6)]
    t.column_note("GMACs (this repo)",
                  f"Table 2 prints no GFLOPs; the computed GMACs show what each step costs: adaLN-Zero leaves U-ViT's "
                  f"compute nearly unchanged ({g[1]:.1f} → {g[2]:.1f}), while the multi-branch rows cost "
                  f"{min(multi):.1f}–{max(multi):.1f} GMACs. " + _GMACS_NOTE)
    return t


def _ordinal(i: int) -> str:
    return {1: "1st", 2: "2nd", 3: "3rd"}.get(i, f"{i}th")


def _paper_value_in(preset, table_no: int) -> str:
    """The preset's printed #Params in a given table ("Tables 3–5", "Tables 1, 3, 4, 6"), as printed."""
    for pv in preset.paper_params:
        where = pv.where
        m = re.match(r"Tables? ([0-9,\s–-]+)", where)
        if not m:
            continue
        nums: set[int] = set()
        for part in m.group(1).split(","):
            part = part.strip()
            if re.fullmatch(r"\d+\s*[–-]\s*\d+", part):
                a, b = (int(x) for x in re.split(r"[–-]", part))
                nums.update(range(a, b + 1))
            elif part.isdigit():
                nums.add(int(part))
        if table_no in nums and "row" not in where:
            return _printed(pv.value)
    return "-"


def _generated_from(key: str) -> list:
    """The presets Table 3 or 4 is generated from, in the paper's column order (:data:`IMPLEMENTED`)."""
    from ..presets import get_preset

    return [get_preset(name) for name in IMPLEMENTED[key].values()]


def _size(n: int) -> str:
    return f"{n}×{n}"


def table3() -> Table:
    """Table 3, generated from its presets (:data:`IMPLEMENTED`): R, N, D and #params of the DiMR family."""
    cols = ["model", "input size", "latent size", "#branches R", "#layers N", "hidden size D", "#params",
            "#params (this repo)", "blocks built (N//2·2+1)"]
    from ..presets import get_preset

    t = Table("3", "Table 3: the DiMR family", _source("3") + " Generated from dimr.presets.", cols)
    for p in _generated_from("3"):
        cfg, rec = p.model, p.recipe
        printed = _paper_value_in(p, 3)
        n = profile_row(p.name)["params"]
        count = fmt_params(n) + _mark(matches_printed(n, printed)) + _add_sizes_note(t, p.name)
        t.rows.append({
            "model": p.name, "input size": _size(rec.resolution),
            "latent size": _size(rec.latent_shape[0]) if rec.latent_shape else "-",
            "#branches R": str(cfg.num_branches),
            "#layers N": "(" + ",".join(str(b.depth) for b in cfg.branches) + ")",
            "hidden size D": "(" + ",".join(str(b.dim) for b in cfg.branches) + ")",
            "#params": printed, "#params (this repo)": count,
            "blocks built (N//2·2+1)": "(" + ",".join(str(cfg.built_depth(r)) for r in
                                                     range(1, cfg.num_branches + 1)) + ")"})
    m3r = get_preset("DiMR-M/3R").model
    t.column_note("blocks built (N//2·2+1)",
                  "The official code builds N//2·2+1 blocks per branch (U-ViT's long skips need an odd count), so an "
                  f"even N gets one more block than printed: ({','.join(str(b.depth) for b in m3r.branches)}) is built "
                  f"as {', '.join(str(m3r.built_depth(r)) for r in range(1, m3r.num_branches + 1))} blocks "
                  "(docs/official-code.md §1).")
    return t


def _k(n: int) -> str:
    """``300000 -> "300K"``, ``1000000 -> "1M"``."""
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n % 1000 == 0:
        return f"{n // 1000}K"
    return str(n)


def _sci(x: float) -> str:
    """``3e-4 -> "3×10⁻⁴"``."""
    mant, exp = f"{x:e}".split("e")
    mant = f"{float(mant):g}"
    return f"{mant}×10{str(int(exp)).replace('-', '⁻').translate(_SUPERSCRIPT)}"


def _coeff(c: float) -> str:
    f = Fraction(c).limit_denominator(1024)
    return str(f.numerator) if f.denominator == 1 else f"{f.numerator}/{f.denominator}"


def table4() -> Table:
    """Table 4, generated from its presets (:data:`IMPLEMENTED`; model configs and Recipe fields):
    the experimental setup of every DiMR variant, one column per model."""
    presets = _generated_from("4")
    cols = ["setting"] + [p.name for p in presets]
    t = Table("4", "Table 4: experimental setup of DiMR", _source("4") + " Generated from dimr.presets.", cols)

    def add(label: str, fn: Callable) -> None:
        t.rows.append({"setting": label, **{p.name: fn(p) for p in presets}})

    def branch(r: int, fn: Callable) -> Callable:
        return lambda p: fn(p, p.model.branches[r - 1], r) if r <= p.model.num_branches else "-"

    add("Parameters", lambda p: _paper_value_in(p, 4))
    add("Image Resolution", lambda p: _size(p.recipe.resolution))
    add("Latent space", lambda p: "✓" if p.recipe.latent else "✗")
    add("Latent shape", lambda p: "×".join(map(str, p.recipe.latent_shape)) if p.recipe.latent_shape else "-")
    add("Image decoder", lambda p: p.recipe.image_decoder or "-")
    add("Number of branches R", lambda p: str(p.model.num_branches))
    for r in (1, 2, 3):
        add(f"Blocks in {_ordinal(r)} branch",
            branch(r, lambda p, b, r: "Transformer" if b.block == "transformer" else "ConvNeXt"))
        add(f"{_ordinal(r)} branch: #Layers", branch(r, lambda p, b, r: str(b.depth)))
        add(f"{_ordinal(r)} branch: #Dimensions", branch(r, lambda p, b, r: str(b.dim)))
        if r == 1:
            add(f"{_ordinal(r)} branch: #Heads", branch(r, lambda p, b, r: str(b.heads)))
        else:
            add(f"{_ordinal(r)} branch: Kernel size", branch(r, lambda p, b, r: _size(b.kernel_size)))
        add(f"{_ordinal(r)} branch: Resolution", branch(r, lambda p, b, r: _size(p.model.resolution(r))))
        add(f"{_ordinal(r)} branch: Loss Coeffs.", branch(r, lambda p, b, r: _coeff(p.recipe.loss_coeffs[r - 1])))
    add("Batch size", lambda p: str(p.recipe.batch_size))
    add("Training iterations", lambda p: _k(p.recipe.iterations))
    add("Warm-up steps", lambda p: _k(p.recipe.warmup_steps))
    add("Optimizer", lambda p: p.recipe.optimizer)
    add("learning rate", lambda p: _sci(p.recipe.lr))
    add("Weight decay", lambda p: f"{p.recipe.weight_decay:g}")
    add("Betas", lambda p: "(" + ",".join(f"{b:g}" for b in p.recipe.betas) + ")")
    add("Training devices", lambda p: p.recipe.training_devices or "-")
    add("Training time", lambda p: p.recipe.training_time or "-")
    add("Sampler", lambda p: p.recipe.sampler)
    add("Sampling steps", lambda p: str(p.recipe.sampling_steps))
    n_printed = len(t.rows)
    marker = t.note("Rows below the line are not in the paper: this repo's count and GMACs of each preset, the "
                    "blocks the official code builds, and recipe fields Table 4 leaves out (from the presets: "
                    "the official configs for the latent models, U-ViT's recipe for the pixel models).")
    add(f"Parameters (this repo){marker}", lambda p: fmt_params(profile_row(p.name)["params"])
        + _mark(matches_printed(profile_row(p.name)["params"], _paper_value_in(p, 4))))
    add("GMACs (this repo)", lambda p: f"{profile_row(p.name)['gmacs']:.1f}")
    add("Blocks built per branch", lambda p: ", ".join(str(p.model.built_depth(r))
                                                       for r in range(1, p.model.num_branches + 1)))
    add("Noise schedule", lambda p: {"vp_linear": "continuous VP, β 0.1→20",
                                      "sd_scaled_linear": "SD scaled-linear (discrete)"}.get(p.recipe.schedule,
                                                                                           p.recipe.schedule))
    add("EMA rate", lambda p: f"{p.recipe.ema_rate:g}")
    add("Label dropout (CFG)", lambda p: f"{p.recipe.p_uncond:g}")
    add("CFG scale (w = 1 + scale)", lambda p: f"{p.recipe.cfg_scale:g}" if p.recipe.cfg_scale else "none")
    t.rows.insert(n_printed, {c: ("**this repo**" if c == "setting" else "") for c in cols})
    return t


def table5(runs_root=None, style: str = "myst") -> Table:
    """Table 5: ImageNet 64×64 without guidance (FID, IS, precision, recall)."""
    return _benchmark_table("5", "Table 5: class-conditional ImageNet 64×64 (no guidance)",
                            [("fid", "FID ↓"), ("is", "IS ↑"), ("precision", "Precision ↑"), ("recall", "Recall ↑")],
                            True, runs_root, style)


def table6(runs_root=None, style: str = "myst") -> Table:
    """Table 6: ImageNet 256×256 with guidance, against every family of generative model."""
    t = _benchmark_table("6", "Table 6: class-conditional ImageNet 256×256 (with guidance)",
                         [("fid", "FID ↓"), ("is", "IS ↑"), ("precision", "Precision ↑"), ("recall", "Recall ↑")],
                         True, runs_root, style)
    adm = next(r for r in t.rows if r["Model"].startswith("ADM-G, ADM-U"))
    adm["Epoch"] += t.note("ADM-G, ADM-U is printed with 208 epochs here and 396 in Table 1(a); both as printed.")
    return t


def table7(runs_root=None, style: str = "myst") -> Table:
    """Table 7: ImageNet 512×512 with guidance."""
    return _benchmark_table("7", "Table 7: class-conditional ImageNet 512×512 (with guidance)",
                            [("fid", "FID ↓"), ("is", "IS ↑"), ("precision", "Precision ↑"), ("recall", "Recall ↑")],
                            True, runs_root, style)


#: Every table by key, each a zero-argument builder.
TABLES: dict[str, Callable[[], Table]] = {
    "1a": lambda: table1("a"), "1b": lambda: table1("b"), "2": table2, "2-counts": table2_counts, "3": table3,
    "4": table4,
    "5": table5, "6": table6, "7": table7,
}


def _escape(cell: str) -> str:
    return str(cell).replace("|", "\\|").replace("\n", " ")


def markdown(table: Table, notes: bool = True) -> str:
    """The table as a MyST/GFM pipe table, then its numbered notes and its source line."""
    lines = ["| " + " | ".join(_escape(table.header(c)) for c in table.columns) + " |",
             "|" + "|".join("---" for _ in table.columns) + "|"]
    lines += ["| " + " | ".join(_escape(r.get(c, "")) for c in table.columns) + " |" for r in table.rows]
    out = "\n".join(lines)
    if notes and table.notes:
        out += "\n\n" + "\n".join(f"{str(i + 1).translate(_SUPERSCRIPT)} {n}\n" for i, n in enumerate(table.notes))
    return out + f"\n\n*{table.source}*\n"
