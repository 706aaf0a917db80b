"""One flywheel iteration: :class:`IterationRun` coordinates it, an executor runs its pipeline.

Order of writes (each atomic), chosen so that a crash anywhere leaves a state the next reconcile
finishes or marks FAILED (see :func:`reconciler.runtime.recovery.recover`):

1. iteration record TRAINING      4. model copied into the lake (never over a file there), the
2. pipeline files, ``dvc repro``     models folder checked against the records, ``dvc add``
   of prepare+train; the data     5. evaluations, then the version record (immutable)
   read checked against the plan  6. iteration record COMPLETED (immutable), then the promotion
3. iteration record EVALUATING, claiming the version number and the model's sha256

A failure or a crash after 3 leaves a claim without a version record: the number is released
and the model file by that name with that sha256, if any, removed before the next iteration
(``Observed.released``, ``Lake.remove_orphans``), so the retry archives under the same number.

The pipeline work of steps 2 and 4 (``dvc repro``, ``dvc add``) is the executor's
(:mod:`reconciler.runtime.executor`; :class:`~reconciler.runtime.executor.DvcExecutor` by
default); every record, every failpoint and this order stay here.

Named failpoints (:mod:`reconciler.failpoints`) sit between these steps; the crash-safety tests
kill the reconciler at each of them and check what the next reconcile makes of it.
"""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.adapters.dataset_files import DatasetFile
from reconciler.adapters.files import read_json
from reconciler.adapters.loader import SpecFile
from reconciler.adapters.requests import requested_id
from reconciler.core.actions import Iterate
from reconciler.core.documents import CorpusSummary
from reconciler.core.layout import Workspace
from reconciler.core.state import (
    DataDrift,
    DatasetRef,
    FlywheelStatus,
    IterationRecord,
    IterationStatus,
    ModelVersionRecord,
    Observed,
    SourceRevision,
)
from reconciler.errors import (
    FlywheelError,
    StateError,
    Stopped,
    TransientError,
    environment_failure,
    refused_operation,
)
from reconciler.failpoints import failpoint
from reconciler.runtime.events import (
    DocumentCounts,
    IterationFinished,
    IterationStarted,
    StageStarted,
)
from reconciler.runtime.executor import Evaluated, PipelineJob, PipelineSession, Trained
from reconciler.runtime.recovery import comprehend_metrics, finish_iteration

if TYPE_CHECKING:
    from reconciler.runtime.reconcile import Context

ID_FORMAT = "%Y%m%dT%H%M%SZ"


def new_iteration_id(now: float, observed: Observed, requested: str | None = None) -> str:
    """Comprehend's ``YYYYMMDDTHHMMSSZ`` (UTC): ``now``, or one second past the latest id when
    that is not earlier (a record written by a machine with a fast clock, or two iterations in
    one second). Computed, never counted up to: an id years ahead costs no more than any other.
    Ids stay unique and strictly increasing, so they sort in the order the iterations ran.

    ``requested``: the id StartFlywheelIteration handed out when it was asked, taken when it is
    still later than every id (it is, unless another iteration started in between).
    """
    stamp = int(now)
    latest = max((it.flywheel_iteration_id for it in observed.iterations), default=None)
    if requested is not None and (latest is None or requested > latest):
        try:
            calendar.timegm(time.strptime(requested, ID_FORMAT))
        except ValueError:
            pass
        else:
            return requested
    if latest is not None:
        try:
            after = calendar.timegm(time.strptime(latest, ID_FORMAT)) + 1
        except ValueError as exc:  # the lake's reader validates ids; this is a last guard
            raise StateError(f"iteration id {latest!r} is not {ID_FORMAT}",
                             flywheel=observed.latest.flywheel_name if observed.latest else None,
                             ) from exc
        stamp = max(stamp, after)
    candidate = time.strftime(ID_FORMAT, time.gmtime(stamp))
    if len(candidate) != 16 or (latest is not None and candidate <= latest):
        raise StateError(f"no iteration id after {latest!r} fits {ID_FORMAT} (year 9999)")
    return candidate


@dataclass(frozen=True)
class IterationJob:
    """What one iteration is asked to do, as planned: the planned action and the inputs it was
    planned with (``observed`` read under the flywheel lock), the status it updates, the
    revision its records cite."""

    spec_file: SpecFile
    observed: Observed
    status: FlywheelStatus
    action: Iterate
    files: list[DatasetFile]
    corpus: CorpusSummary
    source: SourceRevision | None = None


class IterationRun:
    """One iteration, coordinated: :meth:`run` writes its records in order and returns the final
    record; the pipeline work runs on ``ctx.executor`` (:mod:`reconciler.runtime.executor`)."""

    def __init__(self, ctx: Context, job: IterationJob) -> None:
        self.ctx, self.job = ctx, job
        self.lake, self.report, self.stop = ctx.lake, ctx.report, ctx.stop
        self.spec_file, self.spec = job.spec_file, job.spec_file.spec
        self.observed, self.status, self.action = job.observed, job.status, job.action
        self.corpus, self.source = job.corpus, job.source
        self.ws = Workspace(self.spec.name)
        self.active = job.observed.versions.get(job.status.active_model or "")
        now = ctx.clock()
        self.record = IterationRecord(
            flywheel_name=self.spec.name,
            flywheel_iteration_id=new_iteration_id(now, job.observed,
                                                   requested_id(job.action.request)),
            status=IterationStatus.TRAINING,
            creation_time=now,
            input_digest=job.action.digest,
            attempt=job.action.attempt,
            datasets=[DatasetRef(name=f.dataset.name, type=f.dataset.type.value,
                                 path=f.dataset.path, md5=f.md5) for f in job.files],
            new_datasets=list(job.action.new_datasets),
            recipe=self.spec.recipe.model_dump(mode="json", by_alias=True),
            test_source=job.corpus.test_source,
            number_of_train_documents=job.corpus.number_of_train_documents,
            number_of_test_documents=job.corpus.number_of_test_documents,
            evaluated_model_version=self.active.version if self.active else None,
            source_revision=job.source,
            iteration_request=job.action.request,
        )

    @property
    def iteration_id(self) -> str:
        return self.record.flywheel_iteration_id

    def run(self) -> IterationRecord:
        started = time.monotonic()
        self.lake.write_status(self.status)
        self.lake.write_iteration(self.record)
        failpoint("iteration:training-recorded")
        self.report(IterationStarted(self.spec.name, self.iteration_id, self.action.reason,
                                     DocumentCounts(self.corpus.number_of_train_documents,
                                                    self.corpus.number_of_test_documents)))
        try:
            version = self._execute()
        except Stopped as exc:
            self._finish(IterationStatus.STOPPED, f"STOPPED: {exc}; the next reconcile resumes it",
                         started, retryable=True)
            raise
        except FlywheelError as exc:
            if self.stop.is_set():  # the stop escalated and cut the running stage short
                self._finish(IterationStatus.STOPPED, f"STOPPED: {self.stop.reason} during a "
                             "stage; the next reconcile resumes it", started, retryable=True)
                raise Stopped(f"stopped during a stage ({self.stop.reason})") from exc
            self._finish(IterationStatus.FAILED, str(exc), started,
                         retryable=isinstance(exc, TransientError))
            raise
        except (KeyboardInterrupt, SystemExit):
            self._finish(IterationStatus.STOPPED, "STOPPED: the reconciler was interrupted; "
                         "the next reconcile resumes it", started, retryable=True)
            raise
        except Exception as exc:
            refused = environment_failure(exc)
            if refused is not None:  # the system refused a file operation: not a verdict
                message = refused_operation(refused)
                self._finish(IterationStatus.FAILED, f"{message}; retried after the back-off",
                             started, retryable=True)
                raise TransientError(message, flywheel=self.spec.name) from exc
            self._finish(IterationStatus.FAILED, f"INTERNAL: {type(exc).__name__}: {exc}",
                         started, retryable=False)
            raise
        self._complete(version, started)
        return self.record

    def _execute(self) -> ModelVersionRecord:
        executor = self.ctx.executor
        job = PipelineJob(self.ctx.root, self.spec_file, self.iteration_id, self.active,
                          self.action.digest)
        executor.write_pipeline(job)
        failpoint("iteration:pipeline-written")
        with executor.session(job, self.stop) as session:
            self.stop.check("the train stage")
            self.report(StageStarted(self.spec.name, self.iteration_id, "train"))
            trained = session.train()
            failpoint("iteration:train-reproduced")
            self._check_inputs(trained, session)
            self.record.drift = self._drift()  # recorded with EVALUATING below
            self.stop.check("the evaluate stage")
            # The version number is claimed (with the model's sha256) in the EVALUATING record,
            # before any model file is written: see Observed.known_versions/released/orphans.
            name, sha256 = self.spec.name, trained.sha256
            version = self.observed.next_version(self.lake.model_files(name),
                                                 self.lake.tracked_models(name))
            self.record.claimed_model_version = version
            self.record.claimed_model_sha256 = sha256
            self._set_status(IterationStatus.EVALUATING)
            failpoint("iteration:evaluating-recorded")
            self.report(StageStarted(self.spec.name, self.iteration_id, "evaluate"))
            evaluated = session.evaluate()
            failpoint("iteration:evaluate-reproduced")
            # From here on the work is seconds away from done: finish it even if asked to stop.
            model_file = self.lake.archive_model(name, version, trained.model)
            failpoint("iteration:model-copied")
            self.report(StageStarted(self.spec.name, self.iteration_id, "archive"))
            # The folder is recorded as it is: never a swapped or missing model file.
            self.lake.check_models(name, self.observed.versions, (version, sha256))
            session.track_models()
            failpoint("iteration:model-tracked")
        return self._archive(version, model_file, trained, evaluated)

    def _check_inputs(self, trained: Trained, session: PipelineSession) -> None:
        """The prepare stage read exactly the files the iteration was planned with, and the
        pipeline tool recorded them so: otherwise a file changed while the iteration ran, and
        the records would describe data other than what was trained on. Retryable: the next
        reconcile plans with the file as it is then. The document counts recorded are the
        prepare stage's."""
        read, locked = trained.read, trained.locked
        for ref in self.record.datasets:
            # A prepare stage DVC did not re-run (its inputs unchanged) may predate this record.
            seen = read.get(ref.path) or locked.get(ref.path)
            problem = None
            if seen != ref.md5:
                problem = f"{seen or 'not recorded'} when read by the prepare stage"
            elif locked.get(ref.path, ref.md5) != ref.md5:
                problem = f"{locked[ref.path]} when DVC recorded it in {self.ws.dvc_lock}"
            if problem is not None:
                # The prepared documents may not come from what the tool recorded: drop them,
                # so that the retry prepares them again.
                session.discard_prepared()
                raise TransientError(f"{ref.path} changed while the iteration ran (md5 "
                                     f"{ref.md5} when planned, {problem}); retrying")
        self.record.number_of_train_documents = trained.number_of_train_documents
        self.record.number_of_test_documents = trained.number_of_test_documents
        self.record.test_source = trained.test_source

    def _drift(self) -> DataDrift | None:
        """The prepare stage's ``drift.json``, for this iteration's new datasets: only when it
        was measured against the active version and for the bytes this record names (an
        executor that leaves no such file here, or a file that is not this iteration's, gives
        None: drift is a reading, never a reason to fail the iteration)."""
        if self.active is None:
            return None
        try:
            data = read_json(self.ctx.root / str(self.ws.drift))
            drift = DataDrift.model_validate(data) if data else None
        except (OSError, ValueError):
            return None
        if drift is None or drift.reference.version != self.active.version:
            return None
        md5s = {ref.name: ref.md5 for ref in self.record.datasets}
        raw = data.get("datasets") or {}
        drift.datasets = {
            name: figures for name, figures in drift.datasets.items()
            if name in self.record.new_datasets and isinstance(raw.get(name), dict)
            and raw[name].get("md5") == md5s.get(name)}
        return drift

    def _archive(self, version: str, model_file: Path, trained: Trained,
                 evaluated: Evaluated) -> ModelVersionRecord:
        self.lake.write_evaluation(self.spec.name, self.iteration_id, "trained",
                                   evaluated.trained)
        failpoint("iteration:trained-evaluation-written")
        if evaluated.active:
            self.lake.write_evaluation(self.spec.name, self.iteration_id, "active",
                                       evaluated.active)
            failpoint("iteration:active-evaluation-written")
        record = ModelVersionRecord(
            version=version,
            flywheel_iteration_id=self.iteration_id,
            creation_time=self.ctx.clock(),
            file=model_file.relative_to(self.ctx.root).as_posix(),
            sha256=trained.sha256,
            # the archived copy's size: check_models found it to hold the trained model's bytes
            size=trained.model.stat().st_size,
            mode=self.spec.task.mode.value,
            labels=list(self.spec.task.labels),
            recipe=self.record.recipe,
            datasets=self.record.datasets,
            trained_model_metrics=comprehend_metrics(evaluated.trained),
            source_revision=self.source,
        )
        self.lake.write_version(self.spec.name, record)
        failpoint("iteration:version-recorded")
        if evaluated.active_note:
            self.record.message = evaluated.active_note
        if evaluated.active:
            self.record.evaluated_model_metrics = comprehend_metrics(evaluated.active)
        return record

    def _complete(self, version: ModelVersionRecord, started: float) -> None:
        finish_iteration(self.ctx, self.record, version, self.spec_file, self.status,
                         duration=time.monotonic() - started, source=self.source)

    def _set_status(self, status: IterationStatus) -> None:
        self.record.status = status
        self.lake.write_iteration(self.record)

    def _finish(self, status: IterationStatus, message: str, started: float, *,
                retryable: bool) -> None:
        self.record.status = status
        self.record.message = message
        self.record.retryable = retryable
        self.record.end_time = self.ctx.clock()
        self.record.duration_seconds = round(time.monotonic() - started, 3)
        self.lake.write_iteration(self.record)
        self.report(IterationFinished(self.spec.name, self.record))
