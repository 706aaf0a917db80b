"""The Markdown report of a reconcile, from real runs: real git, real DVC, real scikit-learn fits.

One repository is built once for the module and reconciled three times: the first TRAIN dataset
(v1 trained, nothing to compare with), a second TRAIN dataset (v2 against the active v1), and no
change at all. A spec file that does not load (its error has a ``|``), a flywheel whose data has
a bad row and a suspended flywheel sit beside the good flywheel throughout.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from conftest import bundled_rows, run_cli, write_csv

from reconciler.adapters.lake import Lake
from reconciler.core.state import IterationRecord, IterationStatus, ModelMetrics, PromotionRecord
from reconciler.errors import PipelineError
from reconciler.reports.markdown import (
    MARKER,
    code,
    difference,
    markdown_report,
    md_cell,
    md_text,
    mermaid_f1_chart,
    promoted_text,
)
from reconciler.runtime.reconcile import FlywheelResult, ReconcileResult, reconcile

LABELS = ["games", "mail", "science", "sound"]
METRICS = ("AverageF1Score", "AveragePrecision", "AverageRecall", "AverageAccuracy")


@dataclass
class Run:
    result: ReconcileResult
    markdown: str

    @property
    def record(self) -> IterationRecord:
        (packages,) = [f for f in self.result.flywheels if f.name == "packages"]
        assert packages.iteration is not None
        return packages.iteration


@dataclass
class Runs:
    repo: Path
    first: Run
    second: Run
    unchanged: Run


def write_spec(repo: Path, name: str, datasets: list[tuple[str, str, str]],
               **extra: object) -> None:
    spec = {
        "name": name,
        "task": {"mode": "MULTI_CLASS", "labels": LABELS},
        "datasets": [{"name": n, "type": t, "path": p} for n, t, p in datasets],
        "recipe": {"algorithm": "linear-svm", "features": {"ngramRange": [1, 2]}},
        "promotion": {"minF1": 0.3, "minImprovement": 0.0},
        **extra,
    }
    (repo / "specs" / f"{name}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    """The ``repo`` fixture's repository, built once for the module's tests."""
    base = tmp_path_factory.mktemp("report")
    repo = base / "repo"
    run_cli(base, "init", str(repo))
    write_csv(repo / "data/v1.csv", bundled_rows("debian-sections", "train-v1.csv", LABELS, 12))
    write_csv(repo / "data/v2.csv", bundled_rows("debian-sections", "train-v2.csv", LABELS, 25))
    write_csv(repo / "data/test.csv", bundled_rows("debian-sections", "test.csv", LABELS, 20))
    write_csv(repo / "data/bad.csv", [*bundled_rows("debian-sections", "train-v1.csv",
                                                    LABELS, 12), ("nolabel", "a stray row")])
    first = [("v1", "TRAIN", "data/v1.csv"), ("test", "TEST", "data/test.csv")]
    write_spec(repo, "packages", first)
    write_spec(repo, "bad-data", [("bad", "TRAIN", "data/bad.csv")])
    write_spec(repo, "paused", [("v1", "TRAIN", "data/v1.csv")], suspend=True)
    (repo / "specs/broken.yaml").write_text("name: bad|name\ntask: {mode: MULTI_CLASS}\n")

    def reconciled() -> Run:
        result = reconcile(repo)
        return Run(result, markdown_report(repo, result))

    one = reconciled()
    write_spec(repo, "packages", [*first, ("v2", "TRAIN", "data/v2.csv")])
    two = reconciled()
    return Runs(repo, one, two, reconciled())


def section(markdown: str, name: str) -> str:
    """One flywheel's section: from its heading to the next heading or the summary."""
    match = re.search(rf"^### {re.escape(name)}\n(.*?)(?=^### |^\*\*Summary\*\*)", markdown,
                      re.M | re.S)
    assert match, f"no section for {name}:\n{markdown}"
    return match.group(1)


def table_after(markdown: str, title: str) -> list[list[str]]:
    """The body rows of the first table after ``title``, cells split on unescaped pipes."""
    lines = markdown[markdown.index(title):].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows


def mermaid(markdown: str) -> list[str]:
    match = re.search(r"^```mermaid\n(.*?)^```$", markdown, re.M | re.S)
    assert match, markdown
    return match.group(1).splitlines()


def series(lines: list[str]) -> list[list[float]]:
    return [[float(v) for v in line.strip()[len("line ["):-1].split(", ")]
            for line in lines if line.strip().startswith("line [")]


def f1(metrics: ModelMetrics | None, key: str = "AverageF1Score") -> str:
    assert metrics is not None
    return f"{metrics.figures()[key]:.4f}"


# the first iteration: a model, nothing to compare with ------------------------------------------


def test_first_report_has_marker_errors_heading_and_trained_metrics(runs: Runs) -> None:
    markdown, record = runs.first.markdown, runs.first.record
    assert markdown.startswith(MARKER + "\n")
    assert record.status is IterationStatus.COMPLETED

    (load_error,) = runs.first.result.errors
    assert "|" in str(load_error)
    errors = markdown[:markdown.index("### ")]
    assert md_text(load_error) in errors and "bad\\|name" in errors
    assert "bad|name" not in markdown, "a user's pipe must never reach the Markdown raw"

    packages = section(markdown, "packages")
    assert "**Iterated and promoted**" in packages and "v1 (POLICY) is now active" in packages
    assert f"- Iteration `{record.flywheel_iteration_id}`: COMPLETED" in packages
    assert "- New datasets: v1, test" in packages
    assert (f"- Documents: {record.number_of_train_documents} train, "
            f"{record.number_of_test_documents} test") in packages
    assert f"- Trained: v1, F1 {f1(record.trained_model_metrics)}" in packages
    assert "- Active (evaluated): none yet" in packages
    assert "F1 difference" not in packages
    assert record.decision is not None and record.decision.promote
    assert f"**Decision**: promoted v1: {md_text(record.decision.reason)}" in packages
    assert "| Metric | Trained v1 | Active (none) | Difference |" in packages
    rows = table_after(packages, "| Metric")
    assert [row[0] for row in rows] == list(METRICS)
    for row in rows:
        assert row[1:] == [f1(record.trained_model_metrics, row[0]), "—", "—"]


def test_first_report_lists_every_label_and_the_promotion(runs: Runs) -> None:
    packages = section(runs.first.markdown, "packages")
    trained = Lake(runs.repo).evaluation("packages", runs.first.record.flywheel_iteration_id,
                                         "trained")
    assert trained is not None
    rows = table_after(packages, "**Per-label F1**")
    assert [row[0] for row in rows] == [r["label"] for r in trained["perLabel"]]
    assert sorted(row[0] for row in rows) == LABELS
    for row, label in zip(rows, trained["perLabel"], strict=True):
        assert row == [label["label"], str(label["support"]), f"{label['f1Score']:.4f}", "—",
                       "—"]
    (promotion,) = table_after(packages, "**Promotions applied**")
    assert promotion[:3] == ["v1", "—", "POLICY"]


def test_failed_and_suspended_flywheels_and_summary(runs: Runs) -> None:
    markdown = runs.first.markdown
    (bad,) = [f for f in runs.first.result.flywheels if f.name == "bad-data"]
    assert bad.error is not None and "nolabel" in str(bad.error)
    assert section(markdown, "bad-data").strip() == f"**Failed**: {md_text(bad.error)}"
    assert section(markdown, "paused").strip().startswith("**Suspended**: suspended (suspend")
    headings = re.findall(r"^### (.+)$", markdown, re.M)
    assert headings == ["bad-data", "packages", "paused"]
    assert markdown.rstrip().endswith(
        "**Summary**: 3 flywheels, 1 iteration, 1 promotion, 1 suspended, 1 failed, "
        "1 spec file not loaded.")


def test_first_chart_has_the_trained_line_only(runs: Runs) -> None:
    lines = mermaid(runs.first.markdown)
    assert lines[0] == "xychart-beta"
    assert lines[2] == '    x-axis ["v1"]'
    assert re.fullmatch(r'    y-axis "AverageF1Score" 0\.\d --> 1', lines[3])
    assert series(lines) == [[round(runs.first.record.trained_f1,
                                    4)]]
    assert runs.first.markdown.count("```mermaid") == 1


# the second iteration: v2 against the active v1 on the same test data ---------------------------


def test_second_report_compares_trained_and_active(runs: Runs) -> None:
    record = runs.second.record
    packages = section(runs.second.markdown, "packages")
    trained, active = record.trained_model_metrics, record.evaluated_model_metrics
    assert record.trained_model_version == "v2" and record.evaluated_model_version == "v1"
    assert trained is not None and active is not None
    assert f"- Iteration `{record.flywheel_iteration_id}`: COMPLETED" in packages
    assert "- New datasets: v2\n" in packages
    assert f"- Trained: v2, F1 {f1(trained)}" in packages
    assert f"- Active (evaluated): v1, F1 {f1(active)}" in packages
    delta = record.trained_f1 - record.active_f1
    assert f"- F1 difference (trained - active): **{delta:+.4f}**" in packages
    rows = table_after(packages, "| Metric")
    assert "| Metric | Trained v2 | Active v1 | Difference |" in packages
    assert [row[0] for row in rows] == list(METRICS)
    for key, new, old, delta in rows:
        assert [new, old] == [f1(trained, key), f1(active, key)]
        assert re.fullmatch(r"[+-]\d\.\d{4}", delta)
        change = trained.figures()[key] - active.figures()[key]
        assert float(delta) == pytest.approx(change, abs=5e-5)
    assert record.decision is not None
    verdict = "promoted v2" if record.decision.promote else "not promoted"
    assert f"**Decision**: {verdict}: {md_text(record.decision.reason)}" in packages


def test_second_report_per_label_rows_come_from_both_evaluations(runs: Runs) -> None:
    iteration_id = runs.second.record.flywheel_iteration_id
    lake = Lake(runs.repo)
    trained = {r["label"]: r for r in lake.evaluation("packages", iteration_id, "trained")
               ["perLabel"]}
    active = {r["label"]: r for r in lake.evaluation("packages", iteration_id, "active")
              ["perLabel"]}
    rows = table_after(section(runs.second.markdown, "packages"), "**Per-label F1**")
    assert sorted(row[0] for row in rows) == LABELS
    for label, support, new, old, delta in rows:
        assert support == str(trained[label]["support"])
        assert new == f"{trained[label]['f1Score']:.4f}"
        assert old == f"{active[label]['f1Score']:.4f}"
        assert re.fullmatch(r"[+-]\d\.\d{4}", delta)
        assert float(delta) == pytest.approx(
            trained[label]["f1Score"] - active[label]["f1Score"], abs=5e-5)


def test_second_chart_has_a_point_per_completed_iteration(runs: Runs) -> None:
    completed = Lake(runs.repo).observe("packages").completed()
    assert len(completed) == 2
    lines = mermaid(runs.second.markdown)
    assert lines[0] == "xychart-beta"
    assert lines[2] == '    x-axis ["v1", "v2"]'
    # only the second iteration had an active model: one point is no line, so trained only
    assert series(lines) == [[round(it.trained_f1, 4)
                              for it in completed]]


def test_charts_are_written_and_linked(runs: Runs, tmp_path: Path) -> None:
    charts = runs.repo / "reports" / "charts"
    local = markdown_report(runs.repo, runs.second.result, charts_dir=charts)
    png = charts / "packages-f1.png"
    assert png.is_file() and png.read_bytes().startswith(b"\x89PNG")
    assert "![F1 of packages across iterations and per label](reports/charts/packages-f1.png)" \
        in local
    assert "bad-data-f1.png" not in local and not (charts / "bad-data-f1.png").exists()

    published = markdown_report(runs.repo, runs.second.result, charts_dir=tmp_path / "out",
                                charts_url="https://ci.example/artifacts/charts/")
    assert (tmp_path / "out" / "packages-f1.png").is_file()
    assert "(https://ci.example/artifacts/charts/packages-f1.png)" in published
    assert local.replace("reports/charts/", "https://ci.example/artifacts/charts/") == published


# nothing changed -------------------------------------------------------------------------------


def test_unchanged_report_says_up_to_date(runs: Runs) -> None:
    markdown = runs.unchanged.markdown
    assert markdown.startswith(MARKER)
    packages = section(markdown, "packages")
    assert packages.strip() == (f"**Up to date** (iteration "
                                f"{runs.second.record.flywheel_iteration_id}).")
    assert "```mermaid" not in markdown and "Per-label" not in markdown
    assert "**Summary**: 3 flywheels, 0 iterations, 0 promotions, 1 up to date, 1 suspended, " \
        "1 failed, 1 spec file not loaded." in markdown


# pure parts ------------------------------------------------------------------------------------


def test_cells_and_text_are_escaped() -> None:
    assert md_cell("a|b") == "a\\|b"
    assert md_cell("line one\nline | two\r\nthree") == "line one<br>line \\| two<br>three"
    assert md_text("specs/x.yaml:1: got 'a|b'\n<script> *bold* `tick` [link](x)") == (
        "specs/x.yaml:1: got 'a\\|b' \\<script> \\*bold\\* \\`tick\\` \\[link\\](x)")
    assert md_text("1. not a list") == "1\\. not a list"
    assert md_text("- not a bullet") == "\\- not a bullet"
    assert md_text("# not a heading") == "\\# not a heading"
    assert md_text("> not a quote") == "\\> not a quote"
    assert code("a `b` c") == "``a `b` c``"


def test_differences_are_signed_with_four_decimals() -> None:
    assert difference(0.8, 0.7877) == "+0.0123"
    assert difference(0.7, 0.75) == "-0.0500"
    assert difference(0.5, 0.50001) == "+0.0000"
    assert difference(None, 0.5) == "—"


def test_chart_draws_both_lines_when_two_iterations_have_both() -> None:
    def record(n: int, trained: float, active: float | None) -> IterationRecord:
        return IterationRecord(
            flywheel_name="x", flywheel_iteration_id=f"2024010{n}T000000Z",
            status=IterationStatus.COMPLETED, creation_time=0.0, input_digest="d",
            trained_model_version=f"v{n}", trained_model_metrics={"AverageF1Score": trained},
            evaluated_model_metrics=None if active is None else {"AverageF1Score": active})

    chart = mermaid_f1_chart([record(1, 0.61, None), record(2, 0.7, 0.61),
                              record(3, 0.72, 0.7)])
    lines = mermaid(chart)
    assert lines[2] == '    x-axis ["v2", "v3"]'
    assert lines[3] == '    y-axis "AverageF1Score" 0.5 --> 1'
    assert series(lines) == [[0.7, 0.72], [0.61, 0.7]]


def test_failed_iteration_busy_stopped_and_pin_sections(tmp_path: Path) -> None:
    failed = IterationRecord(
        flywheel_name="broken", flywheel_iteration_id="20240101T000000Z",
        status=IterationStatus.FAILED, message="train stage failed: exit 1 | see log\nline 2",
        creation_time=0.0, input_digest="d", new_datasets=["v7"],
        number_of_train_documents=10, number_of_test_documents=4, test_source="holdout")
    pin = PromotionRecord(version="v1", previous_version="v2", time=0.0, kind="PIN",
                          reason="activeModel: v1 | pinned in the spec")
    result = ReconcileResult(flywheels=[
        FlywheelResult("stopper", "specs/stopper.yaml", stopped=True),
        FlywheelResult("broken", "specs/broken.yaml", iteration=failed,
                       error=PipelineError("train stage failed: exit 1 | see log",
                                           file="specs/broken.yaml")),
        FlywheelResult("busy-one", "specs/busy-one.yaml", busy=True),
        FlywheelResult("pinned", "specs/pinned.yaml", promotions=[pin]),
    ])
    markdown = markdown_report(tmp_path, result)
    assert re.findall(r"^### (.+)$", markdown, re.M) == ["broken", "busy-one", "pinned",
                                                          "stopper"]
    broken = section(markdown, "broken")
    assert broken.startswith("\n**Failed**: specs/broken.yaml: train stage failed: exit 1 \\| "
                             "see log\n")
    assert "- Iteration `20240101T000000Z`: FAILED" in broken
    assert "- Documents: 10 train, 4 test (holdout)" in broken
    assert "- Message: train stage failed: exit 1 \\| see log line 2" in broken
    assert "| Metric" not in broken and "```mermaid" not in broken and "Decision" not in broken
    assert section(markdown, "busy-one").strip().startswith("**Busy**")
    assert section(markdown, "stopper").strip().startswith("**Stopped**")
    pinned = section(markdown, "pinned")
    assert "**Promoted**: v1 (PIN) is now active." in pinned
    assert table_after(pinned, "**Promotions applied**") == [
        ["v1", "v2", "PIN", "activeModel: v1 \\| pinned in the spec"]]
    assert promoted_text([pin, pin.model_copy(update={"version": "v3", "kind": "POLICY"})]) \
        == "v1 (PIN), then v3 (POLICY); v3 is now active"
    assert markdown.rstrip().endswith("**Summary**: 4 flywheels, 1 iteration, 1 promotion, "
                                      "1 failed, 1 busy, 1 stopped.")
