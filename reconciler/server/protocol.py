"""Comprehend's wire protocol as a server sees it: AWS JSON 1.1.

Every operation is ``POST /`` with ``X-Amz-Target: Comprehend_20171127.<Operation>`` and a
JSON body (``{}`` when empty; an empty body is accepted too). Answers are JSON with epoch-second
timestamps; errors are ``{"__type": <name>, "Message": ...}`` with the same name in an
``X-Amzn-ErrorType`` header (botocore reads the body, other SDKs the header), 400 for what the
client did, 500 for InternalServerException.

Inputs are checked against botocore's own service model, so the server accepts exactly what
the model defines: required members, types, lengths, ranges, enums and patterns, and no member
the model does not know (nothing is silently dropped). Failures read as AWS's
ValidationException does (``1 validation error detected: Value 'x' at 'flywheelName' failed to
satisfy constraint: ...``).
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping
from typing import Any, Final

import regex

from reconciler.errors import (
    ConflictError,
    FlywheelError,
    NotFoundError,
    PipelineError,
    QuotaError,
    TransientError,
)

TARGET_PREFIX: Final = "Comprehend_20171127."
CONTENT_TYPE: Final = "application/x-amz-json-1.1"
#: The largest request body read: Comprehend's largest inputs (a document, a tag list, a
#: CreateFlywheel with 1,000 labels of up to 5,000 characters) fit with room; more is refused
#: before it is parsed.
MAX_BODY: Final = 6 * 1024 * 1024
#: JSON nesting deeper than any shape of the model is refused before it is parsed further.
MAX_DEPTH: Final = 16
MAX_LISTED_ERRORS: Final = 5


class AwsError(Exception):
    """An error answer: ``code`` is the exception name sent as ``__type``."""

    def __init__(self, code: str, message: str, *, status: int = 400,
                 fields: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status
        self.fields = dict(fields or {})

    def body(self) -> dict[str, Any]:
        return {"__type": self.code, "Message": self.message, **self.fields}


def invalid(message: str) -> AwsError:
    return AwsError("InvalidRequestException", message)


def not_found(message: str) -> AwsError:
    return AwsError("ResourceNotFoundException", message)


def in_use(message: str) -> AwsError:
    return AwsError("ResourceInUseException", message)


def from_error(exc: FlywheelError) -> AwsError:
    """The project's error tree in Comprehend's names (one place: see ``errors.py``)."""
    message = str(exc)
    if isinstance(exc, NotFoundError):
        return not_found(message)
    if isinstance(exc, ConflictError):
        return in_use(message)
    if isinstance(exc, QuotaError):
        return AwsError("ResourceLimitExceededException", message)
    if isinstance(exc, TransientError):
        return AwsError("TooManyRequestsException", message)
    if isinstance(exc, PipelineError):
        return AwsError("InternalServerException", message, status=500)
    return invalid(message)  # what the request asked for cannot be done: it says why


# the service model ------------------------------------------------------------------------------


@functools.cache
def service_model() -> Any:
    """botocore's model of Comprehend (loaded once; about 50 ms)."""
    import botocore.session

    return botocore.session.get_session().get_service_model("comprehend")


def parse_body(raw: bytes) -> dict[str, Any]:
    """The request's JSON object; anything else is AWS's SerializationException."""
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise AwsError("SerializationException", "the request body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise AwsError("SerializationException", "the request body must be a JSON object")
    if _depth(data) > MAX_DEPTH:
        raise AwsError("SerializationException",
                       f"the request body is nested deeper than {MAX_DEPTH} levels")
    return data


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _depth(value: Any) -> int:
    stack = [(value, 1)]
    deepest = 0
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            return deepest
        children = item.values() if isinstance(item, dict) else item if isinstance(
            item, list) else ()
        stack.extend((child, level + 1) for child in children)
    return deepest


def validate(operation: str, params: dict[str, Any]) -> None:
    """Check ``params`` against the operation's input shape in botocore's model."""
    shape = service_model().operation_model(operation).input_shape
    problems: list[str] = []
    if shape is not None:
        _check(shape, params, "", problems)
    elif params:
        problems.append("the operation takes no input")
    if problems:
        count = len(problems)
        shown = "; ".join(problems[:MAX_LISTED_ERRORS])
        more = f"; and {count - MAX_LISTED_ERRORS} more" if count > MAX_LISTED_ERRORS else ""
        raise AwsError("ValidationException", f"{count} validation error"
                       f"{'s' if count > 1 else ''} detected: {shown}{more}")


def _member_path(parent: str, name: str) -> str:
    lower = name[:1].lower() + name[1:]
    return f"{parent}.{lower}" if parent else lower


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)[:80]
    return repr(text if len(text) <= 80 else text[:77] + "...")


def _fail(problems: list[str], value: Any, at: str, constraint: str) -> None:
    problems.append(f"Value {_shown(value)} at '{at}' failed to satisfy constraint: {constraint}")


def _check(shape: Any, value: Any, at: str, problems: list[str]) -> None:
    kind = shape.type_name
    checker = _CHECKERS.get(kind)
    if checker is None:  # a blob: Bytes documents (PDF, Word, images), not served here
        _fail(problems, "...", at, f"Member of type {kind} is not accepted by this server: "
              "send documents as Text")
        return
    checker(shape, value, at, problems)


def _check_structure(shape: Any, value: Any, at: str, problems: list[str]) -> None:
    if not isinstance(value, dict):
        _fail(problems, value, at or "request", "Member must be a structure")
        return
    for name in shape.required_members:
        if value.get(name) is None:
            problems.append(f"Value null at '{_member_path(at, name)}' failed to satisfy "
                            "constraint: Member must not be null")
    for name, item in value.items():
        member = shape.members.get(name)
        if member is None:
            problems.append(f"Unknown member {name!r} at '{at or 'request'}': "
                            f"{shape.name} has no such member")
        elif item is not None:
            _check(member, item, _member_path(at, name), problems)


def _check_string(shape: Any, value: Any, at: str, problems: list[str]) -> None:
    if not isinstance(value, str):
        _fail(problems, value, at, "Member must be a string")
        return
    _check_length(shape, len(value), value, at, problems)
    if shape.enum and value not in shape.enum:
        _fail(problems, value, at, f"Member must satisfy enum value set: [{', '.join(shape.enum)}]")
    pattern = shape.metadata.get("pattern")
    if pattern and not _compiled(pattern).search(value) and not _local_input(shape, value):
        _fail(problems, value, at, f"Member must satisfy regular expression pattern: {pattern}")


def _local_input(shape: Any, value: str) -> bool:
    """An input file given as a local path (``file://…`` or a path) where Comprehend's model
    says ``s3://``: the server reads those from the folders its operator allows (and refuses
    every other path itself), so the model's pattern does not refuse them first."""
    return shape.name == "S3Uri" and not value.startswith("s3://")


@functools.cache
def _compiled(pattern: str) -> Any:
    return regex.compile(pattern)


def _check_length(shape: Any, size: int, value: Any, at: str, problems: list[str]) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and size < low:
        _fail(problems, value, at, f"Member must have length greater than or equal to {low}")
    if high is not None and size > high:
        _fail(problems, value, at, f"Member must have length less than or equal to {high}")


def _check_number(shape: Any, value: Any, at: str, problems: list[str]) -> None:
    integral = shape.type_name in ("integer", "long")
    if isinstance(value, bool) or not isinstance(value, int | float) or (
            integral and not isinstance(value, int)) or (
            isinstance(value, float) and not math.isfinite(value)):
        _fail(problems, value, at, f"Member must be {'an integer' if integral else 'a number'}")
        return
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and value < low:
        _fail(problems, value, at, f"Member must have value greater than or equal to {low}")
    if high is not None and value > high:
        _fail(problems, value, at, f"Member must have value less than or equal to {high}")


def _check_boolean(shape: Any, value: Any, at: str, problems: list[str]) -> None:
    if not isinstance(value, bool):
        _fail(problems, value, at, "Member must be a boolean")


def _check_timestamp(shape: Any, value: Any, at: str, problems: list[str]) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        _fail(problems, value, at, "Member must be a timestamp in epoch seconds")


def _check_list(shape: Any, value: Any, at: str, problems: list[str]) -> None:
    if not isinstance(value, list):
        _fail(problems, value, at, "Member must be a list")
        return
    _check_length(shape, len(value), value, at, problems)
    for index, item in enumerate(value):
        if item is None:
            _fail(problems, item, f"{at}.{index + 1}.member", "Member must not be null")
        else:
            _check(shape.member, item, f"{at}.{index + 1}.member", problems)


def _check_map(shape: Any, value: Any, at: str, problems: list[str]) -> None:
    if not isinstance(value, dict):
        _fail(problems, value, at, "Member must be a map")
        return
    _check_length(shape, len(value), value, at, problems)
    for key, item in value.items():
        _check(shape.key, key, f"{at}.key", problems)
        _check(shape.value, item, f"{at}.{key}", problems)


_CHECKERS = {
    "structure": _check_structure,
    "string": _check_string,
    "integer": _check_number,
    "long": _check_number,
    "float": _check_number,
    "double": _check_number,
    "boolean": _check_boolean,
    "timestamp": _check_timestamp,
    "list": _check_list,
    "map": _check_map,
}


def encode(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")
