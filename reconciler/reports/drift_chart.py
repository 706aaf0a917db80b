"""The chart's data-drift panel: per iteration, how its new data differed from the training
data of the version active then (label PSI, unseen-token share), with the declared limits."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reconciler.core.spec import DriftThresholds
from reconciler.core.state import IterationRecord

if TYPE_CHECKING:
    from matplotlib.figure import SubFigure

PSI_COLOUR, UNSEEN_COLOUR = "C3", "C4"


def measured(completed: list[IterationRecord]) -> bool:
    return any(it.drift is not None for it in completed)


def draw_drift(panel: SubFigure, completed: list[IterationRecord],
               limits: DriftThresholds | None) -> None:
    """Two bars per iteration (all its new TRAIN data, else its one new dataset); an
    iteration without a measurement (the first, nothing active) has none."""
    ax = panel.subplots()
    steps = list(range(1, len(completed) + 1))
    psi, unseen = [], []
    for it in completed:
        figures = None
        if it.drift is not None:
            figures = it.drift.new_train_data or next(iter(it.drift.datasets.values()), None)
        psi.append(figures.label_psi if figures and figures.label_psi is not None else 0.0)
        unseen.append(figures.oov_share if figures and figures.oov_share is not None else 0.0)
    width = 0.38
    bars = ax.bar([s - width / 2 for s in steps], psi, width, color=PSI_COLOUR,
                  label="label PSI (new data vs the active version's training data)")
    shares = ax.bar([s + width / 2 for s in steps], unseen, width, color=UNSEEN_COLOUR,
                    label="share of tokens the active version never saw")
    shown = [it.drift is not None for it in completed]
    ax.bar_label(bars, [f"{v:.3f}" if ok else "" for v, ok in zip(psi, shown, strict=True)],
                 fontsize=8, padding=2)
    ax.bar_label(shares, [f"{v:.1%}" if ok else "" for v, ok in zip(unseen, shown, strict=True)],
                 fontsize=8, padding=2)
    if limits is not None and limits.max_label_psi is not None:
        ax.axhline(limits.max_label_psi, color=PSI_COLOUR, linestyle=":", linewidth=1.5,
                   label=f"maxLabelPsi {limits.max_label_psi:g}")
    if limits is not None and limits.max_unseen_tokens is not None:
        ax.axhline(limits.max_unseen_tokens, color=UNSEEN_COLOUR, linestyle=":",
                   linewidth=1.5, label=f"maxUnseenTokens {limits.max_unseen_tokens:g}")
    for step, it in zip(steps, completed, strict=True):
        if it.drift is None:
            ax.annotate("not measured", (step, 0), textcoords="offset points", xytext=(0, 4),
                        ha="center", fontsize=8, color="0.4")
    ax.set_xticks(steps, [it.flywheel_iteration_id[:8] + "\n" + it.flywheel_iteration_id[9:]
                          for it in completed], fontsize=8)
    ax.set_xlim(0.5, len(steps) + 0.5)
    ax.set_ylim(0, max([0.3, *psi, *unseen]) * 1.15)
    ax.set_title("data drift of each iteration's new data")
    ax.grid(axis="y", alpha=0.3)
    panel.legend(loc="outside lower center", fontsize=9, ncols=2)
