"""A lake that keeps what it read: the read side of a long-lived handle (the API server's).

Each flywheel's records are kept once read and read again only when a file of theirs changed:
its inode, size or modification time. Every write to the lake renames a new file into place,
and any other edit changes at least one of them, so a request pays a few ``stat`` calls
instead of parsing and checking every record. Only records that read cleanly are kept: a
corrupt one is refused on every read, as by the plain lake.

The records it hands out are shared between callers (a deep copy per read would cost more
than the read it saves), so it serves readers only: the engine, which updates records in
place before writing them, reads and writes through a plain :class:`Lake`.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from reconciler.adapters.lake import Lake, check_name
from reconciler.core.layout import Workspace
from reconciler.core.state import Observed

Signature = tuple[object, ...]


class RememberingLake(Lake):
    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self._kept: dict[str, tuple[Signature, Observed]] = {}
        self._kept_lock = threading.Lock()

    def observe(self, name: str) -> Observed:
        check_name(name)
        key = self._signature(name)
        with self._kept_lock:
            found = self._kept.get(name)
        if found is not None and found[0] == key:
            return found[1]
        observed = super().observe(name)
        with self._kept_lock:
            self._kept[name] = (key, observed)
        return observed

    def _signature(self, name: str) -> Signature:
        """What changes whenever a record file of ``name`` does."""
        ws = Workspace(name)
        parts: list[object] = [_identity(self.root / ws.status)]
        for folder in (ws.iterations, ws.versions):
            path = self.root / folder
            parts.append(_identity(path))
            parts.append(_listing(path))
        return tuple(parts)


def _identity(path: Path) -> tuple[int, int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_ino, info.st_size, info.st_mtime_ns


def _listing(folder: Path) -> tuple[tuple[str, int, int, int], ...]:
    try:
        with os.scandir(folder) as entries:
            listed = []
            for entry in entries:
                info = entry.stat()
                listed.append((entry.name, info.st_ino, info.st_size, info.st_mtime_ns))
    except OSError:
        return ()
    return tuple(sorted(listed))
