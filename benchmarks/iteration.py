"""One iteration end to end: ``flywheel reconcile`` vs a bare scikit-learn fit + evaluate.

For each case, a fresh repository (temporary folder, ``flywheel init``) holds one flywheel, and
``flywheel reconcile`` is timed as a whole process (wall clock) from start to a COMPLETED
iteration: planning, the DVC pipeline (prepare, train, evaluate as ``dvc repro`` stages, each a
Python subprocess), the model archived with ``dvc add``, the lake records and the promotion.

Two baselines train and score the same recipe on the same documents:

1. *fit + predict, in-process*: the scikit-learn pipeline the recipe builds
   (``reconciler.stages.recipes.build_pipeline``), fitted on the TRAIN documents and asked for
   the TEST documents' labels; only ``fit`` + ``predict`` are timed (data already in memory);
2. *bare script, whole process*: the same work as a fresh ``python`` process (this file with
   ``--baseline-worker``): imports (Python, scikit-learn), CSV reading, fit, predict, macro-F1.
   This is what a hand-written training script costs, the fairer comparison.

Both baselines' macro-F1 must equal the iteration's ``AverageF1Score`` (same model, same data).

Cases: (a) the bundled ``debian-sections`` example (its spec and data, recipe as in the spec);
(b) the >= 40k-document Debian corpus (``data/build_debian_corpus.py --full``), split 80/20 by a
hash of the text into one TRAIN and one TEST file, with the default linear-svm recipe and word
n-grams 1-2, minDf 2 (``--corpus`` gives a prebuilt corpus file; without apt lists it is skipped).

Usage: ``.venv/bin/python benchmarks/iteration.py [--repeat 3] [--large-repeat 1]
[--corpus FILE] [--skip-large]``
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from _common import (
    FLYWHEEL,
    PROJECT,
    PYTHON,
    Stats,
    build_full_corpus,
    check_environment,
    init_repository,
    machine_note,
    ratio_line,
    run_timed,
)

LARGE_NAME = "debian-full"
LARGE_RECIPE = {"algorithm": "linear-svm", "features": {"ngramRange": [1, 2], "minDf": 2}}
TEST_FRACTION = 0.2
#: One iteration against either baseline.
TARGET_RATIO = 1.15


@dataclass(frozen=True)
class Case:
    """One flywheel to iterate: its spec text and the files to put under ``data/``."""

    title: str
    name: str
    spec_text: str
    files: dict[str, Path]  # repository-relative path -> source file


# the cases --------------------------------------------------------------------------------------


def bundled_case() -> Case:
    """The bundled example: ``specs/debian-sections.yaml`` and ``data/debian-sections/``."""
    source = PROJECT / "data" / "debian-sections"
    return Case(
        title="(a) bundled debian-sections (recipe as in specs/debian-sections.yaml)",
        name="debian-sections",
        spec_text=(PROJECT / "specs" / "debian-sections.yaml").read_text("utf-8"),
        files={f"data/debian-sections/{p.name}": p for p in sorted(source.glob("*.csv"))},
    )


def in_test_split(text: str) -> bool:
    """Deterministic 80/20 split by a SHA-256 of the document text."""
    bucket = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")
    return bucket / 2**64 < TEST_FRACTION


def large_case(corpus: Path, workdir: Path) -> Case:
    """The full Debian corpus split into ``train.csv`` and ``test.csv``, all labels declared."""
    rows = list(csv.reader(corpus.open(encoding="utf-8", newline="")))
    labels = sorted({label for label, _ in rows})
    split = {"train.csv": [r for r in rows if not in_test_split(r[1])],
             "test.csv": [r for r in rows if in_test_split(r[1])]}
    files = {}
    for file_name, part in split.items():
        path = workdir / file_name
        with path.open("w", encoding="utf-8", newline="") as handle:
            csv.writer(handle, lineterminator="\n").writerows(part)
        files[f"data/{LARGE_NAME}/{file_name}"] = path
    spec = {
        "apiVersion": "flywheel-reconciler/v1",
        "name": LARGE_NAME,
        "description": "Every Debian bookworm main package description, by archive section.",
        "task": {"languageCode": "en", "mode": "MULTI_CLASS", "labels": labels},
        "datasets": [
            {"name": "full-train", "type": "TRAIN", "path": f"data/{LARGE_NAME}/train.csv"},
            {"name": "full-test", "type": "TEST", "path": f"data/{LARGE_NAME}/test.csv"},
        ],
        "recipe": LARGE_RECIPE,
        "promotion": {"minF1": 0.0, "minImprovement": 0.0},
    }
    return Case(
        title=(f"(b) full Debian corpus: {len(rows)} documents, {len(labels)} labels, "
               f"{len(split['train.csv'])} train / {len(split['test.csv'])} test; "
               "default linear-svm recipe (C=1), word n-grams 1-2, minDf 2"),
        name=LARGE_NAME,
        spec_text=yaml.safe_dump(spec, sort_keys=False),
        files=files,
    )


# the reconciler ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class IterationRun:
    """One timed ``flywheel reconcile`` and what its iteration recorded."""

    seconds: float
    f1: float
    iteration_seconds: float
    fit_seconds: float


def make_repository(case: Case, root: Path) -> None:
    """A fresh flywheel repository holding only ``case``'s spec and data (not timed)."""
    init_repository(root)
    (root / "specs" / f"{case.name}.yaml").write_text(case.spec_text, "utf-8")
    for relative, source in case.files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


def run_reconcile(case: Case, scratch: Path) -> IterationRun:
    """Time ``flywheel reconcile`` in a fresh repository; check it completed one iteration."""
    root = scratch / f"repo-{time.monotonic_ns()}"
    root.mkdir()
    try:
        make_repository(case, root)
        done = run_timed([FLYWHEEL, "reconcile", "-o", "json"], cwd=root)
        report = json.loads(done.stdout)["Flywheels"]
        iteration = report[0]["Iteration"] if len(report) == 1 else None
        if not iteration or iteration.get("Status") != "COMPLETED":
            raise RuntimeError(f"expected one COMPLETED iteration, got: {report}")
        records = list((root / "lake" / case.name / "iterations").glob("*.json"))
        record = json.loads(records[0].read_text("utf-8"))
        # The fit time is in the stage log, not in train.json (a stage output holds only what its
        # inputs determine, so that `dvc repro` reproduces it byte for byte).
        (log,) = (root / ".flywheel" / "logs" / case.name).glob("*.log")
        fit = re.search(r"train: fit_seconds=([0-9.]+)", log.read_text("utf-8"))
        if fit is None:
            raise RuntimeError(f"no fit_seconds line in {log}")
        return IterationRun(seconds=done.seconds,
                            f1=record["trainedModelMetrics"]["AverageF1Score"],
                            iteration_seconds=record["durationSeconds"],
                            fit_seconds=float(fit.group(1)))
    finally:
        shutil.rmtree(root, ignore_errors=True)


# the baselines ----------------------------------------------------------------------------------


def read_split(spec_file: Path, data_root: Path) -> tuple[Any, list[str], list[str], list[str],
                                                          list[str]]:
    """The spec and its TRAIN / TEST texts and labels, read with the csv module."""
    from reconciler.adapters.loader import load_spec

    spec = load_spec(spec_file, data_root).spec
    split: dict[str, tuple[list[str], list[str]]] = {"TRAIN": ([], []), "TEST": ([], [])}
    for dataset in spec.datasets:
        texts, labels = split[dataset.type.value]
        with (data_root / dataset.path).open(encoding="utf-8", newline="") as handle:
            for label, text in csv.reader(handle):
                texts.append(text)
                labels.append(label)
    return spec, *split["TRAIN"], *split["TEST"]


def fit_and_score(spec: Any, train_x: list[str], train_y: list[str], test_x: list[str],
                  test_y: list[str]) -> tuple[float, float]:
    """Fit the recipe's pipeline, predict the test texts; (fit+predict seconds, macro-F1)."""
    from sklearn.metrics import f1_score

    from reconciler.stages.recipes import build_pipeline

    pipeline = build_pipeline(spec.recipe, spec.task.mode)
    started = time.perf_counter()
    pipeline.fit(train_x, train_y)
    predicted = pipeline.predict(test_x)
    seconds = time.perf_counter() - started
    f1 = f1_score(test_y, predicted, labels=spec.task.labels, average="macro", zero_division=0)
    return seconds, float(f1)


def baseline_worker(spec_file: Path, data_root: Path) -> int:
    """``--baseline-worker``: the bare script a user would write; prints its F1 as JSON."""
    spec, train_x, train_y, test_x, test_y = read_split(spec_file, data_root)
    seconds, f1 = fit_and_score(spec, train_x, train_y, test_x, test_y)
    print(json.dumps({"f1": f1, "fitPredictSeconds": seconds}))
    return 0


def stage_case_files(case: Case, scratch: Path) -> tuple[Path, Path]:
    """Spec + data laid out as in a repository, for the baselines; (spec file, data root)."""
    root = scratch / "baseline"
    root.mkdir(exist_ok=True)
    for relative, source in case.files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    spec_file = root / f"{case.name}.yaml"
    spec_file.write_text(case.spec_text, "utf-8")
    return spec_file, root


# the benchmark ----------------------------------------------------------------------------------


def f1_check(name: str, f1: float, reference: float) -> str:
    verdict = "match" if abs(f1 - reference) < 1e-9 else f"MISMATCH ({f1 - reference:+.2e})"
    return f"    macro-F1 {name:34s} {f1:.6f}  {verdict}"


def run_case(case: Case, repeat: int, scratch: Path) -> None:
    """Time the reconciler and both baselines ``repeat`` times (interleaved) and print."""
    print(f"\n{case.title}", flush=True)
    spec_file, data_root = stage_case_files(case, scratch)
    spec, train_x, train_y, test_x, test_y = read_split(spec_file, data_root)
    print(f"  {len(train_x)} train / {len(test_x)} test documents, "
          f"{len(spec.task.labels)} labels, recipe {spec.recipe.algorithm}: "
          f"{json.dumps(spec.recipe.model_dump(mode='json', by_alias=True))}", flush=True)
    runs: list[IterationRun] = []
    in_process: list[float] = []
    bare: list[float] = []
    f1s: dict[str, float] = {}
    for _ in range(repeat):
        runs.append(run_reconcile(case, scratch))
        seconds, f1s["fit+predict in-process"] = fit_and_score(spec, train_x, train_y, test_x,
                                                               test_y)
        in_process.append(seconds)
        done = run_timed([PYTHON, __file__, "--baseline-worker", str(spec_file),
                          str(data_root)], cwd=scratch)
        bare.append(done.seconds)
        f1s["bare script (subprocess)"] = json.loads(done.stdout)["f1"]
    ours = Stats(tuple(r.seconds for r in runs))
    fit_predict, script = Stats(tuple(in_process)), Stats(tuple(bare))
    print(f"  flywheel reconcile (1 iteration)      {ours}")
    print(f"    of which the iteration record's durationSeconds: "
          f"{Stats(tuple(r.iteration_seconds for r in runs))}")
    print(f"    of which the train stage's fitSeconds:           "
          f"{Stats(tuple(r.fit_seconds for r in runs))}")
    print(f"  baseline 1: fit+predict in-process    {fit_predict}")
    print(f"  baseline 2: bare script, whole process {script}")
    print("  " + ratio_line("reconcile / fit+predict in-process", ours, fit_predict,
                                  target=TARGET_RATIO))
    print("  " + ratio_line("reconcile / bare script process   ", ours, script,
                                  target=TARGET_RATIO))
    print(f"    added by the reconciler (median reconcile - median bare script): "
          f"{ours.median - script.median:+.2f} s")
    reference = runs[0].f1
    print(f"    macro-F1 {'flywheel (AverageF1Score)':34s} {reference:.6f}")
    for name, f1 in f1s.items():
        print(f1_check(name, f1, reference))
    for run in runs[1:]:
        print(f1_check("flywheel, repeated run", run.f1, reference))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of case (a)")
    parser.add_argument("--large-repeat", type=int, default=1, help="repetitions of case (b)")
    parser.add_argument("--corpus", type=Path, help="a prebuilt --full corpus CSV")
    parser.add_argument("--skip-large", action="store_true", help="only case (a)")
    parser.add_argument("--baseline-worker", nargs=2, type=Path, metavar=("SPEC", "DATA_ROOT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.baseline_worker:
        return baseline_worker(*args.baseline_worker)
    check_environment()
    print(machine_note())
    print("timing whole processes (wall clock); reconcile runs each start in a fresh repository")
    with tempfile.TemporaryDirectory(prefix="flywheel-iteration-") as folder:
        scratch = Path(folder)
        (scratch / "a").mkdir()
        run_case(bundled_case(), args.repeat, scratch / "a")
        if args.skip_large:
            return 0
        corpus = args.corpus or build_full_corpus(scratch / "debian-full.csv")
        if corpus is None:
            print("\n(b) skipped: no full corpus (see data/README.md)")
            return 0
        (scratch / "b").mkdir()
        run_case(large_case(corpus, scratch / "b"), args.large_repeat, scratch / "b")
    print(machine_note())
    return 0


if __name__ == "__main__":
    sys.exit(main())
