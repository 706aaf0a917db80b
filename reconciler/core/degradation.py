"""The degradation alarm: has the active version got worse on new data since it became active?

Every iteration scores the active version on the current test data (the "evaluated" model). An
active version's **F1 at promotion** is the figure the reconciler had for it when it became
active: the F1 it was promoted on (the promoting iteration's trained F1), or, for a pin, its
newest measurement before the pin. From then on each completed iteration that evaluated it gives
a new figure. The flywheel is **Degraded** when the newest figure has fallen more than
``promotion.degradation.maxDrop`` below the F1 at promotion, or below the policy's ``minF1``.
It clears when another version becomes active, or when the figure recovers.

Pure: the figures come from the records; the per-label drops from two evaluations the caller
reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reconciler.core.state import IterationRecord, Observed, PromotionKind

if TYPE_CHECKING:
    from reconciler.core.spec import Promotion

#: Figures are compared with this slack (0.80 - 0.03 must not count as below 0.77).
EPSILON = 1e-9


@dataclass(frozen=True)
class Degradation:
    """Why the active version counts as degraded, with the figures that show it."""

    version: str
    #: Its F1 when it became active, and the iteration that measured it (None: unknown).
    f1_at_promotion: float | None
    promotion_iteration: str | None
    #: Its newest F1, and the iteration that measured it on that iteration's test data.
    f1_now: float
    iteration: str
    #: ``maxDrop`` (the drop is over it) or ``minF1`` (the figure is under it).
    rule: str
    threshold: float

    @property
    def drop(self) -> float | None:
        return None if self.f1_at_promotion is None else self.f1_at_promotion - self.f1_now

    @property
    def reason(self) -> str:
        return "F1Dropped" if self.rule == "maxDrop" else "BelowMinF1"

    @property
    def message(self) -> str:
        if self.rule == "maxDrop" and self.f1_at_promotion is not None:
            return (f"active {self.version}: F1 {self.f1_now:.4f} in iteration {self.iteration} "
                    f"is {self.drop:.4f} below its {self.f1_at_promotion:.4f} at promotion "
                    f"(iteration {self.promotion_iteration}; maxDrop {self.threshold:.4f})")
        return (f"active {self.version}: F1 {self.f1_now:.4f} in iteration {self.iteration} is "
                f"below minF1 {self.threshold:.4f}")

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "f1AtPromotion": self.f1_at_promotion,
                "promotionIteration": self.promotion_iteration, "f1Now": self.f1_now,
                "iteration": self.iteration, "drop": self.drop, "rule": self.rule,
                "threshold": self.threshold, "message": self.message}


def degradation(observed: Observed, policy: Promotion | None) -> Degradation | None:
    """The active version's degradation, or None (healthy, not measured since it became
    active, or no rule declared)."""
    active = observed.active_model
    status = observed.status
    rules = _rules(policy)
    if active is None or status is None or not rules:
        return None
    since, at_promotion, promoted_in = baseline(observed, active)
    latest = _newest_evaluation(observed.completed(), active, since)
    if latest is None or latest.active_f1 is None:
        return None
    now = latest.active_f1
    max_drop = rules.get("maxDrop")
    if max_drop is not None and at_promotion is not None and \
            at_promotion - now > max_drop + EPSILON:
        return Degradation(active, at_promotion, promoted_in, now,
                           latest.flywheel_iteration_id, "maxDrop", max_drop)
    min_f1 = rules.get("minF1")
    if min_f1 is not None and now < min_f1 - EPSILON:
        return Degradation(active, at_promotion, promoted_in, now,
                           latest.flywheel_iteration_id, "minF1", min_f1)
    return None


def _rules(policy: Promotion | None) -> dict[str, float]:
    if policy is None or policy.degradation is None:
        return {}
    rules = {"minF1": policy.min_f1} if policy.min_f1 > 0 else {}
    if policy.degradation.max_drop is not None:
        rules["maxDrop"] = policy.degradation.max_drop
    return rules


def baseline(observed: Observed, version: str) -> tuple[float, float | None, str | None]:
    """When ``version`` became active (epoch seconds), its F1 then, and the iteration that
    measured that F1."""
    status = observed.status
    promotion = next((p for p in reversed(status.promotions) if str(p.version) == version),
                     None) if status else None
    since = promotion.time if promotion else 0.0
    if promotion is not None and promotion.kind is PromotionKind.POLICY and \
            promotion.flywheel_iteration_id:
        for record in observed.iterations:
            if record.flywheel_iteration_id == promotion.flywheel_iteration_id and \
                    record.trained_model_version == version and record.trained_f1 is not None:
                return since, record.trained_f1, record.flywheel_iteration_id
    for record in reversed(observed.completed()):  # a pin: its newest figure before the pin
        if (record.end_time or record.creation_time) > since:
            continue
        for named, f1 in ((record.trained_model_version, record.trained_f1),
                          (record.evaluated_model_version, record.active_f1)):
            if named == version and f1 is not None:
                return since, f1, record.flywheel_iteration_id
    return since, None, None


def _newest_evaluation(completed: list[IterationRecord], version: str,
                       since: float) -> IterationRecord | None:
    for record in reversed(completed):
        if record.evaluated_model_version == version and record.creation_time >= since:
            return record
    return None


@dataclass(frozen=True)
class LabelDrop:
    label: str
    before: float
    after: float

    @property
    def drop(self) -> float:
        return self.before - self.after


def label_drops(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None,
                *, least: float = 0.0) -> list[LabelDrop]:
    """Per-label F1 of the same version in two evaluations (``perLabel`` records), the labels
    that fell by more than ``least`` first, largest fall first: the label that broke."""
    def f1s(evaluation: Mapping[str, Any] | None) -> dict[str, float]:
        rows = (evaluation or {}).get("perLabel") or []
        return {str(r["label"]): float(r["f1Score"]) for r in rows
                if isinstance(r, dict) and isinstance(r.get("f1Score"), int | float)
                and "label" in r}

    old, new = f1s(before), f1s(after)
    drops = [LabelDrop(label, old[label], new[label]) for label in old if label in new]
    return sorted((d for d in drops if d.drop > least + EPSILON), key=lambda d: -d.drop)
