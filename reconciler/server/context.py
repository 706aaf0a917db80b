"""What every operation is handed: the repository handle and the server's settings."""

from __future__ import annotations

import functools
import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reconciler.api.declaring import SourcePolicy
from reconciler.api.repository import Repository
from reconciler.core.arns import Arn, parse_arn
from reconciler.server.protocol import AwsError, invalid

Params = dict[str, Any]
Answer = dict[str, Any]


class Idempotency:
    """Answers of calls that carried a ``ClientRequestToken``, for a retry of the same call.

    Comprehend answers a retried call (same token, same input) as it answered the first, and
    refuses the token with other input; kept in memory for the server's life, bounded.
    """

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._answers: OrderedDict[tuple[str, str], tuple[str, Answer]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def digest(params: Params) -> str:
        rest = {k: v for k, v in params.items() if k != "ClientRequestToken"}
        return hashlib.sha256(json.dumps(rest, sort_keys=True).encode()).hexdigest()

    def replay(self, operation: str, params: Params) -> Answer | None:
        token = params.get("ClientRequestToken")
        if token is None:
            return None
        with self._lock:
            found = self._answers.get((operation, token))
        if found is None:
            return None
        if found[0] != self.digest(params):
            raise AwsError("IdempotentParameterMismatchException", "ClientRequestToken "
                           f"{token!r} was used with other parameters in an earlier "
                           f"{operation}")
        return found[1]

    def remember(self, operation: str, params: Params, answer: Answer) -> None:
        token = params.get("ClientRequestToken")
        if token is None:
            return
        with self._lock:
            self._answers[(operation, token)] = (self.digest(params), answer)
            while len(self._answers) > self.size:
                self._answers.popitem(last=False)


@dataclass
class Context:
    repo: Repository
    sources: SourcePolicy
    clock: Callable[[], float] = time.time
    idempotency: Idempotency = field(default_factory=Idempotency)
    #: The largest text ClassifyDocument takes, in UTF-8 bytes (Comprehend's real-time limit).
    max_text_bytes: int = 10_000


def idempotent(operation: str) -> Callable[[Callable[[Context, Params], Answer]],
                                          Callable[[Context, Params], Answer]]:
    """An operation whose retry with the same ``ClientRequestToken`` gets the first answer."""
    def wrap(run: Callable[[Context, Params], Answer]) -> Callable[[Context, Params], Answer]:
        @functools.wraps(run)
        def call(ctx: Context, params: Params) -> Answer:
            replayed = ctx.idempotency.replay(operation, params)
            if replayed is not None:
                return replayed
            answer = run(ctx, params)
            ctx.idempotency.remember(operation, params, answer)
            return answer

        return call

    return wrap


def arn(params: Params, member: str, *kinds: Any) -> Arn:
    """The resource the ARN in ``params[member]`` names (InvalidRequestException otherwise)."""
    try:
        return parse_arn(params[member], *kinds)
    except ValueError as exc:
        raise invalid(f"{member}: {exc}") from None
