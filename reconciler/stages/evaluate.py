"""Stage 3: score the active model on the test documents and assemble both evaluations.

The trained model's evaluation comes from the train stage (scored there while in memory). When
there is no active model to score, this stage imports no scikit-learn at all.
"""

from __future__ import annotations

import csv
import io

from reconciler.adapters.files import atomic_write_json, atomic_write_text, read_json
from reconciler.core.documents import Document
from reconciler.core.metrics import Evaluation
from reconciler.failpoints import failpoint
from reconciler.stages.params import StageParams, read_jsonl, read_params


def run(params_file: str) -> None:
    params = read_params(params_file)
    ws = params.workspace
    documents = read_jsonl(params.path(ws.test_data))
    trained_eval = Evaluation.from_record(
        read_json(params.path(ws.trained_evaluation)))
    active_eval, note = _score_active(params, documents) if params.active else (None, None)
    failpoint("stage:evaluate:scored")
    atomic_write_json(params.path(ws.evaluation), {
        "numberOfTestDocuments": len(documents),
        "trained": trained_eval.to_record(),
        "active": active_eval.to_record() if active_eval else None,
        "activeVersion": params.active["version"] if params.active else None,
        "activeNote": note,
    })
    metrics = {"trained": _metrics(trained_eval)}
    if active_eval:
        metrics["active"] = _metrics(active_eval)
    atomic_write_json(params.path(ws.metrics), metrics)
    atomic_write_text(params.path(ws.per_label), _per_label_csv(trained_eval, active_eval))


def _metrics(evaluation: Evaluation) -> dict[str, float]:
    """Comprehend's four figures for ``dvc metrics show``, and the calibration figures next to
    them when the model gives probabilities (a model saved before it did has none)."""
    figures: dict[str, float] = evaluation.comprehend_metrics()
    if evaluation.calibration:
        figures["BrierScore"] = evaluation.calibration.brier_score
        figures["ExpectedCalibrationError"] = evaluation.calibration.expected_calibration_error
    return figures


def _score_active(params: StageParams,
                  documents: list[Document]) -> tuple[Evaluation | None, str | None]:
    active = params.active or {}
    spec = params.spec
    if active.get("mode") != spec.task.mode.value or list(active.get("labels", [])) != list(
        spec.task.labels
    ):
        return None, (f"active model {active.get('version')} was trained for another task "
                      "(mode or labels differ); it is not scored")
    # Imported here: scikit-learn and skops take seconds to import, and are only needed
    # when there is an active model to load.
    from reconciler.stages import recipes
    from reconciler.stages.modelfile import load_model

    model = load_model(params.path(active["file"]), active.get("sha256"), display=active["file"])
    return recipes.evaluate(model, documents, spec, active["labels"]), None


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
