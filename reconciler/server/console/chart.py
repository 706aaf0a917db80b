"""The console's F1 chart: a flywheel's iterations as an inline, accessible SVG line chart.

Pure (no I/O, standard library only): points in, one ``<svg>`` string out, the same string for the
same points. Hand-written SVG rather than a plotting library because the console serves no
JavaScript chart library, its pages render server-side in a few milliseconds (matplotlib would
cost seconds to import), and SVG text stays selectable, scales on a phone and is read out by
screen readers: ``role="img"`` with ``<title>``/``<desc>``, and a ``<title>`` on every point.
Every piece of caller text (title, versions, iteration ids, links) is XML-escaped.
"""

from __future__ import annotations

import hashlib
import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

TRAINED, ACTIVE, RING, INK, GRID = "#1f6feb", "#d97706", "#15803d", "#24292f", "#d0d7de"
FONT = 'font-family="system-ui, sans-serif"'
MARGIN = 0.02  # F1 kept clear of the plot's floor and ceiling
MAX_X_LABELS = 8
_ITERATION = re.compile(r"^\d{4}(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$")


@dataclass(frozen=True)
class Point:
    """One completed iteration: the version it trained and the version active then, both scored."""

    iteration_id: str
    trained_version: str | None
    trained_f1: float | None
    active_version: str | None
    active_f1: float | None
    promoted: bool
    href: str | None = None


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _n(value: float) -> str:
    return f"{value:.1f}"


#: Narrower than this (a phone), a chart labels at most NARROW_X_LABELS ticks.
NARROW = 520
NARROW_X_LABELS = 3
LEGEND_ROW = 18.0
#: Up to this many points, every trained point is labelled with its version.
LABEL_ALL_UP_TO = 12


def short_iteration(iteration_id: str, *, seconds: bool = False) -> str:
    """``20261201T101500Z`` -> ``12-01 10:15`` (``12-01 10:15:00`` with ``seconds``); any other
    id is shown as its first 12 characters."""
    found = _ITERATION.match(iteration_id)
    if found is None:
        return iteration_id[:12]
    month, day, hour, minute, second = found.groups()
    return f"{month}-{day} {hour}:{minute}" + (f":{second}" if seconds else "")


def y_range(values: Sequence[float]) -> tuple[float, float]:
    """The axis: data minus/plus a margin, out to the next 0.05, within [0, 1]."""
    if not values:
        return 0.0, 1.0
    low = math.floor(round((min(values) - MARGIN) * 20, 6)) / 20
    high = math.ceil(round((max(values) + MARGIN) * 20, 6)) / 20
    return max(0.0, low), min(1.0, high)


def x_label_indexes(count: int, most: int = MAX_X_LABELS) -> list[int]:
    """At most ~``most`` labelled ticks: every k-th point back from the newest (always
    labelled)."""
    step = max(1, math.ceil(count / most))
    return sorted(range(count - 1, -1, -step))


def _safe_href(href: str | None) -> str | None:
    """A link only to a page (relative, http or https): never ``javascript:`` or ``data:``."""
    if not href:
        return None
    return href if urlsplit(href.strip()).scheme.lower() in ("", "http", "https") else None


def _f1(value: float) -> str:
    return f"{value:.4f}"


def _point_title(point: Point, version: str | None, f1: float, role: str) -> str:
    text = f"{point.iteration_id} · {version or 'no version'} {role} F1 {_f1(f1)}"
    return text + (" (promoted)" if role == "trained" and point.promoted else "")


def _desc(points: Sequence[Point], active_now: str | None) -> str:
    trained = [(p.trained_version, p.trained_f1) for p in points if p.trained_f1 is not None]
    parts = [f"F1 of the trained and of the then active version over {len(points)} iterations, "
             f"{points[0].iteration_id} to {points[-1].iteration_id}",
             f"{sum(p.promoted for p in points)} promoted"]
    for version, f1 in trained[-1:]:
        parts.append(f"latest trained {version or 'no version'} F1 {_f1(f1)}")
    parts.append(f"{active_now} active now" if active_now else "no version active now")
    return "; ".join(parts) + "."


def _empty(title: str, width: int) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="f1-chart empty" role="img" '
            f'aria-label="{_e(title)}: no completed iteration yet" viewBox="0 0 {width} 60" '
            f'width="100%" preserveAspectRatio="xMidYMid meet" {FONT} font-size="13">'
            f"<title>{_e(title)}</title>"
            f'<text x="{_n(width / 2)}" y="34" text-anchor="middle" fill="{INK}">'
            "No completed iteration yet</text></svg>")


def _path(coords: Sequence[tuple[float, float] | None]) -> str:
    """``M``/``L`` commands, starting a new run after every gap (None)."""
    commands: list[str] = []
    pen_down = False
    for xy in coords:
        if xy is None:
            pen_down = False
            continue
        commands.append(f"{'L' if pen_down else 'M'}{_n(xy[0])} {_n(xy[1])}")
        pen_down = True
    return " ".join(commands)


def _legend(x: float, y: float, right: float) -> list[str]:
    """The key, on one row, or wrapped onto a second below it when the chart is narrow."""
    out = ['<g class="legend" font-size="12">']
    start = x
    items = [
        (f'<line x1="0" y1="0" x2="22" y2="0" stroke="{TRAINED}" stroke-width="2"/>'
         f'<circle cx="11.0" cy="0.0" r="3.5" fill="{TRAINED}"/>', "trained"),
        (f'<line x1="0" y1="0" x2="22" y2="0" stroke="{ACTIVE}" stroke-width="2" '
         f'stroke-dasharray="5 3"/><rect x="7.5" y="-3.5" width="7" height="7" fill="{ACTIVE}"/>',
         "active then"),
        (f'<text x="11" y="4.5" text-anchor="middle" font-size="13" fill="{INK}">★</text>',
         "promoted"),
        (f'<circle cx="11.0" cy="0.0" r="6.5" fill="none" stroke="{RING}" stroke-width="2"/>',
         "active now"),
    ]
    for sample, label in items:
        wide = 28 + len(label) * 6.5
        if x + wide > right and x > start:
            x, y = start, y + LEGEND_ROW
        out.append(f'<g transform="translate({_n(x)} {_n(y)})">{sample}'
                   f'<text x="28" y="4" fill="{INK}">{label}</text></g>')
        x += wide + 22
    out.append("</g>")
    return out


def f1_chart(points: Sequence[Point], *, active_now: str | None, title: str,
             heading: bool = True, width: int = 720, height: int = 300) -> str:
    """The F1 of each iteration's trained and then-active version as an ``<svg>…</svg>`` string."""
    if not points:
        return _empty(title, width)
    # ``heading``: the title drawn in the image too (a page with its own heading says no);
    # a narrow chart (a phone's) labels fewer ticks and wraps its key onto two rows
    narrow = width < NARROW
    left, right, top = 48.0, width - 16.0, 52.0 if heading else 34.0
    bottom = height - 58.0 - (LEGEND_ROW if narrow else 0.0)
    inset = 34.0  # keeps the first and last x labels inside the plot
    values = [v for p in points for v in (p.trained_f1, p.active_f1) if v is not None]
    low, high = y_range(values)

    def x_of(i: int) -> float:
        if len(points) == 1:
            return (left + right) / 2
        return left + inset + i * (right - left - 2 * inset) / (len(points) - 1)

    def y_of(value: float) -> float:
        return bottom - (value - low) / (high - low) * (bottom - top)

    ident = "f1c-" + hashlib.sha256(
        "\n".join([title, str(width), *(p.iteration_id for p in points)]).encode()
    ).hexdigest()[:10]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="f1-chart" role="img" '
           f'aria-labelledby="{ident}-title {ident}-desc" viewBox="0 0 {width} {height}" '
           f'width="100%" preserveAspectRatio="xMidYMid meet" {FONT} font-size="12">',
           f'<title id="{ident}-title">{_e(title)}</title>',
           f'<desc id="{ident}-desc">{_e(_desc(points, active_now))}</desc>']
    if heading:
        out.append(f'<text class="chart-title" x="{_n(left)}" y="20" font-size="13" '
                   f'font-weight="600" fill="{INK}">{_e(title)}</text>')
    out.append('<g class="grid">')
    steps = round((high - low) * 20)
    step = 1 if steps <= 6 else 2 if steps <= 12 else 4
    for k in range(0, steps + 1, step):
        tick, y = low + k / 20, y_of(low + k / 20)
        out.append(f'<line x1="{_n(left)}" y1="{_n(y)}" x2="{_n(right)}" y2="{_n(y)}" '
                   f'stroke="{GRID}" stroke-width="1"/>'
                   f'<text x="{_n(left - 6)}" y="{_n(y + 4)}" text-anchor="end" font-size="11" '
                   f'fill="{INK}">{tick:.2f}</text>')
    out.append("</g>")
    out.append(f'<g class="x-axis" font-size="11"><line x1="{_n(left)}" y1="{_n(bottom)}" '
               f'x2="{_n(right)}" y2="{_n(bottom)}" stroke="{INK}" stroke-width="1"/>')
    ticks = x_label_indexes(len(points), NARROW_X_LABELS if narrow else MAX_X_LABELS)
    # iterations within one minute of each other (a replay, a script) would share a label
    minutes = [short_iteration(points[i].iteration_id) for i in ticks]
    seconds = len(set(minutes)) < len(minutes)
    for i in ticks:
        x = x_of(i)
        out.append(f'<line x1="{_n(x)}" y1="{_n(bottom)}" x2="{_n(x)}" y2="{_n(bottom + 4)}" '
                   f'stroke="{INK}"/><text x="{_n(x)}" y="{_n(bottom + 17)}" '
                   f'text-anchor="middle" fill="{INK}">'
                   f"{_e(short_iteration(points[i].iteration_id, seconds=seconds))}</text>")
    out.append("</g>")

    active_xy = [None if p.active_f1 is None else (x_of(i), y_of(p.active_f1))
                 for i, p in enumerate(points)]
    trained_xy = [None if p.trained_f1 is None else (x_of(i), y_of(p.trained_f1))
                  for i, p in enumerate(points)]
    out.append(f'<path class="active line" d="{_path(active_xy)}" fill="none" stroke="{ACTIVE}" '
               f'stroke-width="2" stroke-dasharray="5 3" stroke-linejoin="round"/>')
    out.append(f'<path class="trained line" d="{_path(trained_xy)}" fill="none" '
               f'stroke="{TRAINED}" stroke-width="2.5" stroke-linejoin="round"/>')

    out.append('<g class="active points">')
    for p, xy in zip(points, active_xy, strict=True):
        if xy is not None and p.active_f1 is not None:
            out.append(f'<rect class="active point" x="{_n(xy[0] - 3.5)}" y="{_n(xy[1] - 3.5)}" '
                       f'width="7" height="7" fill="{ACTIVE}" stroke="#ffffff" stroke-width="1">'
                       f"<title>{_e(_point_title(p, p.active_version, p.active_f1, 'active then'))}"
                       "</title></rect>")
    out.append('</g><g class="trained points">')
    ring_at = max((i for i, p in enumerate(points) if active_now is not None
                   and p.trained_version == active_now and p.trained_f1 is not None), default=None)
    label_levels: dict[int, float] = {}  # staggers the labels of promotions close together
    for i, (p, xy) in enumerate(zip(points, trained_xy, strict=True)):
        if xy is None or p.trained_f1 is None:
            continue
        x, y = xy
        if i == ring_at:
            out.append(f'<circle class="ring" cx="{_n(x)}" cy="{_n(y)}" r="8" fill="none" '
                       f'stroke="{RING}" stroke-width="2"><title>{_e(active_now or "")} '
                       "is active now</title></circle>")
        marker = (f'<circle class="trained point{" promoted" if p.promoted else ""}" '
                  f'cx="{_n(x)}" cy="{_n(y)}" r="4" fill="{TRAINED}" stroke="#ffffff" '
                  f'stroke-width="1"><title>'
                  f"{_e(_point_title(p, p.trained_version, p.trained_f1, 'trained'))}"
                  "</title></circle>")
        href = _safe_href(p.href)
        out.append(marker if href is None else f'<a href="{_e(href)}">{marker}</a>')
        # every version is named while there is room (people pick one to make active);
        # past that, the promoted ones and the one active now
        if p.promoted or i == ring_at or len(points) <= LABEL_ALL_UP_TO:
            near = [lift for j, lift in label_levels.items() if abs(x_of(j) - x) < 30]
            lift = 12.0 if near and near[-1] == 0.0 else 0.0
            label_levels[i] = lift
            label = p.trained_version or "no version"  # in full in the point's <title>
            label = label if len(label) <= 14 else label[:13] + "…"
            if p.promoted:
                out.append(f'<text class="star" x="{_n(x)}" y="{_n(y - 11)}" '
                           f'text-anchor="middle" font-size="13" fill="{INK}" '
                           'aria-hidden="true">★</text>')
            out.append(f'<text class="version" x="{_n(x)}" '
                       f'y="{_n(y - (24 if p.promoted else 12) - lift)}" '
                       f'text-anchor="middle" font-size="11" font-weight="600" fill="{TRAINED}" '
                       f'stroke="#ffffff" stroke-width="3" paint-order="stroke">'
                       f"{_e(label)}</text>")
    out.append("</g>")
    out.extend(_legend(left, height - 14 - (LEGEND_ROW if narrow else 0.0), right))
    out.append("</svg>")
    return "".join(out)
