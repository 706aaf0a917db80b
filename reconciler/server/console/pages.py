"""The console's pages: Flywheels, Flywheel (iterations, datasets), Iteration, Try it.

Reads go through the public API, as every face's do; each page's figures come from
:mod:`~reconciler.server.console.rows`.
"""

from __future__ import annotations

import hashlib
import json

from markupsafe import Markup
from starlette.responses import JSONResponse, Response

from reconciler import api
from reconciler.api import FlywheelView, declaring
from reconciler.api.health import health
from reconciler.core.conditions import ConditionType
from reconciler.core.drift import psi_reading
from reconciler.core.state import IterationStatus, version_number
from reconciler.server.console import rows
from reconciler.server.console.chart import f1_chart
from reconciler.server.console.web import Call, svg
from reconciler.server.operations.flywheels import properties

PER_PAGE = 50
#: The list's filters: a name's part, and a status or condition.
STATES = {"": "any state", "ready": "Ready", "not-ready": "Not ready", "stalled": "Stalled",
          "degraded": "Degraded", "drift": "Data drift", "running": "Iteration running",
          "failed": "Latest iteration failed", "out-of-sync": "Out of sync"}


def flywheels(call: Call) -> Response:
    query = call.arg("q").strip()
    state = call.arg("state") if call.arg("state") in STATES else ""
    number = _page_number(call.arg("page", "1"))
    uncommitted = api.uncommitted(call.ctx.repo)
    if state:  # a state is known only from each flywheel's records: read them all
        views = api.list_flywheels(call.ctx.repo)
        total = len(views)
        views = [v for v in views if _named(v.name, query)
                 and _in_state(v, state, uncommitted)]
        matching, pages, number = _paged(len(views), number)
        shown = views[(number - 1) * PER_PAGE:number * PER_PAGE]
    else:  # names alone decide the page: read the records of its flywheels only
        counts: dict[str, int] = {}

        def choose(names: list[str]) -> list[str]:
            named = [n for n in names if _named(n, query)]
            counts.update(total=len(names), matching=len(named),
                          number=_paged(len(named), number)[2])
            return named[(counts["number"] - 1) * PER_PAGE:counts["number"] * PER_PAGE]

        shown = api.list_flywheels(call.ctx.repo, choose=choose)
        total = counts["total"]
        matching, pages, number = _paged(counts["matching"], counts["number"])
    table = [rows.flywheel_row(v, properties(call.ctx, v), uncommitted) for v in shown]
    return call.render("flywheels.html", title="Flywheels", rows=table, query=query,
                       state=state, states=STATES, page=number, pages=pages,
                       matching=matching, total=total)


def _page_number(text: str) -> int:
    """The page asked for: ASCII digits only (``²`` and ``٣`` are digits to Python, not
    here); anything else is the first page."""
    return max(1, int(text)) if text.isascii() and text.isdecimal() else 1


def not_found(call: Call) -> Response:
    return call.render("error.html", status=404, title="Not found",
                       message=f"There is no page at {call.request.url.path[:200]}.")


def _named(name: str, query: str) -> bool:
    return not query or query.lower() in name.lower()


def _paged(count: int, number: int) -> tuple[int, int, int]:
    """The count, the number of pages, and the page asked for within them."""
    pages = max(1, -(-count // PER_PAGE))
    return count, pages, min(number, pages)


HELD = {"stalled": ConditionType.STALLED, "degraded": ConditionType.DEGRADED,
        "drift": ConditionType.DATA_DRIFT}


def _in_state(view: FlywheelView, state: str, uncommitted: frozenset[str] | None) -> bool:
    ready = bool(view.conditions and view.conditions[0].status)
    latest = view.observed.latest
    match state:
        case "ready":
            return ready
        case "not-ready":
            return not ready
        case "stalled" | "degraded" | "drift":
            return view.holding(HELD[state]) is not None
        case "running":
            return view.observed.unfinished
        case "failed":
            return latest is not None and latest.status is IterationStatus.FAILED
        case "out-of-sync":
            return rows.sync(view, uncommitted).text == "OutOfSync"
    return True


def _flywheel(call: Call) -> FlywheelView:
    return api.describe_flywheel(call.ctx.repo, call.params["name"])


def flywheel(call: Call, *, problem: str | None = None, status: int = 200) -> Response:
    view = _flywheel(call)
    fragments, state, _busy = _live_parts(call, view)
    return call.render("flywheel.html", status=status, title=view.name, tab="iterations",
                       view=view, href=rows.flywheel_href(view.name), fragments=fragments,
                       state=state, notice=None if problem else _notice(call),
                       problem=problem)


def live(call: Call) -> Response:
    """The flywheel page's changing parts, for its script to swap in while it is open."""
    fragments, state, busy = _live_parts(call, _flywheel(call))
    return JSONResponse({"state": state, "busy": busy, "fragments": fragments},
                        headers={"Cache-Control": "no-store"})


LIVE_PARTS = ("summary", "chart", "iterations", "promotions")


def _live_parts(call: Call, view: FlywheelView) -> tuple[dict[str, Markup], str, bool]:
    """The page's parts that change as the reconciler works, rendered by the same templates
    for the first load and for each poll; ``state`` tells the script whether any changed."""
    panels = _panels(call, view)
    fragments = {name: Markup(call.fragment(f"_{name}.html", **panels))  # escaped
                 for name in LIVE_PARTS}
    state = hashlib.sha256(json.dumps(fragments, sort_keys=True).encode()).hexdigest()[:16]
    busy = panels["running"] is not None or panels["requested"] is not None
    return fragments, state, busy


def _panels(call: Call, view: FlywheelView) -> dict[str, object]:
    requested = declaring.requested_iteration(call.ctx.repo, view.name, view.observed)
    running = rows.running(view.observed)
    spec = view.spec_file.spec if view.spec_file else None
    return {
        "view": view, "spec": spec, "href": rows.flywheel_href(view.name),
        "row": rows.flywheel_row(view, properties(call.ctx, view),
                                 api.uncommitted(call.ctx.repo)),
        "running": running, "stage": rows.STAGES.get(running.status) if running else None,
        "health": health(call.ctx.repo, view.name, view),
        "requested": requested,
        "iterations": rows.iteration_rows(view, requested),
        "promotions": rows.promotion_rows(view),
        "chart": _charts(view),
        "since": rows.when, "tone": rows.condition_tone,
    }


def _charts(view: FlywheelView) -> dict[str, Markup]:
    """The F1 chart for a wide screen and for a phone's (the stylesheet shows one)."""
    points = rows.chart_points(view)
    title = f"{view.name}: F1 across iterations"
    return {"wide": svg(f1_chart(points, active_now=view.active_model, title=title,
                                 heading=False, height=270)),
            "narrow": svg(f1_chart(points, active_now=view.active_model, title=title,
                                   heading=False, width=400, height=300))}


NOTICES = {"pinned": "Version {version} is the active model now: the pin is committed to the "
                     "spec, and no policy overrides it.",
           "started": "Iteration {iteration} was asked for: the reconciler starts it shortly.",
           "dataset": "Dataset {dataset} was declared ({documents} documents, commit {commit})."}


def _notice(call: Call) -> str | None:
    template = NOTICES.get(call.arg("done"))
    if template is None:
        return None
    keys = ("version", "commit", "iteration", "dataset", "documents")
    return template.format(**{k: call.arg(k)[:64] for k in keys})


def datasets(call: Call, *, errors: list[str] | None = None, status: int = 200,
             entered: dict[str, str] | None = None) -> Response:
    view = _flywheel(call)
    assert view.spec_file is not None
    listed = call.ctx.repo.catalog.datasets(view.spec_file.spec)
    return call.render("datasets.html", status=status, title=f"{view.name}: datasets",
                       tab="datasets", view=view, href=rows.flywheel_href(view.name),
                       train=[d for d in listed if d.dataset.type.value == "TRAIN"],
                       test=[d for d in listed if d.dataset.type.value == "TEST"],
                       errors=errors or [], entered=entered or {}, since=rows.when,
                       notice=_notice(call))


def iteration(call: Call) -> Response:
    detail = api.describe_iteration(call.ctx.repo, call.params["name"], call.params["id"])
    view, record = detail.view, detail.record
    version = view.observed.versions.get(record.trained_model_version or "")
    trained = record.trained_model_version
    return call.render(
        "iteration.html", title=f"{view.name} · {record.flywheel_iteration_id}", view=view,
        record=record, href=rows.flywheel_href(view.name),
        pill_=rows.status_pill(record.status.value),
        challenger=rows.model_cell(trained, record.trained_model_metrics),
        champion=rows.model_cell(record.evaluated_model_version,
                                 record.evaluated_model_metrics),
        f1_delta=rows.delta(record.trained_f1, record.active_f1),
        labels=rows.label_rows(detail.trained, detail.active),
        confusion=rows.confusion(detail.trained),
        champion_confusion=rows.confusion(detail.active), shade=rows.shade,
        version=version, recipe=json.dumps(record.recipe, sort_keys=True),
        can_activate=trained is not None and trained in view.observed.versions
        and trained != view.active_model,
        running=not record.status.terminal, stage=rows.STAGES.get(record.status),
        drift_rows=rows.drift_rows(record.drift), psi_reading=psi_reading,
        since=rows.when, figure=rows.figure)


def try_it(call: Call) -> Response:
    view = _flywheel(call)
    versions = sorted(view.observed.versions, key=version_number, reverse=True)
    text = call.field("text")
    chosen = call.field("version") if call.field("version") in versions else ""
    if not chosen and view.active_model is None and versions:
        chosen = versions[0]  # nothing is active: the newest version, rather than a refusal
    result: list[tuple[str, float, bool]] | None = None
    used, problem = None, None
    if call.form is not None:
        if not text.strip():
            problem = "Type or paste a text to classify."
        elif len(text.encode()) > call.ctx.max_text_bytes:
            problem = (f"The text is {len(text.encode())} bytes; at most "
                       f"{call.ctx.max_text_bytes} bytes are classified at once.")
        else:
            used, found = api.classify(call.ctx.repo, view.name, [text], chosen or None)
            labels = set(found[0].labels)
            result = [(label, score, label in labels) for label, score in
                      sorted(found[0].scores.items(), key=lambda kv: -kv[1])]
    return call.render("try.html", status=400 if problem else 200,
                       title=f"{view.name}: try it", tab="try", view=view,
                       href=rows.flywheel_href(view.name), versions=versions, chosen=chosen,
                       text=text, result=result, used=used, problem=problem,
                       inactive=None if view.active_model else view.inactive_reason)
