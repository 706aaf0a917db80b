"""The command line on a real, reconciled repository: shapes, exit codes, charts, classify."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import PROJECT, bundled_rows, git, run_cli, write_csv

LABELS = ["archive", "audio", "db", "image", "mail", "text", "video"]


@pytest.fixture(scope="module")
def reconciled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository with one MULTI_LABEL flywheel, reconciled once (one real iteration)."""
    root = tmp_path_factory.mktemp("cli") / "repo"
    run_cli(root.parent, "init", str(root))
    write_csv(root / "data/tags.csv", _all_rows("train-v1.csv"))
    write_csv(root / "data/multi.csv",
              [r for r in _all_rows("train-v2.csv") if "|" in r[0]][:60])
    write_csv(root / "data/test.csv", _all_rows("test.csv"))
    spec = {
        "name": "tags",
        "task": {"mode": "MULTI_LABEL", "labels": LABELS, "minDocumentsPerLabel": 5},
        "datasets": [{"name": "tags", "type": "TRAIN", "path": "data/tags.csv"},
                     {"name": "multi", "type": "TRAIN", "path": "data/multi.csv"},
                     {"name": "test", "type": "TEST", "path": "data/test.csv"}],
        "recipe": {"algorithm": "logistic-regression", "classWeight": "balanced"},
        "promotion": {"minF1": 0.1},
    }
    (root / "specs/tags.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    run_cli(root, "reconcile")
    return root


def _all_rows(file: str) -> list[tuple[str, str]]:
    with (PROJECT / "data/debian-tags" / file).open(encoding="utf-8", newline="") as handle:
        return [(label, text) for label, text in csv.reader(handle)]


def test_list_json_is_comprehend_flywheel_summary_list(reconciled: Path) -> None:
    summaries = run_cli(reconciled, "list", "--output", "json").json()["FlywheelSummaryList"]
    (summary,) = summaries
    # Comprehend's FlywheelSummary members, and the project's Conditions (which it has not)
    assert set(summary) <= {"FlywheelArn", "ActiveModelArn", "DataLakeS3Uri", "Status",
                            "ModelType", "Message", "CreationTime", "LastModifiedTime",
                            "LatestFlywheelIteration", "Conditions"}
    assert summary["Conditions"][0]["Type"] == "Ready"
    assert summary["ModelType"] == "DOCUMENT_CLASSIFIER"
    assert re.fullmatch(r"[0-9]{8}T[0-9]{6}Z", summary["LatestFlywheelIteration"])
    assert summary["ActiveModelArn"].endswith("document-classifier/tags/version/v1")


def test_multi_label_classify_reads_a_file_and_gives_probabilities(reconciled: Path) -> None:
    texts = reconciled / "texts.txt"
    texts.write_text("audio player for mp3 and ogg files\n\nphoto editor for raster images\n")
    answer = run_cli(reconciled, "classify", "tags", "--file", str(texts), "--output",
                     "json").json()
    first, second = answer["Results"]
    assert first["ScoreKind"] == "probability"
    assert "audio" in [label["Name"] for label in first["Labels"]]
    assert "image" in [label["Name"] for label in second["Labels"]]
    assert all(0.0 <= c["Score"] <= 1.0 for c in first["Classes"])


def test_classify_raw_scores_and_the_calibration_figures_of_the_evaluation(
        reconciled: Path) -> None:
    """Scores are calibrated probabilities, most probable first; --raw-scores adds each label's
    logit; the iteration's evaluation and metrics.json carry Brier score and ECE."""
    answer = run_cli(reconciled, "classify", "tags", "audio player for mp3 and ogg files",
                     "--raw-scores", "--output", "json").json()
    (result,) = answer["Results"]
    assert result["ScoreKind"] == "probability" and result["RawScoreKind"] == "logit"
    scores = [c["Score"] for c in result["Classes"]]
    assert scores == sorted(scores, reverse=True) and all(0.0 <= s <= 1.0 for s in scores)
    assert {c["Name"] for c in result["Classes"]} == set(LABELS)
    assert all(isinstance(c["RawScore"], float) for c in result["Classes"] + result["Labels"])
    assert any(c["RawScore"] < 0 for c in result["Classes"])  # logits, not probabilities
    plain = run_cli(reconciled, "classify", "tags", "audio player", "-o", "json").json()
    assert "RawScore" not in plain["Results"][0]["Classes"][0]
    assert "RawScoreKind" not in plain["Results"][0]
    table = run_cli(reconciled, "classify", "tags", "audio player", "--raw-scores").stdout
    assert "(probability; raw: logit)" in table and "(raw -" in table

    iteration_id = run_cli(reconciled, "iterations", "tags", "-o", "json").json()[
        "FlywheelIterationPropertiesList"][0]["FlywheelIterationId"]
    trained = json.loads((reconciled / "lake/tags/evaluation" / iteration_id / "trained.json")
                         .read_text())
    assert 0.0 <= trained["expectedCalibrationError"] <= 0.2
    assert 0.0 <= trained["brierScore"] <= 0.25
    metrics = json.loads((reconciled / "pipelines/tags/out/metrics.json").read_text())
    assert metrics["trained"]["ExpectedCalibrationError"] == trained["expectedCalibrationError"]
    assert metrics["trained"]["BrierScore"] == trained["brierScore"]


def test_multi_class_classify_scores_sum_to_one_most_probable_first(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    root = tmp_path_factory.mktemp("cli-mc") / "repo"
    run_cli(root.parent, "init", str(root))
    labels = ["games", "mail", "math", "sound"]
    write_csv(root / "data/train.csv",
              bundled_rows("debian-sections", "train-v2.csv", labels, 40))
    write_csv(root / "data/test.csv", bundled_rows("debian-sections", "test.csv", labels, 25))
    spec = {"name": "sections", "task": {"mode": "MULTI_CLASS", "labels": labels},
            "datasets": [{"name": "train", "type": "TRAIN", "path": "data/train.csv"},
                         {"name": "test", "type": "TEST", "path": "data/test.csv"}],
            "recipe": {"algorithm": "linear-svm"}, "promotion": {"minF1": 0.1}}
    (root / "specs/sections.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    run_cli(root, "reconcile")
    answer = run_cli(root, "classify", "sections", "a chess game with a 3D board",
                     "an IMAP mail client", "--raw-scores", "-o", "json").json()
    for result in answer["Results"]:
        scores = [c["Score"] for c in result["Classes"]]
        assert scores == sorted(scores, reverse=True)
        assert sum(scores) == pytest.approx(1.0)
        assert all(0.0 <= s <= 1.0 for s in scores)
        assert result["Labels"][0]["Name"] == result["Classes"][0]["Name"]
        assert result["RawScoreKind"] == "margin"
        raw = [c["RawScore"] for c in result["Classes"]]
        assert raw == sorted(raw, reverse=True)  # temperature scaling keeps the order
    assert [r["Labels"][0]["Name"] for r in answer["Results"]] == ["games", "mail"]


def test_plot_writes_a_png_chart(reconciled: Path, tmp_path: Path) -> None:
    target = tmp_path / "chart.png"
    run_cli(reconciled, "plot", "tags", "--out", str(target))
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert target.stat().st_size > 10_000


def test_iteration_table_shows_per_label_f1(reconciled: Path) -> None:
    listed = run_cli(reconciled, "iterations", "tags", "--output", "json").json()
    iteration_id = listed["FlywheelIterationPropertiesList"][0]["FlywheelIterationId"]
    shown = run_cli(reconciled, "iteration", "tags", iteration_id).stdout
    for label in LABELS:
        assert label in shown
    calibration = next(line for line in shown.splitlines() if "calibration:" in line)
    assert re.search(r"trained v1 Brier 0\.\d{4}, ECE 0\.\d{4}", calibration), calibration
    assert "active" not in calibration, "the first iteration has no active model to judge"
    unknown = run_cli(reconciled, "iteration", "tags", "20000101T000000Z", check=2)
    assert "has no iteration 20000101T000000Z" in unknown.stderr


def test_plot_without_out_writes_into_dot_flywheel_not_the_tracked_tree(reconciled: Path) -> None:
    chart = reconciled / ".flywheel/charts/tags-f1.png"
    result = run_cli(reconciled, "plot", "tags")
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {chart}" in result.stderr
    assert not list(reconciled.glob("*.png"))
    assert "png" not in git(reconciled, "status", "--porcelain", "--untracked-files=all")
    chart.unlink()
    run_cli(reconciled.parent, "-C", str(reconciled), "plot", "tags")  # from another folder
    assert chart.is_file() and not list(reconciled.parent.glob("*.png"))


def test_iteration_latest_is_the_newest_iteration(reconciled: Path) -> None:
    listed = run_cli(reconciled, "iterations", "tags", "--output", "json").json()
    newest = listed["FlywheelIterationPropertiesList"][0]["FlywheelIterationId"]
    by_id = run_cli(reconciled, "iteration", "tags", newest, "--output", "json").json()
    latest = run_cli(reconciled, "iteration", "tags", "latest", "--output", "json").json()
    assert latest == by_id
    assert f"tags iteration {newest}: COMPLETED" in run_cli(reconciled, "iteration", "tags",
                                                            "latest").stdout
    unknown = run_cli(reconciled, "iteration", "tags", "newest", check=2)
    assert f"has no iteration newest (known: latest, {newest})" in unknown.stderr


def test_iteration_latest_without_iterations_says_so(repo: Path) -> None:
    write_csv(repo / "data/tags.csv", _all_rows("train-v1.csv"))
    spec = {"name": "fresh", "task": {"mode": "MULTI_LABEL", "labels": LABELS},
            "datasets": [{"name": "tags", "type": "TRAIN", "path": "data/tags.csv"}]}
    (repo / "specs/fresh.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    result = run_cli(repo, "iteration", "fresh", "latest", check=2)
    assert "flywheel 'fresh' has no iteration yet (run `flywheel reconcile fresh`)" \
        in result.stderr


def test_dvc_plots_read_the_per_label_and_history_files(reconciled: Path) -> None:
    history = (reconciled / "lake/tags/f1_history.csv").read_text().splitlines()
    assert history[0].startswith("step,iteration,trained,active")
    per_label = (reconciled / "pipelines/tags/out/per_label_f1.csv").read_text().splitlines()
    assert per_label[0] == "label,trained,active" and len(per_label) == len(LABELS) + 1


def test_schema_describes_camel_case_fields() -> None:
    schema = json.loads(run_cli(PROJECT, "schema").stdout)
    assert {"name", "task", "datasets", "recipe", "activeModel", "promotion"} <= set(
        schema["properties"])
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize(("content", "code", "expected"), [
    pytest.param("name: ok\n", 1, "task: required field is missing", id="missing-field"),
    pytest.param("name: [unclosed\n", 1, "malformed YAML", id="malformed"),
])
def test_validate_names_file_line_and_field(tmp_path: Path, content: str, code: int,
                                            expected: str) -> None:
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs/bad.yaml").write_text(content)
    result = run_cli(tmp_path, "validate", check=code)
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert all(line.startswith("error: specs/bad.yaml:") for line in lines)
    assert expected in lines[0]


def test_validate_lists_every_problem_of_each_file_and_keeps_the_exit_code(
        tmp_path: Path) -> None:
    # a spec with two mistakes, a data file with four, a good flywheel: one run shows them all
    (tmp_path / "specs").mkdir()
    spec = ("name: {name}\ntask:\n  mode: MULTI_CLASS\n  labels: [games, mail]\n"
            "  minDocumentsPerLabel: 1\ndatasets:\n"
            "  - {{name: train, type: TRAIN, path: data/{name}.csv}}\n")
    (tmp_path / "specs/good.yaml").write_text(spec.format(name="good"))
    (tmp_path / "specs/rows.yaml").write_text(spec.format(name="rows"))
    (tmp_path / "specs/typos.yaml").write_text(
        spec.format(name="typos").replace("  minDocumentsPerLabel", "  minDocumentsPerlabel")
        + "promotion: {minf1: 0.5}\n")
    write_csv(tmp_path / "data/good.csv", [("games", f"game {i}") for i in range(30)]
              + [("mail", f"mail {i}") for i in range(30)])
    write_csv(tmp_path / "data/rows.csv", [("LABEL", "TEXT"), ("games", "ok"), ("gmaes", "x"),
                                           ("mail", " "), ("Mail", "y"), ("mail", "fine")])
    result = run_cli(tmp_path, "validate", check=1)
    assert result.stderr.splitlines() == [
        "error: data/rows.csv:1: looks like a header row: Comprehend CSV has no header; remove "
        "it (and 3 more problems in this file, at lines 3, 4, 5)",
        "error: data/rows.csv:3: unknown label 'gmaes'; did you mean 'games'? "
        "(declared: games, mail)",
        "error: data/rows.csv:4: document text is empty",
        "error: data/rows.csv:5: unknown label 'Mail'; did you mean 'mail'? "
        "(declared: games, mail)",
        "error: specs/typos.yaml:5: task.minDocumentsPerlabel: unknown field; did you mean "
        "'minDocumentsPerLabel'? (and 1 more problem in this file, at line 8)",
        "error: specs/typos.yaml:8: promotion.minf1: unknown field; did you mean 'minF1'?",
        "1 valid, 2 invalid",
    ]
    answer = run_cli(tmp_path, "validate", "--output", "json", check=1).json()
    assert answer["Errors"] == [line.removeprefix("error: ")
                                for line in result.stderr.splitlines()[:-1]]
    plan = run_cli(tmp_path, "plan", "rows", check=2)
    assert [line for line in plan.stderr.splitlines() if line.startswith("error: ")] == \
        result.stderr.splitlines()[:4]


def test_reconcile_outside_a_dvc_repository_is_one_clear_error(tmp_path: Path) -> None:
    shutil.copytree(PROJECT / "specs", tmp_path / "specs")
    shutil.copytree(PROJECT / "data/debian-tags", tmp_path / "data/debian-tags")
    shutil.copytree(PROJECT / "data/debian-sections", tmp_path / "data/debian-sections")
    result = run_cli(tmp_path, "reconcile", "debian-tags", check=1)
    assert "is not a DVC repository; run `flywheel init`" in result.stderr
    assert not (tmp_path / "lake").exists()


def test_commands_outside_a_repository_exit_2(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "list", check=2)
    assert "has no specs/ folder" in result.stderr


def test_init_is_idempotent(tmp_path: Path) -> None:
    run_cli(tmp_path, "init", "repo")
    run_cli(tmp_path, "init", "repo")
    assert (tmp_path / "repo/.gitignore").read_text().count(".flywheel/") == 1
    assert (tmp_path / "repo/.dvc").is_dir() and (tmp_path / "repo/dvc.yaml").is_file()


def test_no_op_reconcile_says_so(reconciled: Path) -> None:
    result = run_cli(reconciled, "reconcile", "--log-format", "plain")
    assert "event=up-to-date flywheel=tags" in result.stderr
    assert "Nothing to do: 1 flywheel(s) up to date." in result.stderr

