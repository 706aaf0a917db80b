"""Stage 2: fit the recipe on the training documents, save the model (skops)."""

from __future__ import annotations

import time

from reconciler.adapters.files import atomic_write_json
from reconciler.stages import recipes
from reconciler.stages.modelfile import save_model
from reconciler.stages.params import read_jsonl, read_params


def run(params_file: str) -> None:
    params = read_params(params_file)
    spec, ws = params.spec, params.workspace
    documents = read_jsonl(params.path(ws.train_data))
    started = time.perf_counter()
    pipeline = recipes.build_pipeline(spec.recipe, spec.task.mode)
    recipes.fit(pipeline, [d.text for d in documents], [d.labels for d in documents],
                spec.task.mode, spec.task.labels)
    seconds = time.perf_counter() - started
    sha256 = save_model(pipeline, params.path(ws.model))
    atomic_write_json(params.path(ws.train_summary), {
        "sha256": sha256,
        "numberOfTrainDocuments": len(documents),
        "fitSeconds": round(seconds, 3),
        "labels": spec.task.labels,
        "mode": spec.task.mode.value,
    })
