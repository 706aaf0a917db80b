"""The console's plumbing: templates, the session on every request, and the guarded call.

Every page and action goes through :func:`handler`: the Host check (no credentials: loopback
names only), the session cookie (made on the first visit), sign-in when credentials are
configured, and for a POST the origin and the form's token. The page's own work then runs in a
worker thread (it reads files and git), and its errors become a page, never a traceback.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from reconciler.errors import FlywheelError, NotFoundError
from reconciler.server.console import security
from reconciler.server.console.security import Guard, Session
from reconciler.server.context import Context
from reconciler.server.protocol import AwsError

#: What a page may load: only this server's own files; no inline script, no frames.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY",
           "Cache-Control": "no-store"}
#: The largest form a POST may send (a dataset upload is the large one).
MAX_FORM_BYTES = 64 * 1024 * 1024


@cache
def templates() -> Environment:
    env = Environment(loader=PackageLoader("reconciler.server.console", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["q"] = lambda value: quote(str(value), safe="")
    return env


@dataclass
class Call:
    """One request as a page sees it."""

    request: Request
    ctx: Context
    guard: Guard
    session: Session
    form: FormData | None = None
    started: float = field(default_factory=time.perf_counter)

    @property
    def params(self) -> dict[str, str]:
        return dict(self.request.path_params)

    def arg(self, name: str, default: str = "") -> str:
        return self.request.query_params.get(name, default)[:200]

    def field(self, name: str, default: str = "") -> str:
        value = self.form.get(name) if self.form is not None else None
        return value if isinstance(value, str) else default

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        return HTMLResponse(self.fragment(template, **values), status_code=status)

    def fragment(self, template: str, **values: Any) -> str:
        return templates().get_template(template).render(
            csrf=self.guard.csrf_token(self.session), csrf_field=security.CSRF_FIELD,
            user=self.session.user if self.session.signed_in else None,
            sign_in_required=self.guard.sign_in_required, path=self.request.url.path,
            **values)


def svg(markup: str) -> Markup:
    """A chart the chart module built, which escapes every text it holds."""
    return Markup(markup)  # built by the chart module, which escapes every text


Page = Callable[[Call], Response]


def handler(ctx: Context, guard: Guard, page: Page, *, post: bool = False,
            public: bool = False) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint for ``page`` with every guard of the module docstring."""

    async def endpoint(request: Request) -> Response:
        host = request.headers.get("host")
        if not guard.sign_in_required and not security.loopback_host(host):
            return _plain(421, "This console answers only at a loopback address "
                          "(127.0.0.1 or localhost) unless the server has credentials.")
        session = guard.session_of(request.cookies.get(security.COOKIE))
        fresh = session is None
        if session is None:
            session = guard.new_session()
        if not public and not guard.allowed(session):
            if post:
                return _plain(403, "Sign in first.")
            return _with_cookie(RedirectResponse(
                f"/login?next={quote(request.url.path, safe='/')}", status_code=303),
                guard, session, fresh)
        form = None
        if post:
            if not security.same_origin(request.headers.get("origin"), host):
                return _plain(403, "Refused: this request came from another site.")
            declared = request.headers.get("content-length")
            if declared is None or not declared.isdigit() or int(declared) > MAX_FORM_BYTES:
                return _plain(413, f"A form must say its length and be at most "
                              f"{MAX_FORM_BYTES // 1024**2} MiB.")
            form = await request.form(max_files=1, max_fields=20)
            token = form.get(security.CSRF_FIELD)
            if not guard.csrf_ok(session, token if isinstance(token, str) else None):
                await form.close()
                return _plain(403, "Refused: the form's security token is missing or stale "
                              "(reload the page and try again).")
        call = Call(request, ctx, guard, session, form)
        try:
            response = await run_in_threadpool(_safely, page, call)
        finally:
            if form is not None:
                await form.close()
        return _with_cookie(response, guard, session, fresh)

    return endpoint


def _safely(page: Page, call: Call) -> Response:
    try:
        return page(call)
    except (FlywheelError, AwsError) as exc:
        status = 404 if isinstance(exc, NotFoundError) or (
            isinstance(exc, AwsError) and exc.code == "ResourceNotFoundException") else 400
        message = exc.message if isinstance(exc, AwsError) else str(exc)
        return call.render("error.html", status=status, title="Not found" if status == 404
                           else "Cannot do that", message=message)
    except Exception as exc:  # a bug: a page that says so, the traceback in the server's log
        traceback.print_exc()
        return call.render("error.html", status=500, title="Internal error",
                           message=f"internal error: {type(exc).__name__}")


def _with_cookie(response: Response, guard: Guard, session: Session, fresh: bool) -> Response:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if fresh:
        set_session(response, guard, session)
    return response


def set_session(response: Response, guard: Guard, session: Session) -> None:
    response.set_cookie(security.COOKIE, guard.cookie_value(session), httponly=True,
                        samesite="strict", max_age=security.SESSION_SECONDS, path="/")


def _plain(status: int, text: str) -> Response:
    return Response(text + "\n", status_code=status, media_type="text/plain",
                    headers=HEADERS)


def redirect(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)
