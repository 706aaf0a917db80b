"""Read-only views of flywheels for ``list``/``describe``/``iterations``/``classify``.

A view reads the specs and the lake and asks the planner what *would* happen, which is how the
conditions (Ready, Reconciling, Stalled) are derived rather than stored. Nothing the user owns is
written; the one write is the local dataset-hash cache (``.flywheel/cache``), saved so the next
read need not hash the datasets again.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from reconciler.adapters.corpus import check_corpus
from reconciler.adapters.dataset_files import HashCache
from reconciler.adapters.lake import Lake
from reconciler.adapters.loader import SpecFile, load_specs
from reconciler.core.actions import Iterate, Plan
from reconciler.core.conditions import Condition, ConditionType, conditions, one_line
from reconciler.core.planner import person_pin
from reconciler.core.policy import inactive_reason
from reconciler.core.state import IterationRecord, Observed
from reconciler.errors import FlywheelError, NotFoundError, SpecError
from reconciler.runtime.reconcile import plan_for, read_inputs


@dataclass(frozen=True)
class FlywheelView:
    name: str
    spec_file: SpecFile | None
    observed: Observed
    plan: Plan | None
    error: FlywheelError | None
    #: Why the lake's records could not be read (a corrupt record): ``observed`` is then empty,
    #: and every command that shows records fails with this one line instead.
    lake_error: FlywheelError | None = None

    @functools.cached_property
    def conditions(self) -> list[Condition]:
        """Derived once per view: every row, message and filter of a listing reads them."""
        spec = self.spec_file.spec if self.spec_file else None
        return conditions(self.error, self.plan, self.observed, declared=spec is not None,
                          promotion=spec.promotion if spec else None,
                          drift=spec.drift if spec else None)

    def holding(self, kind: ConditionType) -> Condition | None:
        """The condition of ``kind`` when it holds (status True), else None."""
        return next((c for c in self.conditions if c.type is kind and c.status), None)

    @property
    def inactive_reason(self) -> str:
        """Why this flywheel has no active model (for ``classify``'s refusal)."""
        promotion = self.spec_file.spec.promotion if self.spec_file else None
        return inactive_reason(promotion, self.observed.completed())

    @property
    def message(self) -> str:
        return one_line(self.conditions)

    @property
    def active_model(self) -> str | None:
        """The active version, or the one a person's pin in the spec names when the reconciler
        has not applied it yet (a pin to an existing version always wins, so it is active the
        moment it is declared: the API's UpdateFlywheel is synchronous, as Comprehend's is)."""
        observed = self.observed.active_model
        if self.spec_file is None:
            return observed
        pin = person_pin(self.spec_file.spec, self.observed.status,
                         self.spec_file.policy_managed)
        return pin if pin is not None and pin in self.observed.versions else observed


def all_views(root: Path, names: set[str] | None = None, *,
              check_data: bool | Literal["all"] = False, lake: Lake | None = None,
              cache: HashCache | None = None,
              clock: Callable[[], float] = time.time,
              loaded: tuple[list[SpecFile], list[SpecError]] | None = None
              ) -> list[FlywheelView]:
    """One view per spec (and per spec file that fails to load).

    With ``check_data`` (``flywheel plan``), a flywheel with an iteration due also has the rows
    of its datasets read and checked (bad rows, TRAIN documents also in a TEST dataset), so a
    problem is reported before a reconcile meets it; with ``"all"`` (``flywheel validate``),
    every flywheel's; without it (``list``, the daemon's passes) no dataset content is read.
    ``loaded``: the specs as :func:`~reconciler.adapters.loader.load_specs` read them already.
    """
    root = root.resolve()
    lake = lake or Lake(root)
    cache = cache or HashCache(root)
    specs, errors = loaded if loaded is not None else load_specs(root)
    result = [FlywheelView(listed_name(e), None, Observed(), None, e)
              for e in errors if names is None or listed_name(e) in names]
    now = clock()
    for spec_file in specs:
        name = spec_file.spec.name
        if names is not None and name not in names:
            continue
        observed, plan, error = Observed(), None, None
        lake_error: FlywheelError | None = None
        try:
            inputs = read_inputs(root, lake, cache, spec_file)
            observed = inputs.observed
            plan = plan_for(inputs, now)
            if check_data == "all" or (check_data and any(isinstance(action, Iterate)
                                                          for action in plan.actions)):
                check_corpus(spec_file.spec, root, spec_path=spec_file.path,
                             lines_of=spec_file.line_of)
        except FlywheelError as exc:
            error = exc
            try:
                observed = lake.observe(name)
            except FlywheelError as lake_exc:
                lake_error = lake_exc
        result.append(FlywheelView(name, spec_file, observed, plan, error, lake_error))
    cache.save()
    return sorted(result, key=lambda v: v.name)


def listed_name(error: FlywheelError) -> str:
    """What a spec file that does not load is listed as: its flywheel's name, else its path."""
    return error.flywheel or error.file or "?"


def view(root: Path, name: str, *, records: bool = False, lake: Lake | None = None,
         cache: HashCache | None = None) -> FlywheelView:
    """One flywheel's view; with ``records``, a lake it cannot read is its one-line error
    (``iterations``, ``iteration``, ``describe``: never an empty history for a corrupt one)."""
    found = [v for v in all_views(root, {name}, lake=lake, cache=cache) if v.name == name]
    if not found:
        raise NotFoundError(f"no flywheel named {name!r} under specs/")
    if records and found[0].lake_error is not None:
        raise found[0].lake_error
    return found[0]


#: The iteration id that means the flywheel's newest iteration, whatever its status.
LATEST = "latest"


def iteration(view_: FlywheelView, iteration_id: str) -> IterationRecord:
    """One iteration by its id, or the newest one for ``latest``."""
    records = view_.observed.iterations
    if iteration_id == LATEST:
        if not records:
            raise NotFoundError(f"flywheel {view_.name!r} has no iteration yet (run `flywheel "
                             f"reconcile {view_.name}`)")
        return records[-1]
    for record in records:
        if record.flywheel_iteration_id == iteration_id:
            return record
    known = ", ".join([LATEST, *(r.flywheel_iteration_id for r in reversed(records))]
                      if records else ["none"])
    raise NotFoundError(f"flywheel {view_.name!r} has no iteration {iteration_id} (known: {known})")
