"""A pydantic validation error on a spec, as :class:`SpecError` lines naming file, line and field.

Pydantic's error locations are mapped back to the lines :func:`~reconciler.adapters.safe_yaml.
parse_yaml` recorded; an unknown field gets a "did you mean" among the fields allowed there.
"""

from __future__ import annotations

from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from reconciler.adapters.safe_yaml import Loc, dotted, line_of
from reconciler.core.spec import FlywheelSpec, LocatedValueError, Recipe
from reconciler.errors import MAX_LISTED, SpecError, did_you_mean


def spec_error(exc: ValidationError, file: str, lines: dict[Loc, int]) -> SpecError:
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
    return SpecError(message, file=file, line=line_of(lines, loc), field=dotted(loc) or None)


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
