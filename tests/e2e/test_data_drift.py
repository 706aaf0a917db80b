"""Data drift on a real repository: a shifted dataset version measures above a same-mix one.

v1 is trained on a balanced mix of four Debian sections; then two TRAIN dataset versions
arrive in one commit: ``same`` (more rows of the same mix) and ``shifted`` (mostly one label,
with words no training document has). The prepare stage measures each against v1's training
data, the iteration records it, and ``flywheel iteration`` shows it.
"""

from __future__ import annotations

import json
from pathlib import Path

from api_harness import reconciled_repo, train_rows
from conftest import commit, run_cli, write_csv

NEW_WORDS = "zorblaxian quuxifier flimbertron"


def _records(root: Path) -> list[dict[str, object]]:
    folder = root / "lake/sections/iterations"
    return [json.loads(path.read_text("utf-8")) for path in sorted(folder.glob("*.json"))]


def test_a_shifted_version_drifts_more_than_a_same_mix_one(tmp_path: Path) -> None:
    root = reconciled_repo(tmp_path / "repo")
    (first,) = _records(root)
    assert first.get("drift") is None  # no active model to compare with
    shown = run_cli(root, "iteration", "sections", str(first["flywheelIterationId"])).stdout
    assert "data drift: no active model to compare with" in shown

    write_csv(root / "data/sections/same.csv", train_rows(10, skip=15))
    pool = train_rows(40, skip=25)  # rows v1 was not trained on (train-1 took 15 per label)
    shifted = [row for row in pool if row[0] == "games"][:20]
    shifted += [next(row for row in pool if row[0] == label)
                for label in ("database", "mail", "sound")]  # 20 games of 23, not 1 in 4
    write_csv(root / "data/sections/shifted.csv",
              [(label, f"{text} {NEW_WORDS} {NEW_WORDS}") for label, text in shifted])
    spec = root / "specs/sections.yaml"
    spec.write_text(spec.read_text("utf-8").replace("recipe:", """\
  - name: same
    type: TRAIN
    path: data/sections/same.csv
  - name: shifted
    type: TRAIN
    path: data/sections/shifted.csv
activeModel: v1
drift: {maxLabelPsi: 0.25}
recipe:"""), "utf-8")
    commit(root, "two new dataset versions; v1 pinned")
    run_cli(root, "reconcile")

    latest = _records(root)[-1]
    assert latest["status"] == "COMPLETED" and latest["evaluatedModelVersion"] == "v1"
    drift = latest["drift"]
    assert isinstance(drift, dict)
    assert drift["reference"]["version"] == "v1"
    assert drift["reference"]["documents"] == 60  # train-1: 15 per label, the TEST data not
    datasets = drift["datasets"]
    assert set(datasets) == {"same", "shifted"}  # new ones only: train-1 and test are not
    same, moved = datasets["same"], datasets["shifted"]
    assert same["documents"] == 40 and moved["documents"] == len(shifted) == 23
    assert same["labelPsi"] < 0.1 < 0.25 < moved["labelPsi"]
    assert moved["oovShare"] > same["oovShare"]
    assert moved["lengthRatio"] > 1.0  # the words appended
    together = drift["newTrainData"]
    assert together["documents"] == 63
    assert same["labelPsi"] < together["labelPsi"] < moved["labelPsi"]
    # drift.json is a declared, committed output of the prepare stage
    dvc_yaml = (root / "pipelines/sections/dvc.yaml").read_text("utf-8")
    assert "pipelines/sections/out/drift.json" in dvc_yaml

    shown = run_cli(root, "iteration", "sections", str(latest["flywheelIterationId"])).stdout
    assert "Data drift against v1's training data (60 documents" in shown
    assert f"shifted: label PSI {moved['labelPsi']:.3f} (large shift)" in shown
    assert "same: label PSI" in shown and "(little shift)" in shown
    assert "all new TRAIN data: label PSI" in shown

    # past the declared threshold: a DataDrift condition names the dataset and the figure
    props = run_cli(root, "describe", "sections", "-o", "json").json()["FlywheelProperties"]
    (condition,) = [c for c in props["Conditions"] if c["Type"] == "DataDrift"]
    assert condition["Status"] is True and condition["Reason"] == "LabelShift"
    assert condition["Message"].startswith("shifted in iteration ")
    assert "same in iteration" not in condition["Message"]  # within the threshold
    answer = run_cli(root, "iteration", "sections", "latest", "-o", "json").json()
    assert answer["FlywheelIterationProperties"]["DataDrift"]["datasets"]["shifted"][
        "labelPsi"] == moved["labelPsi"]
