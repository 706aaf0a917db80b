"""The watch daemon: file events and timers in, one reconcile job per flywheel out.

The main thread runs the loop and owns all state; watchdog's thread only feeds the
:class:`~reconciler.daemon.triggers.Trigger`, and each worker's reader thread only reports
lines and pokes the loop when its child exits.

A *pass* reads every spec and the lake and asks the planner what each flywheel needs (the same
read-only path as ``flywheel list``; nothing is written). A flywheel that needs work gets a
worker — a child process running the one ``reconcile()`` for that flywheel — unless one is
running already (the pass after it ends looks again, so an edit made during an iteration is
never lost), its dataset files are still being written (``settle``), the iteration slots are
full, or another reconciler holds the flywheel (those rules are :func:`.dispatch.decide`, pure;
this loop measures what they need). Every pass is level-triggered: it looks at the state, not at
which events arrived, so a missed event costs nothing and the periodic resync is only a safety
net.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from reconciler import limits
from reconciler.adapters.dataset_files import resolve_inside
from reconciler.adapters.lake import Lake
from reconciler.core.conditions import ConditionType
from reconciler.daemon.dispatch import Facts, FlywheelState, JobKind, Start, WatchOptions, decide
from reconciler.daemon.status import Counters, single_instance, status_document, write_status
from reconciler.daemon.triggers import ChangeFilter, ChangeHandler, Trigger, Wake
from reconciler.daemon.watching import FolderWatches, route_watchdog_logs
from reconciler.daemon.workers import EXPECTED_EXITS, Fields, Worker
from reconciler.runtime.logs import LineWriter
from reconciler.runtime.queries import FlywheelView, all_views
from reconciler.runtime.stopping import StopRequest, graceful_signals

__all__ = ["JobKind", "WatchDaemon", "WatchOptions"]

#: How long a worker that was cut short (SIGINT) gets before it is killed.
KILL_AFTER = 10.0
#: After a pass failed unexpectedly, the next one comes this soon.
PASS_RETRY = 5.0


class WatchDaemon:
    """The loop: it owns every piece of state below; the other threads only poke it."""

    def __init__(self, root: Path, options: WatchOptions, lines: LineWriter, *,
                 job_args: list[str] | None = None, stop: StopRequest | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.root = root.resolve()
        self.clock = clock  # wall-clock time (records, retry times); waits use time.monotonic
        self.options = options
        self.lines = lines
        self.job_args = list(job_args or [])  # passed on to each `flywheel reconcile`
        self.stop = stop or StopRequest()
        self.lake = Lake(self.root)  # read only: the history check and the lock probe
        self.trigger = Trigger(quiet=options.quiet, max_delay=options.max_delay)
        self.watches = FolderWatches(self.root, ChangeHandler(ChangeFilter(self.root),
                                                              self.trigger),
                                     log=self.log, resync=options.resync)
        self.force = threading.Event()  # a second signal: cut the grace period short
        self.workers: dict[str, Worker] = {}  # flywheel -> its running job
        self.spare: Worker | None = None  # started ahead, waiting for its flywheel
        self.finished: list[Worker] = []  # ended jobs, handed over by their reader threads
        self.flywheels: dict[str, FlywheelState] = {}
        self.errors: dict[str, str] = {}  # flywheel or file -> the error last logged
        self.timers: list[float] = []  # monotonic times at which to pass again
        self.counters = Counters()
        self.started = self.clock()
        self.state = "STARTING"
        self.last_pass: dict[str, Any] = {}
        self.next_resync = 0.0  # monotonic
        self._status_lock = threading.Lock()  # guards `finished` and the status file

    # running ------------------------------------------------------------------------------

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT; 0 after a clean shutdown.

        A badly set limit variable is refused before serving: every job would fail on it.
        """
        limits.check()
        with single_instance(self.root), graceful_signals(self.stop, force=self._force,
                                                          wake=self.trigger.poke):
            route_watchdog_logs(self.lines)
            self.watches.start()
            self.log("watch.started", repository=str(self.root), pid=os.getpid(),
                     debounce=self.options.quiet, resync=self.options.resync,
                     max_iterations=self.options.max_iterations)
            try:
                self._serve()
            finally:
                self._shutdown()
        return 0

    def _serve(self) -> None:
        reasons = ["start"]
        self.next_resync = time.monotonic() + self.options.resync
        while not self.stop.is_set():
            try:
                self._pass(reasons)
            except Exception as exc:  # a bug or the OS failing us: report, keep serving
                self.log("error", flywheel="-", error=f"internal: {type(exc).__name__}: {exc}; "
                         f"trying again in {PASS_RETRY:g}s")
                self._timer_at(time.monotonic() + PASS_RETRY)
            wake = self.trigger.wait(self._next_deadline())
            if self.stop.is_set():
                break
            reasons = self._reasons(wake)

    def _next_deadline(self) -> float:
        return min([self.next_resync, *self.timers])

    def _reasons(self, wake: Wake) -> list[str]:
        now = time.monotonic()
        reasons = [p for p in wake.pokes if p != "signal"]
        if wake.burst is not None:
            burst = wake.burst
            self.log("changed", paths=", ".join(burst.paths), events=burst.count)
            reasons.append("changed: " + ", ".join(burst.paths[:3])
                           + (f" (+{len(burst.paths) - 3})" if len(burst.paths) > 3 else ""))
        due = [t for t in self.timers if t <= now]
        if due:
            self.timers = [t for t in self.timers if t > now]
            reasons.append("timer")
        if now >= self.next_resync:
            self.next_resync = now + self.options.resync
            reasons.append("resync")
        return reasons or ["wake"]

    # one pass -----------------------------------------------------------------------------

    def _pass(self, reasons: list[str]) -> None:
        started = time.monotonic()
        self.state = "RECONCILING"
        self._reap()
        self.watches.rewatch()
        views = all_views(self.root)
        self._report_errors(views)
        dispatched = [name for v in views if v.spec_file and v.error is None
                      if (name := self._consider(v)) is not None]
        self.counters.passes += 1
        self.last_pass = {"Time": round(self.clock(), 3), "Trigger": "; ".join(reasons),
                          "Flywheels": sum(1 for v in views if v.spec_file),
                          "Errors": sum(1 for v in views if v.error),
                          "Started": dispatched,
                          **{kind.value: {v.name: c.message for v in views
                                          if (c := v.holding(kind)) is not None}
                             for kind in (ConditionType.DEGRADED, ConditionType.DATA_DRIFT)},
                          "Seconds": round(time.monotonic() - started, 3)}
        if dispatched or reasons != ["timer"]:  # quiet re-checks that start nothing stay quiet
            self.log("pass", trigger="; ".join(reasons), flywheels=self.last_pass["Flywheels"],
                     errors=self.last_pass["Errors"], started=", ".join(dispatched) or "none",
                     running=", ".join(sorted(self.workers)) or "none",
                     seconds=self.last_pass["Seconds"])
        self._keep_a_spare()
        self._settle_state()

    def _consider(self, view: FlywheelView) -> str | None:
        """Start a job for this flywheel if it needs one and may have one now (see
        :mod:`.dispatch`); its name if one started."""
        assert view.plan is not None and view.spec_file is not None
        name, plan = view.name, view.plan
        memory = self.flywheels.setdefault(name, FlywheelState())
        if plan.retry_at is not None:
            self._timer_at(time.monotonic() + max(plan.retry_at - self.clock(), 0.0))
        facts = self._facts(view)
        now = time.monotonic()
        decision = decide(plan, view.observed, memory, now, facts, self.options)
        if isinstance(decision, Start) and not self._lock_free(name):
            # probed only now, as the last rule: a flywheel that waits anyway is not locked
            decision = decide(plan, view.observed, memory, now,
                              replace(facts, lock_free=False), self.options)
        if decision is None:
            memory.waiting = None  # (already None while its job runs: cleared at the start)
            return None
        memory.seen(plan)
        if isinstance(decision, Start):
            memory.waiting = None
            self._start(name, decision)
            return name
        if decision.at is not None:
            self._timer_at(decision.at)
        if decision.reason != memory.waiting:
            self.log("waiting", flywheel=name, reason=decision.reason)
        memory.waiting = decision.reason
        return None

    def _facts(self, view: FlywheelView) -> Facts:
        """What :func:`~.dispatch.decide` needs to know from the world (the lock aside)."""
        assert view.plan is not None
        if view.name in self.workers:
            return Facts(running=True)
        return Facts(running_iterations=sum(1 for w in self.workers.values()
                                            if w.kind is JobKind.ITERATION),
                     dataset_age=self._dataset_age(view),
                     # read only when it can decide anything (with nothing else to do); without
                     # records there is no history to write: never a job for it
                     history_stale=not (view.plan.actions or view.observed.unfinished)
                     and bool(view.observed.iterations)
                     and self.lake.history_stale(view.name, view.observed.iterations))

    def _dataset_age(self, view: FlywheelView) -> float | None:
        """Seconds since the flywheel's newest dataset file changed; None if none can be read."""
        assert view.spec_file is not None
        newest: float | None = None
        for dataset in view.spec_file.spec.datasets:
            try:
                stat = resolve_inside(self.root, dataset.path).stat()
            except (OSError, ValueError):
                continue  # the child reports it, with the spec line
            newest = max(newest or 0.0, stat.st_mtime, stat.st_ctime)
        return None if newest is None else self.clock() - newest

    def _lock_free(self, name: str) -> bool:
        with self.lake.try_flywheel_lock(name) as free:
            return free

    def _start(self, name: str, job: Start) -> None:
        worker, self.spare = self.spare, None
        if worker is None or not worker.running or not worker.assign(name, job.kind):
            worker = self._new_worker()
            worker.assign(name, job.kind)
        self.workers[name] = worker
        self.counters.jobs += 1
        self.log("job.started", flywheel=name, kind=job.kind.lower(), pid=worker.pid,
                 reason=job.reason)

    def _new_worker(self) -> Worker:
        return Worker(self.root, emit=self.lines.write, on_change=lambda _: self._write_status(),
                      on_exit=self._exited, extra_args=self.job_args)

    def _keep_a_spare(self) -> None:
        """Have a warm worker waiting, started while nothing else runs (no CPU contention)."""
        if self.stop.is_set() or self.workers:
            return
        if self.spare is not None and self.spare.running:
            return
        self.spare = self._new_worker()

    def _exited(self, worker: Worker) -> None:
        """From the worker's reader thread: hand the worker to the loop and wake it."""
        if not worker.assigned:
            return  # a spare that was discarded or died; the next pass starts another
        with self._status_lock:
            self.finished.append(worker)
        self.trigger.poke(f"job ended: {worker.name}")

    def _reap(self) -> None:
        with self._status_lock:
            finished, self.finished = self.finished, []
        for worker in finished:
            self.workers.pop(worker.name, None)
            memory = self.flywheels.setdefault(worker.name, FlywheelState())
            summary = worker.summary or {}
            self.counters.iterations += summary.get("iterations", 0)
            self.counters.promotions += summary.get("promotions", 0)
            if worker.failed:
                self.counters.failures += 1
                memory.job_failed(time.monotonic(), self.options)
            else:
                memory.job_succeeded()
            if worker.busy_elsewhere:
                self._timer_at(time.monotonic() + self.options.busy_retry)
            kind = worker.kind.lower() if worker.kind else ""  # reaped workers have one
            self.log("job.finished", flywheel=worker.name, kind=kind,
                     exit=worker.returncode, seconds=round(self.clock() - worker.started, 1),
                     **({"crashed": True} if worker.returncode not in EXPECTED_EXITS else {}))

    def _report_errors(self, views: list[FlywheelView]) -> None:
        """Log each distinct error once, and say when it has gone."""
        current = {(v.error.file or v.name) if v.spec_file is None else v.name: str(v.error)
                   for v in views if v.error is not None}
        for key, message in current.items():
            if self.errors.get(key) != message:
                self.log("error", flywheel=key, error=message)
        for key in set(self.errors) - set(current):
            self.log("recovered", flywheel=key)
        self.errors = current

    def _timer_at(self, when: float) -> None:
        if all(abs(when - t) > 0.05 for t in self.timers):
            self.timers.append(when)

    # stopping -----------------------------------------------------------------------------

    def _force(self, name: str) -> None:
        self.force.set()
        self.trigger.poke("signal")

    def _shutdown(self) -> None:
        self.state = "STOPPING"
        running = sorted(self.workers)
        self.log("stopping", reason=self.stop.reason or "error", running=", ".join(running)
                 or "none", grace=self.options.grace)
        self.watches.stop()
        if self.spare is not None:
            self.spare.discard()
        for worker in self.workers.values():
            worker.request_stop()
        self._write_status()
        self._wait_for_workers(time.monotonic() + self.options.grace)
        if self._alive():
            self.log("stopping", reason="grace period over" if not self.force.is_set()
                     else "second signal", cutting_short=", ".join(w.name for w in
                                                                  self._alive()))
            for worker in self._alive():
                worker.interrupt()
            self._wait_for_workers(time.monotonic() + KILL_AFTER, forced=True)
            for worker in self._alive():
                worker.kill()
            self._wait_for_workers(time.monotonic() + KILL_AFTER, forced=True)
        self._reap()
        self.watches.join(timeout=5)
        self.state = "STOPPED"
        self._write_status()
        self.log("stopped", jobs=self.counters.jobs, iterations=self.counters.iterations,
                 promotions=self.counters.promotions)

    def _alive(self) -> list[Worker]:
        return [w for w in self.workers.values() if w.running]

    def _wait_for_workers(self, deadline: float, *, forced: bool = False) -> None:
        while self._alive() and time.monotonic() < deadline:
            if self.force.is_set() and not forced:
                return
            self.trigger.wait(min(deadline, time.monotonic() + 0.5))

    # reporting ----------------------------------------------------------------------------

    def log(self, event: str, **fields: Any) -> None:
        self.lines.write({"event": event, **fields})

    def _settle_state(self) -> None:
        if any(w.kind is JobKind.ITERATION for w in self.workers.values()):
            self.state = "ITERATING"
        elif self.workers:
            self.state = "PROMOTING"
        else:
            self.state = "IDLE"
        self._write_status()

    def _write_status(self) -> None:
        with self._status_lock:
            write_status(self.root, self.status())

    def status(self) -> Fields:
        return status_document(pid=os.getpid(), root=self.root, state=self.state,
                               started=self.started, now=self.clock(),
                               running=self.workers.values(), spare=self.spare,
                               flywheels=self.flywheels, errors=self.errors,
                               last_pass=self.last_pass,
                               resync_in=self.next_resync - time.monotonic(),
                               counters=self.counters)
