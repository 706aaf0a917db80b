"""Train/test leakage through the real CLI (real git, DVC and scikit-learn).

A copy of the TEST file declared as a TRAIN dataset once scored F1 0.9965 and was promoted. Now
``validate`` and ``plan`` name both datasets, the number of shared documents and the spec line;
``reconcile`` refuses that flywheel alone (nothing written for it) and iterates the others; and
``allowTestOverlap: true`` on the TRAIN dataset accepts the overlap on purpose.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import bundled_rows, run_cli, write_csv

LABELS = ["games", "mail", "sound"]
SOURCE = "debian-sections"
LEAKY = """\
name: leaky
task:
  mode: MULTI_CLASS
  labels: [games, mail, sound]
  minDocumentsPerLabel: 5
datasets:
  - name: train
    type: TRAIN
    path: data/leaky/train.csv
  - name: copy
    type: TRAIN
    path: data/leaky/copy.csv
  - name: test
    type: TEST
    path: data/leaky/test.csv
"""
COPY_LINE = 10  # the line of the ``copy`` dataset's entry
MESSAGE = ("specs/leaky.yaml:10: datasets[1]: TRAIN dataset 'copy' (data/leaky/copy.csv) shares "
           "15 documents with TEST dataset 'test' (data/leaky/test.csv) (compared after")


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two flywheels: ``good`` (clean data) and ``leaky`` (its test file copied as TRAIN)."""
    root = tmp_path_factory.mktemp("leakage") / "repo"
    run_cli(root.parent, "init", str(root))
    write_csv(root / "data/good/train.csv", bundled_rows(SOURCE, "train-v1.csv", LABELS, 12))
    write_csv(root / "data/good/test.csv", bundled_rows(SOURCE, "test.csv", LABELS, 5))
    write_csv(root / "data/leaky/train.csv",
              bundled_rows(SOURCE, "train-v1.csv", LABELS, 12, skip=12))
    test = write_csv(root / "data/leaky/test.csv",
                     bundled_rows(SOURCE, "test.csv", LABELS, 5, skip=5))
    shutil.copy(test, root / "data/leaky/copy.csv")
    (root / "specs/good.yaml").write_text(
        LEAKY.replace("leaky", "good").replace(
            "  - name: copy\n    type: TRAIN\n    path: data/good/copy.csv\n", ""))
    (root / "specs/leaky.yaml").write_text(LEAKY)
    return root


@pytest.fixture
def repo(base: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "repo"
    shutil.copytree(base, copy, symlinks=True)
    return copy


def test_validate_names_both_datasets_the_count_and_the_spec_line(repo: Path) -> None:
    answer = run_cli(repo, "validate", "--output", "json", check=1).json()
    assert answer["Valid"] is False
    (error,) = answer["Errors"]
    assert error.startswith(MESSAGE), error
    assert "set allowTestOverlap: true on the TRAIN dataset" in error
    text = run_cli(repo, "validate", check=1)
    assert text.stderr.splitlines() == [f"error: {error}", "1 valid, 1 invalid"]


def test_plan_shows_the_overlap_as_an_error(repo: Path) -> None:
    answer = run_cli(repo, "plan", "--output", "json", check=2).json()
    found = {entry["FlywheelName"]: entry for entry in answer["Flywheels"]}
    assert found["leaky"]["Error"].startswith(MESSAGE)
    assert found["good"].get("Error") is None


def test_reconcile_refuses_the_leaky_flywheel_alone(repo: Path) -> None:
    report = run_cli(repo, "reconcile", "--output", "json", "--log-format", "plain",
                     check=1).json()
    found = {entry["FlywheelName"]: entry for entry in report["Flywheels"]}
    assert found["leaky"]["Error"].startswith(MESSAGE)
    assert found["good"]["Error"] is None
    assert found["good"]["Iteration"] is not None
    assert (repo / "lake/good/models").is_dir()
    assert not (repo / "lake/leaky").exists()
    assert not (repo / "pipelines/leaky").exists()


def test_allow_test_overlap_accepts_it(repo: Path) -> None:
    spec = repo / "specs/leaky.yaml"
    spec.write_text(LEAKY.replace("path: data/leaky/copy.csv\n",
                                  "path: data/leaky/copy.csv\n    allowTestOverlap: true\n"))
    answer = run_cli(repo, "validate", "--output", "json").json()
    assert answer == {"Valid": True, "Errors": []}
    schema = run_cli(repo, "schema").json()
    assert "allowTestOverlap" in schema["$defs"]["Dataset"]["properties"]
    # the DVC stages read the flag back from params.yaml: the iteration goes through
    report = run_cli(repo, "reconcile", "leaky", "--output", "json").json()
    (leaky,) = report["Flywheels"]
    assert leaky["Error"] is None
    assert leaky["Iteration"]["Status"] == "COMPLETED"
    assert "allowTestOverlap: true" in (repo / "pipelines/leaky/params.yaml").read_text()
