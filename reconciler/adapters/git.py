"""The only module that runs git."""

from __future__ import annotations

import subprocess
from pathlib import Path

from reconciler.errors import StateError


def run(root: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                              check=True)
    except FileNotFoundError as exc:
        raise StateError("git is not installed") from exc
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr or exc.stdout or "").strip().splitlines()
        raise StateError(f"git {' '.join(args)} failed: {detail[-1] if detail else exc}") from exc
    return done.stdout


def is_repo(root: Path) -> bool:
    return (root / ".git").exists()


def init(root: Path) -> None:
    if not is_repo(root):
        run(root, "init", "-q")


def commit_all(root: Path, message: str) -> None:
    """Stage everything and commit (used by the demo and the tests), skipping empty commits."""
    run(root, "add", "-A")
    if run(root, "status", "--porcelain").strip():
        run(root, "-c", "user.name=flywheel", "-c", "user.email=flywheel@localhost",
            "commit", "-q", "-m", message)
