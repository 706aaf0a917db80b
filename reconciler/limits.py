"""Resource limits on input files, each configurable through one environment variable.

The limits keep a hostile or mistaken input (a multi-gigabyte spec, a dataset the size of a disk,
one "row" that is a whole file) from exhausting memory before anything useful is said. The
defaults suit every repository we know of; a repository with bigger honest inputs raises a limit
with its variable, in the environment of every reconciler that serves it (the CLI, the
``flywheel watch`` service, CI jobs, git hooks).

Values are read from the environment each time they are asked for, so a test or a long-lived
process sees the environment it runs with; a bad value is one clear line naming the variable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from reconciler.errors import FlywheelError


class LimitError(FlywheelError):
    """A limit's environment variable holds something that is not a positive whole number."""


@dataclass(frozen=True)
class Limit:
    """One bound: what it limits, its default, and the variable that changes it."""

    what: str
    variable: str
    default: int
    unit: str

    def value(self) -> int:
        raw = os.environ.get(self.variable)
        if raw is None or not raw.strip():
            return self.default
        text = raw.strip().replace("_", "")
        if not text.isdecimal() or int(text) < 1:
            shown = repr(raw)[:40]
            raise LimitError(f"{self.variable}={shown} is not a positive whole number of "
                             f"{self.unit} (the {self.what} limit; default {self.default})")
        return int(text)

    @property
    def hint(self) -> str:
        """Appended to a refusal so that it says how the limit is raised."""
        return f"set {self.variable} to raise it"


SPEC_BYTES = Limit("spec file size", "FLYWHEEL_MAX_SPEC_BYTES", 256 * 1024, "bytes")
DATASET_BYTES = Limit("dataset file size", "FLYWHEEL_MAX_DATASET_BYTES", 2 * 1024**3, "bytes")
ROW_CHARS = Limit("document length", "FLYWHEEL_MAX_ROW_CHARS", 1_000_000, "characters")
#: One JSON record or cache file (lake records, the hash cache, the daemon's status file).
RECORD_BYTES = Limit("JSON record size", "FLYWHEEL_MAX_RECORD_BYTES", 64 * 1024**2, "bytes")
#: What loading one model file may unpack: the sum of its members' uncompressed sizes.
MODEL_BYTES = Limit("model file contents (uncompressed)", "FLYWHEEL_MAX_MODEL_BYTES",
                    2 * 1024**3, "bytes")
ALL = (SPEC_BYTES, DATASET_BYTES, ROW_CHARS, RECORD_BYTES, MODEL_BYTES)


def check() -> None:
    """Raise :class:`LimitError` for the first badly set variable (checked before serving)."""
    for limit in ALL:
        limit.value()
