"""``flywheel plot``: F1 across iterations and per-label F1 as one image (PNG or SVG), with the
data drift of each iteration's new data below once any was measured.

Every series is named by the model version whose figures it draws, and "active now" is the
version the flywheel status says is active (a pin included), not the version that happened to be
active when the latest iteration ran. Each panel's legend sits below it, never over the data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from reconciler.adapters.lake import Lake
from reconciler.core.layout import chart_file
from reconciler.core.spec import DatasetType
from reconciler.core.state import IterationRecord, TestSource
from reconciler.errors import StateError
from reconciler.reports.drift_chart import draw_drift, measured
from reconciler.runtime.queries import FlywheelView

if TYPE_CHECKING:
    from matplotlib.figure import Figure, SubFigure

ACTIVE_NOW = "active now"
MAX_TICK_LABELS = 8  # more iteration ids than this on the x axis would overlap: label some only
COLOURS = {"trained": "C0", "evaluated": "C1", "active": "C2"}


def default_chart_path(root: Path, flywheel: str) -> Path:
    """Where ``flywheel plot`` and ``flywheel demo`` write a chart: ``.flywheel/charts/``, which
    is the reconciler's local, git-ignored folder, so a chart never lands in the tracked tree."""
    return root / chart_file(flywheel)


def write_chart(root: Path, view: FlywheelView, target: Path) -> None:
    import matplotlib.pyplot as plt

    figure = chart_figure(root, view)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, dpi=110)
    plt.close(figure)


@dataclass(frozen=True)
class BarSeries:
    version: str
    role: str  # trained | evaluated | active (a key of COLOURS)
    label: str
    figures: dict[str, float]  # label -> F1


def chart_figure(root: Path, view: FlywheelView) -> Figure:
    import matplotlib  # heavy; only this command needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    completed = view.observed.completed()
    if not completed:
        raise StateError(f"flywheel {view.name!r} has no completed iteration to chart")
    status = view.observed.status
    active = view.observed.active_model
    active_note = ACTIVE_NOW + (" (pinned)" if status is not None and status.pinned else "")

    drift = measured(completed)
    figure = plt.figure(figsize=(13, 10.0 if drift else 6.2), layout="constrained")
    top: Figure | SubFigure = figure
    rows = None
    if drift:  # F1 on top, the data-drift panel below
        rows = cast("tuple[SubFigure, SubFigure]", figure.subfigures(2, 1,
                                                                    height_ratios=[1, 0.62]))
        top = rows[0]
    panels = top.subfigures(1, 2, width_ratios=[1, 1.3], wspace=0.04)
    left, right = cast("tuple[SubFigure, SubFigure]", panels)  # an array of two SubFigures
    _history(left, view.name, completed, active, active_note)
    _per_label(right, Lake(root), view.name, completed, active, active_note)
    if rows is not None:  # drawn last: the F1 panels keep their places (axes 0 and 1)
        draw_drift(rows[1], completed, view.spec_file.spec.drift if view.spec_file else None)
    return figure


def _history(panel: SubFigure, name: str, completed: list[IterationRecord],
             active: str | None, active_note: str) -> None:
    ax = panel.subplots()
    steps = list(range(1, len(completed) + 1))
    trained = [_nan(it.trained_f1) for it in completed]
    evaluated = [_nan(it.active_f1) for it in completed]
    ax.plot(steps, trained, marker="o", color=COLOURS["trained"],
            label="new version, F1 when trained")
    if not all(math.isnan(f1) for f1 in evaluated):
        ax.plot(steps, evaluated, marker="s", linestyle="--", color=COLOURS["evaluated"],
                label="version active then, F1 in the same iteration")
    # many iterations: label every few, counting back from the newest, so labels do not collide
    labelled = set(steps[::-1][::-(-len(steps) // MAX_TICK_LABELS)])
    for step, it in zip(steps, completed, strict=True):
        if step not in labelled and it.trained_model_version != active:
            continue
        promoted = bool(it.decision and it.decision.promote)
        ax.annotate((it.trained_model_version or "") + (" ★" if promoted else ""),
                    (step, trained[step - 1]), textcoords="offset points", xytext=(0, 10),
                    ha="center", fontsize=9, color=COLOURS["trained"])
        if it.evaluated_model_version and not math.isnan(evaluated[step - 1]):
            ax.annotate(it.evaluated_model_version, (step, evaluated[step - 1]),
                        textcoords="offset points", xytext=(0, -15), ha="center", fontsize=8,
                        color=COLOURS["evaluated"])
    trained_active = [(step, trained[step - 1]) for step, it in zip(steps, completed, strict=True)
                      if active and it.trained_model_version == active]
    if trained_active:
        step, f1 = trained_active[-1]
        ax.plot([step], [f1], linestyle="none", marker="o", markersize=14, markerfacecolor="none",
                markeredgewidth=2.2, color=COLOURS["active"],
                label=f"{active}: {active_note}, F1 when trained")
    ax.set_xticks(steps, [_tick(it.flywheel_iteration_id) if step in labelled else ""
                          for step, it in zip(steps, completed, strict=True)], fontsize=8)
    ax.set_xlim(0.5, len(steps) + 0.5)
    ax.margins(y=0.2)
    ax.set_xlabel("iteration")
    ax.set_ylabel("AverageF1Score (macro)")
    ax.set_title(f"{name}: F1 across iterations (★ = promoted)")
    ax.grid(alpha=0.3)
    panel.legend(loc="outside lower center", fontsize=9)


def _per_label(panel: SubFigure, lake: Lake, name: str, completed: list[IterationRecord],
               active: str | None, active_note: str) -> None:
    ax = panel.subplots()
    latest = completed[-1]
    series = _bar_series(lake, name, completed, active, active_note)
    labels = list(series[0].figures) if series else []
    height = 0.8 / max(len(series), 1)
    for index, bars in enumerate(series):
        offset = -0.4 + height * (index + 0.5)
        ax.barh([p + offset for p in range(len(labels))],
                [bars.figures.get(label, 0.0) for label in labels], height=height,
                color=COLOURS[bars.role], label=bars.label)
    ax.set_yticks(list(range(len(labels))), labels)
    ax.set_ylim(len(labels) - 0.5, -0.5)  # first label on top
    ax.set_xlim(0, 1)
    ax.set_xlabel("F1")
    ax.set_title(f"per-label F1, iteration {latest.flywheel_iteration_id}")
    ax.grid(axis="x", alpha=0.3)
    if series:
        panel.legend(loc="outside lower center", fontsize=9)


def _bar_series(lake: Lake, name: str, completed: list[IterationRecord], active: str | None,
                active_note: str) -> list[BarSeries]:
    """The latest iteration's two versions and, when neither is the active one (a pin to an
    older version), the active version with its newest per-label figures."""
    latest = completed[-1]
    series: list[BarSeries] = []
    trained = _per_label_f1(lake.evaluation(name, latest.flywheel_iteration_id, "trained"))
    if latest.trained_model_version and trained:
        version = latest.trained_model_version
        series.append(BarSeries(version, "trained", f"{version}: trained in this iteration"
                                + (f", {active_note}" if version == active else ""), trained))
    evaluated = _per_label_f1(lake.evaluation(name, latest.flywheel_iteration_id, "active"))
    if latest.evaluated_model_version and evaluated:
        version = latest.evaluated_model_version
        series.append(BarSeries(version, "evaluated", f"{version}: active when this iteration ran"
                                + (f", {active_note}" if version == active else ""), evaluated))
    if active and active not in {s.version for s in series}:
        for it in reversed(completed):
            which = ("trained" if it.trained_model_version == active else
                     "active" if it.evaluated_model_version == active else None)
            figures = which and _per_label_f1(lake.evaluation(name, it.flywheel_iteration_id,
                                                              which))
            if figures:
                where = f"F1 from iteration {it.flywheel_iteration_id}" + (
                    "" if _same_test_data(it, latest) else " (other test data)")
                series.append(BarSeries(active, "active", f"{active}: {active_note}, {where}",
                                        figures))
                break
    return series


def _per_label_f1(evaluation: dict[str, Any] | None) -> dict[str, float]:
    return {row["label"]: row["f1Score"] for row in (evaluation or {}).get("perLabel", [])}


def _same_test_data(a: IterationRecord, b: IterationRecord) -> bool:
    """Were both iterations scored on the same documents? (A holdout follows the training data.)"""
    if a.test_source != b.test_source:
        return False
    if a.test_source is TestSource.TEST_DATASETS:
        return ({(d.name, d.md5) for d in a.datasets if d.type is DatasetType.TEST}
                == {(d.name, d.md5) for d in b.datasets if d.type is DatasetType.TEST})
    return [(d.name, d.md5) for d in a.datasets] == [(d.name, d.md5) for d in b.datasets]


def _nan(value: float | None) -> float:
    return float("nan") if value is None else value


def _tick(iteration_id: str) -> str:
    return iteration_id[:8] + "\n" + iteration_id[9:]
