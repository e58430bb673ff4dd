"""The book's tables of machine records: contention and huge pages (dimr.reproduction.bench_records)."""
import json

from dimr.reproduction.bench_records import contention_table, huge_pages_table

HW = {"cpu": "Test CPU", "cpu_count": 2}


def test_contention_table_shows_each_variant_and_the_fair_share(tmp_path):
    assert contention_table(tmp_path) == ""
    rec = {"busy": 1, "rounds": 3, "cpu_count": 2, "hardware": HW, "when": "2026-12-07T13:00:00",
           "results": {"defaults": {"DiMR-T/3R": {"alone_images_per_s": 100.0, "busy_images_per_s": 60.0, "busy_over_alone": 0.6}},
                       "OMP_NUM_THREADS=2": {"DiMR-T/3R": {"alone_images_per_s": 101.0, "busy_images_per_s": 30.0, "busy_over_alone": 0.297}}}}
    (tmp_path / "contention-1-test-cpu-2026-12-07.json").write_text(json.dumps(rec))
    rows = contention_table(tmp_path).splitlines()[2:]
    assert len(rows) == 2
    assert "| defaults | 100 | 60 (1 busy) | 0.60 | 0.50 | 3 |" in rows[0]
    assert "| OMP_NUM_THREADS=2 |" in rows[1] and "| 0.30 |" in rows[1]


def test_huge_pages_table_shows_every_round_and_the_choice(tmp_path):
    rec = {"hardware": HW, "when": "2026-12-07T13:00:00", "choice": {"huge_pages": False, "rule": "…"},
           "results": {"DiMR-M/3R b4": {"off": [0.5, 0.52], "on": [0.4, 0.41], "on_over_off": 0.79}}}
    (tmp_path / "huge-pages-test-cpu-2026-12-07.json").write_text(json.dumps(rec))
    (tmp_path / "contention-1-x.json").write_text("{}")  # another mode's record is not read here
    rows = huge_pages_table(tmp_path).splitlines()[2:]
    assert rows == ["| Test CPU, 2026-12-07 | DiMR-M/3R b4 | 0.5, 0.52 | 0.4, 0.41 | 0.79× | off |"]
