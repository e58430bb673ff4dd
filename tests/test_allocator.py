"""dimr.allocator: huge pages on only where measured faster; the same decision in the CLI and in a notebook kernel."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dimr import allocator, train_rate
from dimr.bench import cli as bench_cli
from dimr.kernel import KERNEL_NAME, install, kernelspec

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(allocator.ENV, raising=False)
    return tmp_path / "cache"


def test_the_environment_stands(cache):
    assert allocator.huge_pages("Some CPU", {allocator.ENV: "1"})[0] is True
    on, why = allocator.huge_pages("Some CPU", {allocator.ENV: "0"})
    assert on is False and "environment" in why


def test_an_unmeasured_cpu_is_off_and_says_how_to_measure(cache):
    on, why = allocator.huge_pages("A CPU nobody measured", {})
    assert on is False and "--huge-pages" in why


def test_this_machines_measurement_comes_before_the_table(cache, monkeypatch):
    monkeypatch.setitem(allocator.MEASURED, "Test CPU", (False, "runs/bench/x.json"))
    assert allocator.huge_pages("Test CPU", {}) == (False, "measured on Test CPU (runs/bench/x.json)")
    allocator.remember("Test CPU", True, "/tmp/rec.json")
    on, why = allocator.huge_pages("Test CPU", {})
    assert on is True and "this machine" in why and "/tmp/rec.json" in why
    allocator.remember("Other CPU", False, "/tmp/other.json")  # a second CPU keeps the first
    assert allocator.huge_pages("Test CPU", {})[0] is True and allocator.huge_pages("Other CPU", {})[0] is False


def test_an_unreadable_machine_file_is_ignored(cache):
    allocator.machine_file().parent.mkdir(parents=True)
    allocator.machine_file().write_text("{not json")
    assert allocator.huge_pages("Whatever", {})[0] is False


def test_apply_sets_the_variable_for_children(cache):
    env = {}
    allocator.apply(env)
    assert env[allocator.ENV] in ("0", "1")
    env = {allocator.ENV: "1"}
    assert "environment" in allocator.apply(env) and env[allocator.ENV] == "1"


def test_every_measured_cpu_names_a_record_that_says_so():
    assert allocator.MEASURED, "the CPUs this repository measured"
    for cpu, (on, record) in allocator.MEASURED.items():
        rec = json.loads((ROOT / record).read_text())
        assert rec["hardware"]["cpu"] == cpu
        assert rec["choice"]["huge_pages"] is on
        assert train_rate.huge_page_choice({k: v["on_over_off"] for k, v in rec["results"].items()}) is on


def test_the_choice_rule():
    assert train_rate.huge_page_choice({"M b4": 1.30, "T b16": 1.00}) is True
    assert train_rate.huge_page_choice({"M b4": 1.30, "T b16": 0.90}) is False  # one workload slower: off
    assert train_rate.huge_page_choice({"M b4": 1.02, "T b16": 0.99}) is False  # within noise: off


def test_huge_page_rates_alternates_and_records(monkeypatch):
    calls = []

    def fake(preset, batch, warmup, steps, env):
        calls.append((preset, env[allocator.ENV]))
        return {"0": 1.0, "1": 1.5}[env[allocator.ENV]] if preset == "Big" else 10.0

    monkeypatch.setattr(train_rate, "_bench_train_rate", fake)
    rec = train_rate.huge_page_rates([("Big", 4), ("Tiny", 16)], rounds=2, progress=lambda line: None)
    assert calls == [("Big", "0"), ("Big", "1"), ("Tiny", "0"), ("Tiny", "1")] * 2
    assert rec["results"]["Big b4"]["on_over_off"] == pytest.approx(1.5) and rec["choice"]["huge_pages"] is True
    assert rec["results"]["Tiny b16"]["off"] == [10.0, 10.0]


def test_bench_refuses_a_bad_workload(capsys):
    assert bench_cli(["--huge-pages", "DiMR-T/3R"]) == 2
    assert "PRESET@BATCH" in capsys.readouterr().err


def _env_without(cache: Path) -> dict:
    return {**{k: v for k, v in os.environ.items() if k != allocator.ENV}, "XDG_CACHE_HOME": str(cache)}


@pytest.mark.parametrize("on", [True, False])
def test_the_cli_applies_this_machines_choice(cache, on):
    allocator.remember(allocator.cpu_name(), on, "rec.json")
    code = "import dimr.__main__, os; print(os.environ['THP_MEM_ALLOC_ENABLE'])"
    out = subprocess.run([sys.executable, "-c", code], env=_env_without(cache), capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ("1" if on else "0")


def test_a_notebook_kernel_gets_the_same_setting(cache, tmp_path):
    """A kernel started from the project's kernelspec (what papermill, jupyter-book and JupyterLab start)
    decides huge pages as the CLI does, before torch is imported."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    folder = install(tmp_path / "prefix")
    assert json.loads((folder / "kernel.json").read_text())["argv"] == kernelspec()["argv"]
    assert folder.name == KERNEL_NAME
    allocator.remember(allocator.cpu_name(), True, "rec.json")
    ksm = KernelSpecManager(kernel_dirs=[str(folder.parent)])
    km = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=ksm)
    km.start_kernel(env=_env_without(cache))
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=120)
        seen = []
        kc.execute_interactive("import os, sys; print(os.environ.get('THP_MEM_ALLOC_ENABLE'), 'torch' in sys.modules)",
                               timeout=60, output_hook=lambda m: seen.append(m["content"].get("text", "")))
        assert "".join(seen).split() == ["1", "False"]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
