"""Records describe exactly what was trained, and the models folder is never re-recorded damaged.

Through the real CLI, real DVC and real scikit-learn fits. One base repository is built once: a
flywheel ``records`` with two model versions (``v1``, ``v2``) from two real iterations and a
third dataset ``v3`` waiting on disk, not yet declared. Each case copies it, damages one thing
(or changes a file while an iteration runs, paused by a failpoint), declares ``v3`` so that an
iteration is due, and checks what was recorded.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from conftest import FLYWHEEL, bundled_rows, run_cli, write_csv

from reconciler.adapters.dataset_files import file_md5
from reconciler.core.state import (
    FlywheelStatus,
    IterationRecord,
    IterationStatus,
    ModelVersionRecord,
    Observed,
)

LABELS = ["games", "mail", "science", "sound"]
NAME = "records"
LAKE = Path("lake") / NAME
SPEC = f"specs/{NAME}.yaml"
SPEC_TEXT = """\
name: records
task:
  mode: MULTI_CLASS
  labels: [games, mail, science, sound]
datasets:
  - {name: v1, type: TRAIN, path: data/v1.csv}
  - {name: test, type: TEST, path: data/test.csv}
promotion:
  minF1: 0.0
  minImprovement: -1.0
"""
V2 = "  - {name: v2, type: TRAIN, path: data/v2.csv}\n"
V3 = "  - {name: v3, type: TRAIN, path: data/v3.csv}\n"
MORE = bundled_rows("debian-sections", "train-v3.csv", LABELS, 5, skip=40)


def declare(repo: Path, entry: str) -> None:
    text = (repo / SPEC).read_text()
    (repo / SPEC).write_text(text.replace("  - {name: test", entry + "  - {name: test"))


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("records") / "repo"
    run_cli(repo.parent, "init", str(repo))
    for index, name in enumerate(["v1", "v2", "v3"]):
        write_csv(repo / f"data/{name}.csv",
                  bundled_rows("debian-sections", "train-v3.csv", LABELS, 10, skip=10 * index))
    write_csv(repo / "data/test.csv", bundled_rows("debian-sections", "test.csv", LABELS, 5))
    (repo / SPEC).write_text(SPEC_TEXT)
    run_cli(repo, "reconcile")
    declare(repo, V2)
    run_cli(repo, "reconcile")
    assert sorted(p.name for p in (repo / LAKE / "versions").iterdir()) == ["v1.json", "v2.json"]
    return repo


@pytest.fixture
def repo(base: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "repo"
    shutil.copytree(base, copy, symlinks=True)
    return copy


def iterations(repo: Path) -> list[IterationRecord]:
    return [IterationRecord.model_validate_json(p.read_text())
            for p in sorted((repo / LAKE / "iterations").glob("*.json"))]


def reconcile_json(repo: Path, check: int | None = None) -> tuple[int, list[str]]:
    run = run_cli(repo, "reconcile", "-o", "json", "--log-format", "plain", check=check)
    assert "Traceback" not in run.stderr, run.stderr
    report = run.json()
    errors = report["Errors"] + [f["Error"] for f in report["Flywheels"] if f["Error"]]
    return run.code, errors


def lake_bytes(repo: Path) -> dict[str, bytes]:
    """Every file under the flywheel's lake folder (and models.dvc), by content."""
    return {p.relative_to(repo).as_posix(): p.read_bytes()
            for p in sorted((repo / LAKE).rglob("*")) if p.is_file()}


# --- records describe what was trained ---------------------------------------------------------


def start_paused_at(repo: Path, point: str) -> tuple[subprocess.Popen[str], int]:
    """``flywheel reconcile`` with a failpoint that stops (SIGSTOP) the process reaching it;
    the reconcile and the pid of the stopped process, once it has stopped."""
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "FLYWHEEL_FAILPOINT": point,
           "FLYWHEEL_FAILPOINT_ACTION": "stop"}
    victim = subprocess.Popen([FLYWHEEL, "reconcile", "-o", "json", "--log-format", "plain"],
                              cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while True:
        stopped = [pid for pid, state, session in processes() if session == victim.pid
                   and state == "T"]
        if stopped:
            return victim, stopped[0]
        assert victim.poll() is None, victim.communicate()
        assert time.monotonic() < deadline, f"nothing stopped at {point}"
        time.sleep(0.05)


def processes() -> list[tuple[int, str, int]]:
    """(pid, state, session id) of every process."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        found.append((int(stat.parent.name), fields[0], int(fields[3])))
    return found


@pytest.mark.parametrize(("point", "seen"), [
    ("stage:prepare:started", "when read by the prepare stage"),
    ("stage:prepare:done", "when DVC recorded it in pipelines/records/dvc.lock"),
], ids=["appended-before-prepare-reads", "appended-after-prepare-read"])
def test_a_dataset_appended_to_while_the_iteration_runs_fails_it_retryably(
        repo: Path, point: str, seen: str) -> None:
    declare(repo, V3)
    planned = file_md5(repo / "data/v3.csv")
    models_dvc = (repo / LAKE / "models.dvc").read_bytes()
    victim, paused = start_paused_at(repo, point)
    with (repo / "data/v3.csv").open("a", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(MORE)
    appended = file_md5(repo / "data/v3.csv")
    os.kill(paused, signal.SIGCONT)
    stdout, stderr = victim.communicate(timeout=300)
    assert victim.returncode == 1 and "Traceback" not in stderr, stderr
    (error,) = [f["Error"] for f in json.loads(stdout)["Flywheels"] if f["Error"]]
    assert f"data/v3.csv changed while the iteration ran (md5 {planned} when planned" in error
    assert f"{appended} {seen}); retrying" in error and "\n" not in error
    last = iterations(repo)[-1]
    assert last.status is IterationStatus.FAILED and last.retryable, last
    assert "data/v3.csv changed while the iteration ran" in last.message
    assert sorted(p.name for p in (repo / LAKE / "versions").iterdir()) == ["v1.json", "v2.json"]
    assert (repo / LAKE / "models.dvc").read_bytes() == models_dvc

    # The next reconcile plans with the file as it is now, and every record agrees with it.
    code, errors = reconcile_json(repo)
    assert code == 0, errors
    done = iterations(repo)[-1]
    assert done.status is IterationStatus.COMPLETED and done.trained_model_version == "v3"
    rows = sum(len(list(csv.reader((repo / f"data/{name}.csv").open(encoding="utf-8"))))
               for name in ("v1", "v2", "v3"))
    assert done.number_of_train_documents == rows == 3 * 40 + len(MORE)
    version = ModelVersionRecord.model_validate_json((repo / LAKE / "versions/v3.json")
                                                     .read_text())
    lock = yaml.safe_load((repo / "pipelines/records/dvc.lock").read_text())
    locked = {d["path"]: d["md5"] for d in lock["stages"]["prepare"]["deps"]}
    for ref in (*done.datasets, *version.datasets):
        assert ref.md5 == file_md5(repo / ref.path) == locked[ref.path], ref
    prepared = json.loads((repo / "pipelines/records/out/prepare.json").read_text())
    assert prepared["numberOfTrainDocuments"] == rows
    assert {d["path"]: d["md5"] for d in prepared["datasets"]}["data/v3.csv"] == appended


# --- the models folder is never re-recorded damaged ---------------------------------------------


def swap_v2_for_v1(repo: Path) -> None:
    model = repo / LAKE / "models/v2.skops"
    data = (repo / LAKE / "models/v1.skops").read_bytes()
    model.unlink()  # it may be a link into DVC's cache: never write through it
    model.write_bytes(data)


def test_a_swapped_model_file_is_never_re_recorded(repo: Path) -> None:
    swap_v2_for_v1(repo)
    declare(repo, V3)
    before = lake_bytes(repo)
    recorded = json.loads((repo / LAKE / "versions/v2.json").read_text())["sha256"]
    code, errors = reconcile_json(repo)
    assert code == 1
    (error,) = errors
    assert error.startswith("lake/records/models/v2.skops: model file does not match its "
                            f"version record (recorded sha256 {recorded}, found "), error
    assert lake_bytes(repo) == before  # models.dvc byte-identical, no record written


def test_a_missing_model_file_is_never_re_recorded_and_dvc_checkout_restores_it(
        repo: Path) -> None:
    (repo / LAKE / "models/v2.skops").unlink()  # as in a clone without `dvc pull`
    declare(repo, V3)
    before = lake_bytes(repo)
    recorded = json.loads((repo / LAKE / "versions/v2.json").read_text())["sha256"]
    code, errors = reconcile_json(repo)
    assert code == 1
    (error,) = errors
    assert error.startswith(f"lake/records/models/v2.skops: model file of v2 is missing "
                            f"(recorded sha256 {recorded}): run `dvc pull"), error
    assert lake_bytes(repo) == before
    # models.dvc was left as it was, so DVC can still restore the file; then the iteration runs.
    subprocess.run([str(Path(FLYWHEEL).with_name("dvc")), "checkout", "-q",
                    str(LAKE / "models.dvc")], cwd=repo, check=True, capture_output=True)
    assert hashlib.sha256((repo / LAKE / "models/v2.skops").read_bytes()).hexdigest() == recorded
    code, errors = reconcile_json(repo)
    assert code == 0, errors
    assert iterations(repo)[-1].trained_model_version == "v3"


def test_a_model_file_swapped_during_the_iteration_is_never_re_recorded(repo: Path) -> None:
    """The check runs again right before ``dvc add``: a file changed mid-iteration."""
    declare(repo, V3)
    models_dvc = (repo / LAKE / "models.dvc").read_bytes()
    victim, paused = start_paused_at(repo, "iteration:evaluate-reproduced")
    swap_v2_for_v1(repo)
    os.kill(paused, signal.SIGCONT)
    stdout, stderr = victim.communicate(timeout=300)
    assert victim.returncode == 1 and "Traceback" not in stderr, stderr
    (error,) = [f["Error"] for f in json.loads(stdout)["Flywheels"] if f["Error"]]
    assert error.startswith("lake/records/models/v2.skops: model file does not match its "
                            "version record"), error
    assert (repo / LAKE / "models.dvc").read_bytes() == models_dvc
    assert not (repo / LAKE / "versions/v3.json").exists()
    last = iterations(repo)[-1]
    assert last.status is IterationStatus.FAILED and last.claimed_model_version == "v3"


# --- never reuse a version number, never overwrite a model file ---------------------------------


def test_a_deleted_version_record_is_never_reused_nor_its_model_overwritten(repo: Path) -> None:
    (repo / LAKE / "versions/v2.json").unlink()
    declare(repo, V3)
    model = (repo / LAKE / "models/v2.skops").read_bytes()
    before = lake_bytes(repo)
    code, errors = reconcile_json(repo)
    assert code == 1
    (error,) = errors
    assert error.startswith("lake/records/models/v2.skops: no version record describes this "
                            "model file (lake/records/versions/v2.json is missing)"), error
    assert (repo / LAKE / "models/v2.skops").read_bytes() == model
    assert lake_bytes(repo) == before
    assert [r.trained_model_version for r in iterations(repo)] == ["v1", "v2"]


def test_a_versions_path_that_is_a_file_is_one_line(repo: Path) -> None:
    shutil.rmtree(repo / LAKE / "versions")
    (repo / LAKE / "versions").write_text("")
    declare(repo, V3)
    before = lake_bytes(repo)
    code, errors = reconcile_json(repo)
    assert code == 1
    assert errors == ["lake/records/versions: is not a folder: the lake keeps one record per "
                      "file in it; restore it (git checkout) or remove it"]
    assert lake_bytes(repo) == before


def test_a_model_file_is_never_overwritten(repo: Path) -> None:
    from reconciler.adapters.lake import Lake
    from reconciler.errors import StateError

    model = repo / LAKE / "models/v2.skops"
    before = model.read_bytes()
    with pytest.raises(StateError, match="model file already exists: a model file is never "
                                         "overwritten"):
        Lake(repo).archive_model(NAME, "v2", repo / LAKE / "models/v1.skops")
    assert model.read_bytes() == before
    assert not [p for p in model.parent.iterdir() if p.name.startswith(".")]


def _record(iteration: str, status: str, **fields: object) -> IterationRecord:
    return IterationRecord(flywheel_name=NAME, flywheel_iteration_id=iteration,
                           status=IterationStatus(status), creation_time=0.0, input_digest="d",
                           **fields)


@pytest.mark.parametrize(("observed", "files", "tracked", "expected"), [
    (Observed(), (), (), "v1"),
    # versions/v2.json deleted: a completed iteration still names v2
    (Observed(iterations=(_record("20260101T000000Z", "COMPLETED",
                                  trained_model_version="v2"),)), (), (), "v3"),
    # ... or the status's promotions do, or the model file, or models.dvc
    (Observed(status=FlywheelStatus(flywheel_name=NAME, creation_time=0.0, active_model="v4")),
     (), (), "v5"),
    (Observed(), ("v7",), (), "v8"),
    (Observed(), (), ("v9",), "v10"),
    # an unfinished iteration's claim is known
    (Observed(iterations=(_record("20260101T000000Z", "EVALUATING",
                                  claimed_model_version="v3"),)), (), (), "v4"),
    # a failed iteration's claim, never recorded, is released: models.dvc naming it is its
    # leftover; a model file still there by that name is not (it is never overwritten)
    (Observed(iterations=(_record("20260101T000000Z", "FAILED",
                                  claimed_model_version="v3"),)), (), ("v3",), "v1"),
    (Observed(iterations=(_record("20260101T000000Z", "FAILED",
                                  claimed_model_version="v3"),)), ("v3",), ("v3",), "v4"),
], ids=["nothing", "completed-iteration", "status", "model-file", "models-dvc",
        "unfinished-claim", "failed-claim-released", "failed-claim-file-still-there"])
def test_next_version_is_past_every_number_anything_knows(observed: Observed, files: tuple,
                                                          tracked: tuple, expected: str) -> None:
    assert observed.next_version(files, tracked) == expected
