"""The watch daemon: file events and timers in, one reconcile job per flywheel out.

The main thread runs the loop and owns all state; watchdog's thread only feeds the
:class:`~reconciler.daemon.triggers.Trigger`, and each worker's reader thread only reports
lines and pokes the loop when its child exits.

A *pass* reads every spec and the lake and asks the planner what each flywheel needs (the same
read-only path as ``flywheel list``; nothing is written). A flywheel that needs work gets a
worker — a child process running the one ``reconcile()`` for that flywheel — unless one is
running already (the pass after it ends looks again, so an edit made during an iteration is
never lost), its dataset files are still being written (``settle``), the iteration slots are
full, or another reconciler holds the flywheel. Every pass is level-triggered: it looks at the
state, not at which events arrived, so a missed event costs nothing and the periodic resync is
only a safety net.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from watchdog.observers import Observer
from watchdog.observers.api import ObservedWatch

from reconciler import limits
from reconciler.adapters.datasets import resolve_inside
from reconciler.adapters.lake import Lake
from reconciler.core.layout import DATA_DIR, REQUESTS_DIR, SPECS_DIR
from reconciler.core.planner import Iterate
from reconciler.daemon.status import single_instance, write_status
from reconciler.daemon.triggers import ChangeFilter, ChangeHandler, Trigger, Wake
from reconciler.daemon.workers import Fields, Worker
from reconciler.runtime.logs import LineWriter
from reconciler.runtime.queries import FlywheelView, all_views
from reconciler.runtime.stopping import StopRequest, graceful_signals

#: How long a worker that was cut short (SIGINT) gets before it is killed.
KILL_AFTER = 10.0
#: After a pass failed unexpectedly, the next one comes this soon.
PASS_RETRY = 5.0


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


@dataclass
class Counters:
    passes: int = 0
    jobs: int = 0
    iterations: int = 0
    promotions: int = 0
    failures: int = 0


@dataclass
class FlywheelState:
    """What the daemon remembers about one flywheel between passes."""

    waiting: str | None = None  # why the work it needs has not started (logged on change)
    failures: int = 0  # failed jobs in a row for the same plan
    failed_plan: str | None = None
    not_before: float = 0.0  # monotonic time before which no new job starts


@dataclass
class WatchDaemon:
    root: Path
    options: WatchOptions
    lines: LineWriter
    job_args: list[str] = field(default_factory=list)  # passed on to each `flywheel reconcile`
    trigger: Trigger = field(init=False)
    stop: StopRequest = field(default_factory=StopRequest)

    def __post_init__(self) -> None:
        self.root = self.root.resolve()
        self.trigger = Trigger(quiet=self.options.quiet, max_delay=self.options.max_delay)
        self.force = threading.Event()
        self.workers: dict[str, Worker] = {}
        self.spare: Worker | None = None  # started ahead, waiting for its flywheel
        self.finished: list[Worker] = []
        self.flywheels: dict[str, FlywheelState] = {}
        self.errors: dict[str, str] = {}  # flywheel or file -> the error last logged
        self.timers: list[float] = []  # monotonic times at which to pass again
        self.counters = Counters()
        self.started = time.time()
        self.state = "STARTING"
        self.last_pass: dict[str, Any] = {}
        self.next_resync = 0.0
        self._status_lock = threading.Lock()
        self._watches: dict[str, tuple[int, ObservedWatch]] = {}

    # running ------------------------------------------------------------------------------

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT; 0 after a clean shutdown.

        A badly set limit variable is refused before serving: every job would fail on it.
        """
        limits.check()
        with single_instance(self.root), graceful_signals(self.stop, force=self._force,
                                                          wake=self.trigger.poke):
            _route_watchdog_logs(self.lines)
            self.observer = Observer()
            self.handler = ChangeHandler(ChangeFilter(self.root), self.trigger)
            self.observer.schedule(self.handler, str(self.root), recursive=False)
            (self.root / REQUESTS_DIR).mkdir(parents=True, exist_ok=True)
            self._rewatch()
            self.observer.start()
            self.log("watch.started", repository=str(self.root), pid=os.getpid(),
                     debounce=self.options.quiet, resync=self.options.resync)
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
        self._rewatch()
        views = all_views(self.root)
        self._report_errors(views)
        dispatched = [name for v in views if v.spec_file and v.error is None
                      if (name := self._consider(v)) is not None]
        self.counters.passes += 1
        self.last_pass = {"Time": round(time.time(), 3), "Trigger": "; ".join(reasons),
                          "Flywheels": sum(1 for v in views if v.spec_file),
                          "Errors": sum(1 for v in views if v.error),
                          "Started": dispatched,
                          "Seconds": round(time.monotonic() - started, 3)}
        if dispatched or reasons != ["timer"]:  # quiet re-checks that start nothing stay quiet
            self.log("pass", trigger="; ".join(reasons), flywheels=self.last_pass["Flywheels"],
                     errors=self.last_pass["Errors"], started=", ".join(dispatched) or "none",
                     running=", ".join(sorted(self.workers)) or "none",
                     seconds=self.last_pass["Seconds"])
        self._keep_a_spare()
        self._settle_state()

    def _consider(self, view: FlywheelView) -> str | None:
        """Start a job for this flywheel if it needs one and may have one now."""
        assert view.plan is not None
        name = view.name
        memory = self.flywheels.setdefault(name, FlywheelState())
        if view.plan.retry_at is not None:
            self._timer_at(time.monotonic() + max(view.plan.retry_at - time.time(), 0.0))
        unfinished = any(not it.status.terminal for it in view.observed.iterations)
        if not view.plan.actions and not unfinished:
            memory.waiting = None
            return None
        if name in self.workers:
            return None  # the pass after it ends looks again
        iterate = any(isinstance(a, Iterate) for a in view.plan.actions) or unfinished
        why_wait = self._why_wait(view, memory, iterate)
        if why_wait:
            if why_wait != memory.waiting:
                self.log("waiting", flywheel=name, reason=why_wait)
            memory.waiting = why_wait
            return None
        memory.waiting = None
        self._start(name, "ITERATION" if iterate else "PROMOTION", view)
        return name

    def _why_wait(self, view: FlywheelView, memory: FlywheelState, iterate: bool) -> str | None:
        now = time.monotonic()
        plan_key = repr(view.plan.actions if view.plan else ())
        if memory.failures and memory.failed_plan is None:
            memory.failed_plan = plan_key
        if memory.failures and memory.failed_plan == plan_key and now < memory.not_before:
            self._timer_at(memory.not_before)
            return (f"the last {memory.failures} job(s) failed; trying again in "
                    f"{memory.not_before - now:.0f}s")
        if iterate:
            young = self._unsettled_for(view)
            if young > 0:
                self._timer_at(now + young)
                return f"dataset files changed less than {self.options.settle:g}s ago"
            running = sum(1 for w in self.workers.values() if w.kind == "ITERATION")
            if running >= self.options.max_iterations:
                return f"{running} iteration(s) running; at most {self.options.max_iterations}"
        with Lake(self.root).try_flywheel_lock(view.name) as free:
            if not free:
                self._timer_at(now + self.options.busy_retry)
                return "another reconciler is working on it"
        return None

    def _unsettled_for(self, view: FlywheelView) -> float:
        """Seconds until the flywheel's newest dataset file has been still for ``settle``."""
        assert view.spec_file is not None
        newest = 0.0
        for dataset in view.spec_file.spec.datasets:
            try:
                stat = resolve_inside(self.root, dataset.path).stat()
            except (OSError, ValueError):
                continue  # the child reports it, with the spec line
            newest = max(newest, stat.st_mtime, stat.st_ctime)
        return max(newest + self.options.settle - time.time(), 0.0)

    def _start(self, name: str, kind: str, view: FlywheelView) -> None:
        worker, self.spare = self.spare, None
        if worker is None or not worker.running or not worker.assign(name, kind):
            worker = self._new_worker()
            worker.assign(name, kind)
        self.workers[name] = worker
        self.counters.jobs += 1
        actions = "; ".join(getattr(a, "reason", "") for a in view.plan.actions) \
            if view.plan else ""
        self.log("job.started", flywheel=name, kind=kind.lower(), pid=worker.pid,
                 reason=actions or "finish an interrupted iteration")

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
                memory.failures += 1
                backoff = min(self.options.failure_backoff * 2 ** (memory.failures - 1),
                              self.options.resync)
                memory.not_before = time.monotonic() + backoff
                memory.failed_plan = None  # the next pass records which plan failed
            else:
                memory.failures = 0
                memory.failed_plan = None
            if worker.busy_elsewhere:
                self._timer_at(time.monotonic() + self.options.busy_retry)
            self.log("job.finished", flywheel=worker.name, kind=worker.kind.lower(),
                     exit=worker.returncode, seconds=round(time.time() - worker.started, 1),
                     **({"crashed": True} if worker.returncode not in (0, 1, 130) else {}))

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

    # watching -----------------------------------------------------------------------------

    def _rewatch(self) -> None:
        """Watch ``specs/``, ``data/`` and the request folder, again if one was created or
        replaced."""
        for folder in (SPECS_DIR, DATA_DIR, REQUESTS_DIR):
            path = self.root / folder
            try:
                inode = path.stat().st_ino if path.is_dir() else None
            except OSError:
                inode = None
            known = self._watches.get(folder)
            if known and known[0] == inode:
                continue
            if known:
                with contextlib.suppress(KeyError, OSError):
                    self.observer.unschedule(known[1])
                del self._watches[folder]
            if inode is None:
                continue
            try:
                watch = self.observer.schedule(self.handler, str(path), recursive=True)
            except OSError as exc:  # e.g. inotify's watch limit (fs.inotify.max_user_watches)
                self.log("error", flywheel=f"{folder}/", error=f"cannot watch {folder}/: "
                         f"{exc.strerror or exc}; relying on the resync every "
                         f"{self.options.resync:g}s until it can")
                continue
            self._watches[folder] = (inode, watch)

    # stopping -----------------------------------------------------------------------------

    def _force(self, name: str) -> None:
        self.force.set()
        self.trigger.poke("signal")

    def _shutdown(self) -> None:
        self.state = "STOPPING"
        running = sorted(self.workers)
        self.log("stopping", reason=self.stop.reason or "error", running=", ".join(running)
                 or "none", grace=self.options.grace)
        self.observer.stop()
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
        self.observer.join(timeout=5)
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
        if any(w.kind == "ITERATION" for w in self.workers.values()):
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
        now_mono, now = time.monotonic(), time.time()
        return {
            "Pid": os.getpid(),
            "Repository": str(self.root),
            "State": self.state,
            "StartTime": round(self.started, 3),
            "UpdatedTime": round(now, 3),
            "Running": [w.describe() for w in self.workers.values()],
            "WarmWorkerPid": self.spare.pid if self.spare and self.spare.running else None,
            "Waiting": {name: m.waiting for name, m in sorted(self.flywheels.items())
                        if m.waiting},
            "Errors": [{"Where": k, "Message": v} for k, v in sorted(self.errors.items())],
            "LastPass": self.last_pass,
            "NextResyncTime": round(now + max(self.next_resync - now_mono, 0.0), 3),
            "Counters": {"Passes": self.counters.passes, "Jobs": self.counters.jobs,
                         "Iterations": self.counters.iterations,
                         "Promotions": self.counters.promotions,
                         "FailedJobs": self.counters.failures},
        }


class _LogLines(logging.Handler):
    """watchdog's own warnings, as the daemon's log lines (not stray text in a JSON log)."""

    def __init__(self, lines: LineWriter) -> None:
        super().__init__(logging.WARNING)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.write({"event": "watcher.warning", "message": record.getMessage()})


def _route_watchdog_logs(lines: LineWriter) -> None:
    logger = logging.getLogger("watchdog")
    logger.handlers = [_LogLines(lines)]
    logger.propagate = False
