"""Small pieces several operations share: filters, tags, the spec's validation errors."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from reconciler.core.spec import MAX_TAGS
from reconciler.server.protocol import AwsError, invalid


def one_filter(value: dict[str, Any] | None) -> dict[str, Any]:
    """A list's ``Filter``: Comprehend allows one of its members at a time."""
    query = {key: item for key, item in (value or {}).items() if item is not None}
    if len(query) > 1:
        raise AwsError("InvalidFilterException", "set one filter at a time (got "
                       f"{', '.join(sorted(query))})")
    return query


def check_time_filter(created: float | None, query: dict[str, Any]) -> bool:
    """Whether a creation time passes ``CreationTimeAfter``/``CreationTimeBefore``."""
    after, before = query.get("CreationTimeAfter"), query.get("CreationTimeBefore")
    if after is None and before is None:
        return True
    if created is None:
        return False
    return (after is None or created > after) and (before is None or created < before)


def tags_from(tags: list[dict[str, str]] | None) -> dict[str, str]:
    """Comprehend's ``[{Key, Value}]`` as a mapping; a key given twice is refused."""
    found: dict[str, str] = {}
    for tag in tags or []:
        key = tag["Key"]
        if key in found:
            raise invalid(f"tag key {key!r} is given twice")
        found[key] = tag.get("Value", "")
    if len(found) > MAX_TAGS:
        raise AwsError("TooManyTagsException", f"{len(found)} tags: a resource has at most "
                       f"{MAX_TAGS}")
    return found


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in sorted(tags.items())]


def spec_validation_error(exc: ValidationError) -> AwsError:
    """The first problem pydantic found in what a request declares, as one line."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return invalid(f"{where}: {first['msg']}" if where else first["msg"])
