"""The watch daemon's dispatch rules as a table: what a pass found -> start a job, or wait.

:func:`decide` is pure (the loop measures dataset ages, the lock and the clock), so these rows
run in microseconds: no daemon, no worker process, no watchdog.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest

from reconciler.core.actions import Iterate, Pin, Plan
from reconciler.core.backoff import backoff
from reconciler.core.state import IterationRecord, IterationStatus, Observed
from reconciler.daemon.dispatch import (
    Facts,
    FlywheelState,
    JobKind,
    Start,
    Wait,
    WatchOptions,
    decide,
    plan_key,
)
from reconciler.daemon.status import Counters, status_document

NOW = 1000.0  # monotonic
OPTIONS = WatchOptions(settle=1.0, max_iterations=1, busy_retry=2.0, failure_backoff=5.0,
                       resync=300.0)


def record(status: IterationStatus, iteration_id: str = "20260101T000000Z") -> IterationRecord:
    return IterationRecord(flywheel_name="fw", flywheel_iteration_id=iteration_id, status=status,
                           creation_time=1.0, input_digest="d" * 64)


ITERATE = Plan("fw", actions=(Iterate("d" * 64, ("train",), 1, "new data: train"),))
PROMOTE = Plan("fw", actions=(Pin("3", "pinned to version 3 in the spec"),))
NOTHING = Plan("fw", notes=("up to date",))
SUSPENDED = Plan("fw", notes=("suspended",), suspended=True)
OTHER_ITERATE = Plan("fw", actions=(Iterate("e" * 64, ("test",), 1, "new data: test"),))

EMPTY = Observed()
DONE = Observed(iterations=(record(IterationStatus.COMPLETED),))
CRASHED = Observed(iterations=(record(IterationStatus.COMPLETED, "20260101T000000Z"),
                               record(IterationStatus.TRAINING, "20260102T000000Z")))

CALM = FlywheelState()
#: Two jobs failed in a row, the last one 2 s ago: the back-off (5 s, 10 s) ends at NOW + 8.
FAILING = FlywheelState(failures=2, not_before=NOW + 8.0)
FAILED_ON_ITERATE = replace(FAILING, failed_plan=plan_key(ITERATE))
BACKED_OFF = FlywheelState(failures=2, not_before=NOW - 0.5)

SETTLED = Facts(dataset_age=5.0)

START_ITERATION = Start(JobKind.ITERATION, "new data: train")
START_PROMOTION = Start(JobKind.PROMOTION, "pinned to version 3 in the spec")
SLOTS_FULL = Wait("1 iteration(s) running; at most 1", None)
BUSY = Wait("another reconciler is working on it", NOW + 2.0)
BACKING_OFF = Wait("the last 2 job(s) failed; trying again in 8s", NOW + 8.0)

ROWS = [
    # id, plan, observed, memory, facts, options, expected
    ("nothing planned -> nothing", NOTHING, DONE, CALM, SETTLED, OPTIONS, None),
    ("nothing planned, no records -> nothing", NOTHING, EMPTY, CALM, SETTLED, OPTIONS, None),
    ("suspended, even with an unfinished iteration -> nothing (reconcile would skip it)",
     SUSPENDED, CRASHED, CALM, SETTLED, OPTIONS, None),
    ("suspended with a stale history -> nothing", SUSPENDED, DONE, CALM,
     replace(SETTLED, history_stale=True), OPTIONS, None),
    ("our own job runs for it -> nothing (the pass after it looks again)", ITERATE, DONE, CALM,
     Facts(running=True), OPTIONS, None),
    ("iteration due, data settled -> Start(ITERATION)", ITERATE, DONE, CALM, SETTLED, OPTIONS,
     START_ITERATION),
    ("promotion only -> Start(PROMOTION)", PROMOTE, DONE, CALM, SETTLED, OPTIONS,
     START_PROMOTION),
    ("an unfinished iteration, nothing planned -> Start(ITERATION) to finish it", NOTHING,
     CRASHED, CALM, SETTLED, OPTIONS,
     Start(JobKind.ITERATION, "finish an interrupted iteration")),
    ("an unfinished iteration and a pin -> Start(ITERATION) (recovery runs the pipeline)",
     PROMOTE, CRASHED, CALM, SETTLED, OPTIONS,
     Start(JobKind.ITERATION, "pinned to version 3 in the spec")),
    ("stale F1 history only -> Start(PROMOTION) to rewrite it", NOTHING, DONE, CALM,
     replace(SETTLED, history_stale=True), OPTIONS,
     Start(JobKind.PROMOTION, "rewrite the F1 history, which misses a completed iteration")),
    ("settle not reached -> Wait until the files are still", ITERATE, DONE, CALM,
     Facts(dataset_age=0.25), OPTIONS,
     Wait("dataset files changed less than 1s ago", NOW + 0.75)),
    ("a file changed just now -> Wait the whole settle time", ITERATE, DONE, CALM,
     Facts(dataset_age=0.0), OPTIONS, Wait("dataset files changed less than 1s ago", NOW + 1.0)),
    ("settle reached exactly -> Start", ITERATE, DONE, CALM, Facts(dataset_age=1.0), OPTIONS,
     START_ITERATION),
    ("no dataset file readable -> Start (the job reports it, with the spec line)", ITERATE, DONE,
     CALM, Facts(dataset_age=None), OPTIONS, START_ITERATION),
    ("settle does not hold a promotion", PROMOTE, DONE, CALM, Facts(dataset_age=0.0), OPTIONS,
     START_PROMOTION),
    ("settle holds finishing an unfinished iteration", NOTHING, CRASHED, CALM,
     Facts(dataset_age=0.5), OPTIONS, Wait("dataset files changed less than 1s ago", NOW + 0.5)),
    ("iteration slots full -> Wait for a job to end (no timer)", ITERATE, DONE, CALM,
     replace(SETTLED, running_iterations=1), OPTIONS, SLOTS_FULL),
    ("slots full does not hold a promotion", PROMOTE, DONE, CALM,
     replace(SETTLED, running_iterations=1), OPTIONS, START_PROMOTION),
    ("--max-iterations 2, one running -> Start", ITERATE, DONE, CALM,
     replace(SETTLED, running_iterations=1), replace(OPTIONS, max_iterations=2),
     START_ITERATION),
    ("--max-iterations 2, two running -> Wait", ITERATE, DONE, CALM,
     replace(SETTLED, running_iterations=2), replace(OPTIONS, max_iterations=2),
     Wait("2 iteration(s) running; at most 2", None)),
    ("another reconciler holds the flywheel -> Wait busy_retry", ITERATE, DONE, CALM,
     replace(SETTLED, lock_free=False), OPTIONS, BUSY),
    ("the lock holds a promotion too", PROMOTE, DONE, CALM, replace(SETTLED, lock_free=False),
     OPTIONS, BUSY),
    ("failure back-off, first look since the failure -> Wait until not_before", ITERATE, DONE,
     FAILING, SETTLED, OPTIONS, BACKING_OFF),
    ("failure back-off on the plan that failed -> Wait", ITERATE, DONE, FAILED_ON_ITERATE,
     SETTLED, OPTIONS, BACKING_OFF),
    ("failure back-off over -> Start", ITERATE, DONE, BACKED_OFF, SETTLED, OPTIONS,
     START_ITERATION),
    ("a different plan than the one that failed -> Start at once (an edit fixed it)",
     OTHER_ITERATE, DONE, FAILED_ON_ITERATE, SETTLED, OPTIONS,
     Start(JobKind.ITERATION, "new data: test")),
    ("failure back-off is said before settle, slots and the lock", ITERATE, DONE, FAILING,
     Facts(dataset_age=0.0, running_iterations=1, lock_free=False), OPTIONS, BACKING_OFF),
    ("settle is said before full slots", ITERATE, DONE, CALM,
     Facts(dataset_age=0.5, running_iterations=1), OPTIONS,
     Wait("dataset files changed less than 1s ago", NOW + 0.5)),
    ("full slots are said before the lock", ITERATE, DONE, CALM,
     replace(SETTLED, running_iterations=1, lock_free=False), OPTIONS, SLOTS_FULL),
]


@pytest.mark.parametrize(("plan", "observed", "memory", "facts", "options", "expected"),
                         [row[1:] for row in ROWS], ids=[row[0] for row in ROWS])
def test_decide(plan: Plan, observed: Observed, memory: FlywheelState, facts: Facts,
                options: WatchOptions, expected: Start | Wait | None) -> None:
    before = replace(memory)
    decision = decide(plan, observed, memory, NOW, facts, options)
    if isinstance(expected, Wait) and expected.at is not None:
        assert isinstance(decision, Wait), decision
        assert decision.reason == expected.reason
        assert decision.at == pytest.approx(expected.at)
    else:
        assert decision == expected
    assert memory == before  # decide only reads what the daemon remembers


def test_the_failure_back_off_doubles_up_to_the_resync_and_a_success_ends_it() -> None:
    memory = FlywheelState()
    waits = []
    for _ in range(8):
        memory.job_failed(NOW, OPTIONS)
        waits.append(memory.not_before - NOW)
    assert waits == [5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 300.0, 300.0]
    assert memory.failures == 8 and memory.failed_plan is None
    memory.seen(ITERATE)
    memory.seen(OTHER_ITERATE)  # only the first plan looked at after the failure is the failed one
    assert memory.failed_plan == plan_key(ITERATE)
    memory.job_succeeded()
    assert (memory.failures, memory.failed_plan) == (0, None)
    memory.seen(OTHER_ITERATE)
    assert memory.failed_plan is None  # nothing failed: nothing to remember


@pytest.mark.parametrize(("attempt", "base", "cap", "expected"), [
    (1, 5.0, 300.0, 5.0),
    (2, 5.0, 300.0, 10.0),
    (4, 5.0, 300.0, 40.0),
    (7, 5.0, 300.0, 300.0),  # 320 capped
    (10**6, 5.0, 300.0, 300.0),  # no overflow
    (3, 60.0, math.inf, 240.0),  # the planner's shape: BACKOFF_SECONDS * 2 ** (attempt - 1)
    (5000, 60.0, math.inf, math.inf),
])
def test_backoff(attempt: int, base: float, cap: float, expected: float) -> None:
    assert backoff(attempt, base, cap) == expected


def test_backoff_refuses_attempt_zero() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        backoff(0, 5.0, 300.0)


def test_job_kinds_keep_their_log_and_status_values() -> None:
    assert [str(k) for k in JobKind] == ["ITERATION", "PROMOTION"]
    assert JobKind.ITERATION.lower() == "iteration"  # the `kind=` of job.started/job.finished
    assert JobKind("PROMOTION") is JobKind.PROMOTION


def test_observed_unfinished_is_any_iteration_not_terminal() -> None:
    assert not EMPTY.unfinished and not DONE.unfinished and CRASHED.unfinished
    for status in IterationStatus:
        assert Observed(iterations=(record(status),)).unfinished is (not status.terminal)


def test_status_document_lists_only_the_flywheels_that_wait() -> None:
    counters = Counters(passes=3, jobs=2, iterations=1, promotions=1, failures=1)
    document = status_document(
        pid=42, root=Path("/repo"), state="IDLE", started=100.0, now=160.0, running=[],
        spare=None, flywheels={"b": FlywheelState(waiting="x"), "a": FlywheelState()},
        errors={"specs/c.yaml": "bad"}, last_pass={"Trigger": "start"}, resync_in=-5.0,
        counters=counters)
    assert document == {
        "Pid": 42, "Repository": "/repo", "State": "IDLE", "StartTime": 100.0,
        "UpdatedTime": 160.0, "Running": [], "WarmWorkerPid": None, "Waiting": {"b": "x"},
        "Errors": [{"Where": "specs/c.yaml", "Message": "bad"}],
        "LastPass": {"Trigger": "start"}, "NextResyncTime": 160.0,
        "Counters": {"Passes": 3, "Jobs": 2, "Iterations": 1, "Promotions": 1,
                     "FailedJobs": 1},
    }
