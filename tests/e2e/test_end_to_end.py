"""From an empty repository through two dataset versions, an automatic promotion, a manual pin,
a pin to a missing version, and an unpin: real CLI, real git, real DVC, real scikit-learn fits."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from conftest import bundled_rows, write_csv

LABELS = ["games", "mail", "science", "sound"]
SPEC = "specs/packages.yaml"


def write_spec(repo: Path, datasets: list[tuple[str, str, str]], **extra: object) -> None:
    spec = {
        "name": "packages",
        "task": {"mode": "MULTI_CLASS", "labels": LABELS},
        "datasets": [{"name": n, "type": t, "path": p} for n, t, p in datasets],
        "recipe": {"algorithm": "linear-svm", "features": {"ngramRange": [1, 2]}},
        "promotion": {"minF1": 0.3, "minImprovement": 0.0},
        **extra,
    }
    (repo / SPEC).write_text("# packages flywheel\n" + yaml.safe_dump(spec, sort_keys=False))


def lake_status(repo: Path) -> dict:
    return json.loads((repo / "lake/packages/status.json").read_text())


def dvc(repo: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, capture_output=True,
                          text=True, check=True)
    return done.stdout


def test_flywheel_turns_promotes_pins_and_unpins(repo: Path, cli) -> None:
    write_csv(repo / "data/v1.csv", bundled_rows("debian-sections", "train-v1.csv", LABELS, 12))
    write_csv(repo / "data/v2.csv", bundled_rows("debian-sections", "train-v2.csv", LABELS, 45))
    write_csv(repo / "data/v3.csv", bundled_rows("debian-sections", "train-v3.csv", LABELS, 30))
    write_csv(repo / "data/test.csv", bundled_rows("debian-sections", "test.csv", LABELS, 30))
    first = [("v1", "TRAIN", "data/v1.csv"), ("test", "TEST", "data/test.csv")]
    write_spec(repo, first)
    (repo / "specs/broken.yaml").write_text("name: broken\ntask: {mode: MULTI_CLASS\n")

    # 1. First iteration trains v1; the policy promotes it; the broken spec fails alone.
    run = cli("reconcile", "--output", "json", check=1)
    report = run.json()
    assert "specs/broken.yaml:" in report["Errors"][0]
    (packages,) = report["Flywheels"]
    assert packages["Iteration"]["Status"] == "COMPLETED"
    assert packages["Iteration"]["TrainedModelArn"].endswith("/version/v1")
    assert "EvaluatedModelArn" not in packages["Iteration"]
    assert lake_status(repo)["activeModel"] == "v1"
    (repo / "specs/broken.yaml").unlink()

    # DVC sees the same pipeline: stages in the DAG, metrics readable, the model in its cache.
    assert "pipelines/packages/dvc.yaml:evaluate" in dvc(repo, "dag", "--md")
    metrics = dvc(repo, "metrics", "show", "--json")
    assert "AverageF1Score" in metrics
    assert (repo / "lake/packages/models.dvc").is_file()
    assert "v1.skops" in (repo / "lake/packages/.gitignore").read_text() or \
        "/models" in (repo / "lake/packages/.gitignore").read_text()
    # What git would commit: pipeline files, lock, metrics; not the model, not prepared data.
    untracked = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"],
                               cwd=repo, capture_output=True, text=True, check=True).stdout
    assert "pipelines/packages/dvc.lock" in untracked
    assert "pipelines/packages/out/metrics.json" in untracked
    assert ".jsonl" not in untracked and ".skops" not in untracked

    # 2. Nothing changed: nothing to do, and it says so.
    again = cli("reconcile")
    assert "Nothing to do" in again.stderr

    # 3. A second dataset version: iterate, evaluate v1 and train v2 on the same test data.
    write_spec(repo, [*first, ("v2", "TRAIN", "data/v2.csv")])
    second = cli("reconcile", "--output", "json").json()["Flywheels"][0]["Iteration"]
    assert second["EvaluatedModelArn"].endswith("/version/v1")
    assert second["TrainedModelArn"].endswith("/version/v2")
    trained_f1 = second["TrainedModelMetrics"]["AverageF1Score"]
    active_f1 = second["EvaluatedModelMetrics"]["AverageF1Score"]
    assert trained_f1 > active_f1, "four times the training data should beat the first model"
    status = lake_status(repo)
    assert status["activeModel"] == "v2"
    assert [p["kind"] for p in status["promotions"]] == ["POLICY", "POLICY"]

    history = cli("iterations", "packages", "--output", "json").json()
    ids = [it["FlywheelIterationId"] for it in history["FlywheelIterationPropertiesList"]]
    assert ids == sorted(ids, reverse=True) and len(ids) == 2

    # 4. A human pins v1: it becomes active and stays active through a better iteration.
    write_spec(repo, [*first, ("v2", "TRAIN", "data/v2.csv")], activeModel="v1")
    cli("reconcile")
    assert lake_status(repo)["activeModel"] == "v1"
    assert lake_status(repo)["pinned"] is True
    write_spec(repo, [*first, ("v2", "TRAIN", "data/v2.csv"), ("v3", "TRAIN", "data/v3.csv")],
               activeModel="v1")
    third = cli("reconcile", "--output", "json").json()["Flywheels"][0]["Iteration"]
    assert third["EvaluatedModelArn"].endswith("/version/v1")
    assert third["TrainedModelArn"].endswith("/version/v3")
    assert lake_status(repo)["activeModel"] == "v1", "a pin always wins over the policy"

    # 5. A pin to a version that does not exist: one clear line, exit 1, nothing changes.
    write_spec(repo, [*first, ("v2", "TRAIN", "data/v2.csv"), ("v3", "TRAIN", "data/v3.csv")],
               activeModel="v9")
    before = (repo / "lake/packages/status.json").read_bytes()
    bad = cli("reconcile", check=1)
    error_line = next(line for line in bad.stderr.splitlines() if "v9" in line)
    assert f"{SPEC}:" in error_line and "activeModel" in error_line
    assert "does not exist" in error_line
    assert (repo / "lake/packages/status.json").read_bytes() == before

    # 6. Unpin: the policy decides at once. v3 beat the pinned v1 in its own iteration (same
    #    test data), so v3 becomes active, recorded as a policy promotion with its reason.
    f1s = (third["TrainedModelMetrics"]["AverageF1Score"],
           third["EvaluatedModelMetrics"]["AverageF1Score"])
    assert f1s[0] >= f1s[1] + 0.005, f"the bundled data no longer makes v3 beat v1: {f1s}"
    write_spec(repo, [*first, ("v2", "TRAIN", "data/v2.csv"), ("v3", "TRAIN", "data/v3.csv")])
    cli("reconcile")
    status = lake_status(repo)
    assert status["activeModel"] == "v3" and status["pinned"] is False
    assert [p["kind"] for p in status["promotions"]] == ["POLICY", "POLICY", "PIN", "POLICY"]
    unpinned = status["promotions"][-1]
    assert unpinned["previousVersion"] == "v1"
    assert unpinned["flywheelIterationId"] == third["FlywheelIterationId"]
    assert "pin removed" in unpinned["reason"] and "makes v3 active" in unpinned["reason"]

    # 7. The active model classifies text.
    answer = cli("classify", "packages", "multiplayer strategy game with a campaign mode",
                 "--output", "json").json()
    assert answer["ModelVersion"] == "v3"
    assert answer["Results"][0]["Labels"][0]["Name"] == "games"

    # 8. A consumed dataset whose content changed is refused with both hashes.
    with (repo / "data/v1.csv").open("a", encoding="utf-8") as handle:
        handle.write("games,an extra row added after the fact to a consumed dataset\n")
    changed = cli("reconcile", check=1)
    assert "changed after iteration" in changed.stderr
    assert changed.stderr.count("md5") == 1 and "->" in changed.stderr


def test_describe_and_iteration_speak_comprehend(repo: Path, cli) -> None:
    write_csv(repo / "data/train.csv", bundled_rows("debian-sections", "train-v2.csv", LABELS, 20))
    write_spec(repo, [("train", "TRAIN", "data/train.csv")])  # no TEST: deterministic holdout
    cli("reconcile")
    props = cli("describe", "packages", "--output", "json").json()["FlywheelProperties"]
    assert props["TaskConfig"]["DocumentClassificationConfig"]["Mode"] == "MULTI_CLASS"
    assert props["ActiveModelArn"].endswith("/version/v1")
    iteration_id = props["LatestFlywheelIteration"]
    described = cli("iteration", "packages", iteration_id, "--output", "json").json()
    metrics = described["FlywheelIterationProperties"]["TrainedModelMetrics"]
    assert set(metrics) == {"AverageF1Score", "AveragePrecision", "AverageRecall",
                            "AverageAccuracy"}
    human = cli("iteration", "packages", iteration_id)
    assert "holdout" in human.stdout and "Per-label F1" in human.stdout
