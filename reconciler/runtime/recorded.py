"""Iterations computed as one task outside DVC's stage processes, and recorded here.

What the cluster executor (:mod:`reconciler.runtime.cluster`) and the in-process executor
(:mod:`reconciler.runtime.inprocess`) share. The prepare stage runs in this process (documents
read and checked); the fit and both scorings run as one task
(:func:`reconciler.stages.remote.run`: prepared documents and the active model in, the model
file's bytes and every record out), wherever :meth:`RecordedRun.compute` runs it; the model and
the records are written here, the model's sha256 checked against what the task reports, and DVC
records every output (``dvc commit`` of the prepare and train stages, then of the evaluate
stage; ``dvc add`` of the lake's models), so ``dvc status`` is clean after an iteration and a
``dvc repro`` typed by hand finds nothing to do, as after a local one.

DVC is called only for ``commit`` and ``add``, each under the repository's DVC lock, held for
that call and not while a task runs.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from reconciler.core.layout import Workspace, iteration_log
from reconciler.errors import PipelineError
from reconciler.runtime.executor import (
    Evaluated,
    PipelineJob,
    Trained,
    discard_prepared,
    read_evaluated,
    read_trained,
    track_models,
)
from reconciler.runtime.stopping import StopRequest


class RecordedRun:
    """:class:`PipelineSession` of one iteration whose fit and scoring run as one task
    (:func:`reconciler.stages.remote.run`) outside DVC's stage processes; :meth:`compute` runs
    it (on a cluster, or in this process). ``store``: the exchange store the task's inputs and
    the model travel through, or None (inside the task)."""

    def __init__(self, job: PipelineJob, stop: StopRequest, store: Any = None,
                 exchange: str | None = None) -> None:
        self.job, self.stop, self.store, self.exchange = job, stop, store, exchange
        self.root, self.ws = job.root, Workspace(job.name)
        self.log = job.root / iteration_log(job.name, job.iteration_id)
        self.result: Any = None

    def _path(self, relative: object) -> Path:
        return self.root / str(relative)

    def _note(self, line: str) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("a", encoding="utf-8") as handle:
            handle.write(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {line}\n")

    def _dvc(self) -> Any:
        """One DVC call's session: the repository's DVC lock for that call only, DVC's log
        lines to the iteration's log, the process's output left alone (other threads')."""
        from reconciler.adapters.dvc import DvcSession

        return DvcSession(self.root, self.log, stop=self.stop.is_set, capture=False)

    def _commit(self, *stages: str) -> None:
        with self._dvc() as dvc:
            dvc.commit(*(f"{self.ws.dvc_yaml}:{stage}" for stage in stages))

    def train(self) -> Trained:
        from reconciler.stages import prepare

        prepare.run(str(self.ws.params), self.root)
        self.stop.check("the train stage")
        self.result = self.compute(self._task())
        self._write_trained(self.result)
        self._commit("prepare", "train")  # one DVC call for both records
        return read_trained(self.root, self.ws)

    def compute(self, task: Any) -> Any:
        """Run ``task`` (:class:`~reconciler.stages.remote.RemoteTask`); its result."""
        raise NotImplementedError

    def _key(self) -> str:
        """The task's key: the iteration's input digest and the active version it scores."""
        job = self.job
        return (f"flywheel-{job.name}-{job.digest[:32] or job.iteration_id}-"
                f"{job.active.version if job.active else 'none'}")

    def _task(self) -> Any:
        from reconciler.adapters.pipeline import params
        from reconciler.stages.remote import ActiveRef, Blob, RemoteTask

        spec, job = self.job.spec_file.spec, self.job
        blobs = {"train": Blob.inline(self._path(self.ws.train_data).read_bytes()),
                 "test": Blob.inline(self._path(self.ws.test_data).read_bytes())}
        if job.active is not None:
            blobs["active"] = Blob.inline(self._path(job.active.file).read_bytes())
        store = self.store
        if store is not None:
            for name, blob in blobs.items():
                assert blob.data is not None
                store.put(blob.data)
                blobs[name] = blob.by_reference()
        active = None if job.active is None else ActiveRef(
            job.active.version, job.active.mode.value, tuple(job.active.labels), blobs["active"])
        return RemoteTask(
            flywheel=spec.name, iteration_id=job.iteration_id, digest=job.digest,
            spec=params(spec, job.active)["spec"],
            train=blobs["train"], test=blobs["test"], active=active,
            exchange=self.exchange)

    def _write_trained(self, result: Any) -> None:
        from reconciler.adapters.files import atomic_write_json
        from reconciler.stages.modelfile import bytes_sha256, write_model_bytes

        data = result.model.data
        if data is None:
            assert self.store is not None
            data = self.store.get(result.model.sha256, result.model.size)
        claimed = str(result.train_summary.get("sha256"))
        if bytes_sha256(data) != claimed or claimed != result.model.sha256:
            raise PipelineError(f"the model file that came back from its task has sha256 "
                                f"{bytes_sha256(data)}, not the {claimed} its worker reported")
        write_model_bytes(data, self._path(self.ws.model))
        atomic_write_json(self._path(self.ws.trained_evaluation), result.trained_evaluation)
        atomic_write_json(self._path(self.ws.train_summary), result.train_summary)

    def discard_prepared(self) -> None:
        discard_prepared(self.root, self.ws)

    def evaluate(self) -> Evaluated:
        from reconciler.adapters.files import atomic_write_json, atomic_write_text

        result = self.result
        atomic_write_json(self._path(self.ws.evaluation), result.evaluation)
        atomic_write_json(self._path(self.ws.metrics), result.metrics)
        atomic_write_text(self._path(self.ws.per_label), result.per_label)
        self._commit("evaluate")
        return read_evaluated(self.root, self.ws)

    def track_models(self) -> None:
        with self._dvc() as dvc:
            track_models(self.root, self.ws, dvc)
