"""Bounded safe YAML: text -> plain Python values plus the line of every key.

The YAML is composed into a node tree with PyYAML's *safe* loader (no object construction), then
walked by hand so that we can (1) refuse non-standard tags, duplicate keys, several documents and
over-deep input before building anything, (2) bound alias expansion (a "billion laughs" file is
refused, not expanded), and (3) remember the line of every key, so an error location maps back
to a line in the file. Every refusal is a :class:`SpecError` naming the file and line.
"""

from __future__ import annotations

import contextlib
from typing import Any

import yaml
from yaml.reader import ReaderError

from reconciler.errors import SpecError

MAX_DEPTH = 32
MAX_NODES = 20_000
MAX_INT = 2**63
_STANDARD_TAGS = frozenset(
    "tag:yaml.org,2002:" + name
    for name in ("str", "int", "float", "bool", "null", "seq", "map", "timestamp")
)
_COLLECTION_TAGS = frozenset({"tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"})
_NODE_TAGS: dict[type, str] = {yaml.SequenceNode: "tag:yaml.org,2002:seq",
                               yaml.MappingNode: "tag:yaml.org,2002:map"}

#: A location in a YAML document: the keys and list indexes from its root.
Loc = tuple[str | int, ...]
#: libyaml's safe loader when PyYAML was built with it (15x faster), else the pure-Python one.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)



def parse_yaml(text: str, file: str) -> tuple[Any, dict[Loc, int]]:
    """Safe-compose ``text`` and build plain Python values plus a location -> line map."""
    _check_depth(text, file)
    try:
        loader = _Loader(text)  # its reader already refuses control characters
    except ReaderError as exc:
        raise _reader_error(exc, text, file) from exc
    try:
        root = loader.get_node() if loader.check_node() else None
        if root is None:
            raise SpecError("the file is empty", file=file, line=1)
        extra = loader.get_node() if loader.check_node() else None
        if extra is not None:
            raise SpecError("several YAML documents; put one flywheel per file", file=file,
                            line=extra.start_mark.line + 1)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = exc.problem or exc.context or "malformed YAML"
        raise SpecError(f"malformed YAML: {problem}", file=file, line=line) from exc
    except ReaderError as exc:
        raise _reader_error(exc, text, file) from exc
    except yaml.YAMLError as exc:
        raise SpecError(f"malformed YAML: {str(exc).splitlines()[0]}", file=file) from exc
    finally:
        loader.dispose()
    builder = _Builder(loader, file)
    return builder.build(root, (), 0), builder.lines


def _reader_error(exc: ReaderError, text: str, file: str) -> SpecError:
    """A character YAML does not allow (a NUL, a control character), with its line."""
    line = text[: exc.position].count("\n") + 1
    return SpecError(f"malformed YAML: character {exc.character:#06x} is not allowed", file=file,
                     line=line)


def _check_depth(text: str, file: str) -> None:
    """Refuse over-deep nesting from the event stream, before PyYAML's recursive composer runs
    (a few kilobytes of ``[[[[…`` would otherwise exhaust Python's recursion limit).

    The count is ours whatever the parser does: libyaml (bundled with PyYAML ≥ 6.0.2) refuses
    deep nesting itself with "exceeded maximum nesting depth", and may do so while scanning
    ahead, before it has yielded a single event. When the fast parser fails, the pure-Python
    one, which streams events and has no nesting limit of its own, finds the level and line.
    """
    try:
        _count_depth(text, file, _Loader)
    except yaml.YAMLError:
        if _Loader is yaml.SafeLoader:
            return  # reported with its line by the composer
        with contextlib.suppress(yaml.YAMLError):
            _count_depth(text, file, yaml.SafeLoader)


def _count_depth(text: str, file: str, loader: type[yaml.SafeLoader]) -> None:
    depth = 0
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                mark = event.start_mark
                raise SpecError(f"nested deeper than {MAX_DEPTH} levels", file=file,
                                line=mark.line + 1 if mark else None)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


class _Builder:
    """Turns a composed node tree into dicts, lists and scalars, within limits."""

    def __init__(self, loader: yaml.SafeLoader, file: str) -> None:
        self.loader = loader
        self.file = file
        self.lines: dict[Loc, int] = {}
        self.nodes = 0

    def fail(self, message: str, node: yaml.Node, loc: Loc = ()) -> SpecError:
        return SpecError(message, file=self.file, line=node.start_mark.line + 1,
                         field=dotted(loc) or None)

    def build(self, node: yaml.Node, loc: Loc, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.fail(f"too many YAML nodes (over {MAX_NODES}; aliases count each time)",
                            node)
        if depth > MAX_DEPTH:
            raise self.fail(f"nested deeper than {MAX_DEPTH} levels", node)
        if node.tag not in _STANDARD_TAGS:
            raise self.fail(f"YAML tag {node.tag!r} is not allowed", node, loc)
        self.lines.setdefault(loc, node.start_mark.line + 1)
        kind = _NODE_TAGS.get(type(node))
        if (node.tag in _COLLECTION_TAGS or kind in _COLLECTION_TAGS) and node.tag != kind:
            raise self.fail(f"YAML tag {node.tag!r} does not fit a {getattr(node, 'id', 'node')}",
                            node, loc)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, loc, depth)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*loc, i), depth + 1) for i, item in enumerate(node.value)]
        value = str(node.value)
        shown = repr(value if len(value) <= 40 else value[:39] + "…")
        try:
            result = self.loader.construct_object(node)
        except (ValueError, KeyError, TypeError, AttributeError, yaml.YAMLError) as exc:
            # e.g. ``2001-13-45`` (a timestamp with month 13), an integer of 5,000 digits,
            # ``!!int x``: PyYAML's constructors raise plain Python errors for these.
            raise self.fail(f"cannot read {shown} as {node.tag.rsplit(':', 1)[-1]}", node,
                            loc) from exc
        if isinstance(result, int) and abs(result) >= MAX_INT:
            # a 0x… integer of thousands of digits cannot even be printed in an error message
            raise self.fail(f"integer {shown} is out of range", node, loc)
        return result

    def _mapping(self, node: yaml.MappingNode, loc: Loc, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise self.fail("YAML merge keys (<<) are not allowed", key_node)
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.fail("mapping keys must be plain scalars", key_node)
            key = self.build(key_node, (*loc, "<key>"), depth + 1)
            if not isinstance(key, str):
                key = str(key)
            if key in result:
                raise self.fail(f"duplicate key {key!r}", key_node, (*loc, key))
            self.lines[(*loc, key)] = key_node.start_mark.line + 1
            result[key] = self.build(value_node, (*loc, key), depth + 1)
        return result


def line_of(lines: dict[Loc, int], loc: Loc) -> int | None:
    """The line of the deepest key along ``loc`` that ``lines`` knows (1-based)."""
    for end in range(len(loc), -1, -1):
        line = lines.get(tuple(loc[:end]))
        if line is not None:
            return line
    return None


def dotted(loc: Loc) -> str:
    """``loc`` as a field name: ``datasets[0].path`` (a key that is not printable, quoted)."""
    text = ""
    for step in loc:
        if isinstance(step, int):
            text += f"[{step}]"
            continue
        if not step or not step.isprintable() or len(step) > 60:
            step = repr(step[:60])  # a key is user input: a newline in it must not split the line
        text += f".{step}" if text else step
    return text
