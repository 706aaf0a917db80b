"""A flywheel's conditions (Ready, Reconciling, Stalled), derived from what the planner says.

Derived, not stored (a departure from Flux, which stores them in status): a flywheel whose spec
or data is bad gets its conditions from the error, with nothing written; one whose plan has work
pending is Reconciling. The first condition is always ``Ready``, and its message is the
flywheel's one-line message everywhere (``list``, Comprehend's ``Message``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from reconciler.core.actions import Iterate, Plan
from reconciler.core.policy import inactive_reason
from reconciler.core.spec import Promotion
from reconciler.core.state import Observed
from reconciler.errors import FlywheelError


class ConditionType(StrEnum):
    READY = "Ready"
    RECONCILING = "Reconciling"
    STALLED = "Stalled"


@dataclass(frozen=True)
class Condition:
    type: ConditionType
    status: bool
    reason: str
    message: str


def conditions(error: FlywheelError | None, plan: Plan | None, observed: Observed, *,
               declared: bool, promotion: Promotion | None) -> list[Condition]:
    """``declared``: the spec loaded (so ``promotion`` is the spec's policy, None for manual)."""
    ready, reconciling, stalled = ConditionType
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
