"""What the daemon watches: ``specs/``, ``data/`` and the request folder, with watchdog.

The folders are watched recursively, each on its own, so that events in the lake, the
pipelines, DVC's cache or ``.git`` never reach the daemon; the repository itself is watched
flat, to see those folders appear, vanish or be replaced (then :meth:`FolderWatches.rewatch`
schedules them again). watchdog's own warnings become the daemon's log lines.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from watchdog.events import FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import ObservedWatch

from reconciler.core.layout import DATA_DIR, REQUESTS_DIR, SPECS_DIR
from reconciler.runtime.logs import LineWriter

#: The folders watched recursively.
WATCHED = (SPECS_DIR, DATA_DIR, REQUESTS_DIR)


class FolderWatches:
    """The watchdog observer and the folder watches it holds."""

    def __init__(self, root: Path, handler: FileSystemEventHandler, *,
                 log: Callable[..., Any], resync: float) -> None:
        self.root = root
        self.handler = handler
        self.log = log
        self.resync = resync
        self.observer = Observer()
        self._watches: dict[str, tuple[int, ObservedWatch]] = {}

    def start(self) -> None:
        self.observer.schedule(self.handler, str(self.root), recursive=False)
        (self.root / REQUESTS_DIR).mkdir(parents=True, exist_ok=True)
        self.rewatch()
        self.observer.start()

    def stop(self) -> None:
        self.observer.stop()

    def join(self, timeout: float) -> None:
        self.observer.join(timeout=timeout)

    def rewatch(self) -> None:
        """Watch ``specs/``, ``data/`` and the request folder, again if one was created or
        replaced."""
        for folder in WATCHED:
            path = self.root / folder
            try:
                inode = path.stat().st_ino if path.is_dir() else None
            except OSError:
                inode = None
            known = self._watches.get(folder)
            if known and known[0] == inode:
                continue
            if known:
                with contextlib.suppress(KeyError, OSError):
                    self.observer.unschedule(known[1])
                del self._watches[folder]
            if inode is None:
                continue
            try:
                watch = self.observer.schedule(self.handler, str(path), recursive=True)
            except OSError as exc:  # e.g. inotify's watch limit (fs.inotify.max_user_watches)
                self.log("error", flywheel=f"{folder}/", error=f"cannot watch {folder}/: "
                         f"{exc.strerror or exc}; relying on the resync every "
                         f"{self.resync:g}s until it can")
                continue
            self._watches[folder] = (inode, watch)


class _LogLines(logging.Handler):
    """watchdog's own warnings, as the daemon's log lines (not stray text in a JSON log)."""

    def __init__(self, lines: LineWriter) -> None:
        super().__init__(logging.WARNING)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.write({"event": "watcher.warning", "message": record.getMessage()})


def route_watchdog_logs(lines: LineWriter) -> None:
    logger = logging.getLogger("watchdog")
    logger.handlers = [_LogLines(lines)]
    logger.propagate = False
