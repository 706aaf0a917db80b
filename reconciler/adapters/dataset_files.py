"""Declared dataset files on disk: where they resolve, and their content hashes.

A dataset path must resolve inside the repository's ``data/`` folder. Hashes are DVC-compatible
MD5s of the file bytes, cached by file identity and stat so that the no-change reconcile path
reads no dataset bytes at all. Reading a file's rows is :mod:`reconciler.adapters.comprehend_csv`;
a corpus, :mod:`reconciler.adapters.corpus`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from reconciler import limits
from reconciler.adapters.files import (
    OutsideFolder,
    Unresolvable,
    atomic_write_text,
    read_json,
    resolve_within,
)
from reconciler.core.layout import DATA_DIR, HASH_CACHE
from reconciler.core.spec import Dataset, FlywheelSpec
from reconciler.errors import SpecError

_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class DatasetFile:
    """A declared dataset resolved on disk, with its content hash."""

    dataset: Dataset
    md5: str
    size: int


def resolve_inside(root: Path, relative: str) -> Path:
    """``root / relative`` with symlinks resolved; ValueError unless it stays inside ``data/``
    (:func:`~reconciler.adapters.files.resolve_within`)."""
    try:
        return resolve_within(root, DATA_DIR, relative, folder_may_link=True)
    except Unresolvable as exc:
        raise ValueError(f"{relative!r} cannot be resolved: {exc}") from exc
    except OutsideFolder as exc:
        raise ValueError(f"{relative!r} resolves outside the repository's {DATA_DIR}/ folder "
                         f"(to {exc.target})") from None


class HashCache:
    """MD5 of files keyed by (path, size, mtime_ns, inode, ctime_ns), persisted as JSON.

    The cache is a local speed-up under ``.flywheel/`` (not committed); a corrupt or missing cache
    file is silently rebuilt.
    """

    def __init__(self, root: Path) -> None:
        self.path = root / HASH_CACHE
        self.entries: dict[str, list[object]] = {}
        self.dirty = False
        try:  # bounded (size, depth; a link refused): a hostile cache is only re-hashing
            loaded = read_json(self.path, follow_symlinks=False)
            if isinstance(loaded, dict):
                self.entries = loaded
        except (OSError, ValueError):
            pass

    def md5(self, path: Path) -> tuple[str, int]:
        stat = path.stat()
        key = str(path)
        identity = [stat.st_size, stat.st_mtime_ns, stat.st_ino, stat.st_ctime_ns]
        cached = self.entries.get(key)
        if isinstance(cached, list) and cached[:4] == identity and len(cached) == 5:
            return str(cached[4]), stat.st_size
        digest = file_md5(path)
        self.entries[key] = [*identity, digest]
        self.dirty = True
        return digest, stat.st_size

    def save(self) -> None:
        """Write the cache back; a failed write (a full disk) only costs re-hashing later."""
        if self.dirty:
            with contextlib.suppress(OSError):
                atomic_write_text(self.path, json.dumps(self.entries, sort_keys=True))
            self.dirty = False


def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fingerprint(spec: FlywheelSpec, spec_path: str, lines_of: Callable[..., int | None],
                root: Path, cache: HashCache) -> list[DatasetFile]:
    """Resolve and hash every declared dataset; errors name the spec line of the dataset path.

    ``lines_of(*loc)`` maps a spec location to its line number.
    """
    files = []
    max_bytes = limits.DATASET_BYTES.value()
    seen: dict[tuple[int, int], tuple[int, Dataset]] = {}  # (st_dev, st_ino) -> first dataset
    for index, dataset in enumerate(spec.datasets):
        def error(message: str, index: int = index) -> SpecError:
            return SpecError(message, file=spec_path, line=lines_of("datasets", index, "path"),
                             field=f"datasets[{index}].path", flywheel=spec.name)
        try:
            path = resolve_inside(root, dataset.path)
        except ValueError as exc:
            raise error(str(exc)) from exc
        try:
            info = path.stat()
        except OSError:
            raise error(f"dataset file not found: {dataset.path}") from None
        if stat.S_ISDIR(info.st_mode):
            raise error(f"dataset file not found: {dataset.path} is a directory")
        if not stat.S_ISREG(info.st_mode):  # a FIFO or a device would block or never end
            raise error(f"{dataset.path} is not a regular file")
        if info.st_size > max_bytes:  # checked before hashing: do not read what is refused
            raise error(f"{dataset.path} is {info.st_size} bytes; the limit is {max_bytes} "
                        f"({limits.DATASET_BYTES.hint})")
        # One file under two names (a symlink, a hard link): a TRAIN "copy" of the TEST file
        # would be trained and scored on the same documents; allowTestOverlap does not cover it.
        first = seen.setdefault((info.st_dev, info.st_ino), (index, dataset))
        if first[0] != index:
            other = first[1]
            raise error(f"{dataset.path} is the same file as datasets[{first[0]}] "
                        f"{other.name!r} ({other.path}), through a symlink or a hard link: "
                        "declare a file once")
        try:
            md5, size = cache.md5(path)
        except OSError as exc:
            raise error(f"cannot read {dataset.path}: {exc.strerror}") from exc
        files.append(DatasetFile(dataset=dataset, md5=md5, size=size))
    return files
