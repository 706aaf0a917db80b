"""An HTTP POST of a JSON body, retried with back-off and bounded in time (the alarm's webhook).

Standard library only (``urllib``): one request per attempt, each with its own time-out; a
connection error, a time-out, 429 or a 5xx answer is retried after 0.5 s, 1 s, 2 s…; another 4xx
is final (the receiver refused this body; sending it again changes nothing). Never raises: the
result says what happened, for the caller's log.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: The body's media type, and a User-Agent that says who calls.
HEADERS = {"Content-Type": "application/json", "User-Agent": "flywheel-reconciler"}
#: The most of an answer's body read (receivers' error pages are short; none is trusted).
MAX_ANSWER = 4096


@dataclass(frozen=True)
class Delivery:
    url: str
    attempts: int
    status: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def post_json(url: str, body: dict[str, Any], *, timeout: float, retries: int,
              sleep: Callable[[float], None] = time.sleep) -> Delivery:
    """POST ``body`` to ``url``: at most ``retries + 1`` attempts of ``timeout`` seconds each."""
    data = json.dumps(body, ensure_ascii=False, sort_keys=True).encode()
    status: int | None = None
    error: str | None = None
    for attempt in range(1, retries + 2):
        if attempt > 1:
            sleep(0.5 * 2 ** (attempt - 2))
        # http(s) only: the spec's pattern checks the URL
        request = urllib.request.Request(url, data=data, headers=HEADERS, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                answer.read(MAX_ANSWER)
                return Delivery(url, attempt, answer.status, None)
        except urllib.error.HTTPError as exc:
            status, error = exc.code, f"HTTP {exc.code} {exc.reason}"
            if 400 <= exc.code < 500 and exc.code != 429:
                return Delivery(url, attempt, status, error)
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            status = None
            reason = getattr(exc, "reason", exc)
            error = f"{type(reason).__name__}: {reason}"
    return Delivery(url, retries + 1, status, error)
