"""Iterations on a real Dask cluster: ``dask scheduler`` and ``dask worker`` processes on
loopback (workers with no checkout, in folders of their own), a real S3-compatible server
(``rclone serve s3``) as the exchange store, the real ``flywheel`` console script, git and DVC.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_harness import SPEC, train_rows
from api_harness import test_rows as held_out_rows
from conftest import FLYWHEEL, Run, commit, run_cli, write_csv
from dask_harness import LocalDask, free_port, stopped
from s3_server import S3Server

BUCKET = "exchange"
DVC = str(Path(FLYWHEEL).with_name("dvc"))


def flywheel(root: Path, *args: str, env: dict[str, str] | None = None,
             timeout: float = 300) -> Run:
    done = subprocess.run([FLYWHEEL, *args], cwd=root, capture_output=True, text=True,
                          env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200", **(env or {})},
                          timeout=timeout)
    return Run(done.returncode, done.stdout, done.stderr)


def make_repo(root: Path, names: tuple[str, ...] = ("sections",)) -> Path:
    run_cli(root.parent, "init", str(root))
    for offset, name in enumerate(names):
        write_csv(root / f"data/{name}/train-1.csv", train_rows(15, skip=offset * 15))
        write_csv(root / f"data/{name}/test.csv", held_out_rows(8))
        (root / f"specs/{name}.yaml").write_text(
            SPEC.replace("name: sections", f"name: {name}")
                .replace("data/sections/", f"data/{name}/") + "promotion:\n  minF1: 0.0\n",
            "utf-8")
    commit(root, "flywheels")
    return root


def add_train_version(root: Path, name: str) -> None:
    """Commit the records, then a second TRAIN version of ``name`` (10 more documents)."""
    commit(root, "v1's records")
    write_csv(root / f"data/{name}/train-2.csv", train_rows(10, skip=30))
    spec = root / f"specs/{name}.yaml"
    spec.write_text(spec.read_text("utf-8").replace(
        "  - name: test\n", "  - name: train-2\n    type: TRAIN\n"
        f"    path: data/{name}/train-2.csv\n  - name: test\n"), "utf-8")
    commit(root, "more data")


def iterations(root: Path, name: str) -> list[dict[str, object]]:
    folder = root / f"lake/{name}/iterations"
    return [json.loads(p.read_text("utf-8")) for p in sorted(folder.glob("*.json"))]


def versions(root: Path, name: str) -> list[dict[str, object]]:
    folder = root / f"lake/{name}/versions"
    return [json.loads(p.read_text("utf-8")) for p in sorted(folder.glob("*.json"))]


def cluster_lines(root: Path, name: str) -> list[str]:
    return [line for log in sorted((root / f".flywheel/logs/{name}").glob("*.log"))
            for line in log.read_text("utf-8").splitlines() if " cluster: " in line]


def dvc_status(root: Path) -> str:
    return subprocess.run([DVC, "status"], cwd=root, capture_output=True, text=True,
                          env={**os.environ, "DVC_NO_ANALYTICS": "1"}, check=True).stdout


#: A worker with this environment stops itself (SIGSTOP) as its task starts: a fit in progress.
STUCK = {"FLYWHEEL_FAILPOINT": "remote:started", "FLYWHEEL_FAILPOINT_ACTION": "stop"}


class Background:
    """``flywheel reconcile --executor URL`` in a thread; :meth:`wait` gives its run."""

    def __init__(self, root: Path, url: str) -> None:
        self.result: dict[str, Run] = {}
        self.thread = threading.Thread(target=lambda: self.result.setdefault(
            "run", flywheel(root, "reconcile", "--executor", url)))
        self.thread.start()

    def wait(self, timeout: float) -> Run:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the reconcile hung"
        return self.result["run"]


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with S3Server() as server:
        (server.folder / BUCKET).mkdir()
        yield server


def test_flywheels_iterate_across_two_workers_through_the_exchange_store(
        tmp_path: Path, s3: S3Server) -> None:
    root = make_repo(tmp_path / "repo", ("alpha", "beta"))
    local = tmp_path / "local"
    shutil.copytree(root, local, symlinks=True)
    with LocalDask(tmp_path / "cluster", env=s3.env()) as cluster:
        cluster.worker("a")
        cluster.worker("b")
        cluster.wait_for_workers(2)
        done = flywheel(root, "reconcile", "--executor", cluster.url,
                        "--exchange", f"s3://{BUCKET}/runs", env=s3.env())
    assert done.code == 0, done.stderr
    assert "Reconciled: 2 iteration(s), 2 promotion(s), 0 error(s)." in done.stderr
    assert "Updating lock file" not in done.stderr  # DVC's chatter went to the iteration log
    workers = set()
    for name in ("alpha", "beta"):
        [record] = iterations(root, name)
        assert record["status"] == "COMPLETED", record
        ran = [line for line in cluster_lines(root, name) if "ran on" in line]
        assert len(ran) == 1, cluster_lines(root, name)
        workers.add(re.search(r"ran on (\S+)", ran[0]).group(1))  # type: ignore[union-attr]
    assert len(workers) == 2, workers  # the two flywheels ran at once, one per worker
    # DVC recorded what the workers computed: nothing to reproduce
    assert "Data and pipelines are up to date" in dvc_status(root)
    # the documents and both models went through the bucket, each under its SHA-256
    stored = {p.name for p in (s3.folder / BUCKET / "runs/sha256").rglob("*") if p.is_file()}
    models = {str(v["sha256"]) for name in ("alpha", "beta") for v in versions(root, name)}
    assert {sha[2:] for sha in models} <= stored
    assert len(stored) >= 4  # + the TRAIN and TEST documents of each flywheel
    # the same model, byte for byte, as a local iteration of the same inputs trains
    assert flywheel(local, "reconcile").code == 0
    assert models == {str(v["sha256"]) for name in ("alpha", "beta")
                      for v in versions(local, name)}
    assert [it["trainedModelMetrics"] for it in iterations(root, "alpha")] == \
        [it["trainedModelMetrics"] for it in iterations(local, "alpha")]


def test_the_second_iteration_scores_the_active_model_on_the_worker(tmp_path: Path) -> None:
    """Without an exchange store the documents and the active model travel in the task."""
    root = make_repo(tmp_path / "repo")
    with LocalDask(tmp_path / "cluster") as cluster:
        cluster.worker("a")
        cluster.wait_for_workers(1)
        assert flywheel(root, "reconcile", "--executor", cluster.url).code == 0
        add_train_version(root, "sections")
        done = flywheel(root, "reconcile", env={"FLYWHEEL_EXECUTOR": cluster.url})
    assert done.code == 0, done.stderr
    first, second = iterations(root, "sections")
    assert second["status"] == "COMPLETED"
    assert second["evaluatedModelVersion"] == "v1"
    # the active model scored on the worker: the same F1 v1 had on the same test set
    assert second["evaluatedModelMetrics"] == first["trainedModelMetrics"]
    assert len(cluster_lines(root, "sections")) == 4  # two iterations: sent, ran
    assert "Data and pipelines are up to date" in dvc_status(root)


def test_a_worker_killed_mid_fit_means_the_task_reruns_on_another(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    with LocalDask(tmp_path / "cluster") as cluster:
        doomed = cluster.worker("doomed", env=STUCK)
        cluster.wait_for_workers(1)
        reconcile = Background(root, cluster.url)
        assert stopped(doomed), cluster.log("worker-doomed")  # the task is on it, mid-run
        survivor = cluster.worker("survivor")
        cluster.wait_for_workers(2)
        cluster.kill(doomed)
        done = reconcile.wait(180)
    assert done.code == 0, done.stderr
    [record] = iterations(root, "sections")  # exactly one iteration for the digest
    assert record["status"] == "COMPLETED" and record["attempt"] == 1
    assert [v["version"] for v in versions(root, "sections")] == ["v1"]
    [ran] = [line for line in cluster_lines(root, "sections") if "ran on" in line]
    assert f":{survivor.pid} " in ran, ran
    assert "Data and pipelines are up to date" in dvc_status(root)


def test_a_lost_scheduler_fails_the_iteration_retryably_and_the_retry_completes(
        tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    cluster = LocalDask(tmp_path / "cluster")
    with cluster:
        stuck = cluster.worker("stuck", env=STUCK)
        cluster.wait_for_workers(1)
        reconcile = Background(root, cluster.url)
        assert stopped(stuck)
        cluster.kill(cluster.scheduler)
        done = reconcile.wait(120)  # not hung on the lost scheduler
        cluster.kill(stuck)
    assert done.code == 1, done.stderr
    [failed] = iterations(root, "sections")
    assert failed["status"] == "FAILED" and failed["retryable"] is True
    assert "lost the Dask scheduler at tcp://127.0.0.1:" in str(failed["message"])
    assert "Traceback" not in done.stderr
    said = [line for line in done.stderr.splitlines() if "lost the Dask scheduler" in line]
    assert said and all("sections" in line for line in said), done.stderr
    # a new scheduler on the same address; `iterate` asks for the retry now (no back-off)
    with LocalDask(tmp_path / "cluster-2", port=cluster.port) as again:
        again.worker("fresh")
        again.wait_for_workers(1)
        retry = flywheel(root, "iterate", "sections", "--executor", again.url)
    assert retry.code == 0, retry.stderr
    records = iterations(root, "sections")
    assert [r["status"] for r in records] == ["FAILED", "COMPLETED"]
    assert records[0]["inputDigest"] == records[1]["inputDigest"]
    assert [v["version"] for v in versions(root, "sections")] == ["v1"]


def test_an_unreachable_scheduler_is_one_line_and_records_nothing(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    done = flywheel(root, "reconcile", "--executor", f"dask://127.0.0.1:{free_port()}")
    assert done.code == 1
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:" in done.stderr
    assert "Traceback" not in done.stderr
    assert iterations(root, "sections") == []


@pytest.mark.parametrize(("args", "message"), [
    (["--executor", "spark://x:1"], "expected local, in-process or dask://HOST:PORT"),
    (["--executor", "dask://no-port"], "expected local, in-process or dask://HOST:PORT"),
    (["--exchange", "s3://bucket/x"], "--exchange is for a cluster executor"),
    (["--executor", "dask://127.0.0.1:1", "--exchange", "ftp://x"], "expected s3://BUCKET"),
])
def test_bad_executor_options_are_refused(tmp_path: Path, args: list[str],
                                          message: str) -> None:
    root = make_repo(tmp_path / "repo")
    done = flywheel(root, "reconcile", *args)
    assert done.code != 0
    assert message in done.stderr, done.stderr
    assert len([line for line in done.stderr.splitlines() if line.strip()]) == 1, done.stderr
    assert iterations(root, "sections") == []


def test_the_watch_daemon_runs_its_jobs_on_the_cluster_one_per_slot(tmp_path: Path) -> None:
    from daemon_harness import Daemon

    root = make_repo(tmp_path / "repo", ("alpha", "beta"))
    with LocalDask(tmp_path / "cluster") as cluster:
        cluster.worker("a")
        cluster.worker("b")
        cluster.wait_for_workers(2)
        daemon = Daemon(root, "--executor", cluster.url)
        try:
            started = daemon.wait_for("watch.started")
            assert started["max_iterations"] == 2  # the cluster's slots: two worker threads
            daemon.wait_for("iteration.finished", count=2, timeout=180)
        finally:
            daemon.stop()
    for name in ("alpha", "beta"):
        [record] = iterations(root, name)
        assert record["status"] == "COMPLETED"
        assert any("ran on" in line for line in cluster_lines(root, name))


def test_a_stop_request_cancels_the_task_and_the_next_reconcile_resumes(tmp_path: Path) -> None:
    import signal
    import time

    root = make_repo(tmp_path / "repo")
    with LocalDask(tmp_path / "cluster") as cluster:
        stuck = cluster.worker("stuck", env=STUCK)
        cluster.wait_for_workers(1)
        process = subprocess.Popen(
            [FLYWHEEL, "reconcile", "--executor", cluster.url, "--log-format", "plain"],
            cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "NO_COLOR": "1"})
        assert stopped(stuck)
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 130, stderr
        [record] = iterations(root, "sections")
        assert record["status"] == "STOPPED" and record["retryable"] is True
        cluster.kill(stuck)
        cluster.worker("fresh")
        cluster.wait_for_workers(1)
        done = flywheel(root, "reconcile", "--executor", cluster.url)
    assert done.code == 0, done.stderr
    assert [r["status"] for r in iterations(root, "sections")] == ["STOPPED", "COMPLETED"]
