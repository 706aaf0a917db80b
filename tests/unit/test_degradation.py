"""The degradation alarm and the DataDrift condition, table-driven over records (no files)."""

from __future__ import annotations

import pytest

from reconciler.core.actions import Plan
from reconciler.core.conditions import ConditionType, conditions, one_line
from reconciler.core.degradation import degradation, label_drops
from reconciler.core.spec import Promotion
from reconciler.core.state import (
    FlywheelStatus,
    IterationRecord,
    IterationStatus,
    ModelMetrics,
    Observed,
    PromotionKind,
    PromotionRecord,
)

T0 = 1_800_000_000.0


def it(n: int, *, trained: str | None = None, trained_f1: float | None = None,
       evaluated: str | None = None, active_f1: float | None = None,
       status: IterationStatus = IterationStatus.COMPLETED) -> IterationRecord:
    """Iteration ``n``, started at T0 + 100 n and ended 10 s later."""
    return IterationRecord(
        flywheel_name="fw", flywheel_iteration_id=f"it-{n}", status=status,
        creation_time=T0 + 100 * n, end_time=T0 + 100 * n + 10, input_digest=f"d{n}",
        trained_model_version=trained, evaluated_model_version=evaluated,
        trained_model_metrics=None if trained_f1 is None else ModelMetrics(
            average_f1_score=trained_f1),
        evaluated_model_metrics=None if active_f1 is None else ModelMetrics(
            average_f1_score=active_f1))


def promoted(version: str, n: int, kind: PromotionKind = PromotionKind.POLICY,
             at: float | None = None) -> PromotionRecord:
    return PromotionRecord(version=version, time=at if at is not None else T0 + 100 * n + 11,
                           kind=kind, reason="r",
                           flywheel_iteration_id=f"it-{n}" if kind is PromotionKind.POLICY
                           else None)


def observed(active: str | None, promotions: list[PromotionRecord],
             *records: IterationRecord) -> Observed:
    status = FlywheelStatus(flywheel_name="fw", creation_time=T0, active_model=active,
                            promotions=promotions)
    return Observed(status=status, iterations=records)


def policy(max_drop: float | None = 0.03, min_f1: float = 0.0) -> Promotion:
    return Promotion.model_validate({"minF1": min_f1, "degradation": {"maxDrop": max_drop}})


V2_PROMOTED = [it(1, trained="v1", trained_f1=0.80),
               it(2, trained="v2", trained_f1=0.85, evaluated="v1", active_f1=0.80)]


@pytest.mark.parametrize(("case", "later", "rules", "expected"), [
    ("no later measurement", [], policy(), None),
    ("a small drop", [it(3, trained="v3", trained_f1=0.83, evaluated="v2", active_f1=0.83)],
     policy(), None),
    ("exactly maxDrop is not over it",
     [it(3, trained="v3", trained_f1=0.80, evaluated="v2", active_f1=0.82)], policy(), None),
    ("a drop past maxDrop", [it(3, trained="v3", trained_f1=0.79, evaluated="v2",
                                active_f1=0.80)], policy(), ("maxDrop", 0.85, 0.80, "it-3")),
    ("the newest figure counts: recovered",
     [it(3, trained="v3", trained_f1=0.79, evaluated="v2", active_f1=0.80),
      it(4, trained="v4", trained_f1=0.80, evaluated="v2", active_f1=0.84)], policy(), None),
    ("below minF1 without maxDrop",
     [it(3, trained="v3", trained_f1=0.70, evaluated="v2", active_f1=0.74)],
     policy(max_drop=None, min_f1=0.75), ("minF1", 0.85, 0.74, "it-3")),
    ("a failed iteration is no measurement",
     [it(3, evaluated="v2", active_f1=0.10, status=IterationStatus.FAILED)], policy(), None),
    ("no alarm declared", [it(3, trained="v3", trained_f1=0.5, evaluated="v2",
                              active_f1=0.5)], Promotion(), None),
    ("no policy at all", [it(3, trained="v3", trained_f1=0.5, evaluated="v2",
                             active_f1=0.5)], None, None),
], ids=lambda v: v if isinstance(v, str) else "")
def test_degradation_of_a_policy_promotion(case: str, later: list[IterationRecord],
                                           rules: Promotion | None,
                                           expected: tuple[str, float, float, str] | None
                                           ) -> None:
    found = degradation(observed("v2", [promoted("v1", 1), promoted("v2", 2)], *V2_PROMOTED,
                                 *later), rules)
    if expected is None:
        assert found is None, case
        return
    assert found is not None, case
    rule, before, now, iteration = expected
    assert (found.rule, found.version, found.iteration) == (rule, "v2", iteration)
    assert found.f1_at_promotion == pytest.approx(before)
    assert found.f1_now == pytest.approx(now)
    assert found.promotion_iteration == "it-2"


def test_another_version_promoted_clears_it() -> None:
    records = [*V2_PROMOTED, it(3, trained="v3", trained_f1=0.79, evaluated="v2", active_f1=0.80)]
    assert degradation(observed("v2", [promoted("v2", 2)], *records), policy()) is not None
    assert degradation(observed("v3", [promoted("v2", 2), promoted("v3", 3)], *records),
                       policy()) is None  # v3 is not measured since it became active


def test_a_pin_is_measured_from_its_newest_figure_before_the_pin() -> None:
    records = [*V2_PROMOTED,
               it(3, trained="v3", trained_f1=0.86, evaluated="v2", active_f1=0.84),
               it(5, trained="v5", trained_f1=0.70, evaluated="v1", active_f1=0.74)]
    pin = promoted("v1", 0, PromotionKind.PIN, at=T0 + 350)  # after it-3, before it-5
    found = degradation(observed("v1", [promoted("v2", 2), pin], *records), policy())
    assert found is not None
    assert found.f1_at_promotion == pytest.approx(0.80)  # it-2 evaluated v1 at 0.80
    assert found.promotion_iteration == "it-2" and found.iteration == "it-5"
    assert found.drop == pytest.approx(0.06)


def test_the_condition_and_the_message() -> None:
    records = [*V2_PROMOTED, it(3, trained="v3", trained_f1=0.79, evaluated="v2", active_f1=0.80)]
    seen = observed("v2", [promoted("v2", 2)], *records)
    found = conditions(None, Plan("fw"), seen, declared=True, promotion=policy())
    assert [c.type for c in found] == [ConditionType.READY, ConditionType.DEGRADED]
    assert found[0].status  # reconciled, and degraded: both true
    degraded = found[-1]
    assert degraded.reason == "F1Dropped"
    assert "0.8000 in iteration it-3 is 0.0500 below its 0.8500 at promotion" in degraded.message
    assert "Degraded:" in one_line(found)  # the flywheel's one-line message says so too
    assert "Degraded" not in found[0].message  # Ready's own stays Ready's
    healthy = conditions(None, Plan("fw"), seen, declared=True, promotion=Promotion())
    assert [c.type for c in healthy] == [ConditionType.READY]
    assert "Degraded" not in healthy[0].message


@pytest.mark.parametrize(("before", "after", "expected"), [
    ({"perLabel": [{"label": "a", "f1Score": 0.9}, {"label": "b", "f1Score": 0.8}]},
     {"perLabel": [{"label": "a", "f1Score": 0.6}, {"label": "b", "f1Score": 0.81}]},
     [("a", 0.3)]),
    ({"perLabel": [{"label": "a", "f1Score": 0.9}, {"label": "b", "f1Score": 0.8}]},
     {"perLabel": [{"label": "a", "f1Score": 0.85}, {"label": "b", "f1Score": 0.5}]},
     [("b", 0.3), ("a", 0.05)]),
    (None, {"perLabel": []}, []),
    ({"perLabel": [{"label": "a", "f1Score": "x"}, "junk"]}, {"perLabel": [{"label": "a"}]}, []),
])
def test_label_drops(before: dict[str, object] | None, after: dict[str, object],
                     expected: list[tuple[str, float]]) -> None:
    found = [(d.label, round(d.drop, 6)) for d in label_drops(before, after)]
    assert found == expected


# data drift past the declared thresholds -----------------------------------------------------


def drifted(n: int, **figures: float) -> IterationRecord:
    from reconciler.core.state import DataDrift, DatasetDrift, DriftReference

    record = it(n, trained=f"v{n}", trained_f1=0.8, evaluated="v1", active_f1=0.8)
    return record.model_copy(update={"drift": DataDrift(
        reference=DriftReference(version="v1", documents=100),
        datasets={f"train-{n}": DatasetDrift(documents=50, **figures)})})


@pytest.mark.parametrize(("figures", "limits", "expected"), [
    ({"label_psi": 0.05, "oov_share": 0.1, "length_ratio": 1.1}, {}, []),
    ({"label_psi": 0.40}, {}, [("labelPsi", "LabelShift")]),  # maxLabelPsi 0.25 by default
    ({"label_psi": 0.40}, {"maxLabelPsi": None}, []),
    ({"oov_share": 0.45}, {"maxUnseenTokens": 0.3}, [("unseenTokens", "UnseenTokens")]),
    ({"length_ratio": 0.4}, {"maxLengthRatio": 2.0}, [("lengthRatio", "LengthChange")]),
    ({"length_ratio": 1.5}, {"maxLengthRatio": 2.0}, []),
    ({"label_psi": 0.30, "oov_share": 0.9}, {"maxUnseenTokens": 0.3},
     [("unseenTokens", "UnseenTokens"), ("labelPsi", "LabelShift")]),  # furthest past first
], ids=["within", "psi", "psi-off", "unseen", "shorter", "ratio-within", "both"])
def test_drift_findings(figures: dict[str, float], limits: dict[str, float | None],
                        expected: list[tuple[str, str]]) -> None:
    from reconciler.core.drift import findings
    from reconciler.core.spec import DriftThresholds

    found = findings([drifted(2, **figures)], DriftThresholds.model_validate(limits))
    assert [(f.figure, f.reason) for f in found] == expected
    assert all(f.iteration == "it-2" and f.dataset == "train-2" for f in found)


def test_drift_is_the_newest_measurement_and_a_condition() -> None:
    from reconciler.core.drift import findings
    from reconciler.core.spec import DriftThresholds

    limits = DriftThresholds()
    records = [drifted(2, label_psi=0.9), drifted(3, label_psi=0.01)]
    assert findings(records[:1], limits) and not findings(records, limits)  # it cleared
    assert not findings(records[:1], None)  # nothing declared, nothing raised
    seen = observed("v1", [promoted("v1", 1)], it(1, trained="v1", trained_f1=0.8), records[0])
    found = conditions(None, Plan("fw"), seen, declared=True, promotion=None, drift=limits)
    assert [c.type for c in found] == [ConditionType.READY, ConditionType.DATA_DRIFT]
    assert found[-1].reason == "LabelShift"
    assert "train-2 in iteration it-2: label PSI 0.900 > 0.250" in found[-1].message
    assert "DataDrift:" in one_line(found)
