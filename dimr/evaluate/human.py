"""The paper's human study of distortion (§5.3) as a tool: a notebook widget and the averaging rule.

Protocol (§5.3).  The images flagged by the classifier (:mod:`dimr.evaluate.rejection`) from all
compared models are *merged* and shown, each with its class label, to human evaluators, who decide
whether each image is distorted.  (In the paper each image was judged by five evaluators.)  Then:

    per evaluator e and model m:  r(e, m) = #{images of m that e judged distorted} / #{images of m that e judged}
    final rate of model m:        r(m)    = mean of r(e, m) over the evaluators e who judged any image of m

(:func:`distortion_rates`, a pure function).  Note this is not the pooled fraction of all
judgements: an evaluator who judged few images weighs as much as one who judged many.

:func:`study_items` merges and shuffles the flagged images of several models (the model is hidden
from the evaluator); :func:`annotation_widget` shows them one at a time in Jupyter (ipywidgets) with
"distorted" / "not distorted" buttons and saves every answer at once to a JSON file
(:func:`record_judgement`, atomic writes), so an interrupted session loses nothing.
"""
from __future__ import annotations

import io
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..files import atomic_write

__all__ = ["Judgement", "StudyItem", "distortion_rates", "study_items", "load_judgements", "save_judgements",
           "record_judgement", "annotation_widget"]

FORMAT = "dimr-human-study"


@dataclass(frozen=True)
class Judgement:
    """One evaluator's verdict on one image of one model."""

    evaluator: str
    model: str
    image_id: str
    distorted: bool


@dataclass(frozen=True)
class StudyItem:
    """An image shown to evaluators: ``image`` uint8 ``[H, W, 3]``, its requested class, and (hidden
    from the evaluator) the model and sample index it came from."""

    image_id: str
    model: str
    index: int
    label: int
    class_name: str
    image: np.ndarray


def distortion_rates(judgements) -> dict:
    """The §5.3 averaging rule.

    ``judgements``: iterable of :class:`Judgement` (or dicts with the same keys).  If an evaluator
    judged the same image more than once, the last judgement counts.  Returns
    ``{"per_evaluator": {evaluator: {model: r(e, m)}}, "final": {model: r(m)},
    "evaluators": {model: number of evaluators averaged}}``."""
    last: dict[tuple[str, str, str], bool] = {}
    for j in judgements:
        j = j if isinstance(j, Judgement) else Judgement(**j)
        last[(j.evaluator, j.model, j.image_id)] = bool(j.distorted)
    counts: dict[str, dict[str, list[int]]] = {}
    for (evaluator, model, _), distorted in last.items():
        c = counts.setdefault(evaluator, {}).setdefault(model, [0, 0])
        c[0] += int(distorted)
        c[1] += 1
    per_evaluator = {e: {m: d / n for m, (d, n) in models.items()} for e, models in counts.items()}
    models = sorted({m for rates in per_evaluator.values() for m in rates})
    final, n_eval = {}, {}
    for m in models:
        rates = [rates[m] for rates in per_evaluator.values() if m in rates]
        final[m] = float(np.mean(rates))
        n_eval[m] = len(rates)
    return {"per_evaluator": per_evaluator, "final": final, "evaluators": n_eval}


def study_items(flagged_by_model: dict, class_names, seed: int = 0) -> list[StudyItem]:
    """Merge the flagged images of several models into one shuffled list (the model is not shown).

    ``flagged_by_model``: ``{model: (images uint8 [n, H, W, 3], labels [n], indices [n])}`` — e.g. the
    flagged subset of each model's samples with their sample indices."""
    items = []
    for model, (images, labels, indices) in flagged_by_model.items():
        for img, y, i in zip(np.asarray(images), np.asarray(labels), np.asarray(indices)):
            items.append(StudyItem(f"{model}/{int(i)}", model, int(i), int(y), str(class_names[int(y)]), img))
    order = np.random.default_rng(seed).permutation(len(items))
    return [items[k] for k in order]


def load_judgements(path: str | os.PathLike) -> list[Judgement]:
    """Read a study file (``[]`` if it does not exist yet)."""
    path = Path(path)
    if not path.exists():
        return []
    obj = json.loads(path.read_text())
    if obj.get("format") != FORMAT:
        raise ValueError(f"{path} is not a dimr human-study file")
    return [Judgement(**j) for j in obj["judgements"]]


def save_judgements(path: str | os.PathLike, judgements) -> Path:
    """Write all judgements atomically (:func:`dimr.files.atomic_write`)."""
    obj = {"format": FORMAT, "judgements": [asdict(j if isinstance(j, Judgement) else Judgement(**j)) for j in judgements]}
    return atomic_write(path, lambda f: json.dump(obj, f, indent=1))


def record_judgement(path: str | os.PathLike, judgement: Judgement) -> list[Judgement]:
    """Add (or replace: same evaluator and image) one judgement in the file; returns all judgements."""
    kept = [j for j in load_judgements(path)
            if (j.evaluator, j.image_id) != (judgement.evaluator, judgement.image_id)]
    kept.append(judgement)
    save_judgements(path, kept)
    return kept


def _png(image: np.ndarray, scale: int) -> bytes:
    from PIL import Image

    img = Image.fromarray(np.asarray(image, dtype=np.uint8))
    img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def annotation_widget(items: list[StudyItem], evaluator: str, path: str | os.PathLike, scale: int = 8):
    """An ipywidgets panel for one evaluator: image, its class, "distorted" / "not distorted" / "back".

    Starts at the first image this evaluator has not judged yet; every click is saved to ``path``
    (:func:`record_judgement`).  Returns the ``ipywidgets.VBox`` (display it in a notebook)."""
    import ipywidgets as widgets

    if not evaluator:
        raise ValueError("each evaluator needs a name (their rates are averaged separately)")
    done = {j.image_id for j in load_judgements(path) if j.evaluator == evaluator}
    state = {"i": next((k for k, it in enumerate(items) if it.image_id not in done), len(items))}
    image = widgets.Image(format="png")
    caption = widgets.HTML()
    progress = widgets.HTML()
    yes = widgets.Button(description="distorted", button_style="danger")
    no = widgets.Button(description="not distorted", button_style="success")
    back = widgets.Button(description="back")

    def show():
        judged = {j.image_id for j in load_judgements(path) if j.evaluator == evaluator}
        progress.value = f"{evaluator}: {len(judged)}/{len(items)} judged"
        if state["i"] >= len(items):
            caption.value = "<b>All images judged — thank you.</b>"
            image.value = b""
            yes.disabled = no.disabled = True
            return
        it = items[state["i"]]
        yes.disabled = no.disabled = False
        caption.value = f"Image {state['i'] + 1} of {len(items)} — requested class: <b>{it.class_name}</b>"
        image.value = _png(it.image, scale)

    def answer(distorted: bool):
        it = items[state["i"]]
        record_judgement(path, Judgement(evaluator, it.model, it.image_id, distorted))
        state["i"] += 1
        show()

    yes.on_click(lambda _: answer(True))
    no.on_click(lambda _: answer(False))

    def go_back(_):
        state["i"] = max(0, state["i"] - 1)
        show()

    back.on_click(go_back)
    show()
    return widgets.VBox([progress, caption, image, widgets.HBox([yes, no, back])])
