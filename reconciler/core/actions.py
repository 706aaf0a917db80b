"""What a plan holds: the actions the runtime takes, each with its reason, and the plan itself.

Every action says what it is in one line (``summary``, the plan table and the log) and as JSON
(``to_json``, ``flywheel plan -o json``); the runtime applies them in one dispatch
(``runtime/actions.py``). Adding an action means adding it here and there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Iterate:
    digest: str
    new_datasets: tuple[str, ...]
    attempt: int
    reason: str
    request: str | None = None  # the `flywheel iterate` request this answers

    def summary(self) -> str:
        return f"iterate ({self.reason})"

    def to_json(self) -> dict[str, Any]:
        return {"Action": "ITERATE", "Reason": self.reason,
                "NewDatasets": list(self.new_datasets), "Attempt": self.attempt,
                **({"Request": self.request} if self.request else {})}


@dataclass(frozen=True)
class Pin:
    version: str
    reason: str

    def summary(self) -> str:
        return f"pin {self.version}"

    def to_json(self) -> dict[str, Any]:
        return {"Action": "PIN", "Version": self.version, "Reason": self.reason}


@dataclass(frozen=True)
class Unpin:
    """The pin was removed: the policy decides at once. ``version`` is what it makes active
    (None: the active model stays), from the completed iteration ``iteration_id``."""

    reason: str
    version: str | None = None
    iteration_id: str | None = None

    def summary(self) -> str:
        return f"unpin, promote {self.version}" if self.version else "unpin"

    def to_json(self) -> dict[str, Any]:
        return {"Action": "UNPIN", "Reason": self.reason,
                **({"Version": self.version} if self.version else {})}


@dataclass(frozen=True)
class ApplyDecision:
    """Finish a policy promotion that an iteration decided but a crash kept from being applied."""

    iteration_id: str
    version: str
    reason: str

    def summary(self) -> str:
        return f"promote {self.version}"

    def to_json(self) -> dict[str, Any]:
        return {"Action": "PROMOTE", "Version": self.version, "Reason": self.reason,
                "FlywheelIterationId": self.iteration_id}


@dataclass(frozen=True)
class WriteSpec:
    """Write the policy's active model into the spec's marked ``activeModel`` line (and commit)."""

    version: str
    reason: str

    def summary(self) -> str:
        return f"write {self.version} back to the spec"

    def to_json(self) -> dict[str, Any]:
        return {"Action": "WRITE_BACK", "Version": self.version, "Reason": self.reason}


@dataclass(frozen=True)
class Acknowledge:
    """Answer a `flywheel iterate` request that needs no iteration, saying why."""

    request: str
    reason: str

    def summary(self) -> str:
        return f"answer request {self.request} ({self.reason})"

    def to_json(self) -> dict[str, Any]:
        return {"Action": "ACKNOWLEDGE", "Request": self.request, "Reason": self.reason}


#: Each says itself: ``summary()`` (its ``flywheel plan`` line), ``to_json()`` (its JSON entry).
Action = Iterate | Pin | Unpin | ApplyDecision | WriteSpec | Acknowledge


@dataclass(frozen=True)
class Blocked:
    """Why the flywheel cannot proceed; ``loc`` is the spec field to blame."""

    reason: str
    loc: tuple[str | int, ...] = ()


@dataclass(frozen=True)
class Plan:
    flywheel: str
    actions: tuple[Action, ...] = ()
    blocked: Blocked | None = None
    notes: tuple[str, ...] = field(default=())
    #: When a failed iteration's backoff ends (epoch seconds), if a retry is waiting for it.
    retry_at: float | None = None
    suspended: bool = False

    @property
    def up_to_date(self) -> bool:
        return not self.actions and self.blocked is None
