"""Spec files: safe YAML -> :class:`FlywheelSpec`, with errors that name file, line and field.

The YAML is composed into a node tree with PyYAML's *safe* loader (no object construction), then
walked by hand so that we can (1) refuse non-standard tags, duplicate keys, several documents and
oversized or over-deep input before building anything, (2) bound alias expansion (a "billion
laughs" file is refused, not expanded), and (3) remember the line of every key, so a pydantic
error location maps back to a line in the file.
"""

from __future__ import annotations

import contextlib
import stat
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError
from yaml.reader import ReaderError

from reconciler import limits
from reconciler.core.layout import SPECS_DIR
from reconciler.core.spec import FlywheelSpec, LocatedValueError, Recipe
from reconciler.core.specedit import is_policy_line
from reconciler.errors import MAX_LISTED, SpecError, did_you_mean

MAX_SPEC_BYTES = limits.SPEC_BYTES.default  # the default; FLYWHEEL_MAX_SPEC_BYTES changes it
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

Loc = tuple[str | int, ...]
#: libyaml's safe loader when PyYAML was built with it (15x faster), else the pure-Python one.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


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
        return _line_of(self.lines, loc)

    def error(self, cls: type[SpecError], message: str, *loc: str | int) -> SpecError:
        return cls(message, file=self.path, line=self.line_of(*loc), field=_dotted(loc),
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


def load_spec(path: Path, root: Path) -> SpecFile:
    """Read, parse and validate one spec file; raises :class:`SpecError` on any problem."""
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
        _PARSED.move_to_end((relative, raw))
        return cached
    spec_file = _parse_spec(raw, relative)
    _PARSED[(relative, raw)] = spec_file
    if len(_PARSED) > _PARSED_MAX:
        _PARSED.popitem(last=False)
    return spec_file


#: Specs already parsed in this process, by path and exact content. A long-running process
#: (the watch daemon passes over every spec on each change) parses only what changed; YAML
#: parsing is most of the cost of a pass.
_PARSED: OrderedDict[tuple[str, bytes], SpecFile] = OrderedDict()
_PARSED_MAX = 4096


def _parse_spec(raw: bytes, relative: str) -> SpecFile:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SpecError("not valid UTF-8", file=relative, line=line) from exc
    data, lines = parse_yaml(text, relative)
    if not isinstance(data, dict):
        raise SpecError("a spec must be a YAML mapping (one flywheel per file)", file=relative,
                        line=1)
    try:
        spec = FlywheelSpec.model_validate(data, by_alias=True, by_name=False)
    except ValidationError as exc:
        raise _spec_error(exc, relative, lines) from exc
    return SpecFile(path=relative, spec=spec, lines=lines,
                    policy_managed=_policy_managed(text, lines.get(("activeModel",))))


def _policy_managed(text: str, line: int | None) -> bool:
    if line is None:
        return False
    lines = text.splitlines()
    return line <= len(lines) and is_policy_line(lines[line - 1])


def parse_yaml(text: str, file: str) -> tuple[Any, dict[Loc, int]]:
    """Safe-compose ``text`` and build plain Python values plus a location -> line map."""
    _check_depth(text, file)
    try:
        loader = _Loader(text)  # its reader already refuses control characters
    except ReaderError as exc:
        raise _reader_error(exc, text, file) from exc
    try:
        if not loader.check_node():
            raise SpecError("the file is empty", file=file, line=1)
        root = loader.get_node()
        if loader.check_node():
            extra = loader.get_node()
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
                raise SpecError(f"nested deeper than {MAX_DEPTH} levels", file=file,
                                line=event.start_mark.line + 1)
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
                         field=_dotted(loc) or None)

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
            raise self.fail(f"YAML tag {node.tag!r} does not fit a {node.id}", node, loc)
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


def _spec_error(exc: ValidationError, file: str, lines: dict[Loc, int]) -> SpecError:
    """Every validation error, each one line: the first in the file raised, the others attached
    to it (``others``, at most ``MAX_LISTED``; see reconciler/errors.py); ``str()`` counts them."""
    errors = exc.errors(include_url=False)
    located = sorted((_located_error(error, file, lines) for error in errors[:MAX_LISTED]),
                     key=lambda error: error.line or 0)  # in the order of the file
    first = located[0]
    first.others = tuple(located[1:])
    first.unlisted = max(0, len(errors) - MAX_LISTED)
    return first


def _located_error(error: Any, file: str, lines: dict[Loc, int]) -> SpecError:
    raw_loc = tuple(error["loc"])
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, LocatedValueError):
        raw_loc += cause.loc
    loc = _yaml_loc(raw_loc, lines)
    message = _describe(error)
    if error["type"] == "extra_forbidden" and raw_loc and isinstance(raw_loc[-1], str):
        message += did_you_mean(raw_loc[-1], _fields_at(raw_loc[:-1]))
    return SpecError(message, file=file, line=_line_of(lines, loc), field=_dotted(loc) or None)


def _fields_at(loc: Loc) -> list[str]:
    """The YAML names of the fields allowed at pydantic location ``loc`` (for a suggestion)."""
    models: list[type[BaseModel]] = [FlywheelSpec]
    for step in loc:
        if isinstance(step, int):
            continue  # an item of a list: the same model
        if len(models) > 1:  # a tagged union: pydantic's location names the member's tag
            models = [m for m in models if _tag(m) == step]
            continue
        if not models:
            return []
        fields = {info.alias or name: info for name, info in models[0].model_fields.items()}
        if step not in fields:
            return []
        models = _models_in(fields[step].annotation)
    if len(models) != 1:
        return []
    return [info.alias or name for name, info in models[0].model_fields.items()]


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in get_args(annotation) for model in _models_in(arg)]


def _tag(model: type[BaseModel]) -> object:
    field = model.model_fields.get("algorithm")
    return get_args(field.annotation)[0] if field is not None else None


def _describe(error: Any) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required field is missing"
    message = str(error["msg"])
    message = message.removeprefix("Value error, ")
    if kind not in ("value_error", "assertion_error") and "input" in error:
        shown = repr(error["input"])
        if len(shown) <= 60:
            message += f" (got {shown})"
    return message


_UNION_TAGS = frozenset(
    get_args(member.model_fields["algorithm"].annotation)[0]
    for member in get_args(get_args(Recipe)[0])
)


def _yaml_loc(loc: Loc, lines: dict[Loc, int]) -> Loc:
    """Drop pydantic's steps that are not YAML keys (the recipe union's algorithm tag)."""
    kept: list[str | int] = []
    for step in loc:
        if (*kept, step) in lines or isinstance(step, int) or step not in _UNION_TAGS:
            kept.append(step)  # a key of the file, or a missing field named by the error
    return tuple(kept)


def _line_of(lines: dict[Loc, int], loc: Loc) -> int | None:
    for end in range(len(loc), -1, -1):
        line = lines.get(tuple(loc[:end]))
        if line is not None:
            return line
    return None


def _dotted(loc: Loc) -> str:
    text = ""
    for step in loc:
        if isinstance(step, int):
            text += f"[{step}]"
            continue
        if not step or not step.isprintable() or len(step) > 60:
            step = repr(step[:60])  # a key is user input: a newline in it must not split the line
        text += f".{step}" if text else step
    return text


def _relative(path: Path, root: Path) -> str:
    """``path`` as the user sees it under ``root`` (a symlink is named, not its target)."""
    with contextlib.suppress(ValueError):
        return path.absolute().relative_to(root.absolute()).as_posix()
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except (ValueError, RuntimeError, OSError):
        return str(path)


def _check_inside_specs(path: Path, root: Path, relative: str) -> None:
    """A spec under ``specs/`` must resolve (symlinks included) inside ``specs/``."""
    specs = root.absolute() / SPECS_DIR
    if not path.absolute().is_relative_to(specs):
        return  # a file named directly by a caller (benchmarks), not a repository spec
    try:
        target = path.resolve()
        inside = target.is_relative_to(specs.resolve())
    except (RuntimeError, OSError) as exc:  # RuntimeError: a symlink loop (Python < 3.13)
        raise SpecError(f"cannot be resolved: {exc}", file=relative) from exc
    if not inside:
        raise SpecError(f"resolves outside the repository's {SPECS_DIR}/ folder (to {target})",
                        file=relative)


def load_specs(root: Path) -> tuple[list[SpecFile], list[SpecError]]:
    """Every spec under ``specs/``; a bad file is reported and skipped, the others still load.

    Two files declaring the same flywheel name are both refused: neither may silently win.
    A badly set limit variable (``reconciler/limits.py``) is refused first, for every command:
    it is the operator's mistake, not one spec's.
    """
    limits.check()
    loaded: list[SpecFile] = []
    errors: list[SpecError] = []
    for path in spec_paths(root):
        try:
            loaded.append(load_spec(path, root))
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
        errors.append(spec_file.error(SpecError, f"flywheel name is also declared in {others}",
                                      "name"))
    return unique, errors
