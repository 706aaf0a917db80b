"""The web console: the Comprehend console's flywheel pages, served by ``flywheel serve``.

Server-rendered HTML (Jinja2, every value escaped) with one small script of our own for live
updates and the "differences only" switch; no file is fetched from anywhere but this server.
Reads go through the public API; every action is the HTTP API's own operation
(:mod:`~reconciler.server.console.actions`), so a click is a commit or a request, and the
reconciler acts on it. :mod:`~reconciler.server.console.security` says how a page is guarded.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from reconciler.server.console import actions, pages
from reconciler.server.console.security import Guard
from reconciler.server.console.web import Page, handler
from reconciler.server.context import Context


def routes(ctx: Context, guard: Guard) -> list[BaseRoute]:
    def get(path: str, page: Page, **kw: bool) -> Route:
        return Route(path, handler(ctx, guard, page, **kw), methods=["GET"])

    def post(path: str, page: Page, **kw: bool) -> Route:
        return Route(path, handler(ctx, guard, page, post=True, **kw), methods=["POST"])

    flywheel = "/flywheels/{name}"
    return [
        get("/", pages.flywheels),
        get(flywheel, pages.flywheel),
        get(f"{flywheel}/live", pages.live),
        get(f"{flywheel}/datasets", pages.datasets),
        post(f"{flywheel}/datasets", actions.create_dataset),
        get(f"{flywheel}/iterations/{{id}}", pages.iteration),
        get(f"{flywheel}/try", pages.try_it),
        post(f"{flywheel}/try", pages.try_it),
        post(f"{flywheel}/run", actions.run_flywheel),
        post(f"{flywheel}/active-model", actions.make_active),
        get("/login", actions.login_page, public=True),
        post("/login", actions.login, public=True),
        post("/logout", actions.logout, public=True),
        Mount("/static", StaticFiles(packages=[("reconciler.server.console", "static")]),
              name="static"),
        get("/{rest:path}", pages.not_found),
    ]


__all__ = ["Guard", "routes"]
