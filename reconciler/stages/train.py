"""Stage 2: fit the recipe on the training documents, save the model (skops), score it.

:func:`compute` is the fit, with no file system access: documents, task and recipe in; the fitted
model, its file's bytes and what ``train.json`` holds out (a worker without the repository can
run it). :func:`run`, what DVC runs, reads the prepared documents, calls it, and writes the
outputs.

The new model is scored on the test documents here, while it is in memory: reloading it in the
evaluate stage would cost a second scikit-learn start-up and a model load (seconds per
iteration, measured in ``benchmarks/iteration.py``). The evaluate stage scores the active model
with the same function, ``recipes.score``, on the same prepared test documents.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reconciler.adapters.files import atomic_write_json
from reconciler.core.documents import Document
from reconciler.core.spec import TaskConfig
from reconciler.failpoints import failpoint
from reconciler.stages import recipes
from reconciler.stages.modelfile import bytes_sha256, model_bytes, write_model_bytes
from reconciler.stages.params import read_jsonl, read_params

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline


@dataclass(frozen=True)
class Trained:
    """What :func:`compute` gives: the fitted model, its model file's bytes (byte-reproducible:
    the same model gives the same bytes), what ``train.json`` holds, and the fit's duration."""

    model: Pipeline
    model_bytes: bytes
    summary: dict[str, Any]
    fit_seconds: float

    @property
    def sha256(self) -> str:
        return str(self.summary["sha256"])


def compute(documents: Sequence[Document], task: TaskConfig,
            recipe: recipes.RecipeModel) -> Trained:
    """Fit ``recipe`` on ``documents`` for ``task``; touches no file."""
    started = time.perf_counter()
    pipeline = recipes.build_pipeline(recipe, task.mode)
    recipes.fit(pipeline, [d.text for d in documents], [d.labels for d in documents],
                task.mode, task.labels)
    seconds = time.perf_counter() - started
    data = model_bytes(pipeline)
    # Only what the inputs determine goes into the outputs (the same inputs give the same bytes,
    # so `dvc repro` of an unchanged pipeline leaves dvc.lock alone); the fit time is measured,
    # not determined: it goes to the stage's log (.flywheel/logs/<name>/<iteration>.log).
    summary = {
        "sha256": bytes_sha256(data),
        "numberOfTrainDocuments": len(documents),
        "labels": list(task.labels),
        "mode": task.mode.value,
    }
    return Trained(model=pipeline, model_bytes=data, summary=summary, fit_seconds=seconds)


def run(params_file: str) -> None:
    params = read_params(params_file)
    spec, ws = params.spec, params.workspace
    trained = compute(read_jsonl(params.path(ws.train_data)), spec.task, spec.recipe)
    failpoint("stage:train:fitted")
    write_model_bytes(trained.model_bytes, params.path(ws.model))
    failpoint("stage:train:saved")
    # The bytes are written: let them go before the test documents are read and scored (the
    # stage's peak memory stays the model plus the test data, as before).
    model, summary, seconds = trained.model, trained.summary, trained.fit_seconds
    del trained
    test = read_jsonl(params.path(ws.test_data))
    evaluation = recipes.score(model, test, spec.task, spec.task.labels)
    atomic_write_json(params.path(ws.trained_evaluation), evaluation.to_record())
    atomic_write_json(params.path(ws.train_summary), summary)
    print(f"train: fit_seconds={seconds:.3f}", flush=True)
