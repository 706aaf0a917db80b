"""What a person reads: each version named with its own figures, and a policy that is never met
said as a condition with what to do. Real CLI; real iterations where a model is needed."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from conftest import bundled_rows, write_csv

from reconciler.adapters.lake import Lake
from reconciler.core.state import (
    Decision,
    FlywheelStatus,
    IterationRecord,
    IterationStatus,
    ModelVersionRecord,
    PromotionRecord,
)

LABELS = ["games", "mail", "science", "sound"]
SPEC = "specs/packages.yaml"
T0 = 1_700_000_000.0


def write_spec(repo: Path, promotion: dict | None, **extra: object) -> None:
    spec = {
        "name": "packages",
        "task": {"mode": "MULTI_CLASS", "labels": LABELS},
        "datasets": [{"name": "train", "type": "TRAIN", "path": "data/train.csv"},
                     {"name": "test", "type": "TEST", "path": "data/test.csv"}],
        "recipe": {"algorithm": "linear-svm"},
        **({"promotion": promotion} if promotion else {}),
        **extra,
    }
    (repo / SPEC).write_text(yaml.safe_dump(spec, sort_keys=False))


def write_data(repo: Path) -> None:
    write_csv(repo / "data/train.csv", bundled_rows("debian-sections", "train-v2.csv", LABELS, 25))
    write_csv(repo / "data/test.csv", bundled_rows("debian-sections", "test.csv", LABELS, 20))


def table_row(table: str, name: str) -> str:
    """The cells of ``name``'s row in a rich table, with its wrapped lines joined."""
    lines = [line.rstrip()[1:-1].split("│") for line in table.splitlines()
             if line.startswith("│")]
    start = next(i for i, cells in enumerate(lines) if cells[0].strip() == name)
    rows = [lines[start]]
    rows += [cells for cells in lines[start + 1:] if not cells[0].strip()][:10]
    columns = zip(*rows, strict=True)
    return " │ ".join(" ".join(" ".join(cell.split()) for cell in column).strip()
                      for column in columns)


# --------------------------------------------------------------------------------------------
# A policy never met


def test_a_policy_never_met_is_a_condition_with_the_best_f1_and_what_to_do(repo: Path,
                                                                           cli) -> None:
    write_data(repo)
    write_spec(repo, {"minF1": 0.999})
    cli("reconcile")
    status = json.loads((repo / "lake/packages/status.json").read_text())
    assert status.get("activeModel") is None

    row = table_row(cli("list").stdout, "packages")
    assert "False" in row and "True" not in row
    assert "best F1 is 0." in row and "(v1), below minF1 0.9990" in row
    assert "lower promotion.minF1" in row
    summary = cli("list", "--output", "json").json()["FlywheelSummaryList"][0]
    assert "below minF1 0.9990" in summary["Message"]

    described = cli("describe", "packages").stdout
    assert "Ready=False NoActiveModel" in described
    assert "Stalled=True" in described

    refused = cli("classify", "packages", "a strategy game", check=2)
    assert "below minF1 0.9990" in refused.stderr
    assert "declare a promotion policy" not in refused.stderr

    # Doing what the message says works at once: the policy, now met, makes v1 active.
    write_spec(repo, {"minF1": 0.3})
    done = cli("reconcile", "--output", "json").json()
    assert done["Flywheels"][0].get("Iteration") is None, "no new data: no new iteration"
    status = json.loads((repo / "lake/packages/status.json").read_text())
    assert status["activeModel"] == "v1"
    assert status["promotions"][-1]["kind"] == "POLICY"
    assert "policy now met" in status["promotions"][-1]["reason"]
    answer = cli("classify", "packages", "a strategy game", "--output", "json").json()
    assert answer["ModelVersion"] == "v1"
    assert "NoActiveModel" not in cli("describe", "packages").stdout


def test_no_policy_and_no_pin_says_promotion_is_manual(repo: Path, cli) -> None:
    write_data(repo)
    write_spec(repo, None)
    cli("reconcile")
    described = cli("describe", "packages").stdout
    assert "Ready=False NoActiveModel" in described
    assert "promotion is manual" in described and "activeModel: vN" in described
    refused = cli("classify", "packages", "a strategy game", check=2)
    assert "promotion is manual" in refused.stderr


# --------------------------------------------------------------------------------------------
# Every version named with its own figures (lake records written through the lake's own API)


def recorded(repo: Path) -> None:
    """Three iterations: v1 (0.61), v2 beat v1 (0.72 vs 0.60), v3 beat v2 (0.83 vs 0.74);
    then a person pinned v1. v1's newest figure is 0.60, from the second iteration."""
    write_data(repo)
    write_spec(repo, {"minF1": 0.3}, activeModel="v1")
    lake = Lake(repo)
    history = [("20240101T000000Z", "v1", 0.61, None, None),
               ("20240102T000000Z", "v2", 0.72, "v1", 0.60),
               ("20240103T000000Z", "v3", 0.83, "v2", 0.74)]
    for number, (iteration_id, trained, trained_f1, active, active_f1) in enumerate(history):
        lake.write_iteration(IterationRecord(
            flywheel_name="packages", flywheel_iteration_id=iteration_id,
            status=IterationStatus.COMPLETED, creation_time=T0 + number, end_time=T0 + number,
            input_digest=str(number), trained_model_version=trained,
            trained_model_metrics={"AverageF1Score": trained_f1},
            evaluated_model_version=active,
            evaluated_model_metrics={"AverageF1Score": active_f1} if active_f1 else None,
            decision=Decision(promote=True, reason="recorded", trained_f1=trained_f1,
                              active_f1=active_f1)))
        lake.write_version("packages", ModelVersionRecord(
            version=trained, flywheel_iteration_id=iteration_id, creation_time=T0 + number,
            file=f"lake/packages/models/{trained}.skops", sha256="0" * 64, size=1,
            mode="MULTI_CLASS", labels=LABELS, recipe={}, datasets=[],
            trained_model_metrics={"AverageF1Score": trained_f1}))
    lake.write_status(FlywheelStatus(
        flywheel_name="packages", creation_time=T0, active_model="v1", pinned=True,
        promotions=[PromotionRecord(version="v1", previous_version="v3", time=T0 + 9,
                                    kind="PIN", reason="pinned")]))


def test_list_names_the_active_version_with_its_own_f1(repo: Path, cli) -> None:
    recorded(repo)
    listed = cli("list").stdout
    header = next(line for line in listed.splitlines() if "ACTIVE F1" in line)
    row = table_row(listed, "packages")
    columns = ["ACTIVE", "ACTIVE F1", "LATEST ITERATION", "TRAINED", "TRAINED F1"]
    assert all(column in header for column in columns)
    assert "v1 (pinned)" in row
    assert "0.6000" in row, "v1's own figure, from the iteration that last measured it"
    assert "0.7400" not in row, "not the latest iteration's figure for v2"
    assert row.index("0.6000") < row.index("20240103T000000Z") < row.index("v3") < \
        row.index("0.8300")


def test_describe_gives_the_active_model_and_every_version_their_own_f1(repo: Path,
                                                                        cli) -> None:
    recorded(repo)
    described = cli("describe", "packages").stdout
    active = next(line for line in described.splitlines() if "active model" in line)
    assert "v1 (F1 0.6000 in 20240102T000000Z) (pinned)" in active
    versions = next(line for line in described.splitlines() if line.strip().startswith("versions"))
    assert "v2 (F1 0.7400 in 20240103T000000Z)" in versions
    assert "v3 (F1 0.8300 in 20240103T000000Z)" in versions
