"""No-op reconcile at scale: ``flywheel reconcile`` vs ``dvc status`` on a 100-flywheel repo.

The repository (in a temporary folder, made with ``flywheel init``) holds 100 flywheels with 10
dataset versions each (9 TRAIN + 1 TEST), small CSV files whose rows are sampled from the bundled
``data/debian-sections`` files, so every label is a declared one.

It is brought to a *really* reconciled state without paying for 100 ``dvc repro`` runs: the
reconciler's own ``reconcile()`` runs in this process with one substitution, made through the
executor seam (``DvcExecutor(dvc_session=...)``): the DVC session that would run each stage as a
subprocess runs the same stage functions
(``reconciler.stages.{prepare,train,evaluate}.run``) in-process instead. So every lake record,
generated pipeline file, stage output and model file is the one the reconciler writes. Then DVC
itself records what it would have recorded: ``dvc commit -f`` writes every
``pipelines/<name>/dvc.lock`` from the real outputs, and ``dvc add`` tracks every
``lake/<name>/models`` folder. Before timing, the script checks that ``flywheel reconcile``
exits 0 with no iteration and no promotion for all 100, writes no lake file, and that
``dvc status`` reports everything up to date.

Timed, as whole processes (wall clock, repeated; median and min):

* ``flywheel reconcile`` on the reconciled repo (hash cache warm) vs ``dvc status`` (baseline);
  target <= 0.3x (1,000 flywheels: ``--flywheels 1000``; 10 and 100 show how it grows);
* the first no-op reconcile with a cold hash cache (``.flywheel/cache`` deleted before each
  run, so all 1000 dataset files are read and hashed) vs the warm one;
* ``flywheel plan`` (the CI dry run: reads every spec and the lake, changes nothing) vs
  ``dvc status``;
* ``python -c pass`` as the floor of any Python process, for context.

Usage: ``.venv/bin/python benchmarks/noop_reconcile.py [--flywheels 100] [--versions 10]
[--repeat 7] [--keep DIR]``
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import random
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from _common import (
    DVC,
    FLYWHEEL,
    PROJECT,
    PYTHON,
    Stats,
    check_environment,
    init_repository,
    machine_note,
    ratio_line,
    remove_tree,
    run_timed,
)

SOURCE = PROJECT / "data" / "debian-sections"
LABELS = ["database", "editors", "games", "graphics", "mail", "math", "net", "science", "sound",
          "video"]
ROWS_PER_LABEL = 3  # per dataset file: 30 rows, about 15 KB


# building the repository ------------------------------------------------------------------------


def read_rows(paths: list[Path]) -> dict[str, list[list[str]]]:
    """Rows of the given Comprehend CSV files, grouped by label."""
    by_label: dict[str, list[list[str]]] = defaultdict(list)
    for path in paths:
        with path.open(encoding="utf-8", newline="") as handle:
            for label, text in csv.reader(handle):
                by_label[label].append([label, text])
    return by_label


def write_sample(path: Path, pool: dict[str, list[list[str]]], rng: random.Random) -> None:
    """A dataset file of ``ROWS_PER_LABEL`` rows per label, in a shuffled order."""
    rows = [row for label in LABELS for row in rng.sample(pool[label], ROWS_PER_LABEL)]
    rng.shuffle(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)


def spec_document(name: str, versions: int) -> dict[str, Any]:
    """A spec with ``versions - 1`` TRAIN datasets and one TEST dataset, default recipe."""
    datasets = [{"name": f"{name}-v{v}", "type": "TRAIN", "path": f"data/{name}/train-v{v}.csv"}
                for v in range(1, versions)]
    datasets.append({"name": f"{name}-test", "type": "TEST", "path": f"data/{name}/test.csv"})
    return {
        "apiVersion": "flywheel-reconciler/v1",
        "name": name,
        "description": "Benchmark flywheel: rows sampled from data/debian-sections.",
        "task": {"languageCode": "en", "mode": "MULTI_CLASS", "labels": LABELS},
        "datasets": datasets,
        "promotion": {"minF1": 0.0, "minImprovement": 0.0},
    }


def write_flywheels(root: Path, count: int, versions: int) -> list[str]:
    """Specs and dataset files of ``count`` flywheels; returns their names."""
    train_pool = read_rows(sorted(SOURCE.glob("train-v*.csv")))
    test_pool = read_rows([SOURCE / "test.csv"])
    names = [f"fw-{index:03d}" for index in range(count)]
    for name in names:
        for version in range(1, versions):
            write_sample(root / "data" / name / f"train-v{version}.csv", train_pool,
                         random.Random(f"{name}/train-v{version}"))
        write_sample(root / "data" / name / "test.csv", test_pool, random.Random(f"{name}/test"))
        (root / "specs" / f"{name}.yaml").write_text(
            yaml.safe_dump(spec_document(name, versions), sort_keys=False), "utf-8")
    return names


class InProcessStages:
    """Stands in for ``reconciler.adapters.dvc.DvcSession`` while the repository is built.

    ``reproduce`` runs the pipeline's stage functions in this process (the code ``dvc repro``
    would start as ``python -m reconciler.stages ...``); ``track`` only remembers the folder, so
    that one ``dvc add`` can track them all afterwards.
    """

    tracked: list[str] = []

    def __init__(self, root: Path, log: Path, stop: object = None) -> None:
        self.root = root
        self._cwd = ""

    def __enter__(self) -> InProcessStages:
        self._cwd = os.getcwd()
        os.chdir(self.root)  # the stages resolve paths against the working directory
        return self

    def __exit__(self, *exc: object) -> None:
        os.chdir(self._cwd)

    def reproduce(self, *targets: str) -> None:
        from reconciler.stages import evaluate, prepare, train

        for target in targets:
            dvc_yaml, stage = target.rsplit(":", 1)
            params = str(Path(dvc_yaml).parent / "params.yaml")
            {"prepare": prepare, "train": train, "evaluate": evaluate}[stage].run(params)

    def track(self, path: str) -> None:
        InProcessStages.tracked.append(path)


def reconcile_in_process(root: Path) -> list[str]:
    """Run ``reconcile()`` once with in-process stages; returns the folders to ``dvc add``."""
    from reconciler.runtime.executor import DvcExecutor
    from reconciler.runtime.reconcile import reconcile

    InProcessStages.tracked = []
    result = reconcile(root, executor=DvcExecutor(dvc_session=InProcessStages))
    if not result.ok:
        raise RuntimeError("building the repository failed: "
                           + "; ".join(str(e) for e in result.all_errors))
    return list(InProcessStages.tracked)


def build_repository(root: Path, count: int, versions: int) -> dict[str, float]:
    """Make ``root`` a reconciled repository of ``count`` flywheels; returns phase seconds."""
    phases: dict[str, float] = {}
    started = time.perf_counter()
    init_repository(root)
    names = write_flywheels(root, count, versions)
    phases["init + data + specs"] = time.perf_counter() - started

    started = time.perf_counter()
    tracked = reconcile_in_process(root)
    phases["in-process iterations"] = time.perf_counter() - started
    if len(tracked) != len(names):
        raise RuntimeError(f"expected {len(names)} model folders, got {len(tracked)}")

    started = time.perf_counter()
    run_timed([DVC, "commit", "--force", "--quiet"], cwd=root)
    run_timed([DVC, "add", "--quiet", *tracked], cwd=root)
    run_timed(["git", "add", "-A"], cwd=root)
    run_timed(["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit",
               "-q", "-m", "reconciled benchmark repository"], cwd=root)
    phases["dvc commit + dvc add + git commit"] = time.perf_counter() - started
    return phases


# checks -----------------------------------------------------------------------------------------


def lake_files(root: Path) -> dict[str, int]:
    """Every file under ``lake/`` with its mtime, to prove a no-op writes nothing."""
    return {str(p.relative_to(root)): p.stat().st_mtime_ns
            for p in (root / "lake").rglob("*") if p.is_file()}


def verify_noop(root: Path, count: int) -> None:
    """``flywheel reconcile`` exits 0, iterates and promotes nothing, and writes no lake file."""
    before = lake_files(root)
    done = run_timed([FLYWHEEL, "reconcile", "-o", "json"], cwd=root, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"reconcile exited {done.returncode}: {done.stderr}")
    report = json.loads(done.stdout)
    flywheels = report["Flywheels"]
    busy = [f["FlywheelName"] for f in flywheels
            if f["Iteration"] or f["Promotions"] or f["Error"] or f["Busy"]]
    stale = [f["FlywheelName"] for f in flywheels
             if not any(n.startswith("up to date") for n in f["Notes"])]
    if report["Errors"] or len(flywheels) != count or busy or stale:
        raise RuntimeError(f"not a no-op: errors={report['Errors']} flywheels={len(flywheels)} "
                           f"acted={busy[:5]} not-up-to-date={stale[:5]}")
    if lake_files(root) != before:
        raise RuntimeError("the no-op reconcile wrote into lake/")
    summary = run_timed([FLYWHEEL, "reconcile"], cwd=root)
    print(f"check: `flywheel reconcile` exit 0, {len(flywheels)} flywheels, no iteration, "
          f"no promotion, lake/ untouched: {summary.stderr.strip().splitlines()[-1]}")


def verify_dvc_status(root: Path) -> None:
    """``dvc status`` has every stage to check and finds them all up to date."""
    done = run_timed([DVC, "status", "--json"], cwd=root)
    status = json.loads(done.stdout or "{}")
    if status:
        raise RuntimeError(f"dvc status is not clean: {list(status)[:5]}")
    stages = run_timed([DVC, "stage", "list", "--all", "--name-only"], cwd=root)
    print(f"check: `dvc status` clean over {len(stages.stdout.split())} stages "
          "(prepare/train/evaluate of every flywheel + every lake/<name>/models.dvc)")


# timing -----------------------------------------------------------------------------------------


def time_runs(root: Path, repeat: int) -> dict[str, Stats]:
    """Interleaved repetitions, so that drift in machine load hits every command alike."""
    cache = root / ".flywheel" / "cache"
    samples: dict[str, list[float]] = defaultdict(list)
    run_timed([FLYWHEEL, "reconcile"], cwd=root)  # warm the OS page cache for both tools
    run_timed([DVC, "status"], cwd=root)
    for _ in range(repeat):
        remove_tree(cache)
        samples["reconcile (cold hash cache)"].append(
            run_timed([FLYWHEEL, "reconcile"], cwd=root).seconds)
        samples["reconcile (warm hash cache)"].append(
            run_timed([FLYWHEEL, "reconcile"], cwd=root).seconds)
        samples["plan (warm hash cache)"].append(
            run_timed([FLYWHEEL, "plan"], cwd=root).seconds)  # exit 0: nothing pending
        samples["dvc status"].append(run_timed([DVC, "status"], cwd=root).seconds)
        samples["python -c pass"].append(run_timed([PYTHON, "-c", "pass"], cwd=root).seconds)
    return {name: Stats(tuple(values)) for name, values in samples.items()}


@contextlib.contextmanager
def scratch(keep: Path | None) -> Iterator[Path]:
    """The repository folder: ``keep`` if given (left in place), else a temporary one."""
    if keep is not None:
        remove_tree(keep)
        keep.mkdir(parents=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="flywheel-noop-") as folder:
        yield Path(folder) / "repo"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flywheels", type=int, default=100)
    parser.add_argument("--versions", type=int, default=10, help="dataset files per flywheel")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="build the repository here and keep it")
    args = parser.parse_args(argv)
    check_environment()
    print(machine_note())
    with scratch(args.keep) as root:
        root.mkdir(parents=True, exist_ok=True)
        print(f"building {args.flywheels} flywheels x {args.versions} dataset versions "
              f"in {root} ...", flush=True)
        phases = build_repository(root, args.flywheels, args.versions)
        for phase, seconds in phases.items():
            print(f"  {phase:36s} {seconds:7.1f} s")
        data = [p for p in (root / "data").rglob("*.csv")]
        print(f"  {len(data)} dataset files, {sum(p.stat().st_size for p in data) / 1e6:.1f} MB")
        verify_noop(root, args.flywheels)
        verify_dvc_status(root)

        print(f"\ntiming, {args.repeat} interleaved repetitions (whole processes, wall clock):")
        stats = time_runs(root, args.repeat)
        for name, value in stats.items():
            print(f"  {name:30s} {value}")
        print()
        warm, cold = stats["reconcile (warm hash cache)"], stats["reconcile (cold hash cache)"]
        print(ratio_line("no-op reconcile (warm) / dvc status", warm, stats["dvc status"],
                         target=0.3))
        print(ratio_line("no-op reconcile (cold) / dvc status", cold, stats["dvc status"]))
        print(ratio_line("no-op reconcile warm / cold       ", warm, cold))
        print(ratio_line("flywheel plan (warm) / dvc status ", stats["plan (warm hash cache)"],
                         stats["dvc status"]))
        print(machine_note())
    return 0


if __name__ == "__main__":
    sys.exit(main())
