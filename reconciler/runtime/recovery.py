"""Finishing iterations: the COMPLETED record and its promotion, for a live iteration
(:class:`~reconciler.runtime.iteration.IterationRun`) and for one a dead reconciler left
unfinished (:func:`recover`, called under the flywheel lock before anything is planned).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reconciler.adapters.loader import SpecFile
from reconciler.core.layout import Workspace
from reconciler.core.metrics import Evaluation
from reconciler.core.planner import person_pin
from reconciler.core.policy import decide
from reconciler.core.state import (
    FlywheelStatus,
    IterationRecord,
    IterationStatus,
    ModelMetrics,
    ModelVersionRecord,
    Observed,
    PromotionKind,
    SourceRevision,
)
from reconciler.errors import StateError
from reconciler.failpoints import failpoint
from reconciler.runtime.events import IterationFinished

if TYPE_CHECKING:
    from reconciler.runtime.reconcile import Context

FULL_ITERATION = "FULL_ITERATION: Flywheel iteration performed all functions successfully."


def finish_iteration(ctx: Context, record: IterationRecord, version: ModelVersionRecord,
                     spec_file: SpecFile, status: FlywheelStatus, *,
                     duration: float | None, source: SourceRevision | None) -> None:
    """Decide promotion, write the COMPLETED record, then apply the promotion and the history."""
    # actions imports iteration, which imports this module: promote is looked up when used.
    from reconciler.runtime.actions import promote

    lake, spec = ctx.lake, spec_file.spec
    trained_f1 = version.trained_model_metrics.average_f1_score
    if trained_f1 is None:  # the lake's records are input: a version without its F1 is refused
        raise StateError(f"version {version.version} has no AverageF1Score in "
                         "trainedModelMetrics; the policy cannot decide on it",
                         file=str(Workspace(spec.name).versions / f"{version.version}.json"),
                         flywheel=spec.name)
    active_f1 = record.active_f1
    record.decision = decide(spec.promotion,
                             pinned_to=person_pin(spec, status, spec_file.policy_managed),
                             trained_f1=trained_f1, active_f1=active_f1)
    record.trained_model_version = version.version
    record.trained_model_metrics = version.trained_model_metrics
    record.status = IterationStatus.COMPLETED
    record.message = FULL_ITERATION + (f" {record.message}" if record.message else "")
    record.end_time = ctx.clock()
    record.duration_seconds = round(duration, 3) if duration is not None else None
    lake.write_iteration(record)
    failpoint("iteration:completed")
    ctx.report(IterationFinished(spec.name, record))
    if record.decision.promote:
        promote(ctx, status, version.version, kind=PromotionKind.POLICY,
                reason=record.decision.reason, iteration_id=record.flywheel_iteration_id,
                spec_file=spec_file.path, source=source)
        failpoint("iteration:promoted")
    lake.write_history(spec.name, lake.observe(spec.name).iterations)


def recover(ctx: Context, observed: Observed, spec_file: SpecFile, status: FlywheelStatus,
            source: SourceRevision | None = None) -> bool:
    """Settle iterations a dead reconciler left unfinished; True if anything changed.

    Called with the flywheel lock held, so no live process owns them. One whose model version
    was already archived is completed from its records; any other is marked FAILED (retryable).
    """
    lake = ctx.lake
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
                record.evaluated_model_metrics = comprehend_metrics(active)
            finish_iteration(ctx, record, version, spec_file, status, duration=None,
                             source=source)
            continue
        was = record.status.value
        record.status = IterationStatus.FAILED
        record.retryable = True
        record.interrupted = True  # the reconciler's own crash: resumed at once (planner)
        record.end_time = ctx.clock()
        record.message = (f"INTERRUPTED: the reconciler stopped while {was}; "
                          "the iteration is resumed at once")
        lake.write_iteration(record)
        ctx.report(IterationFinished(record.flywheel_name, record))
    return changed


def comprehend_metrics(evaluation: dict[str, Any]) -> ModelMetrics:
    """Comprehend's four averages of a full evaluation record."""
    return ModelMetrics.model_validate(Evaluation.from_record(evaluation).comprehend_metrics())
