"""Promotion decisions: the F1-threshold policy, and the rule that a human pin always wins."""

from __future__ import annotations

from reconciler.core.spec import Promotion
from reconciler.core.state import Decision

#: F1 scores and thresholds are compared with this slack, so that 0.82 clears 0.80 + 0.02
#: although ``0.80 + 0.02 == 0.8200000000000001`` in floating point.
EPSILON = 1e-9


def decide(
    policy: Promotion | None,
    *,
    pinned_to: str | None,
    trained_f1: float,
    active_f1: float | None,
) -> Decision:
    """Should the newly trained version become active?

    Both F1 scores must come from the same iteration (same test data). With a pin in the spec the
    answer is always no; without a policy promotion is manual only; otherwise the new version is
    promoted when ``trained_f1 >= minF1`` and ``trained_f1 >= active_f1 + minImprovement`` (the
    second test is skipped when there is no active model yet).
    """
    figures = {"trained_f1": trained_f1, "active_f1": active_f1}
    if pinned_to is not None:
        return Decision(promote=False, reason=f"activeModel is pinned to {pinned_to} in the spec",
                        **figures)
    if policy is None:
        return Decision(promote=False, reason="no promotion policy: promotion is manual",
                        **figures)
    limits = {"min_f1": policy.min_f1, "min_improvement": policy.min_improvement}
    if trained_f1 < policy.min_f1 - EPSILON:
        return Decision(
            promote=False,
            reason=f"F1 {trained_f1:.4f} is below minF1 {policy.min_f1:.4f}",
            **figures, **limits,
        )
    if active_f1 is None:
        return Decision(
            promote=True,
            reason=f"first model: F1 {trained_f1:.4f} >= minF1 {policy.min_f1:.4f}",
            **figures, **limits,
        )
    needed = active_f1 + policy.min_improvement
    if trained_f1 < needed - EPSILON:
        return Decision(
            promote=False,
            reason=(f"F1 {trained_f1:.4f} < active {active_f1:.4f} + minImprovement "
                    f"{policy.min_improvement:.4f}"),
            **figures, **limits,
        )
    return Decision(
        promote=True,
        reason=(f"F1 {trained_f1:.4f} >= active {active_f1:.4f} + minImprovement "
                f"{policy.min_improvement:.4f} and >= minF1 {policy.min_f1:.4f}"),
        **figures, **limits,
    )
