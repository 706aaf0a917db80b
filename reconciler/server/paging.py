"""``NextToken``/``MaxResults`` paging, as Comprehend's list operations model it.

Lists are sorted by a stable key (a name, an iteration id); a token says where the next page
starts and which operation and filter it belongs to, so a token of another listing is refused
rather than silently misread. Tokens are opaque (URL-safe base64 of a small JSON object).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from reconciler.server.protocol import invalid

T = TypeVar("T")
DEFAULT_PAGE = 100
MAX_TOKEN = 1024


def _scope(operation: str, query: dict[str, Any]) -> str:
    encoded = json.dumps([operation, query], sort_keys=True, default=str).encode()
    return hashlib.sha256(encoded).hexdigest()[:16]


def page(items: Sequence[T], key: Callable[[T], str], params: dict[str, Any], operation: str,
         query: dict[str, Any]) -> tuple[list[T], str | None]:
    """The page of ``items`` (already in listing order, ``key`` strictly monotonic along it)
    that ``params`` asks for, and the token of the next page (None on the last)."""
    size = int(params.get("MaxResults") or DEFAULT_PAGE)
    scope = _scope(operation, query)
    start = 0
    token = params.get("NextToken")
    if token is not None:
        after = _decode(token, scope)
        start = next((i for i, item in enumerate(items) if key(item) == after), -1) + 1
        if start == 0:  # the item it continues from is gone: continue from its place
            start = next((i for i, item in enumerate(items) if _after(key(item), after, items,
                                                                      key)), len(items))
    chosen = list(items[start:start + size])
    more = start + size < len(items)
    return chosen, _encode(key(chosen[-1]), scope) if more and chosen else None


def _after(candidate: str, after: str, items: Sequence[T], key: Callable[[T], str]) -> bool:
    ascending = len(items) < 2 or key(items[0]) <= key(items[-1])
    return candidate > after if ascending else candidate < after


def _encode(after: str, scope: str) -> str:
    raw = json.dumps({"a": after, "s": scope}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(token: object, scope: str) -> str:
    if not isinstance(token, str) or len(token) > MAX_TOKEN:
        raise invalid("NextToken is not a token this server gave")
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error) as exc:
        raise invalid("NextToken is not a token this server gave") from exc
    if not isinstance(data, dict) or not isinstance(data.get("a"), str):
        raise invalid("NextToken is not a token this server gave")
    if data.get("s") != scope:
        raise invalid("NextToken belongs to another listing (another operation, flywheel or "
                      "filter): start again without it")
    after: str = data["a"]
    return after
