"""The console's F1 chart: well-formed SVG, its series, marks, axes, accessibility and escaping."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from reconciler.server.console.chart import (
    Point,
    f1_chart,
    short_iteration,
    x_label_indexes,
    y_range,
)

NS = "{http://www.w3.org/2000/svg}"
HOSTILE = "<img src=x onerror=alert(1)>"


def _iteration(i: int) -> str:
    return f"202612{1 + i // 24:02d}T{i % 24:02d}1500Z"


def _points(count: int, *, promoted: frozenset[int] = frozenset(),
            no_trained: frozenset[int] = frozenset(),
            no_active: frozenset[int] = frozenset()) -> list[Point]:
    return [Point(iteration_id=_iteration(i), trained_version=f"v{i + 1}",
                  trained_f1=None if i in no_trained else 0.80 + 0.005 * i,
                  active_version=f"v{i}", active_f1=None if i in no_active else 0.79 + 0.004 * i,
                  promoted=i in promoted, href=f"/iterations/{_iteration(i)}")
            for i in range(count)]


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # raises on anything not well-formed


def _with_class(root: ET.Element, tag: str, cls: str) -> list[ET.Element]:
    return [e for e in root.iter(NS + tag) if cls in (e.get("class") or "").split()]


def _x_labels(root: ET.Element) -> list[str]:
    axis = next(g for g in root.iter(NS + "g") if g.get("class") == "x-axis")
    return [t.text or "" for t in axis.iter(NS + "text")]


def test_a_sample_is_well_formed_with_both_series_and_its_marks() -> None:
    points = _points(6, promoted=frozenset({0, 2}), no_trained=frozenset({3}))
    root = _parse(f1_chart(points, active_now="v3", title="F1 per iteration"))
    assert len(_with_class(root, "circle", "trained")) == 5
    assert len(_with_class(root, "rect", "active")) == 6
    assert len(_with_class(root, "text", "star")) == 2
    # few points: every trained point is named (its star says whether it was promoted)
    assert [t.text for t in _with_class(root, "text", "version")] == ["v1", "v2", "v3", "v5",
                                                                      "v6"]
    rings = _with_class(root, "circle", "ring")
    assert len(rings) == 1
    third = _with_class(root, "circle", "trained")[2]
    assert (rings[0].get("cx"), rings[0].get("cy")) == (third.get("cx"), third.get("cy"))
    assert _with_class(root, "path", "trained")[0].get("stroke") == "#1f6feb"
    assert _with_class(root, "path", "active")[0].get("stroke-dasharray")
    assert rings[0].get("stroke") == "#15803d"


def test_the_ring_is_on_the_most_recent_point_of_the_version_active_now() -> None:
    points = [*_points(3), Point(_iteration(3), "v2", 0.9, "v2", 0.85, False)]
    root = _parse(f1_chart(points, active_now="v2", title="t"))
    ring = _with_class(root, "circle", "ring")
    assert len(ring) == 1
    last = _with_class(root, "circle", "trained")[-1]
    assert ring[0].get("cx") == last.get("cx")


@pytest.mark.parametrize("active_now", [None, "v99"])
def test_no_ring_when_nothing_or_an_unplotted_version_is_active(active_now: str | None) -> None:
    root = _parse(f1_chart(_points(4), active_now=active_now, title="t"))
    assert _with_class(root, "circle", "ring") == []


def test_accessible_title_desc_and_a_title_on_every_point() -> None:
    points = _points(3, promoted=frozenset({1}))
    root = _parse(f1_chart(points, active_now="v2", title="Support tickets"))
    assert root.get("role") == "img"
    assert root.get("width") == "100%"
    assert root.get("viewBox") == "0 0 720 300"
    assert root.get("preserveAspectRatio") == "xMidYMid meet"
    ids = (root.get("aria-labelledby") or "").split()
    title, desc = root.find(NS + "title"), root.find(NS + "desc")
    assert title is not None and desc is not None
    assert ids == [title.get("id"), desc.get("id")]
    assert title.text == "Support tickets"
    assert "3 iterations" in (desc.text or "")
    markers = _with_class(root, "circle", "point") + _with_class(root, "rect", "point")
    assert len(markers) == 6
    assert all(m.find(NS + "title") is not None for m in markers)
    promoted = _with_class(root, "circle", "promoted")[0].find(NS + "title")
    assert promoted is not None
    assert promoted.text == f"{_iteration(1)} · v2 trained F1 0.8050 (promoted)"


def test_trained_points_link_to_their_iteration_and_unsafe_links_are_dropped() -> None:
    points = [*_points(2), Point(_iteration(2), "v3", 0.9, "v2", 0.8, False,
                                 href="javascript:alert(1)")]
    root = _parse(f1_chart(points, active_now=None, title="t"))
    links = [a.get("href") for a in root.iter(NS + "a")]
    assert links == [f"/iterations/{_iteration(0)}", f"/iterations/{_iteration(1)}"]
    assert all(a.find(NS + "circle") is not None for a in root.iter(NS + "a"))


@pytest.mark.parametrize("field", ["title", "trained_version", "active_version",
                                   "iteration_id", "href", "active_now"])
def test_hostile_text_is_escaped_and_stays_text(field: str) -> None:
    point = Point(iteration_id=HOSTILE if field == "iteration_id" else _iteration(0),
                  trained_version=HOSTILE if field == "trained_version" else "v1",
                  trained_f1=0.8, active_version=HOSTILE if field == "active_version" else "v0",
                  active_f1=0.7, promoted=True,
                  href=f"/x?q={HOSTILE}\"'" if field == "href" else None)
    svg = f1_chart([point], active_now=HOSTILE if field == "active_now" else "v1",
                   title=HOSTILE if field == "title" else "t")
    assert "<img" not in svg
    root = _parse(svg)
    assert not list(root.iter("img")) and not list(root.iter(NS + "img"))
    texts = " ".join(e.text or "" for e in root.iter()) + " ".join(
        a.get("href") or "" for a in root.iter(NS + "a"))
    assert HOSTILE in texts


def test_a_long_version_label_is_shortened_but_its_title_has_it_in_full() -> None:
    long = "v-" + "x" * 40
    root = _parse(f1_chart([Point(_iteration(0), long, 0.9, None, None, True)],
                           active_now=None, title="t"))
    assert [t.text for t in _with_class(root, "text", "version")] == ["v-" + "x" * 11 + "…"]
    (marker,) = _with_class(root, "circle", "trained")
    assert long in (marker.findtext(NS + "title") or "")


def test_forty_points_label_at_most_eight_ticks_always_the_newest() -> None:
    points = _points(40)
    root = _parse(f1_chart(points, active_now=None, title="t"))
    labels = _x_labels(root)
    assert 1 < len(labels) <= 8
    assert labels[-1] == short_iteration(points[-1].iteration_id)
    assert len(_with_class(root, "circle", "trained")) == 40


@pytest.mark.parametrize(("count", "expected"), [
    (1, [0]), (3, [0, 1, 2]), (8, list(range(8))), (9, [0, 2, 4, 6, 8]),
    (40, list(range(4, 40, 5))),
])
def test_x_label_indexes(count: int, expected: list[int]) -> None:
    assert x_label_indexes(count) == expected


def test_gaps_break_the_line_and_skip_the_marker() -> None:
    points = _points(5, no_trained=frozenset({2}), no_active=frozenset({0, 1, 2, 3, 4}))
    root = _parse(f1_chart(points, active_now=None, title="t"))
    d = _with_class(root, "path", "trained")[0].get("d") or ""
    assert d.count("M") == 2 and d.count("L") == 2
    assert len(_with_class(root, "circle", "trained")) == 4
    assert _with_class(root, "rect", "active") == []
    assert _with_class(root, "path", "active")[0].get("d") == ""


def test_zero_points_say_so() -> None:
    root = _parse(f1_chart([], active_now=None, title="Empty <flywheel>"))
    assert "No completed iteration yet" in "".join(root.itertext())
    assert root.get("role") == "img"


def test_one_point_is_centred() -> None:
    root = _parse(f1_chart(_points(1, promoted=frozenset({0})), active_now="v1", title="t",
                           width=600))
    (circle,) = _with_class(root, "circle", "trained")
    left, right = 48.0, 600 - 16.0
    assert float(circle.get("cx") or 0) == pytest.approx((left + right) / 2, abs=0.1)
    assert len(_with_class(root, "text", "star")) == 1
    assert len(_with_class(root, "circle", "ring")) == 1


def test_the_output_is_deterministic_with_one_decimal_coordinates() -> None:
    points = _points(7, promoted=frozenset({1, 5}), no_active=frozenset({3}))
    svg = f1_chart(points, active_now="v6", title="t")
    assert svg == f1_chart(list(points), active_now="v6", title="t")
    root = _parse(svg)
    for circle in root.iter(NS + "circle"):
        for attr in ("cx", "cy"):
            whole, _, decimals = (circle.get(attr) or "").partition(".")
            assert whole.lstrip("-").isdigit() and len(decimals) == 1


@pytest.mark.parametrize(("values", "expected"), [
    ([0.84, 0.86], (0.80, 0.90)),
    ([0.80], (0.75, 0.85)),
    ([0.01, 0.5], (0.0, 0.55)),
    ([0.99, 1.0], (0.95, 1.0)),
    ([], (0.0, 1.0)),
])
def test_y_range(values: list[float], expected: tuple[float, float]) -> None:
    assert y_range(values) == pytest.approx(expected)


def test_y_tick_labels_have_two_decimals() -> None:
    root = _parse(f1_chart(_points(3), active_now=None, title="t"))
    grid = next(g for g in root.iter(NS + "g") if g.get("class") == "grid")
    labels = [t.text or "" for t in grid.iter(NS + "text")]
    assert labels[0] == "0.75" and all(len(s) == 4 and s[1] == "." for s in labels)


@pytest.mark.parametrize(("iteration_id", "expected"), [
    ("20261201T101500Z", "12-01 10:15"),
    ("20270131T235959Z", "01-31 23:59"),
    ("not-an-iteration-id", "not-an-itera"),
])
def test_short_iteration(iteration_id: str, expected: str) -> None:
    assert short_iteration(iteration_id) == expected


def test_many_points_name_only_the_promoted_and_the_active_version() -> None:
    points = [Point(f"202612{day:02d}T101500Z", f"v{day}", 0.5 + day / 100, None, None,
                    promoted=day in (3, 9)) for day in range(1, 21)]
    root = ET.fromstring(f1_chart(points, active_now="v12", title="t"))
    assert [t.text for t in _with_class(root, "text", "version")] == ["v3", "v9", "v12"]


def test_a_page_with_its_own_heading_draws_no_title_in_the_image() -> None:
    points = [Point("20261201T101500Z", "v1", 0.8, None, None, promoted=True)]
    with_heading = ET.fromstring(f1_chart(points, active_now="v1", title="T"))
    without = ET.fromstring(f1_chart(points, active_now="v1", title="T", heading=False))
    assert len(_with_class(with_heading, "text", "chart-title")) == 1
    assert not _with_class(without, "text", "chart-title")
    assert without.find("{http://www.w3.org/2000/svg}title") is not None  # still named
