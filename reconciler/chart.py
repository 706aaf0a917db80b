"""``flywheel plot``: F1 across iterations and per-label F1 as one image (PNG or SVG)."""

from __future__ import annotations

from pathlib import Path

from reconciler.adapters.lake import Lake
from reconciler.errors import StateError
from reconciler.views import FlywheelView


def chart_file_name(flywheel: str) -> str:
    """The image's default file name (``flywheel plot`` and ``flywheel demo``)."""
    return f"{flywheel}-f1.png"


def write_chart(root: Path, view: FlywheelView, target: Path) -> None:
    import matplotlib  # heavy; only this command needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    completed = view.observed.completed()
    if not completed:
        raise StateError(f"flywheel {view.name!r} has no completed iteration to chart")
    latest = completed[-1]
    lake = Lake(root)
    trained = lake.evaluation(view.name, latest.flywheel_iteration_id, "trained") or {}
    active = lake.evaluation(view.name, latest.flywheel_iteration_id, "active") or {}

    figure, (history, labels) = plt.subplots(1, 2, figsize=(13, 4.8),
                                             gridspec_kw={"width_ratios": [1, 1.3]})
    steps = list(range(1, len(completed) + 1))
    trained_f1 = [(it.trained_model_metrics or {}).get("AverageF1Score") for it in completed]
    active_f1 = [(it.evaluated_model_metrics or {}).get("AverageF1Score") for it in completed]
    history.plot(steps, trained_f1, marker="o", label="new version (trained)")
    history.plot(steps, [f if f is not None else float("nan") for f in active_f1], marker="s",
                 linestyle="--", label="active model (evaluated)")
    for step, it in zip(steps, completed, strict=True):
        name = it.trained_model_version or ""
        promoted = bool(it.decision and it.decision.promote)
        history.annotate(name + (" ★" if promoted else ""), (step, trained_f1[step - 1]),
                         textcoords="offset points", xytext=(0, 8), ha="center", fontsize=9)
    history.set_xticks(steps, [it.flywheel_iteration_id[:8] + "\n" + it.flywheel_iteration_id[9:]
                               for it in completed], fontsize=8)
    history.set_ylabel("AverageF1Score (macro)")
    history.set_title(f"{view.name}: F1 across iterations (★ = promoted)")
    history.grid(alpha=0.3)
    history.legend(loc="lower right")

    rows = trained.get("perLabel", [])
    names = [row["label"] for row in rows]
    positions = range(len(names))
    by_label = {row["label"]: row["f1Score"] for row in active.get("perLabel", [])}
    width = 0.4 if by_label else 0.8
    labels.barh([p + (width / 2 if by_label else 0) for p in positions],
                [row["f1Score"] for row in rows], height=width,
                label=f"{latest.trained_model_version} (trained)")
    if by_label:
        labels.barh([p - width / 2 for p in positions], [by_label.get(n, 0.0) for n in names],
                    height=width, label=f"{latest.evaluated_model_version} (active)")
    labels.set_yticks(list(positions), names)
    labels.invert_yaxis()
    labels.set_xlim(0, 1)
    labels.set_xlabel("F1")
    labels.set_title(f"per-label F1, iteration {latest.flywheel_iteration_id}")
    labels.grid(axis="x", alpha=0.3)
    labels.legend(loc="lower right")
    figure.tight_layout()
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, dpi=110)
    plt.close(figure)
