"""dimr.reproduction.tables: the transcription, the tables generated from the presets, the counts, the measured hook."""
from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import pytest

from dimr.reproduction import paper, tables
from dimr.nn import build_model
from dimr.presets import get_preset
from dimr.profile import count_params
from dimr.reproduction.runs import metric, recording, write_metrics

#: the paper's text layer (e.g. `pdftotext` of arXiv:2406.09416), given by the user: nothing is downloaded
PAPER_TXT = Path(os.environ.get("DIMR_PAPER_TEXT", "/nonexistent"))

# The paper's Table 3 as printed (p. 10): model -> (input size, latent size, R, N, D, #params).
PRINTED_TABLE3 = {
    "DiMR-M/3R": ("64×64", "-", "3", "(15,8,8)", "(768,384,192)", "133M"),
    "DiMR-L/3R": ("64×64", "-", "3", "(33,17,17)", "(768,384,192)", "284M"),
    "DiMR-XL/2R": ("256×256", "32×32", "2", "(39,20)", "(960,480)", "505M"),
    "DiMR-XL/3R": ("512×512", "64×64", "3", "(39,20,20)", "(960,480,240)", "525M"),
}

# The paper's Table 4 as printed (p. 11), columns DiMR-M/3R, DiMR-L/3R, DiMR-XL/2R, DiMR-XL/3R.
PRINTED_TABLE4 = {
    "Parameters": ("133M", "284M", "505M", "525M"),
    "Image Resolution": ("64×64", "64×64", "256×256", "512×512"),
    "Latent space": ("✗", "✗", "✓", "✓"),
    "Latent shape": ("-", "-", "32×32×4", "64×64×4"),
    "Image decoder": ("-", "-", "sd-vae-ft-ema", "sd-vae-ft-ema"),
    "Number of branches R": ("3", "3", "2", "3"),
    "Blocks in 1st branch": ("Transformer",) * 4,
    "1st branch: #Layers": ("15", "33", "39", "39"),
    "1st branch: #Dimensions": ("768", "768", "960", "960"),
    "1st branch: #Heads": ("12", "12", "16", "16"),
    "1st branch: Resolution": ("16×16",) * 4,
    "1st branch: Loss Coeffs.": ("1/16", "1/16", "1/4", "1/16"),
    "Blocks in 2nd branch": ("ConvNeXt",) * 4,
    "2nd branch: #Layers": ("8", "17", "20", "20"),
    "2nd branch: #Dimensions": ("384", "384", "480", "480"),
    "2nd branch: Kernel size": ("7×7",) * 4,
    "2nd branch: Resolution": ("32×32",) * 4,
    "2nd branch: Loss Coeffs.": ("1/4", "1/4", "1", "1/4"),
    "Blocks in 3rd branch": ("ConvNeXt", "ConvNeXt", "-", "ConvNeXt"),
    "3rd branch: #Layers": ("8", "17", "-", "20"),
    "3rd branch: #Dimensions": ("192", "192", "-", "240"),
    "3rd branch: Kernel size": ("7×7", "7×7", "-", "7×7"),
    "3rd branch: Resolution": ("64×64", "64×64", "-", "64×64"),
    "3rd branch: Loss Coeffs.": ("1", "1", "-", "1"),
    "Batch size": ("1024",) * 4,
    "Training iterations": ("300K", "300K", "1M", "1M"),
    "Warm-up steps": ("5K",) * 4,
    "Optimizer": ("AdamW",) * 4,
    "learning rate": ("3×10⁻⁴", "3×10⁻⁴", "2×10⁻⁴", "2×10⁻⁴"),
    "Weight decay": ("0.03",) * 4,
    "Betas": ("(0.99,0.99)",) * 4,
    "Training devices": ("8 A100", "16 A100", "16 A100", "16 A100"),
    "Training time": ("62 hours", "80 hours", "172 hours", "288 hours"),
    "Sampler": ("DPM-Solver",) * 4,
    "Sampling steps": ("50", "50", "250", "250"),
}


def _count(name: str, **changes) -> int:
    """Parameters of a preset's model (with some config fields changed), built here, not via tables."""
    return count_params(build_model(dataclasses.replace(get_preset(name).model, **changes), device="meta"))


def _printed(value: float) -> str:
    return f"{value:g}M"


def test_table3_generated_from_presets_matches_the_printed_table():
    t = tables.table3()
    got = {r["model"]: (r["input size"], r["latent size"], r["#branches R"], r["#layers N"], r["hidden size D"],
                        r["#params"]) for r in t.rows}
    assert got == PRINTED_TABLE3
    # every count is the model built here, and rounds to the printed one (✓, never ✗)
    assert [r["#params (this repo)"].split()[0] for r in t.rows] == [tables.fmt_params(_count(n)) for n in got]
    assert all(r["#params (this repo)"].split()[1].startswith("✓") for r in t.rows), t.rows
    assert [r["blocks built (N//2·2+1)"] for r in t.rows] == ["(15,9,9)", "(33,17,17)", "(39,21)", "(39,21,21)"]


def test_table4_generated_from_presets_matches_the_printed_table():
    t = tables.table4()
    assert t.columns == ["setting", "DiMR-M/3R", "DiMR-L/3R", "DiMR-XL/2R", "DiMR-XL/3R"]
    by_setting = {r["setting"]: tuple(r[c] for c in t.columns[1:]) for r in t.rows}
    for setting, printed in PRINTED_TABLE4.items():
        assert by_setting[setting] == printed, setting
    # the printed block comes first, in the paper's order, then this repo's additions
    assert [r["setting"] for r in t.rows[:len(PRINTED_TABLE4)]] == list(PRINTED_TABLE4)
    extra = {r["setting"].rstrip("¹²³⁴⁵⁶⁷⁸⁹⁰"): r for r in t.rows[len(PRINTED_TABLE4):]}
    assert extra["Parameters (this repo)"]["DiMR-XL/2R"] == tables.fmt_params(_count("DiMR-XL/2R")) + " ✓"


def test_transcribed_tables_have_their_printed_shape():
    assert {k: len(v) for k, v in paper.PAPER_TABLES.items()} == {"1a": 7, "1b": 7, "2": 6, "5": 4, "6": 29, "7": 12}
    for key, rows in paper.PAPER_TABLES.items():
        assert [r["row"] for r in rows] == list(range(1, len(rows) + 1))
        for r in rows:
            assert r["params"] == "-" or re.fullmatch(r"[0-9.]+[MB]", r["params"]), (key, r)
    assert paper.paper_rows("6")[-1]["fid"] == "1.70" and paper.paper_rows("7")[-1]["fid"] == "2.89"
    with pytest.raises(KeyError):
        paper.paper_rows("3")  # generated, never typed


@pytest.mark.skipif(not PAPER_TXT.exists(), reason="set DIMR_PAPER_TEXT to the paper's text layer (arXiv:2406.09416) to check the transcription")
def test_transcription_matches_the_paper_text():
    """Each transcribed row's printed numbers appear, in order, in the paper's text layer."""
    text = PAPER_TXT.read_text(encoding="utf-8")
    cols = {"1a": ("epochs", "params", "gflops", "fid_wo_cfg", "fid"), "1b": ("epochs", "params", "gflops", "fid_wo_cfg", "fid"),
            "2": ("fid", "params"), "5": ("epochs", "params", "gflops", "fid", "is", "precision", "recall")}
    cols["6"] = cols["7"] = cols["5"]
    for key, rows in paper.PAPER_TABLES.items():
        for r in rows:
            printed = " ".join(r[c] for c in cols[key])
            assert printed in text, (key, r["row"], printed)
    for model, (fid, rate) in paper.FIG5_DISTORTION.items():
        assert f"{model}\nFID={fid}\nDistortion rate\n= {rate}" in text, model


def test_fig5_distortion_rates_agree_with_the_fids_of_table_1a():
    """Fig. 5 prints each model's best ImageNet-256 FID with CFG; they are Table 1a's rows."""
    fids = {r["model"]: r["fid"] for r in paper.paper_rows("1a")}
    assert paper.FIG5_DISTORTION["U-ViT"][0] == fids["U-ViT-H/2"]
    assert paper.FIG5_DISTORTION["DiT"][0] == fids["DiT-XL/2"]
    assert paper.FIG5_DISTORTION["DiMR (Ours)"][0] in {r["fid"] for r in paper.paper_rows("1a") if "DiMR" in r["model"]}
    rates = {m: float(v[1].rstrip("%")) for m, v in paper.FIG5_DISTORTION.items()}
    assert min(rates, key=rates.get) == "DiMR (Ours)"


def _implemented():
    for key, rows in paper.PAPER_TABLES.items():
        for r in rows:
            if paper.implementation(key, r) is not None:
                yield key, r


def test_every_implemented_row_counts_to_the_printed_params_or_is_explained():
    mismatched = set()
    for key, r in _implemented():
        chk = paper.param_check(key, r)
        if not (chk["match"] or (chk["alt"] and chk["alt"]["match"])):
            mismatched.add((key, r["model"]))
    # Only DiT-XL/2 at 512: its fixed position table grows with the token count (printed 675M for both sizes).
    assert mismatched == {("1b", "DiT-XL/2"), ("7", "DiT-XL/2")}
    at_512, at_256 = _count("DiT-XL/2", image_size=64), _count("DiT-XL/2")
    note = paper.derived_note("DiT-XL/2 @ 512")
    assert f"{tables.fmt_params(at_512 - at_256)} more" in note and f"({tables.fmt_params(at_512)})" in note
    # Table 2 rows 4-6 match through the TD-LN block-norm count, which the table shows beside TD-RMSNorm
    for row in (4, 5, 6):
        chk = paper.param_check("2", paper.paper_rows("2")[row - 1])
        assert chk["match"] is False and chk["alt"]["match"] is True


def test_every_implemented_row_rounds_to_the_printed_gflops():
    for key, r in _implemented():
        if r.get("gflops", "-") == "-" or key == "2":
            continue
        g = paper.profile_row(paper.implementation(key, r))["gmacs"]
        assert round(g) == int(r["gflops"]), (key, r["model"], g)


def _note_of(table, cell: str) -> str:
    """The note whose superscript marker ends ``cell``."""
    marker = re.search(r"[⁰¹²³⁴⁵⁶⁷⁸⁹]+$", cell).group()
    return table.notes[int(marker.translate(str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789"))) - 1]


def test_the_inconsistencies_are_footnoted():
    t2, t2c = tables.table2(), tables.table2_counts()
    printed = {r["row"]: r["params"] for r in paper.paper_rows("2")}
    # DiMR-M/3R (rows 5, 6): every size the paper prints, and both block-norm counts built here
    m3r = _note_of(t2c, t2c.rows[5]["#Params (this repo)"])
    rms, tdln = _count("DiMR-M/3R"), _count("DiMR-M/3R", block_norm="tdln")
    assert all(_printed(v.value) in m3r for v in get_preset("DiMR-M/3R").paper_params)
    assert tables.fmt_params(rms) in m3r and tables.fmt_params(tdln) in m3r
    # of them, App. B's size is matched by neither count, and the note says so
    unmatched = [v for v in get_preset("DiMR-M/3R").paper_params
                 if not any(paper.matches_printed(n, _printed(v.value)) for n in (rms, tdln))]
    assert [v.where for v in unmatched] == ["App. B"] and f"neither rounds to {_printed(unmatched[0].value)}" in m3r
    # rows 2 and 3 (no released code) share one note, which names the sizes their constructions reach
    guessed = {_note_of(t2, t2.rows[i]["Model"]) for i in (1, 2)}
    assert len(guessed) == 1 and printed[2] in guessed.pop()
    assert not re.search(r"[⁰¹²³⁴⁵⁶⁷⁸⁹]$", t2.rows[0]["Model"])
    # row 4: the released TD-RMSNorm count misses the printed size, the TD-LN count matches it
    cfg4 = get_preset("Table2/row4").model
    rms4 = count_params(build_model(cfg4, device="meta"))
    tdln4 = count_params(build_model(dataclasses.replace(cfg4, block_norm="tdln"), device="meta"))
    assert paper.matches_printed(rms4, printed[4]) is False and paper.matches_printed(tdln4, printed[4]) is True
    assert t2c.rows[3]["#Params (this repo)"] == (f"{tables.fmt_params(rms4)} ✗ (TD-RMSNorm) · "
                                                  f"{tables.fmt_params(tdln4)} ✓ (TD-LN)")
    # Table 1(b): DiMR-XL/3R's two printed sizes; DiT-XL/2 at 512 counted at 512
    t1b = tables.table1("b")
    by_model = {r["Model"]: r for r in t1b.rows}
    xl3r = _note_of(t1b, by_model["DiMR-XL/3R (Ours)"]["#Params (this repo)"])
    assert all(_printed(v.value) in xl3r for v in get_preset("DiMR-XL/3R").paper_params)
    assert tables.fmt_params(_count("DiMR-XL/3R")) in xl3r
    dit = by_model["DiT-XL/2 [40]"]["#Params (this repo)"]
    assert dit.startswith(tables.fmt_params(_count("DiT-XL/2", image_size=64)) + " ✗")
    assert _note_of(t1b, dit) == paper.derived_note("DiT-XL/2 @ 512")


def test_not_run_and_not_implemented(tmp_path):
    t6 = tables.table6(runs_root=tmp_path)
    by_model = {}
    for r in t6.rows:
        by_model.setdefault(r["Model"], r)
    assert by_model["BigGAN [4]"]["Measured (this repo)"] == tables.NOT_IMPLEMENTED
    assert by_model["BigGAN [4]"]["#Params (this repo)"] == tables.NOT_IMPLEMENTED
    assert by_model["DiT-XL/2 [40]"]["Measured (this repo)"] == tables.NOT_RUN
    t2 = tables.table2(runs_root=tmp_path / "missing")
    assert all(r["Measured (this repo)"] == tables.NOT_RUN for r in t2.rows)


def test_measured_cells_come_from_complete_runs_only(tmp_path):
    root = tmp_path / "runs"
    with recording(root, "train-table2-row6", "cpu", profile="cpu", preset="DiMR-T/3R",
                   feeds=["table2/row6"]) as rec:
        write_metrics(rec.dir, {"fid": metric(41.234, "FID (shapes classifier)", "32×32 shapes, 2k steps, CPU"),
                                "precision": metric(0.5, "precision", "32×32 shapes, 2k steps, CPU")})
    with pytest.raises(RuntimeError):  # a failed run feeding row 5 leaves nothing measurable
        with recording(root, "train-table2-row5", "cpu", profile="cpu", feeds=["table2/row5"]) as rec:
            write_metrics(rec.dir, {"fid": metric(1.0, "FID (shapes classifier)", "never finished")})
            raise RuntimeError("interrupted")
    t2 = tables.table2(runs_root=root)
    cell6 = t2.rows[5]["Measured (this repo)"]
    assert "41.23" not in cell6 and "precision" not in cell6  # Table 2 shows accuracy and distortion rate only
    assert cell6.startswith("no metrics recorded")
    plain = tables.measured_cell("2", 6, True, runs_root=root, style="text")
    assert "runs/train-table2-row6/cpu" in plain and "{" not in plain
    assert "FID (shapes classifier), 32×32 shapes, 2k steps, CPU" in plain  # no table: the scale inline
    with recording(root, "eval-table2-row5", "cpu", profile="cpu", preset="DiMR-T/3R", feeds=["table2/row5"]) as rec:
        scale = "32×32 shapes, CPU; model trained 1234 steps"
        write_metrics(rec.dir, {"accuracy_shapes_classifier": metric(0.625, "Accuracy: samples classified (long)", scale),
                                "geometric_distortion_rate_coarse": metric(0.25, "rate", scale),
                                "fid_shapes_classifier": metric(41.234, "FID (shapes classifier)", scale)})
    t2 = tables.table2(runs_root=root)
    cell5 = t2.rows[4]["Measured (this repo)"]
    # the study's short labels, two headline numbers, the steps the model trained, the run linked
    assert cell5.startswith("classifier accuracy **0.625** · distortion rate, 1 − IoU > 0.15 **0.25** — "
                            "1,234 training steps (")
    assert "41.2" not in cell5 and "eval-table2-row5/cpu, your machine, just now" in cell5 and "{download}" in cell5
    # the scale is said once, in a numbered note whose marker the cell carries
    note = t2.notes.index(f"Measured at: {scale}.")
    assert cell5.endswith(str(note + 1).translate(tables._SUPERSCRIPT))


def test_markdown_is_a_well_formed_pipe_table():
    t = tables.table1("a")
    md = tables.markdown(t)
    lines = [ln for ln in md.splitlines() if ln.startswith("|")]
    widths = {len(re.findall(r"(?<!\\)\|", ln)) for ln in lines}
    assert widths == {len(t.columns) + 1}
    assert len(lines) == len(t.rows) + 2
    assert "p. 8" in md and "arXiv:2406.09416" in md


def test_every_note_has_a_marker_and_table_2_says_what_is_printed():
    """A footnote no cell or header points to is unreadable: every table's notes are each marked somewhere."""
    for build in (lambda: tables.table1("a"), lambda: tables.table1("b"), tables.table2, tables.table2_counts,
                  tables.table3, tables.table4, tables.table5, tables.table6, tables.table7):
        t = build()
        text = " ".join(t.header(c) for c in t.columns) + " ".join(str(v) for r in t.rows for v in r.values())
        for i, _ in enumerate(t.notes, 1):
            assert str(i).translate(tables._SUPERSCRIPT) in text, (t.title, i)
    t2 = tables.table2()
    printed = [c for c in t2.columns if c not in ("#", "Model", "Claims study (this repo)", "Measured (this repo)")]
    assert all("paper" in c for c in printed), printed
    header = tables.markdown(t2).splitlines()[0]
    assert "Measured (this repo)" + t2.header_markers["Measured (this repo)"] in header


def test_table_2_is_compact_with_the_steps_beside_every_measurement(tmp_path):
    from dimr.reproduction import study

    t2 = tables.table2()
    for r in t2.rows:
        cell = r["Claims study (this repo)"]
        numbers = re.findall(r"\*\*[^*]+\*\*", cell)  # the headline numbers are the bold ones
        assert len(numbers) <= 3, cell
        if numbers:
            assert f"{study.STUDY_STEPS:,} training steps" in cell, cell
    assert "GMACs (this repo)" not in t2.columns and "GMACs (this repo)" in tables.table2_counts().columns
