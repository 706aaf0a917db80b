"""What a reconcile reports while it works; the faces (CLI, daemon, CI) decide how to show it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from reconciler.core.actions import Plan
from reconciler.core.degradation import Degradation, LabelDrop
from reconciler.core.state import IterationRecord, PromotionRecord
from reconciler.errors import FlywheelError


@dataclass(frozen=True)
class Planned:
    flywheel: str
    plan: Plan


class DocumentCounts(NamedTuple):
    train: int
    test: int


@dataclass(frozen=True)
class IterationStarted:
    flywheel: str
    iteration_id: str
    reason: str
    documents: DocumentCounts


@dataclass(frozen=True)
class StageStarted:
    flywheel: str
    iteration_id: str
    stage: str


@dataclass(frozen=True)
class IterationFinished:
    flywheel: str
    record: IterationRecord


@dataclass(frozen=True)
class Promoted:
    flywheel: str
    promotion: PromotionRecord


@dataclass(frozen=True)
class WroteBack:
    """The spec's ``activeModel`` line now says ``version`` (committed when ``commit`` is set)."""

    flywheel: str
    version: str
    previous: str | None
    spec_file: str
    commit: str | None
    pushed: str | None


@dataclass(frozen=True)
class Degraded:
    """An iteration showed the active version fallen below its F1 at promotion (or minF1)."""

    flywheel: str
    degradation: Degradation
    #: Labels whose F1 fell, largest fall first (empty when the evaluations are not kept).
    drops: tuple[LabelDrop, ...] = ()


@dataclass(frozen=True)
class Recovered:
    """A degraded flywheel is not any more: another version is active, or the figure is back."""

    flywheel: str
    version: str | None
    iteration: str | None
    how: str


@dataclass(frozen=True)
class Failed:
    flywheel: str | None
    error: FlywheelError


Event = (Planned | IterationStarted | StageStarted | IterationFinished | Promoted | WroteBack
         | Degraded | Recovered | Failed)
Reporter = Callable[[Event], None]


def ignore(_: Event) -> None:
    """The reporter used when nobody listens."""
