"""The project's one exception tree.

Every error a user can cause or meet is a :class:`FlywheelError` whose ``str()`` is a single line
naming the file, the line and the field where that is known::

    FlywheelError                      base; carries file, line and field
    ├── SpecError                      a spec file is malformed or invalid
    ├── DataError                      a dataset file has bad content (names the row)
    ├── StateError                     the observed state forbids the request (pin to a missing
    │   │                              version, a dataset changed after use, a tampered model file)
    │   ├── NotFoundError              no such flywheel, iteration, version or repository
    │   ├── ConflictError              someone else holds it now (a daemon already serving)
    │   │   └── daemon.status.AlreadyRunning
    │   ├── QuotaError                 a declared maximum is reached (datasets per flywheel)
    │   └── adapters.git.GitError      git refused or failed
    ├── PipelineError                  a pipeline stage or DVC failed
    │   └── TransientError             a failure worth retrying later (a lock, a time-out)
    ├── limits.LimitError              a FLYWHEEL_MAX_* variable is not a valid limit
    └── Stopped                        a stop was asked for (SIGTERM, Ctrl-C): not a failure

Kept apart on purpose: ``core.spec.LocatedValueError`` and ``core.specedit.SpecEditError`` are
plain ``ValueError``s of pure code, turned into a :class:`SpecError` with a file and line by the
adapter that read the file; ``adapters.jsonio.JsonError`` likewise becomes a ``StateError``.
A face maps the tree to its own terms in one place: the CLI to exit codes, an HTTP face to
Comprehend's exception names (NotFoundError: ResourceNotFoundException, ConflictError:
ResourceInUseException, QuotaError: ResourceLimitExceededException, SpecError and DataError:
InvalidRequestException).

Third-party exceptions are translated where they are caught (``raise ... from exc``).

A reader that finds several problems in one file (the CSV reader) raises the first, with the others
in ``others`` (at most ``MAX_LISTED`` kept, ``unlisted`` counts the rest): ``str()`` stays one
line that counts them and names their lines; ``lines()`` gives one line per problem.
"""

from __future__ import annotations

import difflib
import errno
from collections.abc import Iterable
from pathlib import Path

#: At most this many problems of one file are kept and listed; the rest are counted.
MAX_LISTED = 20


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
        #: Further problems found in the same file, each one line (see the module docstring).
        self.others: tuple[FlywheelError, ...] = ()
        self.unlisted = 0

    def __str__(self) -> str:
        return f"{self.alone()}{self._summary()}"

    def alone(self) -> str:
        """This problem's line without the count of the others (a list shows them itself)."""
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "") + ": "
        field = f"{self.field}: " if self.field else ""
        return f"{where}{field}{self.message}"

    def _summary(self) -> str:
        count = len(self.others) + self.unlisted
        if not count:
            return ""
        at = [str(e.line) for e in self.others if e.line]
        more = f" … and {self.unlisted} more" if self.unlisted else ""
        where = f", at line{'s' if len(at) > 1 else ''} {', '.join(at)}{more}" if at else ""
        return f" (and {count} more problem{'s' if count > 1 else ''}{self._here()}{where})"

    def _here(self) -> str:
        return " in this file" if all(e.file == self.file for e in self.others) else ""

    def lines(self) -> list[str]:
        """Every problem as its own one-line error: this one first (with the count), then the
        others, then ``… and N more`` when some were counted but not kept."""
        return [str(self), *self._rest()]

    def listed(self) -> list[str]:
        """:meth:`lines` for a list that counts its items itself: no count on the first."""
        return [self.alone(), *self._rest()]

    def _rest(self) -> list[str]:
        lines = [str(e) for e in self.others]
        if self.unlisted:
            plural = "s" if self.unlisted > 1 else ""
            lines.append((f"{self.file}: " if self.file else "")
                         + f"… and {self.unlisted} more problem{plural}{self._here()}")
        return lines

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


class NotFoundError(StateError):
    """What a request names is not there: a flywheel, an iteration, a model version, a
    repository."""


class ConflictError(StateError):
    """What a request needs is held by someone else now (a daemon already serving the
    repository); worth asking again later."""


class QuotaError(StateError):
    """Adding one more would pass a maximum (the datasets a spec may declare)."""


class PipelineError(FlywheelError):
    """A pipeline stage or DVC itself failed."""


class TransientError(PipelineError):
    """A failure that is worth retrying later (a lock held, a time-out, a full disk).

    When: the planner's back-off (``core.planner.BACKOFF_SECONDS``, doubled each attempt), for
    an iteration that failed with it; the error itself carries no delay.
    """


class Stopped(FlywheelError):
    """A stop was requested (SIGTERM or Ctrl-C) and the work in hand was set aside.

    Not a failure: the iteration is recorded as STOPPED and resumed by the next reconcile.
    """


#: ``errno`` values by which the system, not the data or the code, refused a file operation: a
#: full disk or quota, a file-size limit (``RLIMIT_FSIZE``), permissions, a read-only or failing
#: device. Worth another try once the cause is gone, wherever they happen (in the reconciler,
#: inside DVC, inside a stage subprocess): see :func:`environment_failure`.
ENVIRONMENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EACCES,
                                errno.EPERM, errno.EROFS, errno.EIO})
#: A stage's exit status for "the environment refused a file operation" (``EX_TEMPFAIL``): the
#: stage reports the kind of failure, the reconciler does not guess it from the text.
ENVIRONMENT_EXIT = 75


def environment_failure(exc: BaseException | None) -> OSError | None:
    """The :class:`OSError` with an :data:`ENVIRONMENT_ERRNOS` errno that caused ``exc`` (itself,
    or along its ``__cause__``/``__context__`` chain), or ``None``."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in ENVIRONMENT_ERRNOS:
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def refused_operation(exc: BaseException) -> str:
    """The one way a refused file operation is said: ``a file operation failed: [Errno 28] No
    space left on device: 'x' (is the disk full?)`` (an error without an errno, such as
    SQLite's, is named by its type)."""
    shown = str(exc) if isinstance(exc, OSError) else f"{type(exc).__name__}: {exc}"
    return f"a file operation failed: {shown} (is the disk full?)"


def nearest(word: str, choices: Iterable[str]) -> str | None:
    """The choice ``word`` most likely meant: one equal but for case, else the closest spelling
    (``difflib``), else ``None``. Long words are not compared (a cell can be a megabyte)."""
    if len(word) > 200:
        return None
    folded: dict[str, str] = {}
    for choice in choices:
        folded.setdefault(choice.casefold(), choice)
    key = word.casefold()
    if key in folded:
        return folded[key]
    close = difflib.get_close_matches(key, [c for c in folded if len(c) <= 200], n=1)
    return folded[close[0]] if close else None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for :func:`nearest`, or ``""``."""
    found = nearest(word, choices)
    return f"; did you mean {found!r}?" if found is not None and found != word else ""
