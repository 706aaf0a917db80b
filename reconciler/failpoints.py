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
    kind = _kind(path.parts)
    _writes[kind] = _writes.get(kind, 0) + 1
    return f"write:{kind}#{_writes[kind]}"


def _kind(parts: tuple[str, ...]) -> str:
    """The kind of a write, from where ``core.layout`` puts each file."""
    from reconciler.core import layout

    ws = layout.Workspace("_")
    *_, grandparent, parent, name = ("", "", "", *parts)
    records = {ws.iterations.name: "iteration", ws.versions.name: "version",
               ws.models.name: "model"}
    if grandparent == layout.LAKE_DIR and name in (ws.status.name, ws.history.name):
        return "status" if name == ws.status.name else "history"
    if parent in records:
        return records[parent]
    if grandparent == ws.evaluations.name:
        return "evaluation"
    if parent == ws.out.name and len(parts) >= 4 and parts[-4] == layout.PIPELINES_DIR:
        return "out"
    if grandparent == layout.PIPELINES_DIR:
        return "pipeline"
    return "spec" if parent == layout.SPECS_DIR else "other"
