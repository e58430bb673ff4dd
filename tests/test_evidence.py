"""The claims study as the book prints it (dimr.reproduction.evidence), on synthetic records."""
import json

from dimr.reproduction import evidence, study
from dimr.reproduction.plan import build_plan

PLAN = build_plan()


def _record(root, slug, seed, metrics, steps=study.STUDY_STEPS, **changed):
    exp = study.experiment_names(slug, seed, steps)[1]
    folder = root / exp / "small"
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({
        "status": "complete", "experiment": exp, "run": "small", "profile": "small",
        "parameters": {**PLAN[exp].parameters["small"], **changed}, "git": {"commit": "abc1234567", "dirty": False},
        "hardware": {"cpu": "Test CPU"},
        "metrics": {k: {"value": v, "label": k, "scale": "synthetic"} for k, v in metrics.items()}}))


def test_the_scorecard_names_every_claim_and_what_decides_it(tmp_path):
    for seed in range(4):
        _record(tmp_path, "row5", seed, {"geometric_distortion_mean": 0.20 + 0.01 * seed})
        _record(tmp_path, "row6", seed, {"geometric_distortion_mean": 0.10 + 0.01 * seed})
        _record(tmp_path, "loo-mlp", seed, {"geometric_distortion_mean": 0.15 + 0.01 * seed})
    _record(tmp_path, "row1", 0, {"geometric_distortion_mean": 0.3}, num_samples=10)  # refused
    records = study.collect(tmp_path)
    results = study.scorecard(records)
    table = evidence.scorecard_table(results)
    assert all(f"| {c.key}" in table for c in study.CLAIMS)
    c3 = next(line for line in table.splitlines() if line.startswith("| C3 "))
    assert "**supported**" in c3 and "mean 1 − IoU" in c3 and "| 4 (" in c3
    loo = evidence.leave_one_out(results)
    # both one-change comparisons are supported; the loss (0.10) costs more than the MLP (0.05)
    assert loo.index("multi-scale loss") < loo.index("GeGLU") and "**multi-scale loss**: 0.100" in loo
    refused = evidence.records_table(records)
    assert "num_samples = 10" in refused and "1 commits" in refused
    assert "Test CPU" in evidence.scale_line(records) and "1,000 samples" in evidence.scale_line(records)


def test_a_learning_curve_averages_the_same_seeds_at_every_length(tmp_path):
    for seed in study.CURVE_SEEDS:
        for steps, value in ((1000, 0.3), (2000, 0.25), (4000, 0.2), (8000, 0.18)):
            _record(tmp_path, "row6", seed, {"geometric_distortion_mean": value + 0.01 * seed}, steps=steps,)
    _record(tmp_path, "row6", 0, {"geometric_distortion_mean": 0.9})  # not a curve seed: left out of the curve
    points = evidence.curve(study.collect(tmp_path), "row6")
    assert [k for k, _ in points] == list(study.CURVE_STEPS)
    assert all(iv.n == len(study.CURVE_SEEDS) for _, iv in points)
    assert points[2][1].mean < 0.3


def test_the_recheck_sets_the_change_beside_the_seed_spread(tmp_path):
    for seed, v in enumerate((0.10, 0.12, 0.14)):
        _record(tmp_path, "row6", seed, {"geometric_distortion_mean": v})
    side = {"train_commit": "a" * 40, "cpu": "Test CPU", "metrics": {"geometric_distortion_mean": 0.10}}
    path = tmp_path / "recheck.json"
    path.write_text(json.dumps({"config": "row6", "seed": 0, "before": side,
                                "after": {**side, "train_commit": "b" * 40,
                                          "metrics": {"geometric_distortion_mean": 0.11}}}))
    text = evidence.recheck(study.collect(tmp_path), path)
    assert "not bit-equal" in text and "| mean 1 − IoU | 0.1 | 0.11 | +0.01 | 0.02 |" in text
    path.write_text(json.dumps({"config": "row6", "seed": 0, "before": side, "after": side}))
    assert "bit-equal: the code computes the same" in evidence.recheck(study.collect(tmp_path), path)
    assert evidence.recheck({}, tmp_path / "none.json") == "No recheck is recorded."


def test_the_power_table_computes_spread_and_seeds_needed_and_dashes_what_has_none(tmp_path):
    # C3 (row5 → row6): paired differences 0.10, 0.08, 0.12 → mean 0.10, s.d. 0.02
    for seed, (base, treat) in enumerate(((0.30, 0.20), (0.30, 0.22), (0.32, 0.20))):
        _record(tmp_path, "row5", seed, {"geometric_distortion_mean": base})
        _record(tmp_path, "row6", seed, {"geometric_distortion_mean": treat})
    records = study.collect(tmp_path)
    results = study.scorecard(records)
    lines = {line.split(" | ")[0].strip("| "): line for line in evidence.power_table(results, records).splitlines()}
    c3 = lines["C3"].split(" | ")
    assert c3[2:5] == ["0.1", "0.02", "3"] and c3[5].endswith(f"(α/{study.family_size(results[0].claim)}) |")
    needed = next(r for r in results if r.claim.key == "C3").seeds_needed
    assert c3[5].startswith(f"{needed:.0f} ") and 3 <= needed < 20
    # a claim with no paired seed shows dashes, not nan
    c1 = lines["C1"].split(" | ")
    assert c1[2:5] == ["—", "—", "0"] and "nan" not in "".join(lines.values())


def test_a_verdict_on_fewer_seeds_than_declared_says_it_is_interim(tmp_path):
    declared = len(study.CONFIGS["row5"].seeds)  # C3: row5 → row6, both planned with the same seeds
    assert study.declared_seeds(next(c for c in study.CLAIMS if c.key == "C3")) == declared >= 8
    for seed in range(3):
        _record(tmp_path, "row5", seed, {"geometric_distortion_mean": 0.30 + 0.01 * seed})
        _record(tmp_path, "row6", seed, {"geometric_distortion_mean": 0.20 + 0.012 * seed})
    records = study.collect(tmp_path)
    c3 = next(r for r in study.scorecard(records) if r.claim.key == "C3")
    assert c3.interim and c3.declared == declared
    line = next(x for x in evidence.scorecard_table([c3]).splitlines() if x.startswith("| C3 "))
    assert f"*interim: 3 of {declared} declared seeds*" in line
    assert f"*Interim: 3 of {declared} declared seeds.*" in evidence.claim_block(c3.claim, records, c3)
    # every declared seed recorded: the verdict is the declared one, no mark
    for seed in range(3, declared):
        _record(tmp_path, "row5", seed, {"geometric_distortion_mean": 0.30})
        _record(tmp_path, "row6", seed, {"geometric_distortion_mean": 0.21})
    records = study.collect(tmp_path)
    c3 = next(r for r in study.scorecard(records) if r.claim.key == "C3")
    assert not c3.interim and "interim" not in evidence.scorecard_table([c3]).split("\n\n")[0]
    assert "nterim" not in evidence.claim_block(c3.claim, records, c3)
