"""The daemon's status file and its single-instance lock.

``.flywheel/watch/status.json`` is rewritten atomically whenever the daemon's state changes:
its pid, state (STARTING, IDLE, RECONCILING, ITERATING, STOPPING, STOPPED), the jobs running now
(flywheel, iteration, stage), what the last pass found, the errors it is reporting, the next
resync and counters. ``flywheel status`` reads it; the lock tells a live daemon from a stale file.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from reconciler.adapters.files import atomic_write_json, file_lock, read_json
from reconciler.core.layout import WATCH_LOCK, WATCH_STATUS
from reconciler.errors import ConflictError, StateError, TransientError

STATUS_FILE = WATCH_STATUS
LOCK_FILE = WATCH_LOCK


class AlreadyRunning(ConflictError):
    """Another daemon serves this repository."""


def write_status(root: Path, status: dict[str, Any]) -> None:
    atomic_write_json(root / STATUS_FILE, status)


def read_status(root: Path) -> dict[str, Any] | None:
    """The daemon's last status, None if it never wrote one; a file that is not what the daemon
    writes (too big, too deep, not a JSON object, a symlink) is a one-line :class:`StateError`.
    """
    path = root / STATUS_FILE
    if not path.exists() and not path.is_symlink():
        return None
    try:  # bounded (jsonio); never a link: the daemon replaces it by rename
        data = read_json(path, follow_symlinks=False)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise StateError(f"corrupt daemon status file: {reason.splitlines()[0]}",
                         file=STATUS_FILE) from exc
    if not isinstance(data, dict):
        raise StateError("corrupt daemon status file: not a JSON object", file=STATUS_FILE)
    return data


@contextlib.contextmanager
def single_instance(root: Path) -> Iterator[None]:
    """Hold the repository's daemon lock, or refuse with who holds it."""
    try:
        with file_lock(root / LOCK_FILE, timeout=0, what="the watch daemon"):
            yield
    except TransientError as exc:
        raise AlreadyRunning(f"another `flywheel watch` (pid {holder(root) or '?'}) is already "
                             f"serving {root}; stop it first or use `flywheel status`") from exc


def running_pid(root: Path) -> int | None:
    """The pid of the daemon serving ``root``, or None if none is running."""
    lock = root / LOCK_FILE
    if not lock.exists():
        return None
    try:
        with file_lock(lock, timeout=0, what="the watch daemon"):
            return None  # we got the lock: nobody holds it
    except TransientError:
        return holder(root) or -1


def holder(root: Path) -> int | None:
    """The pid written into the lock file by its holder."""
    try:
        text = (root / LOCK_FILE).read_text("utf-8").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
