"""``reconcile()``: the one loop behind the CLI, the watch daemon and the git hooks.

For each spec: fingerprint its datasets (stat-cached hashes), read the lake, ask the pure planner
what to do, and execute the actions under the flywheel's lock. Nothing on the no-change path
imports DVC or scikit-learn. One flywheel's error never stops the others.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from reconciler.adapters import git
from reconciler.adapters.datasets import HashCache, check_corpus, fingerprint
from reconciler.adapters.dvc import is_dvc_repo
from reconciler.adapters.lake import Lake
from reconciler.adapters.loader import SpecFile, load_specs
from reconciler.adapters.pipeline import check_pipeline_folder
from reconciler.adapters.requests import read_request
from reconciler.core.planner import (
    Acknowledge,
    Action,
    ApplyDecision,
    Iterate,
    Pin,
    Plan,
    Unpin,
    WriteSpec,
    plan,
)
from reconciler.core.state import (
    FlywheelStatus,
    IterationRecord,
    Observed,
    PromotionKind,
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
from reconciler.runtime.events import Failed, Planned, Promoted, Reporter, ignore
from reconciler.runtime.iteration import IterationRun, promote, recover
from reconciler.runtime.stopping import NEVER, StopRequest
from reconciler.runtime.writeback import GitOps, write_back


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
    files: list
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
    lake: Lake
    cache: HashCache
    clock: Callable[[], float]
    report: Reporter
    stop: StopRequest
    gitops: GitOps
    lineage: Lineage


def reconcile(root: Path, *, report: Reporter = ignore, only: set[str] | None = None,
              clock: Callable[[], float] = time.time, stop: StopRequest = NEVER,
              gitops: GitOps | None = None) -> ReconcileResult:
    """Bring every flywheel (or those named in ``only``) to its spec's desired state.

    Once ``stop`` is raised no new work starts: the flywheels not reached yet are reported as
    stopped, and a running iteration stops after its current stage. ``gitops`` says how
    write-backs reach git.
    """
    root = root.resolve()
    ctx = Context(root, Lake(root), HashCache(root), clock, report, stop, gitops or GitOps(),
                  Lineage(root))
    specs, errors = load_specs(root)
    result = ReconcileResult(errors=list(errors))
    for error in errors:
        report(Failed(error.flywheel, error))
    try:
        for spec_file in specs:
            if only is not None and spec_file.spec.name not in only:
                continue
            if stop.is_set():
                result.flywheels.append(FlywheelResult(spec_file.spec.name, spec_file.path,
                                                       stopped=True))
                continue
            outcome = _reconcile_one(ctx, spec_file)
            result.flywheels.append(outcome)
            if outcome.error is not None:
                report(Failed(outcome.name, outcome.error))
    finally:
        ctx.cache.save()
    return result


def read_inputs(root: Path, lake: Lake, cache: HashCache, spec_file: SpecFile) -> Inputs:
    files = fingerprint(spec_file.spec, spec_file.path, spec_file.line_of, root, cache)
    md5s = {f.dataset.name: f.md5 for f in files}
    return Inputs(spec_file, md5s, lake.observe(spec_file.spec.name), files,
                  read_request(root, spec_file.spec.name))


def plan_for(inputs: Inputs, now: float) -> Plan:
    """The planner's answer, with a blocked plan turned into an error naming the spec line."""
    result = plan(inputs.spec_file.spec, inputs.observed, inputs.md5s, now,
                  policy_managed=inputs.spec_file.policy_managed, request=inputs.request)
    if result.blocked:
        raise inputs.spec_file.error(StateError, result.blocked.reason, *result.blocked.loc)
    return result


def _reconcile_one(ctx: Context, spec_file: SpecFile) -> FlywheelResult:
    name = spec_file.spec.name
    outcome = FlywheelResult(name=name, spec_file=spec_file.path)
    try:
        inputs = read_inputs(ctx.root, ctx.lake, ctx.cache, spec_file)
        ctx.lake.remove_stale_temp_files(name)  # left by a writer killed mid-write
        first = plan_for(inputs, ctx.clock())
        unfinished = any(not it.status.terminal for it in inputs.observed.iterations) or \
            ctx.lake.history_stale(name, inputs.observed.iterations)
        if (first.up_to_date and not unfinished) or first.suspended:
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


def _act(ctx: Context, spec_file: SpecFile, outcome: FlywheelResult) -> None:
    """Under the flywheel lock: settle leftovers, plan again on fresh state, execute."""
    name = spec_file.spec.name

    def on_event(event: object) -> None:
        if isinstance(event, Promoted):
            outcome.promotions.append(event.promotion)
        ctx.report(event)  # type: ignore[arg-type]

    inputs = read_inputs(ctx.root, ctx.lake, ctx.cache, spec_file)
    status = inputs.observed.status or FlywheelStatus(flywheel_name=name,
                                                      creation_time=ctx.clock())
    source = ctx.lineage.source(spec_file)
    if recover(ctx.lake, inputs.observed, spec_file, status, on_event, source):
        inputs = read_inputs(ctx.root, ctx.lake, ctx.cache, spec_file)
        status = inputs.observed.status or status
    if inputs.observed.iterations:  # a crash after COMPLETED may have missed its history row
        ctx.lake.write_history(name, inputs.observed.iterations)
    current = plan_for(inputs, ctx.clock())
    outcome.plan = current
    ctx.report(Planned(name, current))
    for action in current.actions:
        if isinstance(action, Iterate):
            outcome.iteration = _iterate(ctx, spec_file, inputs, status, action, on_event, source)
        else:
            _apply(ctx, spec_file, status, action, on_event, source)
    if outcome.promotions and not any(isinstance(a, WriteSpec) for a in current.actions):
        follow_up = plan_for(read_inputs(ctx.root, ctx.lake, ctx.cache, spec_file), ctx.clock())
        for action in follow_up.actions:
            if isinstance(action, WriteSpec):
                write_back(ctx.root, ctx.lake, spec_file, status, action.version, ctx.gitops,
                           on_event)


def _apply(ctx: Context, spec_file: SpecFile, status: FlywheelStatus, action: Action,
           report: Reporter, source: SourceRevision) -> None:
    """One action that needs no pipeline: a pin, an unpin, a promotion, a write-back, an answer."""
    if isinstance(action, Pin):
        if status.write_back is not None and status.write_back.pending:
            status.write_back = status.write_back.model_copy(
                update={"pending": False, "note": "superseded by a person's pin"})
        promote(ctx.lake, status, action.version, kind=PromotionKind.PIN, reason=action.reason,
                iteration_id=None, spec_file=spec_file.path, report=report, pinned=True,
                source=source)
    elif isinstance(action, Unpin):
        status.pinned = False
        if action.version is not None and action.version != status.active_model:
            promote(ctx.lake, status, action.version, kind=PromotionKind.POLICY,
                    reason=action.reason, iteration_id=action.iteration_id,
                    spec_file=spec_file.path, report=report, source=source)
        else:
            ctx.lake.write_status(status)
    elif isinstance(action, ApplyDecision):
        promote(ctx.lake, status, action.version, kind=PromotionKind.POLICY, reason=action.reason,
                iteration_id=action.iteration_id, spec_file=spec_file.path, report=report,
                source=source)
    elif isinstance(action, WriteSpec):
        write_back(ctx.root, ctx.lake, spec_file, status, action.version, ctx.gitops, report)
    elif isinstance(action, Acknowledge):
        status.last_handled_iteration_request = action.request
        ctx.lake.write_status(status)


def _iterate(ctx: Context, spec_file: SpecFile, inputs: Inputs, status: FlywheelStatus,
             action: Iterate, report: Reporter, source: SourceRevision) -> IterationRecord:
    if not is_dvc_repo(ctx.root):
        raise StateError(f"{ctx.root} is not a DVC repository; run `flywheel init` there")
    check_pipeline_folder(ctx.root, spec_file.spec.name)
    # The models folder is re-recorded by the iteration (`dvc add`): first drop what failed
    # iterations left there, then refuse a folder that does not match its records, before
    # anything is recorded (fixed with `dvc pull`/`dvc checkout`, the next reconcile goes on).
    ctx.lake.remove_orphans(spec_file.spec.name, inputs.observed)
    ctx.lake.check_models(spec_file.spec.name, inputs.observed.versions)
    # The pre-flight check: every row, the overlap, the label coverage, before anything is
    # recorded; streamed (counts only), so no copy of the corpus is held while the stages run.
    corpus = check_corpus(spec_file.spec, ctx.root, spec_path=spec_file.path,
                          lines_of=spec_file.line_of)
    ctx.stop.check("the iteration")
    if action.request is not None:
        status.last_handled_iteration_request = action.request
    run = IterationRun(root=ctx.root, lake=ctx.lake, spec_file=spec_file,
                       observed=ctx.lake.observe(spec_file.spec.name), status=status,
                       action=action, files=inputs.files, corpus=corpus, now=ctx.clock(),
                       report=report, stop=ctx.stop, source=source)
    record = run.record
    run.run()
    return record


def reconciler_version() -> str:
    """This package's version, the code revision recorded with every model."""
    try:
        return metadata.version("flywheel-reconciler")
    except metadata.PackageNotFoundError:
        return "unknown"
