"""One flywheel iteration, executed through the flywheel's DVC pipeline.

Order of writes (each atomic), chosen so that a crash anywhere leaves a state the next reconcile
finishes or marks FAILED (see :func:`recover`):

1. iteration record TRAINING      4. model copied into the lake (never over a file there), the
2. pipeline files, ``dvc repro``     models folder checked against the records, ``dvc add``
   of prepare+train; the data     5. evaluations, then the version record (immutable)
   read checked against the plan  6. iteration record COMPLETED (immutable), then the promotion
3. iteration record EVALUATING, claiming the version number and the model's sha256

A failure or a crash after 3 leaves a claim without a version record: the number is released
and the model file by that name with that sha256, if any, removed before the next iteration
(``Observed.released``, ``Lake.remove_orphans``), so the retry archives under the same number.

Named failpoints (:mod:`reconciler.failpoints`) sit between these steps; the crash-safety tests
kill the reconciler at each of them and check what the next reconcile makes of it.
"""

from __future__ import annotations

import calendar
import time
from pathlib import Path

from reconciler.adapters.datasets import CorpusSummary, DatasetFile
from reconciler.adapters.dvc import DvcSession, locked_deps
from reconciler.adapters.files import read_json, remove_stale_temp_files
from reconciler.adapters.lake import Lake
from reconciler.adapters.loader import SpecFile
from reconciler.adapters.pipeline import write_pipeline
from reconciler.core.layout import Workspace, iteration_log
from reconciler.core.metrics import Evaluation
from reconciler.core.planner import Iterate, person_pin
from reconciler.core.policy import decide
from reconciler.core.state import (
    DatasetRef,
    FlywheelStatus,
    IterationRecord,
    IterationStatus,
    ModelMetrics,
    ModelVersionRecord,
    Observed,
    PromotionKind,
    PromotionRecord,
    SourceRevision,
    TestSource,
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
    IterationFinished,
    IterationStarted,
    Promoted,
    Reporter,
    StageStarted,
)
from reconciler.runtime.stopping import NEVER, StopRequest

FULL_ITERATION = "FULL_ITERATION: Flywheel iteration performed all functions successfully."


ID_FORMAT = "%Y%m%dT%H%M%SZ"


def new_iteration_id(now: float, observed: Observed) -> str:
    """Comprehend's ``YYYYMMDDTHHMMSSZ`` (UTC): ``now``, or one second past the latest id when
    that is not earlier (a record written by a machine with a fast clock, or two iterations in
    one second). Computed, never counted up to: an id years ahead costs no more than any other.
    Ids stay unique and strictly increasing, so they sort in the order the iterations ran.
    """
    stamp = int(now)
    latest = max((it.flywheel_iteration_id for it in observed.iterations), default=None)
    if latest is not None:
        try:
            after = calendar.timegm(time.strptime(latest, ID_FORMAT)) + 1
        except ValueError as exc:  # the lake's reader validates ids; this is a last guard
            raise StateError(f"iteration id {latest!r} is not {ID_FORMAT}",
                             flywheel=observed.latest and observed.latest.flywheel_name) from exc
        stamp = max(stamp, after)
    candidate = time.strftime(ID_FORMAT, time.gmtime(stamp))
    if len(candidate) != 16 or (latest is not None and candidate <= latest):
        raise StateError(f"no iteration id after {latest!r} fits {ID_FORMAT} (year 9999)")
    return candidate


class IterationRun:
    """Everything one iteration needs; :meth:`run` does it and returns the final record."""

    def __init__(self, *, root: Path, lake: Lake, spec_file: SpecFile, observed: Observed,
                 status: FlywheelStatus, action: Iterate, files: list[DatasetFile],
                 corpus: CorpusSummary, now: float, report: Reporter,
                 stop: StopRequest = NEVER, source: SourceRevision | None = None) -> None:
        self.root, self.lake, self.spec_file = root, lake, spec_file
        self.stop, self.source = stop, source
        self.spec = spec_file.spec
        self.observed, self.status, self.action = observed, status, action
        self.files, self.corpus, self.report = files, corpus, report
        self.ws = Workspace(self.spec.name)
        self.active = observed.versions.get(status.active_model or "")
        self.record = IterationRecord(
            flywheel_name=self.spec.name,
            flywheel_iteration_id=new_iteration_id(now, observed),
            status=IterationStatus.TRAINING,
            creation_time=now,
            input_digest=action.digest,
            attempt=action.attempt,
            datasets=[DatasetRef(name=f.dataset.name, type=f.dataset.type.value,
                                 path=f.dataset.path, md5=f.md5) for f in files],
            new_datasets=list(action.new_datasets),
            recipe=self.spec.recipe.model_dump(mode="json", by_alias=True),
            test_source=corpus.test_source,
            number_of_train_documents=corpus.number_of_train_documents,
            number_of_test_documents=corpus.number_of_test_documents,
            evaluated_model_version=self.active.version if self.active else None,
            source_revision=source,
            iteration_request=action.request,
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
                                     (self.corpus.number_of_train_documents,
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
        write_pipeline(self.root, self.spec, self.spec_file.path, self.active)
        failpoint("iteration:pipeline-written")
        log = self.root / iteration_log(self.spec.name, self.iteration_id)
        dvc_yaml = str(self.ws.dvc_yaml)
        with DvcSession(self.root, log, stop=self.stop.is_set) as dvc:
            self.stop.check("the train stage")
            self.report(StageStarted(self.spec.name, self.iteration_id, "train"))
            dvc.reproduce(f"{dvc_yaml}:train")
            failpoint("iteration:train-reproduced")
            self._check_inputs()
            self.stop.check("the evaluate stage")
            # The version number is claimed (with the model's sha256) in the EVALUATING record,
            # before any model file is written: see Observed.known_versions/released/orphans.
            name = self.spec.name
            sha256 = str(read_json(self.root / str(self.ws.train_summary))["sha256"])
            version = self.observed.next_version(self.lake.model_files(name),
                                                 self.lake.tracked_models(name))
            self.record.claimed_model_version = version
            self.record.claimed_model_sha256 = sha256
            self._set_status(IterationStatus.EVALUATING)
            failpoint("iteration:evaluating-recorded")
            self.report(StageStarted(self.spec.name, self.iteration_id, "evaluate"))
            dvc.reproduce(f"{dvc_yaml}:evaluate")
            failpoint("iteration:evaluate-reproduced")
            # From here on the work is seconds away from done: finish it even if asked to stop.
            model_file = self.lake.archive_model(name, version, self.root / str(self.ws.model))
            failpoint("iteration:model-copied")
            self.report(StageStarted(self.spec.name, self.iteration_id, "archive"))
            # A killed iteration's half-copied model (a temp file) must not become part of the
            # tracked folder; only the flywheel lock's holder writes there, so any is an orphan.
            remove_stale_temp_files(self.root / str(self.ws.models), older_than=0)
            # DVC records whatever the folder holds: never a swapped or missing model file.
            self.lake.check_models(name, self.observed.versions, (version, sha256))
            dvc.track(str(self.ws.models))
            failpoint("iteration:model-tracked")
        return self._archive(version, model_file.relative_to(self.root).as_posix(), sha256)

    def _check_inputs(self) -> None:
        """The prepare stage read exactly the files the iteration was planned with, and DVC
        recorded them so: otherwise a file changed while the iteration ran, and the records
        would describe data other than what was trained on. Retryable: the next reconcile plans
        with the file as it is then. The document counts recorded are the prepare stage's."""
        summary = read_json(self.root / str(self.ws.prepare_summary))
        read = {d.get("path"): d for d in summary.get("datasets", []) if isinstance(d, dict)}
        locked = locked_deps(self.root / self.ws.dvc_lock, "prepare")
        for ref in self.record.datasets:
            # A prepare stage DVC did not re-run (its inputs unchanged) may predate this record.
            seen = read.get(ref.path, {}).get("md5") or locked.get(ref.path)
            problem = None
            if seen != ref.md5:
                problem = f"{seen or 'not recorded'} when read by the prepare stage"
            elif locked.get(ref.path, ref.md5) != ref.md5:
                problem = f"{locked[ref.path]} when DVC recorded it in {self.ws.dvc_lock}"
            if problem is not None:
                # dvc.lock may now name bytes the prepared documents did not come from: remove
                # those documents, so that the retry's `dvc repro` runs the prepare stage again.
                for prepared in (self.ws.train_data, self.ws.test_data):
                    (self.root / str(prepared)).unlink(missing_ok=True)
                raise TransientError(f"{ref.path} changed while the iteration ran (md5 "
                                     f"{ref.md5} when planned, {problem}); retrying")
        self.record.number_of_train_documents = int(summary["numberOfTrainDocuments"])
        self.record.number_of_test_documents = int(summary["numberOfTestDocuments"])
        self.record.test_source = TestSource(summary["testSource"])

    def _archive(self, version: str, model_file: str, sha256: str) -> ModelVersionRecord:
        evaluation = read_json(self.root / str(self.ws.evaluation))
        self.lake.write_evaluation(self.spec.name, self.iteration_id, "trained",
                                   evaluation["trained"])
        failpoint("iteration:trained-evaluation-written")
        if evaluation.get("active"):
            self.lake.write_evaluation(self.spec.name, self.iteration_id, "active",
                                       evaluation["active"])
            failpoint("iteration:active-evaluation-written")
        record = ModelVersionRecord(
            version=version,
            flywheel_iteration_id=self.iteration_id,
            creation_time=time.time(),
            file=model_file,
            sha256=sha256,
            size=(self.root / model_file).stat().st_size,
            mode=self.spec.task.mode.value,
            labels=list(self.spec.task.labels),
            recipe=self.record.recipe,
            datasets=self.record.datasets,
            trained_model_metrics=_comprehend_metrics(evaluation["trained"]),
            source_revision=self.source,
        )
        self.lake.write_version(self.spec.name, record)
        failpoint("iteration:version-recorded")
        if evaluation.get("activeNote"):
            self.record.message = evaluation["activeNote"]
        if evaluation.get("active"):
            self.record.evaluated_model_metrics = _comprehend_metrics(evaluation["active"])
        return record

    def _complete(self, version: ModelVersionRecord, started: float) -> None:
        finish_iteration(self.lake, self.record, version, self.spec_file, self.status, self.report,
                         duration=time.monotonic() - started, source=self.source)

    def _set_status(self, status: IterationStatus) -> None:
        self.record.status = status
        self.lake.write_iteration(self.record)

    def _finish(self, status: IterationStatus, message: str, started: float, *,
                retryable: bool) -> None:
        self.record.status = status
        self.record.message = message
        self.record.retryable = retryable
        self.record.end_time = time.time()
        self.record.duration_seconds = round(time.monotonic() - started, 3)
        self.lake.write_iteration(self.record)
        self.report(IterationFinished(self.spec.name, self.record))


def finish_iteration(lake: Lake, record: IterationRecord, version: ModelVersionRecord,
                     spec_file: SpecFile, status: FlywheelStatus, report: Reporter, *,
                     duration: float | None, source: SourceRevision | None) -> None:
    """Decide promotion, write the COMPLETED record, then apply the promotion and the history."""
    spec = spec_file.spec
    trained_f1 = version.trained_model_metrics.average_f1_score
    active_f1 = record.active_f1
    record.decision = decide(spec.promotion,
                             pinned_to=person_pin(spec, status, spec_file.policy_managed),
                             trained_f1=trained_f1, active_f1=active_f1)
    record.trained_model_version = version.version
    record.trained_model_metrics = version.trained_model_metrics
    record.status = IterationStatus.COMPLETED
    record.message = FULL_ITERATION + (f" {record.message}" if record.message else "")
    record.end_time = time.time()
    record.duration_seconds = round(duration, 3) if duration is not None else None
    lake.write_iteration(record)
    failpoint("iteration:completed")
    report(IterationFinished(spec.name, record))
    if record.decision.promote:
        promote(lake, status, version.version, kind=PromotionKind.POLICY,
                reason=record.decision.reason, iteration_id=record.flywheel_iteration_id,
                spec_file=spec_file.path,
                report=report, source=source)
        failpoint("iteration:promoted")
    lake.write_history(spec.name, lake.observe(spec.name).iterations)


def promote(lake: Lake, status: FlywheelStatus, version: str, *, kind: PromotionKind,
            reason: str,
            iteration_id: str | None, spec_file: str, report: Reporter,
            pinned: bool = False, source: SourceRevision | None = None) -> None:
    promotion = PromotionRecord(version=version, previous_version=status.active_model,
                                time=time.time(), kind=kind, reason=reason,
                                flywheel_iteration_id=iteration_id, spec_file=spec_file,
                                source_revision=source)
    status.active_model = version
    status.pinned = pinned
    status.promotions.append(promotion)
    lake.write_status(status)
    report(Promoted(status.flywheel_name, promotion))


def recover(lake: Lake, observed: Observed, spec_file: SpecFile, status: FlywheelStatus,
            report: Reporter, source: SourceRevision | None = None) -> bool:
    """Settle iterations a dead reconciler left unfinished; True if anything changed.

    Called with the flywheel lock held, so no live process owns them. One whose model version
    was already archived is completed from its records; any other is marked FAILED (retryable).
    """
    changed = False
    for record in observed.iterations:
        if record.status.terminal:
            continue
        changed = True
        version = next((v for v in observed.versions.values()
                        if v.flywheel_iteration_id == record.flywheel_iteration_id), None)
        if version is not None:
            active = lake.evaluation(record.flywheel_name, record.flywheel_iteration_id, "active")
            if active:
                record.evaluated_model_metrics = _comprehend_metrics(active)
            finish_iteration(lake, record, version, spec_file, status, report, duration=None,
                             source=source)
            continue
        was = record.status.value
        record.status = IterationStatus.FAILED
        record.retryable = True
        record.interrupted = True  # the reconciler's own crash: resumed at once (planner)
        record.end_time = time.time()
        record.message = (f"INTERRUPTED: the reconciler stopped while {was}; "
                          "the iteration is resumed at once")
        lake.write_iteration(record)
        report(IterationFinished(record.flywheel_name, record))
    return changed


def _comprehend_metrics(evaluation: dict) -> ModelMetrics:
    return ModelMetrics.model_validate(Evaluation.from_record(evaluation).comprehend_metrics())
