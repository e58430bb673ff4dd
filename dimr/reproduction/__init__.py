"""The reproduction: what turns the library (:mod:`dimr`) into the book's evidence.

The library trains, samples, evaluates and measures any DiMR model; this subpackage runs the paper's
experiments with it and reads what they leave behind. It imports the library, never the other way
round (``tests/test_imports.py`` fails on an import from the library into this package).

* :mod:`.runs` — run records on disk: staged, published atomically, read back.
* :mod:`.plan` — the run plan: every experiment of every profile (``smoke``, ``cpu``, ``small``, ``paper``).
* :mod:`.reproduce` — ``python -m dimr reproduce``: executes the plan's notebooks into ``runs/``.
* :mod:`.calibrate` — the quick calibration that sets the ``cpu`` profile's equal training steps.
* :mod:`.paper` and :mod:`.tables` — the paper's Tables 1–7 as printed, beside what this repository computes and measured.
* :mod:`.stats`, :mod:`.study` and :mod:`.evidence` — the claims study: paired seeds, intervals, Holm, verdicts.
* :mod:`.bench_records` — the benchmark records the book reads.
* :mod:`.book` and :mod:`.editions` — the chapters' helpers and the Sphinx extension for the downloads.
"""
