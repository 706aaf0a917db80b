"""One dispatch over the planner's actions: :func:`apply` executes one, under the flywheel lock.

Adding an action means a dataclass in :mod:`reconciler.core.planner` (with its ``summary`` and
``to_json``) and a ``case`` here. :func:`promote` is the one way the active model changes: a
person's pin, the policy after an iteration (:func:`reconciler.runtime.recovery.
finish_iteration`) or after an unpin, a decision a crash kept from being applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, assert_never

from reconciler.adapters.corpus import check_corpus
from reconciler.adapters.loader import SpecFile
from reconciler.core.actions import (
    Acknowledge,
    Action,
    ApplyDecision,
    Iterate,
    Pin,
    Unpin,
    WriteSpec,
)
from reconciler.core.state import (
    FlywheelStatus,
    IterationRecord,
    PromotionKind,
    PromotionRecord,
    SourceRevision,
)
from reconciler.runtime.events import Promoted
from reconciler.runtime.iteration import IterationJob, IterationRun
from reconciler.runtime.writeback import write_back

if TYPE_CHECKING:
    from reconciler.runtime.reconcile import Context, Inputs


@dataclass
class Target:
    """The flywheel an action is applied to: its spec, the status the actions update (one
    object, written after every change), the revision records cite, the inputs planned with."""

    spec_file: SpecFile
    status: FlywheelStatus
    source: SourceRevision | None
    inputs: Inputs


def apply(action: Action, ctx: Context, target: Target) -> IterationRecord | None:
    """Execute one planned action; the iteration's final record for an :class:`Iterate`."""
    status, path, source = target.status, target.spec_file.path, target.source
    match action:
        case Pin():
            if status.write_back is not None and status.write_back.pending:
                status.write_back = status.write_back.model_copy(
                    update={"pending": False, "note": "superseded by a person's pin"})
            promote(ctx, status, action.version, kind=PromotionKind.PIN, reason=action.reason,
                    iteration_id=None, spec_file=path, pinned=True, source=source)
        case Unpin():
            status.pinned = False
            if action.version is not None and action.version != status.active_model:
                promote(ctx, status, action.version, kind=PromotionKind.POLICY,
                        reason=action.reason, iteration_id=action.iteration_id,
                        spec_file=path, source=source)
            else:
                ctx.lake.write_status(status)
        case ApplyDecision():
            promote(ctx, status, action.version, kind=PromotionKind.POLICY,
                    reason=action.reason, iteration_id=action.iteration_id, spec_file=path,
                    source=source)
        case WriteSpec():
            write_back(ctx, target.spec_file, status, action.version)
        case Acknowledge():
            status.last_handled_iteration_request = action.request
            ctx.lake.write_status(status)
        case Iterate():
            return _iterate(ctx, target, action)
        case _:
            assert_never(action)
    return None


def promote(ctx: Context, status: FlywheelStatus, version: str, *, kind: PromotionKind,
            reason: str, iteration_id: str | None, spec_file: str, pinned: bool = False,
            source: SourceRevision | None = None) -> None:
    """Make ``version`` active: the promotion recorded in the status, then reported."""
    promotion = PromotionRecord(version=version, previous_version=status.active_model,
                                time=ctx.clock(), kind=kind, reason=reason,
                                flywheel_iteration_id=iteration_id, spec_file=spec_file,
                                source_revision=source)
    status.active_model = version
    status.pinned = pinned
    status.promotions.append(promotion)
    ctx.lake.write_status(status)
    ctx.report(Promoted(status.flywheel_name, promotion))


def _iterate(ctx: Context, target: Target, action: Iterate) -> IterationRecord:
    spec_file, status, observed = target.spec_file, target.status, target.inputs.observed
    name = spec_file.spec.name
    ctx.executor.check(ctx.root, spec_file)
    # The models folder is re-recorded by the iteration (`dvc add`): first drop what failed
    # iterations left there, then refuse a folder that does not match its records, before
    # anything is recorded (fixed with `dvc pull`/`dvc checkout`, the next reconcile goes on).
    ctx.lake.remove_orphans(name, observed)
    ctx.lake.check_models(name, observed.versions)
    # The pre-flight check: every row, the overlap, the label coverage, before anything is
    # recorded; streamed (counts only), so no copy of the corpus is held while the stages run.
    corpus = check_corpus(spec_file.spec, ctx.root, spec_path=spec_file.path,
                          lines_of=spec_file.line_of)
    ctx.stop.check("the iteration")
    if action.request is not None:
        status.last_handled_iteration_request = action.request
    run = IterationRun(ctx, IterationJob(spec_file, ctx.lake.observe(name), status, action,
                                         target.inputs.files, corpus, target.source))
    record = run.record
    run.run()
    return record
