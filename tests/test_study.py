"""The claims study's statistics and verdicts, on synthetic records (dimr.study)."""
import json
import math

import pytest

from dimr import study
from dimr.plan import build_plan

PLAN = build_plan()


def test_t_interval_matches_the_textbook():
    iv = study.t_interval([1.0, 2.0, 3.0])  # mean 2, s = 1, t(0.975, 2) = 4.3027
    assert iv.n == 3 and iv.mean == pytest.approx(2.0)
    assert iv.hi - iv.mean == pytest.approx(4.302653 / math.sqrt(3), rel=1e-5)
    assert iv.mean - iv.lo == pytest.approx(iv.hi - iv.mean)
    wide = study.t_interval([1.0, 2.0, 3.0], level=0.99)
    assert wide.lo < iv.lo and wide.hi > iv.hi
    one = study.t_interval([5.0])
    assert one.mean == 5.0 and math.isnan(one.lo) and math.isnan(one.hi)
    assert study.t_interval([]).n == 0


@pytest.mark.parametrize("treatment, higher, word", [
    ({0: 0.60, 1: 0.71, 2: 0.52}, True, "supported"),  # every seed better by 0.10 ± 0.01
    ({0: 0.40, 1: 0.49, 2: 0.30}, True, "contradicted"),
    ({0: 0.55, 1: 0.56, 2: 0.47}, True, "inconclusive"),  # +0.05, −0.05, +0.05
    ({0: 0.40, 1: 0.49, 2: 0.30}, False, "supported"),  # lower is better: the same numbers now support
])
def test_paired_verdicts_in_the_papers_direction(treatment, higher, word):
    baseline = {0: 0.50, 1: 0.61, 2: 0.42}
    diff, verdict = study.paired_verdict(baseline, treatment, higher)
    assert verdict == word and diff.n == 3


def test_pairing_uses_only_shared_seeds_and_needs_two():
    diff, word = study.paired_verdict({0: 1.0, 1: 2.0}, {1: 3.0, 2: 9.0}, True)
    assert word == "not enough seeds" and diff.n == 1 and diff.mean == pytest.approx(1.0)
    # paired, not pooled: a large spread between seeds does not hide a consistent difference
    _, word = study.paired_verdict({0: 0.1, 1: 0.5, 2: 0.9}, {0: 0.12, 1: 0.52, 2: 0.93}, True)
    assert word == "supported"


def _record(root, slug, seed, metrics, profile="small"):
    exp = study.experiment_names(slug, seed)[1]
    folder = root / exp / profile
    folder.mkdir(parents=True)
    rec = {"status": "complete", "experiment": exp, "run": profile, "profile": profile,
           "metrics": {k: {"value": v, "label": k, "scale": "synthetic"} for k, v in metrics.items()}}
    (folder / "run.json").write_text(json.dumps(rec))


def test_judge_reads_records_and_reports_progress(tmp_path):
    for seed, (a, b) in enumerate([(0.30, 0.20), (0.35, 0.22), (0.28, 0.19)]):
        _record(tmp_path, "row5", seed, {"geometric_distortion_rate_coarse": a, "accuracy_shapes_classifier": 0.5,
                                         "fid_shapes_classifier": 10.0 + seed})
        _record(tmp_path, "row6", seed, {"geometric_distortion_rate_coarse": b, "accuracy_shapes_classifier": 0.5,
                                         "fid_shapes_classifier": 12.0 + seed})
    _record(tmp_path, "row6", 0, {"accuracy_shapes_classifier": 0.9}, profile="smoke")  # other profiles are ignored
    records = study.collect(tmp_path)
    assert set(records) == {(c, s) for c in ("row5", "row6") for s in study.SEEDS}
    claim = next(c for c in study.CLAIMS if c.key == "C3")
    verdicts = {v.metric: v for v in study.judge(claim, records)}
    assert verdicts["distortion_rate"].verdict == "supported"  # lower in every seed
    assert verdicts["fid"].verdict == "contradicted"  # higher FID in every seed, by 2
    assert verdicts["fid"].difference.mean == pytest.approx(-2.0)
    assert verdicts["accuracy"].verdict == "inconclusive"  # identical: the interval is [0, 0]
    assert verdicts["distortion_mean"].verdict == "not enough seeds"  # not recorded at all
    done, left = study.progress(records)
    assert len(done) == 6 and len(done) + len(left) == len(study.CONFIGS) * len(study.SEEDS)


def test_every_configuration_and_seed_is_planned_at_the_small_profile():
    for slug, conf in study.CONFIGS.items():
        for seed in study.SEEDS:
            train_exp, eval_exp = study.experiment_names(slug, seed)
            params = PLAN[train_exp].parameters["small"]
            assert params["preset"] == conf.preset and params["seed"] == seed and params["dataset"] == conf.dataset
            assert params["steps"] == study.STUDY_STEPS and params["batch_size"] is None  # the recipe's batch
            assert params["amp"] == study.STUDY_AMP  # pinned: the recipe does not depend on the machine
            ev = PLAN[eval_exp].parameters["small"]
            assert ev["seed"] == seed and ev["num_samples"] >= 1000
            assert ev["checkpoint"].startswith(params["checkpoint_dir"])
    for claim in study.CLAIMS:
        assert claim.baseline in study.CONFIGS and claim.treatment in study.CONFIGS
        assert set(claim.metrics) <= set(study.METRICS)


def test_table2_reads_the_study_as_mean_and_interval(tmp_path):
    from dimr import tables

    for seed, acc in enumerate([0.50, 0.60, 0.70]):
        _record(tmp_path, "row6", seed, {"accuracy_shapes_classifier": acc, "geometric_distortion_rate_coarse": 0.2})
    _record(tmp_path, "row5", 0, {"accuracy_shapes_classifier": 0.4})
    cells = {r["#"]: r["Claims study (this repo)"] for r in tables.table2(runs_root=tmp_path).rows}
    half = 4.302653 * 0.1 / math.sqrt(3)  # s = 0.1 over three seeds
    assert f"classifier accuracy **0.6** ± {half:.2g}" in cells["6"] and "(n = 3)" in cells["6"]
    assert "1 − IoU > 0.15 **0.2** ± 0" in cells["6"] and "FID" not in cells["6"]  # FID not recorded: not shown
    assert "classifier accuracy **0.4** (n = 1)" in cells["5"]  # one seed: no interval to give
    assert cells["1"].startswith("not run yet (0 of 3 seeds)")


def _diverged_training(root, slug, seed, step, profile="small"):
    exp = study.experiment_names(slug, seed)[0]
    folder = root / exp / profile
    folder.mkdir(parents=True)
    rec = {"status": "complete", "experiment": exp, "run": profile, "profile": profile,
           "metrics": {"training_diverged_at_step": {"value": step, "label": "x", "scale": "synthetic"},
                       "steps": {"value": step, "label": "x", "scale": "synthetic"}}}
    (folder / "run.json").write_text(json.dumps(rec))


def test_a_diverged_seed_is_an_outcome_that_leaves_the_means(tmp_path):
    from dimr import tables

    for seed, (a, b) in enumerate([(0.30, 0.20), (0.35, 0.22)]):
        _record(tmp_path, "row5", seed, {"geometric_distortion_rate_coarse": a, "accuracy_shapes_classifier": 0.5})
        _record(tmp_path, "row6", seed, {"geometric_distortion_rate_coarse": b, "accuracy_shapes_classifier": 0.6})
    _record(tmp_path, "row5", 2, {"geometric_distortion_rate_coarse": 0.31, "accuracy_shapes_classifier": 0.5})
    _diverged_training(tmp_path, "row6", 2, 3420)
    _diverged_training(tmp_path, "row4", 0, 17)
    records = study.collect(tmp_path)
    assert records[("row6", 2)]["diverged_at_step"] == 3420 and records[("row6", 2)]["values"] == {}
    assert study.diverged_seeds(records, "row6") == {2: 3420} and study.diverged_seeds(records, "row5") == {}
    # what the chapters read evaluations from: every seed but the diverged ones
    assert set(study.evaluated(records)) == {("row5", 0), ("row5", 1), ("row5", 2), ("row6", 0), ("row6", 1)}
    assert study.metric_values(records, "row6", "accuracy") == {0: 0.6, 1: 0.6}
    done, _ = study.progress(records)
    assert ("row6", 2) in done and ("row4", 0) in done
    claim = next(c for c in study.CLAIMS if c.key == "C3")
    rate = next(v for v in study.judge(claim, records) if v.metric == "distortion_rate")
    assert rate.difference.n == 2  # the paired difference uses the two seeds both have
    cells = {r["#"]: r["Claims study (this repo)"] for r in tables.table2(runs_root=tmp_path).rows}
    assert "(n = 2; seed 2 diverged at step 3,420)" in cells["6"]
    assert cells["4"].startswith("no seed evaluated (0 of 3 seeds; seed 0 diverged at step 17)")
    # an evaluation on record wins over a training record (a run trained again after a fix)
    _record(tmp_path, "row4", 0, {"accuracy_shapes_classifier": 0.4})
    assert "diverged_at_step" not in study.collect(tmp_path)[("row4", 0)]
