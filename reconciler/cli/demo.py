"""``flywheel demo``: the bundled example, replayed the way it would happen in a real repository.

A scratch git repository gets the bundled specs with only their first TRAIN dataset version
declared, and is reconciled; then each next dataset version is declared (a commit, as a person
would push it) and reconciled again. The flywheel turns: F1 moves across iterations, the policy
promotes better versions, and every step is the same ``reconcile()`` the CLI runs.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from reconciler import api
from reconciler.adapters import git
from reconciler.cli.render import Progress, iterations_table
from reconciler.cli.text import reconcile_summary
from reconciler.core.layout import DATA_DIR, SPECS_DIR
from reconciler.errors import FlywheelError
from reconciler.runtime.logs import log_format

#: The source checkout (``reconciler/cli/demo.py`` → three levels up), with specs/ and data/.
SOURCE = Path(__file__).resolve().parents[2]


def run_demo(workdir: Path | None, out: Console, err: Console) -> int:
    if not (SOURCE / SPECS_DIR).is_dir() or not (SOURCE / DATA_DIR).is_dir():
        raise FlywheelError(f"the demo needs the source checkout's specs/ and data/ ({SOURCE})")
    root = (workdir or Path(tempfile.mkdtemp(prefix="flywheel-demo-"))).resolve()
    if root.exists() and any(root.iterdir()):
        raise FlywheelError(f"{root} is not empty; give an empty or new --workdir")
    api.init(root)
    shutil.copytree(SOURCE / DATA_DIR, root / DATA_DIR, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("*.py", "README.md"))
    specs = {path.name: yaml.safe_load(path.read_text("utf-8"))
             for path in sorted((SOURCE / SPECS_DIR).glob("*.yaml"))}
    steps = max(sum(d["type"] == "TRAIN" for d in spec["datasets"]) for spec in specs.values())
    err.print(f"[bold]Demo repository:[/] {root}")
    progress = Progress(err, log_format("auto", err))
    failed = False
    for step in range(1, steps + 1):
        declared = []
        for file_name, spec in specs.items():
            (root / SPECS_DIR / file_name).write_text(
                "# Replayed by `flywheel demo`: the dataset versions arrive one by one.\n"
                + yaml.safe_dump(_first_versions(spec, step), sort_keys=False), "utf-8")
            declared.append(f"{spec['name']}: {_train_names(spec)[:step][-1]}")
        git.commit_all(root, f"Declare dataset versions ({', '.join(declared)})")
        err.rule(f"step {step}/{steps}: declare {', '.join(declared)}; reconcile")
        try:
            result = api.reconcile(api.open_repository(root), report=progress)
        finally:
            progress.stop()
        err.print(reconcile_summary(result))
        failed |= not result.ok
        git.commit_all(root, f"Reconcile step {step}: lake records and dvc.lock")
    _show(root, out, err)
    return 1 if failed else 0


def _train_names(spec: dict[str, Any]) -> list[str]:
    return [d["name"] for d in spec["datasets"] if d["type"] == "TRAIN"]


def _first_versions(spec: dict[str, Any], step: int) -> dict[str, Any]:
    """The spec with its first ``step`` TRAIN datasets (and every TEST dataset)."""
    keep = set(_train_names(spec)[:step])
    return {**spec, "datasets": [d for d in spec["datasets"]
                                 if d["type"] == "TEST" or d["name"] in keep]}


def _show(root: Path, out: Console, err: Console) -> None:
    repo = api.open_repository(root)
    for current in api.list_flywheels(repo):
        if not current.observed.iterations:
            continue
        out.print(iterations_table(current.name, list(current.observed.iterations)))
        err.print(f"chart: {api.plot(repo, current.name)}")
    err.print(f"\nExplore it: cd {root} && flywheel list && dvc dag && dvc metrics show && "
              "dvc plots show")
