"""Resource bounds: configurable input limits, and a disk that refuses writes mid-iteration.

The limits are read from the environment (``reconciler/limits.py``); a refusal names the limit
and the variable that raises it. A full disk is played by ``RLIMIT_FSIZE`` set in the child
before it starts: any write past that many bytes fails with ``EFBIG`` (Python ignores
``SIGXFSZ``), which is what a write to a full disk looks like to the writer, without root.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import FLYWHEEL, bundled_rows, run_cli, write_csv
from daemon_harness import spec_text

from reconciler import limits
from reconciler.adapters.comprehend_csv import read_dataset
from reconciler.adapters.dataset_files import HashCache, fingerprint
from reconciler.adapters.lake import Lake
from reconciler.adapters.loader import load_spec
from reconciler.core.spec import TaskConfig
from reconciler.core.state import FlywheelStatus, IterationRecord, ModelVersionRecord
from reconciler.errors import DataError, SpecError

LABELS = ["games", "mail", "science", "sound"]
SOURCE = "debian-sections"
TASK = TaskConfig(mode="MULTI_CLASS", labels=["a", "b"])


# -- configurable limits ----------------------------------------------------------------------

def spec_repo(root: Path, size: int = 0) -> Path:
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "data/train.csv").write_text("a,one document\nb,another\n" * 50, "utf-8")
    path = root / "specs/demo.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = spec_text("demo", ["a", "b"], [("train", "TRAIN", "data/train.csv")])
    path.write_text(text + "#" * size + "\n", "utf-8")
    return path


def test_the_defaults_are_today_s_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    for limit in limits.ALL:
        monkeypatch.delenv(limit.variable, raising=False)
    assert limits.SPEC_BYTES.value() == 256 * 1024
    assert limits.DATASET_BYTES.value() == 2 * 1024**3
    assert limits.ROW_CHARS.value() == 1_000_000
    limits.check()


def test_spec_size_limit_is_named_and_can_be_raised(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    path = spec_repo(tmp_path, size=2000)
    monkeypatch.setenv("FLYWHEEL_MAX_SPEC_BYTES", "1000")
    with pytest.raises(SpecError) as caught:
        load_spec(path, tmp_path)
    size = path.stat().st_size
    assert str(caught.value) == (f"specs/demo.yaml: file is {size} bytes; the limit is 1000 "
                                 "(set FLYWHEEL_MAX_SPEC_BYTES to raise it)")
    monkeypatch.setenv("FLYWHEEL_MAX_SPEC_BYTES", str(size))
    assert load_spec(path, tmp_path).spec.name == "demo"


def test_dataset_size_limit_is_named_and_can_be_raised(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    spec_file = load_spec(spec_repo(tmp_path), tmp_path)
    size = (tmp_path / "data/train.csv").stat().st_size
    monkeypatch.setenv("FLYWHEEL_MAX_DATASET_BYTES", str(size - 1))
    with pytest.raises(SpecError) as caught:
        fingerprint(spec_file.spec, spec_file.path, spec_file.line_of, tmp_path,
                    HashCache(tmp_path))
    assert caught.value.message == (f"data/train.csv is {size} bytes; the limit is {size - 1} "
                                    "(set FLYWHEEL_MAX_DATASET_BYTES to raise it)")
    assert caught.value.field == "datasets[0].path"
    monkeypatch.setenv("FLYWHEEL_MAX_DATASET_BYTES", str(size))
    (found,) = fingerprint(spec_file.spec, spec_file.path, spec_file.line_of, tmp_path,
                           HashCache(tmp_path))
    assert found.size == size


def test_row_length_limit_is_named_and_can_be_raised(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "long.csv"
    long_text = "w" * 1_200_000  # past the default, and past the csv module's own cell limit
    path.write_text(f"a,short\nb,{long_text}\n", "utf-8")
    monkeypatch.delenv("FLYWHEEL_MAX_ROW_CHARS", raising=False)
    with pytest.raises(DataError) as caught:
        read_dataset(path, "data/long.csv", TASK)
    assert str(caught.value) == ("data/long.csv:2: document has 1200000 characters; the limit "
                                 "is 1000000 (set FLYWHEEL_MAX_ROW_CHARS to raise it)")
    monkeypatch.setenv("FLYWHEEL_MAX_ROW_CHARS", "2_000_000")
    assert [len(d.text) for d in read_dataset(path, "data/long.csv", TASK)] == [5, 1_200_000]
    monkeypatch.setenv("FLYWHEEL_MAX_ROW_CHARS", "4")
    with pytest.raises(DataError, match="document has 5 characters; the limit is 4"):
        read_dataset(path, "data/long.csv", TASK)


@pytest.mark.parametrize("value", ["abc", "-5", "0", "1.5", "10k", " "])
def test_a_bad_value_is_one_clear_line(tmp_path: Path, value: str) -> None:
    spec_repo(tmp_path)
    env = {**os.environ, "FLYWHEEL_MAX_DATASET_BYTES": value, "COLUMNS": "200"}
    if not value.strip():  # blank means unset: the default applies
        done = subprocess.run([FLYWHEEL, "validate"], cwd=tmp_path, capture_output=True,
                              text=True, env=env, timeout=60)
        assert "FLYWHEEL_MAX_DATASET_BYTES" not in done.stderr + done.stdout
        return
    for command in (["validate"], ["reconcile"], ["watch"]):
        done = subprocess.run([FLYWHEEL, *command], cwd=tmp_path, capture_output=True,
                              text=True, env=env, timeout=60)
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        assert done.stderr.splitlines() == [
            f"error: FLYWHEEL_MAX_DATASET_BYTES={value!r} is not a positive whole number of "
            "bytes (the dataset file size limit; default 2147483648)"], (command, done.stderr)


# -- a full disk mid-iteration ----------------------------------------------------------------

@pytest.fixture(scope="module")
def turned_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository whose flywheel has one finished iteration (v1) and new data to learn from."""
    base = tmp_path_factory.mktemp("disk")
    repo = base / "repo"
    run_cli(base, "init", str(repo))
    write_csv(repo / "data/base.csv", bundled_rows(SOURCE, "train-v3.csv", LABELS, 10))
    write_csv(repo / "data/test.csv", bundled_rows(SOURCE, "test.csv", LABELS, 6))
    write_csv(repo / "data/more.csv", bundled_rows(SOURCE, "train-v3.csv", LABELS, 5, skip=10))
    spec = repo / "specs/alpha.yaml"
    spec.write_text(spec_text("alpha", LABELS, [("base", "TRAIN", "data/base.csv"),
                                                ("test", "TEST", "data/test.csv")]), "utf-8")
    run_cli(repo, "reconcile")
    spec.write_text(spec_text("alpha", LABELS, [("base", "TRAIN", "data/base.csv"),
                                                ("more", "TRAIN", "data/more.csv"),
                                                ("test", "TEST", "data/test.csv")]), "utf-8")
    return repo


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def check_records(lake: Path) -> list[IterationRecord]:
    """Every record is whole and valid; no temporary file is left in the lake."""
    assert [p for p in lake.rglob("*.tmp")] == []
    for path in lake.rglob("*.json"):
        json.loads(path.read_text("utf-8"))
    FlywheelStatus.model_validate_json((lake / "status.json").read_text("utf-8"))
    for path in (lake / "versions").glob("*.json"):
        ModelVersionRecord.model_validate_json(path.read_text("utf-8"))
    return [IterationRecord.model_validate_json(p.read_text("utf-8"))
            for p in sorted((lake / "iterations").glob("*.json"))]


def reconcile_with_file_limit(repo: Path, limit: int) -> subprocess.CompletedProcess[str]:
    def cap() -> None:  # runs in the child before exec: every write past `limit` bytes fails
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run([FLYWHEEL, "reconcile"], cwd=repo, capture_output=True, text=True,
                          env=env, timeout=300, preexec_fn=cap)


@pytest.mark.parametrize("limit", [
    pytest.param(1_000, id="the-first-lake-record-write-fails"),
    pytest.param(50_000, id="dvc-fails-mid-iteration"),
])
def test_a_write_refused_mid_iteration_leaves_the_previous_state(turned_once: Path,
                                                                 tmp_path: Path,
                                                                 limit: int) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(turned_once, repo, symlinks=True)
    lake = repo / "lake/alpha"
    before = snapshot(lake)

    done = reconcile_with_file_limit(repo, limit)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if "event=error" in line]
    assert len(errors) == 1, done.stderr
    assert "a file operation failed" in errors[0] and "is the disk full?" in errors[0], errors

    after = snapshot(lake)
    for name, data in before.items():  # what was there is untouched ...
        if name != "status.json" and not name.startswith("iterations/"):
            assert after.get(name) == data, f"{name} changed"
    iterations = check_records(lake)  # ... and whatever is new is whole
    assert iterations[0].status.value == "COMPLETED"
    assert all(it.status.terminal for it in iterations), "an iteration left RUNNING"
    assert set(after) - set(before) <= {n for n in after if n.startswith("iterations/")}
    assert Lake(repo).observe("alpha").status.active_model == "v1"

    run_cli(repo, "reconcile")  # the limit lifted: the iteration completes
    iterations = check_records(lake)
    if iterations[-1].status.value == "FAILED":
        # A file operation refused inside DVC is a transient failure: retried after its back-off
        # (here: at once, on request).
        assert "a file operation failed" in iterations[-1].message, iterations[-1]
        assert iterations[-1].retryable is True
        run_cli(repo, "iterate", "alpha")
        iterations = check_records(lake)
    assert iterations[-1].status.value == "COMPLETED"
    assert json.loads((lake / "status.json").read_text("utf-8"))["activeModel"] == "v2"
    assert (lake / "versions/v2.json").is_file()


# -- a file-size limit inside a DVC stage -------------------------------------------------------

def stage_processes(stage: str, repo: Path) -> list[int]:
    """Live processes running ``python -m reconciler.stages STAGE`` in ``repo`` (DVC runs a
    stage in the repository's root): never another test's or another run's stage."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            words = cmdline.read_bytes().split(b"\0")
            cwd = (cmdline.parent / "cwd").resolve(strict=True)
        except OSError:
            continue
        if b"reconciler.stages" in words and stage.encode() in words and cwd == repo.resolve():
            found.append(int(cmdline.parent.name))
    return found


def test_a_file_size_limit_inside_the_train_stage_is_retried(turned_once: Path,
                                                            tmp_path: Path) -> None:
    """The train stage alone may write at most 100 kB (the model is over 200 kB): its EFBIG
    fails the iteration retryably, with a message that says so; the retry completes."""
    repo = tmp_path / "repo"
    shutil.copytree(turned_once, repo, symlinks=True)
    lake = repo / "lake/alpha"
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    job = subprocess.Popen([FLYWHEEL, "reconcile"], cwd=repo, env=env, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    capped: set[int] = set()
    while job.poll() is None:  # cap the stage as soon as it starts (imports take a second)
        for pid in set(stage_processes("train", repo)) - capped:
            try:
                resource.prlimit(pid, resource.RLIMIT_FSIZE, (100_000, 100_000))
                capped.add(pid)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.02)  # the stage imports for about a second: no need to spin
    _, stderr = job.communicate(timeout=300)
    assert capped, "the train stage was never seen"
    assert job.returncode == 1, stderr
    assert "Traceback" not in stderr, stderr
    *_, failed = check_records(lake)
    assert failed.status.value == "FAILED" and failed.retryable is True, failed
    assert "the train stage: a file operation failed: [Errno 27] File too large" in \
        failed.message, failed.message
    assert not (lake / "versions/v2.json").exists()

    from reconciler.runtime.reconcile import reconcile

    retried = reconcile(repo, clock=lambda: time.time() + 3600)  # the limit gone, after back-off
    assert retried.ok, [str(e) for e in retried.all_errors]
    *_, last = check_records(lake)
    assert last.status.value == "COMPLETED" and last.attempt == 2, last
    assert (lake / "versions/v2.json").is_file()
