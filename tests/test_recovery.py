"""A reconciler killed mid-iteration (SIGKILL) leaves a state the next reconcile settles."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import yaml
from conftest import FLYWHEEL, bundled_rows, write_csv

from reconciler.runtime import reconcile

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


def test_killed_iteration_is_marked_failed_then_retried(repo: Path) -> None:
    slow_flywheel(repo)
    iterations = repo / "lake/packages/iterations"

    victim = subprocess.Popen([FLYWHEEL, "reconcile"], cwd=repo, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while not (iterations.is_dir() and any(iterations.glob("*.json"))):
        assert victim.poll() is None, "the reconcile ended before it could be killed"
        assert time.monotonic() < deadline, "no iteration record appeared"
        time.sleep(0.05)
    os.killpg(victim.pid, signal.SIGKILL)  # the reconciler and its DVC stage subprocess
    victim.wait()
    (record_file,) = iterations.glob("*.json")
    assert json.loads(record_file.read_text())["status"] in ("TRAINING", "EVALUATING")

    # The next reconcile marks the orphan FAILED (retryable) and backs off instead of looping.
    reconcile(repo)
    record = json.loads(record_file.read_text())
    assert record["status"] == "FAILED" and record["retryable"] is True
    assert record["message"].startswith("INTERRUPTED")
    assert len(list(iterations.glob("*.json"))) == 1

    # After the back-off the same inputs are tried again, and this time they complete.
    later = reconcile(repo, clock=lambda: time.time() + 3600)
    assert later.ok, [str(e) for e in later.all_errors]
    records = sorted(iterations.glob("*.json"))
    assert len(records) == 2
    retried = json.loads(records[-1].read_text())
    assert retried["status"] == "COMPLETED" and retried["attempt"] == 2
    status = json.loads((repo / "lake/packages/status.json").read_text())
    assert status["activeModel"] == "v1", "exactly one model version, despite the crash"
    assert sorted(p.name for p in (repo / "lake/packages/versions").iterdir()) == ["v1.json"]


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
