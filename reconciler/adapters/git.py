"""The only module that runs git."""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from reconciler.errors import StateError, TransientError

#: Who commits when no identity is configured (a CI runner, a daemon's service user).
DEFAULT_NAME = "flywheel-reconciler"
DEFAULT_EMAIL = "flywheel-reconciler@localhost"
PUSH_ATTEMPTS = 5
#: Appended to the subjects of the reconciler's commits so that CI does not run again for them.
SKIP_CI_MARKER = "[skip ci]"
#: Set while the reconciler commits, so that the post-commit hook does not reconcile again.
OWN_COMMIT_VARIABLE = "FLYWHEEL_RECONCILING"


class GitError(StateError):
    """A git command failed; ``output`` holds all it said."""

    output: str = ""


#: How long a git command waits for another git process's ``index.lock`` to go away (a commit
#: of the daemon's write-back and one of the API can meet on git's index).
INDEX_LOCK_WAIT = 10.0


def run(root: Path, *args: str, env: dict[str, str] | None = None) -> str:
    deadline = time.monotonic() + INDEX_LOCK_WAIT
    delay = 0.02
    while True:
        try:
            return _run_once(root, args, env)
        except GitError as exc:
            if "index.lock" not in exc.output or time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


def _run_once(root: Path, args: tuple[str, ...], env: dict[str, str] | None) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                              check=True, env=None if env is None else {**os.environ, **env})
    except FileNotFoundError as exc:
        raise GitError("git is not installed") from exc
    except subprocess.CalledProcessError as exc:
        output = (exc.stderr or exc.stdout or "").strip()
        lines = [line for line in output.splitlines() if not line.startswith("hint:")]
        telling = [line for line in lines if line.startswith(("error:", "fatal:", " ! "))]
        detail = (telling or lines or [str(exc)])[-1].strip()
        error = GitError(f"git {' '.join(args)} failed: {detail}")
        error.output = output
        raise error from exc
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
        run(root, *_identity(root), "commit", "-q", "-m", message)


# revisions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Revision:
    """HEAD's commit and which paths differ from it (modified, staged or untracked)."""

    commit: str | None
    changed: frozenset[str]

    def dirty(self, *paths: str) -> bool:
        return any(p in self.changed for p in paths)


def revision(root: Path, paths: tuple[str, ...] = ("specs", "data")) -> Revision | None:
    """The revision of ``paths`` in the working tree; None outside a git repository."""
    if not is_repo(root):
        return None
    try:
        commit = run(root, "rev-parse", "--verify", "-q", "HEAD").strip() or None
    except GitError:
        commit = None  # a repository without commits yet
    status = run(root, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", *paths)
    changed = set()
    entries = status.split("\0")
    index = 0
    while index < len(entries):
        entry = entries[index]
        index += 1
        if len(entry) < 4:
            continue
        changed.add(entry[3:])
        if entry[0] in "RC":  # a rename's source path follows as its own entry
            changed.add(entries[index])
            index += 1
    return Revision(commit, frozenset(changed))


@dataclass(frozen=True)
class Added:
    """The commit that first added a path: when and by which commit it was declared."""

    commit: str
    time: float


def first_added(root: Path, paths: list[str]) -> dict[str, Added]:
    """For each of ``paths`` (files, or folders for every file under them), the oldest commit
    of HEAD's history that added it; paths never committed are left out. One ``git log``."""
    if not paths or not is_repo(root):
        return {}
    try:
        out = run(root, "log", "--diff-filter=A", "--reverse", "--format=%x00%H %ct",
                  "--name-only", "-z", "--no-renames", "HEAD", "--", *paths)
    except GitError:
        return {}  # a repository without commits yet
    found: dict[str, Added] = {}
    for block in out.split("\0\0"):
        parts = [part.strip("\n") for part in block.split("\0") if part.strip("\n")]
        if not parts:
            continue
        commit, _, stamp = parts[0].partition(" ")
        for name in parts[1:]:
            found.setdefault(name, Added(commit, float(stamp)))
    return found


def head(root: Path) -> str:
    return run(root, "rev-parse", "HEAD").strip()


def current_branch(root: Path) -> str | None:
    name = run(root, "rev-parse", "--abbrev-ref", "HEAD").strip()
    return None if name == "HEAD" else name


# committing and pushing ---------------------------------------------------------------------


def with_marker(subject: str, marker: str) -> str:
    """``subject`` with ``marker`` (e.g. ``[skip ci]``) appended; as it was for ``""``."""
    return f"{subject} {marker}".rstrip() if marker else subject


def commit_paths(root: Path, paths: list[str], message: str) -> str | None:
    """Commit exactly ``paths`` (nothing else the user staged); None when nothing changed.

    Never an empty commit: a path whose content is already committed is left out.
    """
    run(root, "add", "-A", "--", *paths)
    staged = run(root, "diff", "--cached", "--name-only", "-z", "--", *paths).split("\0")
    if not any(staged):
        return None
    run(root, *_identity(root), "commit", "-q", "-m", message, "--only", "--", *paths,
        env={OWN_COMMIT_VARIABLE: "1"})
    return head(root)


def push(root: Path, remote: str, branch: str | None = None, *,
         attempts: int = PUSH_ATTEMPTS) -> str:
    """Push HEAD; on a non-fast-forward rejection fetch, rebase and try again.

    ``branch``: push to this branch instead of the current one, as the bot's own branch (a
    PR-ready branch, rewritten with ``--force-with-lease`` to hold the latest promotion on top
    of the current branch). Returns the ref pushed to.
    """
    if branch is not None:
        target = f"refs/heads/{branch}"
        lease = _remote_sha(root, remote, target)
        run(root, "push", "-q", f"--force-with-lease={target}:{lease}", remote, f"HEAD:{target}")
        return target
    current = current_branch(root)
    if current is None:
        raise GitError("HEAD is detached: give a branch to push to")
    target = f"refs/heads/{current}"
    for attempt in range(1, attempts + 1):
        try:
            run(root, "push", "-q", remote, f"HEAD:{target}")
            return target
        except GitError as exc:
            if not _rejected(exc.output) or attempt == attempts:
                raise
        time.sleep(random.uniform(0.2, 1.0) * attempt)  # others are pushing too: spread out
        try:
            run(root, *_identity(root), "pull", "-q", "--rebase", "--autostash", remote, current)
        except GitError as exc:
            run_quietly(root, "rebase", "--abort")
            raise GitError(f"could not rebase onto {remote}/{current}: {exc.message}") from exc
    raise TransientError(f"git push to {remote} kept being rejected")


def run_quietly(root: Path, *args: str) -> None:
    with contextlib.suppress(GitError):
        run(root, *args)


def _remote_sha(root: Path, remote: str, ref: str) -> str:
    line = run(root, "ls-remote", remote, ref).split()
    return line[0] if line else ""


def _rejected(message: str) -> bool:
    return any(word in message for word in ("rejected", "non-fast-forward", "fetch first",
                                            "failed to push"))


def _identity(root: Path) -> list[str]:
    """``-c user.name=… -c user.email=…`` when the repository has no identity configured."""
    args: list[str] = []
    for key, default in (("user.name", DEFAULT_NAME), ("user.email", DEFAULT_EMAIL)):
        try:
            run(root, "config", key)
        except GitError:
            args += ["-c", f"{key}={default}"]
    return args
