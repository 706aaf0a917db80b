"""A flywheel's conditions (Ready, Reconciling, Stalled, Degraded, DataDrift), derived from what
the planner says and what the records show.

Derived, not stored (a departure from Flux, which stores them in status): a flywheel whose spec
or data is bad gets its conditions from the error, with nothing written; one whose plan has work
pending is Reconciling; one whose active version has fallen below its F1 at promotion is
Degraded (:mod:`reconciler.core.degradation`); one whose newest data is past the declared
drift thresholds has DataDrift (:mod:`reconciler.core.drift`). The first condition is always
``Ready``; :func:`one_line` is the flywheel's one-line message everywhere (``list``,
Comprehend's ``Message``): Ready's, naming Degraded and DataDrift too, so it stays true.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from reconciler.core.actions import Iterate, Plan
from reconciler.core.degradation import degradation
from reconciler.core.drift import findings
from reconciler.core.policy import inactive_reason
from reconciler.core.spec import DriftThresholds, Promotion
from reconciler.core.state import Observed
from reconciler.errors import FlywheelError


class ConditionType(StrEnum):
    READY = "Ready"
    RECONCILING = "Reconciling"
    STALLED = "Stalled"
    DEGRADED = "Degraded"
    DATA_DRIFT = "DataDrift"


@dataclass(frozen=True)
class Condition:
    type: ConditionType
    status: bool
    reason: str
    message: str


def conditions(error: FlywheelError | None, plan: Plan | None, observed: Observed, *,
               declared: bool, promotion: Promotion | None,
               drift: DriftThresholds | None = None) -> list[Condition]:
    """``declared``: the spec loaded (so ``promotion`` is the spec's policy, None for manual,
    and ``drift`` its drift thresholds, None for no DataDrift condition)."""
    found = _conditions(error, plan, observed, declared=declared, promotion=promotion)
    if not declared or error is not None:
        return found
    extra = []
    degraded = degradation(observed, promotion)
    if degraded is not None:
        extra.append(Condition(ConditionType.DEGRADED, True, degraded.reason,
                               degraded.message))
    drifted = findings(observed.iterations, drift)
    if drifted:
        extra.append(Condition(ConditionType.DATA_DRIFT, True, drifted[0].reason,
                               "; ".join(f.message for f in drifted[:3])))
    return [*found, *extra]


def one_line(found: list[Condition]) -> str:
    """A flywheel's one-line message (``list``, Comprehend's ``Message``): Ready's, and what a
    Degraded or DataDrift condition says, so that the message stays true."""
    said = [f"{c.type.value}: {c.message}" for c in found[1:]
            if c.status and c.type in (ConditionType.DEGRADED, ConditionType.DATA_DRIFT)]
    return "; ".join([found[0].message, *said])


def _conditions(error: FlywheelError | None, plan: Plan | None, observed: Observed, *,
                declared: bool, promotion: Promotion | None) -> list[Condition]:
    ready, reconciling, stalled = (ConditionType.READY, ConditionType.RECONCILING,
                                   ConditionType.STALLED)
    if error is not None:
        return [Condition(ready, False, "Stalled", str(error)),
                Condition(stalled, True, error.kind, str(error))]
    assert plan is not None
    if plan.suspended:
        return [Condition(ready, False, "Suspended", "; ".join(plan.notes))]
    pending = [a for a in plan.actions if isinstance(a, Iterate)]
    if pending:
        return [Condition(ready, False, "IterationPending", pending[0].reason),
                Condition(reconciling, True, "IterationPending", pending[0].reason)]
    if plan.actions:
        return [Condition(ready, False, "PromotionPending",
                          "; ".join(a.reason for a in plan.actions))]
    note = "; ".join(plan.notes) or "up to date"
    completed = observed.completed()
    if observed.active_model is None and completed and declared:
        # Up to date, yet nothing can classify: say why and what to do, not Ready=True.
        reason = inactive_reason(promotion, completed)
        return [Condition(ready, False, "NoActiveModel", reason),
                Condition(stalled, True, "NoActiveModel", reason)]
    return [Condition(ready, True, "UpToDate", note)]
