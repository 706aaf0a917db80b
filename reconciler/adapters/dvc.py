"""The only module that talks to DVC.

DVC is imported lazily so that the no-change reconcile path never pays for it. DVC's own
repository lock fails fast when another DVC process holds it; we serialise every DVC call behind a
lock of ours that *waits* (bounded), so concurrent reconcilers queue instead of failing.
Stage output (and DVC's own chatter) goes to a log file, not the user's terminal; on failure the
stage's one-line ``error:`` message is lifted into the :class:`PipelineError`.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from reconciler.adapters.files import atomic_write_text, file_lock, read_json, read_regular
from reconciler.adapters.processes import RECONCILER_ENV, identity
from reconciler.core.layout import DVC_LOCK
from reconciler.errors import (
    ENVIRONMENT_EXIT,
    PipelineError,
    Stopped,
    TransientError,
    environment_failure,
    refused_operation,
)

DVC_LOCK_TIMEOUT = 600.0
#: Exit statuses of a stage command killed by SIGINT or SIGTERM (directly, or through a shell).
_INTERRUPTED_STATUSES = frozenset({-2, -15, 130, 143})
#: ... and by SIGKILL: the kernel's OOM killer, or a person's ``kill -9``, not a fault of the data.
_KILLED_STATUSES = frozenset({-9, 137})
#: ... and by SIGXFSZ (a file-size limit, when the signal is not ignored): the environment's.
_FILE_SIZE_STATUSES = frozenset({-25, 153})


def is_dvc_repo(root: Path) -> bool:
    return (root / ".dvc").is_dir()


def init(root: Path) -> None:
    """``dvc init`` in an existing git repository (no-op when already initialised)."""
    if is_dvc_repo(root):
        return
    from dvc.repo import Repo

    Repo.init(str(root))


def set_default_remote(root: Path, url: str, name: str = "storage") -> None:
    """``dvc remote add -d NAME URL`` (or change its URL): where ``dvc push`` sends models.

    A local folder is stored as an absolute path, so that every clone on this machine finds it.
    """
    from dvc.repo import Repo

    repo = Repo(str(root))
    try:
        with repo.config.edit("repo") as conf:
            conf["remote"][name] = {"url": url}
            conf["core"]["remote"] = name
    finally:
        repo.close()


def default_remote(root: Path) -> str | None:
    """The name of the repository's default DVC remote, read without importing DVC."""
    import configparser

    for name in ("config.local", "config"):
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            parser.read(root / ".dvc" / name, encoding="utf-8")
        except (configparser.Error, UnicodeDecodeError):
            continue
        remote = parser.get("core", "remote", fallback="").strip().strip("'\"")
        if remote:
            return remote
    return None


#: At most this much of a ``dvc.lock`` or ``.dvc`` file is read (ours are a few kilobytes).
_DVC_FILE_BYTES = 4 * 1024 * 1024


def _dvc_file(path: Path) -> Any:
    """A DVC YAML file (``dvc.lock``, ``*.dvc``), bounded and safely loaded; None if unreadable."""
    import yaml

    try:
        return yaml.safe_load(read_regular(path, _DVC_FILE_BYTES).decode("utf-8"))
    except (OSError, ValueError, yaml.YAMLError):
        return None


def locked_deps(lock_file: Path, stage: str) -> dict[str, str]:
    """Dependency path -> MD5 of one stage, as DVC recorded it in ``dvc.lock`` ({} if none)."""
    try:
        deps = _dvc_file(lock_file)["stages"][stage]["deps"]
        return {str(d["path"]): str(d["md5"]) for d in deps if "md5" in d}
    except (KeyError, TypeError):
        return {}


def tracked_files(root: Path, dvc_file: Path) -> list[str]:
    """The files a folder's ``.dvc`` file tracks, from the folder's manifest in DVC's local
    cache (``[]`` when the manifest is not there: nothing pulled yet)."""
    try:
        digest = str(_dvc_file(dvc_file)["outs"][0]["md5"])
        if not re.fullmatch(r"[0-9a-f]{32}\.dir", digest):
            return []
        manifest = read_json(root / ".dvc/cache/files/md5" / digest[:2] / digest[2:])
        return [entry["relpath"] for entry in manifest if isinstance(entry["relpath"], str)]
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return []


class DvcSession:
    """One locked conversation with DVC: reproduce stages, record outputs, track folders.

    ``capture``: send this process's fds 1 and 2 to the log while DVC works (a stage command
    DVC starts writes there). A caller that starts no stage command (``commit``, ``track``)
    from one of several threads passes False: the redirection is the whole process's.
    """

    def __init__(self, root: Path, log: Path, stop: Callable[[], bool] | None = None, *,
                 capture: bool = True) -> None:
        self.root = root
        self.log = log
        self.stop = stop
        self.capture = capture
        self._repo: Any = None

    def __enter__(self) -> DvcSession:
        self._lock = file_lock(self.root / DVC_LOCK, timeout=DVC_LOCK_TIMEOUT, what="DVC",
                               stop=self.stop)
        self._lock.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._repo is not None:
            self._repo.close()
        self._lock.__exit__(kind, error, trace)

    def _open(self) -> Any:
        if self._repo is None:
            from dvc.repo import Repo

            self._repo = Repo(str(self.root))
        return self._repo

    def reproduce(self, *targets: str) -> None:
        """``dvc repro --single-item TARGET…``: these stages, in this order, each one only
        when changed (``prepare`` is skipped when its inputs are what ``dvc.lock`` says).

        The caller names the upstream stages itself: without ``--single-item`` DVC builds the
        graph of every pipeline in the repository to find them, a cost that grew with the
        number of flywheels (at 100, an iteration's repro took 2 s more than at 1). Targets are
        made absolute: DVC resolves relative ones against the process's working directory,
        which need not be the repository.
        """
        with self._translated(f"dvc repro {' '.join(targets)}"):
            self._open().reproduce(targets=[str(self.root / t) for t in targets],
                                   single_item=True)

    def commit(self, *targets: str) -> None:
        """``dvc commit -f TARGET…``: record these stages' dependencies and outputs as they are
        now, in ``dvc.lock`` and DVC's cache, for outputs computed elsewhere (a cluster's
        worker, this process), in the order given.

        The caller names the upstream stages itself, as for :meth:`reproduce`: DVC's
        ``--with-deps`` builds the graph of every pipeline in the repository to find them (at
        10 flywheels, 1 s of each iteration; the cost grew with their number), while a
        ``dvc.yaml:stage`` target loads that one file.
        """
        with self._translated(f"dvc commit {' '.join(targets)}"):
            repo = self._open()
            for target in targets:
                repo.commit(str(self.root / target), force=True)

    def track(self, path: str) -> None:
        """``dvc add PATH``: put a file or folder under DVC (cache, remote), not git.

        Done as ``dvc commit -f PATH.dvc``, which records the folder as it is now exactly as
        ``dvc add`` does, but without building the index of every pipeline in the repository
        (``dvc add`` does, to look for overlapping outputs: a cost that grew with the number
        of flywheels, paid by each iteration). A path not tracked yet first gets the ``.dvc``
        file ``dvc add`` would start from (``outs: [{path: NAME}]``, DVC's documented format);
        the commit fills in its hash and git-ignores the folder.
        """
        target = self.root / path
        tracked = target.with_name(f"{target.name}.dvc")
        with self._translated(f"dvc add {path}"):
            if not tracked.exists():
                atomic_write_text(tracked, f"outs:\n- path: {target.name}\n")
            self._open().commit(str(tracked), force=True)

    def push(self, paths: list[str], remote: str | None = None) -> int:
        """``dvc push PATHS``: send tracked files to the DVC remote; how many were sent."""
        with self._translated(f"dvc push {' '.join(paths)}"):
            return int(self._open().push(targets=[str(self.root / p) for p in paths],
                                         remote=remote) or 0)

    @contextlib.contextmanager
    def _translated(self, what: str) -> Iterator[None]:
        from dvc.exceptions import DvcException
        from dvc.lock import LockError

        offset = self.log.stat().st_size if self.log.exists() else 0
        try:
            with _stage_environment(self.log) if self.capture else _dvc_log_to(self.log):
                yield
        except LockError as exc:
            raise TransientError(f"{what}: DVC's repository lock is held: {exc}") from exc
        except DvcException as exc:
            status = _stage_status(exc)
            if status in _INTERRUPTED_STATUSES:
                raise Stopped(f"{what}: the stage command was interrupted by a signal") from exc
            if status in _KILLED_STATUSES:
                raise TransientError(f"{what}: the stage command was killed (SIGKILL: out of "
                                     "memory, or by hand)") from exc
            detail = _stage_error(self.log, offset) or str(exc)
            if status == ENVIRONMENT_EXIT:  # the stage says: the system refused a file op
                raise TransientError(f"{what}: {detail} (log: {self._display_log()})") from exc
            if status in _FILE_SIZE_STATUSES:
                raise TransientError(f"{what}: the stage command was killed by SIGXFSZ (a "
                                     "file-size limit)") from exc
            refused = environment_failure(exc)
            if refused is not None:  # DVC wrapped the system's refusal in its own error
                raise TransientError(f"{what}: {refused_operation(refused)}") from exc
            raise PipelineError(f"{what} failed: {detail} (log: {self._display_log()})") from exc
        except (OSError, sqlite3.Error) as exc:
            # The system refused a file operation inside DVC (a full disk, a file-size limit,
            # DVC's SQLite state): worth another try once the cause is gone, not a verdict.
            raise TransientError(f"{what}: {refused_operation(exc)}") from exc

    def _display_log(self) -> str:
        try:
            return self.log.relative_to(self.root).as_posix()
        except ValueError:
            return str(self.log)


@contextlib.contextmanager
def _dvc_log_to(log: Path) -> Iterator[None]:
    """DVC's own log lines ("Updating lock file", hints to ``git add``) to ``log``, not the
    terminal; only this process's DVC logger is touched, not its file descriptors."""
    import logging

    import dvc.repo  # noqa: F401  (DVC installs its handlers on import: before they are swapped)

    logger = logging.getLogger("dvc")
    saved = logger.handlers[:], logger.propagate
    log.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log, encoding="utf-8")
    logger.handlers, logger.propagate = [handler], False
    try:
        yield
    finally:
        logger.handlers, logger.propagate = saved
        handler.close()


@contextlib.contextmanager
def _stage_environment(log: Path) -> Iterator[None]:
    """What a stage command DVC starts needs: our output to the log, our interpreter."""
    with _output_to(log), _python_on_path():
        yield


@contextlib.contextmanager
def _output_to(log: Path) -> Iterator[None]:
    """Send fds 1 and 2 (ours, DVC's and the stage subprocesses') to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with log.open("ab") as handle:
        os.dup2(handle.fileno(), 1)
        os.dup2(handle.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


@contextlib.contextmanager
def _python_on_path() -> Iterator[None]:
    """Stages run with this interpreter even when no venv is active: the stage launcher
    (``pipelines/run-stage.sh``) takes ``FLYWHEEL_PYTHON``; ``python`` on PATH is for pipelines
    generated before the launcher. ``FLYWHEEL_RECONCILER`` names this process, so that a stage
    dies with it (:mod:`reconciler.adapters.processes`)."""
    saved = {key: os.environ.get(key) for key in ("PATH", "FLYWHEEL_PYTHON", RECONCILER_ENV)}
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + (saved["PATH"] or "")
    os.environ["FLYWHEEL_PYTHON"] = sys.executable
    os.environ[RECONCILER_ENV] = identity()  # the stages die with this process
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _stage_status(exc: BaseException) -> int | None:
    """The exit status of the stage command behind a DVC failure, if that is what failed."""
    from dvc.stage.exceptions import StageCmdFailedError

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, StageCmdFailedError):
            status = str(seen).rpartition("exited with ")[2]
            return int(status) if status.lstrip("-").isdigit() else None
        seen = seen.__cause__ or seen.__context__
    return None


def _stage_error(log: Path, offset: int) -> str | None:
    try:
        with log.open("rb") as handle:
            handle.seek(offset)
            lines = handle.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if line.startswith("error: "):
            return line.removeprefix("error: ")
    return None
