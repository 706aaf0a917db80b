"""``flywheel serve``: the Comprehend-compatible API for the repository, with the watch daemon
beside it (started as a child ``flywheel watch`` unless one already serves the repository), so
that what the API asks for happens. The server itself never runs an iteration."""

from __future__ import annotations

import argparse
import contextlib
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console

from reconciler.cli.commands import repository
from reconciler.cli.exits import EXIT_OK

#: prctl(2)'s option that signals a process when its parent dies.
PR_SET_PDEATHSIG = 1


def serve(args: argparse.Namespace, out: Console, err: Console) -> int:
    from reconciler.daemon.status import running_pid
    from reconciler.runtime.logs import LineWriter, log_format
    from reconciler.server.serve import ServeOptions
    from reconciler.server.serve import serve as run

    repo = repository(args)
    options = ServeOptions(host=args.host, port=args.port,
                           credentials_file=args.credentials_file,
                           local_folders=tuple(args.allow_local) if args.allow_local else None)
    fmt = log_format(args.log_format, err)
    lines = LineWriter(err, fmt)
    from reconciler.server.serve import build

    build(repo, options, lines.write)  # refuse bad options before a daemon is started
    from reconciler.cli.options import executor_argv
    from reconciler.runtime.executor import executor_from

    executor_from(args.executor, args.exchange)  # a bad --executor: refused now, not per job
    watching = not args.no_watch and running_pid(repo.root) is None
    # uvicorn re-raises the SIGTERM it handled once it has shut down; this handler turns it
    # into an exit that unwinds, so the daemon beside it is stopped too.
    signal.signal(signal.SIGTERM, _exit)
    with _daemon(repo.root, fmt, watching, executor_argv(args)):
        def ready() -> None:
            lines.write({"event": "serving", "url": f"http://{args.host}:{args.port}",
                         "repository": str(repo.root),
                         "watch": "started" if watching else
                         ("off" if args.no_watch else "already running"),
                         "auth": "sigv4" if args.credentials_file else "none (loopback)"})

        run(repo, options, lines.write, on_ready=ready)
    return EXIT_OK


@contextlib.contextmanager
def _daemon(root: Path, fmt: str, start: bool, extra: list[str]) -> Iterator[None]:
    """A child ``flywheel watch`` for as long as the server runs (stopped with SIGTERM)."""
    if not start:
        yield
        return
    child = subprocess.Popen([sys.executable, "-m", "reconciler.cli", "-C", str(root),
                              "watch", "--log-format", "json" if fmt == "json" else "plain",
                              *extra],
                             preexec_fn=_stop_with_parent)
    try:
        yield
    finally:
        child.terminate()
        try:
            child.wait(timeout=90)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _exit(signum: int, _frame: object) -> None:
    raise SystemExit(0)


def _stop_with_parent() -> None:
    """In the child: the kernel sends it SIGTERM when the server dies, however it dies (a
    SIGKILL included), so no daemon outlives its server. Linux only; elsewhere a no-op."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
