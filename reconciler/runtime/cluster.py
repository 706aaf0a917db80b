"""The cluster executor: iterations' computations on a Dask cluster, recorded here.

``--executor dask://HOST:PORT`` (or ``FLYWHEEL_EXECUTOR``). The reconciler stays the single writer
of git, DVC's records and the lake; the workers compute and need no checkout::

    coordinator (this process)                      a worker
    prepare stage, in this process: documents
      read and checked; dvc commit :prepare
    the task: prepared documents, active model ---> fit, score both models
      (inline, or by SHA-256 in the exchange         (reconciler.stages.remote.run)
      store: --exchange s3://BUCKET/PREFIX)    <--- the model file's bytes and every record
    model and records written; sha256 checked;
      dvc commit :train, later :evaluate; dvc add of the lake's models

DVC records every output (``dvc commit``), so ``dvc status`` is clean after an iteration and a
``dvc repro`` typed by hand finds nothing to do, as after a local one.

A task's key holds the iteration's input digest: asked twice, the scheduler runs it once, and a
worker lost mid-fit means the scheduler reruns it on another; the flywheel gets one iteration
for it either way, because only the coordinator writes records, under the flywheel's lock. A
lost scheduler fails the iteration with one line, retryably (``adapters/dask_cluster.py``).

DVC is called only for ``commit`` and ``add`` here, each under the repository's DVC lock, held for
that call and not while a task runs: iterations of several flywheels run on the cluster at
once (:meth:`ClusterExecutor.slots`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from reconciler.adapters.loader import SpecFile
from reconciler.core.layout import Workspace, iteration_log
from reconciler.errors import PipelineError
from reconciler.runtime.executor import (
    DvcExecutor,
    Evaluated,
    PipelineJob,
    PipelineSession,
    Trained,
    discard_prepared,
    read_evaluated,
    read_trained,
    track_models,
)
from reconciler.runtime.stopping import StopRequest

SCHEME = "dask://"


class ClusterExecutor:
    """Runs iterations' computations on the Dask scheduler at ``address`` (``tcp://H:P``);
    ``exchange`` (``s3://BUCKET/PREFIX``) carries documents and models, or none: task inputs."""

    def __init__(self, address: str, exchange: str | None = None) -> None:
        from reconciler.adapters.dask_cluster import DaskCluster
        from reconciler.adapters.exchange import ExchangeStore

        self.address = address
        self.cluster = DaskCluster(address)
        self.store = None if exchange is None else ExchangeStore.from_url(exchange)
        self._local = DvcExecutor()
        self._checked = False
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, exchange: str | None = None) -> ClusterExecutor:
        """``dask://HOST:PORT`` (``tcp://`` and ``tls://`` are taken as they are)."""
        from reconciler.errors import FlywheelError

        target = url.strip()
        if target.startswith(SCHEME):
            target = "tcp://" + target.removeprefix(SCHEME)
        host, _, port = target.partition("://")[2].rpartition(":")
        if not target.startswith(("tcp://", "tls://")) or not host or not port.isdigit():
            raise FlywheelError(f"--executor {url[:200]!r}: expected local or "
                                "dask://HOST:PORT (a running Dask scheduler)")
        return cls(target, exchange)

    @property
    def exchange(self) -> str | None:
        """The exchange store's URL, as workers are given it (None: inputs in the tasks)."""
        return None if self.store is None else self.store.url

    def slots(self) -> int:
        """Iterations that can run at once: the cluster's worker threads."""
        return self.cluster.slots()

    def check(self, root: Path, spec_file: SpecFile) -> None:
        self._local.check(root, spec_file)
        with self._lock:
            if self._checked:
                return
            self.cluster.client()  # reachable, or one line before anything is recorded
            if self.store is not None:
                self.store.check()
            self._checked = True

    def write_pipeline(self, job: PipelineJob) -> None:
        self._local.write_pipeline(job)

    @contextmanager
    def session(self, job: PipelineJob, stop: StopRequest) -> Iterator[PipelineSession]:
        yield _ClusterRun(self, job, stop)

    def close(self) -> None:
        self.cluster.close()


class _ClusterRun:
    """:class:`PipelineSession` of one iteration whose fit runs on the cluster."""

    def __init__(self, executor: ClusterExecutor, job: PipelineJob, stop: StopRequest) -> None:
        self.executor, self.job, self.stop = executor, job, stop
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

    def _commit(self, stage: str, *, with_upstream: bool = False) -> None:
        with self._dvc() as dvc:
            dvc.commit(f"{self.ws.dvc_yaml}:{stage}", with_upstream=with_upstream)

    def train(self) -> Trained:
        from reconciler.stages import prepare

        prepare.run(str(self.ws.params), self.root)
        self.stop.check("the train stage")
        self.result = self._compute()
        self._write_trained(self.result)
        self._commit("train", with_upstream=True)  # prepare's record too: one DVC call
        return read_trained(self.root, self.ws)

    def _compute(self) -> Any:
        from reconciler.stages import remote

        task = self._task()
        key = (f"flywheel-{self.job.name}-{self.job.digest[:32] or self.job.iteration_id}-"
               f"{self.job.active.version if self.job.active else 'none'}")
        self._note(f"cluster: task {key} sent to {self.executor.address}"
                   + (f" (exchange {self.executor.exchange})" if self.executor.exchange else ""))
        future = self.executor.cluster.submit(remote.run, task, key=key)
        result = self.executor.cluster.result(future, self.stop.is_set)
        self._note(f"cluster: ran on {result.worker} in {result.seconds:.3f}s "
                   f"(fit_seconds={result.fit_seconds:.3f})")
        return result

    def _task(self) -> Any:
        from reconciler.adapters.pipeline import params
        from reconciler.stages.remote import ActiveRef, Blob, RemoteTask

        spec, job = self.job.spec_file.spec, self.job
        blobs = {"train": Blob.inline(self._path(self.ws.train_data).read_bytes()),
                 "test": Blob.inline(self._path(self.ws.test_data).read_bytes())}
        if job.active is not None:
            blobs["active"] = Blob.inline(self._path(job.active.file).read_bytes())
        store = self.executor.store
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
            exchange=self.executor.exchange)

    def _write_trained(self, result: Any) -> None:
        from reconciler.adapters.files import atomic_write_json
        from reconciler.stages.modelfile import bytes_sha256, write_model_bytes

        data = result.model.data
        if data is None:
            assert self.executor.store is not None
            data = self.executor.store.get(result.model.sha256, result.model.size)
        claimed = str(result.train_summary.get("sha256"))
        if bytes_sha256(data) != claimed or claimed != result.model.sha256:
            raise PipelineError(f"the model file that came back from the cluster has sha256 "
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
