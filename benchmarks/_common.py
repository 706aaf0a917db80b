"""Helpers shared by the benchmark scripts: paths, timed subprocesses, scratch repositories.

Every benchmark runs the project's own executables (``flywheel``, ``dvc``) from the virtual
environment of the Python interpreter that runs the benchmark, so run them with the project's
venv: ``.venv/bin/python benchmarks/<name>.py``.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

#: The project checkout (``benchmarks/..``).
PROJECT = Path(__file__).resolve().parent.parent
#: The folder holding this interpreter's console scripts (the venv's ``bin/``).
BIN = Path(sys.executable).parent
PYTHON = str(Path(sys.executable))
FLYWHEEL = str(BIN / "flywheel")
DVC = str(BIN / "dvc")
BUILD_CORPUS = PROJECT / "data" / "build_debian_corpus.py"


def check_environment() -> None:
    """Exit with a hint unless ``flywheel`` and ``dvc`` sit next to this interpreter."""
    missing = [path for path in (FLYWHEEL, DVC) if not Path(path).exists()]
    if missing:
        sys.exit(f"not found: {', '.join(missing)}; run the benchmark with the project's venv, "
                 f"e.g. {PROJECT / '.venv/bin/python'} {sys.argv[0]}")


def environment() -> dict[str, str]:
    """The environment of every timed process: the venv first on PATH, no DVC analytics.

    Analytics are switched off for every process (ours and the DVC baseline alike), so no run
    pays for a background upload that another run does not.
    """
    env = dict(os.environ)
    env["PATH"] = str(BIN) + os.pathsep + env.get("PATH", "")
    env["DVC_NO_ANALYTICS"] = "1"
    env.pop("PYTHONPATH", None)
    return env


@dataclass(frozen=True)
class Timed:
    """One finished process and its wall-clock time."""

    seconds: float
    returncode: int
    stdout: str
    stderr: str


def run_timed(args: Sequence[str], cwd: Path, *, check: bool = True) -> Timed:
    """Run ``args`` in ``cwd`` to completion; wall time from spawn to exit."""
    env = environment()
    started = time.perf_counter()
    done = subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True,
                          check=False)
    seconds = time.perf_counter() - started
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}\n"
                           f"{done.stderr}")
    return Timed(seconds, done.returncode, done.stdout, done.stderr)


@dataclass(frozen=True)
class Stats:
    """Median and minimum of repeated wall times."""

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def min(self) -> float:
        return min(self.samples)

    def __str__(self) -> str:
        return (f"median {self.median:7.3f} s  min {self.min:7.3f} s  "
                f"(n={len(self.samples)})")


def ratio_line(label: str, ours: Stats, baseline: Stats, target: float | None = None) -> str:
    """``label: median ratio, min ratio`` and, with a target, whether the median meets it."""
    line = (f"{label}: {ours.median / baseline.median:.3f}x (median), "
            f"{ours.min / baseline.min:.3f}x (min)")
    if target is not None:
        verdict = "meets" if ours.median / baseline.median <= target else "MISSES"
        line += f"  -> {verdict} the target <= {target:g}x"
    return line


def init_repository(path: Path) -> None:
    """``flywheel init PATH`` and keep DVC's site cache inside the scratch repository.

    DVC 3 keeps its hash state under a machine-wide site cache folder by default; pointing it
    into the scratch repository leaves nothing behind when the temporary folder goes.
    """
    run_timed([FLYWHEEL, "init", str(path)], cwd=path.parent)
    run_timed([DVC, "config", "--local", "core.site_cache_dir", str(path / ".dvc-site")],
              cwd=path)
    with (path / ".dvcignore").open("a", encoding="utf-8") as handle:
        handle.write("/.dvc-site\n")
    with (path / ".gitignore").open("a", encoding="utf-8") as handle:
        handle.write("/.dvc-site\n")


def build_full_corpus(out: Path) -> Path | None:
    """Write the >= 40k-document Debian corpus to ``out``; None when apt lists are missing.

    ``build_debian_corpus.py --full`` reads this machine's apt indexes. When Translation-en is
    missing it needs ``apt-get update -o Acquire::Languages=en`` (root) first; we only say so.
    """
    if out.exists():
        return out
    done = subprocess.run([PYTHON, str(BUILD_CORPUS), "--full", str(out)], capture_output=True,
                          text=True, check=False, env=environment())
    if done.returncode != 0:
        print(f"note: could not build the full corpus ({done.stderr.strip().splitlines()[-1:]}); "
              "try `apt-get update -o Acquire::Languages=en` first", file=sys.stderr)
        return None
    return out


def machine_note() -> str:
    """CPU count and load averages: timings on a busy machine are to be read with care."""
    one, five, _ = os.getloadavg()
    return (f"machine: {os.cpu_count()} CPUs, load average {one:.2f} (1 min) {five:.2f} (5 min); "
            f"python {sys.version.split()[0]}")


def remove_tree(path: Path) -> None:
    """Delete a folder if it exists (ignoring errors: this is scratch space)."""
    shutil.rmtree(path, ignore_errors=True)
