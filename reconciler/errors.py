"""The project's one exception tree.

Every error a user can cause or meet is a :class:`FlywheelError` whose ``str()`` is a single line
naming the file, the line and the field where that is known::

    FlywheelError                      base; carries file, line and field
    ├── SpecError                      a spec file is malformed or invalid
    ├── DataError                      a dataset file has bad content (names the row)
    ├── StateError                     the observed state forbids the request (pin to a missing
    │                                  version, a dataset changed after use, a tampered model file)
    ├── PipelineError                  a pipeline stage or DVC failed
    │   └── TransientError(delay)      a failure worth retrying later (a lock, a time-out)
    └── Stopped                        a stop was asked for (SIGTERM, Ctrl-C): not a failure

Third-party exceptions are translated where they are caught (``raise ... from exc``).
"""

from __future__ import annotations

from pathlib import Path


class FlywheelError(Exception):
    """Base of every error this project raises on purpose."""

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
        flywheel: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = str(file) if file is not None else None
        self.line = line
        self.field = field
        self.flywheel = flywheel

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "") + ": "
        field = f"{self.field}: " if self.field else ""
        return f"{where}{field}{self.message}"

    @property
    def kind(self) -> str:
        """A short machine-readable name of the error class, for JSON output and logs."""
        return type(self).__name__


class SpecError(FlywheelError):
    """A spec file is malformed YAML, breaks a limit, or does not validate."""


class DataError(FlywheelError):
    """A dataset file is missing, unreadable, or has a bad row."""


class StateError(FlywheelError):
    """The observed state (the data lake) forbids what the spec asks for."""


class PipelineError(FlywheelError):
    """A pipeline stage or DVC itself failed."""


class TransientError(PipelineError):
    """A failure that is worth retrying after ``delay`` seconds (a lock held, a time-out)."""

    def __init__(self, message: str, *, delay: float = 60.0, **where: object) -> None:
        super().__init__(message, **where)  # type: ignore[arg-type]
        self.delay = delay


class Stopped(FlywheelError):
    """A stop was requested (SIGTERM or Ctrl-C) and the work in hand was set aside.

    Not a failure: the iteration is recorded as STOPPED and resumed by the next reconcile.
    """
