"""Crash-safe file primitives: atomic writes, advisory locks, and checks on what a path is.

Every write in the project goes through :func:`atomic_write_bytes`: the bytes land in a temporary
file in the same folder, are flushed to disk, and replace the target with one ``rename``; a crash
leaves either the old file or the new one, never half of either. What it can leave behind is the
temporary file itself (``.<name>.<random>.tmp``, hidden from every glob that reads records);
:func:`remove_stale_temp_files` is how the lake gets rid of those.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import fcntl
import functools
import hashlib
import os
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path, PurePath
from typing import Any

from reconciler import failpoints
from reconciler.adapters import jsonio
from reconciler.errors import Stopped, TransientError

TEMP_PREFIX, TEMP_SUFFIX = ".", ".tmp"


def atomic_write_bytes(path: Path, data: bytes | Iterable[bytes]) -> None:
    """Write ``data`` (bytes, or chunks written as they come) to ``path`` in one ``rename``."""
    _publish(path, [data] if isinstance(data, bytes) else data, os.replace, consumes_temp=True)


def create_copy(source: Path, path: Path) -> None:
    """Copy ``source`` to ``path``, which must not exist: it is never replaced.

    Like :func:`atomic_write_bytes` (temp file, fsync, the same failpoints), but the temp file
    becomes ``path`` with a hard link, which the kernel refuses (``FileExistsError``) when
    ``path`` exists, even one created a moment ago by someone else: a model file is written
    once. Copied in chunks, so a large file never sits in memory.
    """
    if os.path.lexists(path):
        raise FileExistsError(errno.EEXIST, "already exists", str(path))
    with source.open("rb") as origin:
        _publish(path, iter(lambda: origin.read(1 << 20), b""), os.link, consumes_temp=False)


def _publish(path: Path, chunks: Iterable[bytes], place: Callable[[str, Path], None], *,
             consumes_temp: bool) -> None:
    """Write ``chunks`` to a temp file beside ``path``, fsync it, then ``place`` it at ``path``
    (``os.replace``: the temp file is gone; ``os.link``: the temp name is removed after)."""
    point = failpoints.write_kind(path) if failpoints.ARMED else None
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f"{TEMP_PREFIX}{path.name}.",
                                suffix=TEMP_SUFFIX)
    consumed = False
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
            handle.flush()
            if point:
                failpoints.failpoint(f"{point}:before-fsync")
            os.fsync(handle.fileno())
        if point:
            failpoints.failpoint(f"{point}:before-rename")
        place(temp, path)
        consumed = consumes_temp  # os.replace took the temp name; a link leaves it to remove
    finally:
        if not consumed:
            with contextlib.suppress(OSError):
                os.unlink(temp)
    if point:
        failpoints.failpoint(f"{point}:after-rename")
    _fsync_dir(path.parent)


def is_temp_file(name: str) -> bool:
    """Whether ``name`` is one of :func:`atomic_write_bytes`' temporary files."""
    return name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX) and name.count(".") >= 3


def remove_stale_temp_files(folder: Path, *, older_than: float,
                            target: str | None = None) -> list[Path]:
    """Delete the temporary files a killed writer left under ``folder``; the paths removed.

    Only files last modified more than ``older_than`` seconds ago: a live writer's temp file
    exists for the milliseconds between its creation and its rename, so one a minute old has
    no writer any more. ``older_than=0`` is for a caller that knows it is the only writer (it
    holds the lock every writer takes). ``target``: only the temp files of that one file name,
    directly in ``folder``.
    """
    removed: list[Path] = []
    cutoff = time.time() - older_than
    prefix = f"{TEMP_PREFIX}{target}." if target is not None else TEMP_PREFIX
    for current, dirs, names in os.walk(folder):
        if target is not None:
            dirs.clear()
        for name in names:
            if not (is_temp_file(name) and name.startswith(prefix)):
                continue
            path = Path(current, name)
            with contextlib.suppress(FileNotFoundError):
                if older_than <= 0 or path.lstat().st_mtime < cutoff:
                    path.unlink()
                    removed.append(path)
    return removed


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, data: Any) -> None:
    """Write ``data`` as JSON; a NaN or an infinity in it is a ``ValueError``, never written."""
    atomic_write_text(path, jsonio.dumps(data, indent=2, sort_keys=False, ensure_ascii=False)
                      + "\n")


def write_if_changed(path: Path, text: str) -> bool:
    """Atomically write ``text`` unless the file already holds exactly it; True if written."""
    data = text.encode("utf-8")
    try:
        if read_regular(path, len(data) + 1) == data:
            return False
    except OSError:
        pass
    atomic_write_text(path, text)
    return True


def read_regular(path: Path, max_bytes: int) -> bytes:
    """At most ``max_bytes`` of a regular file; ``OSError`` for a FIFO, a device or a folder
    (opened without waiting: a FIFO with no writer would block a plain ``open``)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        return handle.read(max_bytes)


def read_json(path: Path, **bounds: Any) -> Any:
    """The bounded JSON reader (:func:`reconciler.adapters.jsonio.read`): a file too big, too
    deep or not JSON is a :class:`~reconciler.adapters.jsonio.JsonError` (a ``ValueError``)."""
    return jsonio.read(path, **bounds)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def file_lock(path: Path, *, timeout: float | None, what: str,
              stop: Callable[[], bool] | None = None) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path``; wait up to ``timeout`` seconds (None = forever).

    The kernel drops the lock when the process dies, so a crash never leaves a stale lock.
    Raises :class:`TransientError` when the wait runs out, and :class:`Stopped` as soon as
    ``stop()`` is true while waiting (a stop request never waits for another reconciler).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.01
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if deadline is not None and time.monotonic() >= deadline:
                    raise TransientError(
                        f"{what} is busy (another reconciler holds {path.name}); "
                        f"gave up after {timeout:g}s",
                    ) from exc
                if stop is not None and stop():
                    raise Stopped(f"stopped while waiting for {what} (another reconciler "
                                  f"holds {path.name})") from exc
                time.sleep(delay)
                delay = min(delay * 2, 0.25)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file, read a megabyte at a time."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class Unresolvable(ValueError):
    """:func:`resolve_within` could not resolve a path (a symlink loop); ``str()`` is the
    reason the OS gave."""


class OutsideFolder(ValueError):
    """:func:`resolve_within`: a path leads out of its folder; ``target`` is where it leads."""

    def __init__(self, target: Path) -> None:
        super().__init__(f"resolves to {target}")
        self.target = target


def resolve_within(root: Path, folder: str | PurePath, path: str | PurePath, *,
                   folder_may_link: bool = False) -> Path:
    """``root / path`` with every symlink resolved, which must lie inside the repository's
    ``folder``: the real root's own ``folder``, or, with ``folder_may_link`` (a folder that is
    only read), wherever ``root / folder`` itself leads, if that is inside the repository.

    Git stores symlinks, so a committed file or folder linked elsewhere would make a reconcile
    read or write outside the repository (or, for a folder written to, into another of its
    folders). The errors are neutral, each caller words its own: :class:`Unresolvable` (a
    symlink loop) and :class:`OutsideFolder`, both ``ValueError``. An absolute ``path`` is taken
    as it is (``root / path`` is ``path``).
    """
    quick = _without_links(root, folder, path)
    if quick is not None:
        return quick
    try:
        real_root = _real_root(str(root))
        inside = (root / folder).resolve() if folder_may_link else real_root / folder
        target = (root / path).resolve()
    except (RuntimeError, OSError) as exc:  # RuntimeError: a symlink loop (Python < 3.13)
        raise Unresolvable(str(exc)) from exc
    if not (target.is_relative_to(inside) and target.is_relative_to(real_root)):
        raise OutsideFolder(target)
    return target


def _without_links(root: Path, folder: str | PurePath, path: str | PurePath) -> Path | None:
    """:func:`resolve_within`'s answer for the common case, in a few ``lstat`` calls: a
    relative ``path`` under ``folder`` (no ``..``) none of whose components, ``folder``'s
    included, is a symlink resolves to itself under the real root, which is inside. None when
    that does not hold: the full resolution decides. (Each listing checks thousands of dataset
    paths; resolving every component of each was most of a listing's time.)"""
    text, top = os.fspath(path), os.fspath(folder)
    parts = text.split("/")
    if text.startswith("/") or any(p in ("", ".", "..") for p in parts):
        return None
    if top not in ("", ".") and not (text == top or text.startswith(top + "/")):
        return None
    base = str(_real_root(str(root))).rstrip("/")
    current = base
    for part in parts:
        current = f"{current}/{part}"
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            break  # nothing below exists, so nothing below is a link
        except OSError:
            return None
        if stat.S_ISLNK(mode):
            return None
    return Path(f"{base}/{text}")


@functools.lru_cache(maxsize=32)
def _real_root(root: str) -> Path:
    """Where a repository root really is, looked up once per process: every check of a
    reconcile asks about the same root (thousands of times over many flywheels), and the root
    is where the process works, not a folder of the repository that git could make a link."""
    return Path(root).resolve()


def utf8_error_line(chunks: Iterable[bytes]) -> int | None:
    """The line (1-based) of the first byte that is not UTF-8 in ``chunks`` (a file's bytes, in
    order, a block at a time or all at once); None if they all decode."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    newlines = 0
    for chunk in chunks:
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError as exc:  # exc.object: at most 3 pending bytes + chunk
            return newlines + exc.object[: exc.start].count(b"\n") + 1
        newlines += chunk.count(b"\n")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return newlines + 1  # a sequence cut short by the end of the file
    return None
