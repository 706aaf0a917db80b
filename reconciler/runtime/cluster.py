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
``dvc repro`` typed by hand finds nothing to do, as after a local one
(:mod:`reconciler.runtime.recorded`, shared with the in-process executor).

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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from reconciler.adapters.loader import SpecFile
from reconciler.runtime.executor import DvcExecutor, PipelineJob, PipelineSession
from reconciler.runtime.recorded import RecordedRun
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
            raise FlywheelError(f"--executor {url[:200]!r}: expected local, in-process or "
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


class _ClusterRun(RecordedRun):
    """:class:`RecordedRun` whose task runs on the cluster."""

    def __init__(self, executor: ClusterExecutor, job: PipelineJob, stop: StopRequest) -> None:
        super().__init__(job, stop, executor.store, executor.exchange)
        self.executor = executor

    def compute(self, task: Any) -> Any:
        from reconciler.stages import remote

        key = self._key()
        self._note(f"cluster: task {key} sent to {self.executor.address}"
                   + (f" (exchange {self.executor.exchange})" if self.executor.exchange else ""))
        future = self.executor.cluster.submit(remote.run, task, key=key)
        result = self.executor.cluster.result(future, self.stop.is_set)
        self._note(f"cluster: ran on {result.worker} in {result.seconds:.3f}s "
                   f"(fit_seconds={result.fit_seconds:.3f})")
        return result
