"""Peak memory of the commands that read every row, and running out of memory.

``flywheel validate`` and ``flywheel plan`` stream each dataset (no document held: counts per
label and a 16-byte digest per document), so their peak resident set grows by a small fraction
of the data, measured here on a generated 30 MB file against a bare ``import reconciler.cli``
(the peak of each fresh child from ``os.wait4``). A process that does run out of memory (a
limit on its address space, ``RLIMIT_AS``) says so in one line naming the file, never with a
traceback. ``benchmarks/memory.py`` measures the same at 10 to 200 MB.
"""

from __future__ import annotations

import csv
import io
import os
import resource
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml
from conftest import BUNDLED, FLYWHEEL, run_cli

from reconciler.errors import ENVIRONMENT_EXIT

LABELS = ["database", "editors", "games", "graphics", "mail", "math", "net", "science", "sound",
          "video"]
MB = 10**6


def write_rows(path: Path, size: int) -> None:
    """About ``size`` bytes of the bundled rows, copy ``n`` of each ending in ``(variant n)``."""
    rows = []
    for source in sorted((BUNDLED / "debian-sections").glob("train-v*.csv")):
        with source.open(encoding="utf-8", newline="") as handle:
            rows.extend(csv.reader(handle))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    copy = 0
    while buffer.tell() < size:
        copy += 1
        writer.writerows([label, f"{text} (variant {copy})"] for label, text in rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(buffer.getvalue(), "utf-8")


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository whose one flywheel has a ~30 MB TRAIN file and the bundled TEST file."""
    root = tmp_path_factory.mktemp("memory") / "repo"
    run_cli(root.parent, "init", str(root))
    write_rows(root / "data/big/train.csv", 30 * MB)
    (root / "data/big/test.csv").write_bytes((BUNDLED / "debian-sections/test.csv").read_bytes())
    spec = {"name": "big", "task": {"mode": "MULTI_CLASS", "labels": LABELS},
            "datasets": [{"name": "train", "type": "TRAIN", "path": "data/big/train.csv"},
                         {"name": "test", "type": "TEST", "path": "data/big/test.csv"}]}
    (root / "specs/big.yaml").write_text(yaml.safe_dump(spec), "utf-8")
    return root


def peak(args: Sequence[str], cwd: Path, *, address_space: int | None = None,
         env: dict[str, str] | None = None) -> tuple[int, int, str]:
    """Exit status, peak RSS in bytes and output (stdout, stderr) of ``args`` as a fresh child."""
    def limit() -> None:
        if address_space is not None:
            resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))

    with (cwd / ".stdout").open("w+b") as out, (cwd / ".stderr").open("w+b") as err:
        process = subprocess.Popen(list(args), cwd=cwd, stdout=out, stderr=err,
                                   env={**os.environ, **(env or {}), "NO_COLOR": "1"},
                                   preexec_fn=limit)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        output = b""
        for stream in (out, err):
            stream.seek(0)
            output += stream.read()
    return process.returncode, usage.ru_maxrss * 1024, output.decode("utf-8", "replace")


@pytest.mark.parametrize(("command", "code"), [("validate", 0), ("plan", 1)])  # plan 1: pending
def test_reading_every_row_grows_memory_by_less_than_twice_the_file(repo: Path, command: str,
                                                                    code: int) -> None:
    size = (repo / "data/big/train.csv").stat().st_size
    assert size >= 30 * MB
    _, baseline, _ = peak([sys.executable, "-c", "import reconciler.cli"], repo)
    returncode, used, stderr = peak([FLYWHEEL, command], repo)
    assert returncode == code, stderr
    # Before streaming, validate held the bytes, the text, a copy for the csv module and every
    # document at once: about 9x the file.
    assert used - baseline <= 2 * size, f"{command}: peak {used / MB:.0f} MB, " \
        f"baseline {baseline / MB:.0f} MB, file {size / MB:.0f} MB"


def address_space_of_a_tiny_validate(root: Path) -> int:
    """The virtual memory a ``flywheel validate`` of the bundled-size data needs (VmPeak)."""
    probe = ("import resource, sys\n"
             "sys.argv = ['flywheel', 'validate']\n"
             "from reconciler.cli import main\n"
             "code = main()\n"
             "print(next(l.split()[1] for l in open('/proc/self/status') "
             "if l.startswith('VmPeak')))\n")
    done = subprocess.run([sys.executable, "-c", probe], cwd=root, capture_output=True,
                          text=True, check=True)
    return int(done.stdout.split()[-1]) * 1024


def test_running_out_of_memory_is_one_line_naming_the_file(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    run_cli(tmp_path, "init", str(root))
    (root / "data/oom").mkdir(parents=True)
    test = (BUNDLED / "debian-sections/test.csv").read_bytes()
    (root / "data/oom/test.csv").write_bytes(test)
    (root / "data/oom/train.csv").write_bytes(test)
    spec = {"name": "oom", "task": {"mode": "MULTI_CLASS", "labels": LABELS},
            "datasets": [{"name": "train", "type": "TRAIN", "path": "data/oom/train.csv",
                          "allowTestOverlap": True},
                         {"name": "test", "type": "TEST", "path": "data/oom/test.csv"}]}
    (root / "specs/oom.yaml").write_text(yaml.safe_dump(spec), "utf-8")
    limit = address_space_of_a_tiny_validate(root) + 100 * MB
    code, _, stderr = peak([FLYWHEEL, "validate"], root, address_space=limit)
    assert code == 0, stderr  # the limit leaves room for honest work
    # One honest but huge document (the row limit raised for it): 150 MB cannot be read in 100.
    with (root / "data/oom/train.csv").open("ab") as handle:
        handle.write(b"games," + b"x" * (150 * MB) + b"\n")
    env = {"FLYWHEEL_MAX_ROW_CHARS": str(200 * MB)}
    for command, expected in (("validate", 1), ("plan", 2), ("reconcile", 1)):
        code, _, output = peak([FLYWHEEL, command, "-o", "json"], root, address_space=limit,
                               env=env)
        assert code == expected, output
        assert "Traceback" not in output and "MemoryError" not in output, output
        assert "out of memory reading data/oom/train.csv (150 MB): " in output, output


def test_a_stage_out_of_memory_is_one_line_and_retryable(tmp_path: Path) -> None:
    """The prepare stage holds the documents the pre-flight check only counted: where it runs
    out of memory, it says so in one line and exits 75, which the reconciler retries."""
    root = tmp_path / "repo"
    run_cli(tmp_path, "init", str(root))
    (root / "data/oom").mkdir(parents=True)
    test = (BUNDLED / "debian-sections/test.csv").read_bytes()
    (root / "data/oom/test.csv").write_bytes(test)
    (root / "data/oom/train.csv").write_bytes(test)
    spec = {"name": "oom", "task": {"mode": "MULTI_CLASS", "labels": LABELS},
            "datasets": [{"name": "train", "type": "TRAIN", "path": "data/oom/train.csv",
                          "allowTestOverlap": True},
                         {"name": "test", "type": "TEST", "path": "data/oom/test.csv"}],
            "promotion": {"minF1": 0.0}}
    (root / "specs/oom.yaml").write_text(yaml.safe_dump(spec), "utf-8")
    run_cli(root, "reconcile")  # writes pipelines/oom/params.yaml
    limit = address_space_of_a_tiny_validate(root) + 100 * MB
    stage = [sys.executable, "-m", "reconciler.stages", "prepare", "pipelines/oom/params.yaml"]
    code, _, output = peak(stage, root, address_space=limit)
    assert code == 0, output  # room enough for honest work
    with (root / "data/oom/train.csv").open("ab") as handle:
        handle.write(b"games," + b"x" * (150 * MB) + b"\n")
    code, _, output = peak(stage, root, address_space=limit,
                           env={"FLYWHEEL_MAX_ROW_CHARS": str(200 * MB)})
    assert code == ENVIRONMENT_EXIT, output
    assert output.strip().splitlines() == [
        "error: the prepare stage: out of memory reading data/oom/train.csv (150 MB): the process "
        "could not allocate more memory (raise its memory limit or free memory, then retry)"]
