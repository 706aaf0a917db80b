"""A reconciler killed mid-iteration (SIGKILL) leaves a state the next reconcile settles."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import yaml
from conftest import FLYWHEEL, bundled_rows, write_csv

from reconciler.adapters.files import file_lock
from reconciler.core.layout import DVC_LOCK
from reconciler.core.state import IterationRecord
from reconciler.runtime.reconcile import reconcile

LABELS = ["games", "mail", "science", "sound"]


def slow_flywheel(repo: Path) -> None:
    """One flywheel whose train stage (character n-grams) lasts long enough to be caught in
    the act."""
    write_csv(repo / "data/train.csv", bundled_rows("debian-sections", "train-v3.csv", LABELS, 80))
    write_csv(repo / "data/test.csv", bundled_rows("debian-sections", "test.csv", LABELS, 20))
    spec = {
        "name": "packages",
        "task": {"mode": "MULTI_CLASS", "labels": LABELS},
        "datasets": [{"name": "train", "type": "TRAIN", "path": "data/train.csv"},
                     {"name": "test", "type": "TEST", "path": "data/test.csv"}],
        "recipe": {"features": {"ngramRange": [1, 3], "charNgramRange": [1, 6]}},
        "promotion": {"minF1": 0.0},
    }
    (repo / "specs/packages.yaml").write_text(yaml.safe_dump(spec))


def start_killable(repo: Path) -> subprocess.Popen[bytes]:
    """``flywheel reconcile`` in a session of its own (its id is the reconciler's pid)."""
    return subprocess.Popen([FLYWHEEL, "reconcile"], cwd=repo, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def session_processes(session: int) -> dict[int, list[bytes]]:
    """Live (not zombie) processes of a session: pid -> command line words."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
            words = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(fields[3]) == session and fields[0] not in ("Z", "X"):
            found[int(stat.parent.name)] = words
    return found


def wait_for_train_stage(victim: subprocess.Popen[bytes]) -> int:
    deadline = time.monotonic() + 120
    while True:
        for pid, words in session_processes(victim.pid).items():
            if b"reconciler.stages" in words and b"train" in words:
                return pid
        assert victim.poll() is None, "the reconcile ended before its train stage started"
        assert time.monotonic() < deadline, "the train stage did not start"
        time.sleep(0.02)


def test_killed_iteration_is_resumed_at_once(repo: Path) -> None:
    """The reconciler's own crash is not the iteration's failure: the next reconcile (the
    flywheel's lock free again) resumes it at once, without the retry back-off."""
    slow_flywheel(repo)
    iterations = repo / "lake/packages/iterations"

    victim = start_killable(repo)
    deadline = time.monotonic() + 120
    while not (iterations.is_dir() and any(iterations.glob("*.json"))):
        assert victim.poll() is None, "the reconcile ended before it could be killed"
        assert time.monotonic() < deadline, "no iteration record appeared"
        time.sleep(0.05)
    os.killpg(victim.pid, signal.SIGKILL)  # the reconciler and its DVC stage subprocess
    victim.wait()
    (record_file,) = iterations.glob("*.json")
    assert json.loads(record_file.read_text())["status"] in ("TRAINING", "EVALUATING")

    # The next reconcile, right away: the orphan is marked FAILED (retryable, interrupted) and
    # the same inputs are iterated again in the same run, to completion.
    result = reconcile(repo)
    assert result.ok, [str(e) for e in result.all_errors]
    record = json.loads(record_file.read_text())
    assert record["status"] == "FAILED" and record["retryable"] is True
    assert record["interrupted"] is True and record["message"].startswith("INTERRUPTED")
    records = sorted(iterations.glob("*.json"))
    assert len(records) == 2
    retried = json.loads(records[-1].read_text())
    assert retried["status"] == "COMPLETED" and retried["attempt"] == 2
    status = json.loads((repo / "lake/packages/status.json").read_text())
    assert status["activeModel"] == "v1", "exactly one model version, despite the crash"
    assert sorted(p.name for p in (repo / "lake/packages/versions").iterdir()) == ["v1.json"]


def test_the_stage_dies_with_its_sigkilled_reconciler(repo: Path) -> None:
    """``kill -9`` of the reconciler alone (not its process group), during the train stage, in
    every one of three rounds: within two seconds no process it started lives on (DVC runs the
    stage through a shell, so the stage's parent is not always the reconciler)."""
    slow_flywheel(repo)
    for round_ in range(3):
        victim = start_killable(repo)
        try:
            stage = wait_for_train_stage(victim)
            time.sleep(0.3 * round_)  # importing, or fitting
            os.kill(victim.pid, signal.SIGKILL)
            victim.wait(timeout=30)
            deadline = time.monotonic() + 2
            while session_processes(victim.pid):
                assert time.monotonic() < deadline, (
                    f"round {round_ + 1}: the stage {stage} outlived its reconciler: "
                    f"{session_processes(victim.pid)}")
                time.sleep(0.05)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(victim.pid, signal.SIGKILL)
    # Each kill is the reconciler's own crash: the next reconcile resumes at once, and completes.
    result = reconcile(repo)
    assert result.ok, [str(e) for e in result.all_errors]
    assert result.flywheels[0].iteration is not None
    assert result.flywheels[0].iteration.status.value == "COMPLETED"
    assert result.flywheels[0].iteration.attempt == 4


def test_an_iteration_id_in_the_future_is_stepped_past_at_once(repo: Path) -> None:
    """A record written by a machine whose clock ran 70 years fast: the next iteration's id is
    the second after it, chosen at once (it used to count up to it one second at a time)."""
    write_csv(repo / "data/train.csv", bundled_rows("debian-sections", "train-v3.csv", LABELS, 10))
    write_csv(repo / "data/test.csv", bundled_rows("debian-sections", "test.csv", LABELS, 4))
    spec = {"name": "packages", "task": {"mode": "MULTI_CLASS", "labels": LABELS},
            "datasets": [{"name": "train", "type": "TRAIN", "path": "data/train.csv"},
                         {"name": "test", "type": "TEST", "path": "data/test.csv"}]}
    (repo / "specs/packages.yaml").write_text(yaml.safe_dump(spec))
    future = IterationRecord(flywheel_name="packages", flywheel_iteration_id="20991231T235959Z",
                             status="FAILED", message="from a fast clock", creation_time=4.1e9,
                             end_time=4.1e9, input_digest="0" * 64)
    folder = repo / "lake/packages/iterations"
    folder.mkdir(parents=True)
    (folder / "20991231T235959Z.json").write_text(json.dumps(future.to_json_dict()))

    started = time.monotonic()
    done = subprocess.run([FLYWHEEL, "reconcile"], cwd=repo, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 60
    ids = sorted(p.stem for p in folder.glob("*.json"))
    assert ids == ["20991231T235959Z", "21000101T000000Z"]
    record = json.loads((folder / "21000101T000000Z.json").read_text())
    assert record["status"] == "COMPLETED", record


def test_sigterm_while_waiting_for_the_dvc_lock_stops_at_once(repo: Path) -> None:
    """Another reconciler holds DVC's lock (up to ten minutes of waiting): a SIGTERM ends the
    wait at once, the iteration is recorded STOPPED, and the next reconcile resumes it."""
    slow_flywheel(repo)
    iterations = repo / "lake/packages/iterations"
    with file_lock(repo / DVC_LOCK, timeout=0, what="DVC"):
        job = subprocess.Popen([FLYWHEEL, "reconcile"], cwd=repo, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while not (iterations.is_dir() and any(iterations.glob("*.json"))):
            assert job.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.5)  # waiting for the lock now
        job.send_signal(signal.SIGTERM)
        try:
            code = job.wait(timeout=10)
        finally:
            if job.poll() is None:
                job.kill()
    assert code == 130
    (record_file,) = iterations.glob("*.json")
    record = json.loads(record_file.read_text())
    assert record["status"] == "STOPPED" and "waiting for DVC" in record["message"], record


def test_sigterm_to_a_one_shot_reconcile_stops_after_the_stage(repo: Path) -> None:
    """CI runners cancel with SIGTERM: the stage finishes, the record says STOPPED, exit 130."""
    slow_flywheel(repo)
    log = repo.parent / "reconcile.log"
    with log.open("wb") as sink:
        job = subprocess.Popen([FLYWHEEL, "reconcile", "--log-format", "json"], cwd=repo,
                               stdout=subprocess.DEVNULL, stderr=sink)
    deadline = time.monotonic() + 120
    while '"stage": "train"' not in log.read_text():
        assert job.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    job.send_signal(signal.SIGTERM)
    assert job.wait(timeout=120) == 130
    (record_file,) = (repo / "lake/packages/iterations").glob("*.json")
    record = json.loads(record_file.read_text())
    assert record["status"] == "STOPPED" and record["retryable"] is True
    assert "stopped before the evaluate stage (SIGTERM received)" in record["message"]
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert lines[-1]["event"] == "reconcile.finished" and lines[-1]["stopped"] == ["packages"]

    # The next reconcile resumes at once (no back-off) and DVC skips the finished train stage.
    result = reconcile(repo)
    assert result.ok and result.flywheels[0].iteration is not None
    assert result.flywheels[0].iteration.status.value == "COMPLETED"
    assert result.flywheels[0].iteration.attempt == 1
