"""Use a flywheel's active model (or any version): ``flywheel classify``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reconciler.adapters.lake import Lake
from reconciler.core.spec import Mode
from reconciler.errors import StateError


@dataclass(frozen=True)
class Classification:
    """One document's labels and per-label scores, most probable first.

    ``scores`` are calibrated probabilities (``score_kind`` "probability"): 0..1, summing to 1
    for MULTI_CLASS, each label independent for MULTI_LABEL. Only a linear-SVM model trained
    before scores were calibrated (pipeline version 1) still gives raw margins ("margin").
    ``raw_scores`` (on request) are the classifier's own scores before calibration, of
    ``raw_score_kind`` "margin" (linear SVM), "logit" (logistic regression) or "log-likelihood"
    (complement naive Bayes), in the same label order.
    """

    text: str
    labels: tuple[str, ...]
    scores: dict[str, float]
    score_kind: str  # "probability" or "margin"
    raw_scores: dict[str, float] | None = None
    raw_score_kind: str | None = None


def classify(root: Path, name: str, texts: list[str], version: str | None = None, *,
             raw: bool = False) -> tuple[str, list[Classification]]:
    """Classify ``texts`` with ``version`` (default: the active model); returns the version used.

    ``raw``: also give each label's raw score (``Classification.raw_scores``).
    """
    from reconciler.stages.modelfile import load_model

    observed = Lake(root).observe(name)
    chosen = version or observed.active_model
    if chosen is None:
        from reconciler.runtime.queries import view  # only on this path: it reads the spec

        reason = view(root, name).inactive_reason
        raise StateError(f"flywheel {name!r} has no active model: {reason}")
    record = observed.versions.get(chosen)
    if record is None:
        raise StateError(f"flywheel {name!r} has no model version {chosen}")
    model = load_model(root / record.file, record.sha256, display=record.file)
    # Imported only now: scikit-learn takes seconds to import, and a refused file needs none.
    from reconciler.stages import recipes

    mode = Mode(record.mode)
    predicted = recipes.predict(model, texts, mode, record.labels)
    scores, kind = recipes.scores(model, texts, mode, record.labels)
    raws, raw_kind = (recipes.raw_scores(model, texts, mode, record.labels) if raw
                      else ([None] * len(texts), None))
    results = []
    for text, labels, score, raw_score in zip(texts, predicted, scores, raws, strict=True):
        ordered = dict(sorted(score.items(), key=lambda kv: -kv[1]))  # stable: ties keep order
        results.append(Classification(
            text, tuple(sorted(labels)), ordered, kind,
            None if raw_score is None else {label: raw_score[label] for label in ordered},
            raw_kind))
    return chosen, results
