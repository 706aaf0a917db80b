"""Promotion decisions: the F1-threshold policy, and the rule that a human pin always wins."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reconciler.core.spec import Promotion
from reconciler.core.state import Decision, IterationRecord

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


@dataclass(frozen=True)
class Choice:
    """The version the policy would have active, and why (see :func:`policy_choice`)."""

    version: str | None
    reason: str
    iteration_id: str | None = None


def policy_choice(policy: Promotion | None, completed: Sequence[IterationRecord]) -> Choice:
    """The version the policy would have active had no pin been set: its rule replayed over the
    completed iterations, oldest first, on each iteration's own same-data comparison.

    An iteration decided under a pin still measured its new version against the model it was
    evaluated with, on the same test data; that comparison is the only fair evidence there is,
    so the policy's choice is the newest version that cleared the rule in its own iteration.
    ``version`` is None when no version ever did (or there is no policy).
    """
    if policy is None:
        return Choice(None, "no promotion policy: promotion is manual")
    choice = Choice(None, _never_met(policy, completed))
    for record in completed:
        figures = record.decision
        if record.trained_model_version is None or figures is None or figures.trained_f1 is None:
            continue
        decision = decide(policy, pinned_to=None, trained_f1=figures.trained_f1,
                          active_f1=figures.active_f1)
        if decision.promote:
            choice = Choice(record.trained_model_version,
                            f"{decision.reason} in iteration {record.flywheel_iteration_id}",
                            record.flywheel_iteration_id)
    return choice


def best_trained(completed: Sequence[IterationRecord]) -> tuple[str, float] | None:
    """The version with the highest F1 in its own iteration, and that F1."""
    scored = [(record.decision.trained_f1, record.trained_model_version) for record in completed
              if record.decision is not None and record.decision.trained_f1 is not None
              and record.trained_model_version is not None]
    if not scored:
        return None
    f1, version = max(scored)
    return version, f1


def inactive_reason(policy: Promotion | None, completed: Sequence[IterationRecord]) -> str:
    """Why no version is active, and what to do about it (one line for a person)."""
    pin = "pin a version with `activeModel: vN` in the spec"
    if policy is None:
        return f"promotion is manual (no promotion policy): {pin}"
    if not completed:
        return "no iteration has completed yet: run `flywheel reconcile`"
    return f"{_never_met(policy, completed)}: lower promotion.minF1, add training data, or {pin}"


def _never_met(policy: Promotion, completed: Sequence[IterationRecord]) -> str:
    best = best_trained(completed)
    if best is None:
        return "no version has been trained yet"
    version, f1 = best
    return (f"no version has met the policy: the best F1 is {f1:.4f} ({version}), "
            f"below minF1 {policy.min_f1:.4f}" if f1 < policy.min_f1 - EPSILON else
            "no version has met the policy")
