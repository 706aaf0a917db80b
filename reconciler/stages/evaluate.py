"""Stage 3: score the new model and the active model on the same test documents."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from reconciler.adapters.files import atomic_write_json, atomic_write_text
from reconciler.core.metrics import Evaluation
from reconciler.core.metrics import evaluate as score
from reconciler.core.spec import FlywheelSpec
from reconciler.stages import recipes
from reconciler.stages.modelfile import load_model
from reconciler.stages.params import StageParams, read_jsonl, read_params


def run(params_file: str) -> None:
    params = read_params(params_file)
    spec, ws = params.spec, params.workspace
    documents = read_jsonl(params.path(ws.test_data))
    texts = [d.text for d in documents]
    truth = [d.labels for d in documents]
    trained_sha = json.loads(params.path(ws.train_summary).read_text("utf-8"))["sha256"]
    trained = load_model(params.path(ws.model), trained_sha, display=str(ws.model))
    trained_eval = _score(trained, texts, truth, spec, spec.task.labels)
    active_eval, note = None, None
    if params.active:
        active_eval, note = _score_active(params, texts, truth)
    atomic_write_json(params.path(ws.evaluation), {
        "numberOfTestDocuments": len(documents),
        "trained": trained_eval.to_record(),
        "active": active_eval.to_record() if active_eval else None,
        "activeVersion": params.active["version"] if params.active else None,
        "activeNote": note,
    })
    metrics = {"trained": trained_eval.comprehend_metrics()}
    if active_eval:
        metrics["active"] = active_eval.comprehend_metrics()
    atomic_write_json(params.path(ws.metrics), metrics)
    atomic_write_text(params.path(ws.per_label), _per_label_csv(trained_eval, active_eval))


def _score_active(params: StageParams, texts: list[str],
                  truth: list[frozenset[str]]) -> tuple[Evaluation | None, str | None]:
    active = params.active or {}
    spec = params.spec
    if active.get("mode") != spec.task.mode.value or list(active.get("labels", [])) != list(
        spec.task.labels
    ):
        return None, (f"active model {active.get('version')} was trained for another task "
                      "(mode or labels differ); it is not scored")
    model = load_model(params.path(active["file"]), active.get("sha256"), display=active["file"])
    return _score(model, texts, truth, spec, active["labels"]), None


def _score(model: Any, texts: list[str], truth: list[frozenset[str]], spec: FlywheelSpec,
           labels: list[str]) -> Evaluation:
    mode = spec.task.mode
    predicted = recipes.predict(model, texts, mode, labels)
    return score(mode.value, spec.task.labels, truth, predicted)


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
