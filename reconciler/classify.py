"""Use a flywheel's active model (or any version): ``flywheel classify``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reconciler.adapters.lake import Lake
from reconciler.core.spec import Mode
from reconciler.errors import StateError


@dataclass(frozen=True)
class Classification:
    text: str
    labels: tuple[str, ...]
    scores: dict[str, float]
    score_kind: str  # "probability" or "margin"


def classify(root: Path, name: str, texts: list[str],
             version: str | None = None) -> tuple[str, list[Classification]]:
    """Classify ``texts`` with ``version`` (default: the active model); returns the version used."""
    from reconciler.stages.modelfile import load_model

    observed = Lake(root).observe(name)
    chosen = version or observed.active_model
    if chosen is None:
        from reconciler.views import view  # only on this path: it reads the spec

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
    results = [
        Classification(text, tuple(sorted(labels)), dict(sorted(score.items(),
                                                                 key=lambda kv: -kv[1])), kind)
        for text, labels, score in zip(texts, predicted, scores, strict=True)
    ]
    return chosen, results
