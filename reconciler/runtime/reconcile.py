"""``reconcile()``: the one loop behind the CLI, the watch daemon and the git hooks.

For each spec: fingerprint its datasets (stat-cached hashes), read the lake, ask the pure planner
what to do, and execute the actions under the flywheel's lock. Nothing on the no-change path
imports DVC or scikit-learn. One flywheel's error never stops the others.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path

from reconciler.adapters import git
from reconciler.adapters.dataset_files import DatasetFile, HashCache, fingerprint
from reconciler.adapters.lake import Lake
from reconciler.adapters.loader import SpecFile, load_spec, load_specs
from reconciler.adapters.requests import read_request
from reconciler.core.actions import Plan
from reconciler.core.planner import plan
from reconciler.core.state import (
    FlywheelStatus,
    IterationRecord,
    Observed,
    PromotionRecord,
    SourceRevision,
)
from reconciler.errors import (
    FlywheelError,
    StateError,
    Stopped,
    TransientError,
    refused_operation,
)
from reconciler.runtime import actions, alerts
from reconciler.runtime.alerts import Announcer
from reconciler.runtime.events import Event, Failed, Planned, Promoted, Reporter, ignore
from reconciler.runtime.executor import DvcExecutor, IterationExecutor, slots_of
from reconciler.runtime.recovery import recover
from reconciler.runtime.stopping import NEVER, StopRequest
from reconciler.runtime.store import LakeStore
from reconciler.runtime.writeback import GitOps

#: Rounds of plan -> apply in one reconcile (an action can enable another: a promotion, the
#: write-back of the new active model), like Flux's requeue; the rest waits for the next one.
MAX_ROUNDS = 3


@dataclass
class FlywheelResult:
    name: str
    spec_file: str
    plan: Plan | None = None
    iteration: IterationRecord | None = None
    promotions: list[PromotionRecord] = field(default_factory=list)
    error: FlywheelError | None = None
    busy: bool = False
    stopped: bool = False


@dataclass
class ReconcileResult:
    flywheels: list[FlywheelResult] = field(default_factory=list)
    errors: list[FlywheelError] = field(default_factory=list)  # spec files that did not load

    @property
    def ok(self) -> bool:
        return not self.errors and all(f.error is None for f in self.flywheels)

    @property
    def all_errors(self) -> list[FlywheelError]:
        return self.errors + [f.error for f in self.flywheels if f.error is not None]

    @property
    def changed(self) -> bool:
        return any(f.iteration or f.promotions for f in self.flywheels)

    @property
    def stopped(self) -> bool:
        """A stop was asked for and some work was set aside (resumed by the next reconcile)."""
        return any(f.stopped for f in self.flywheels)


@dataclass(frozen=True)
class Inputs:
    """A flywheel's desired and observed state, read without side effects."""

    spec_file: SpecFile
    md5s: dict[str, str]
    observed: Observed
    files: list[DatasetFile]
    request: str | None = None


class Lineage:
    """The git revision records are made from, looked up once per reconcile and only if needed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._looked = False
        self._revision: git.Revision | None = None

    def source(self, spec_file: SpecFile) -> SourceRevision:
        if not self._looked:
            self._looked = True
            try:
                self._revision = git.revision(self.root)
            except git.GitError:
                self._revision = None
        revision = self._revision
        paths = [spec_file.path, *(d.path for d in spec_file.spec.datasets)]
        return SourceRevision(commit=revision.commit if revision else None,
                              dirty=bool(revision and revision.dirty(*paths)),
                              reconciler_version=reconciler_version())


@dataclass
class Context:
    """What every step of one reconcile shares."""

    root: Path
    lake: LakeStore
    cache: HashCache
    clock: Callable[[], float]
    report: Reporter
    stop: StopRequest
    gitops: GitOps
    lineage: Lineage
    executor: IterationExecutor
    #: Who posts the alarm's webhooks (in the background, outliving the reconcile).
    announcer: Announcer = field(default_factory=lambda: alerts.ANNOUNCER)


def reconcile(root: Path, *, report: Reporter = ignore, only: set[str] | None = None,
              clock: Callable[[], float] = time.time, stop: StopRequest = NEVER,
              gitops: GitOps | None = None, executor: IterationExecutor | None = None,
              lake: LakeStore | None = None, cache: HashCache | None = None,
              announcer: Announcer | None = None) -> ReconcileResult:
    """Bring every flywheel (or those named in ``only``) to its spec's desired state.

    Once ``stop`` is raised no new work starts: the flywheels not reached yet are reported as
    stopped, and a running iteration stops after its current stage. ``gitops`` says how
    write-backs reach git; ``executor`` runs iterations' pipelines (default:
    :class:`~reconciler.runtime.executor.DvcExecutor`); ``lake`` holds the records (default:
    :class:`~reconciler.adapters.lake.Lake` on ``root``); ``cache`` the dataset hashes (default:
    the repository's hash cache file, read now); ``announcer`` posts the degradation alarm's
    webhooks (default: the process's, :data:`~reconciler.runtime.alerts.ANNOUNCER`).
    """
    root = root.resolve()
    ctx = Context(root, lake if lake is not None else Lake(root), cache or HashCache(root), clock,
                  report, stop, gitops or GitOps(), Lineage(root), executor or DvcExecutor(),
                  announcer or alerts.ANNOUNCER)
    specs, errors = load_specs(root)
    result = ReconcileResult(errors=list(errors))
    for error in errors:
        report(Failed(error.flywheel, error))
    chosen = [s for s in specs if only is None or s.spec.name in only]
    try:
        workers = min(slots_of(ctx.executor), len(chosen)) if len(chosen) > 1 else 1
        if workers > 1:
            result.flywheels.extend(_in_parallel(ctx, chosen, workers))
        else:
            result.flywheels.extend(_reconcile_next(ctx, spec_file) for spec_file in chosen)
    finally:
        ctx.cache.save()
    return result


def _reconcile_next(ctx: Context, spec_file: SpecFile) -> FlywheelResult:
    """One flywheel's turn: reconciled, or set aside once a stop was asked for."""
    if ctx.stop.is_set():
        return FlywheelResult(spec_file.spec.name, spec_file.path, stopped=True)
    outcome = _reconcile_one(ctx, spec_file)
    if outcome.error is not None:
        ctx.report(Failed(outcome.name, outcome.error))
    return outcome


def _in_parallel(ctx: Context, chosen: list[SpecFile], workers: int) -> list[FlywheelResult]:
    """Flywheels reconciled by ``workers`` threads, results in spec order. Each flywheel is
    under its own lock as always; DVC's and git's writes under theirs (file locks, which
    exclude threads as they exclude processes); events reach ``report`` one at a time."""
    guard = threading.Lock()
    report = ctx.report

    def serialised(event: Event) -> None:
        with guard:
            report(event)

    here = replace(ctx, report=serialised)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="reconcile") as pool:
        return list(pool.map(lambda spec_file: _reconcile_next(here, spec_file), chosen))


def read_inputs(root: Path, lake: LakeStore, cache: HashCache, spec_file: SpecFile) -> Inputs:
    files = fingerprint(spec_file.spec, spec_file.path, spec_file.line_of, root, cache)
    md5s = {f.dataset.name: f.md5 for f in files}
    return Inputs(spec_file, md5s, lake.observe(spec_file.spec.name), files,
                  read_request(root, spec_file.spec.name))


def leftovers(lake: LakeStore, name: str, observed: Observed) -> bool:
    """Work a crash left with nothing planned: an unfinished iteration, or records whose F1
    history misses a completed iteration (a crash before its write). The watch daemon asks the
    same (``daemon/dispatch.py``), so that it starts no job a reconcile would not act on."""
    return observed.unfinished or (bool(observed.iterations)
                                   and lake.history_stale(name, observed.iterations))


def plan_for(inputs: Inputs, now: float) -> Plan:
    """The planner's answer, with a blocked plan turned into an error naming the spec line."""
    result = plan(inputs.spec_file.spec, inputs.observed, inputs.md5s, now,
                  policy_managed=inputs.spec_file.policy_managed, request=inputs.request)
    if result.blocked:
        raise inputs.spec_file.located(StateError, result.blocked.reason, *result.blocked.loc)
    return result


def _reconcile_one(ctx: Context, spec_file: SpecFile) -> FlywheelResult:
    name = spec_file.spec.name
    outcome = FlywheelResult(name=name, spec_file=spec_file.path)
    try:
        inputs = read_inputs(ctx.root, ctx.lake, ctx.cache, spec_file)
        ctx.lake.remove_stale_temp_files(name)  # left by a writer killed mid-write
        first = plan_for(inputs, ctx.clock())
        if (first.up_to_date and not leftovers(ctx.lake, name, inputs.observed)) \
                or first.suspended:
            if first.up_to_date and inputs.observed.status is None:
                _adopt(ctx, name)
            outcome.plan = first
            ctx.report(Planned(name, first))
            return outcome
        with ctx.lake.try_flywheel_lock(name) as locked:
            if not locked:
                outcome.busy = True  # another reconciler is working on this flywheel now
                outcome.plan = first
                return outcome
            _act(ctx, spec_file, outcome)
    except Stopped:
        outcome.stopped = True
    except FlywheelError as exc:
        exc.flywheel = exc.flywheel or name
        outcome.error = exc
    except (OSError, sqlite3.Error) as exc:
        # The system failed a read or write (a full disk, a file-size limit, an I/O error), here
        # or inside DVC (its state databases are SQLite): one line, never a traceback.
        outcome.error = TransientError(refused_operation(exc), flywheel=name)
    except MemoryError:  # past a dataset's reading (which names the file): one line all the same
        outcome.error = TransientError("out of memory while reconciling: the process could not "
                                       "allocate more memory (raise its memory limit or free "
                                       "memory, then retry)", flywheel=name)
    return outcome


def _adopt(ctx: Context, name: str) -> None:
    """A flywheel with nothing to do yet (no data) gets its first status all the same: it is
    ACTIVE from its first reconcile on, with its creation time, as Comprehend's are."""
    with ctx.lake.try_flywheel_lock(name) as locked:
        if locked and ctx.lake.observe(name).status is None:
            ctx.lake.write_status(FlywheelStatus(flywheel_name=name, creation_time=ctx.clock()))


def _act(ctx: Context, spec_file: SpecFile, outcome: FlywheelResult) -> None:
    """Under the flywheel lock: settle leftovers, plan again on fresh state, execute.

    Then plan again and apply what is new, for at most :data:`MAX_ROUNDS` rounds: an action can
    enable another (a promotion, the write-back of the new active model). Each kind of action
    runs at most once per reconcile: one the plan still asks for after it ran (a write-back
    held by uncommitted changes) waits for the next reconcile instead of running in a loop.
    Rounds end once the spec file no longer says what they were planned from (a write-back
    edited it): the next reconcile plans from the spec as it is then.
    """
    name = spec_file.spec.name

    def on_event(event: Event) -> None:
        if isinstance(event, Promoted):
            outcome.promotions.append(event.promotion)
        ctx.report(event)

    here = replace(ctx, report=on_event)
    inputs = read_inputs(ctx.root, ctx.lake, ctx.cache, spec_file)
    status = inputs.observed.status or FlywheelStatus(flywheel_name=name,
                                                      creation_time=ctx.clock())
    source = ctx.lineage.source(spec_file)
    if recover(here, inputs.observed, spec_file, status, source):
        inputs = read_inputs(ctx.root, ctx.lake, ctx.cache, spec_file)
        status = inputs.observed.status or status
    if inputs.observed.iterations:  # a crash after COMPLETED may have missed its history row
        ctx.lake.write_history(name, inputs.observed.iterations)
    now = ctx.clock()  # one instant for every round: a back-off ending meanwhile waits
    current = plan_for(inputs, now)
    outcome.plan = current
    ctx.report(Planned(name, current))
    pending, done = current.actions, set[type]()
    before = inputs.observed.copy()  # the actions update the status they are given in place
    for round_ in range(1, MAX_ROUNDS + 1):
        target = actions.Target(spec_file, status, source, inputs)
        for action in pending:
            record = actions.apply(action, here, target)
            if record is not None:
                outcome.iteration = record
        done.update(type(action) for action in pending)
        if not pending or round_ == MAX_ROUNDS or not _spec_unchanged(ctx.root, spec_file):
            break
        # The data files are as planned (an action never writes them): only the lake changed.
        inputs = replace(inputs, observed=ctx.lake.observe(name))
        pending = tuple(a for a in plan_for(inputs, now).actions if type(a) not in done)
    if done:
        _alarm(ctx, spec_file, before)


def _alarm(ctx: Context, spec_file: SpecFile, before: Observed) -> None:
    """Report the alarm's transition, if the actions made one, and post the spec's webhook."""
    spec = spec_file.spec
    event = alerts.transition(ctx.lake, spec, before, ctx.lake.observe(spec.name))
    if event is None:
        return
    ctx.report(event)
    hook = spec.promotion.degradation.webhook if spec.promotion and \
        spec.promotion.degradation else None
    if hook is not None:
        ctx.announcer.announce(hook, alerts.payload(event, ctx.clock))


def _spec_unchanged(root: Path, spec_file: SpecFile) -> bool:
    """Whether the spec file still says what ``spec_file`` was read as."""
    try:
        fresh = load_spec(root / spec_file.path, root)
    except (FlywheelError, OSError):
        return False
    return fresh.spec == spec_file.spec and fresh.policy_managed == spec_file.policy_managed


def reconciler_version() -> str:
    """This package's version, the code revision recorded with every model."""
    try:
        return metadata.version("flywheel-reconciler")
    except metadata.PackageNotFoundError:
        return "unknown"
