"""Minimal edits of a spec file's text: the policy's ``activeModel`` line and nothing else.

Write-back must not reflow anyone's YAML (re-serialising moves comments, re-indents, folds block
scalars: the most common complaint about GitOps bots). So the edit is textual: the value on the
one marked line is replaced, or one marked line is appended; every other byte stays as it was.
"""

from __future__ import annotations

import re

#: The comment that hands an ``activeModel`` line to the promotion policy. A line without it
#: is a person's pin, which the policy never changes.
POLICY_MARKER = "# flywheel:policy"

_LINE = re.compile(
    r"""^(?P<head>activeModel[ \t]*:[ \t]*)(?P<quote>["']?)(?P<value>v[0-9]+)(?P=quote)"""
    r"""(?P<tail>[ \t]*(?:#.*)?)$"""
)


class SpecEditError(ValueError):
    """The line cannot be edited safely (an unusual layout): nothing was changed."""


def is_policy_line(line: str) -> bool:
    return POLICY_MARKER in line


def set_active_model(text: str, line: int | None, version: str) -> str:
    """``text`` with the policy's ``activeModel`` set to ``version``.

    ``line`` (1-based) is where the spec's ``activeModel`` key is, or None when it has none: then
    a marked line is appended. An existing line must carry the policy marker and the plain
    ``activeModel: vN  # …`` layout at the top level; anything else raises
    :class:`SpecEditError`.
    """
    if not re.fullmatch(r"v[0-9]+", version):
        raise SpecEditError(f"not a model version: {version!r}")
    lines = text.splitlines(keepends=True)
    if line is None:
        if not text:
            return f"activeModel: {version}  {POLICY_MARKER}\n"
        ending = "\r\n" if lines[-1].endswith("\r\n") else "\n"
        separator = "" if text.endswith(("\n", "\r")) else ending
        return f"{text}{separator}activeModel: {version}  {POLICY_MARKER}{ending}"
    if not 1 <= line <= len(lines):
        raise SpecEditError(f"line {line} is outside the file")
    original = lines[line - 1]
    body = original.rstrip("\r\n")
    ending = original[len(body):]
    match = _LINE.fullmatch(body)  # the whole line: `$` alone would allow a final "\n"
    if match is None:
        raise SpecEditError(f"line {line} is not a plain top-level `activeModel: vN` line")
    if not is_policy_line(match.group("tail")):
        raise SpecEditError(f"line {line} has no {POLICY_MARKER!r} marker: it is a person's pin")
    quote = match.group("quote")
    lines[line - 1] = f"{match.group('head')}{quote}{version}{quote}{match.group('tail')}{ending}"
    return "".join(lines)


def pin_active_model(text: str, line: int | None, version: str) -> str:
    """``text`` with ``activeModel`` pinned to ``version`` by a person (the API's
    UpdateFlywheel): the line is rewritten without the policy marker, or appended.

    Unlike :func:`set_active_model`, a person's decision may replace any plain top-level
    ``activeModel: vN`` line, the policy's or a pin; a comment after it that is not the
    marker is kept.
    """
    if not re.fullmatch(r"v[0-9]+", version):
        raise SpecEditError(f"not a model version: {version!r}")
    if line is None:
        lines = text.splitlines(keepends=True)
        ending = "\r\n" if lines and lines[-1].endswith("\r\n") else "\n"
        separator = "" if not text or text.endswith(("\n", "\r")) else ending
        return f"{text}{separator}activeModel: {version}{ending}"
    lines = text.splitlines(keepends=True)
    if not 1 <= line <= len(lines):
        raise SpecEditError(f"line {line} is outside the file")
    original = lines[line - 1]
    body = original.rstrip("\r\n")
    match = _LINE.fullmatch(body)
    if match is None:
        raise SpecEditError(f"line {line} is not a plain top-level `activeModel: vN` line")
    tail = match.group("tail")
    kept = "" if is_policy_line(tail) else tail
    quote = match.group("quote")
    lines[line - 1] = (f"{match.group('head')}{quote}{version}{quote}{kept}"
                       f"{original[len(body):]}")
    return "".join(lines)
