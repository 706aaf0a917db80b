"""Edit a hand-written YAML document by node path without reflowing it.

The HTTP API changes flywheel specs as git commits; people review those diffs, so an edit must
touch only the bytes of the node it changes: comments, key order, quoting and indentation stay.
We therefore never re-dump a document. PyYAML's *safe composer* gives every node its text span
(``start_mark``/``end_mark``); an edit splices new text into that span. Block collections' end
marks can run past blank and comment lines that belong to what follows, so a span is trimmed to
its last line of content, found from its last *scalar* (a comment-like line inside a ``|``
scalar is content, not a comment). Every edit is then checked by parsing old and new text:
the new data must equal the old data with exactly the intended change, or :class:`EditError`.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from typing import Any

import yaml

#: Mapping keys (str) and sequence indexes (int) from the root mapping; ``()`` is the root.
Path = tuple[str | int, ...]

MAX_BYTES = 1_000_000
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_UNPARSABLE = object()  # what a new text that no longer parses reads as: equal to nothing


class EditError(ValueError):
    """The edit cannot be made safely (flow style where block is needed, a path that is not there,
    an unusual layout): nothing was changed. The message says why in one line, naming the path."""


class _IndentedDumper(yaml.SafeDumper):
    """Indents a sequence's dashes under its key (``key:\\n  - a``), as our specs are written."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


@dataclass(frozen=True)
class _Doc:
    """A parsed document plus the layout habits that new text must imitate."""

    text: str
    root: yaml.MappingNode
    data: dict[Any, Any]
    nl: str
    step: int
    indented_seqs: bool


def _fmt(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(root)"


def _parse(text: str) -> _Doc:
    """Compose ``text`` safely (one document, a block mapping at the root) and read its style."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise EditError(f"the document is over {MAX_BYTES} bytes")
    try:
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
        finally:
            loader.dispose()
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise EditError(f"the document is not one valid YAML document: {problem}") from exc
    if not isinstance(root, yaml.MappingNode) or not isinstance(data, dict):
        raise EditError("the document's root is not a mapping")
    nl = "\r\n" if "\r\n" in text else "\n"
    step, indented = _layout(text, root)
    return _Doc(text, root, data, nl, step, indented)


def _layout(text: str, root: yaml.MappingNode) -> tuple[int, bool]:
    """The document's mapping indent step and whether it indents dashes under their key."""
    step: int | None = None
    indented: bool | None = None
    stack: list[yaml.Node] = [root]
    while stack and (step is None or indented is None):
        node = stack.pop()
        if isinstance(node, yaml.MappingNode) and not _is_flow(text, node):
            for key, value in node.value:
                below = value.start_mark.line > key.start_mark.line
                if below and isinstance(value, yaml.MappingNode) and step is None:
                    step = value.start_mark.column - key.start_mark.column
                if below and isinstance(value, yaml.SequenceNode) and indented is None:
                    indented = value.start_mark.column > key.start_mark.column
                stack.append(value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    step = step if step is not None and 2 <= step <= 9 else 2
    return step, True if indented is None else indented


def _is_flow(text: str, node: yaml.Node) -> bool:
    return text[node.start_mark.index : node.start_mark.index + 1] in ("[", "{")


def _check_node(doc: _Doc, node: yaml.Node, path: Path) -> None:
    """Refuse anchors, aliases, explicit tags and merge keys: splicing near them is not safe."""
    if doc.text[node.start_mark.index : node.start_mark.index + 1] in ("&", "*", "!"):
        raise EditError(f"{_fmt(path)} uses an anchor, alias or tag; edit it by hand")
    if isinstance(node, yaml.MappingNode) and any(k.tag == _MERGE_TAG for k, _ in node.value):
        raise EditError(f"{_fmt(path)} uses a merge key (<<); edit it by hand")


def _lookup(node: yaml.MappingNode, key: str, path: Path) -> tuple[yaml.Node, yaml.Node] | None:
    hits = [(k, v) for k, v in node.value
            if isinstance(k, yaml.ScalarNode) and k.tag == _STR_TAG and k.value == key]
    if len(hits) > 1:
        raise EditError(f"{_fmt(path)} is a duplicate key")
    return hits[0] if hits else None


def _child(doc: _Doc, node: yaml.Node, part: str | int, path: Path) -> tuple[yaml.Node | None,
                                                                               yaml.Node]:
    """The key node (None in a sequence) and value node of ``part`` under ``node``."""
    if isinstance(node, yaml.MappingNode) and isinstance(part, str):
        hit = _lookup(node, part, path)
        if hit is not None:
            _check_node(doc, hit[0], path)
            _check_node(doc, hit[1], path)
            return hit
    elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and not isinstance(
            part, bool) and 0 <= part < len(node.value):
        _check_node(doc, node.value[part], path)
        return None, node.value[part]
    raise EditError(f"{_fmt(path)} is not in the document")


def _walk(doc: _Doc, path: Path) -> tuple[yaml.Node | None, yaml.Node]:
    key: yaml.Node | None = None
    node: yaml.Node = doc.root
    _check_node(doc, node, ())
    for i, part in enumerate(path):
        key, node = _child(doc, node, part, path[: i + 1])
    return key, node


def _block(doc: _Doc, node: yaml.Node, path: Path, kind: type) -> None:
    if not isinstance(node, kind):
        what = "a mapping" if kind is yaml.MappingNode else "a list"
        raise EditError(f"{_fmt(path)} is not {what}")
    if _is_flow(doc.text, node):
        raise EditError(f"{_fmt(path)} is written in flow style; edit it by hand")


# -- spans -----------------------------------------------------------------------------------

def _content_end(text: str, node: yaml.Node) -> int:
    """Where ``node``'s own text ends: its last scalar's end, never trailing comments/blanks."""
    while isinstance(node, yaml.MappingNode | yaml.SequenceNode) and node.value and not _is_flow(
            text, node):
        last = node.value[-1]
        child = last[1] if isinstance(node, yaml.MappingNode) else last
        if child.start_mark.index < node.start_mark.index:
            raise EditError("the edited part ends with an alias; edit it by hand")
        node = child
    end: int = node.end_mark.index
    if isinstance(node, yaml.ScalarNode) and node.style in ("|", ">"):
        while end > node.start_mark.index and text[end - 1] in " \t\r\n":
            end -= 1
    return end


def _bol(text: str, i: int) -> int:
    return text.rfind("\n", 0, i) + 1


def _eol(text: str, i: int) -> int:
    j = text.find("\n", i)
    j = len(text) if j < 0 else j
    return j - 1 if j > i and text[j - 1] == "\r" else j


def _next_line(text: str, i: int) -> int:
    j = text.find("\n", i)
    return len(text) if j < 0 else j + 1


def _colon_end(text: str, key: yaml.Node) -> int:
    i = key.end_mark.index
    while text[i : i + 1] in (" ", "\t"):
        i += 1
    if text[i : i + 1] != ":":
        raise EditError("a key is written in an unusual layout; edit it by hand")
    return i + 1


def _splice(text: str, start: int, end: int, new: str) -> str:
    return text[:start] + new + text[end:]


def _insert_after_line(doc: _Doc, at: int, lines: list[str]) -> str:
    """Insert whole ``lines`` after the line holding ``at``, even on an unterminated last line."""
    eol = _eol(doc.text, at)
    block = doc.nl.join(lines)
    if eol == len(doc.text):
        return doc.text + doc.nl + block
    nxt = _next_line(doc.text, eol)
    return _splice(doc.text, nxt, nxt, block + doc.nl)


def _delete_lines(doc: _Doc, start: int, at: int) -> str:
    """Delete from ``start`` (a line start) through the line holding ``at``."""
    end = _next_line(doc.text, at)
    if end == len(doc.text) and not doc.text.endswith("\n") and start > 0:
        start = start - len(doc.nl) if doc.text[start - 2 : start] == "\r\n" else start - 1
    return _splice(doc.text, start, end, "")


# -- rendering -------------------------------------------------------------------------------

def _dump(doc: _Doc, value: object) -> list[str]:
    """Block-style YAML for ``value`` in the document's style, as lines starting at column 0."""
    dumper = _IndentedDumper if doc.indented_seqs else yaml.SafeDumper
    try:
        out = str(yaml.dump(value, Dumper=dumper, indent=doc.step, default_flow_style=False,
                            sort_keys=False, allow_unicode=True, width=10**6))
    except yaml.YAMLError as exc:
        raise EditError(f"the value cannot be written as YAML: {exc}") from exc
    return out.rstrip("\n").split("\n")


def _indent(lines: list[str], column: int) -> list[str]:
    return [" " * column + line if line else line for line in lines]


def _inline(value: object) -> str:
    """One-line YAML for a scalar or an empty collection, quoted whenever plain would misread."""
    try:
        out = yaml.safe_dump([value], default_flow_style=False, allow_unicode=True, width=10**6)
    except yaml.YAMLError as exc:
        raise EditError(f"the value cannot be written as YAML: {exc}") from exc
    body = out[2:].rstrip("\n")
    if "\n" in body:
        if not isinstance(value, str):
            raise EditError("the value cannot be written on one line")
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a YAML "..." scalar
    return body


def _is_block_value(value: object) -> bool:
    return isinstance(value, dict | list) and bool(value)


# -- the edits -------------------------------------------------------------------------------

def _insert_key(doc: _Doc, parent: yaml.Node, key: str, value: object, path: Path) -> str:
    _block(doc, parent, path[:-1], yaml.MappingNode)
    lines = _indent(_dump(doc, {key: value}), parent.start_mark.column)
    return _insert_after_line(doc, _content_end(doc.text, parent), lines)


def _replace_inline(doc: _Doc, key: yaml.Node | None, node: yaml.Node, value: object) -> str:
    text, new = doc.text, _inline(value)
    end = _content_end(text, node)
    if isinstance(node, yaml.ScalarNode) or _is_flow(text, node) or key is None:
        start = node.start_mark.index
        if start == end and text[start - 1 : start] == ":":
            new = " " + new  # an empty value: `key:` becomes `key: value`
        return _splice(text, start, end, new)
    colon = _colon_end(text, key)  # a block collection becomes `key: value  # key's comment`
    tail = text[colon : _eol(text, colon)]
    return _splice(text, colon, _eol(text, end), " " + new + (tail if tail.strip() else ""))


def _replace_block(doc: _Doc, key: yaml.Node | None, node: yaml.Node, value: object) -> str:
    text, lines = doc.text, _dump(doc, value)
    end = _eol(text, _content_end(text, node))
    if key is None:  # a sequence item: the first line goes after its dash
        start = node.start_mark.index
        return _splice(text, start, end, doc.nl.join(
            lines[:1] + _indent(lines[1:], node.start_mark.column)))
    column = key.start_mark.column
    if isinstance(value, dict) or doc.indented_seqs:
        column += doc.step
    block = doc.nl.join(_indent(lines, column))
    if node.start_mark.line > key.start_mark.line:  # already on the lines below its key
        start = _bol(text, node.start_mark.index)
        if text[start : node.start_mark.index].strip():
            raise EditError("a value is written in an unusual layout; edit it by hand")
        return _splice(text, start, end, block)
    colon = _colon_end(text, key)
    tail = text[_content_end(text, node) : end]  # a trailing comment moves to the key's line
    return _splice(text, colon, end, tail + doc.nl + block)


def set_value(text: str, path: Path, value: object) -> str:
    """Replace the node at ``path`` with ``value``, or add ``key: value`` to its parent mapping."""
    doc = _parse(text)
    if not path:
        raise EditError("the root mapping cannot be replaced")
    _, parent = _walk(doc, path[:-1])
    last = path[-1]
    if isinstance(parent, yaml.MappingNode) and isinstance(last, str) and _lookup(
            parent, last, path) is None:
        new = _insert_key(doc, parent, last, value, path)
    else:
        key, node = _child(doc, parent, last, path)
        if _is_block_value(value) and _is_flow(doc.text, parent):
            raise EditError(f"{_fmt(path[:-1])} is written in flow style; edit it by hand")
        replace = _replace_block if _is_block_value(value) else _replace_inline
        new = replace(doc, key, node, value)
    return _verified(doc, new, path, path[:-1], lambda box: box.__setitem__(last, value))


def delete_key(text: str, path: Path) -> str:
    """Remove ``key: value`` (the key's line through the value's last line) from a mapping."""
    doc = _parse(text)
    if not path or not isinstance(path[-1], str):
        raise EditError(f"{_fmt(path)} does not name a key")
    _, parent = _walk(doc, path[:-1])
    _block(doc, parent, path[:-1], yaml.MappingNode)
    key, node = _child(doc, parent, path[-1], path)
    assert key is not None
    if len(parent.value) == 1:
        raise EditError(f"deleting {_fmt(path)} would leave an empty mapping; set it to {{}}")
    start = _bol(doc.text, key.start_mark.index)
    if doc.text[start : key.start_mark.index].strip():
        raise EditError(f"{_fmt(path)} shares its line with a '- '; edit it by hand")
    new = _delete_lines(doc, start, _content_end(doc.text, node))
    return _verified(doc, new, path, path[:-1], lambda box: box.pop(path[-1]))


def append_item(text: str, path: Path, item: object) -> str:
    """Append ``item`` to the block sequence at ``path``, creating the key when it is missing."""
    doc = _parse(text)
    if path and isinstance(path[-1], str):
        _, parent = _walk(doc, path[:-1])
        if isinstance(parent, yaml.MappingNode) and _lookup(parent, path[-1], path) is None:
            return set_value(text, path, [item])
    _, node = _walk(doc, path)
    _block(doc, node, path, yaml.SequenceNode)
    lines = _indent(_dump(doc, [item]), node.start_mark.column)
    new = _insert_after_line(doc, _content_end(doc.text, node), lines)
    return _verified(doc, new, path, path, lambda box: box.append(item))


def delete_item(text: str, path: Path, index: int) -> str:
    """Remove item ``index`` (0-based, not negative) of the block sequence at ``path``."""
    doc = _parse(text)
    _, seq = _walk(doc, path)
    _block(doc, seq, path, yaml.SequenceNode)
    where = (*path, index)
    _, item = _child(doc, seq, index, where)
    if len(seq.value) == 1:
        raise EditError(f"deleting {_fmt(where)} would leave an empty list; set it to []")
    start = _bol(doc.text, item.start_mark.index)
    dash = start + seq.start_mark.column
    if doc.text[start:dash].strip() or doc.text[dash : dash + 1] != "-":
        raise EditError(f"{_fmt(where)} is written in an unusual layout; edit it by hand")
    new = _delete_lines(doc, start, _content_end(doc.text, item))
    return _verified(doc, new, where, path, lambda box: box.pop(index))


# -- verification ----------------------------------------------------------------------------

def _verified(doc: _Doc, new: str, path: Path, box_path: Path, change: Any) -> str:
    """Return ``new`` only if it parses to the old data with ``change`` applied to the
    collection at ``box_path`` (the parent of ``path``, or the list itself)."""
    expected = copy.deepcopy(doc.data)
    box: Any = expected
    for part in box_path:
        box = box[part]
    change(box)
    try:
        got = yaml.safe_load(new)
    except yaml.YAMLError:
        got = _UNPARSABLE
    if not _same(got, expected):
        raise EditError(f"the edit would change more than {_fmt(path)}; edit it by hand")
    return new


def _same(a: object, b: object) -> bool:
    """Equality that also compares types and key order (``1 == True == 1.0`` is not enough)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b
