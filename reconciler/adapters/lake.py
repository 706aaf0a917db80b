"""The data lake: every flywheel's observed state as files under ``lake/<name>/``.

Layout (JSON is committed to git; model files are DVC-tracked, never git blobs)::

    lake/<name>/status.json                   active model, pin flag, promotion history
    lake/<name>/iterations/<id>.json          one record per iteration (immutable once finished)
    lake/<name>/versions/<vN>.json            one record per model version (immutable)
    lake/<name>/evaluation/<id>/{trained,active}.json   full evaluations (per label, confusion)
    lake/<name>/models/<vN>.skops             model files, tracked by lake/<name>/models.dvc
    lake/<name>/f1_history.csv                F1 across iterations (derived, for plots)

Every write is atomic; finished iteration records and version records refuse to be rewritten.
A writer killed mid-write leaves a hidden temp file (``.<file>.<random>.tmp``) that no reader
globs; :meth:`Lake.remove_stale_temp_files` deletes those a minute old (every reconcile does).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from reconciler.adapters import dvc
from reconciler.adapters.files import (
    OutsideFolder,
    Unresolvable,
    atomic_write_json,
    create_copy,
    file_lock,
    read_json,
    read_regular,
    remove_stale_temp_files,
    resolve_within,
    sha256_of,
    write_if_changed,
)
from reconciler.adapters.jsonio import JsonError
from reconciler.core.kinds import NAME_PATTERN, VERSION_PATTERN
from reconciler.core.layout import LAKE_DIR, MODEL_SUFFIX, Workspace, flywheel_lock
from reconciler.core.state import (
    FlywheelStatus,
    IterationRecord,
    ModelVersionRecord,
    Observed,
    version_number,
)
from reconciler.errors import StateError, TransientError

#: Age after which a temp file in the lake is a dead writer's (a live one renames it in ms).
STALE_TEMP_SECONDS = 60.0
ITERATION_ID_PATTERN = r"^[0-9]{8}T[0-9]{6}Z$"  # use with re.fullmatch: `$` allows a "\n"
EVALUATIONS = ("trained", "active")
#: A model file in ``lake/<name>/models/``: ``vN.skops`` (group 1: the version).
_MODEL_FILE = re.compile(r"(v[1-9][0-9]{0,8})" + re.escape(MODEL_SUFFIX))
_R = TypeVar("_R", bound=BaseModel)


class Lake:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._hashes: dict[Path, tuple[tuple[int, ...], str]] = {}  # model file -> (stat, sha256)

    def folder(self, name: str) -> Path:
        """``lake/<name>``; a name that is not a flywheel name (``../x``, ``a/b``) is refused."""
        check_name(name)
        return self._inside(self.root / LAKE_DIR / name)

    def _at(self, name: str, relative: PurePosixPath) -> Path:
        """A path of ``core.layout`` for flywheel ``name``: the name checked, and the path
        resolved (through ``lake/<name>`` and every folder on the way) inside ``lake/``."""
        check_name(name)
        return self._inside(self.root / relative)

    def _inside(self, path: Path) -> Path:
        """``path``, unless a symlink on the way leads out of the repository's ``lake/``.

        The lake is committed to git, and git stores symlinks: ``lake/<name>`` (or one of its
        folders) linked elsewhere would make a reconcile read and write outside the repository.
        """
        try:
            resolve_within(self.root, LAKE_DIR, path.absolute())  # path: under self.root
        except Unresolvable as exc:
            raise StateError(f"cannot be resolved: {exc}", file=self._display(path)) from exc
        except OutsideFolder as exc:
            raise StateError(f"resolves outside the repository's {LAKE_DIR}/ folder "
                             f"(to {exc.target})", file=self._display(path)) from None
        return path

    def flywheels(self) -> list[str]:
        base = self.root / LAKE_DIR
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir()
                      if (self.root / Workspace(p.name).status).is_file())

    # reading -------------------------------------------------------------------------------

    def observe(self, name: str) -> Observed:
        """Every record of one flywheel, each checked against the file it came from.

        The lake is committed to git, so its records are input like any other: a record whose
        name, id or version disagrees with its file name, or whose model file lies anywhere but
        ``lake/<name>/models/<vN>.skops``, is refused as corrupt rather than followed.
        """
        ws = Workspace(name)
        status_file = self._at(name, ws.status)
        status = self._load(status_file, FlywheelStatus) if status_file.exists() else None
        if status is not None:
            self._check(status_file, status.flywheel_name == name,
                        f"flywheelName is not {name!r}")
            self._check_version(status_file, "activeModel", status.active_model)
        iterations: list[IterationRecord] = []
        for path in sorted(self._records(self._at(name, ws.iterations)).glob("*.json")):
            record = self._load(path, IterationRecord, listed=True)
            self._check(path, re.fullmatch(ITERATION_ID_PATTERN, path.stem) is not None
                        and record.flywheel_iteration_id == path.stem
                        and record.flywheel_name == name,
                        "flywheelName or flywheelIterationId does not match the file")
            for key in ("trained_model_version", "evaluated_model_version",
                        "claimed_model_version"):
                self._check_version(path, key, getattr(record, key))
            iterations.append(record)
        versions: dict[str, ModelVersionRecord] = {}
        for path in self._records(self._at(name, ws.versions)).glob("v*.json"):
            version = self._load(path, ModelVersionRecord, listed=True)
            self._check_version(path, "version", path.stem)
            self._check(path, version.version == path.stem, "version does not match the file "
                        "name")
            expected = ws.model_file(path.stem).as_posix()
            self._check(path, version.file == expected, f"file must be {expected}")
            versions[path.stem] = version
        return Observed(status=status, iterations=tuple(iterations), versions=versions)

    def _records(self, path: Path) -> Path:
        """A folder of records (``iterations``, ``versions``): inside the lake, and a folder if
        it exists at all. A file in its place would read as "no records" (and a version record
        lost that way is how a version number came to be given twice)."""
        return self._folder(path, "the lake keeps one record per file in it; restore it (git "
                            "checkout) or remove it")

    # the models folder -----------------------------------------------------------------------

    def model_files(self, name: str) -> dict[str, Path]:
        """``vN`` -> ``lake/<name>/models/vN.skops`` for every model file there (temp files and
        other names left out)."""
        folder = self._models(name)
        if not folder.is_dir():
            return {}
        return {match[1]: p for p in folder.iterdir() if (match := _MODEL_FILE.fullmatch(p.name))}

    def tracked_models(self, name: str) -> set[str]:
        """The versions ``lake/<name>/models.dvc`` tracks (empty when nothing is pulled yet)."""
        names = dvc.tracked_files(self.root, self._at(name, Workspace(name).models_dvc))
        return {match[1] for n in names if (match := _MODEL_FILE.fullmatch(n))}

    def remove_orphans(self, name: str, observed: Observed) -> list[str]:
        """Delete the model files iterations that failed before recording their version left in
        the models folder (a file by the claimed name, with the claimed sha256; nothing else is
        touched); the versions removed. Called under the flywheel lock."""
        removed = []
        files = self.model_files(name)
        for version, sha256s in observed.orphans().items():
            path = files.get(version)
            if path is not None and path.is_file() and sha256_of(path) in sha256s:
                path.unlink()
                removed.append(version)
        return removed

    def check_models(self, name: str, versions: dict[str, ModelVersionRecord],
                     archiving: tuple[str, str] | None = None) -> None:
        """Every version record's model file is present with its recorded sha256, and every
        model file has a version record (or is ``archiving``: version, sha256): what ``dvc
        add`` of the folder may record. Anything else is a one-line StateError naming the file
        and the recorded sha256, and the folder must not be re-recorded."""
        expected = {v: r.sha256 for v, r in versions.items()}
        if archiving is not None:
            expected[archiving[0]] = archiving[1]
        files = self.model_files(name)
        for version in sorted(expected, key=version_number):
            path, sha256 = files.get(version), expected[version]
            shown = Workspace(name).model_file(version).as_posix()
            if path is None or not path.exists():
                raise StateError(f"model file of {version} is missing (recorded sha256 "
                                 f"{sha256}): run `dvc pull {self._display(self._models(name))}`"
                                 " (or `dvc checkout`) to restore it; the models folder is not "
                                 "re-recorded", file=shown, flywheel=name)
            found = self._sha256(path) if path.is_file() else "not a regular file"
            if found != sha256:
                raise StateError(f"model file does not match its version record (recorded "
                                 f"sha256 {sha256}, found {found}): restore it (`dvc checkout "
                                 f"{shown}`); the models folder is not re-recorded",
                                 file=shown, flywheel=name)
        for version in sorted(set(files) - set(expected), key=version_number):
            raise StateError(f"no version record describes this model file "
                             f"({Workspace(name).versions}/{version}.json is "
                             "missing): restore the record (git checkout) or remove the file; "
                             "the models folder is not re-recorded",
                             file=self._display(files[version]), flywheel=name)

    def _sha256(self, path: Path) -> str:
        """A model file's sha256; hashed again only when its stat changed (so the check right
        before ``dvc add`` costs one ``stat`` per file already checked by this process)."""
        info = path.stat()
        identity = (info.st_size, info.st_mtime_ns, info.st_ino, info.st_ctime_ns, info.st_dev)
        cached = self._hashes.get(path)
        if cached is not None and cached[0] == identity:
            return cached[1]
        digest = sha256_of(path)
        self._hashes[path] = (identity, digest)
        return digest

    def archive_model(self, name: str, version: str, source: Path) -> Path:
        """Copy a trained model into ``lake/<name>/models/vN.skops``, never over a file there."""
        target = self._models(name) / Workspace(name).model_file(version).name
        try:
            create_copy(source, target)
        except FileExistsError as exc:
            raise StateError("model file already exists: a model file is never overwritten "
                             f"(version {version} was to be archived there)",
                             file=self._display(target), flywheel=name) from exc
        return target

    def _models(self, name: str) -> Path:
        return self._folder(self.root / str(Workspace(name).models), "it holds models", name)

    def _folder(self, path: Path, why: str, flywheel: str | None = None) -> Path:
        """``path``, inside the lake, and a folder if anything is there at all."""
        self._inside(path)
        if (path.exists() or path.is_symlink()) and not path.is_dir():
            raise StateError(f"is not a folder: {why}", file=self._display(path),
                             flywheel=flywheel)
        return path

    def evaluation(self, name: str, iteration_id: str, which: str) -> dict[str, Any] | None:
        """A full evaluation record, or None if there is none; a corrupt one is a StateError."""
        if not re.fullmatch(ITERATION_ID_PATTERN, iteration_id) or which not in EVALUATIONS:
            raise StateError(f"no evaluation {iteration_id[:40]!r}/{which[:20]!r}")
        path = self._at(name, Workspace(name).evaluations / iteration_id / f"{which}.json")
        if not path.exists() and not path.is_symlink():
            return None
        data = self._read(path)
        if not isinstance(data, dict):
            raise StateError("corrupt lake record: not a JSON object", file=self._display(path))
        return data

    def _read(self, path: Path, *, listed: bool = False) -> object:
        """The JSON in one lake file, bounded (:mod:`jsonio`), if it is (through any symlink)
        inside ``lake/``. ``listed``: found in a folder checked to be inside, so one ``lstat``
        (not a symlink) replaces resolving every component of its path."""
        if not listed or path.is_symlink():
            self._inside(path)
        try:
            return read_json(path)
        except (OSError, ValueError) as exc:
            raise StateError(f"corrupt lake record: {_reason(exc)}",
                             file=self._display(path)) from exc

    def _load(self, path: Path, model: type[_R], *, listed: bool = False) -> _R:
        data = self._read(path, listed=listed)
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise StateError(f"corrupt lake record: {_reason(exc)}",
                             file=self._display(path)) from exc

    def _check(self, path: Path, ok: bool, message: str) -> None:
        if not ok:
            raise StateError(f"corrupt lake record: {message}", file=self._display(path))

    def _check_version(self, path: Path, key: str, version: object) -> None:
        if version is not None and not (isinstance(version, str)
                                        and re.fullmatch(VERSION_PATTERN, version)):
            shown = repr(version)[:40]
            raise StateError(f"corrupt lake record: {key} {shown} is not a version like v1",
                             file=self._display(path))

    def _display(self, path: Path) -> str:
        """The path as an error names it: escaped if a name holds a newline or another control
        character (an error stays one line whatever a file is called)."""
        text = path.relative_to(self.root).as_posix()
        return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")

    # writing -------------------------------------------------------------------------------

    def write_status(self, status: FlywheelStatus) -> None:
        name = status.flywheel_name
        atomic_write_json(self._at(name, Workspace(name).status), status.to_json_dict())

    def write_iteration(self, record: IterationRecord) -> None:
        name = record.flywheel_name
        path = self._at(name, Workspace(name).iterations / f"{record.flywheel_iteration_id}.json")
        if path.exists():
            existing = self._load(path, IterationRecord)
            if existing.status.terminal:
                raise StateError("iteration record is finished and immutable",
                                 file=self._display(path))
        atomic_write_json(path, record.to_json_dict())

    def write_version(self, name: str, record: ModelVersionRecord) -> None:
        path = self._at(name, Workspace(name).versions / f"{record.version}.json")
        if path.exists():
            raise StateError("model version record already exists and is immutable",
                             file=self._display(path))
        atomic_write_json(path, record.to_json_dict())

    def write_evaluation(self, name: str, iteration_id: str, which: str,
                         record: dict[str, Any]) -> None:
        atomic_write_json(self._at(name, Workspace(name).evaluations / iteration_id
                                   / f"{which}.json"), record)

    def write_history(self, name: str, iterations: Sequence[IterationRecord]) -> None:
        """Rewrite ``f1_history.csv`` from the records, if it does not hold that already."""
        write_if_changed(self._at(name, Workspace(name).history),
                         _history_text(iterations))

    def history_stale(self, name: str, iterations: Sequence[IterationRecord]) -> bool:
        """Whether ``f1_history.csv`` misses a completed iteration (a crash before its write)."""
        path = self.root / str(Workspace(name).history)
        expected = _history_text(iterations)
        try:
            self._inside(path)  # a link to /dev/zero or out of the repository: rewrite it
            data = read_regular(path, len(expected.encode()) + 1)  # bounded, never blocks
            return data.decode("utf-8") != expected
        except FileNotFoundError:
            return any(it.status.value == "COMPLETED" for it in iterations)
        except (OSError, UnicodeDecodeError, StateError):
            return True

    def remove_stale_temp_files(self, name: str) -> list[Path]:
        """Delete the temp files writers killed mid-write left in ``lake/<name>``; the paths.

        Left alone they would be committed by ``flywheel publish`` (``git add lake``). Only
        files older than :data:`STALE_TEMP_SECONDS`, so that a reconcile that does not hold the
        flywheel's lock never takes a live writer's file away.
        """
        folder = self.folder(name)
        if not folder.is_dir():
            return []
        return remove_stale_temp_files(folder, older_than=STALE_TEMP_SECONDS)

    # locking -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def try_flywheel_lock(self, name: str) -> Iterator[bool]:
        """The exclusive right to change one flywheel, if free now: yields whether it was got.

        At most one process iterates a flywheel at a time; another one skips it instead of
        waiting (the next reconcile sees the finished state).
        """
        try:
            lock = file_lock(self.root / flywheel_lock(name), timeout=0,
                             what=f"flywheel {name}")
            lock.__enter__()
        except TransientError:
            yield False
            return
        try:
            yield True
        finally:
            lock.__exit__(None, None, None)


def check_name(name: str) -> None:
    """A flywheel name (``../x``, ``a/b`` or a 64-character name is refused), as every store
    checks it."""
    if not re.fullmatch(NAME_PATTERN, name) or len(name) > 63:
        raise StateError(f"{name[:80]!r} is not a flywheel name (letters, digits and dashes)")


def _reason(exc: Exception) -> str:
    """What is wrong with a record, in one line (a ``JsonError`` says it plainly)."""
    if isinstance(exc, ValidationError) and exc.errors():
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "the record"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        return f"{where}: {error['msg']}{more}"[:300]
    first = (str(exc).splitlines() or [""])[0]
    if isinstance(exc, JsonError):
        return first
    return f"{exc.__class__.__name__}: {first}"


def _history_text(iterations: Sequence[IterationRecord]) -> str:
    """``f1_history.csv``: one row per COMPLETED iteration, derived from the records."""
    rows = ["step,iteration,trained,active,trainedModel,activeModel"]
    completed = [it for it in iterations if it.status.value == "COMPLETED"]
    for step, it in enumerate(completed, start=1):
        rows.append(",".join([
            str(step), it.flywheel_iteration_id, _num(it.trained_f1), _num(it.active_f1),
            it.trained_model_version or "", it.evaluated_model_version or "",
        ]))
    return "\n".join(rows) + "\n"


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.6f}"
