"""The contention benchmark's machinery (dimr.train_rate, `dimr bench --contention`): no timings asserted."""
import os

import pytest

import dimr.train_rate as C
from dimr.train_rate import _variants


def test_busy_processes_hold_cores_for_the_block_only():
    with C.busy_processes(2) as procs:
        assert len(procs) == 2 and all(p.poll() is None for p in procs)
        pids = [p.pid for p in procs]
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_the_record_pairs_alone_and_busy_per_variant(monkeypatch):
    seen = []

    def fake_rate(tree, preset, windows, extra, env):
        busy = len(seen_busy)
        seen.append((preset, env.get("GOMP_SPINCOUNT"), busy))
        return {"images_per_s": 100.0 if busy == 0 else (50.0 if env.get("GOMP_SPINCOUNT") else 10.0),
                "windows": windows, "first_window_s": 1.0, "amp": "bf16", "compile": "on"}

    seen_busy: list = []

    class FakeBusy:
        def __init__(self, n):
            self.n = n

        def __enter__(self):
            seen_busy.extend([1] * self.n)
            return []

        def __exit__(self, *exc):
            seen_busy.clear()

    monkeypatch.setattr(C, "default_train_rate", fake_rate)
    monkeypatch.setattr(C, "busy_processes", FakeBusy)
    rec = C.contention(["U-ViT-T/4"], busy=1, windows=3, rounds=2, variants=_variants(["GOMP_SPINCOUNT=10000"]),
                       progress=lambda line: None)
    res = rec["results"]
    assert res["defaults"]["U-ViT-T/4"]["busy_over_alone"] == pytest.approx(0.1)
    assert res["GOMP_SPINCOUNT=10000"]["U-ViT-T/4"]["busy_over_alone"] == pytest.approx(0.5)
    assert len(seen) == 2 * 2 * 2  # rounds × variants × (alone, busy)
    assert rec["busy"] == 1 and rec["cpu_count"] == os.cpu_count()


def test_variants_parse_and_refuse_nonsense():
    assert _variants(None) == {"defaults": {}}
    assert _variants(["A=1,B=two"])["A=1,B=two"] == {"A": "1", "B": "two"}
    with pytest.raises(ValueError, match="VAR=VALUE"):
        _variants(["nonsense"])


def test_before_after_beside_busy_processes_holds_them_for_every_run(monkeypatch):
    held, seen = [], []

    class FakeBusy:
        def __init__(self, n):
            self.n = n

        def __enter__(self):
            held.append(self.n)
            return []

        def __exit__(self, *exc):
            held.pop()

    def fake_rate(tree, preset, windows, extra, env):
        seen.append((str(tree).endswith("before"), list(held)))
        return {"images_per_s": 60.0 if str(tree).endswith("before") else 72.0, "first_window_s": 1.0,
                "threads": 1, "amp": "bf16", "compile": "off"}

    monkeypatch.setattr(C, "default_train_rate", fake_rate)
    monkeypatch.setattr(C, "busy_processes", FakeBusy)
    monkeypatch.setattr(C, "_git", lambda root, *args: "abc1234" if args[0] == "rev-parse" else "")
    monkeypatch.setattr(C.subprocess, "run", lambda *a, **k: None)
    rec = C.before_after("abc1234", ["DiMR-T/3R"], windows=3, rounds=2, progress=lambda line: None, busy=1)
    assert seen == [(True, [1]), (False, [1])] * 2  # (before, after) per round, each beside one busy process
    assert rec["busy"] == 1 and "beside 1 busy process" in rec["what"]
    assert rec["results"]["DiMR-T/3R"]["speedup"] == pytest.approx(1.2)
    alone = C.before_after("abc1234", ["DiMR-T/3R"], windows=3, rounds=1, progress=lambda line: None)
    assert alone["busy"] == 0 and "busy" not in alone["what"] and seen[-1] == (False, [0])
    with pytest.raises(ValueError, match="0 or more"):
        C.before_after("abc1234", ["DiMR-T/3R"], busy=-1)
