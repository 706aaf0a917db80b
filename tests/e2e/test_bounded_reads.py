"""Bounded reads: the one JSON reader, the hash cache, the daemon's status file, strict output.

The hostile lake records and model files themselves are cases of
``tests/e2e/test_hostile_inputs.py`` (through the real CLI, with another flywheel reconciled in
the same run); here are the reader's own rules and the local files that are not records: a
corrupt hash cache is rebuilt without a word, a corrupt daemon status file is one line from
``flywheel status``.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import zipfile
from pathlib import Path

import pytest
from conftest import FLYWHEEL, Run, bundled_rows, write_csv

from reconciler.adapters import jsonio
from reconciler.cli.render import print_json
from reconciler.core.state import IterationRecord
from reconciler.errors import FlywheelError, StateError
from reconciler.runtime.logs import LineWriter

DEEP = "[" * 100_000 + "]" * 100_000


# -- the reader ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "message"), [
    (DEEP, "JSON nested deeper than 32 levels (at line 1)"),
    ('{"a":\n' + "{" * 40, "JSON nested deeper than 32 levels (at line 2)"),
    ('{"x": NaN}', "NaN is not a finite number"),
    ('[1, -Infinity]', "-Infinity is not a finite number"),
    ('{"f1": 1e999}', "1e999 is not a finite number"),
    ('{"n": ' + "9" * 5000 + "}", "not valid JSON"),
    ('{"a": 1', "not valid JSON"),
    (b'{"a": "caf\xe9"}', "not valid UTF-8"),
])
def test_the_reader_refuses_with_one_line(text: str | bytes, message: str) -> None:
    with pytest.raises(jsonio.JsonError) as caught:
        jsonio.loads(text)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_brackets_inside_strings_do_not_count() -> None:
    text = json.dumps({"text": "[" * 10_000 + '\\"{' * 1000, "labels": [["a"]]})
    assert jsonio.loads(text)["labels"] == [["a"]]
    assert jsonio.loads("[" * 32 + "]" * 32) is not None  # the bound itself is allowed


def test_size_limit_is_named_and_can_be_raised(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "record.json"
    path.write_text(json.dumps({"x": "y" * 2000}))
    monkeypatch.setenv("FLYWHEEL_MAX_RECORD_BYTES", "1000")
    with pytest.raises(jsonio.JsonError, match=r"limit is 1000 \(set FLYWHEEL_MAX_RECORD_BYTES"):
        jsonio.read(path)
    monkeypatch.setenv("FLYWHEEL_MAX_RECORD_BYTES", "3000")
    assert jsonio.read(path)["x"] == "y" * 2000


def test_only_regular_files_are_read_and_never_wait(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    with pytest.raises(jsonio.JsonError, match="not a regular file"):
        jsonio.read(fifo)  # a plain open() would wait for a writer forever
    link = tmp_path / "link.json"
    link.symlink_to("/dev/zero")
    with pytest.raises(jsonio.JsonError, match="not a regular file"):
        jsonio.read(link)
    with pytest.raises(OSError):
        jsonio.read(link, follow_symlinks=False)


def test_records_hold_finite_numbers_only() -> None:
    record = {"flywheelName": "a", "flywheelIterationId": "20260101T000000Z",
              "status": "COMPLETED", "creationTime": 1.0, "inputDigest": "d"}
    IterationRecord.model_validate(record)
    for bad in ({"trainedModelMetrics": {"AverageF1Score": float("nan")}},
                {"decision": {"promote": True, "reason": "r", "trainedF1": float("inf")}},
                {"endTime": float("-inf")}):
        with pytest.raises(ValueError, match="finite number"):
            IterationRecord.model_validate({**record, **bad})


def test_json_output_is_strict() -> None:
    out = io.StringIO()
    print_json({"F1": 0.5}, out)
    assert json.loads(out.getvalue()) == {"F1": 0.5}
    with pytest.raises(FlywheelError, match="cannot print JSON"):
        print_json({"F1": float("nan")}, io.StringIO())

    class Console:
        file = io.StringIO()

    LineWriter(Console(), "json").write({"ts": "t", "event": "x", "f1": float("nan")})  # type: ignore[arg-type]
    assert json.loads(Console.file.getvalue())["f1"] is None


# -- local files: the hash cache, the daemon's status file --------------------------------------

def flywheel(repo: Path, *args: str) -> Run:
    done = subprocess.run([FLYWHEEL, *args], cwd=repo, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"})
    return Run(done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def small_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository with one valid flywheel, never reconciled (plan reads its hashes only)."""
    root = tmp_path_factory.mktemp("bounded") / "repo"
    subprocess.run([FLYWHEEL, "init", str(root)], check=True, capture_output=True)
    labels = ["games", "mail"]
    write_csv(root / "data/train.csv", bundled_rows("debian-sections", "train-v1.csv", labels, 6))
    write_csv(root / "data/test.csv", bundled_rows("debian-sections", "test.csv", labels, 3))
    (root / "specs/small.yaml").write_text(
        "name: small\ntask:\n  mode: MULTI_CLASS\n  labels: [games, mail]\n"
        "  minDocumentsPerLabel: 3\ndatasets:\n"
        "  - {name: train, type: TRAIN, path: data/train.csv}\n"
        "  - {name: test, type: TEST, path: data/test.csv}\n")
    return root


def plant(path: Path, how: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        path.unlink()
    if how == "deep":
        path.write_text(DEEP)
    elif how == "nan":
        path.write_text('{"data/train.csv": [1, NaN]}')
    elif how == "dev-zero":
        path.symlink_to("/dev/zero")
    elif how == "fifo":
        os.mkfifo(path)
    else:
        path.write_text('{"Running": [1], "State": "IDLE"}')


@pytest.mark.parametrize("how", ["deep", "nan", "dev-zero", "fifo"])
def test_a_corrupt_hash_cache_is_rebuilt_without_a_word(small_repo: Path, how: str) -> None:
    cache = small_repo / ".flywheel/cache/hashes.json"
    plant(cache, how)
    run = flywheel(small_repo, "plan", "--output", "json")
    assert "Traceback" not in run.stderr and run.stderr == "", run.stderr
    assert run.code == 1  # an iteration is pending: the plan itself is fine
    assert [f["State"] for f in run.json()["Flywheels"]] == ["PENDING"]
    assert cache.is_file() and not cache.is_symlink()
    assert sorted(json.loads(cache.read_text())) == [str(small_repo / "data/test.csv"),
                                                     str(small_repo / "data/train.csv")]


@pytest.mark.parametrize(("how", "message"), [
    ("deep", "corrupt daemon status file: JSON nested deeper than 32 levels (at line 1)"),
    ("dev-zero", "corrupt daemon status file: Too many levels of symbolic links"),
    ("fifo", "corrupt daemon status file: not a regular file"),
    ("shape", "corrupt daemon status file: AttributeError"),
])
def test_a_corrupt_daemon_status_file_is_one_line(small_repo: Path, how: str,
                                                 message: str) -> None:
    plant(small_repo / ".flywheel/watch/status.json", how)
    run = flywheel(small_repo, "status")
    assert run.code == 2, (run.stdout, run.stderr)
    assert "Traceback" not in run.stderr
    assert run.stderr.startswith(f"error: .flywheel/watch/status.json: {message}"), run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
    (small_repo / ".flywheel/watch/status.json").unlink()
    assert flywheel(small_repo, "status").code == 3  # no file: simply not running


# -- model files: the bounds are checked before skops reads anything ---------------------------

def test_model_bounds_are_named_and_can_be_raised(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.stages import modelfile
    from reconciler.stages.modelfile import check_archive

    path = tmp_path / "model.skops"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("schema.json", "{}")
        archive.writestr("1.bin", bytes(5000))
    monkeypatch.setenv("FLYWHEEL_MAX_MODEL_BYTES", "4000")
    with pytest.raises(StateError, match=r"would unpack 5002 bytes; the limit is 4000 \(set "
                                         r"FLYWHEEL_MAX_MODEL_BYTES"):
        check_archive(path, "model.skops")
    monkeypatch.delenv("FLYWHEEL_MAX_MODEL_BYTES")
    check_archive(path, "model.skops")
    monkeypatch.setattr(modelfile, "MAX_MEMBERS", 1)
    with pytest.raises(StateError, match="has 2 members; at most 1 are loaded"):
        check_archive(path, "model.skops")


@pytest.mark.parametrize("how", ["fifo", "dev-zero"])
def test_an_iteration_request_that_is_not_a_file_is_no_request(small_repo: Path,
                                                               how: str) -> None:
    request = small_repo / ".flywheel/requests/small"
    plant(request, how)  # a plain read would wait for a writer, or read /dev/zero for ever
    try:
        run = flywheel(small_repo, "plan", "--output", "json")
    finally:
        request.unlink()
    assert "Traceback" not in run.stderr
    assert run.code == 1
    assert [a.get("Request") for a in run.json()["Flywheels"][0]["Actions"]] == [None]
