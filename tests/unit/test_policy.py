"""Tests for the promotion policy: F1 thresholds, and a human pin always wins."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from reconciler.core.policy import decide
from reconciler.core.spec import Promotion


@dataclass(frozen=True)
class Case:
    id: str
    policy: Promotion | None
    trained: float
    active: float | None
    promote: bool
    reason: str  # a substring of the reason
    pinned: str | None = None


DEFAULT = Promotion()
STRICT = Promotion(min_f1=0.8, min_improvement=0.02)

CASES = [
    Case("pinned-beats-a-better-model", STRICT, 0.99, 0.5, False, "pinned to v1", pinned="v1"),
    Case("pinned-without-policy", None, 0.99, None, False, "pinned to v3", pinned="v3"),
    Case("no-policy-is-manual", None, 0.99, 0.1, False, "manual"),
    Case("no-policy-first-model-is-manual", None, 0.99, None, False, "manual"),
    Case("below-minF1", STRICT, 0.79, None, False, "below minF1"),
    Case("below-minF1-even-if-better", STRICT, 0.79, 0.5, False, "below minF1"),
    Case("first-model", STRICT, 0.85, None, True, "first model"),
    Case("first-model-default-policy", DEFAULT, 0.01, None, True, "first model"),
    Case("first-model-exactly-minF1", STRICT, 0.8, None, True, "first model"),
    Case("improvement-below-minImprovement", STRICT, 0.81, 0.80, False, "minImprovement"),
    Case("improvement-above-minImprovement", STRICT, 0.83, 0.80, True, ">= active"),
    Case("equal-f1-default-policy-promotes", DEFAULT, 0.7, 0.7, True, ">= active"),
    Case("worse-default-policy", DEFAULT, 0.69, 0.7, False, "< active"),
    Case("exactly-minImprovement-binary-exact", Promotion(min_f1=0.5, min_improvement=0.25),
         0.75, 0.5, True, ">= active"),
    Case("exactly-minImprovement-0.80+0.02", STRICT, 0.82, 0.80, True, ">= active"),
    Case("exactly-minImprovement-0.70+0.10", Promotion(min_improvement=0.1), 0.8, 0.7, True,
         ">= active"),
    Case("negative-minImprovement-tolerates-a-small-drop",
         Promotion(min_f1=0.5, min_improvement=-0.05), 0.76, 0.80, True, ">= active"),
    Case("negative-minImprovement-exactly-at-the-limit",
         Promotion(min_f1=0.5, min_improvement=-0.05), 0.75, 0.80, True, ">= active"),
    Case("negative-minImprovement-refuses-a-bigger-drop",
         Promotion(min_f1=0.5, min_improvement=-0.05), 0.74, 0.80, False, "< active"),
    Case("negative-minImprovement-still-needs-minF1",
         Promotion(min_f1=0.8, min_improvement=-0.05), 0.79, 0.82, False, "below minF1"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_decide(case: Case) -> None:
    decision = decide(case.policy, pinned_to=case.pinned, trained_f1=case.trained,
                      active_f1=case.active)
    assert decision.promote is case.promote, decision.reason
    assert case.reason in decision.reason
    assert decision.trained_f1 == case.trained
    assert decision.active_f1 == case.active


def test_decision_records_the_limits_it_applied() -> None:
    decision = decide(STRICT, pinned_to=None, trained_f1=0.9, active_f1=0.85)
    assert (decision.min_f1, decision.min_improvement) == (0.8, 0.02)
    assert decision.reason == (
        "F1 0.9000 >= active 0.8500 + minImprovement 0.0200 and >= minF1 0.8000"
    )


@pytest.mark.parametrize(
    ("policy", "pinned"), [(None, None), (STRICT, "v1")], ids=["no-policy", "pinned"]
)
def test_decision_without_a_policy_applied_records_no_limits(policy, pinned) -> None:
    decision = decide(policy, pinned_to=pinned, trained_f1=0.9, active_f1=0.1)
    assert decision.min_f1 is None and decision.min_improvement is None
    assert decision.to_json_dict().keys() == {"promote", "reason", "trainedF1", "activeF1"}
