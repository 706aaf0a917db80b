"""``reconcile()``: the one loop behind the CLI, the watch daemon and the git hooks.

For each spec: fingerprint its datasets (stat-cached hashes), read the lake, ask the pure planner
what to do, and execute the actions under the flywheel's lock. Nothing on the no-change path
imports DVC or scikit-learn. One flywheel's error never stops the others.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.adapters.datasets import HashCache, fingerprint, load_corpus
from reconciler.adapters.dvc import is_dvc_repo
from reconciler.adapters.lake import Lake
from reconciler.adapters.loader import SpecFile, load_specs
from reconciler.core.planner import ApplyDecision, Iterate, Pin, Plan, Unpin, plan
from reconciler.core.state import FlywheelStatus, IterationRecord, Observed, PromotionRecord
from reconciler.errors import FlywheelError, StateError, Stopped
from reconciler.events import Failed, Planned, Promoted, Reporter, ignore
from reconciler.iteration import IterationRun, promote, recover
from reconciler.stopping import NEVER, StopRequest


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


def reconcile(root: Path, *, report: Reporter = ignore, only: set[str] | None = None,
              clock: Callable[[], float] = time.time,
              stop: StopRequest = NEVER) -> ReconcileResult:
    """Bring every flywheel (or those named in ``only``) to its spec's desired state.

    Once ``stop`` is raised no new work starts: the flywheels not reached yet are reported as
    stopped, and a running iteration stops after its current stage.
    """
    root = root.resolve()
    lake = Lake(root)
    cache = HashCache(root)
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
            outcome = _reconcile_one(root, lake, cache, spec_file, clock, report, stop)
            result.flywheels.append(outcome)
            if outcome.error is not None:
                report(Failed(outcome.name, outcome.error))
    finally:
        cache.save()
    return result


def read_inputs(root: Path, lake: Lake, cache: HashCache, spec_file: SpecFile) -> Inputs:
    files = fingerprint(spec_file.spec, spec_file.path, spec_file.line_of, root, cache)
    md5s = {f.dataset.name: f.md5 for f in files}
    return Inputs(spec_file, md5s, lake.observe(spec_file.spec.name), files)


def plan_for(inputs: Inputs, now: float) -> Plan:
    """The planner's answer, with a blocked plan turned into an error naming the spec line."""
    result = plan(inputs.spec_file.spec, inputs.observed, inputs.md5s, now)
    if result.blocked:
        raise inputs.spec_file.error(StateError, result.blocked.reason, *result.blocked.loc)
    return result


def _reconcile_one(root: Path, lake: Lake, cache: HashCache, spec_file: SpecFile,
                   clock: Callable[[], float], report: Reporter,
                   stop: StopRequest) -> FlywheelResult:
    name = spec_file.spec.name
    outcome = FlywheelResult(name=name, spec_file=spec_file.path)
    try:
        inputs = read_inputs(root, lake, cache, spec_file)
        first = plan_for(inputs, clock())
        unfinished = any(not it.status.terminal for it in inputs.observed.iterations)
        if first.up_to_date and not unfinished:
            outcome.plan = first
            report(Planned(name, first))
            return outcome
        with lake.try_flywheel_lock(name) as locked:
            if not locked:
                outcome.busy = True  # another reconciler is working on this flywheel now
                outcome.plan = first
                return outcome
            _act(root, lake, cache, spec_file, outcome, clock, report, stop)
    except Stopped:
        outcome.stopped = True
    except FlywheelError as exc:
        exc.flywheel = exc.flywheel or name
        outcome.error = exc
    return outcome


def _act(root: Path, lake: Lake, cache: HashCache, spec_file: SpecFile, outcome: FlywheelResult,
         clock: Callable[[], float], report: Reporter, stop: StopRequest) -> None:
    """Under the flywheel lock: settle leftovers, plan again on fresh state, execute."""
    name = spec_file.spec.name

    def on_event(event: object) -> None:
        if isinstance(event, Promoted):
            outcome.promotions.append(event.promotion)
        report(event)  # type: ignore[arg-type]

    inputs = read_inputs(root, lake, cache, spec_file)
    status = inputs.observed.status or FlywheelStatus(flywheel_name=name, creation_time=clock())
    if recover(lake, inputs.observed, spec_file, status, on_event):
        inputs = read_inputs(root, lake, cache, spec_file)
        status = inputs.observed.status or status
    current = plan_for(inputs, clock())
    outcome.plan = current
    report(Planned(name, current))
    for action in current.actions:
        if isinstance(action, Pin):
            promote(lake, status, action.version, kind="PIN", reason=action.reason,
                    iteration_id=None, spec_file=spec_file.path, report=on_event, pinned=True)
        elif isinstance(action, Unpin):
            status.pinned = False
            lake.write_status(status)
        elif isinstance(action, ApplyDecision):
            promote(lake, status, action.version, kind="POLICY", reason=action.reason,
                    iteration_id=action.iteration_id, spec_file=spec_file.path, report=on_event)
        elif isinstance(action, Iterate):
            if not is_dvc_repo(root):
                raise StateError(f"{root} is not a DVC repository; run `flywheel init` there")
            corpus = load_corpus(spec_file.spec, root)
            stop.check("the iteration")
            run = IterationRun(root=root, lake=lake, spec_file=spec_file,
                               observed=lake.observe(name), status=status, action=action,
                               files=inputs.files, corpus=corpus, now=clock(), report=on_event,
                               stop=stop)
            outcome.iteration = run.record
            run.run()
