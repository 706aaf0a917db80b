"""Use a flywheel's active model (or any version): ``flywheel classify``."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from reconciler.adapters.lake import Lake
from reconciler.core.kinds import Mode
from reconciler.core.state import ModelVersionRecord
from reconciler.errors import NotFoundError, StateError

if TYPE_CHECKING:
    from reconciler.stages.predictor import LoadedModel

#: ``probability``: calibrated scores; ``margin``: a model from before calibration (v1).
ScoreKind = Literal["probability", "margin"]


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
    score_kind: ScoreKind
    raw_scores: dict[str, float] | None = None
    raw_score_kind: str | None = None


class ModelCache:
    """Loaded models keyed by their file's recorded sha256 (a long-lived handle, such as a
    server's, loads and checks each model once); at most ``size`` are kept, least recently used
    dropped. Safe to share between threads."""

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._models: OrderedDict[str, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()

    def load(self, root: Path, file: str, sha256: str) -> LoadedModel:
        with self._lock:
            if sha256 in self._models:
                self._models.move_to_end(sha256)
                return self._models[sha256]
        from reconciler.stages import predictor

        # checks the sha256, the archive's bounds and its types before reading anything
        model = predictor.load(root / file, sha256, display=file)
        with self._lock:
            self._models[sha256] = model
            while len(self._models) > self.size:
                self._models.popitem(last=False)
        return model


def load_version(root: Path, name: str, version: str | None, *, lake: Lake | None = None,
                 models: ModelCache | None = None, hint: str = ""
                 ) -> tuple[str, ModelVersionRecord, LoadedModel]:
    """``version`` (default: the active one) of ``name``, its record and its loaded model; a
    flywheel with nothing active says why (and ``hint``), an unknown version which exist."""
    observed = (lake or Lake(root)).observe(name)
    chosen = version or observed.active_model
    if chosen is None:
        from reconciler.runtime.queries import view  # only on this path: it reads the spec

        reason = view(root, name).inactive_reason
        raise StateError(f"flywheel {name!r} has no active model: {reason}{hint}")
    record = observed.versions.get(chosen)
    if record is None:
        known = ", ".join(sorted(observed.versions)) or "none yet"
        raise NotFoundError(f"flywheel {name!r} has no model version {chosen} (known: {known})")
    return chosen, record, (models or ModelCache(size=1)).load(root, record.file, record.sha256)


def classify(root: Path, name: str, texts: list[str], version: str | None = None, *,
             raw: bool = False, lake: Lake | None = None,
             models: ModelCache | None = None) -> tuple[str, list[Classification]]:
    """Classify ``texts`` with ``version`` (default: the active model); returns the version used.

    ``raw``: also give each label's raw score (``Classification.raw_scores``).
    """
    chosen, record, model = load_version(root, name, version, lake=lake, models=models)
    mode = Mode(record.mode)
    predicted, scores, kind_name = model.predict_with_scores(texts, mode, record.labels)
    kind: ScoreKind = "probability" if kind_name == "probability" else "margin"
    raws, raw_kind = (model.raw_scores(texts, mode, record.labels) if raw
                      else ([None] * len(texts), None))
    results = []
    for text, labels, score, raw_score in zip(texts, predicted, scores, raws, strict=True):
        ordered = dict(sorted(score.items(), key=lambda kv: -kv[1]))  # stable: ties keep order
        results.append(Classification(
            text, tuple(sorted(labels)), ordered, kind,
            None if raw_score is None else {label: raw_score[label] for label in ordered},
            raw_kind))
    return chosen, results
