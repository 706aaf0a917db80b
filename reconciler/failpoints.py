"""Named fault-injection points ("failpoints") for the crash-safety tests.

``failpoint("iteration:version-recorded")`` does nothing unless the environment variable
``FLYWHEEL_FAILPOINT`` names that very point, in which case the process kills itself with SIGKILL
on the spot: no ``finally``, no ``atexit``, no flush, exactly like the OOM killer or a power cut
as far as the process is concerned. With ``FLYWHEEL_FAILPOINT_GROUP=1`` the whole process group
is killed, so that a point inside a DVC stage takes the reconciler down with it (and a point in
the reconciler takes its running stage).

``FLYWHEEL_FAILPOINT_ACTION`` makes the armed point do something else than dying:
``stop`` (the process stops itself with SIGSTOP, so that a test can change a file at that very
moment and resume it with SIGCONT) or ``raise:<ERRNO>`` (an ``OSError`` with that errno, e.g.
``raise:EACCES`` is a ``PermissionError``, ``raise:ENOSPC`` a full disk: the failure the system
would give, without needing the system to fail; tests run as root, and root ignores ``chmod``).

The variables are read once, at import: an unset variable costs one comparison with ``None``
per point. :data:`ARMED` lets a caller skip building a point's name when nothing is armed.

Every write through :func:`reconciler.adapters.files.atomic_write_bytes` has three points,
``write:<kind>#<n>:before-fsync`` (temp file written), ``…:before-rename`` (temp file synced)
and ``…:after-rename`` (target replaced, folder not yet synced), where ``<kind>`` says what is
written (:func:`write_kind`) and ``<n>`` counts this process's writes of that kind from 1: the
TRAINING, EVALUATING and COMPLETED records of an iteration are ``iteration#1``, ``#2``, ``#3``.
"""

from __future__ import annotations

import errno
import os
import signal
from pathlib import Path

ENV = "FLYWHEEL_FAILPOINT"
GROUP_ENV = "FLYWHEEL_FAILPOINT_GROUP"
ACTION_ENV = "FLYWHEEL_FAILPOINT_ACTION"

TARGET: str | None = os.environ.get(ENV) or None
ARMED: bool = TARGET is not None
_GROUP = os.environ.get(GROUP_ENV) == "1"
_ACTION = os.environ.get(ACTION_ENV) or "kill"
_writes: dict[str, int] = {}


def failpoint(name: str) -> None:
    """Die by SIGKILL here if ``FLYWHEEL_FAILPOINT`` is ``name`` (or do its action, see the
    module docstring); otherwise nothing."""
    if TARGET is not None and name == TARGET:
        if _ACTION == "stop":
            os.kill(os.getpid(), signal.SIGSTOP)
            return
        if _ACTION.startswith("raise:"):
            code = getattr(errno, _ACTION.removeprefix("raise:"))
            raise OSError(code, os.strerror(code), f"failpoint {name}")
        _die()


def _die() -> None:
    if _GROUP:
        os.killpg(os.getpgrp(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def write_kind(path: Path) -> str:
    """What a write to ``path`` is, for the point names of one atomic write (counted).

    ``status``, ``iteration``, ``version``, ``evaluation``, ``model``, ``history`` (the lake),
    ``spec``, ``pipeline`` (generated dvc.yaml/params.yaml), ``out`` (a stage's outputs),
    ``other``. Only called when :data:`ARMED`.
    """
    parent, grandparent = path.parent.name, path.parent.parent.name
    if path.name == "status.json" and grandparent == "lake":
        kind = "status"
    elif path.name == "f1_history.csv" and grandparent == "lake":
        kind = "history"
    elif parent in ("iterations", "versions", "models"):
        kind = {"iterations": "iteration", "versions": "version", "models": "model"}[parent]
    elif grandparent == "evaluation":
        kind = "evaluation"
    elif parent == "out" and path.parent.parent.parent.name == "pipelines":
        kind = "out"
    elif grandparent == "pipelines":
        kind = "pipeline"
    elif parent == "specs":
        kind = "spec"
    else:
        kind = "other"
    _writes[kind] = _writes.get(kind, 0) + 1
    return f"write:{kind}#{_writes[kind]}"
