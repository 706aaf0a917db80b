"""``flywheel watch`` as a real daemon process on temp repos: real inotify, real DVC, real fits."""

from __future__ import annotations

import json
import shutil
import signal
import time
from pathlib import Path

import pytest
from conftest import bundled_rows, run_cli, write_csv
from daemon_harness import Daemon, iteration_records, lake_json, save, spec_text

LABELS = ["games", "mail", "science", "sound"]
SOURCE = "debian-sections"


@pytest.fixture
def daemons():
    started: list[Daemon] = []

    def start(repo: Path, *args: str) -> Daemon:
        daemon = Daemon(repo, *args)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.kill()


def add_data(repo: Path) -> None:
    write_csv(repo / "data/v1.csv", bundled_rows(SOURCE, "train-v3.csv", LABELS, 25))
    write_csv(repo / "data/v2.csv", bundled_rows(SOURCE, "train-v3.csv", LABELS, 25, skip=25))
    write_csv(repo / "data/v3.csv", bundled_rows(SOURCE, "train-v3.csv", LABELS, 25, skip=50))
    write_csv(repo / "data/test.csv", bundled_rows(SOURCE, "test.csv", LABELS, 15))


def datasets(*train: str) -> list[tuple[str, str, str]]:
    return [*((t, "TRAIN", f"data/{t}.csv") for t in train), ("test", "TEST", "data/test.csv")]


def test_the_daemon_follows_edits_survives_bad_ones_and_stops_cleanly(repo: Path,
                                                                      daemons) -> None:
    add_data(repo)
    save(repo / "specs/alpha.yaml", spec_text("alpha", LABELS, datasets("v1")))
    save(repo / "specs/beta.yaml", spec_text("beta", LABELS, datasets("v1")))
    daemon = daemons(repo)

    # Both flywheels turn once on start-up; only one iteration runs at a time.
    for name in ("alpha", "beta"):
        daemon.wait_for("promoted", flywheel=name, version="v1")
    daemon.wait_for("pass", trigger="job ended: beta")
    passes = len(daemon.events("pass"))
    time.sleep(0.5)  # five debounce periods: time for any echo of our own writes to show
    assert daemon.events("changed") == [], "the daemon's own writes woke it"
    assert len(daemon.events("pass")) == passes
    started = [e["ts"] for e in daemon.events("iteration.started")]
    finished = [e["ts"] for e in daemon.events("iteration.finished")]
    assert started[1] > finished[0], "two iterations overlapped"

    # A bad edit: one clear error naming the file and line, logged once; others keep working.
    save(repo / "specs/beta.yaml", "name: beta\ntask:\n  mode: [MULTI_CLASS\n")
    error = daemon.wait_for("error", flywheel="specs/beta.yaml")
    assert error["error"].startswith("specs/beta.yaml:")
    save(repo / "specs/alpha.yaml", spec_text("alpha", LABELS, datasets("v1", "v2")))
    daemon.wait_for("iteration.finished", flywheel="alpha", count=2, status="COMPLETED")
    daemon.wait_for("pass", where=lambda e: e["trigger"] == "job ended: alpha", count=2)
    assert len(daemon.events("error", flywheel="specs/beta.yaml")) == 1

    # Fixing the file recovers without a restart (nothing to retrain: the digest is unchanged).
    save(repo / "specs/beta.yaml", spec_text("beta", LABELS, datasets("v1")))
    daemon.wait_for("recovered", flywheel="specs/beta.yaml")
    assert len(iteration_records(repo, "beta")) == 1

    # An edit made while an iteration runs is picked up by the next one, never lost.
    save(repo / "specs/alpha.yaml", spec_text("alpha", LABELS, datasets("v1", "v2", "v3")))
    daemon.wait_for("stage.started", flywheel="alpha", stage="train", count=3)
    save(repo / "specs/alpha.yaml", spec_text("alpha", LABELS, datasets("v1", "v2", "v3"),
                                              recipe={"C": 0.25}))
    last = daemon.wait_for("iteration.finished", flywheel="alpha", count=4)
    assert last["status"] == "COMPLETED"
    records = iteration_records(repo, "alpha")
    assert [r["status"] for r in records] == ["COMPLETED"] * 4
    assert records[-1]["recipe"]["C"] == 0.25
    assert records[2]["newDatasets"] == ["v3"]

    # The status file and command say what it is doing; a second daemon is refused.
    daemon.wait_for("pass", where=lambda e: e["trigger"] == "job ended: alpha", count=4)
    status = run_cli(repo, "status", "-o", "json").json()
    assert status["Running"] is True
    assert status["Status"]["State"] == "IDLE"
    assert status["Status"]["Running"] == [] and status["Status"]["Errors"] == []
    assert status["Status"]["Counters"]["Iterations"] == 5
    second = run_cli(repo, "watch", check=2)
    assert "already serving" in second.stderr and str(daemon.process.pid) in second.stderr

    assert daemon.stop() == 0
    assert daemon.events("stopped")
    expected = "v4" if records[-1]["decision"]["promote"] else "v3"
    assert lake_json(repo, "alpha", "status.json")["activeModel"] == expected
    final = run_cli(repo, "status", "-o", "json", check=3).json()
    assert final["Running"] is False and final["Status"]["State"] == "STOPPED"


def test_sigterm_lets_the_running_stage_finish_and_a_restart_resumes(repo: Path,
                                                                     daemons) -> None:
    add_data(repo)
    # Character n-grams make the train stage last long enough to be caught in the act.
    save(repo / "specs/alpha.yaml", spec_text(
        "alpha", LABELS, datasets("v1", "v2", "v3"),
        recipe={"features": {"ngramRange": [1, 3], "charNgramRange": [1, 6]}}))
    daemon = daemons(repo)
    daemon.wait_for("stage.started", flywheel="alpha", stage="train")
    assert daemon.stop(signal.SIGTERM) == 0

    (stopped,) = iteration_records(repo, "alpha")
    assert stopped["status"] == "STOPPED"
    assert "stopped before the evaluate stage (SIGTERM received)" in stopped["message"]
    assert daemon.events("job.finished", flywheel="alpha")[0]["exit"] == 130
    assert not daemon.events("stopping", reason="grace period over")

    again = daemons(repo)
    resumed = again.wait_for("iteration.started", flywheel="alpha")
    assert resumed["reason"].startswith(f"resume iteration {stopped['flywheelIterationId']}")
    done = again.wait_for("iteration.finished", flywheel="alpha")
    assert done["status"] == "COMPLETED"
    assert again.stop() == 0
    records = iteration_records(repo, "alpha")
    assert [r["status"] for r in records] == ["STOPPED", "COMPLETED"]
    assert records[1]["attempt"] == stopped["attempt"] == 1


def test_when_the_grace_period_runs_out_the_stage_is_cut_short(repo: Path, daemons) -> None:
    add_data(repo)
    save(repo / "specs/alpha.yaml", spec_text(
        "alpha", LABELS, datasets("v1", "v2", "v3"),
        recipe={"features": {"ngramRange": [1, 3], "charNgramRange": [1, 6]}}))
    daemon = daemons(repo, "--grace", "0")
    daemon.wait_for("stage.started", flywheel="alpha", stage="train")
    assert daemon.stop(signal.SIGTERM) == 0
    assert daemon.events("stopping", reason="grace period over")
    (record,) = iteration_records(repo, "alpha")
    assert record["status"] == "STOPPED" and record["retryable"] is True
    # Cut short in the stage (DVC reports the killed command) or just before it: either way
    # STOPPED and resumable, never a FAILED that would wait out a back-off.
    assert record["message"].startswith("STOPPED: ")


def test_a_dataset_still_being_written_waits_to_settle(repo: Path, daemons) -> None:
    add_data(repo)
    save(repo / "specs/alpha.yaml", spec_text("alpha", LABELS, datasets("v1")))
    daemon = daemons(repo, "--settle", "1.5")
    daemon.wait_for("promoted", flywheel="alpha", version="v1")
    rows = bundled_rows(SOURCE, "train-v3.csv", LABELS, 25, skip=25)
    write_csv(repo / "data/v2.csv", rows[:40])  # the first half of a slow copy
    save(repo / "specs/alpha.yaml", spec_text("alpha", LABELS, datasets("v1", "v2")))
    waiting = daemon.wait_for("waiting", flywheel="alpha")
    assert "dataset files changed less than 1.5s ago" in waiting["reason"]
    write_csv(repo / "data/v2.csv", rows)  # the copy completes
    daemon.wait_for("iteration.finished", flywheel="alpha", count=2, status="COMPLETED")
    (_, second) = iteration_records(repo, "alpha")
    assert second["numberOfTrainDocuments"] == 100 + len(rows)
    assert daemon.stop() == 0


def test_a_data_folder_made_after_start_is_watched(repo: Path, daemons) -> None:
    shutil.rmtree(repo / "data")
    save(repo / "specs/alpha.yaml", spec_text("alpha", LABELS, datasets("v1")))
    daemon = daemons(repo)
    error = daemon.wait_for("error", flywheel="alpha")
    assert "dataset file not found: data/v1.csv" in error["error"]
    add_data(repo)  # creates data/ and its files: the root watch sees data/ appear
    daemon.wait_for("recovered", flywheel="alpha")
    daemon.wait_for("iteration.finished", flywheel="alpha", status="COMPLETED")
    save(repo / "specs/alpha.yaml", spec_text("alpha", LABELS, datasets("v1", "v2")))
    daemon.wait_for("iteration.finished", flywheel="alpha", status="COMPLETED", count=2)
    assert daemon.stop() == 0


def test_a_failing_job_backs_off_and_a_data_fix_goes_through(repo: Path, daemons) -> None:
    add_data(repo)
    good = (repo / "data/v1.csv").read_text("utf-8")
    (repo / "data/v1.csv").write_text(good + "chess,a label the task does not declare\n")
    save(repo / "specs/alpha.yaml", spec_text("alpha", LABELS, datasets("v1")))
    daemon = daemons(repo)
    error = daemon.wait_for("error", flywheel="alpha")
    assert error["error"].startswith("data/v1.csv:101:") and "chess" in error["error"]
    assert daemon.wait_for("job.finished", flywheel="alpha")["exit"] == 1
    waiting = daemon.wait_for("waiting", flywheel="alpha")
    assert waiting["reason"].startswith("the last 1 job(s) failed; trying again in")
    assert not (repo / "lake/alpha/iterations").exists()  # nothing recorded for bad data

    save(repo / "data/v1.csv", good)  # new content, new digest: no need to wait out the pause
    done = daemon.wait_for("iteration.finished", flywheel="alpha")
    assert done["status"] == "COMPLETED"
    assert daemon.stop() == 0


def test_resync_notices_what_no_event_reports(repo: Path, daemons) -> None:
    add_data(repo)
    save(repo / "specs/alpha.yaml", spec_text("alpha", LABELS, datasets("v1")))
    daemon = daemons(repo, "--resync", "1")
    daemon.wait_for("promoted", flywheel="alpha", version="v1")
    daemon.wait_for("pass", trigger="job ended: alpha")
    # The lake is the daemon's own output, so it is not watched; losing it is only seen by a
    # level-triggered pass, here the periodic resync.
    shutil.rmtree(repo / "lake/alpha")
    daemon.wait_for("iteration.started", flywheel="alpha", count=2, reason="first iteration")
    daemon.wait_for("iteration.finished", flywheel="alpha", count=2, status="COMPLETED")
    assert any("resync" in e["trigger"] for e in daemon.events("pass"))
    assert daemon.events("changed") == []
    assert daemon.stop() == 0


def test_status_without_a_daemon_says_so(repo: Path) -> None:
    result = run_cli(repo, "status", check=3)
    assert "not running" in result.stdout
    assert json.loads(run_cli(repo, "status", "-o", "json", check=3).stdout)["Running"] is False
