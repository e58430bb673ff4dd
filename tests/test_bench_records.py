"""The book's tables of machine records: contention, huge pages, before/after, make book under load
(dimr.reproduction.bench_records)."""
import json

import pytest

from dimr.reproduction.bench_records import (before_after_records, before_after_table, contention_table,
                                             huge_pages_table, make_book_table, under_load_records)

HW = {"cpu": "Test CPU", "cpu_count": 2}


def test_contention_table_shows_each_variant_the_fair_share_and_the_start_up(tmp_path):
    assert contention_table(tmp_path) == ""
    runs = lambda a, b: {"alone": [{"first_window_s": a}, {"first_window_s": 9}], "busy": [{"first_window_s": b}]}  # noqa: E731
    rec = {"busy": 1, "rounds": 3, "cpu_count": 2, "hardware": HW, "when": "2026-12-07T13:00:00", "train_args": "",
           "results": {"defaults": {"DiMR-T/3R": {"alone_images_per_s": 100.0, "busy_images_per_s": 60.0,
                                                  "busy_over_alone": 0.6, "runs": runs(98.6, 107.4)}},
                       "OMP_NUM_THREADS=2": {"DiMR-T/3R": {"alone_images_per_s": 101.0, "busy_images_per_s": 30.0,
                                                           "busy_over_alone": 0.297, "runs": runs(9.7, 11.3)}}}}
    (tmp_path / "contention-1-test-cpu-2026-12-07.json").write_text(json.dumps(rec))
    # a second record with training flags: they name its rows
    flagged = {**rec, "train_args": "--compile off", "results": {"defaults": rec["results"]["defaults"]}}
    (tmp_path / "contention-compile-off-test-cpu.json").write_text(json.dumps(flagged))
    rows = contention_table(tmp_path).splitlines()[2:]
    assert len(rows) == 3
    assert "| defaults | 100 | 60 (1 busy) | 0.60 | 0.50 | 99, 107 | 3 |" in rows[0]  # round 1's start-up
    assert "| OMP_NUM_THREADS=2 |" in rows[1] and "| 0.30 |" in rows[1] and "| 10, 11 |" in rows[1]
    assert "| defaults `--compile off` | 100 |" in rows[2]


def test_huge_pages_table_shows_every_round_and_the_choice(tmp_path):
    rec = {"hardware": HW, "when": "2026-12-07T13:00:00", "choice": {"huge_pages": False, "rule": "…"},
           "results": {"DiMR-M/3R b4": {"off": [0.5, 0.52], "on": [0.4, 0.41], "on_over_off": 0.79}}}
    (tmp_path / "huge-pages-test-cpu-2026-12-07.json").write_text(json.dumps(rec))
    (tmp_path / "contention-1-x.json").write_text("{}")  # another mode's record is not read here
    rows = huge_pages_table(tmp_path).splitlines()[2:]
    assert rows == ["| Test CPU, 2026-12-07 | DiMR-M/3R b4 | 0.5, 0.52 | 0.4, 0.41 | 0.79× | off |"]


def test_before_after_table_shows_every_round_threads_and_start_up(tmp_path):
    run = lambda ips, threads, first: {"images_per_s": ips, "first_window_s": first, "threads": threads}  # noqa: E731
    rec = {"what": "default training", "before": "aaaaaaa", "after": "bbbbbbb", "hardware": HW,
           "results": {"DiMR-T/3R": {"speedup": 0.98, "runs": {"before": [run(90, 2, 100), run(88, 2, 20)],
                                                                 "after": [{**run(86, 1, 6), "compile": "off"},
                                                                           {**run(89, 1, 21), "compile": "off"}]}},
                       # an archived record: no threads were recorded then
                       "U-ViT-T/4": {"speedup": 1.5, "runs": {"before": [{"images_per_s": 76, "first_window_s": 8}],
                                                               "after": []}}}}
    (tmp_path / "before-aaaaaaa-dimr-t-3r.json").write_text(json.dumps(rec))
    (tmp_path / "contention-1-x.json").write_text("{}")
    [read] = before_after_records(tmp_path)
    lines = before_after_table(read).splitlines()
    assert lines[0].startswith("default training: `aaaaaaa` → `bbbbbbb`, Test CPU (2 cores)")
    assert lines[4] == "| DiMR-T/3R | 90, 88 | 86, 89 | 0.98× | 2 / 1 (eager) | 100, 20 / 6, 21 |"
    assert lines[5] == "| U-ViT-T/4 | 76 | – | 1.50× | – / – | 8 / – |"


def _book_record(busy: int, steps: tuple, notes: tuple = (None, None)) -> dict:
    runs = {"calibrate-table2": {"metrics": {"equal_steps": 1000.0}}}
    for row, note in zip((1, 6), notes):
        runs[f"train-table2-row{row}"] = {"run": {"threads": 2 - busy, "slow_note": note}}
    return {"busy": busy, "hardware": HW, "cpu_count": 2, "when": "2026-12-07T16:00:00", "wall_s": 1500.0,
            "book_built": True, "git": {"commit": "0123456789"}, "runs": runs,
            "table2_steps": {"eval-table2-row1": steps[0], "eval-table2-row6": steps[1]}}


def test_make_book_table_shows_each_cell_s_steps_threads_and_notes(tmp_path):
    assert make_book_table(tmp_path) == ""
    (tmp_path / "make-book-busy-0-test-cpu-2026-12-07.json").write_text(json.dumps(_book_record(0, (1000, 1000))))
    (tmp_path / "make-book-busy-1-test-cpu-2026-12-07.json").write_text(
        json.dumps(_book_record(1, (1000, None), (None, "another process is using the CPU: 20 img/s, expected ≈80"))))
    (tmp_path / "ten-minutes-busy-1-test-cpu-2026-12-07.json").write_text("{}")  # not a make book record
    rows = make_book_table(tmp_path).splitlines()[2:]
    assert rows[0] == ("| Test CPU, 2 cores, 2026-12-07 | 0 | 25.0 | yes | 1,000 | 1,000 | 1,000 | 2 / 2 | none | "
                       "0123456 |")
    assert "| 1 | 25.0 | yes | 1,000 | 1,000 | – | 1 / 1 | another process is using the CPU: 20 img/s" in rows[1]
    assert len(under_load_records("ten-minutes", tmp_path)) == 1
    # a later measurement whose name sorts first (a suffix) is still listed after the earlier one
    later = {**_book_record(1, (900, 900)), "when": "2026-12-07T20:00:00"}
    (tmp_path / "make-book-busy-1-test-cpu-2026-12-07-a.json").write_text(json.dumps(later))
    assert [r["when"][11:16] for r in under_load_records("make-book", tmp_path)] == ["16:00", "16:00", "20:00"]
    assert "| 900 |" in make_book_table(tmp_path).splitlines()[-1]
    with pytest.raises(ValueError, match="expected 'make-book' or 'ten-minutes'"):
        under_load_records("book", tmp_path)
