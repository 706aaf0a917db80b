"""Stage 3: score the active model on the test documents and assemble both evaluations.

:func:`compute` is the scoring and the assembling, with no file system access: test documents,
the trained model (or its evaluation), the active model (:class:`ActiveModel`, or none) and the
task in; the records the stage writes out (:class:`Evaluated`). :func:`run`, what DVC runs,
reads the prepared documents and the train stage's evaluation, calls it, and writes them.

The trained model's evaluation comes from the train stage (scored there while in memory). The
active model is scored from its serving form (:mod:`reconciler.stages.predictor`), so this stage
imports no scikit-learn at all unless the active model was trained before serving forms were.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reconciler.adapters.files import atomic_write_json, atomic_write_text, read_json
from reconciler.core.documents import Document
from reconciler.core.metrics import Evaluation
from reconciler.core.spec import TaskConfig
from reconciler.failpoints import failpoint
from reconciler.stages.params import StageParams, read_jsonl, read_params

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

    from reconciler.stages.predictor import LoadedModel


@dataclass(frozen=True)
class ActiveModel:
    """The active model version to score against the trained one.

    ``load`` gives the model; it is called only when the version was trained for the same task
    (mode and labels), so a version that is not scored is never read (nor scikit-learn imported).
    The stage passes one that loads the model file; :meth:`from_bytes` one that loads bytes.
    """

    version: str
    mode: str | None
    labels: tuple[str, ...]
    load: Callable[[], LoadedModel]

    @classmethod
    def from_bytes(cls, version: str, mode: str | None, labels: Sequence[str], data: bytes,
                   sha256: str | None = None) -> ActiveModel:
        """A version whose model file's bytes are held in memory; loaded with every check of
        :func:`~reconciler.stages.predictor.load_bytes`. It pickles (a worker's input)."""
        return cls(version, mode, tuple(labels), _BytesLoader(data, sha256, f"model {version}"))


@dataclass(frozen=True)
class _BytesLoader:
    data: bytes = field(repr=False)
    sha256: str | None
    display: str

    def __call__(self) -> LoadedModel:
        from reconciler.stages.predictor import load_bytes

        return load_bytes(self.data, self.sha256, display=self.display)


@dataclass(frozen=True)
class Evaluated:
    """What :func:`compute` gives: both evaluations and the three records the stage writes."""

    trained: Evaluation
    active: Evaluation | None
    active_note: str | None
    evaluation: dict[str, Any]  # evaluation.json
    metrics: dict[str, dict[str, float]]  # metrics.json (``dvc metrics show``)
    per_label: str  # per_label.csv (``dvc plots``)


def compute(documents: Sequence[Document], trained: Pipeline | Evaluation,
            active: ActiveModel | None, task: TaskConfig) -> Evaluated:
    """Score ``trained`` (unless given as its evaluation already) and ``active`` on the test
    ``documents`` over ``task``'s labels; touches no file (a loader of ``active`` may)."""
    if not isinstance(trained, Evaluation):
        from reconciler.stages import recipes

        trained = recipes.score(trained, documents, task, task.labels)
    active_eval, note = _score_active(active, documents, task) if active else (None, None)
    metrics = {"trained": _metrics(trained)}
    if active_eval:
        metrics["active"] = _metrics(active_eval)
    return Evaluated(
        trained=trained, active=active_eval, active_note=note,
        evaluation={
            "numberOfTestDocuments": len(documents),
            "trained": trained.to_record(),
            "active": active_eval.to_record() if active_eval else None,
            "activeVersion": active.version if active else None,
            "activeNote": note,
        },
        metrics=metrics, per_label=_per_label_csv(trained, active_eval))


def run(params_file: str) -> None:
    params = read_params(params_file)
    ws = params.workspace
    documents = read_jsonl(params.path(ws.test_data))
    trained_eval = Evaluation.from_record(
        read_json(params.path(ws.trained_evaluation)))
    evaluated = compute(documents, trained_eval, _active(params), params.spec.task)
    failpoint("stage:evaluate:scored")
    atomic_write_json(params.path(ws.evaluation), evaluated.evaluation)
    atomic_write_json(params.path(ws.metrics), evaluated.metrics)
    atomic_write_text(params.path(ws.per_label), evaluated.per_label)


def _active(params: StageParams) -> ActiveModel | None:
    """The params' active model, loaded from its file (only if it is scored)."""
    if not params.active:
        return None
    active = params.active

    def load() -> LoadedModel:
        # Imported here: only needed when there is an active model to load.
        from reconciler.stages.predictor import load

        return load(params.path(active["file"]), active.get("sha256"), display=active["file"])

    return ActiveModel(version=active["version"], mode=active.get("mode"),
                       labels=tuple(active.get("labels", [])), load=load)


def _metrics(evaluation: Evaluation) -> dict[str, float]:
    """Comprehend's four figures for ``dvc metrics show``, and the calibration figures next to
    them when the model gives probabilities (a model saved before it did has none)."""
    figures: dict[str, float] = evaluation.comprehend_metrics()
    if evaluation.calibration:
        figures["BrierScore"] = evaluation.calibration.brier_score
        figures["ExpectedCalibrationError"] = evaluation.calibration.expected_calibration_error
    return figures


def _score_active(active: ActiveModel, documents: Sequence[Document],
                  task: TaskConfig) -> tuple[Evaluation | None, str | None]:
    if active.mode != task.mode.value or list(active.labels) != list(task.labels):
        return None, (f"active model {active.version} was trained for another task "
                      "(mode or labels differ); it is not scored")
    return active.load().score(documents, task, active.labels), None


def _per_label_csv(trained: Evaluation, active: Evaluation | None) -> str:
    """``label,trained,active`` rows (wide, so ``dvc plots`` can draw either column)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["label", "trained", "active"])
    active_f1 = {item.label: item.f1 for item in active.per_label} if active else {}
    for item in trained.per_label:
        other = active_f1.get(item.label)
        writer.writerow([item.label, f"{item.f1:.6f}", "" if other is None else f"{other:.6f}"])
    return buffer.getvalue()
