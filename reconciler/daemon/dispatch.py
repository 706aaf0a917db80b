"""The daemon's dispatch rules: given what a pass found, start a job for a flywheel or wait.

:func:`decide` is pure. Everything it needs that comes from the world — how long ago the
flywheel's dataset files last changed, whether its lock is free, whether its F1 history misses
a row, the clock — is measured by the loop and passed in as :class:`Facts`, so the rules can be
read, and tested, as a table:

- nothing to do (no action planned, no unfinished iteration, the history up to date), or the
  flywheel is suspended: nothing — the same rule as ``reconcile()``'s, so that no job is started
  that would do nothing;
- a job of ours already runs for the flywheel: nothing (the pass after it ends looks again);
- the last jobs for this same plan failed: wait out the back-off;
- an iteration whose dataset files changed less than ``settle`` ago: wait until they are still;
- an iteration while ``max_iterations`` already run: wait for one to end;
- another reconciler holds the flywheel: look again in ``busy_retry``;
- otherwise start an ITERATION job if anything iterates (a planned or an unfinished iteration),
  else a PROMOTION job (promotions, pins, write-backs, a history repair: no pipeline runs).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from reconciler.core.actions import Iterate, Plan
from reconciler.core.backoff import backoff
from reconciler.core.state import Observed


@dataclass(frozen=True)
class WatchOptions:
    quiet: float = 0.25  # seconds without events that end a burst
    max_delay: float = 2.0  # a burst is acted on after this long even if events keep coming
    settle: float = 1.0  # dataset files must be unchanged this long before an iteration
    resync: float = 300.0  # full pass even without events
    grace: float = 60.0  # on shutdown, how long running stages get to finish
    max_iterations: int = 1  # iterations at once (DVC serialises them anyway)
    busy_retry: float = 2.0  # look again this soon when another reconciler holds a flywheel
    failure_backoff: float = 5.0  # first pause after a failed job, doubled up to ``resync``


class JobKind(StrEnum):
    """What a job does: an iteration runs the pipeline (and takes a slot), a promotion does not."""

    ITERATION = "ITERATION"
    PROMOTION = "PROMOTION"


@dataclass
class FlywheelState:
    """What the daemon remembers about one flywheel between passes."""

    waiting: str | None = None  # why the work it needs has not started (logged on change)
    failures: int = 0  # failed jobs in a row for the same plan
    failed_plan: str | None = None  # the plan they failed on (None: the one seen next)
    not_before: float = 0.0  # monotonic time before which no new job starts

    def job_failed(self, now: float, options: WatchOptions) -> None:
        self.failures += 1
        self.not_before = now + backoff(self.failures, options.failure_backoff, options.resync)
        self.failed_plan = None  # the next pass records which plan failed

    def job_succeeded(self) -> None:
        self.failures = 0
        self.failed_plan = None

    def seen(self, plan: Plan) -> None:
        """A pass looked at ``plan`` for work: after a failure, the first one is the failed plan."""
        if self.failures and self.failed_plan is None:
            self.failed_plan = plan_key(plan)


@dataclass(frozen=True)
class Facts:
    """What the loop measured about one flywheel for :func:`decide`."""

    #: A job of ours is running for this flywheel.
    running: bool = False
    #: ITERATION jobs running now, for any flywheel.
    running_iterations: int = 0
    #: Seconds since the newest of the flywheel's dataset files changed (mtime or ctime); None
    #: when none could be read (the job reports that, with the spec line).
    dataset_age: float | None = None
    #: ``f1_history.csv`` misses a completed iteration (a crash before its write).
    history_stale: bool = False
    #: Nobody else holds the flywheel's lock.
    lock_free: bool = True


@dataclass(frozen=True)
class Start:
    kind: JobKind
    reason: str  # for the ``job.started`` line


@dataclass(frozen=True)
class Wait:
    reason: str  # for the ``waiting`` line and the status file
    at: float | None  # monotonic time to look again; None: a job ending wakes the loop


def plan_key(plan: Plan) -> str:
    """Identifies a plan, so that a failure's back-off applies to that plan only."""
    return repr(plan.actions)


def decide(plan: Plan, observed: Observed, memory: FlywheelState, now: float, facts: Facts,
           options: WatchOptions) -> Start | Wait | None:
    """Start a job for this flywheel, wait (and why, and until when), or None: nothing to do now.

    ``now`` is monotonic, like ``memory.not_before`` and the ``Wait.at`` returned.
    """
    if plan.suspended or not (plan.actions or observed.unfinished or facts.history_stale):
        return None  # what a reconcile would leave alone (a suspended flywheel, even unfinished)
    if facts.running:
        return None  # the pass after it ends looks again, so an edit made meanwhile is not lost
    iterate = observed.unfinished or any(isinstance(a, Iterate) for a in plan.actions)
    if memory.failures and memory.failed_plan in (None, plan_key(plan)) \
            and now < memory.not_before:
        return Wait(f"the last {memory.failures} job(s) failed; trying again in "
                    f"{memory.not_before - now:.0f}s", memory.not_before)
    if iterate:
        unsettled = 0.0 if facts.dataset_age is None else options.settle - facts.dataset_age
        if unsettled > 0:
            return Wait(f"dataset files changed less than {options.settle:g}s ago",
                        now + unsettled)
        if facts.running_iterations >= options.max_iterations:
            return Wait(f"{facts.running_iterations} iteration(s) running; at most "
                        f"{options.max_iterations}", None)
    if not facts.lock_free:
        return Wait("another reconciler is working on it", now + options.busy_retry)
    return Start(JobKind.ITERATION if iterate else JobKind.PROMOTION, _reason(plan, observed))


def _reason(plan: Plan, observed: Observed) -> str:
    planned = "; ".join(a.reason for a in plan.actions)
    if planned:
        return planned
    if observed.unfinished:
        return "finish an interrupted iteration"
    return "rewrite the F1 history, which misses a completed iteration"
