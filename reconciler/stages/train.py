"""Stage 2: fit the recipe on the training documents, save the model (skops), score it.

The new model is scored on the test documents here, while it is in memory: reloading it in the
evaluate stage would cost a second scikit-learn start-up and a model load (seconds per
iteration, measured in ``benchmarks/iteration.py``). The evaluate stage scores the active model
with the same function, ``recipes.evaluate``, on the same prepared test documents.
"""

from __future__ import annotations

import time

from reconciler.adapters.files import atomic_write_json
from reconciler.failpoints import failpoint
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
    failpoint("stage:train:fitted")
    sha256 = save_model(pipeline, params.path(ws.model))
    failpoint("stage:train:saved")
    test = read_jsonl(params.path(ws.test_data))
    evaluation = recipes.evaluate(pipeline, test, spec, spec.task.labels)
    atomic_write_json(params.path(ws.trained_evaluation), evaluation.to_record())
    # Only what the inputs determine goes into the outputs (the same inputs give the same bytes,
    # so `dvc repro` of an unchanged pipeline leaves dvc.lock alone); the fit time is measured,
    # not determined: it goes to the stage's log (.flywheel/logs/<name>/<iteration>.log).
    atomic_write_json(params.path(ws.train_summary), {
        "sha256": sha256,
        "numberOfTrainDocuments": len(documents),
        "labels": spec.task.labels,
        "mode": spec.task.mode.value,
    })
    print(f"train: fit_seconds={seconds:.3f}", flush=True)
