"""What wakes the daemon: relevant file events, debounced into one wake-up per burst.

An editor's save (write a temp file, rename it over the original), ``cp -r`` of many dataset
files or a ``git pull`` all arrive as bursts of events; :class:`Trigger` turns each burst into a
single wake-up once the files have been quiet for ``quiet`` seconds (or after ``max_delay`` at
the latest, so a never-ending stream cannot starve the loop). Since every reconcile re-reads
everything (level-triggered), coalescing loses nothing: a wake-up only says "look again".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path, PurePosixPath

from watchdog.events import FileSystemEvent, FileSystemEventHandler

from reconciler.core.layout import DATA_DIR, REQUESTS_DIR, SPECS_DIR

#: Event kinds that can change what a reconcile reads (opening or reading a file cannot).
CHANGE_EVENTS = frozenset({"created", "modified", "deleted", "moved", "closed"})
#: Editors' and downloaders' scratch files, and our own atomic-write temp files.
SCRATCH_PATTERNS = ("*.swp", "*.swx", "*.swo", "*~", ".#*", "#*#", "4913", "*.tmp", "*.part",
                    "*.crdownload", ".goutputstream-*", ".~lock.*#")
SPEC_SUFFIXES = (".yaml", ".yml")


class ChangeFilter:
    """Decides whether a path under the repository is one a reconcile reads.

    Specs: ``specs/**/*.yaml`` (hidden files and folders skipped, as the loader does). Data: any
    file under ``data/`` that is not hidden or an editor's scratch file. Requests written by
    ``flywheel iterate`` (``.flywheel/requests/NAME``). Everything else (the
    data lake, pipelines, DVC's cache, ``.git``) is the daemon's own output or irrelevant, so
    writing it never wakes the daemon.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def relevant(self, path: str) -> str | None:
        """The repository-relative path if it matters, else None."""
        try:
            relative = PurePosixPath(Path(path).relative_to(self.root).as_posix())
        except ValueError:
            return None
        parts = relative.parts
        if parts[:2] == tuple(REQUESTS_DIR.split("/")) and len(parts) == 3:
            name = parts[2]
            return None if name.startswith(".") else str(relative)  # `flywheel iterate NAME`
        if len(parts) == 1:  # specs/ or data/ itself appearing, vanishing or being replaced
            return str(relative) if parts[0] in (SPECS_DIR, DATA_DIR) else None
        if parts[0] not in (SPECS_DIR, DATA_DIR):
            return None
        if any(part.startswith(".") for part in parts[1:]):
            return None
        name = parts[-1]
        if any(fnmatch(name, pattern) for pattern in SCRATCH_PATTERNS):
            return None
        if parts[0] == SPECS_DIR and "." in name and not name.endswith(SPEC_SUFFIXES):
            return None  # a README or other non-spec file (folders have no suffix: kept)
        return str(relative)


@dataclass
class Burst:
    """The changed paths of one debounced burst (``count`` may exceed the paths kept)."""

    paths: list[str] = field(default_factory=list)
    count: int = 0
    first: float = 0.0
    last: float = 0.0

    KEEP = 20

    def add(self, path: str, now: float) -> None:
        if not self.count:
            self.first = now
        self.last = now
        self.count += 1
        if path not in self.paths and len(self.paths) < self.KEEP:
            self.paths.append(path)


@dataclass(frozen=True)
class Wake:
    """Why :meth:`Trigger.wait` returned: a finished burst, pokes, or the deadline passing."""

    burst: Burst | None
    pokes: tuple[str, ...]

    @property
    def timed_out(self) -> bool:
        return self.burst is None and not self.pokes


class Trigger:
    """The daemon's wake-up: debounced file changes plus immediate pokes, thread-safe."""

    def __init__(self, *, quiet: float, max_delay: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.quiet = quiet
        self.max_delay = max_delay
        self.clock = clock
        self._cond = threading.Condition()
        self._burst = Burst()
        self._pokes: list[str] = []

    def changed(self, path: str) -> None:
        """A relevant file changed (called from the watchdog thread)."""
        with self._cond:
            self._burst.add(path, self.clock())
            self._cond.notify_all()

    def poke(self, reason: str) -> None:
        """Wake the loop now, without debouncing (a worker finished, a signal arrived)."""
        with self._cond:
            self._pokes.append(reason)
            self._cond.notify_all()

    def wait(self, deadline: float | None) -> Wake:
        """Block until pokes arrive, a burst has settled, or ``deadline`` (monotonic) passes."""
        with self._cond:
            while True:
                now = self.clock()
                ready_at = self._ready_at()
                if self._pokes or (ready_at is not None and now >= ready_at):
                    return self._take(settled=ready_at is not None and now >= ready_at)
                if deadline is not None and now >= deadline:
                    return Wake(None, ())
                wake_at = min(t for t in (ready_at, deadline) if t is not None) \
                    if (ready_at is not None or deadline is not None) else None
                self._cond.wait(None if wake_at is None else max(wake_at - now, 0.001))

    def _ready_at(self) -> float | None:
        if not self._burst.count:
            return None
        return min(self._burst.last + self.quiet, self._burst.first + self.max_delay)

    def _take(self, *, settled: bool) -> Wake:
        burst = None
        if settled:
            burst, self._burst = self._burst, Burst()
        pokes, self._pokes = tuple(self._pokes), []
        return Wake(burst, pokes)


class ChangeHandler(FileSystemEventHandler):
    """watchdog -> :class:`Trigger`, keeping only events that change what a reconcile reads."""

    def __init__(self, changes: ChangeFilter, trigger: Trigger) -> None:
        self.changes = changes
        self.trigger = trigger

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in CHANGE_EVENTS:
            return
        if event.is_directory and event.event_type == "modified":
            return  # a folder's own mtime moving: the file events that caused it are enough
        for path in (event.src_path, getattr(event, "dest_path", "")):
            if not path:
                continue
            relevant = self.changes.relevant(_text(path))
            if relevant is not None:
                self.trigger.changed(relevant)


def _text(path: str | bytes) -> str:
    return path.decode("utf-8", "surrogateescape") if isinstance(path, bytes) else path
