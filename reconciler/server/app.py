"""The ASGI application: Comprehend's JSON 1.1 API at ``POST /``, the web console's pages at
every ``GET`` (:mod:`reconciler.server.console`), one Starlette app.

Per request: the body is read within :data:`~reconciler.server.protocol.MAX_BODY`, the SigV4
signature checked when credentials are configured, the operation found from ``X-Amz-Target``,
the input checked against botocore's model, and the operation run in a worker thread over the
public API (operations block on files and git; the event loop never does). Every request is one
log line: operation, status, error name, milliseconds.
"""

from __future__ import annotations

import time
import traceback
import uuid
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from reconciler.errors import FlywheelError
from reconciler.server import console
from reconciler.server.console.security import Guard
from reconciler.server.context import Context
from reconciler.server.operations import OPERATIONS
from reconciler.server.protocol import (
    CONTENT_TYPE,
    MAX_BODY,
    TARGET_PREFIX,
    AwsError,
    encode,
    from_error,
    parse_body,
    validate,
)
from reconciler.server.sigv4 import AuthError, Verifier

Log = Callable[[dict[str, Any]], None]


def _ignore(_fields: dict[str, Any]) -> None:
    return None


def create_app(ctx: Context, *, verifier: Verifier | None = None, log: Log = _ignore
               ) -> Starlette:
    """The server for one repository; ``verifier`` (None: no signature is checked, for
    loopback only) holds the keys every request must be signed with."""

    async def comprehend(request: Request) -> Response:
        started = time.perf_counter()
        request_id = str(uuid.uuid4())
        operation = (request.headers.get("x-amz-target") or "").removeprefix(TARGET_PREFIX)
        try:
            body = await _read_body(request)
            if verifier is not None:
                _authenticate(verifier, request, body, ctx.clock())
            handler = OPERATIONS.get(operation)
            if handler is None:
                raise _unknown(request.headers.get("x-amz-target"))
            params = parse_body(body)
            validate(operation, params)
            answer = await run_in_threadpool(_run, handler, ctx, params)
            response: Response = Response(encode(answer), media_type=CONTENT_TYPE)
            code = None
        except AwsError as exc:
            response, code = _error(exc), exc.code
        response.headers["x-amzn-RequestId"] = request_id
        log({"event": "request", "operation": operation or "?",
             "status": response.status_code, **({"error": code} if code else {}),
             "ms": round((time.perf_counter() - started) * 1000, 1)})
        return response

    async def ping(_request: Request) -> Response:
        return PlainTextResponse("ok\n")

    guard = Guard(verifier.keys if verifier is not None else None, clock=ctx.clock)
    app = Starlette(routes=[Route("/", comprehend, methods=["POST"]),
                            Route("/ping", ping, methods=["GET"]),
                            *console.routes(ctx, guard)])
    app.state.context = ctx
    return app


def _run(handler: Any, ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """One operation, with the project's errors in Comprehend's names."""
    try:
        answer: dict[str, Any] = handler(ctx, params)
    except AwsError:
        raise
    except FlywheelError as exc:
        raise from_error(exc) from exc
    except Exception as exc:  # a bug: a 500 with the error's name, the traceback in the log
        traceback.print_exc()
        raise AwsError("InternalServerException", f"internal error: {type(exc).__name__}",
                       status=500) from exc
    return answer


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
        raise AwsError("RequestEntityTooLargeException",
                       f"the request body is over {MAX_BODY} bytes", status=413)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise AwsError("RequestEntityTooLargeException",
                           f"the request body is over {MAX_BODY} bytes", status=413)
        chunks.append(chunk)
    return b"".join(chunks)


def _authenticate(verifier: Verifier, request: Request, body: bytes, now: float) -> None:
    scope = request.scope
    path = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
    query = scope.get("query_string", b"").decode("latin-1")
    host = request.headers.get("host", "")
    url = f"http://{host}{path}" + (f"?{query}" if query else "")
    try:
        verifier.verify(request.method, url, request.headers, body, now)
    except AuthError as exc:
        status = 403 if exc.code == "MissingAuthenticationTokenException" else 400
        raise AwsError(exc.code, exc.message, status=status) from exc


def _unknown(target: str | None) -> AwsError:
    if not target:
        return AwsError("UnknownOperationException", "no X-Amz-Target header: name the "
                        f"operation as {TARGET_PREFIX}<Operation>")
    served = ", ".join(sorted(OPERATIONS))
    return AwsError("UnknownOperationException", f"{target} is not served here (served: "
                    f"{served})")


def _error(exc: AwsError) -> Response:
    return Response(encode(exc.body()), status_code=exc.status, media_type=CONTENT_TYPE,
                    headers={"X-Amzn-ErrorType": exc.code})
