"""``flywheel plot``'s chart, drawn from a real repository: three real iterations, then pins.

The repository is built once for the module: v1 is trained (manual promotion: nothing active),
then v2 is trained while v1 is pinned, then v3 while v2 is pinned. So the latest iteration
trained v3 and evaluated v2, and each test pins one of the three versions and looks at the
figure that ``flywheel plot`` would save: which version it calls active, which figures each bar
and point carries, and whether the legends stay clear of the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib
import pytest
import yaml
from conftest import bundled_rows, run_cli, write_csv

from reconciler.adapters.lake import Lake
from reconciler.core.state import IterationRecord
from reconciler.reports.chart import chart_figure
from reconciler.runtime.queries import view
from reconciler.runtime.reconcile import reconcile

matplotlib.use("Agg")

LABELS = ["games", "mail", "science", "sound"]
ACTIVE_NOW = "active now"


@dataclass
class Repo:
    root: Path
    iterations: list[IterationRecord]


def write_spec(root: Path, steps: int, active: str | None) -> None:
    datasets = [{"name": f"train-{n}", "type": "TRAIN", "path": f"data/train-{n}.csv"}
                for n in range(1, steps + 1)]
    spec = {
        "name": "packages",
        "task": {"mode": "MULTI_CLASS", "labels": LABELS},
        "datasets": [*datasets, {"name": "test", "type": "TEST", "path": "data/test.csv"}],
        "recipe": {"algorithm": "linear-svm", "features": {"ngramRange": [1, 2]}},
        **({"activeModel": active} if active else {}),
    }
    (root / "specs/packages.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    base = tmp_path_factory.mktemp("chart")
    root = base / "repo"
    run_cli(base, "init", str(root))
    for n, per_label in ((1, 12), (2, 25), (3, 40)):
        write_csv(root / f"data/train-{n}.csv",
                  bundled_rows("debian-sections", f"train-v{n}.csv", LABELS, per_label))
    write_csv(root / "data/test.csv", bundled_rows("debian-sections", "test.csv", LABELS, 20))
    for steps, active in ((1, None), (2, "v1"), (3, "v2")):
        write_spec(root, steps, active)
        assert reconcile(root).ok
    completed = Lake(root).observe("packages").completed()
    assert [(it.trained_model_version, it.evaluated_model_version) for it in completed] == [
        ("v1", None), ("v2", "v1"), ("v3", "v2")]
    return Repo(root, completed)


def pinned_chart(repo: Repo, version: str):
    write_spec(repo.root, 3, version)
    assert reconcile(repo.root).ok
    current = view(repo.root, "packages")
    assert current.observed.active_model == version
    figure = chart_figure(repo.root, current)
    figure.canvas.draw()
    return figure


def legends(figure) -> list:
    """Every legend: of the axes, of the figure and of its panels (subfigures)."""
    found = [ax.get_legend() for ax in figure.axes if ax.get_legend()] + list(figure.legends)
    for panel in figure.subfigs:
        found += legends(panel)
    return found


def legend_texts(figure) -> list[str]:
    return [text.get_text() for legend in legends(figure) for text in legend.get_texts()]


def bar_figures(ax) -> dict[str, dict[str, float]]:
    """Version (the first word of a bar series' label) -> label -> the bar's F1."""
    ticks = dict(zip(ax.get_yticks(), [t.get_text() for t in ax.get_yticklabels()],
                     strict=True))
    series = {}
    for container in ax.containers:
        by_label = {}
        for bar in container:
            centre = bar.get_y() + bar.get_height() / 2
            by_label[ticks[min(ticks, key=lambda t, c=centre: abs(t - c))]] = bar.get_width()
        series[container.get_label().split()[0].rstrip(":")] = by_label
    return series


def per_label(repo: Repo, iteration: int, which: str) -> dict[str, float]:
    evaluation = Lake(repo.root).evaluation(
        "packages", repo.iterations[iteration - 1].flywheel_iteration_id, which)
    assert evaluation is not None
    return {row["label"]: row["f1Score"] for row in evaluation["perLabel"]}


def newest_figures(repo: Repo, version: str) -> dict[str, float]:
    """A version's per-label F1 from the newest iteration that trained or evaluated it."""
    for n in (3, 2, 1):
        it = repo.iterations[n - 1]
        if it.trained_model_version == version:
            return per_label(repo, n, "trained")
        if it.evaluated_model_version == version:
            return per_label(repo, n, "active")
    raise AssertionError(version)


@pytest.mark.parametrize("pinned", ["v1", "v2", "v3"])
def test_chart_calls_the_pinned_version_active(repo: Repo, pinned: str) -> None:
    figure = pinned_chart(repo, pinned)
    texts = legend_texts(figure)
    active = [text for text in texts if ACTIVE_NOW in text]
    assert active and all(text.startswith(pinned) for text in active), texts
    assert not [text for text in texts if "(active)" in text and not text.startswith(pinned)]
    (bars,) = [c for c in figure.axes[1].containers if ACTIVE_NOW in c.get_label()]
    assert bars.get_label().startswith(pinned)
    assert bar_figures(figure.axes[1])[pinned] == newest_figures(repo, pinned)


def test_each_bar_carries_the_figures_of_the_version_it_names(repo: Repo) -> None:
    """Pinned to v1, which the latest iteration did not evaluate: v1's bars are v1's figures
    (its newest evaluation, in iteration 2), beside the latest iteration's v3 and v2."""
    figure = pinned_chart(repo, "v1")
    assert bar_figures(figure.axes[1]) == {"v3": per_label(repo, 3, "trained"),
                                           "v2": per_label(repo, 3, "active"),
                                           "v1": per_label(repo, 2, "active")}
    assert per_label(repo, 2, "active") != per_label(repo, 3, "active")


@pytest.mark.parametrize("pinned", ["v1", "v3"])
def test_history_marks_the_active_version_at_its_own_f1(repo: Repo, pinned: str) -> None:
    figure = pinned_chart(repo, pinned)
    history = figure.axes[0]
    (marker,) = [line for line in history.get_lines() if ACTIVE_NOW in line.get_label()]
    assert marker.get_label().startswith(pinned)
    trained = next(it for it in repo.iterations if it.trained_model_version == pinned)
    assert list(marker.get_ydata()) == pytest.approx(
        [trained.trained_f1])


def test_legends_cover_no_bar_point_or_label_and_stay_inside_the_image(repo: Repo) -> None:
    figure = pinned_chart(repo, "v1")
    renderer = figure.canvas.get_renderer()
    assert len(legends(figure)) == len(figure.axes) == 3  # one per panel: F1, per label, drift
    for legend in legends(figure):
        box = legend.get_window_extent(renderer)
        assert figure.bbox.x0 <= box.x0 and box.x1 <= figure.bbox.x1
        assert figure.bbox.y0 <= box.y0 and box.y1 <= figure.bbox.y1
        for ax in figure.axes:
            assert not box.overlaps(ax.get_window_extent(renderer))  # outside every plot area
            assert not box.overlaps(ax.get_tightbbox(renderer))  # and its ticks and titles
            for patch in ax.patches:
                assert not box.overlaps(patch.get_window_extent(renderer))
            for line in ax.get_lines():
                for point in line.get_xydata():
                    assert not box.contains(*ax.transData.transform(point)), line.get_label()
            for text in ax.texts:
                assert not box.overlaps(text.get_window_extent(renderer)), text.get_text()
