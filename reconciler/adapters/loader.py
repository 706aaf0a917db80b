"""Spec files: found under ``specs/``, read within limits, parsed and validated, cached.

A spec file is read (at most one byte past its size limit), parsed by the bounded safe YAML
parser (:mod:`reconciler.adapters.safe_yaml`) and validated into a :class:`FlywheelSpec`; every
problem is a :class:`SpecError` naming file, line and field (pydantic's errors mapped back by
:mod:`reconciler.adapters.spec_errors`).
"""

from __future__ import annotations

import contextlib
import stat
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from pydantic import ValidationError

from reconciler import limits
from reconciler.adapters.files import (
    OutsideFolder,
    Unresolvable,
    resolve_within,
    utf8_error_line,
)
from reconciler.adapters.safe_yaml import Loc, dotted, line_of, parse_yaml
from reconciler.adapters.spec_errors import spec_error
from reconciler.core.layout import SPECS_DIR
from reconciler.core.spec import FlywheelSpec
from reconciler.core.specedit import is_policy_line
from reconciler.errors import FlywheelError, SpecError

_E = TypeVar("_E", bound=FlywheelError)

MAX_SPEC_BYTES = limits.SPEC_BYTES.default  # the default; FLYWHEEL_MAX_SPEC_BYTES changes it

__all__ = ["MAX_SPEC_BYTES", "SpecFile", "load_spec", "load_specs", "parse_spec_text", "parse_yaml",
           "spec_paths"]


@dataclass(frozen=True)
class SpecFile:
    """A validated spec and where it came from (``path`` is relative to the repository)."""

    path: str
    spec: FlywheelSpec
    lines: dict[Loc, int] = field(repr=False, compare=False)
    #: The ``activeModel`` line carries the policy marker: the policy owns it, not a person.
    policy_managed: bool = False

    def line_of(self, *loc: str | int) -> int | None:
        """The line of the deepest known key along ``loc`` (1-based)."""
        return line_of(self.lines, loc)

    def located(self, cls: type[_E], message: str, *loc: str | int) -> _E:
        """An error of ``cls`` that names this file and the line and field of ``loc``."""
        return cls(message, file=self.path, line=self.line_of(*loc), field=dotted(loc),
                   flywheel=self.spec.name)


def spec_paths(root: Path) -> list[Path]:
    """Every spec file under ``specs/``, sorted, hidden files skipped."""
    folder = root / SPECS_DIR
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.rglob("*")
        if p.suffix in (".yaml", ".yml") and not any(part.startswith(".") for part in
                                                     p.relative_to(folder).parts)
    )


def load_spec(path: Path, root: Path, *, listed: bool = False) -> SpecFile:
    """Read, parse and validate one spec file; raises :class:`SpecError` on any problem.

    ``listed``: ``path`` was found by listing ``specs/`` itself (:func:`spec_paths`) after that
    folder was checked to lie inside the repository, so a file there that is not a symlink is
    inside too: one ``lstat`` instead of resolving every component of its path (a thousand
    specs are read on every listing)."""
    if listed and path.parent == root / SPECS_DIR and not path.is_symlink():
        relative = f"{SPECS_DIR}/{path.name}"
    else:
        relative = _relative(path, root)
        _check_inside_specs(path, root, relative)
    limit = limits.SPEC_BYTES.value()
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise SpecError("is a directory, not a spec file", file=relative)
        if not stat.S_ISREG(info.st_mode):  # a FIFO or a device would block or never end
            raise SpecError("is not a regular file", file=relative)
        if info.st_size > limit:
            raise SpecError(f"file is {info.st_size} bytes; the limit is {limit} "
                            f"({limits.SPEC_BYTES.hint})", file=relative)
        with path.open("rb") as handle:  # read at most one byte past the limit, whatever stat said
            raw = handle.read(limit + 1)
    except OSError as exc:
        raise SpecError(f"cannot read: {exc.strerror}", file=relative) from exc
    if len(raw) > limit:
        raise SpecError(f"file is over the limit of {limit} bytes ({limits.SPEC_BYTES.hint})",
                        file=relative)
    cached = _PARSED.get((relative, raw))
    if cached is not None:
        return cached
    spec_file = _parse_spec(raw, relative)
    _PARSED.put((relative, raw), spec_file)
    return spec_file


class _ParseCache:
    """Specs already parsed in this process, by path and exact content, the least recently used
    dropped past ``size``. A long-running process (the watch daemon passes over every spec on
    each change) parses only what changed; YAML parsing is most of the cost of a pass.

    Safe to share between threads: every access holds the lock. Parsing is done outside it, so
    two threads loading the same new file may both parse it; either result is the same.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[str, bytes], SpecFile] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, bytes]) -> SpecFile | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key: tuple[str, bytes], spec_file: SpecFile) -> None:
        with self._lock:
            self._entries[key] = spec_file
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


_PARSED = _ParseCache(4096)


def parse_spec_text(text: str, relative: str) -> SpecFile:
    """A spec from its text, as :func:`load_spec` reads a file (a writer checks its edit)."""
    return _parse_spec(text.encode("utf-8"), relative)


def _parse_spec(raw: bytes, relative: str) -> SpecFile:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError("not valid UTF-8", file=relative, line=utf8_error_line([raw])) from exc
    data, lines = parse_yaml(text, relative)
    if not isinstance(data, dict):
        raise SpecError("a spec must be a YAML mapping (one flywheel per file)", file=relative,
                        line=1)
    try:
        spec = FlywheelSpec.model_validate(data, by_alias=True, by_name=False)
    except ValidationError as exc:
        raise spec_error(exc, relative, lines) from exc
    return SpecFile(path=relative, spec=spec, lines=lines,
                    policy_managed=_policy_managed(text, lines.get(("activeModel",))))


def _policy_managed(text: str, line: int | None) -> bool:
    if line is None:
        return False
    lines = text.splitlines()
    return line <= len(lines) and is_policy_line(lines[line - 1])


def _relative(path: Path, root: Path) -> str:
    """``path`` as the user sees it under ``root`` (a symlink is named, not its target)."""
    with contextlib.suppress(ValueError):
        return path.absolute().relative_to(root.absolute()).as_posix()
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except (ValueError, RuntimeError, OSError):
        return str(path)


def _folder_inside(root: Path) -> bool:
    """Whether ``specs/`` (a link to a folder of the repository is allowed) lies inside it."""
    try:
        resolve_within(root, SPECS_DIR, SPECS_DIR, folder_may_link=True)
    except ValueError:
        return False  # each file's own check then says why
    return True


def _check_inside_specs(path: Path, root: Path, relative: str) -> None:
    """A spec under ``specs/`` must resolve (symlinks included) inside ``specs/``."""
    if not path.absolute().is_relative_to(root.absolute() / SPECS_DIR):
        return  # a file named directly by a caller (benchmarks), not a repository spec
    try:
        resolve_within(root, SPECS_DIR, path.absolute(), folder_may_link=True)
    except Unresolvable as exc:
        raise SpecError(f"cannot be resolved: {exc}", file=relative) from exc
    except OutsideFolder as exc:
        raise SpecError(f"resolves outside the repository's {SPECS_DIR}/ folder "
                        f"(to {exc.target})", file=relative) from None


def load_specs(root: Path) -> tuple[list[SpecFile], list[SpecError]]:
    """Every spec under ``specs/``; a bad file is reported and skipped, the others still load.

    Two files declaring the same flywheel name are both refused: neither may silently win.
    A badly set limit variable (``reconciler/limits.py``) is refused first, for every command:
    it is the operator's mistake, not one spec's.
    """
    limits.check()
    loaded: list[SpecFile] = []
    errors: list[SpecError] = []
    listed = _folder_inside(root)
    for path in spec_paths(root):
        try:
            loaded.append(load_spec(path, root, listed=listed))
        except SpecError as exc:
            errors.append(exc)
    by_name: dict[str, list[SpecFile]] = {}
    for spec_file in loaded:
        by_name.setdefault(spec_file.spec.name, []).append(spec_file)
    unique = []
    for spec_file in loaded:
        twins = by_name[spec_file.spec.name]
        if len(twins) == 1:
            unique.append(spec_file)
            continue
        others = ", ".join(t.path for t in twins if t is not spec_file)
        errors.append(spec_file.located(SpecError, f"flywheel name is also declared in {others}",
                                      "name"))
    return unique, errors
