"""The in-process executor: an iteration's fit and scoring in the reconciler's own process.

``--executor in-process`` (or ``FLYWHEEL_EXECUTOR=in-process``). The default executor reproduces
the flywheel's DVC pipeline: three stage processes per iteration, each paying Python's start and
its imports (scikit-learn's some seconds in the train stage), and DVC's own run of each stage.
Here the same computations (:func:`reconciler.stages.remote.run`, what a cluster's worker runs)
run in this process, where scikit-learn is imported once for every iteration of a reconcile,
and DVC records their outputs with ``dvc commit`` (:mod:`reconciler.runtime.recorded`): the
records, the model's bytes, ``dvc.lock`` and ``dvc status`` are what the default executor
leaves.

What it gives up: a stage's process limits (memory, file size) and a crash of one fit kill the
reconciler, not a stage process (the next reconcile marks the iteration FAILED and retries it,
as after any crash of the reconciler); iterations run one at a time.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from reconciler.adapters.loader import SpecFile
from reconciler.runtime.executor import DvcExecutor, PipelineJob, PipelineSession
from reconciler.runtime.recorded import RecordedRun
from reconciler.runtime.stopping import StopRequest


class InProcessExecutor:
    """Runs iterations' computations in this process, recorded by ``dvc commit``."""

    def __init__(self) -> None:
        self._local = DvcExecutor()

    def slots(self) -> int:
        """One iteration at a time (they share this process)."""
        return 1

    def check(self, root: Path, spec_file: SpecFile) -> None:
        self._local.check(root, spec_file)

    def write_pipeline(self, job: PipelineJob) -> None:
        self._local.write_pipeline(job)

    @contextmanager
    def session(self, job: PipelineJob, stop: StopRequest) -> Iterator[PipelineSession]:
        yield _InProcessRun(job, stop)


class _InProcessRun(RecordedRun):
    """:class:`RecordedRun` whose task runs here."""

    def compute(self, task: Any) -> Any:
        from reconciler.stages import remote

        started = time.perf_counter()
        result = remote.run(task)
        self._note(f"in-process: task {self._key()} ran in {time.perf_counter() - started:.3f}s "
                   f"(fit_seconds={result.fit_seconds:.3f})")
        return result
