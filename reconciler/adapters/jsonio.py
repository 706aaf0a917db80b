"""The project's one JSON reader: bounded in size and nesting, finite numbers only.

Every record and cache the project reads (lake records, the hash cache, the daemon's status
file, stage outputs, a model file's ``schema.json``) goes through :func:`loads` or :func:`read`:

- at most ``max_bytes`` (a file is measured before it is read, and only regular files are read:
  a FIFO or ``/dev/zero`` would never end);
- at most ``max_depth`` levels of ``[``/``{``, counted by a cheap scan *before* parsing, so
  100,000 nested brackets are one :class:`JsonError`, never a ``RecursionError``;
- numbers finite: ``NaN``, ``Infinity`` and ``1e999`` are refused (they are not JSON, and a
  record holding one would print invalid JSON);

and :func:`dumps` is the matching writer (``allow_nan=False``). :class:`JsonError` is a
``ValueError`` whose message is one line.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from pathlib import Path
from typing import Any

from reconciler import limits

#: Records nest a handful of levels (a model's ``schema.json`` some 25): 32 leaves room.
MAX_DEPTH = 32
#: Tokens that matter to the depth scan: a whole string (brackets inside it do not count), or
#: one bracket. Strings are matched without backtracking (linear in their length).
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.S)


class JsonError(ValueError):
    """A JSON text that is malformed, too big, too deep, or holds a non-finite number."""


def _no_constant(name: str) -> Any:
    raise JsonError(f"{name} is not a finite number (not JSON)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonError(f"{text[:40]} is not a finite number")
    return value


def check_depth(text: str, max_depth: int = MAX_DEPTH) -> None:
    """Raise :class:`JsonError` if ``text`` nests brackets deeper than ``max_depth`` levels."""
    if text.count("[") + text.count("{") <= max_depth:
        return  # cannot be deeper than it has brackets
    depth = 0
    for token in _TOKENS.finditer(text):
        char = token.group()
        if char in "[{":
            depth += 1
            if depth > max_depth:
                line = text.count("\n", 0, token.start()) + 1
                raise JsonError(f"JSON nested deeper than {max_depth} levels (at line {line})")
        elif char in "]}":
            depth -= 1


def loads(data: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` with the depth bound and finite numbers only; :class:`JsonError` else."""
    if isinstance(data, bytes | bytearray):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JsonError(f"not valid UTF-8 (byte {exc.start})") from exc
    check_depth(data, max_depth)
    try:
        return json.loads(data, parse_constant=_no_constant, parse_float=_finite_float)
    except JsonError:
        raise
    except RecursionError as exc:  # not reached below the default bound; kept as a backstop
        raise JsonError("JSON nested too deeply") from exc
    except ValueError as exc:  # JSONDecodeError (line and column), an integer of 5,000 digits
        raise JsonError(f"not valid JSON: {str(exc).splitlines()[0]}") from exc


def read(path: Path, *, max_bytes: int | None = None, max_depth: int = MAX_DEPTH,
         follow_symlinks: bool = True) -> Any:
    """The JSON document in ``path``, bounded (see the module docstring).

    ``max_bytes`` defaults to the record limit (:data:`reconciler.limits.RECORD_BYTES`);
    ``follow_symlinks=False`` refuses a symlink (``O_NOFOLLOW``: for files only this project
    writes, which are never links). ``OSError`` for a file that cannot be opened.
    """
    limit = limits.RECORD_BYTES.value() if max_bytes is None else max_bytes
    flags = os.O_RDONLY | os.O_NONBLOCK | (0 if follow_symlinks else os.O_NOFOLLOW)
    fd = os.open(path, flags)  # O_NONBLOCK: opening a FIFO must not wait for a writer
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise JsonError("not a regular file")
        if info.st_size > limit:
            raise JsonError(f"is {info.st_size} bytes; the limit is {limit} "
                            f"({limits.RECORD_BYTES.hint})")
        data = handle.read(limit + 1)
    if len(data) > limit:  # grew while being read
        raise JsonError(f"is more than {limit} bytes ({limits.RECORD_BYTES.hint})")
    return loads(data, max_depth=max_depth)


def dumps(data: Any, **options: Any) -> str:
    """``json.dumps`` that refuses NaN and infinities (``ValueError``) instead of writing them."""
    return json.dumps(data, allow_nan=False, **options)
