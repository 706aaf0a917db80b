"""Peak memory against dataset size: ``flywheel validate`` / ``plan`` and one whole iteration.

A scratch repository (made with ``flywheel init`` in a temporary folder) holds one MULTI_CLASS
flywheel whose TRAIN file is generated at several sizes (default 10, 50 and 200 MB) from the
bundled real rows of ``data/debian-sections/train-v*.csv``, repeated with variations (each copy
of a row gets a numbered suffix, so no two documents are equal and none is a TEST document); its
TEST file is the bundled ``test.csv``. For every size, ``flywheel validate`` and ``flywheel plan``
(an iteration is due, so plan reads and checks every row too) each run as a fresh child process
and its peak resident set size is read from ``os.wait4`` (``ru_maxrss`` of that child and of
the descendants it waited for).

Baseline, measured in the same run the same way: a bare ``python -c "import reconciler.cli"``
(what every ``flywheel`` command pays before reading anything). Printed per case: peak RSS,
peak minus the baseline, and that growth divided by the dataset's size (target <= 2x for
validate and plan: they hold counts per label and a 16-byte digest per document, no document);
also the growth over the same command on a 0.2 MB file (its fixed cost: the imports past
``reconciler.cli``, pydantic's models) and the slope between the smallest and largest sizes.

The verdict against the target is on the growth over the tiny-file run (what grows with the
data); at 10 MB the fixed cost alone is about 2x the file.

Then one whole iteration (``flywheel reconcile``: the reconciler, DVC and its three stage
processes, the largest single process counted) at a moderate size (default 20 MB), whose
prepare and train stages necessarily hold the corpus, against the bare fit + predict script of
``benchmarks/iteration.py`` (``--baseline-worker``) on the same files (target <= 1.5x); then
each stage again on its own
(``python -m reconciler.stages STAGE params.yaml`` in the same repository), to say which one
the peak is.

Usage: ``.venv/bin/python benchmarks/memory.py [--sizes 10,50,200] [--iteration-size 20]
[--repeat 1]`` (``--iteration-size 0`` skips the iteration).
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from _common import (
    FLYWHEEL,
    PROJECT,
    PYTHON,
    check_environment,
    environment,
    init_repository,
    machine_note,
)

SOURCE = PROJECT / "data" / "debian-sections"
LABELS = ["database", "editors", "games", "graphics", "mail", "math", "net", "science", "sound",
          "video"]
MB = 10**6
#: The commands measured per size, with the exit statuses they succeed with (plan: 1 = pending).
COMMANDS = (("validate", (0,)), ("plan", (1,)))


@dataclass(frozen=True)
class Peak:
    """One finished child process: its peak RSS (bytes), exit status and wall time."""

    rss: int
    returncode: int
    seconds: float
    stderr: str


def measure(args: Sequence[str], cwd: Path) -> Peak:
    """Run ``args`` as a fresh child; its peak RSS from ``os.wait4`` (Linux: ru_maxrss in KiB)."""
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(list(args), cwd=cwd, env=environment(),
                                   stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    return Peak(usage.ru_maxrss * 1024, process.returncode, seconds, stderr)


def source_rows() -> list[tuple[str, str]]:
    rows = []
    for path in sorted(SOURCE.glob("train-v*.csv")):
        with path.open(encoding="utf-8", newline="") as handle:
            rows.extend((label, text) for label, text in csv.reader(handle))
    random.Random(0).shuffle(rows)  # labels mixed: any prefix of a file has every label
    return rows


def write_dataset(path: Path, size: int, rows: list[tuple[str, str]]) -> int:
    """A Comprehend CSV of about ``size`` bytes: the bundled rows, copy ``n`` of a row ending in
    `` (variant n)``. Returns the number of documents."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    written = count = copy = 0
    with path.open("wb") as handle:
        while written < size:
            copy += 1
            for label, text in rows:
                buffer.seek(0)
                buffer.truncate()
                writer.writerow([label, f"{text} (variant {copy})"])
                data = buffer.getvalue().encode("utf-8")
                handle.write(data)
                written += len(data)
                count += 1
                if written >= size:
                    break
    return count


def make_repository(root: Path) -> None:
    init_repository(root)
    (root / "data/bench").mkdir(parents=True, exist_ok=True)
    (root / "data/bench/test.csv").write_bytes((SOURCE / "test.csv").read_bytes())
    spec = {
        "apiVersion": "flywheel-reconciler/v1",
        "name": "bench",
        "task": {"languageCode": "en", "mode": "MULTI_CLASS", "labels": LABELS},
        "datasets": [{"name": "train", "type": "TRAIN", "path": "data/bench/train.csv"},
                     {"name": "test", "type": "TEST", "path": "data/bench/test.csv"}],
        "promotion": {"minF1": 0.0, "minImprovement": 0.0},
    }
    (root / "specs/bench.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), "utf-8")


def best(args: Sequence[str], cwd: Path, repeat: int, ok: tuple[int, ...] = (0,)) -> Peak:
    """The lowest peak of ``repeat`` fresh runs (each must exit with one of ``ok``)."""
    peaks = [measure(args, cwd) for _ in range(repeat)]
    for peak in peaks:
        if peak.returncode not in ok:
            raise RuntimeError(f"{' '.join(args)} exited {peak.returncode}:\n{peak.stderr}")
    return min(peaks, key=lambda p: p.rss)


def line(label: str, peak: Peak, baseline: Peak, size: int, target: float | None,
         fixed: Peak | None = None) -> str:
    growth = peak.rss - baseline.rss
    factor = growth / size
    text = (f"{label:<22} peak {peak.rss / MB:6.1f} MB  +{growth / MB:6.1f} MB over baseline = "
            f"{factor:4.2f}x file")
    if fixed is not None:
        text += f" ({(peak.rss - fixed.rss) / size:4.2f}x over the tiny-file run)"
    text += f"  peak/file {peak.rss / size:4.2f}x  {peak.seconds:5.1f} s"
    if target is not None:
        # The verdict is on what grows with the data: the growth over the same command on a
        # tiny file (a fixed ~20 MB of imports past reconciler.cli is no factor of the file).
        factor = (peak.rss - fixed.rss) / size if fixed is not None else factor
        text += f"  -> {'meets' if factor <= target else 'MISSES'} <= {target:g}x"
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,50,200", help="dataset sizes in MB (comma list)")
    parser.add_argument("--iteration-size", type=float, default=20.0,
                        help="dataset size in MB of the one whole iteration (0: skip)")
    parser.add_argument("--repeat", type=int, default=1, help="fresh runs per case (lowest kept)")
    args = parser.parse_args(argv)
    check_environment()
    print(machine_note())
    rows = source_rows()
    with tempfile.TemporaryDirectory(prefix="flywheel-memory-") as folder:
        root = Path(folder) / "repo"
        make_repository(root)
        baseline = best([PYTHON, "-c", "import reconciler.cli"], root, max(args.repeat, 3))
        print(f"baseline: python -c 'import reconciler.cli' peak {baseline.rss / MB:.1f} MB")
        train = root / "data/bench/train.csv"
        write_dataset(train, 200_000, rows)
        fixed = {command: best([FLYWHEEL, command], root, max(args.repeat, 3), ok)
                 for command, ok in COMMANDS}
        print("fixed cost, a 0.2 MB TRAIN file: " + ", ".join(
            f"flywheel {command} peak {peak.rss / MB:.1f} MB" for command, peak in fixed.items()))
        peaks: dict[str, list[tuple[int, int]]] = {}
        for size_mb in (float(s) for s in args.sizes.split(",")):
            count = write_dataset(train, int(size_mb * MB), rows)
            size = train.stat().st_size
            print(f"\n{size / MB:.1f} MB TRAIN file, {count} documents "
                  f"(+ TEST {(root / 'data/bench/test.csv').stat().st_size / MB:.1f} MB)")
            for command, ok in COMMANDS:
                peak = best([FLYWHEEL, command], root, args.repeat, ok)
                print(line(f"flywheel {command}", peak, baseline, size, 2.0, fixed[command]))
                peaks.setdefault(command, []).append((size, peak.rss))
        for command, points in peaks.items():  # growth per byte, the fixed costs set aside
            if len(points) > 1:
                (small, low), (large, high) = points[0], points[-1]
                print(f"flywheel {command}: slope {(high - low) / (large - small):.2f} MB of peak "
                      f"per MB of data between {small / MB:.0f} and {large / MB:.0f} MB")
        if args.iteration_size > 0:
            count = write_dataset(train, int(args.iteration_size * MB), rows)
            size = train.stat().st_size
            print(f"\none whole iteration, {size / MB:.1f} MB TRAIN file, {count} documents")
            peak = best([FLYWHEEL, "reconcile"], root, 1)
            print(line("flywheel reconcile", peak, baseline, size, None)
                  + "  (the largest process: reconciler, DVC or a stage)")
            # the bare script a user would write: read the CSVs, fit, predict, macro-F1
            script = best([PYTHON, str(PROJECT / "benchmarks/iteration.py"), "--baseline-worker",
                           str(root / "specs/bench.yaml"), str(root)], root, 1)
            print(f"  bare fit + predict script: peak {script.rss / MB:.1f} MB; the iteration's "
                  f"largest process / the bare script = {peak.rss / script.rss:.2f}x "
                  f"(target <= 1.5x)")
            params = "pipelines/bench/params.yaml"  # each stage again, alone, on its own inputs
            for stage in ("prepare", "train", "evaluate"):
                peak = best([PYTHON, "-m", "reconciler.stages", stage, params], root, 1)
                print(line(f"  stage {stage}", peak, baseline, size, None))
    print(machine_note())
    return 0


if __name__ == "__main__":
    sys.exit(main())
