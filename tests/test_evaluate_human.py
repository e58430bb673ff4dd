"""The §5.3 human protocol: the averaging rule (hand-worked), the study file, the widget."""
import json

import numpy as np
import pytest

from dimr.evaluate.human import (Judgement, annotation_widget, distortion_rates, load_judgements, record_judgement,
                                 study_items)


def _j(e, m, i, d):
    return Judgement(e, m, f"{m}/{i}", d)


def test_averaging_rule_on_a_hand_worked_example():
    judgements = (
        # evaluator A: model X 1 of 4 distorted (0.25); model Y 2 of 2 (1.0)
        [_j("A", "X", i, i == 0) for i in range(4)] + [_j("A", "Y", i, True) for i in range(2)]
        # evaluator B: model X 1 of 1 (1.0); model Y 0 of 4 (0.0)
        + [_j("B", "X", 9, True)] + [_j("B", "Y", i, False) for i in range(4)]
        # evaluator C judged only model X: 0 of 2 (0.0)
        + [_j("C", "X", i, False) for i in range(2)]
    )
    r = distortion_rates(judgements)
    assert r["per_evaluator"] == {"A": {"X": 0.25, "Y": 1.0}, "B": {"X": 1.0, "Y": 0.0}, "C": {"X": 0.0}}
    # final = mean over the evaluators who judged the model: X (0.25 + 1 + 0)/3, Y (1 + 0)/2
    assert r["final"]["X"] == pytest.approx(1.25 / 3) and r["final"]["Y"] == pytest.approx(0.5)
    assert r["evaluators"] == {"X": 3, "Y": 2}
    # not the pooled fraction of judgements (X: 2 distorted of 7)
    assert r["final"]["X"] != pytest.approx(2 / 7)


def test_the_last_judgement_of_an_image_counts_and_dicts_are_accepted():
    r = distortion_rates([_j("A", "X", 0, True), {"evaluator": "A", "model": "X", "image_id": "X/0", "distorted": False}])
    assert r["final"] == {"X": 0.0}
    assert distortion_rates([]) == {"per_evaluator": {}, "final": {}, "evaluators": {}}


def test_study_file_round_trip(tmp_path):
    path = tmp_path / "study.json"
    assert load_judgements(path) == []
    record_judgement(path, _j("A", "X", 0, True))
    record_judgement(path, _j("B", "X", 0, False))
    record_judgement(path, _j("A", "X", 0, False))  # A changes their mind: replaced, not added
    got = load_judgements(path)
    assert len(got) == 2 and _j("A", "X", 0, False) in got
    assert json.loads(path.read_text())["format"] == "dimr-human-study"


def test_study_items_merge_and_shuffle_models():
    imgs = np.zeros((3, 4, 4, 3), np.uint8)
    items = study_items({"X": (imgs, [0, 1, 2], [5, 6, 7]), "Y": (imgs[:2], [2, 2], [0, 1])}, ["a", "b", "c"], seed=1)
    assert sorted(i.image_id for i in items) == ["X/5", "X/6", "X/7", "Y/0", "Y/1"]
    assert {i.class_name for i in items if i.model == "Y"} == {"c"}
    assert [i.image_id for i in items] != ["X/5", "X/6", "X/7", "Y/0", "Y/1"]  # merged, not model by model


def test_widget_records_each_click(tmp_path):
    pytest.importorskip("ipywidgets")
    imgs = np.full((3, 4, 4, 3), 200, np.uint8)
    items = study_items({"X": (imgs, [0, 1, 0], [0, 1, 2])}, ["circle", "square"], seed=0)
    path = tmp_path / "study.json"
    box = annotation_widget(items, "alice", path)
    yes, no, back = box.children[-1].children
    yes.click()
    no.click()
    got = load_judgements(path)
    assert [(j.image_id, j.distorted) for j in got] == [(items[0].image_id, True), (items[1].image_id, False)]
    back.click()
    yes.click()  # re-judging the second image replaces its verdict
    assert {j.image_id: j.distorted for j in load_judgements(path)}[items[1].image_id] is True
    # a new session resumes at the first image not yet judged
    box2 = annotation_widget(items, "alice", path)
    assert "Image 3 of 3" in box2.children[1].value
    with pytest.raises(ValueError):
        annotation_widget(items, "", path)
