"""``python -m dimr bench``: the record it writes, its FLOP and peak accounting, and the side-by-side guard.

Nothing here asserts a speed. The side-by-side run needs a checkout of github.com/qihao067/DiMR (and timm,
einops): set ``DIMR_OFFICIAL`` to its path, else those tests are skipped.
"""
import copy
import dataclasses
import importlib.util
import json
import os
from pathlib import Path

import pytest
import torch

from dimr import bench, flops, official, train_rate

from dimr.reproduction import bench_records
from dimr.config import config_from_dict
from dimr.convert import ConversionError, official_model_config
from dimr.nn import build_model
from dimr.presets import get_preset
from dimr.profile import profile_preset

ROOT = Path(__file__).resolve().parents[1]
OFFICIAL = os.environ.get("DIMR_OFFICIAL")
needs_official = pytest.mark.skipif(not OFFICIAL, reason="set DIMR_OFFICIAL to a checkout of qihao067/DiMR")
TINY = ["--preset", "DiMR-T/3R", "--batch-size", "2", "--warmup", "1", "--steps", "1", "--sample-runs", "1",
        "--sample-steps", "2", "--peak-seconds", "0.05"]


def _run(tmp_path, *extra):
    out = tmp_path / "record.json"
    rc = bench.cli([*TINY, *extra, "--out", str(out)])
    return rc, out


def test_the_command_writes_a_well_formed_record(tmp_path, capsys):
    rc, out = _run(tmp_path)
    assert rc == 0
    record = json.loads(out.read_text())
    printed = capsys.readouterr().out
    assert "| train | 2 | ours |" in printed and str(out) in printed
    gmacs = profile_preset("DiMR-T/3R").gmacs
    assert record["preset"] == "DiMR-T/3R" and record["gmacs_per_image"] == pytest.approx(gmacs)
    assert record["batch_sizes"] == [2] and record["amp"] == "none" and record["device"] == "cpu"
    assert record["gradient_checkpointing"] == {"ours": False} and record["compile"] is False
    assert record["official"] is None and record["git"]["commit"] and record["hardware"]["cpu_count"]
    assert record["peak"]["tflops"] > 0 and "measured" in record["peak"]["source"]
    assert record["timing"]["train_forward"] == {"warmup_calls": 1, "timed_calls": 1}
    assert "RSS" in record["memory"] and record["command"].startswith("python -m dimr bench")
    assert record["thp_mem_alloc_enable"] == os.environ.get("THP_MEM_ALLOC_ENABLE")
    train, sample = record["results"]
    assert (train["measure"], sample["measure"]) == ("train", "sample")
    t, s = train["sides"]["ours"], sample["sides"]["ours"]
    assert t["images_per_s"] > 0 and t["images_per_s"] == pytest.approx(2 / t["median_s"])
    assert t["flops_per_call"] == pytest.approx(2 * 3 * 2e9 * gmacs)  # batch 2, 3 forward-equivalents
    assert t["achieved_tflops"] == pytest.approx(t["flops_per_call"] / t["median_s"] / 1e12)
    assert t["mfu"] == pytest.approx(t["achieved_tflops"] / record["peak"]["tflops"])
    assert t["peak_memory_gib"] > 0
    assert set(t["host_per_call"]) == {"user_s", "system_s", "minor_page_faults"}
    assert t["host_per_call"]["user_s"] > 0 and min(t["host_per_call"].values()) >= 0
    # DiMR-T/3R's recipe guides (w = 2): each of the 2 solver steps is one forward of the doubled batch of 2
    assert record["sampler"]["guidance"] == 2.0 and record["sampler"]["steps"] == 2
    assert s["network_images_per_call"] == 2 * 2 * 2
    assert s["flops_per_call"] == pytest.approx(8 * 2e9 * gmacs)


def test_the_books_table_reads_every_bench_record_and_only_those(tmp_path):
    rc, out = _run(tmp_path, "--measure", "train")
    assert rc == 0
    record = json.loads(out.read_text())
    side_by_side = copy.deepcopy(record)
    side_by_side["when"] = "9999" + record["when"][4:]  # the later one
    entry = side_by_side["results"][0]
    entry["sides"]["official"] = {**entry["sides"]["ours"], "gradient_checkpointing": True}
    entry["ours_over_official"] = 1.234
    (tmp_path / "later.json").write_text(json.dumps(side_by_side))
    (tmp_path / "old-script.json").write_text(json.dumps({"preset": "DiMR-XL/2R", "results": [{"batch": 32}]}))
    found = bench_records.bench_records(tmp_path)
    assert [r["when"] for r in found] == [record["when"], side_by_side["when"]]  # oldest first, old script's left out
    rows = bench_records.records_table(found).splitlines()[2:]
    assert len(rows) == 3 and all(row.startswith("| DiMR-T/3R | train | 2 | fp32, eager |") for row in rows)
    assert "| ours | no |" in rows[1] and "1.23×" in rows[1] and "| official | yes |" in rows[2]
    assert record["git"]["commit"][:7] in rows[0]
    latest, entry = bench_records.latest_measure(found, "DiMR-T/3R")
    assert latest["when"] == side_by_side["when"] and entry["ours_over_official"] == 1.234
    assert bench_records.latest_measure(found, "U-ViT-T/4") is None and bench_records.latest_measure(found, "DiMR-T/3R", "sample") is None


def test_checkpointing_is_recorded_and_costs_a_fourth_forward(tmp_path):
    rc, out = _run(tmp_path, "--grad-checkpointing", "--measure", "train", "forward")
    assert rc == 0
    record = json.loads(out.read_text())
    gmacs = record["gmacs_per_image"]
    train, forward = (e["sides"]["ours"] for e in record["results"])
    assert record["gradient_checkpointing"] == {"ours": True} and train["gradient_checkpointing"]
    assert train["flops_per_call"] == pytest.approx(2 * 4 * 2e9 * gmacs)
    assert forward["flops_per_call"] == pytest.approx(2 * 1 * 2e9 * gmacs)


def test_flop_accounting():
    assert flops.flops_per_image(1.0, "forward") == 2e9
    assert flops.flops_per_image(1.0, "sample", checkpointing=True) == 2e9  # no backward: nothing re-runs
    assert flops.flops_per_image(1.0, "train") == 6e9
    assert flops.flops_per_image(1.0, "train", checkpointing=True) == 8e9
    assert flops.flops_per_image(0.5, "forward-backward", checkpointing=True) == 4e9
    with pytest.raises(ValueError, match="measure"):
        flops.flops_per_image(1.0, "backward")


def test_the_cpu_peak_is_measured_and_positive():
    assert flops.measure_cpu_peak(seconds=0.02, n=128) > 0
    peak = flops.device_peak(torch.device("cpu"), "none", cpu_seconds=0.02)
    assert peak["tflops"] > 0 and peak["dtype"] == "fp32" and "matmul" in peak["source"]
    given = flops.device_peak(torch.device("cpu"), "bf16", override=12.5)
    assert given == {"tflops": 12.5, "dtype": "bf16", "source": "--peak-tflops (given on the command line)"}


def test_datasheet_peaks_by_device_name():
    assert flops.datasheet_peak("NVIDIA H100 80GB HBM3", "bf16") == 989.0
    assert flops.datasheet_peak("NVIDIA H100 80GB HBM3", "fp32") == 67.0
    assert flops.datasheet_peak("NVIDIA H200", "bf16") == 989.0
    assert flops.datasheet_peak("NVIDIA H100 PCIe", "bf16") == 756.0  # not the SXM part's figure
    assert flops.datasheet_peak("NVIDIA A100-SXM4-80GB", "fp32") == 19.5
    assert flops.datasheet_peak("NVIDIA GeForce RTX 4090", "bf16") is None


def test_cpu_peak_memory_is_the_resident_set():
    mem = bench.PeakMemory(torch.device("cpu"))
    mem.reset()
    block = torch.ones(64, 2 ** 20 // 4)  # 64 MiB, touched
    assert "RSS" in mem.kind and mem.read() >= block.numel() * 4


def test_the_default_record_path_names_the_setting():
    record = {"preset": "DiMR-T/3R", "device": "cuda:0", "amp": "bf16", "batch_sizes": [2, 4],
              "gradient_checkpointing": {"ours": True}, "compile": False, "official": {"commit": None}}
    path = bench.default_out(record)
    assert path.parent.parts[-2:] == ("runs", "bench") and path.name == "dimr-t-3r-cuda-bf16-b2-4-ckpt-vs-official.json"


def test_the_equivalence_check_refuses_mismatched_weights():
    cfg = get_preset("DiMR-T/3R").model
    torch.manual_seed(0)
    ours = build_model(cfg)
    same = copy.deepcopy(ours)
    assert official.check_equivalence(ours, same, cfg) == 0.0
    with torch.no_grad():
        next(same.parameters()).add_(1e-2)
    with pytest.raises(official.EquivalenceError, match="refusing to time"):
        official.check_equivalence(ours, same, cfg)
    assert ours.training and same.training  # modes restored


def test_the_official_config_matches_the_fixture_generator(repo_root):
    """dimr.convert.official_model_config against the hand-written configs of scripts/make_official_reference.py."""
    spec = importlib.util.spec_from_file_location("make_official_reference", repo_root / "scripts/make_official_reference.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)

    def fields(args):
        return {k: [fields(s) for s in v] if k == "stage_configs" else v for k, v in vars(args).items()}
    for norm in ("TDRMSN", "LN"):
        ours = official_model_config(config_from_dict(script.our_config(norm)))
        assert fields(ours) == fields(script.official_config(norm))


def test_options_the_official_code_lacks_are_refused():
    cfg = get_preset("DiMR-T/3R").model
    for change in (dict(cascade="last"), dict(tdp_form="paper"), dict(upcast_attention=False)):
        with pytest.raises(ConversionError, match="no counterpart"):
            official_model_config(dataclasses.replace(cfg, **change))


def test_side_by_side_refuses_clearly_before_any_work(tmp_path, capsys):
    rc, out = _run(tmp_path, "--official", str(tmp_path))
    assert rc == 2 and "not a checkout of qihao067/DiMR" in capsys.readouterr().err and not out.exists()
    rc, out = _run(tmp_path, "--preset", "U-ViT-T/4", "--official", str(tmp_path))
    assert rc == 2 and "official" in capsys.readouterr().err and not out.exists()


def test_before_after_summary_takes_medians_over_rounds():
    runs = {"before": [{"images_per_s": 10.0}, {"images_per_s": 14.0}, {"images_per_s": 12.0}],
            "after": [{"images_per_s": 30.0}, {"images_per_s": 24.0}, {"images_per_s": 20.0}]}
    s = train_rate._before_after_summary(runs)
    assert (s["before_images_per_s"], s["after_images_per_s"], s["speedup"]) == (12.0, 24.0, 2.0)
    assert s["before"] == [10.0, 14.0, 12.0] and s["runs"] is runs


@needs_official
def test_side_by_side_with_the_official_code(tmp_path):
    rc, out = _run(tmp_path, "--official", OFFICIAL, "--measure", "train", "sample")
    assert rc == 0
    record = json.loads(out.read_text())
    official = record["official"]
    assert official["checkout"].startswith("<external>/") and 0 <= official["equivalence_max_abs_diff_by_batch"]["2"] <= 1e-4
    assert record["gradient_checkpointing"] == {"ours": False, "official": True}
    gmacs = record["gmacs_per_image"]
    for entry in record["results"]:
        ours, theirs = entry["sides"]["ours"], entry["sides"]["official"]
        assert entry["ours_over_official"] == pytest.approx(ours["images_per_s"] / theirs["images_per_s"])
        assert ours["images_per_call"] == theirs["images_per_call"] == 2
    train = record["results"][0]["sides"]
    assert train["official"]["flops_per_call"] == pytest.approx(2 * 4 * 2e9 * gmacs)  # it checkpoints
    assert record["results"][1]["sides"]["official"]["network_images_per_call"] == 8


@needs_official
def test_side_by_side_refuses_networks_that_differ(tmp_path, monkeypatch, capsys):
    import dimr.convert

    real = dimr.convert.convert_state_dict

    def off_by_a_little(state, cfg):
        out = dict(real(state, cfg))
        key = next(k for k in out if k.endswith("patchify.weight"))
        out[key] = out[key] + 1e-2
        return out
    monkeypatch.setattr(dimr.convert, "convert_state_dict", off_by_a_little)
    rc, out = _run(tmp_path, "--official", OFFICIAL)
    assert rc == 2 and "refusing to time" in capsys.readouterr().err and not out.exists()


def test_the_benchmarked_network_takes_the_presets_own_input_size():
    """setup fits a preset to its data: the bench's synthetic data must be what it fits to (a 64-px
    preset was once fitted to the default 32-px shapes and failed on its own batch)."""
    import torch

    from dimr.bench import bench_run

    run = bench_run("DiMR-M/3R", 1)
    x0, y = next(run.batches)
    assert tuple(x0.shape) == (1, 3, 64, 64)
    with torch.no_grad():
        outputs = run.model.eval()(x0, torch.zeros(1), y)
    assert tuple(outputs[-1].shape) == (1, 3, 64, 64)
