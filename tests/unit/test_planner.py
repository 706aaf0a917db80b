"""Tests for the planner: spec (desired) + lake records (observed) -> actions with reasons."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.core.actions import Acknowledge, ApplyDecision, Blocked, Iterate, Pin, Unpin
from reconciler.core.planner import (
    BACKOFF_SECONDS,
    MAX_ATTEMPTS,
    NO_TRAIN_DATA,
    input_digest,
    plan,
)
from reconciler.core.spec import FlywheelSpec
from reconciler.core.state import (
    DatasetRef,
    Decision,
    FlywheelStatus,
    IterationRecord,
    IterationStatus,
    ModelVersionRecord,
    Observed,
    PromotionRecord,
)

MD5_A = "a" * 32
MD5_B = "b" * 32
MD5_C = "c" * 32
T0 = 1_700_000_000.0
IT1 = "20240101T000000Z"
IT2 = "20240102T000000Z"
IT3 = "20240103T000000Z"


def make_spec(*, datasets: tuple[tuple[str, str, str], ...] = (("d1", "TRAIN", "data/d1.csv"),),
              **extra: Any) -> FlywheelSpec:
    data: dict[str, Any] = {
        "name": "demo",
        "task": {"mode": "MULTI_CLASS", "labels": ["spam", "ham"]},
        "datasets": [{"name": n, "type": t, "path": p} for n, t, p in datasets],
        "recipe": {"algorithm": "linear-svm", "C": 1.0},
    }
    data.update(extra)
    return FlywheelSpec.model_validate(data)


SPEC = make_spec()
TWO = (("d1", "TRAIN", "data/d1.csv"), ("d2", "TRAIN", "data/d2.csv"))


def refs(spec: FlywheelSpec, md5s: dict[str, str]) -> list[DatasetRef]:
    return [DatasetRef(name=d.name, type=d.type.value, path=d.path, md5=md5s[d.name])
            for d in spec.datasets]


def iteration(iteration_id: str, spec: FlywheelSpec, md5s: dict[str, str], *,
              status: IterationStatus = IterationStatus.COMPLETED, attempt: int = 1,
              retryable: bool = False, end: float | None = T0 + 100, message: str = "",
              trained: str | None = "v1", decision: Decision | None = None) -> IterationRecord:
    completed = status is IterationStatus.COMPLETED
    return IterationRecord(
        flywheel_name=spec.name,
        flywheel_iteration_id=iteration_id,
        status=status,
        message=message,
        creation_time=T0,
        end_time=end,
        input_digest=input_digest(spec, md5s),
        attempt=attempt,
        retryable=retryable,
        datasets=refs(spec, md5s),
        trained_model_version=trained if completed else None,
        decision=decision,
    )


def version(name: str, iteration_id: str = IT1) -> ModelVersionRecord:
    return ModelVersionRecord(
        version=name, flywheel_iteration_id=iteration_id, creation_time=T0, file=f"{name}.skops",
        sha256="0" * 64, size=1, mode="MULTI_CLASS", labels=["spam", "ham"], recipe={},
        datasets=[], trained_model_metrics={"AverageF1Score": 0.8},
    )


def status(active: str | None = None, *, pinned: bool = False,
           promotions: tuple[PromotionRecord, ...] = ()) -> FlywheelStatus:
    return FlywheelStatus(flywheel_name="demo", creation_time=T0, active_model=active,
                          pinned=pinned, promotions=list(promotions))


def observed(*iterations: IterationRecord, versions: tuple[str, ...] = (),
             active: str | None = None, pinned: bool = False,
             promotions: tuple[PromotionRecord, ...] = ()) -> Observed:
    return Observed(
        status=status(active, pinned=pinned, promotions=promotions),
        iterations=tuple(iterations),
        versions={v: version(v) for v in versions},
    )


def only(actions: tuple, cls: type) -> Any:
    assert len(actions) == 1 and isinstance(actions[0], cls), actions
    return actions[0]


# --------------------------------------------------------------------------------------------
# input_digest


@pytest.mark.parametrize(
    ("other", "other_md5s", "same"),
    [
        (make_spec(datasets=(("renamed", "TRAIN", "data/d1.csv"),)), {"renamed": MD5_A}, True),
        (make_spec(datasets=(("d1", "TRAIN", "data/moved/d1.csv"),)), {"d1": MD5_A}, True),
        (make_spec(description="now described"), {"d1": MD5_A}, True),
        (make_spec(activeModel="v1"), {"d1": MD5_A}, True),
        (make_spec(promotion={"minF1": 0.9}), {"d1": MD5_A}, True),
        (make_spec(), {"d1": MD5_B}, False),
        (make_spec(recipe={"algorithm": "linear-svm", "C": 2.0}), {"d1": MD5_A}, False),
        (make_spec(recipe={"algorithm": "complement-nb"}), {"d1": MD5_A}, False),
        (make_spec(recipe={"algorithm": "linear-svm", "C": 1.0, "seed": 1}), {"d1": MD5_A},
         False),
        (make_spec(task={"mode": "MULTI_CLASS", "labels": ["spam", "ham", "eggs"]}),
         {"d1": MD5_A}, False),
        (make_spec(task={"mode": "MULTI_LABEL", "labels": ["spam", "ham"]}), {"d1": MD5_A},
         False),
    ],
    ids=[
        "dataset-renamed-same-content",
        "dataset-moved-same-content",
        "description-changed",
        "pin-changed",
        "promotion-policy-changed",
        "content-changed",
        "recipe-C-changed",
        "algorithm-changed",
        "seed-changed",
        "label-added",
        "mode-changed",
    ],
)
def test_input_digest_covers_what_determines_the_model(other: FlywheelSpec,
                                                       other_md5s: dict[str, str],
                                                       same: bool) -> None:
    base = input_digest(SPEC, {"d1": MD5_A})
    assert (input_digest(other, other_md5s) == base) is same


def test_input_digest_ignores_dataset_order_but_not_dataset_type() -> None:
    md5s = {"d1": MD5_A, "d2": MD5_B}
    forward = input_digest(make_spec(datasets=TWO), md5s)
    backward = input_digest(make_spec(datasets=TWO[::-1]), md5s)
    as_test = input_digest(make_spec(datasets=(TWO[0], ("d2", "TEST", "data/d2.csv"))), md5s)
    assert forward == backward
    assert forward != as_test
    assert len(forward) == 64 and int(forward, 16) >= 0


# --------------------------------------------------------------------------------------------
# Iterations


def test_first_iteration() -> None:
    result = plan(SPEC, Observed(), {"d1": MD5_A}, now=T0)
    action = only(result.actions, Iterate)
    assert action == Iterate(input_digest(SPEC, {"d1": MD5_A}), ("d1",), 1, "first iteration")
    assert result.blocked is None
    assert not result.up_to_date
    assert result.flywheel == "demo"


@pytest.mark.parametrize("datasets", [(), (("t1", "TEST", "data/t1.csv"),)],
                         ids=["no-datasets", "test-only"])
def test_a_flywheel_without_train_data_waits_for_it(datasets: tuple) -> None:
    spec = make_spec(datasets=datasets)
    md5s = {d[0]: MD5_A for d in datasets}
    result = plan(spec, Observed(), md5s, now=T0)
    assert result.actions == ()
    assert result.notes == (NO_TRAIN_DATA,)
    asked = plan(spec, Observed(), md5s, now=T0, request="20240101T000000Z-abcdef")
    assert asked.actions == (Acknowledge("20240101T000000Z-abcdef", NO_TRAIN_DATA),)


def test_a_request_triggered_flywheel_waits_to_be_asked() -> None:
    spec = make_spec(trigger="request")
    md5s = {"d1": MD5_A}
    waiting = plan(spec, Observed(), md5s, now=T0)
    assert waiting.actions == ()
    assert waiting.notes == ("first iteration: waits for a request (trigger: request; "
                             "StartFlywheelIteration or `flywheel iterate`)",)
    asked = plan(spec, Observed(), md5s, now=T0, request="20240101T000000Z-abcdef")
    action = only(asked.actions, Iterate)
    assert action.request == "20240101T000000Z-abcdef" and action.attempt == 1


def test_a_request_triggered_flywheel_still_resumes_and_retries_on_its_own() -> None:
    spec = make_spec(trigger="request")
    md5s = {"d1": MD5_A}
    stopped = iteration(IT1, spec, md5s, status=IterationStatus.STOPPED, retryable=True)
    resumed = plan(spec, observed(stopped), md5s, now=T0 + 10)
    assert only(resumed.actions, Iterate).reason.startswith("resume iteration")


def test_up_to_date() -> None:
    md5s = {"d1": MD5_A}
    result = plan(SPEC, observed(iteration(IT1, SPEC, md5s), versions=("v1",), active="v1"),
                  md5s, now=T0 + 10_000)
    assert result.actions == ()
    assert result.up_to_date
    assert result.notes == (f"up to date (iteration {IT1})",)


def test_renamed_dataset_with_same_content_is_up_to_date() -> None:
    old = iteration(IT1, SPEC, {"d1": MD5_A})
    renamed = make_spec(datasets=(("d1-2024", "TRAIN", "data/d1.csv"),))
    result = plan(renamed, observed(old, versions=("v1",), active="v1"), {"d1-2024": MD5_A},
                  now=T0)
    assert result.up_to_date, result


def test_new_dataset_iterates_naming_it() -> None:
    old = iteration(IT1, SPEC, {"d1": MD5_A})
    grown = make_spec(datasets=TWO)
    md5s = {"d1": MD5_A, "d2": MD5_B}
    result = plan(grown, observed(old, versions=("v1",), active="v1"), md5s, now=T0)
    action = only(result.actions, Iterate)
    assert action.new_datasets == ("d2",)
    assert action.reason == "new datasets: d2"
    assert action.attempt == 1
    assert action.digest == input_digest(grown, md5s)


def test_recipe_change_iterates_with_no_new_dataset() -> None:
    md5s = {"d1": MD5_A}
    old = iteration(IT1, SPEC, md5s)
    tuned = make_spec(recipe={"algorithm": "linear-svm", "C": 2.0})
    action = only(plan(tuned, observed(old, versions=("v1",), active="v1"), md5s, T0).actions,
                  Iterate)
    assert action.new_datasets == ()
    assert "recipe" in action.reason
    assert action.digest != old.input_digest


def test_in_progress_iteration_is_left_alone() -> None:
    md5s = {"d1": MD5_A}
    running = iteration(IT1, SPEC, md5s, status=IterationStatus.TRAINING, end=None)
    result = plan(SPEC, observed(running), md5s, now=T0 + 10**6)
    assert result.actions == ()
    assert result.notes == (f"iteration {IT1} is TRAINING",)


# --------------------------------------------------------------------------------------------
# Blocked


@pytest.mark.parametrize("index", [0, 1], ids=["first-dataset", "second-dataset"])
def test_dataset_changed_after_consumption_is_blocked(index: int) -> None:
    spec = make_spec(datasets=TWO)
    consumed = {"d1": MD5_A, "d2": MD5_B}
    now_md5s = dict(consumed)
    name = ("d1", "d2")[index]
    now_md5s[name] = MD5_C
    result = plan(spec, observed(iteration(IT1, spec, consumed), versions=("v1",), active="v1"),
                  now_md5s, now=T0)
    assert result.actions == ()
    assert isinstance(result.blocked, Blocked)
    assert result.blocked.loc == ("datasets", index, "path")
    assert consumed[name] in result.blocked.reason
    assert MD5_C in result.blocked.reason
    assert repr(name) in result.blocked.reason
    assert IT1 in result.blocked.reason
    assert not result.up_to_date


def test_dataset_changed_in_a_failed_iteration_only_is_not_blocked() -> None:
    md5s = {"d1": MD5_A}
    failed = iteration(IT1, SPEC, md5s, status=IterationStatus.FAILED, retryable=False)
    result = plan(SPEC, observed(failed), {"d1": MD5_B}, now=T0)
    assert result.blocked is None
    assert only(result.actions, Iterate).attempt == 1


@pytest.mark.parametrize(
    ("versions", "known"),
    [((), "none yet"), (("v1", "v2", "v10"), "v1, v2, v10")],
    ids=["no-versions", "three-versions"],
)
def test_pin_to_a_missing_version_is_blocked(versions: tuple[str, ...], known: str) -> None:
    spec = make_spec(activeModel="v3")
    result = plan(spec, observed(versions=versions), {"d1": MD5_A}, now=T0)
    assert result.actions == ()
    assert result.blocked is not None
    assert result.blocked.loc == ("activeModel",)
    assert "v3 does not exist" in result.blocked.reason
    assert known in result.blocked.reason


# --------------------------------------------------------------------------------------------
# Pin / Unpin


@pytest.mark.parametrize(
    ("active", "pinned", "expected"),
    [
        (None, False, Pin),
        ("v2", False, Pin),
        ("v2", True, Pin),
        ("v1", False, Pin),
        ("v1", True, None),
    ],
    ids=["nothing-active", "other-active", "other-pinned", "same-active-not-pinned",
         "already-applied"],
)
def test_pin_to_an_existing_version(active: str | None, pinned: bool, expected) -> None:
    spec = make_spec(activeModel="v1")
    md5s = {"d1": MD5_A}
    done = iteration(IT1, spec, md5s)
    result = plan(spec, observed(done, versions=("v1", "v2"), active=active, pinned=pinned),
                  md5s, now=T0)
    if expected is None:
        assert result.actions == ()
        assert result.up_to_date
    else:
        action = only(result.actions, Pin)
        assert action.version == "v1"
        assert "v1" in action.reason


def test_pin_removed_unpins() -> None:
    md5s = {"d1": MD5_A}
    result = plan(SPEC, observed(iteration(IT1, SPEC, md5s), versions=("v1",), active="v1",
                                 pinned=True), md5s, now=T0)
    action = only(result.actions, Unpin)
    assert "v1" in action.reason


POLICY = {"minF1": 0.5, "minImprovement": 0.01}


def scored(iteration_id: str, trained: str, trained_f1: float, active_f1: float | None,
           spec: FlywheelSpec) -> IterationRecord:
    """A completed iteration whose new version scored ``trained_f1`` against ``active_f1``."""
    return iteration(iteration_id, spec, {"d1": MD5_A}, trained=trained,
                     decision=Decision(promote=False, reason="as recorded",
                                       trained_f1=trained_f1, active_f1=active_f1))


@pytest.mark.parametrize(
    ("history", "promotion", "pinned_to", "expected", "said"),
    [
        # v2 beat the pinned v1 in its own iteration: the policy makes it active at once.
        ([("v1", 0.70, None), ("v2", 0.80, 0.70)], POLICY, "v1", "v2", "makes v2 active"),
        # v2 was worse than v1 on the same data: the policy keeps v1.
        ([("v1", 0.70, None), ("v2", 0.65, 0.70)], POLICY, "v1", None, "keeps v1"),
        # a rollback pin to v1 after the policy had promoted v3: unpinning returns to v3.
        ([("v1", 0.70, None), ("v2", 0.75, 0.70), ("v3", 0.80, 0.75)], POLICY, "v1", "v3",
         "makes v3 active"),
        # the newest version beat the pin but not by minImprovement: the older winner, v2.
        ([("v1", 0.70, None), ("v2", 0.75, 0.70), ("v3", 0.755, 0.75)], POLICY, "v3", "v2",
         "makes v2 active"),
        # no policy: the pinned version stays, and the reason says why.
        ([("v1", 0.70, None), ("v2", 0.80, 0.70)], None, "v1", None, "no promotion policy"),
        # minF1 never met: the pinned version stays; the reason gives the best F1 and minF1.
        ([("v1", 0.40, None), ("v2", 0.45, 0.40)], POLICY, "v1", None,
         "best F1 is 0.4500 (v2), below minF1 0.5000"),
    ],
    ids=["newer-beat-the-pin", "pin-was-better", "rollback-undone", "improvement-too-small",
         "no-policy", "min-f1-never-met"],
)
def test_unpinning_hands_the_choice_to_the_policy_at_once(
    history: list[tuple[str, float, float | None]], promotion: dict | None, pinned_to: str,
    expected: str | None, said: str,
) -> None:
    spec = make_spec(**({"promotion": promotion} if promotion else {}))
    records = [scored(f"2024010{i + 1}T000000Z", version, trained, active, spec)
               for i, (version, trained, active) in enumerate(history)]
    versions = tuple(version for version, _, _ in history)
    result = plan(spec, observed(*records, versions=versions, active=pinned_to, pinned=True),
                  {"d1": MD5_A}, now=T0)
    action = only(result.actions, Unpin)
    assert action.version == expected
    assert said in action.reason
    if expected:
        assert action.iteration_id == records[versions.index(expected)].flywheel_iteration_id


def test_unpinned_and_not_pinned_needs_nothing() -> None:
    md5s = {"d1": MD5_A}
    result = plan(SPEC, observed(iteration(IT1, SPEC, md5s), versions=("v1",), active="v1"),
                  md5s, now=T0)
    assert not any(isinstance(a, (Pin, Unpin)) for a in result.actions)


# --------------------------------------------------------------------------------------------
# Retries


def failed(attempt: int, *, retryable: bool = True, end: float | None = T0 + 100,
           status: IterationStatus = IterationStatus.FAILED) -> IterationRecord:
    return iteration(f"2024010{attempt}T000000Z", SPEC, {"d1": MD5_A}, status=status,
                     attempt=attempt, retryable=retryable, end=end, message="lock held")


@pytest.mark.parametrize(
    ("attempt", "elapsed", "retry"),
    [
        (1, BACKOFF_SECONDS - 1, False),
        (1, BACKOFF_SECONDS, True),
        (2, 2 * BACKOFF_SECONDS - 1, False),
        (2, 2 * BACKOFF_SECONDS, True),
        (3, 4 * BACKOFF_SECONDS - 1, False),
        (3, 4 * BACKOFF_SECONDS, True),
    ],
    ids=["1-before-backoff", "1-at-backoff", "2-before-backoff", "2-at-backoff",
         "3-before-backoff", "3-at-backoff"],
)
def test_retryable_failure_respects_exponential_backoff(attempt: int, elapsed: float,
                                                        retry: bool) -> None:
    last = failed(attempt)
    result = plan(SPEC, observed(last), {"d1": MD5_A}, now=last.end_time + elapsed)
    if retry:
        action = only(result.actions, Iterate)
        assert action.attempt == attempt + 1
        assert action.reason == f"retry {attempt + 1} after: lock held"
        assert action.digest == last.input_digest
        assert result.notes == ()
    else:
        assert result.actions == ()
        assert result.notes == (f"iteration {last.flywheel_iteration_id} FAILED: lock held "
                                "(retry in 1s)",)


def test_backoff_counts_from_creation_time_without_end_time() -> None:
    last = failed(1, end=None)
    assert plan(SPEC, observed(last), {"d1": MD5_A}, now=T0 + BACKOFF_SECONDS - 1).actions == ()
    assert only(plan(SPEC, observed(last), {"d1": MD5_A}, now=T0 + BACKOFF_SECONDS).actions,
                Iterate).attempt == 2


def test_retry_uses_the_latest_attempt() -> None:
    first, second = failed(1), failed(2)
    result = plan(SPEC, observed(first, second), {"d1": MD5_A}, now=T0 + 10**6)
    assert only(result.actions, Iterate).attempt == 3


def test_gives_up_after_max_attempts() -> None:
    last = failed(MAX_ATTEMPTS)
    result = plan(SPEC, observed(last), {"d1": MD5_A}, now=T0 + 10**9)
    assert result.actions == ()
    assert result.notes[0].endswith(f"(gave up after {MAX_ATTEMPTS} attempts)")


@pytest.mark.parametrize("state", [IterationStatus.FAILED, IterationStatus.STOPPED],
                         ids=["failed", "stopped"])
def test_non_retryable_failure_is_not_retried(state: IterationStatus) -> None:
    last = failed(1, retryable=False, status=state)
    result = plan(SPEC, observed(last), {"d1": MD5_A}, now=T0 + 10**9)
    assert result.actions == ()
    assert len(result.notes) == 1
    assert "not retried" in result.notes[0]
    assert last.flywheel_iteration_id in result.notes[0]
    assert state.value in result.notes[0]


def test_a_stopped_iteration_resumes_at_once_without_using_an_attempt() -> None:
    last = failed(2, status=IterationStatus.STOPPED)
    result = plan(SPEC, observed(last), {"d1": MD5_A}, now=T0 + 1)
    action = only(result.actions, Iterate)
    assert action.attempt == 2
    assert action.reason.startswith(f"resume iteration {last.flywheel_iteration_id}")
    assert result.retry_at is None


def test_a_waiting_retry_says_when_it_is_due() -> None:
    last = failed(1)
    result = plan(SPEC, observed(last), {"d1": MD5_A}, now=T0 + 1)
    assert result.actions == ()
    assert result.retry_at == (last.end_time or last.creation_time) + BACKOFF_SECONDS


def test_a_spec_change_after_giving_up_starts_afresh() -> None:
    last = failed(MAX_ATTEMPTS)
    tuned = make_spec(recipe={"algorithm": "linear-svm", "C": 5.0})
    action = only(plan(tuned, observed(last), {"d1": MD5_A}, now=T0).actions, Iterate)
    assert action.attempt == 1


# --------------------------------------------------------------------------------------------
# Pending decisions


PROMOTE = Decision(promote=True, reason="F1 0.9 >= active 0.8", trained_f1=0.9, active_f1=0.8)


def decided(iteration_id: str = IT2, *, decision: Decision = PROMOTE) -> IterationRecord:
    return iteration(iteration_id, SPEC, {"d1": MD5_A}, trained="v2", decision=decision)


def policy_promotion(iteration_id: str) -> PromotionRecord:
    return PromotionRecord(version="v2", previous_version="v1", time=T0 + 200, kind="POLICY",
                           reason="better", flywheel_iteration_id=iteration_id)


def test_pending_decision_is_applied() -> None:
    result = plan(SPEC, observed(decided(), versions=("v1", "v2"), active="v1"), {"d1": MD5_A},
                  now=T0)
    action = only(result.actions, ApplyDecision)
    assert action == ApplyDecision(IT2, "v2", PROMOTE.reason)


@pytest.mark.parametrize(
    ("active", "promotions", "decision"),
    [
        ("v2", (), PROMOTE),
        ("v1", (policy_promotion(IT2),), PROMOTE),
        ("v1", (), Decision(promote=False, reason="not better")),
    ],
    ids=["already-active", "promotion-recorded", "decided-not-to-promote"],
)
def test_no_pending_decision(active: str, promotions: tuple, decision: Decision) -> None:
    result = plan(SPEC, observed(decided(decision=decision), versions=("v1", "v2"),
                                 active=active, promotions=promotions), {"d1": MD5_A}, now=T0)
    assert not any(isinstance(a, ApplyDecision) for a in result.actions)


def test_pending_decision_is_not_applied_when_pinned() -> None:
    pinned = make_spec(activeModel="v1")
    result = plan(pinned, observed(decided(), versions=("v1", "v2"), active="v1", pinned=True),
                  {"d1": MD5_A}, now=T0)
    assert not any(isinstance(a, ApplyDecision) for a in result.actions)
    assert result.up_to_date


def test_only_the_latest_completed_decision_counts() -> None:
    older = decided(IT1)
    newer = iteration(IT3, SPEC, {"d1": MD5_A}, trained="v3",
                      decision=Decision(promote=False, reason="not better"))
    result = plan(SPEC, observed(older, newer, versions=("v1", "v2", "v3"), active="v1"),
                  {"d1": MD5_A}, now=T0)
    assert not any(isinstance(a, ApplyDecision) for a in result.actions)
