"""The daemon's status file and its single-instance lock.

``.flywheel/watch/status.json`` is rewritten atomically whenever the daemon's state changes:
its pid, state (STARTING, IDLE, RECONCILING, ITERATING, PROMOTING, STOPPING, STOPPED), the
jobs running now (flywheel, iteration, stage), what the last pass found, the errors it is
reporting, the next resync and counters. ``flywheel status`` reads it; the lock tells a live
daemon from a stale file.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.adapters.files import atomic_write_json, file_lock, read_json
from reconciler.core.layout import WATCH_LOCK, WATCH_STATUS
from reconciler.errors import ConflictError, StateError, TransientError

if TYPE_CHECKING:  # `flywheel status` reads the file without importing the daemon
    from reconciler.daemon.dispatch import FlywheelState
    from reconciler.daemon.workers import Worker

STATUS_FILE = WATCH_STATUS
LOCK_FILE = WATCH_LOCK


class AlreadyRunning(ConflictError):
    """Another daemon serves this repository."""


@dataclass
class Counters:
    passes: int = 0
    jobs: int = 0
    iterations: int = 0
    promotions: int = 0
    failures: int = 0


def status_document(*, pid: int, root: Path, state: str, started: float, now: float,
                    running: Iterable[Worker], spare: Worker | None,
                    flywheels: Mapping[str, FlywheelState], errors: Mapping[str, str],
                    last_pass: dict[str, Any], resync_in: float,
                    counters: Counters) -> dict[str, Any]:
    """The status file's document. ``now`` and ``started`` are epoch seconds; ``resync_in`` is
    how long until the next resync."""
    return {
        "Pid": pid,
        "Repository": str(root),
        "State": state,
        "StartTime": round(started, 3),
        "UpdatedTime": round(now, 3),
        "Running": [w.describe() for w in running],
        "WarmWorkerPid": spare.pid if spare and spare.running else None,
        "Waiting": {name: m.waiting for name, m in sorted(flywheels.items()) if m.waiting},
        "Errors": [{"Where": k, "Message": v} for k, v in sorted(errors.items())],
        "LastPass": last_pass,
        "NextResyncTime": round(now + max(resync_in, 0.0), 3),
        "Counters": {"Passes": counters.passes, "Jobs": counters.jobs,
                     "Iterations": counters.iterations, "Promotions": counters.promotions,
                     "FailedJobs": counters.failures},
    }


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
