"""``--executor in-process``: the fit and both scorings in the reconciler's own process, recorded
by ``dvc commit``; the same records and model bytes as the default executor's DVC stages. Real
``flywheel`` console script, git and DVC."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml
from test_dask_executor import (
    add_train_version,
    dvc_status,
    flywheel,
    iterations,
    make_repo,
    versions,
)


def in_process_lines(root: Path, name: str) -> list[str]:
    return [line for log in sorted((root / f".flywheel/logs/{name}").glob("*.log"))
            for line in log.read_text("utf-8").splitlines() if " in-process: " in line]


def test_in_process_iterations_record_what_the_dvc_stages_record(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", ("alpha", "beta"))
    local = tmp_path / "local"
    shutil.copytree(root, local, symlinks=True)
    done = flywheel(root, "reconcile", "--executor", "in-process")
    assert done.code == 0, done.stderr
    assert "Reconciled: 2 iteration(s), 2 promotion(s), 0 error(s)." in done.stderr
    for name in ("alpha", "beta"):
        [record] = iterations(root, name)
        assert record["status"] == "COMPLETED", record
        assert len(in_process_lines(root, name)) == 1
    assert "Data and pipelines are up to date" in dvc_status(root)
    # the default executor, same inputs: the same model bytes and figures
    assert flywheel(local, "reconcile").code == 0
    for name in ("alpha", "beta"):
        assert [v["sha256"] for v in versions(root, name)] == \
            [v["sha256"] for v in versions(local, name)]
        assert [it["trainedModelMetrics"] for it in iterations(root, name)] == \
            [it["trainedModelMetrics"] for it in iterations(local, name)]
        assert in_process_lines(local, name) == []
    # the pipelines' dvc.lock files agree too (DVC recorded the same outputs; the stages may
    # come in another order)
    for name in ("alpha", "beta"):
        lock = f"pipelines/{name}/dvc.lock"
        assert yaml.safe_load((root / lock).read_text("utf-8")) == \
            yaml.safe_load((local / lock).read_text("utf-8"))

    # a second iteration scores the active model (from its serving form) in this process
    add_train_version(root, "alpha")
    done = flywheel(root, "reconcile", env={"FLYWHEEL_EXECUTOR": "in-process"})
    assert done.code == 0, done.stderr
    first, second = iterations(root, "alpha")
    assert second["status"] == "COMPLETED" and second["evaluatedModelVersion"] == "v1"
    assert second["evaluatedModelMetrics"] == first["trainedModelMetrics"]
    assert "Data and pipelines are up to date" in dvc_status(root)


def test_an_exchange_store_is_refused_with_in_process(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    done = flywheel(root, "reconcile", "--executor", "in-process", "--exchange", "s3://b/p")
    assert done.code == 2, done
    assert "--exchange is for a cluster executor" in done.stderr
    assert done.stderr.count("\n") == 1
    assert not (root / "lake/sections/iterations").exists()
