"""A model ready to predict: its serving form when the file has one, else its pipeline.

What every user of a trained model goes through (``flywheel classify`` and ``suggest``, the API's
ClassifyDocument, the evaluate stage scoring the active model): the serving form
(:mod:`reconciler.stages.serving`) predicts with numpy alone, so none of them imports
scikit-learn (seconds) for a model trained since it existed; an older file is loaded and used
through scikit-learn as before. Both are loaded only after the model file's checks
(:mod:`reconciler.stages.modelfile`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.core.kinds import Mode
from reconciler.stages import modelfile
from reconciler.stages.serving import ServingModel

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

    from reconciler.core.documents import Document
    from reconciler.core.metrics import Evaluation
    from reconciler.core.spec import TaskConfig


@dataclass(frozen=True)
class LoadedModel:
    """A model's serving form, or (a file without one) its pipeline."""

    serving: ServingModel | None = None
    pipeline: Pipeline | None = None

    def predict_with_scores(self, texts: Sequence[str], mode: Mode, labels: Sequence[str]
                            ) -> tuple[list[frozenset[str]], list[dict[str, float]], str]:
        """Labels, per-label scores and what the scores are (see
        :func:`reconciler.stages.recipes.predict_with_scores`); ``labels`` is the label order
        the model was trained with."""
        if self.serving is not None:
            with _as_state_error():
                return self.serving.predict_with_scores(list(texts), labels)
        from reconciler.stages import recipes  # scikit-learn: seconds to import

        assert self.pipeline is not None
        return recipes.predict_with_scores(self.pipeline, texts, mode, labels)

    def raw_scores(self, texts: Sequence[str], mode: Mode, labels: Sequence[str]
                   ) -> tuple[list[dict[str, float]], str]:
        """The classifier's raw per-label scores and their kind (margin, logit, ...)."""
        if self.serving is not None:
            with _as_state_error():
                return self.serving.raw_scores(list(texts), labels)
        from reconciler.stages import recipes

        assert self.pipeline is not None
        return recipes.raw_scores(self.pipeline, texts, mode, labels)

    def score(self, documents: Sequence[Document], task: TaskConfig,
              labels: Sequence[str]) -> Evaluation:
        """The model scored on test ``documents`` over ``task``'s labels (see
        :func:`reconciler.stages.recipes.score`)."""
        if self.serving is None:
            from reconciler.stages import recipes

            assert self.pipeline is not None
            return recipes.score(self.pipeline, documents, task, list(labels))
        from reconciler.core.metrics import evaluate

        with _as_state_error():
            predicted, probabilities, _ = self.serving.predict_with_scores(
                [d.text for d in documents], labels)
        return evaluate(task.mode.value, task.labels, [d.labels for d in documents], predicted,
                        probabilities)


@contextmanager
def _as_state_error() -> Iterator[None]:
    """A serving form that disagrees with its version record (label count): one line."""
    from reconciler.errors import StateError
    from reconciler.stages.serving import ServingFormError

    try:
        yield
    except ServingFormError as exc:
        raise StateError(f"model file {exc}") from exc


def load(source: Path | bytes, sha256: str | None, *, display: str = "") -> LoadedModel:
    """The model in a model file (or its bytes), checked once (:func:`modelfile.load_either`)."""
    model = modelfile.load_either(source, sha256, display=display)
    if isinstance(model, ServingModel):
        return LoadedModel(serving=model)
    return LoadedModel(pipeline=model)


def load_bytes(data: bytes, sha256: str | None, *, display: str = "model") -> LoadedModel:
    """:func:`load` of a model file's bytes held in memory."""
    return load(data, sha256, display=display)
