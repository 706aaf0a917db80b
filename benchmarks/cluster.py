"""Many flywheels at once: one reconcile, locally and on a two-worker Dask cluster.

*Setup (not timed).* A scratch repository (``flywheel init``) with ``--flywheels`` flywheels
(100), each given one new TRAIN dataset version of ``--documents`` (500) documents and a TEST
file of 150, sampled (seeded, per flywheel) from the bundled ``debian-sections`` data, 10 labels,
the default recipe (linear SVM, C=1, word 1-2 grams). The repository is copied, so that each
timed run starts from the same committed state.

*Timed* (wall clock, whole processes):

1. *bare fits* (the baseline): for each flywheel, the recipe's scikit-learn pipeline
   (``reconciler.stages.recipes.build_pipeline``) fitted on its TRAIN documents and asked for its
   TEST documents' labels, in this process, data already in memory; the sum over flywheels;
2. *serial local*: ``flywheel reconcile`` with the default executor (each iteration through
   ``dvc repro``: three stage processes);
   *serial in-process*: ``flywheel reconcile --executor in-process`` (the same computations in
   the reconciler's process, recorded by ``dvc commit``);
3. *cluster*: ``flywheel reconcile --executor dask://…`` against a ``dask scheduler`` and two
   ``dask worker --nthreads 1`` processes on loopback, started before the clock starts (their
   imports are not counted: a cluster is already running when a reconcile uses it).

Every run must end with every flywheel's iteration COMPLETED and the same model sha256 in the
three repositories (same inputs, same bytes). Ratios: serial local / bare fits (target ≤ 1.5x),
serial in-process / bare fits, cluster / bare fits, serial local / cluster (target ≥ 1.7x).

On a 2-core machine the two workers and the coordinator share both cores: the cluster's figure
here is what two workers give on the coordinator's own machine, not on two more machines.

Usage: ``.venv/bin/python benchmarks/cluster.py [--flywheels 100] [--documents 500]``
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import (
    BIN,
    FLYWHEEL,
    PROJECT,
    check_environment,
    environment,
    init_repository,
    machine_note,
    run_timed,
)

BUNDLED = PROJECT / "data/debian-sections"
LABELS = ["database", "editors", "games", "graphics", "mail", "math", "net", "science", "sound",
          "video"]
TEST_DOCUMENTS = 150
PER_LABEL = 10  # task.minDocumentsPerLabel's default


def read_rows(file: str) -> list[tuple[str, str]]:
    with (BUNDLED / file).open(encoding="utf-8", newline="") as handle:
        return [(label, text) for label, text in csv.reader(handle)]


def write_rows(path: Path, rows: list[tuple[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)


def sample(rows: list[tuple[str, str]], count: int, seed: int) -> list[tuple[str, str]]:
    """``count`` rows with every label present (at least 10 each, the spec's minimum), seeded."""
    rng = random.Random(seed)
    shuffled = rows[:]
    rng.shuffle(shuffled)
    chosen, rest = [], []
    for label in LABELS:
        of_label = [r for r in shuffled if r[0] == label][:PER_LABEL]
        chosen.extend(of_label)
    taken = set(chosen)
    rest = [r for r in shuffled if r not in taken]
    return chosen + rest[:count - len(chosen)]


SPEC = """apiVersion: flywheel-reconciler/v1
name: {name}
task:
  mode: MULTI_CLASS
  labels: [{labels}]
datasets:
  - {{name: train-1, type: TRAIN, path: data/{name}/train-1.csv}}
  - {{name: test, type: TEST, path: data/{name}/test.csv}}
promotion:
  minF1: 0.0
"""


def build(root: Path, flywheels: int, documents: int) -> dict[str, tuple[list[tuple[str, str]],
                                                                         list[tuple[str, str]]]]:
    init_repository(root)
    train_rows, test_rows = read_rows("train-v3.csv") + read_rows("train-v2.csv"), \
        read_rows("test.csv")
    data = {}
    for number in range(flywheels):
        name = f"fw-{number:03d}"
        train = sample(train_rows, documents, number)
        test = sample(test_rows, TEST_DOCUMENTS, 10_000 + number)
        write_rows(root / f"data/{name}/train-1.csv", train)
        write_rows(root / f"data/{name}/test.csv", test)
        (root / f"specs/{name}.yaml").write_text(
            SPEC.format(name=name, labels=", ".join(LABELS)), "utf-8")
        data[name] = (train, test)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True, capture_output=True)
    subprocess.run(["git", "commit", "-qm", "flywheels"], cwd=root, check=True,
                   capture_output=True)
    return data


def bare_fits(data: dict[str, tuple[list[tuple[str, str]], list[tuple[str, str]]]]) -> float:
    """The sum of every flywheel's fit + predict, in this process (imports done before)."""
    from reconciler.core.spec import FlywheelSpec, Mode
    from reconciler.stages import recipes

    recipe = FlywheelSpec.model_validate(
        {"name": "x", "task": {"mode": "MULTI_CLASS", "labels": LABELS},
         "datasets": [{"name": "t", "type": "TRAIN", "path": "data/t.csv"}]}).recipe
    total = 0.0
    for train, test in data.values():
        pipeline = recipes.build_pipeline(recipe, Mode.MULTI_CLASS)
        started = time.perf_counter()
        pipeline.fit([text for _, text in train], [label for label, _ in train])
        pipeline.predict([text for _, text in test])
        total += time.perf_counter() - started
    return total


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Cluster:
    """A scheduler and two single-thread workers on loopback, in a scratch folder."""

    def __init__(self, folder: Path, workers: int) -> None:
        self.port = free_port()
        env = environment()
        log = (folder / "dask.log").open("ab")
        dask = str(BIN / "dask")
        self.processes = [subprocess.Popen(
            [dask, "scheduler", "--host", "127.0.0.1", "--port", str(self.port),
             "--no-dashboard", "--no-show"], cwd=folder, env=env, stdout=log, stderr=log)]
        time.sleep(2)
        for _ in range(workers):
            self.processes.append(subprocess.Popen(
                [dask, "worker", f"tcp://127.0.0.1:{self.port}", "--nthreads", "1",
                 "--no-dashboard", "--host", "127.0.0.1"], cwd=folder, env=env, stdout=log,
                stderr=log))
        from distributed import Client

        with Client(f"tcp://127.0.0.1:{self.port}", timeout=30) as client:
            client.wait_for_workers(workers, timeout=60)

    @property
    def url(self) -> str:
        return f"dask://127.0.0.1:{self.port}"

    def close(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
        for process in self.processes:
            process.wait(30)


def models(root: Path) -> dict[str, str]:
    found = {}
    for record in sorted(root.glob("lake/*/versions/v1.json")):
        found[record.parts[-3]] = json.loads(record.read_text("utf-8"))["sha256"]
    return found


def completed(root: Path, flywheels: int) -> None:
    statuses = [json.loads(p.read_text("utf-8"))["status"]
                for p in root.glob("lake/*/iterations/*.json")]
    if statuses.count("COMPLETED") != flywheels or len(statuses) != flywheels:
        raise RuntimeError(f"{root}: {statuses.count('COMPLETED')} of {flywheels} completed "
                           f"({len(statuses)} iterations)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--flywheels", type=int, default=100)
    parser.add_argument("--documents", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    check_environment()
    print(machine_note())
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as scratch:
        base = Path(scratch)
        local, remote, inproc = base / "local", base / "cluster", base / "in-process"
        local.mkdir()
        data = build(local, args.flywheels, args.documents)
        for copy in (remote, inproc):
            shutil.copytree(local, copy, symlinks=True)
            subprocess.run(["dvc", "config", "--local", "core.site_cache_dir",
                            str(copy / ".dvc-site")], cwd=copy, check=True, env=environment())
        print(f"{args.flywheels} flywheels x {args.documents} TRAIN + {TEST_DOCUMENTS} TEST "
              f"documents, {len(LABELS)} labels, default recipe")
        bare = bare_fits(data)
        print(f"bare fits (sum of fit + predict, in-process): {bare:8.2f} s")
        serial = run_timed([FLYWHEEL, "reconcile", "--log-format", "plain"], cwd=local).seconds
        completed(local, args.flywheels)
        print(f"serial local reconcile:                      {serial:8.2f} s")
        in_process = run_timed([FLYWHEEL, "reconcile", "--log-format", "plain", "--executor",
                                "in-process"], cwd=inproc).seconds
        completed(inproc, args.flywheels)
        print(f"serial in-process reconcile:                 {in_process:8.2f} s")
        cluster = Cluster(base, args.workers)
        try:
            started = time.perf_counter()
            run_timed([FLYWHEEL, "reconcile", "--log-format", "plain", "--executor",
                       cluster.url], cwd=remote)
            on_cluster = time.perf_counter() - started
        finally:
            cluster.close()
        completed(remote, args.flywheels)
        print(f"reconcile on {args.workers} Dask workers:                  {on_cluster:8.2f} s")
        same = (models(local) == models(remote) == models(inproc)
                and len(models(local)) == args.flywheels)
        print(f"models: {'identical' if same else 'DIFFERENT'} in the three repositories")
        print(f"serial local / bare fits: {serial / bare:.2f}x (target <= 1.5x)")
        print(f"serial in-process / bare fits: {in_process / bare:.2f}x "
              f"({serial / in_process:.2f}x faster than serial local)")
        print(f"cluster / bare fits:      {on_cluster / bare:.2f}x")
        print(f"serial local / cluster:   {serial / on_cluster:.2f}x faster (target >= 1.7x)")
        if not same:
            for name, sha in sorted(models(local).items()):
                others = (models(inproc).get(name), models(remote).get(name))
                if others != (sha, sha):
                    print(f"  {name}: local {sha[:12]} in-process {str(others[0])[:12]} "
                          f"cluster {str(others[1])[:12]}")
            sys.exit(1)


if __name__ == "__main__":
    main()
