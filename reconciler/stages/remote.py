"""An iteration's computations on a worker with no checkout: what a cluster's task runs.

The coordinator (:class:`reconciler.runtime.cluster.ClusterExecutor`) prepares the documents
through DVC, as always, and hands a worker a :class:`RemoteTask`: the prepared TRAIN and TEST
documents and the active model's file, each a :class:`Blob` (carried in the task, or a SHA-256
in the shared exchange store), with the task and the recipe. The worker fits the recipe
(:func:`reconciler.stages.train.compute`), scores the new model and the active one
(:func:`reconciler.stages.evaluate.compute`) and answers with a :class:`RemoteResult`: the model
file's bytes (a :class:`Blob` again) and every record the train and evaluate stages write. The
coordinator writes those files and has DVC record them, so that ``dvc status`` and a ``dvc
repro`` by hand agree with what ran.

Nothing here reads or writes the repository; the only I/O is the exchange store's, and only for
a blob carried by reference. What crosses the cluster is plain data: documents as the prepared
JSON lines, models as their skops bytes (loaded with the allow-list, sha256 checked), records as
dicts; never a pickled estimator.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from reconciler.core.documents import Document
from reconciler.core.spec import FlywheelSpec, TaskConfig
from reconciler.errors import DataError
from reconciler.failpoints import failpoint
from reconciler.stages import evaluate, recipes, train
from reconciler.stages.modelfile import bytes_sha256
from reconciler.stages.params import parse_jsonl


@dataclass(frozen=True)
class Blob:
    """Bytes a task carries: inline (``data``), or by their SHA-256 in the exchange store."""

    sha256: str
    size: int
    data: bytes | None = field(default=None, repr=False)

    @classmethod
    def inline(cls, data: bytes) -> Blob:
        return cls(bytes_sha256(data), len(data), data)

    def by_reference(self) -> Blob:
        return Blob(self.sha256, self.size)


@dataclass(frozen=True)
class ActiveRef:
    """The active model version the evaluate computation scores."""

    version: str
    mode: str | None
    labels: tuple[str, ...]
    model: Blob


@dataclass(frozen=True)
class RemoteTask:
    """One iteration's computations, as a worker receives them."""

    flywheel: str
    iteration_id: str
    digest: str  # the iteration's input digest (the task's key)
    spec: dict[str, Any]  # the spec as the generated params.yaml holds it (task, recipe…)
    train: Blob  # the prepared TRAIN documents (JSON lines)
    test: Blob  # the prepared TEST documents
    active: ActiveRef | None
    exchange: str | None = None  # s3://bucket/prefix, when a blob travels by reference


@dataclass(frozen=True)
class RemoteResult:
    """What the worker answers: the model file and every record the two stages write."""

    model: Blob
    train_summary: dict[str, Any]  # train.json
    trained_evaluation: dict[str, Any]  # the trained model's Evaluation record
    evaluation: dict[str, Any]  # evaluation.json
    metrics: dict[str, dict[str, float]]  # metrics.json
    per_label: str  # per_label.csv
    fit_seconds: float
    seconds: float  # the whole task, on the worker
    worker: str  # host:pid, for the iteration's log


def run(task: RemoteTask) -> RemoteResult:
    """The task's entry point on a worker: fetch, compute, publish."""
    started = time.perf_counter()
    failpoint("remote:started")
    store = _store(task.exchange)
    spec = FlywheelSpec.model_validate({"name": task.flywheel, **task.spec})
    spec_task = spec.task
    documents = parse_jsonl(_fetch(task.train, store), display="prepared TRAIN documents")
    trained = train.compute(documents, spec_task, spec.recipe)
    del documents
    failpoint("remote:fitted")
    test = parse_jsonl(_fetch(task.test, store), display="prepared TEST documents")
    evaluated = compute_evaluation(test, trained, task.active, spec_task, store)
    model = Blob.inline(trained.model_bytes)
    if store is not None:
        store.put(trained.model_bytes)
        model = model.by_reference()
    return RemoteResult(
        model=model, train_summary=trained.summary,
        trained_evaluation=evaluated.trained.to_record(), evaluation=evaluated.evaluation,
        metrics=evaluated.metrics, per_label=evaluated.per_label,
        fit_seconds=trained.fit_seconds, seconds=time.perf_counter() - started,
        worker=f"{socket.gethostname()}:{os.getpid()}")


def compute_evaluation(test: list[Document], trained: train.Trained, active: ActiveRef | None,
                       task: TaskConfig, store: Any) -> evaluate.Evaluated:
    """Both evaluations, as the train and evaluate stages make them (the same functions)."""
    scored = recipes.score(trained.model, test, task, task.labels)
    model = None
    if active is not None:
        model = evaluate.ActiveModel.from_bytes(active.version, active.mode, active.labels,
                                                _fetch(active.model, store), active.model.sha256)
    return evaluate.compute(test, scored, model, task)


def _store(exchange: str | None) -> Any:
    if exchange is None:
        return None
    from reconciler.adapters.exchange import ExchangeStore

    return ExchangeStore.from_url(exchange)


def _fetch(blob: Blob, store: Any) -> bytes:
    """The blob's bytes, checked against its SHA-256 whichever way they came."""
    if blob.data is not None:
        data = blob.data
    elif store is None:
        raise DataError(f"blob {blob.sha256} travels by reference but no exchange store is set")
    else:
        data = store.get(blob.sha256, blob.size)
    if bytes_sha256(data) != blob.sha256:
        raise DataError(f"blob {blob.sha256} arrived with other bytes (sha256 "
                        f"{bytes_sha256(data)})")
    return data
