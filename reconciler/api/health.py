"""How a flywheel's active version is holding up: the degradation alarm's figures, with the
labels that broke (the read side of :mod:`reconciler.core.degradation`)."""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.api.repository import Repository
from reconciler.core.degradation import Degradation, LabelDrop, degradation
from reconciler.runtime.queries import FlywheelView


@dataclass(frozen=True)
class Health:
    view: FlywheelView
    #: None: not degraded (or no alarm declared, or not measured since it became active).
    degradation: Degradation | None
    #: Labels whose F1 fell between the F1 at promotion and now, largest fall first.
    drops: tuple[LabelDrop, ...]


def health(repo: Repository, name: str, view: FlywheelView | None = None) -> Health:
    """The alarm's state of ``name`` (``view``: its view, when the caller has it already)."""
    from reconciler.runtime.alerts import drops

    found = view or repo.view(name, records=True)
    promotion = found.spec_file.spec.promotion if found.spec_file else None
    degraded = degradation(found.observed, promotion) if found.error is None else None
    if degraded is None:
        return Health(found, None, ())
    with repo.locked():
        return Health(found, degraded, drops(repo.records, found.name, found.observed, degraded))
