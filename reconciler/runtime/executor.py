"""The executor port: where an iteration's computations run.

:class:`~reconciler.runtime.iteration.IterationRun` is the coordinator. It writes every record,
holds every failpoint and keeps the order of writes its docstring lists. What it hands to an
executor is the pipeline work only, step by step, so that it can record between the steps
(the EVALUATING record claims the version number between training and evaluating)::

    executor.check(root, spec_file)                before anything is recorded
    executor.write_pipeline(job)                   the pipeline this job runs
    with executor.session(job, stop) as session:   e.g. DVC's repository lock
        session.train()      -> Trained            prepare + train; the outputs read back
        session.discard_prepared()                 (only when the data read is refused)
        session.evaluate()   -> Evaluated          evaluate; the evaluations read back
        ...                                        (the coordinator archives Trained.model)
        session.track_models()                     record the lake's models folder

:class:`DvcExecutor` is today's path: the flywheel's generated DVC pipeline, ``dvc repro`` in
this process. Another executor (Dask, a job queue) runs the stages elsewhere; it must leave
``Trained.model`` readable here once :meth:`PipelineSession.evaluate` returned, because the
coordinator copies it into the lake (never over a file there) and checks its sha256.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from reconciler.adapters.loader import SpecFile
from reconciler.core.layout import Workspace, iteration_log
from reconciler.core.state import ModelVersionRecord, TestSource
from reconciler.errors import StateError
from reconciler.runtime.stopping import StopRequest


@dataclass(frozen=True)
class PipelineJob:
    """The pipeline work of one iteration: whose, which iteration, scored against what."""

    root: Path
    spec_file: SpecFile
    iteration_id: str
    active: ModelVersionRecord | None  # the active model the evaluate stage scores, if any
    digest: str = ""  # the iteration's input digest (a cluster task's key)

    @property
    def name(self) -> str:
        return self.spec_file.spec.name


@dataclass(frozen=True)
class Trained:
    """What the prepare and train stages produced, read back for the coordinator."""

    model: Path  # the trained model file, readable in this process
    sha256: str  # the train stage's sha256 of it (claimed in the EVALUATING record)
    #: dataset path -> md5 as the prepare stage read it, and as the pipeline tool recorded it
    read: Mapping[str, str | None]
    locked: Mapping[str, str]
    number_of_train_documents: int
    number_of_test_documents: int
    test_source: TestSource


@dataclass(frozen=True)
class Evaluated:
    """What the evaluate stage produced: both evaluations (``Evaluation.to_record`` shapes)."""

    trained: dict[str, Any]
    active: dict[str, Any] | None = None
    active_note: str | None = None


class PipelineSession(Protocol):
    """One iteration's run of its pipeline, step by step (see the module docstring)."""

    def train(self) -> Trained: ...

    def discard_prepared(self) -> None:
        """Drop the prepared documents, so that the retry prepares them again."""

    def evaluate(self) -> Evaluated: ...

    def track_models(self) -> None:
        """Record the lake's models folder as it is now (DVC: ``dvc add``)."""


class IterationExecutor(Protocol):
    """Runs the pipeline work of iterations (the port; :class:`DvcExecutor` is the default)."""

    def check(self, root: Path, spec_file: SpecFile) -> None:
        """Refuse what would keep the pipeline from running, before anything is recorded."""

    def write_pipeline(self, job: PipelineJob) -> None: ...

    def session(self, job: PipelineJob,
                stop: StopRequest) -> AbstractContextManager[PipelineSession]: ...


#: The environment's choice of executor and exchange store, when no option gives one.
EXECUTOR_VARIABLE = "FLYWHEEL_EXECUTOR"
EXCHANGE_VARIABLE = "FLYWHEEL_EXCHANGE"


def executor_from(url: str | None = None, exchange: str | None = None) -> IterationExecutor:
    """``local`` (the default: :class:`DvcExecutor`), ``in-process``
    (:class:`~reconciler.runtime.inprocess.InProcessExecutor`) or ``dask://HOST:PORT`` (a
    cluster: :class:`~reconciler.runtime.cluster.ClusterExecutor`), from the arguments or else
    from ``FLYWHEEL_EXECUTOR`` and ``FLYWHEEL_EXCHANGE``."""
    import os

    from reconciler.errors import FlywheelError

    url = (url or os.environ.get(EXECUTOR_VARIABLE) or "local").strip()
    exchange = (exchange or os.environ.get(EXCHANGE_VARIABLE) or "").strip() or None
    if url in ("local", "in-process"):
        if exchange is not None:
            raise FlywheelError("--exchange is for a cluster executor (--executor "
                                "dask://HOST:PORT); a local iteration reads the repository")
        if url == "in-process":
            from reconciler.runtime.inprocess import InProcessExecutor

            return InProcessExecutor()
        return DvcExecutor()
    from reconciler.runtime.cluster import ClusterExecutor

    return ClusterExecutor.from_url(url, exchange)


def slots_of(executor: IterationExecutor) -> int:
    """How many iterations may run at once: an executor's ``slots()`` (a cluster's worker
    threads), or one; a cluster that cannot be reached now gives one (each iteration then
    says why)."""
    from reconciler.errors import FlywheelError

    slots = getattr(executor, "slots", None)
    if slots is None:
        return 1
    try:
        return max(1, int(slots()))
    except FlywheelError:
        return 1


class DvcExecutor:
    """Today's executor: the flywheel's DVC pipeline, reproduced in this process.

    ``dvc_session`` opens the conversation with DVC (``DvcSession(root, log, stop=...)``, a
    context manager with ``reproduce(target)`` and ``track(path)``): by default
    :class:`reconciler.adapters.dvc.DvcSession`; ``benchmarks/noop_reconcile.py`` passes one
    that runs the stage functions in-process instead of ``dvc repro``.
    """

    def __init__(self, dvc_session: Callable[..., AbstractContextManager[Any]] | None = None,
                 ) -> None:
        self.dvc_session = dvc_session

    def check(self, root: Path, spec_file: SpecFile) -> None:
        from reconciler.adapters.dvc import is_dvc_repo
        from reconciler.adapters.pipeline import check_pipeline_folder

        if not is_dvc_repo(root):
            raise StateError(f"{root} is not a DVC repository; run `flywheel init` there")
        check_pipeline_folder(root, spec_file.spec.name)

    def write_pipeline(self, job: PipelineJob) -> None:
        from reconciler.adapters.pipeline import write_pipeline

        write_pipeline(job.root, job.spec_file.spec, job.spec_file.path, job.active)

    @contextmanager
    def session(self, job: PipelineJob, stop: StopRequest) -> Iterator[PipelineSession]:
        from reconciler.adapters.dvc import DvcSession

        log = job.root / iteration_log(job.name, job.iteration_id)
        with (self.dvc_session or DvcSession)(job.root, log, stop=stop.is_set) as dvc:
            yield _DvcRun(job, dvc)


class _DvcRun:
    """:class:`PipelineSession` over one :class:`~reconciler.adapters.dvc.DvcSession`."""

    def __init__(self, job: PipelineJob, dvc: Any) -> None:
        self.job, self.dvc = job, dvc
        self.ws = Workspace(job.name)

    def train(self) -> Trained:
        self.dvc.reproduce(f"{self.ws.dvc_yaml}:prepare", f"{self.ws.dvc_yaml}:train")
        return read_trained(self.job.root, self.ws)

    def discard_prepared(self) -> None:
        discard_prepared(self.job.root, self.ws)

    def evaluate(self) -> Evaluated:
        self.dvc.reproduce(f"{self.ws.dvc_yaml}:evaluate")
        return read_evaluated(self.job.root, self.ws)

    def track_models(self) -> None:
        track_models(self.job.root, self.ws, self.dvc)


def read_trained(root: Path, ws: Workspace) -> Trained:
    """The prepare and train stages' outputs, read back (whoever computed them)."""
    from reconciler.adapters.dvc import locked_deps
    from reconciler.adapters.files import read_json

    # A prepare stage DVC did not re-run (its inputs unchanged) may predate this iteration;
    # the coordinator compares both with what it planned with.
    summary = read_json(root / str(ws.prepare_summary))
    read = {str(d.get("path")): d.get("md5") for d in summary.get("datasets", [])
            if isinstance(d, dict)}
    return Trained(
        model=root / str(ws.model),
        sha256=str(read_json(root / str(ws.train_summary))["sha256"]),
        read=read,
        locked=locked_deps(root / ws.dvc_lock, "prepare"),
        number_of_train_documents=int(summary["numberOfTrainDocuments"]),
        number_of_test_documents=int(summary["numberOfTestDocuments"]),
        test_source=TestSource(summary["testSource"]),
    )


def read_evaluated(root: Path, ws: Workspace) -> Evaluated:
    """The evaluate stage's ``evaluation.json``, read back."""
    from reconciler.adapters.files import read_json

    evaluation = read_json(root / str(ws.evaluation))
    return Evaluated(trained=evaluation["trained"], active=evaluation.get("active") or None,
                     active_note=evaluation.get("activeNote") or None)


def discard_prepared(root: Path, ws: Workspace) -> None:
    """Drop the prepared documents: ``dvc.lock`` may name bytes they did not come from, and
    without them the retry prepares them again."""
    for prepared in (ws.train_data, ws.test_data):
        (root / str(prepared)).unlink(missing_ok=True)


def track_models(root: Path, ws: Workspace, dvc: Any) -> None:
    """``dvc add`` the lake's models folder as it is now."""
    from reconciler.adapters.files import remove_stale_temp_files

    # A killed iteration's half-copied model (a temp file) must not become part of the
    # tracked folder; only the flywheel lock's holder writes there, so any is an orphan.
    remove_stale_temp_files(root / str(ws.models), older_than=0)
    dvc.track(str(ws.models))
